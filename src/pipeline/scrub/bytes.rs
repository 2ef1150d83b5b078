//! Byte-level helpers the rules share.
use super::*;

// --- Byte helpers -----------------------------------------------------------

/// Whether `hay[at..]` starts with `pat` (exactly).
pub(super) fn starts_with(hay: &[u8], at: usize, pat: &[u8]) -> bool {
    hay.get(at..).is_some_and(|rest| rest.starts_with(pat))
}

/// Whether `hay[at..]` starts with `pat`, ASCII case-insensitively.
pub(super) fn starts_with_ci(hay: &[u8], at: usize, pat: &[u8]) -> bool {
    hay.get(at..)
        .and_then(|rest| rest.get(..pat.len()))
        .is_some_and(|head| head.eq_ignore_ascii_case(pat))
}

pub(super) fn ends_with_ci(word: &[u8], suffix: &[u8]) -> bool {
    word.len() >= suffix.len() && word[word.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// The first occurrence of `needle` (a non-empty pattern) in `hay` at or
/// after `from`.
pub(super) fn find(hay: &[u8], needle: &memmem::Finder<'_>, from: usize) -> Option<usize> {
    Some(from + needle.find(hay.get(from..)?)?)
}

/// The first `byte` in `hay` at or after `from`.
pub(super) fn find_byte(hay: &[u8], byte: u8, from: usize) -> Option<usize> {
    Some(from + memchr(byte, hay.get(from..)?)?)
}

/// The end of the run of bytes matching `pred` starting at `from`.
pub(super) fn run_end(b: &[u8], from: usize, pred: impl Fn(u8) -> bool) -> usize {
    let mut i = from;
    while i < b.len() && pred(b[i]) {
        i += 1;
    }
    i
}

pub(super) fn is_key_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

/// RFC 6750 `b64token` bytes (without the `=` padding).
pub(super) fn is_token_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

pub(super) fn is_base64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// Where a bare `key=value` value ends.
pub(super) fn is_value_end(c: u8) -> bool {
    c.is_ascii_whitespace() || matches!(c, b'&' | b',' | b';' | b'"' | b'\'' | b')' | b'}' | b']')
}
