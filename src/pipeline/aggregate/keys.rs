//! What tells repeats apart: the raw key (on the caller's thread, from the
//! capture as taken), the fold key (on the worker, from the report), and the
//! located key (across runs, from addresses relative to their files).
use crate::report::{ExceptionInfo, Kind, Report};

/// All-hex words this long are ids even without a digit (`deadbeefcafe`).
const MIN_HEX_LETTERS_ID: usize = 8;
pub(super) const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

/// A process-local hash (keys are never stored or compared across runs),
/// fed eight bytes at a time: cheaper on the caller's thread than a
/// byte-at-a-time hash.
#[derive(Clone, Copy)]
pub(super) struct Mix(pub(super) u64);

impl Mix {
    pub(super) fn new(seed: u64) -> Self {
        Mix(seed ^ 0xcbf2_9ce4_8422_2325)
    }

    fn word(self, word: u64) -> Self {
        Mix((self.0 ^ word).wrapping_mul(MULTIPLIER).rotate_left(29))
    }

    /// `bytes` and their length, so that consecutive fields cannot run into each other.
    fn bytes(mut self, bytes: &[u8]) -> Self {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self = self.word(u64::from_le_bytes(
                <[u8; 8]>::try_from(chunk).unwrap_or_default(),
            ));
        }
        let rest = chunks.remainder();
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        self.word(u64::from_le_bytes(last)).word(bytes.len() as u64)
    }

    /// `text` with each variable part replaced by one placeholder, so that
    /// messages differing only in numbers and ids hash alike. A variable
    /// part is a word (a run of ASCII letters and digits) holding a digit
    /// (`17`, `0x1f`, `a3f9c2`, `req42`), or an all-hex word of at least 8
    /// letters, together with the all-hex words that follow it joined by
    /// `-` (a UUID is one placeholder however its groups are spelled). One
    /// pass over the bytes, nothing allocated: this runs on the caller's
    /// thread for every capture.
    pub(super) fn normalized(mut self, text: &str) -> Self {
        const PLACEHOLDER: u64 = 1;
        const END: u64 = 2;
        let bytes = text.as_bytes();
        let (mut i, mut literal) = (0, 0);
        while let Some(&b) = bytes.get(i) {
            if CLASS[usize::from(b)] & ALNUM == 0 {
                i += 1;
                continue;
            }
            let start = i;
            let (end, any, all) = word_at(bytes, i);
            i = end;
            if any & DIGIT == 0 && !(all & HEX != 0 && end - start >= MIN_HEX_LETTERS_ID) {
                continue;
            }
            while bytes.get(i) == Some(&b'-') {
                let (end, any, all) = word_at(bytes, i + 1);
                if end == i + 1 || (all & HEX == 0 && any & DIGIT == 0) {
                    break;
                }
                i = end;
            }
            self = self.bytes(&bytes[literal..start]).word(PLACEHOLDER);
            literal = i;
        }
        self.bytes(&bytes[literal..]).word(END)
    }
}

const ALNUM: u8 = 1;
const DIGIT: u8 = 2;
const HEX: u8 = 4;
/// Per byte: whether it is an ASCII letter or digit, a digit, a hex digit.
const CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = (b.is_ascii_alphanumeric() as u8 * ALNUM)
            | (b.is_ascii_digit() as u8 * DIGIT)
            | (b.is_ascii_hexdigit() as u8 * HEX);
        i += 1;
    }
    table
};

/// The end of the word (a run of ASCII letters and digits) at `start`, and
/// the classes of its bytes: any of them has, and all of them have.
fn word_at(bytes: &[u8], start: usize) -> (usize, u8, u8) {
    let (mut end, mut any, mut all) = (start, 0, u8::MAX);
    while let Some(&b) = bytes.get(end) {
        let class = CLASS[usize::from(b)];
        if class & ALNUM == 0 {
            break;
        }
        any |= class;
        all &= class;
        end += 1;
    }
    (end, any, all)
}

/// The text part of [`raw_key`] and [`located_key`]: the kind, the message
/// and the exception chain.
#[inline]
fn text_mix(kind: Kind, message: &str, exceptions: &[ExceptionInfo]) -> Mix {
    let mut h = Mix::new(kind as u64);
    // A message's text is its fingerprint (unless a custom one replaces
    // it, and then there is no raw key): folding two texts under one raw key
    // would fold two fingerprints.
    h = match kind {
        Kind::Message => h.bytes(message.as_bytes()),
        Kind::Error | Kind::Panic | Kind::Crash => h.normalized(message),
    };
    for e in exceptions {
        h = h.bytes(e.ty.as_bytes());
        // The outer error's text usually is the message: hashed once.
        if e.message != message {
            h = h.normalized(&e.message);
        }
    }
    h
}

/// The raw key of a capture, computed on the caller's thread.
pub(crate) fn raw_key(
    kind: Kind,
    message: &str,
    exceptions: &[ExceptionInfo],
    addresses: &[usize],
) -> u64 {
    let mut key = text_mix(kind, message, exceptions).0;
    for &address in addresses {
        key = (key ^ address as u64)
            .wrapping_mul(MULTIPLIER)
            .rotate_left(29);
    }
    key
}

/// What decides whether two reports are occurrences of the same error: the
/// fingerprint, the exception types, and the messages normalised. Coarser
/// than a report's text (`burst error 17` and `burst error 18` fold), finer
/// than its fingerprint (`Permission denied (os error 13)` and `No space
/// left on device (os error 28)` from one function do not).
pub(crate) fn fold_key(report: &Report) -> u64 {
    let mut h = Mix::new(0)
        .bytes(report.group.as_bytes())
        .normalized(&report.message);
    for e in &report.exceptions {
        h = h.bytes(e.ty.as_bytes()).normalized(&e.message);
    }
    h.0
}

/// The identity of a raw capture read back from the spool, the same in
/// every run of one binary: as [`raw_key`], but each frame is its file
/// (path and identity) and its offset in that file, not its address (which
/// moves from run to run), and the capture's location and custom
/// fingerprint take part. A frame in no known file counts as unknown.
pub(crate) fn located_key<'a>(
    kind: Kind,
    message: &str,
    exceptions: &[ExceptionInfo],
    location: Option<&crate::report::Location>,
    fingerprint: Option<&[String]>,
    frames: impl IntoIterator<Item = Option<(&'a str, &'a str, u64)>>,
) -> u64 {
    const UNKNOWN: u64 = 0;
    const KNOWN: u64 = 1;
    let mut h = text_mix(kind, message, exceptions);
    h = match location {
        Some(l) => h
            .word(KNOWN)
            .bytes(l.file.as_bytes())
            .word(u64::from(l.line) << 32 | u64::from(l.column)),
        None => h.word(UNKNOWN),
    };
    h = h.word(fingerprint.map_or(0, |parts| parts.len() as u64 + 1));
    for part in fingerprint.into_iter().flatten() {
        h = h.bytes(part.as_bytes());
    }
    for frame in frames {
        h = match frame {
            Some((path, identity, offset)) => h
                .word(KNOWN)
                .bytes(path.as_bytes())
                .bytes(identity.as_bytes())
                .word(offset),
            None => h.word(UNKNOWN),
        };
    }
    h.0
}
