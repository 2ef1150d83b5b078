//! Finding the value of a `key=value` pair.
use super::*;

// --- Rule 6 helpers: values of key=value pairs ------------------------------

/// The range to redact for a value starting at `v` (after the separator and
/// its spaces), if it qualifies (see rule 6 in the module docs).
pub(super) fn value_span(
    b: &[u8],
    mut v: usize,
    loose: bool,
    line_mode: bool,
) -> Option<(usize, usize)> {
    if starts_with(b, v, b"Some(") {
        v += 5;
    }
    let (mut start, quoted_end) = match b.get(v).copied()? {
        b'{' | b'[' => return None,
        b'\\' if b.get(v + 1) == Some(&b'"') => (v + 2, find_escaped_quote_close(b, v + 2)),
        q @ (b'"' | b'\'') => (v + 1, find_quote_close(b, v + 1, q)),
        _ => (v, None),
    };
    let limit = quoted_end.unwrap_or(b.len());
    let mut strict = !loose || quoted_end.is_some();
    if let Some((after, forces)) = skip_auth_scheme(b, start, limit) {
        start = after;
        strict |= forces;
    }
    if starts_with(b, start, REDACTED.as_bytes()) {
        return None;
    }
    let mut end = match quoted_end {
        Some(end) => end,
        None if line_mode => {
            let mut e = run_end(b, start, |c| !matches!(c, b'\n' | b'\r' | b'"' | b'\''));
            while e > start && matches!(b[e - 1], b' ' | b'\t') {
                e -= 1;
            }
            e
        }
        None => bare_value_end(b, start),
    };
    if end <= start {
        return None;
    }
    let value = &b[start..end];
    if quoted_end.is_none() && (value == b"null" || value == b"None") {
        return None;
    }
    if !strict {
        while end > start && matches!(b[end - 1], b'.' | b'!' | b'?' | b':') {
            end -= 1;
        }
        if !looks_machine_made(&b[start..end]) {
            return None;
        }
    }
    Some((start, end))
}

/// After `Bearer `, `Basic ` or `Token ` (any case) with a credential
/// following before `limit`: where the credential starts, and whether the
/// scheme proves it is one (`Token` alone does not: "token expired").
pub(super) fn skip_auth_scheme(b: &[u8], at: usize, limit: usize) -> Option<(usize, bool)> {
    for (scheme, forces) in [
        (&b"bearer"[..], true),
        (&b"basic"[..], true),
        (&b"token"[..], false),
    ] {
        if !starts_with_ci(b, at, scheme) {
            continue;
        }
        let after = at + scheme.len();
        let credential = run_end(b, after, |c| c == b' ' || c == b'\t');
        if credential > after && credential < limit && !is_value_end(b[credential]) {
            return Some((credential, forces));
        }
        return None;
    }
    None
}

/// Where a bare value starting at `start` ends: at a value end byte, or at
/// a backslash escaping a quote (`{\"token\":12\"…`: escaped JSON), so that
/// redacting never separates an escape from its quote.
pub(super) fn bare_value_end(b: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < b.len() && !is_value_end(b[i]) {
        if b[i] == b'\\' && matches!(b.get(i + 1), Some(b'"' | b'\'')) {
            break;
        }
        i += 1;
    }
    i
}

/// The closing `q` of a quoted value whose content starts at `from`, on the
/// same line, skipping backslash escapes.
pub(super) fn find_quote_close(b: &[u8], from: usize, q: u8) -> Option<usize> {
    let mut i = from;
    while let Some(at) = memchr3(b'\\', b'\n', q, b.get(i..)?) {
        i += at;
        match b[i] {
            b'\\' => i += 2,
            b'\n' => return None,
            _ => return Some(i),
        }
    }
    None
}

/// The closing `\"` of an escaped-JSON string value, on the same line.
pub(super) fn find_escaped_quote_close(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(at) = memchr2(b'\\', b'\n', b.get(i..)?) {
        i += at;
        match b[i] {
            b'\\' if b.get(i + 1) == Some(&b'"') => return Some(i),
            b'\n' => return None,
            _ => i += 1,
        }
    }
    None
}

/// Whether a loose value is more than a word of prose: a digit or an ASCII
/// symbol in it, or at least 20 ASCII bytes.
pub(super) fn looks_machine_made(v: &[u8]) -> bool {
    !v.is_empty()
        && (v.iter().any(|c| c.is_ascii() && !c.is_ascii_alphabetic())
            || (v.len() >= 20 && v.is_ascii()))
}
