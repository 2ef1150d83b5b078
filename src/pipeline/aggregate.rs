//! Error storms: aggregation of repeats, and the client-side rate limit.
//!
//! Repeats of one error fold by their fold key: the fingerprint (`group`)
//! plus the exception types and the messages with their variable parts
//! (numbers, hex, ids) normalised (see [`fold_key`]), so two errors that
//! share a fingerprint but say different things are never folded into one
//! another's count.
//!
//! Within a window (60 s by default) the first `burst` reports of a fold key
//! (10 by default) are sent as they come, `count` 1 each, and later ones are
//! only counted. When the window ends (or on `flush` or shutdown) one report
//! goes out for those: a copy of the window's first with a new id, the time
//! the window closed, and `count` = the repeats. Of `n` repeats, that report
//! stands for one and the other `n - 1` are counted in `Stats::aggregated`,
//! so every capture ends in exactly one counter.
//!
//! Repeats are recognised twice over. On the caller's thread, before
//! anything is queued, by raw key (kind, exception types, messages
//! normalised as above, a message capture's text as it is, and the stack's
//! addresses; within one process, one raw key yields one fold key):
//! the first capture of a key claims a slot and is queued, the next
//! `burst - 1` pass through the slot and are queued as well, and later ones
//! add one to the slot with a compare-and-swap and go no further. That keeps
//! a storm's cost on the caller's thread to the stack walk, and off the queue
//! and the worker, even while the worker is still busy with the first
//! report. On the worker, by fold key, after processing: repeats that took
//! the normal path (another call site with the same fold key, a slot taken
//! by another key) are folded there once the window's burst is used up. The
//! worker adopts a slot when it receives the capture that claimed it, and
//! frees it when the window closes, adding what it absorbed (its count
//! beyond the captures that passed through) to the window's repeats.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::report::{ExceptionInfo, Kind, Report, ReportId};

/// Fold keys tracked at once (each keeps a copy of its first report);
/// beyond it the oldest window closes early.
pub(crate) const MAX_GROUPS: usize = 256;
/// Raw keys remembered for folding repeats without processing them.
const MAX_RAW_KEYS: usize = 4096;
/// Caller-side slots; a raw key maps to one by its low bits.
const SLOTS: usize = 256;
const COUNT_MASK: u64 = u32::MAX as u64;
/// All-hex words this long are ids even without a digit (`deadbeefcafe`).
const MIN_HEX_LETTERS_ID: usize = 8;
const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

/// A process-local hash (keys are never stored or compared across runs),
/// fed eight bytes at a time: cheaper on the caller's thread than a
/// byte-at-a-time hash.
#[derive(Clone, Copy)]
struct Mix(u64);

impl Mix {
    fn new(seed: u64) -> Self {
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
    fn normalized(mut self, text: &str) -> Self {
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

/// The raw key of a capture, computed on the caller's thread.
pub(crate) fn raw_key(
    kind: Kind,
    message: &str,
    exceptions: &[ExceptionInfo],
    addresses: &[usize],
) -> u64 {
    let mut h = Mix::new(kind as u64);
    // A message's text is its fingerprint (unless a custom one replaces
    // it, and then there is no raw key): folding two texts under one raw key
    // would fold two fingerprints.
    h = match kind {
        Kind::Message => h.bytes(message.as_bytes()),
        Kind::Error | Kind::Panic => h.normalized(message),
    };
    for e in exceptions {
        h = h.bytes(e.ty.as_bytes());
        // The outer error's text usually is the message: hashed once.
        if e.message != message {
            h = h.normalized(&e.message);
        }
    }
    let mut key = h.0;
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
    let mut h = Mix::new(kind as u64);
    h = match kind {
        Kind::Message => h.bytes(message.as_bytes()),
        Kind::Error | Kind::Panic => h.normalized(message),
    };
    for e in exceptions {
        h = h.bytes(e.ty.as_bytes());
        if e.message != message {
            h = h.normalized(&e.message);
        }
    }
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

/// The caller-side fast path: per slot, a 32-bit tag of the raw key that
/// claimed it (never zero) and a 32-bit count of the captures that came
/// after the claim: the first `passes` of them went to the worker, the rest
/// were absorbed.
pub(crate) struct Slots {
    slots: [AtomicU64; SLOTS],
    passes: u64,
}

/// The slot (from the key's low 8 bits) and the tag (from the other 56).
fn slot_of(key: u64) -> (usize, u64) {
    let tag = ((key >> 32) ^ ((key >> 8) & u64::from(u32::MAX >> 8))) | (1 << 31);
    ((key as usize) % SLOTS, tag)
}

/// What a capture found in its slot.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// Its key's first capture: it claimed the slot, and goes to the worker.
    Claimed,
    /// One of the burst after the first: counted in the slot as passed, and
    /// goes to the worker on the normal path.
    Passed,
    /// A repeat beyond the burst: counted in the slot, nothing more to do.
    Absorbed,
    /// Another key holds the slot (or its count is full): the normal path.
    Busy,
}

impl Slots {
    /// `burst`: the captures of a key per window that go to the worker
    /// (0 counts as 1: the first always does).
    pub(crate) fn new(burst: u32) -> Self {
        Slots {
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
            passes: u64::from(burst.max(1) - 1),
        }
    }

    pub(crate) fn enter(&self, key: u64) -> Entry {
        let (index, tag) = slot_of(key);
        let slot = &self.slots[index];
        let mut value = slot.load(Ordering::Relaxed);
        loop {
            let next = if value == 0 {
                tag << 32
            } else if value >> 32 == tag && value & COUNT_MASK != COUNT_MASK {
                value + 1
            } else {
                return Entry::Busy;
            };
            match slot.compare_exchange_weak(value, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) if value == 0 => return Entry::Claimed,
                Ok(_) if value & COUNT_MASK < self.passes => return Entry::Passed,
                Ok(_) => return Entry::Absorbed,
                Err(now) => value = now,
            }
        }
    }

    /// The repeats a slot's count stands for: those that did not pass through.
    fn absorbed(&self, value: u64) -> u64 {
        (value & COUNT_MASK).saturating_sub(self.passes)
    }

    /// Frees the key's slot, returning the repeats it absorbed.
    pub(crate) fn release(&self, key: u64) -> u64 {
        let (index, tag) = slot_of(key);
        let slot = &self.slots[index];
        let mut value = slot.load(Ordering::Acquire);
        loop {
            if value >> 32 != tag {
                return 0;
            }
            match slot.compare_exchange_weak(value, 0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return self.absorbed(value),
                Err(now) => value = now,
            }
        }
    }

    /// Frees every slot, returning the repeats they absorbed (at shutdown).
    pub(crate) fn sweep(&self) -> u64 {
        self.slots
            .iter()
            .map(|slot| self.absorbed(slot.swap(0, Ordering::AcqRel)))
            .sum()
    }
}

struct Group {
    window_end: Instant,
    /// The window's first report, copied for the report that closes it.
    first: Report,
    /// Reports of the window offered to be sent on their own (the first included).
    sent: u32,
    /// Repeats that reached the worker, still held in the ledger (in memory).
    held: u64,
    /// One repeat's spool file (a panic's), kept so that a repeat survives
    /// the process dying before the window closes; held in the ledger on disk.
    held_file: Option<PathBuf>,
    /// Raw keys whose slots this group adopted.
    slots: Vec<u64>,
}

impl Group {
    /// Holds a repeat until the window closes; returns its spool file when
    /// the window does not need it (it keeps one repeat's).
    fn hold(&mut self, spool_file: Option<PathBuf>) -> Option<PathBuf> {
        match spool_file {
            Some(path) if self.held_file.is_none() => {
                self.held_file = Some(path);
                None
            }
            discard => {
                self.held += 1;
                discard
            }
        }
    }
}

/// The window a report to be sent on its own belongs to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    /// Its fold key.
    pub key: u64,
    /// Whether the report opened it (else it is one of its burst).
    pub opened: bool,
}

/// What became of an offered report.
pub(crate) enum Offer {
    /// To be sent now: the first of its window or one of its burst (`None`
    /// when nothing is aggregated).
    Send(Box<Report>, Option<PathBuf>, Option<Window>),
    /// A repeat, held in its window; `discard`: its spool file, no longer
    /// needed (the repeat is held in memory from now on).
    Folded { discard: Option<PathBuf> },
}

/// A closed window: its report (a copy of the first, carrying the count),
/// and the repeats it stands for.
pub(crate) struct Closed {
    pub report: Report,
    /// Repeats held in the ledger in memory.
    pub held: u64,
    /// A repeat held in the ledger with this spool file.
    pub held_file: Option<PathBuf>,
    /// Repeats counted in slots, never in the ledger.
    pub absorbed: u64,
}

/// The worker's side of aggregation.
pub(crate) struct Aggregator {
    window: Duration,
    /// Reports of a window sent on their own, at least 1.
    burst: u32,
    groups: HashMap<u64, Group>,
    /// Raw key to fold key.
    raw: HashMap<u64, u64>,
    slots: Arc<Slots>,
    ready: Vec<Closed>,
}

impl Aggregator {
    pub(crate) fn new(window: Duration, burst: u32, slots: Arc<Slots>) -> Self {
        Aggregator {
            window,
            burst: burst.max(1),
            groups: HashMap::new(),
            raw: HashMap::new(),
            slots,
            ready: Vec::new(),
        }
    }

    /// Folds a repeat known by its raw key, without processing it; `false`
    /// when it must be processed (unknown key, its window is over, or its
    /// window's burst is not used up yet).
    pub(crate) fn fold_raw(&mut self, key: u64, now: Instant) -> bool {
        let Some(group) = self
            .raw
            .get(&key)
            .and_then(|fold| self.groups.get_mut(fold))
        else {
            return false;
        };
        if now >= group.window_end || group.sent < self.burst {
            return false;
        }
        group.held += 1;
        true
    }

    /// `claimed`: the capture claimed its raw key's slot, which its group adopts.
    pub(crate) fn offer(
        &mut self,
        report: Report,
        spool_file: Option<PathBuf>,
        raw_key: Option<u64>,
        claimed: bool,
        now: Instant,
    ) -> Offer {
        if self.window.is_zero() {
            return Offer::Send(Box::new(report), spool_file, None);
        }
        let fold = fold_key(&report);
        if let Some(key) = raw_key {
            if self.raw.len() >= MAX_RAW_KEYS && !self.raw.contains_key(&key) {
                self.raw.clear();
            }
            self.raw.insert(key, fold);
        }
        if self.groups.get(&fold).is_some_and(|g| now >= g.window_end) {
            self.close(fold);
        }
        let adopted = match raw_key {
            Some(key) if claimed => vec![key],
            _ => Vec::new(),
        };
        match self.groups.get_mut(&fold) {
            Some(group) => {
                // A slot is claimed by one capture at a time: a group holds
                // each at most once, so at most all 256.
                group.slots.extend(adopted);
                if group.sent < self.burst {
                    group.sent += 1;
                    let window = Window {
                        key: fold,
                        opened: false,
                    };
                    return Offer::Send(Box::new(report), spool_file, Some(window));
                }
                Offer::Folded {
                    discard: group.hold(spool_file),
                }
            }
            None => {
                if self.groups.len() >= MAX_GROUPS {
                    let oldest = self
                        .groups
                        .iter()
                        .min_by_key(|(_, g)| g.window_end)
                        .map(|(k, _)| *k);
                    if let Some(oldest) = oldest {
                        self.close(oldest);
                    }
                }
                self.groups.insert(
                    fold,
                    Group {
                        window_end: crate::client::deadline_after_from(now, self.window),
                        first: report.clone(),
                        sent: 1,
                        held: 0,
                        held_file: None,
                        slots: adopted,
                    },
                );
                let window = Window {
                    key: fold,
                    opened: true,
                };
                Offer::Send(Box::new(report), spool_file, Some(window))
            }
        }
    }

    /// Holds a report of the window `key`'s burst that is not sent after all
    /// (over the rate limit) as one of its repeats: `Ok(discard)` as in
    /// [`Offer::Folded`], or the spool file back when the window is gone.
    pub(crate) fn hold(
        &mut self,
        key: u64,
        spool_file: Option<PathBuf>,
    ) -> Result<Option<PathBuf>, Option<PathBuf>> {
        match self.groups.get_mut(&key) {
            Some(group) => Ok(group.hold(spool_file)),
            None => Err(spool_file),
        }
    }

    /// Closes a window: its repeats (if any) become one report.
    fn close(&mut self, fold: u64) {
        let Some(group) = self.groups.remove(&fold) else {
            return;
        };
        let absorbed = self.release_slots(&group);
        let repeats = group.held + u64::from(group.held_file.is_some()) + absorbed;
        if repeats == 0 {
            return;
        }
        let mut report = group.first;
        report.id = ReportId::random();
        report.count = repeats;
        report.timestamp = crate::time::rfc3339_millis(std::time::SystemTime::now());
        self.ready.push(Closed {
            report,
            held: group.held,
            held_file: group.held_file,
            absorbed,
        });
    }

    /// Drops the window `key` that a report just opened, when that report
    /// went no further (the rate limit); returns the repeats its slots
    /// absorbed meanwhile (none reached the worker yet).
    pub(crate) fn forget(&mut self, key: u64) -> u64 {
        let Some(group) = self.groups.remove(&key) else {
            return 0;
        };
        self.release_slots(&group)
    }

    /// Frees a group's slots, returning the repeats they absorbed.
    fn release_slots(&self, group: &Group) -> u64 {
        group.slots.iter().map(|&k| self.slots.release(k)).sum()
    }

    /// Closes the windows that have ended.
    pub(crate) fn close_due(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .groups
            .iter()
            .filter(|(_, g)| now >= g.window_end)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            self.close(key);
        }
    }

    /// Closes every window (flush and shutdown).
    pub(crate) fn close_all(&mut self) {
        let all: Vec<u64> = self.groups.keys().copied().collect();
        for key in all {
            self.close(key);
        }
    }

    /// When the next window ends.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.groups.values().map(|g| g.window_end).min()
    }

    /// Frees a slot the worker will not adopt, returning its repeats.
    pub(crate) fn release(&self, key: u64) -> u64 {
        self.slots.release(key)
    }

    /// The windows that closed, oldest first.
    pub(crate) fn take_ready(&mut self) -> Vec<Closed> {
        std::mem::take(&mut self.ready)
    }
}

/// The client-side rate limit: a token bucket holding a minute's worth.
pub(crate) struct RateLimiter {
    per_minute: u32,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// `per_minute == 0`: no limit.
    pub(crate) fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute,
            tokens: f64::from(per_minute),
            last: Instant::now(),
        }
    }

    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        let cap = f64::from(self.per_minute);
        self.tokens = (self.tokens + elapsed * cap / 60.0).min(cap);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(group: &str) -> Report {
        let mut r = Report::sample("x");
        r.group = group.to_owned();
        r
    }

    fn error(group: &str, message: &str) -> Report {
        let mut r = report(group);
        r.kind = Kind::Error;
        r.message = message.to_owned();
        r.exceptions = vec![ExceptionInfo {
            ty: "std::io::Error".into(),
            message: message.to_owned(),
        }];
        r
    }

    fn norm(text: &str) -> u64 {
        Mix::new(0).normalized(text).0
    }

    fn sent(offer: Offer) -> Window {
        match offer {
            Offer::Send(_, _, Some(window)) => window,
            Offer::Send(_, _, None) => panic!("sent outside any window"),
            Offer::Folded { .. } => panic!("folded, not sent"),
        }
    }

    #[test]
    fn variable_parts_of_messages_are_set_aside() {
        let same = [
            ("burst error 17", "burst error 18"),
            ("bad pointer 0x1f", "bad pointer 0xDEADBEEF"),
            (
                "object deadbeefcafebabe missing",
                "object 0123456789abcdef missing",
            ),
            ("user42 denied", "user7 denied"),
            ("took 1.25 s", "took 30.5 s"),
            ("Größe 12 überschritten", "Größe 13 überschritten"),
            (
                "request 550e8400-e29b-41d4-a716-446655440000 failed",
                "request 6fa459ea-ee8a-3ca4-894e-db77e160355e failed",
            ),
            (
                // All-letter groups inside a UUID are part of it.
                "request 550e8400-abcd-41d4-beef-446655440000 failed",
                "request 6fa459ea-ee8a-3ca4-894e-db77e160355e failed",
            ),
        ];
        for (a, b) in same {
            assert_eq!(norm(a), norm(b), "{a:?} and {b:?}");
        }
        let different = [
            (
                "Permission denied (os error 13)",
                "No space left on device (os error 28)",
            ),
            ("disk full", "disk empty"),
            ("facade failed", "decade failed"),
            ("a 1", "a 1 b"),
            ("1 a", "a 1"),
            ("12", ""),
            ("x-1", "x-"),
        ];
        for (a, b) in different {
            assert_ne!(norm(a), norm(b), "{a:?} and {b:?}");
        }
    }

    #[test]
    fn fold_keys_split_what_the_fingerprint_merges() {
        let group = "00000000000000aa";
        let key = |r: Report| fold_key(&r);
        assert_eq!(
            key(error(group, "burst error 17")),
            key(error(group, "burst error 18"))
        );
        assert_ne!(
            key(error(group, "Permission denied (os error 13)")),
            key(error(group, "No space left on device (os error 28)"))
        );
        let mut other_type = error(group, "burst error 17");
        other_type.exceptions[0].ty = "app::Error".into();
        assert_ne!(key(other_type), key(error(group, "burst error 17")));
        assert_ne!(
            key(error(group, "burst error 17")),
            key(error("00000000000000bb", "burst error 17"))
        );
    }

    #[test]
    fn raw_keys_differ_by_stack_type_and_message_but_not_by_its_numbers() {
        let io = |message: &str| {
            vec![ExceptionInfo {
                ty: "io".into(),
                message: message.into(),
            }]
        };
        let key = |message: &str, exceptions: &[ExceptionInfo], addresses: &[usize]| {
            raw_key(Kind::Error, message, exceptions, addresses)
        };
        let a = key("retry 1 failed", &io("retry 1 failed"), &[1, 2, 3]);
        assert_eq!(a, key("retry 2 failed", &io("retry 2 failed"), &[1, 2, 3]));
        assert_ne!(a, key("other text", &io("other text"), &[1, 2, 3]));
        assert_ne!(a, key("retry 1 failed", &io("retry 1 failed"), &[1, 2, 4]));
        assert_ne!(a, key("retry 1 failed", &[], &[1, 2, 3]));
        // A message's text is its fingerprint: kept as it is.
        assert_ne!(
            raw_key(Kind::Message, "disk at 91%", &[], &[1]),
            raw_key(Kind::Message, "disk at 92%", &[], &[1])
        );
        let panic = |message: &str| raw_key(Kind::Panic, message, &io(message), &[1]);
        assert_ne!(
            panic("index 3 out of range"),
            panic("called unwrap on None")
        );
        assert_eq!(panic("index 3 out of range"), panic("index 4 out of range"));
    }

    #[test]
    fn caller_slots_claim_absorb_and_release() {
        let slots = Slots::new(1);
        let key = 0x1234_5678_9abc_def0;
        assert_eq!(slots.enter(key), Entry::Claimed);
        assert_eq!(slots.enter(key), Entry::Absorbed);
        assert_eq!(slots.enter(key), Entry::Absorbed);
        // Same slot (low bits), another key: the normal path.
        assert_eq!(slots.enter(key ^ (1 << 40)), Entry::Busy);
        assert_eq!(slots.release(key ^ (1 << 40)), 0, "not its slot");
        assert_eq!(slots.release(key), 2);
        assert_eq!(slots.enter(key), Entry::Claimed);
        assert_eq!(slots.enter(key), Entry::Absorbed);
        assert_eq!(slots.sweep(), 1);
        assert_eq!(slots.enter(key), Entry::Claimed);
        assert_eq!(Slots::new(0).passes, 0, "0 is 1: only the first");
    }

    #[test]
    fn caller_slots_pass_the_burst_and_count_only_what_they_absorbed() {
        let slots = Slots::new(3);
        let key = 0x1234_5678_9abc_def0;
        assert_eq!(slots.enter(key), Entry::Claimed);
        assert_eq!(slots.enter(key), Entry::Passed);
        assert_eq!(slots.enter(key), Entry::Passed);
        for _ in 0..5 {
            assert_eq!(slots.enter(key), Entry::Absorbed);
        }
        assert_eq!(slots.release(key), 5, "the passed ones went to the worker");
        assert_eq!(slots.enter(key), Entry::Claimed);
        assert_eq!(slots.enter(key), Entry::Passed);
        assert_eq!(slots.release(key), 0, "closed inside the burst");
        assert_eq!(slots.enter(key), Entry::Claimed);
        for _ in 0..4 {
            slots.enter(key);
        }
        assert_eq!(slots.sweep(), 2);
    }

    /// A storm of one key with a burst of 3: the claim and two passes reach
    /// the worker and are sent, the rest is absorbed; another call site's
    /// captures are folded once the burst is used up. Every capture is
    /// either sent or in the closing report's count.
    #[test]
    fn a_burst_is_sent_and_only_what_follows_is_counted() {
        let slots = Arc::new(Slots::new(3));
        let mut agg = Aggregator::new(Duration::from_secs(60), 3, slots.clone());
        let now = Instant::now();
        let (key, other) = (0x1234_5678_9abc_def0, 0x0fed_cba9_8765_4321);
        let mut captures = 0;
        let mut queued = Vec::new();
        for _ in 0..10 {
            captures += 1;
            match slots.enter(key) {
                Entry::Claimed => queued.push(true),
                Entry::Passed => queued.push(false),
                Entry::Absorbed => {}
                Entry::Busy => panic!("the slot is free"),
            }
        }
        assert_eq!(queued, [true, false, false]);
        let mut individually = 0;
        let mut window = None;
        for claimed in queued {
            assert!(!agg.fold_raw(key, now), "inside the burst: processed");
            let w = sent(agg.offer(error("aa", "boom 1"), None, Some(key), claimed, now));
            assert_eq!(w.opened, window.is_none());
            window = Some(w.key);
            individually += 1;
        }
        // The burst is used up: another call site's captures are held.
        captures += 2;
        assert!(!agg.fold_raw(other, now), "unknown key: process it");
        assert!(matches!(
            agg.offer(error("aa", "boom 2"), None, Some(other), false, now),
            Offer::Folded { discard: None }
        ));
        assert!(agg.fold_raw(other, now));
        assert!(agg.fold_raw(key, now), "a late pass of a used-up burst");
        captures += 1;
        agg.close_all();
        let closed = agg.take_ready().pop().expect("closed");
        assert_eq!((closed.absorbed, closed.held), (7, 3));
        assert_eq!(individually + closed.report.count, captures);
        assert_eq!(closed.report.message, "boom 1", "a copy of the first");
        assert_eq!(slots.enter(key), Entry::Claimed, "closing frees the slot");
    }

    #[test]
    fn a_burst_report_over_the_rate_limit_is_held_for_the_count() {
        let mut agg = Aggregator::new(Duration::from_secs(60), 2, Arc::new(Slots::new(2)));
        let now = Instant::now();
        let first = sent(agg.offer(error("aa", "e 1"), None, None, false, now));
        let second = sent(agg.offer(error("aa", "e 2"), None, None, false, now));
        assert_eq!((first.opened, second.opened), (true, false));
        assert_eq!(first.key, second.key);
        assert_eq!(agg.hold(second.key, None), Ok(None));
        assert_eq!(agg.hold(12345, Some("f".into())), Err(Some("f".into())));
        agg.close_all();
        assert_eq!(agg.take_ready().pop().expect("closed").report.count, 1);
    }

    #[test]
    fn first_is_sent_repeats_counted_and_one_report_closes_the_window() {
        let slots = Arc::new(Slots::new(1));
        let mut agg = Aggregator::new(Duration::from_secs(60), 1, slots.clone());
        let now = Instant::now();
        let key = 0x1234_5678_9abc_def0;
        assert_eq!(slots.enter(key), Entry::Claimed);
        assert_eq!(slots.enter(key), Entry::Absorbed);
        let first = report("00000000000000aa");
        let first_id = first.id;
        assert!(sent(agg.offer(first, None, Some(key), true, now)).opened);
        assert_eq!(slots.enter(key), Entry::Absorbed);
        // Another call site with the same fingerprint, folded by raw key.
        let other = 0x0fed_cba9_8765_4321;
        assert!(!agg.fold_raw(other, now), "unknown key: process it");
        assert!(matches!(
            agg.offer(report("00000000000000aa"), None, Some(other), false, now),
            Offer::Folded { discard: None }
        ));
        assert!(agg.fold_raw(other, now));
        assert!(sent(agg.offer(report("00000000000000bb"), None, None, false, now)).opened);
        assert_eq!(agg.next_deadline(), Some(now + Duration::from_secs(60)));
        agg.close_due(now + Duration::from_secs(59));
        assert!(agg.take_ready().is_empty());
        agg.close_due(now + Duration::from_secs(60));
        let ready = agg.take_ready();
        assert_eq!(
            ready.len(),
            1,
            "bb had no repeats: nothing to close it with"
        );
        // two absorbed by the slot + one folded by fingerprint + one by raw key
        assert_eq!(ready[0].report.count, 4);
        assert_ne!(ready[0].report.id, first_id);
        // Two absorbed in the slot, two held (folded on the worker).
        assert_eq!((ready[0].absorbed, ready[0].held), (2, 2));
        assert_eq!(slots.enter(key), Entry::Claimed, "closing frees the slot");
        let later = now + Duration::from_secs(61);
        assert!(sent(agg.offer(report("00000000000000aa"), None, Some(key), true, later)).opened);
    }

    #[test]
    fn a_window_keeps_one_repeats_spool_file_and_lets_the_others_go() {
        let mut agg = Aggregator::new(Duration::from_secs(60), 1, Arc::new(Slots::new(1)));
        let now = Instant::now();
        let file = |n: &str| Some(PathBuf::from(n));
        assert!(matches!(
            agg.offer(report("00000000000000aa"), file("a"), None, false, now),
            Offer::Send(_, Some(_), Some(_))
        ));
        assert!(matches!(
            agg.offer(report("00000000000000aa"), file("b"), None, false, now),
            Offer::Folded { discard: None }
        ));
        match agg.offer(report("00000000000000aa"), file("c"), None, false, now) {
            Offer::Folded {
                discard: Some(path),
            } => assert_eq!(path, PathBuf::from("c")),
            _ => panic!("a second file is not needed"),
        }
        agg.close_all();
        let closed = agg.take_ready().pop().expect("closed");
        assert_eq!(closed.held_file, file("b"));
        assert_eq!((closed.held, closed.report.count), (1, 2));
    }

    #[test]
    fn a_forgotten_window_returns_what_its_slots_absorbed() {
        let slots = Arc::new(Slots::new(2));
        let mut agg = Aggregator::new(Duration::from_secs(60), 2, slots.clone());
        let key = 42 << 8;
        assert_eq!(slots.enter(key), Entry::Claimed);
        assert_eq!(slots.enter(key), Entry::Passed);
        assert_eq!(slots.enter(key), Entry::Absorbed);
        let first = report("00000000000000cc");
        let window = sent(agg.offer(first, None, Some(key), true, Instant::now()));
        assert_eq!(agg.forget(window.key), 1, "the passed one is on its way");
        assert_eq!(agg.next_deadline(), None);
        assert_eq!(slots.enter(key), Entry::Claimed, "the slot is free again");
    }

    #[test]
    fn zero_window_sends_everything() {
        let mut agg = Aggregator::new(Duration::ZERO, 10, Arc::new(Slots::new(10)));
        for _ in 0..30 {
            assert!(matches!(
                agg.offer(
                    report("00000000000000aa"),
                    None,
                    Some(1),
                    false,
                    Instant::now()
                ),
                Offer::Send(_, _, None)
            ));
        }
    }

    #[test]
    fn groups_are_bounded_and_evicted_windows_still_report() {
        let mut agg = Aggregator::new(Duration::from_secs(60), 1, Arc::new(Slots::new(1)));
        let now = Instant::now();
        for i in 0..(MAX_GROUPS as u64 + 10) {
            let group = format!("{i:016x}");
            let at = now + Duration::from_millis(i);
            let _ = agg.offer(report(&group), None, None, false, at);
            let _ = agg.offer(report(&group), None, None, false, at);
        }
        assert!(agg.groups.len() <= MAX_GROUPS);
        assert_eq!(agg.take_ready().len(), 10);
        agg.close_all();
        assert_eq!(agg.take_ready().len(), MAX_GROUPS);
    }

    #[test]
    fn rate_limiter_allows_a_minute_then_refills() {
        let mut limiter = RateLimiter::new(60);
        let start = limiter.last;
        let allowed = (0..100).filter(|_| limiter.allow(start)).count();
        assert_eq!(allowed, 60);
        assert!(!limiter.allow(start + Duration::from_millis(500)));
        assert!(limiter.allow(start + Duration::from_millis(1100)));
        let mut unlimited = RateLimiter::new(0);
        assert!((0..10_000).all(|_| unlimited.allow(start)));
    }
}
