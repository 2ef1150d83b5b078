//! Which keys name secrets: the built-in words, pairs and suffixes, and
//! how a key is split into words.
use super::*;

/// Head words that make a key secret.
pub(super) const SECRET_WORDS: &[&[u8]] = &[
    b"password",
    b"passwords",
    b"passwd",
    b"passphrase",
    b"passcode",
    b"secret",
    b"secrets",
    b"token",
    b"auth",
    b"authorization",
    b"cookie",
    b"cookies",
    b"session",
    b"sessionid",
    b"sessid",
    b"credential",
    b"credentials",
    b"apikey",
    b"privatekey",
    b"jwt",
    b"bearer",
];

/// Last-two-word pairs that make a key secret.
pub(super) const SECRET_PAIRS: &[(&[u8], &[u8])] = &[
    (b"api", b"key"),
    (b"private", b"key"),
    (b"secret", b"key"),
    (b"access", b"key"),
    (b"auth", b"key"),
    (b"session", b"key"),
    (b"session", b"id"),
    (b"signing", b"key"),
    (b"encryption", b"key"),
];

/// Endings of a one-word last word (`csrftoken`) that make a key secret.
pub(super) const SECRET_SUFFIXES: &[&[u8]] = &[
    b"token",
    b"password",
    b"passwd",
    b"passphrase",
    b"secret",
    b"secretkey",
    b"apikey",
    b"privatekey",
    b"credential",
    b"credentials",
    b"sessionid",
    b"sessid",
    b"cookie",
];

/// The built-in key rules, given the last two words and the word count.
pub(super) fn builtin_secret(prev: Option<&[u8]>, last: &[u8], count: usize) -> bool {
    if SECRET_WORDS.iter().any(|w| last.eq_ignore_ascii_case(w)) {
        return true;
    }
    if count >= 2 && last.eq_ignore_ascii_case(b"pwd") {
        return true;
    }
    if let Some(prev) = prev {
        if SECRET_PAIRS
            .iter()
            .any(|(p, l)| prev.eq_ignore_ascii_case(p) && last.eq_ignore_ascii_case(l))
        {
            return true;
        }
    }
    last.iter().all(u8::is_ascii_alphabetic)
        && SECRET_SUFFIXES.iter().any(|s| ends_with_ci(last, s))
}

/// Whether a key names a cookie header (its bare value runs to the line end).
pub(super) fn is_cookie_header(key: &str) -> bool {
    Words::new(key.as_bytes())
        .last()
        .is_some_and(|w| w.eq_ignore_ascii_case(b"cookie") || w.eq_ignore_ascii_case(b"cookies"))
}

/// A key's normalized form: its words, ASCII-lowercased, joined.
pub(super) fn normalize_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for word in Words::new(key.as_bytes()) {
        // Words are cut next to ASCII bytes, so they are whole UTF-8.
        out.push_str(&String::from_utf8_lossy(word));
    }
    out.make_ascii_lowercase();
    out
}

/// Whether the normalized form of `key` ends with `extra` (already
/// normalized, non-empty) at a word boundary. Allocation-free.
pub(super) fn ends_with_words(key: &[u8], extra: &[u8]) -> bool {
    let total: usize = Words::new(key).map(<[u8]>::len).sum();
    let Some(cut) = total.checked_sub(extra.len()) else {
        return false;
    };
    let mut offset = 0;
    let mut at_boundary = false;
    for word in Words::new(key) {
        if offset == cut {
            at_boundary = true;
        }
        for &c in word {
            if offset >= cut && c.to_ascii_lowercase() != extra[offset - cut] {
                return false;
            }
            offset += 1;
        }
    }
    at_boundary
}

/// The words of a key, as byte slices: split at ASCII non-alphanumeric
/// bytes and at camelCase boundaries. Non-ASCII bytes belong to words.
pub(super) struct Words<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Words<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Words { bytes, pos: 0 }
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let b = self.bytes;
        let mut i = self.pos;
        while i < b.len() && is_word_separator(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            self.pos = i;
            return None;
        }
        let start = i;
        i += 1;
        while i < b.len() && !is_word_separator(b[i]) && !camel_boundary(b, i) {
            i += 1;
        }
        self.pos = i;
        Some(&b[start..i])
    }
}

pub(super) fn is_word_separator(c: u8) -> bool {
    c.is_ascii() && !c.is_ascii_alphanumeric()
}

/// A word starts at `i` (> 0): `aB`, `1B` (`oauth2Token`), or the last
/// capital of an acronym before a lowercase letter (`APIKey` → `API`, `Key`).
pub(super) fn camel_boundary(b: &[u8], i: usize) -> bool {
    let c = b[i];
    if !c.is_ascii_uppercase() {
        return false;
    }
    let p = b[i - 1];
    p.is_ascii_lowercase()
        || p.is_ascii_digit()
        || (p.is_ascii_uppercase() && b.get(i + 1).is_some_and(u8::is_ascii_lowercase))
}
