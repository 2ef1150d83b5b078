//! Secret scrubbing: values under secret-looking keys and credential-looking
//! substrings of free text are replaced by [`REDACTED`].
//!
//! Everything here is hand-written byte scanning (no regex; `memchr` finds
//! the bytes and substrings a rule starts from): each rule is a single
//! left-to-right pass, linear in the text, that only ever cuts the
//! text next to ASCII bytes (so never inside a multibyte character), and
//! that allocates nothing unless it finds something to redact. Every rule
//! leaves `[redacted]` alone, so scrubbing twice changes nothing the second
//! time.
//!
//! # Secret keys ([`Scrubber::is_secret_key`])
//!
//! A key is split into lowercase words at ASCII non-alphanumeric bytes
//! (`_ - . / :` space …) and at camelCase boundaries (`apiKey` → `api key`,
//! `APIKey` → `api key`, `XAuthToken` → `x auth token`). The key is secret
//! when its head noun, the **last** word, says so:
//!
//! - the last word is one of `password passwords passwd passphrase passcode
//!   secret secrets token auth authorization cookie cookies session sessionid
//!   sessid credential credentials apikey privatekey jwt bearer`, or it is
//!   `pwd` after another word (`mysql_pwd`; a bare `PWD` is the working
//!   directory): `db_password`, `DB.PASSWORD`, `clientSecret`, `X-Auth-Token`,
//!   `Set-Cookie`, `Authorization`, `session`, `credentials`;
//! - the last two words are `api key`, `private key`, `secret key`,
//!   `access key`, `auth key`, `session key`, `session id`, `signing key` or
//!   `encryption key`: `API-KEY`, `privateKey`, `aws_secret_access_key`,
//!   `sessionId`;
//! - the last word, written as one run of letters, ends with `token`,
//!   `password`, `passwd`, `passphrase`, `secret`, `secretkey`, `apikey`,
//!   `privatekey`, `credential(s)`, `sessionid`, `sessid` or `cookie`:
//!   `csrftoken`, `accesstoken`, `userpassword`, `PHPSESSID`, `JSESSIONID`.
//!
//! So a key whose last word is something else is not secret, even when a
//! secret word appears earlier: `token_count`, `tokens_used`, `max_tokens`
//! (plural `tokens` is a count), `session_count`, `password_min_length`,
//! `auth_method`, `token_type`, `cookie_consent`, `access_key_id`; nor are
//! words that merely start like one: `author`, `authority`, `secretary`,
//! `tokenizer`, `passenger`, `keyboard`, `monkey`, `primary_key`.
//!
//! Extra keys from the options are normalized the same way (words joined,
//! lowercased: `card_number` → `cardnumber`) and match a key whose
//! normalized form equals them or ends with them at a word boundary:
//! `card_number` matches `cardNumber` and `customer-card-number`, not
//! `card_numbers_count` nor `discardnumber`.
//!
//! # Credentials in text ([`Scrubber::scrub_text`])
//!
//! Applied in this order (self-contained shapes first, then the ones that
//! depend on context), the whole sequence repeated while it still changes
//! something (at most 4 times): a redaction can change what another rule
//! sees, e.g. a value redacted by rule 6 may have held the `/` that ended a
//! URL's authority for rule 2.
//!
//! 1. **PEM private keys**: from `-----BEGIN <label>-----` where the label
//!    contains `PRIVATE KEY` (RSA, EC, OPENSSH, ENCRYPTED, PGP … BLOCK)
//!    through the matching `-----END <label>-----`, or to the end of the
//!    text when it was cut before the END line. Certificates and public keys
//!    stay.
//! 2. **Passwords in URLs**: `scheme://user:password@host` →
//!    `scheme://user:[redacted]@host`. The authority ends at `/`,
//!    whitespace, a quote, `<`, `>`, a backslash or the end; the password
//!    runs from the first `:` to the last `@` in it (so `p@ss` is one
//!    password). No `:` before the `@` (`ssh://git@host`, emails): unchanged.
//! 3. **JWTs**: `eyJ…` + `.` + segment + `.` + segment, base64url segments
//!    of at least 4 bytes (the third may be empty when the second also
//!    starts with `eyJ`: an unsigned token), not glued to a preceding
//!    base64url byte → `[redacted]`.
//! 4. **AWS access key ids**: `AKIA`, `ASIA`, `ABIA` or `ACCA` plus exactly
//!    16 of `[A-Z0-9]`, with no ASCII alphanumeric byte on either side.
//! 5. **`Bearer` / `Basic` credentials**: the word (any case, kept as
//!    written), spaces or tabs, then a token of `[A-Za-z0-9-._~+/]` with
//!    optional `=` padding → `Bearer [redacted]`. So that prose survives
//!    ("bearer of bad news", "basic understanding", "Basic auth."), the
//!    token must look machine-made: at least 20 bytes, or at least 6 with a
//!    digit or one of `+ / =`, or at least 8 with mixed case inside
//!    (`dXNlcjpw`); and `=` padding must be followed by the end, whitespace
//!    or punctuation (`bearer auth_method=oauth` is a word and a
//!    `key=value` pair). Trailing dots of
//!    an unpadded token are taken as punctuation. Shorter or plainer tokens
//!    are still caught after a secret key by rule 6
//!    (`Authorization: Bearer abc`).
//! 6. **`key=value` / `key: value` pairs** whose key passes
//!    [`Scrubber::is_secret_key`]: the value becomes `[redacted]`.
//!    - The key is the run of `[A-Za-z0-9_.-]` (at most 64 bytes) before the
//!      `=` or `:`, optionally in quotes (`"password":`, `\"password\":` in
//!      escaped JSON, `'token':`) or brackets (`user[password]=`).
//!    - Not separators: `::` (Rust paths), `://`, `==`, `=>`, `!=`, `<=`,
//!      `>=`.
//!    - A value in quotes (`"…"`, `'…'`, `\"…\"`) is redacted up to the
//!      closing quote on the same line (backslash escapes honored), keeping
//!      the quotes. A bare value ends at whitespace, `& , ; " ' ) } ]`, a
//!      backslash-escaped quote (`\"`) or the end. For `Cookie:`/`Set-Cookie:` headers a bare value runs to
//!      the end of the line (a cookie header holds several pairs).
//!    - `Some(…)` (Rust `Debug` of an `Option`) is looked through. After an
//!      auth scheme (`Bearer `, `Basic `, `Token `) only the credential is
//!      redacted.
//!    - Left alone: an empty value (also `password= next=1`), `null`/`None`,
//!      and values starting with `{` or `[` (nested structures: their own
//!      keys are checked).
//!    - **Strict** forms are always redacted: no whitespace around the
//!      separator (`password=hunter2`, `session:abc`), a quoted key
//!      (`"password": "x"`, `"token": 123`), a quoted value
//!      (`password: "hunter"`), or a value after `Bearer`/`Basic`.
//!    - **Loose** forms (unquoted key, whitespace around the separator:
//!      `Password: hunter2`, `token = abc1`) read like prose ("Session:
//!      expired"), so the value (minus trailing `. ! ? :`) is only redacted
//!      when it looks machine-made: a digit or an ASCII symbol in it, or at
//!      least 20 ASCII bytes. `password: incorrect` stays.
//!
//! # JSON values ([`Scrubber::scrub_value`])
//!
//! Values under secret keys become the string `[redacted]` whatever their
//! type (numbers, booleans, arrays, objects), except that `null` stays
//! `null`; every other string, at any depth, goes through
//! [`Scrubber::scrub_text`]. Object keys themselves are not changed. The walk
//! uses an explicit stack, so deep values cannot overflow the thread's stack.
use memchr::{memchr, memchr2, memchr3, memmem};
use serde_json::Value;

/// The text secrets are replaced with.
pub(crate) const REDACTED: &str = "[redacted]";

/// Redacts secrets from keys, text and JSON values; immutable once built.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scrubber {
    /// Extra keys from the user (`Options::scrub_keys`), matched like the
    /// built-in ones. Stored normalized: words joined, ASCII-lowercased,
    /// empty ones dropped.
    extra_keys: Vec<String>,
}

impl Scrubber {
    /// A scrubber with the built-in rules plus `extra_keys`.
    pub(crate) fn new(extra_keys: &[String]) -> Scrubber {
        Scrubber {
            extra_keys: extra_keys
                .iter()
                .map(|k| normalize_key(k))
                .filter(|k| !k.is_empty())
                .collect(),
        }
    }

    /// Whether a map key names a secret (see the module docs for the rules).
    pub(crate) fn is_secret_key(&self, key: &str) -> bool {
        let bytes = key.as_bytes();
        let mut prev: Option<&[u8]> = None;
        let mut last: Option<&[u8]> = None;
        let mut count = 0usize;
        for word in Words::new(bytes) {
            prev = last;
            last = Some(word);
            count += 1;
        }
        let Some(last) = last else {
            return false;
        };
        builtin_secret(prev, last, count)
            || self
                .extra_keys
                .iter()
                .any(|extra| ends_with_words(bytes, extra.as_bytes()))
    }

    /// Redacts credential-looking substrings inside free text in place;
    /// returns true if anything changed.
    pub(crate) fn scrub_text(&self, text: &mut String) -> bool {
        let mut changed = false;
        // A redaction can change what another rule sees (a token that ran
        // into a now-redacted AWS key id ends earlier), so the rules run
        // again until nothing changes: almost always one round, or two when
        // something was redacted. The cap keeps the work linear.
        for _ in 0..MAX_ROUNDS {
            if !self.scrub_round(text) {
                break;
            }
            changed = true;
        }
        changed
    }

    /// One pass of every text rule, in order.
    fn scrub_round(&self, text: &mut String) -> bool {
        let mut changed = false;
        changed |= rewrite(text, scrub_pem_keys);
        changed |= rewrite(text, scrub_url_passwords);
        changed |= rewrite(text, scrub_jwts);
        changed |= rewrite(text, scrub_aws_key_ids);
        changed |= rewrite(text, scrub_auth_schemes);
        changed |= rewrite(text, |rw| self.scrub_pairs(rw));
        changed
    }

    /// Recursively: for JSON objects, values under secret keys become the
    /// string `[redacted]` (whatever their type; but a null stays null);
    /// every string anywhere is passed through [`Scrubber::scrub_text`].
    pub(crate) fn scrub_value(&self, value: &mut Value) -> bool {
        if let Value::String(s) = value {
            return self.scrub_text(s);
        }
        let mut changed = false;
        let mut stack: Vec<&mut Value> = vec![value];
        while let Some(value) = stack.pop() {
            match value {
                Value::String(s) => changed |= self.scrub_text(s),
                Value::Array(items) => stack.extend(items.iter_mut()),
                Value::Object(map) => {
                    for (key, child) in map.iter_mut() {
                        if self.is_secret_key(key) {
                            changed |= redact_value(child);
                        } else {
                            stack.push(child);
                        }
                    }
                }
                Value::Null | Value::Bool(_) | Value::Number(_) => {}
            }
        }
        changed
    }

    /// For a string map entry (tags): if the key is secret, the value becomes
    /// `[redacted]`, else it goes through [`Scrubber::scrub_text`].
    pub(crate) fn scrub_entry(&self, key: &str, value: &mut String) -> bool {
        if self.is_secret_key(key) {
            if value == REDACTED {
                return false;
            }
            REDACTED.clone_into(value);
            return true;
        }
        self.scrub_text(value)
    }

    /// Rule 6: `key=value` and `key: value` pairs with a secret key.
    fn scrub_pairs(&self, rw: &mut Rewriter<'_>) {
        let b = rw.src.as_bytes();
        let mut i = 0;
        while let Some(at) = memchr2(b'=', b':', &b[i.min(b.len())..]) {
            i += at;
            if let Some((start, end)) = self.pair_value_at(rw.src, i) {
                rw.replace(start, end, REDACTED);
                i = end.max(i + 1);
                continue;
            }
            i += 1;
        }
    }

    /// The byte range of the value to redact for the separator at `sep`, if
    /// the key before it is secret and the value qualifies.
    fn pair_value_at(&self, src: &str, sep: usize) -> Option<(usize, usize)> {
        let b = src.as_bytes();
        let c = b[sep];
        let prev = sep.checked_sub(1).map(|p| b[p]);
        let next = b.get(sep + 1).copied();
        if c == b':' && (prev == Some(b':') || matches!(next, Some(b':' | b'/'))) {
            return None; // `a::b`, `scheme://`
        }
        if c == b'='
            && (matches!(next, Some(b'=' | b'>'))
                || matches!(prev, Some(b'=' | b'!' | b'<' | b'>')))
        {
            return None; // `==`, `=>`, `!=`, `<=`, `>=`
        }

        // The key, read backwards: spaces, an optional closing quote or
        // bracket, then key bytes.
        let mut key_end = sep;
        while key_end > 0 && matches!(b[key_end - 1], b' ' | b'\t') {
            key_end -= 1;
        }
        let space_before = key_end < sep;
        let mut quote: &[u8] = b"";
        if key_end > 0 {
            match b[key_end - 1] {
                b'"' if key_end >= 2 && b[key_end - 2] == b'\\' => quote = b"\\\"",
                b'"' => quote = b"\"",
                b'\'' => quote = b"'",
                b']' => key_end -= 1,
                _ => {}
            }
            key_end -= quote.len();
        }
        let mut key_start = key_end;
        while key_start > 0 && is_key_byte(b[key_start - 1]) {
            key_start -= 1;
            if key_end - key_start > MAX_KEY {
                return None;
            }
        }
        if key_start == key_end {
            return None;
        }
        let quoted_key = !quote.is_empty()
            && key_start >= quote.len()
            && &b[key_start - quote.len()..key_start] == quote;
        let key = src.get(key_start..key_end)?;
        if !self.is_secret_key(key) {
            return None;
        }

        // The value.
        let mut v = sep + 1;
        while v < b.len() && matches!(b[v], b' ' | b'\t') {
            v += 1;
        }
        let space_after = v > sep + 1;
        if c == b'=' && space_after && !space_before {
            return None; // `password= next=…`: an empty value
        }
        let loose = !quoted_key && (space_before || space_after);
        let line_mode = c == b':' && is_cookie_header(key);
        value_span(b, v, loose, line_mode)
    }
}

/// How many times [`Scrubber::scrub_text`] runs its rules at most.
const MAX_ROUNDS: usize = 4;

/// Longest key (in bytes) rule 6 looks back for.
const MAX_KEY: usize = 64;

/// Head words that make a key secret.
const SECRET_WORDS: &[&[u8]] = &[
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
const SECRET_PAIRS: &[(&[u8], &[u8])] = &[
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
const SECRET_SUFFIXES: &[&[u8]] = &[
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
fn builtin_secret(prev: Option<&[u8]>, last: &[u8], count: usize) -> bool {
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
fn is_cookie_header(key: &str) -> bool {
    Words::new(key.as_bytes())
        .last()
        .is_some_and(|w| w.eq_ignore_ascii_case(b"cookie") || w.eq_ignore_ascii_case(b"cookies"))
}

/// A key's normalized form: its words, ASCII-lowercased, joined.
fn normalize_key(key: &str) -> String {
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
fn ends_with_words(key: &[u8], extra: &[u8]) -> bool {
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
struct Words<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Words<'a> {
    fn new(bytes: &'a [u8]) -> Self {
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

fn is_word_separator(c: u8) -> bool {
    c.is_ascii() && !c.is_ascii_alphanumeric()
}

/// A word starts at `i` (> 0): `aB`, `1B` (`oauth2Token`), or the last
/// capital of an acronym before a lowercase letter (`APIKey` → `API`, `Key`).
fn camel_boundary(b: &[u8], i: usize) -> bool {
    let c = b[i];
    if !c.is_ascii_uppercase() {
        return false;
    }
    let p = b[i - 1];
    p.is_ascii_lowercase()
        || p.is_ascii_digit()
        || (p.is_ascii_uppercase() && b.get(i + 1).is_some_and(u8::is_ascii_lowercase))
}

/// Replaces a value under a secret key; `null` and `[redacted]` stay.
fn redact_value(value: &mut Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) if s == REDACTED => false,
        _ => {
            *value = Value::String(REDACTED.to_owned());
            true
        }
    }
}

/// Builds the rewritten text lazily: nothing is allocated until the first
/// replacement. Replacements must come in increasing, non-overlapping order;
/// one that does not (or that would cut inside a character) is ignored, so
/// a scanner bug can leave a secret but never panic or garble the text.
struct Rewriter<'a> {
    src: &'a str,
    out: Option<String>,
    /// Bytes of `src` up to here are accounted for in `out`.
    done: usize,
}

impl<'a> Rewriter<'a> {
    fn new(src: &'a str) -> Self {
        Rewriter {
            src,
            out: None,
            done: 0,
        }
    }

    /// Replaces `src[start..end]` with `with`.
    fn replace(&mut self, start: usize, end: usize, with: &str) {
        if start < self.done
            || end < start
            || !self.src.is_char_boundary(start)
            || !self.src.is_char_boundary(end)
        {
            return;
        }
        let (Some(kept), Some(old)) = (self.src.get(self.done..start), self.src.get(start..end))
        else {
            return;
        };
        if old == with {
            return;
        }
        let capacity = self.src.len() + with.len();
        let out = self
            .out
            .get_or_insert_with(|| String::with_capacity(capacity));
        out.push_str(kept);
        out.push_str(with);
        self.done = end;
    }

    /// The rewritten text, or `None` when nothing was replaced.
    fn finish(self) -> Option<String> {
        let mut out = self.out?;
        out.push_str(self.src.get(self.done..).unwrap_or_default());
        Some(out)
    }
}

/// Runs one rule over `text`, replacing it when the rule changed something.
fn rewrite(text: &mut String, rule: impl FnOnce(&mut Rewriter<'_>)) -> bool {
    let mut rw = Rewriter::new(text);
    rule(&mut rw);
    match rw.finish() {
        Some(new) => {
            *text = new;
            true
        }
        None => false,
    }
}

// --- Byte helpers -----------------------------------------------------------

/// Whether `hay[at..]` starts with `pat` (exactly).
fn starts_with(hay: &[u8], at: usize, pat: &[u8]) -> bool {
    hay.get(at..).is_some_and(|rest| rest.starts_with(pat))
}

/// Whether `hay[at..]` starts with `pat`, ASCII case-insensitively.
fn starts_with_ci(hay: &[u8], at: usize, pat: &[u8]) -> bool {
    hay.get(at..)
        .and_then(|rest| rest.get(..pat.len()))
        .is_some_and(|head| head.eq_ignore_ascii_case(pat))
}

fn ends_with_ci(word: &[u8], suffix: &[u8]) -> bool {
    word.len() >= suffix.len() && word[word.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// The first occurrence of `needle` (a non-empty pattern) in `hay` at or
/// after `from`.
fn find(hay: &[u8], needle: &memmem::Finder<'_>, from: usize) -> Option<usize> {
    Some(from + needle.find(hay.get(from..)?)?)
}

/// The first `byte` in `hay` at or after `from`.
fn find_byte(hay: &[u8], byte: u8, from: usize) -> Option<usize> {
    Some(from + memchr(byte, hay.get(from..)?)?)
}

/// The end of the run of bytes matching `pred` starting at `from`.
fn run_end(b: &[u8], from: usize, pred: impl Fn(u8) -> bool) -> usize {
    let mut i = from;
    while i < b.len() && pred(b[i]) {
        i += 1;
    }
    i
}

fn is_key_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

/// RFC 6750 `b64token` bytes (without the `=` padding).
fn is_token_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

fn is_base64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// Where a bare `key=value` value ends.
fn is_value_end(c: u8) -> bool {
    c.is_ascii_whitespace() || matches!(c, b'&' | b',' | b';' | b'"' | b'\'' | b')' | b'}' | b']')
}

// --- Rule 1: PEM private keys -----------------------------------------------

fn scrub_pem_keys(rw: &mut Rewriter<'_>) {
    const BEGIN: &[u8] = b"-----BEGIN ";
    const DASHES: &[u8] = b"-----";
    let b = rw.src.as_bytes();
    let begin = memmem::Finder::new(BEGIN);
    let mut i = 0;
    while let Some(p) = find(b, &begin, i) {
        let label_start = p + BEGIN.len();
        let label_end = run_end(b, label_start, |c| {
            c.is_ascii_uppercase() || c.is_ascii_digit() || c == b' '
        });
        let plausible = b.get(label_start).is_some_and(u8::is_ascii_uppercase)
            && label_end - label_start <= 64
            && starts_with(b, label_end, DASHES);
        if !plausible {
            i = label_start;
            continue;
        }
        let label = &b[label_start..label_end];
        let header_end = label_end + DASHES.len();
        if memmem::find(label, b"PRIVATE KEY").is_none() {
            i = header_end;
            continue;
        }
        let end = pem_end(b, header_end, label).unwrap_or(b.len());
        rw.replace(p, end, REDACTED);
        i = end;
    }
}

/// The end of `-----END <label>-----` at or after `from`.
fn pem_end(b: &[u8], from: usize, label: &[u8]) -> Option<usize> {
    const END: &[u8] = b"-----END ";
    let end_line = memmem::Finder::new(END);
    let mut i = from;
    while let Some(p) = find(b, &end_line, i) {
        let l = p + END.len();
        if starts_with(b, l, label) && starts_with(b, l + label.len(), b"-----") {
            return Some(l + label.len() + 5);
        }
        i = p + 1;
    }
    None
}

// --- Rule 2: passwords in URLs ----------------------------------------------

fn scrub_url_passwords(rw: &mut Rewriter<'_>) {
    let b = rw.src.as_bytes();
    let separator = memmem::Finder::new(b"://");
    let mut i = 0;
    while let Some(p) = find(b, &separator, i) {
        let has_scheme =
            p > 0 && (b[p - 1].is_ascii_alphanumeric() || matches!(b[p - 1], b'+' | b'-' | b'.'));
        let authority = p + 3;
        let mut end = authority;
        let mut last_at = None;
        while end < b.len() && !is_authority_end(b[end]) {
            if b[end] == b'@' {
                last_at = Some(end);
            }
            end += 1;
        }
        if let (true, Some(at)) = (has_scheme, last_at) {
            if let Some(colon) = memchr(b':', &b[authority..at]) {
                let start = authority + colon + 1;
                if at > start && !starts_with(b, start, REDACTED.as_bytes()) {
                    rw.replace(start, at, REDACTED);
                }
            }
        }
        // The authority may end inside the next `://` (at its `/`).
        i = end.max(p + 3) - 1;
    }
}

fn is_authority_end(c: u8) -> bool {
    c.is_ascii_whitespace() || matches!(c, b'/' | b'"' | b'\'' | b'<' | b'>' | b'\\' | b'`')
}

// --- Rule 3: JWTs -----------------------------------------------------------

fn scrub_jwts(rw: &mut Rewriter<'_>) {
    let b = rw.src.as_bytes();
    let header = memmem::Finder::new(b"eyJ");
    let mut i = 0;
    while let Some(p) = find(b, &header, i) {
        if p > 0 && is_base64url(b[p - 1]) {
            i = p + 1;
            continue;
        }
        let s1_end = run_end(b, p, is_base64url);
        if s1_end - p < 4 || b.get(s1_end) != Some(&b'.') {
            i = s1_end.max(p + 1);
            continue;
        }
        let s2 = s1_end + 1;
        let s2_end = run_end(b, s2, is_base64url);
        if s2_end - s2 < 4 || b.get(s2_end) != Some(&b'.') {
            i = s2;
            continue;
        }
        let s3 = s2_end + 1;
        let s3_end = run_end(b, s3, is_base64url);
        let end = if s3_end - s3 >= 4 {
            s3_end
        } else if s3_end == s3 && starts_with(b, s2, b"eyJ") {
            s2_end // unsigned: the trailing dot stays (it may be punctuation)
        } else {
            i = s2;
            continue;
        };
        rw.replace(p, end, REDACTED);
        i = end;
    }
}

// --- Rule 4: AWS access key ids ---------------------------------------------

fn scrub_aws_key_ids(rw: &mut Rewriter<'_>) {
    const PREFIXES: [&[u8]; 4] = [b"AKIA", b"ASIA", b"ABIA", b"ACCA"];
    const LEN: usize = 20;
    let b = rw.src.as_bytes();
    let mut i = 0;
    while let Some(p) = find_byte(b, b'A', i) {
        i = p + 1;
        if p > 0 && b[p - 1].is_ascii_alphanumeric() {
            continue;
        }
        let Some(id) = b.get(p..p + LEN) else {
            break; // too close to the end for any id
        };
        if PREFIXES.iter().any(|pre| id.starts_with(pre))
            && id[4..]
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            && !b.get(p + LEN).is_some_and(u8::is_ascii_alphanumeric)
        {
            rw.replace(p, p + LEN, REDACTED);
            i = p + LEN;
        }
    }
}

// --- Rule 5: Bearer / Basic credentials -------------------------------------

fn scrub_auth_schemes(rw: &mut Rewriter<'_>) {
    let b = rw.src.as_bytes();
    let mut i = 0;
    while let Some(at) = memchr2(b'b', b'B', &b[i.min(b.len())..]) {
        i += at;
        if i > 0 && b[i - 1].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let word = if starts_with_ci(b, i, b"bearer") {
            6
        } else if starts_with_ci(b, i, b"basic") {
            5
        } else {
            i += 1;
            continue;
        };
        let token_start = run_end(b, i + word, |c| c == b' ' || c == b'\t');
        if token_start == i + word {
            i += word;
            continue;
        }
        match token_end(b, token_start) {
            Some(end) => {
                rw.replace(token_start, end, REDACTED);
                i = end;
            }
            None => i = token_start,
        }
    }
}

/// The end of a credential-looking token at `start` (see rule 5), if any.
fn token_end(b: &[u8], start: usize) -> Option<usize> {
    let run = run_end(b, start, is_token_byte);
    let mut end = run_end(b, run, |c| c == b'=');
    if end > run
        && b.get(end)
            .is_some_and(|&c| !is_value_end(c) && !matches!(c, b'.' | b':' | b'>'))
    {
        return None; // `bearer auth_method=oauth`: a key, not padding
    }
    if end == run {
        while end > start && b[end - 1] == b'.' {
            end -= 1;
        }
    }
    credential_like_token(&b[start..end]).then_some(end)
}

/// Whether a token after `Bearer`/`Basic` looks machine-made rather than
/// like a word of prose or an identifier (`auth_method`).
fn credential_like_token(t: &[u8]) -> bool {
    let digit = t.iter().any(u8::is_ascii_digit);
    let base64_symbol = t.iter().any(|c| matches!(c, b'+' | b'/' | b'='));
    let mixed_case =
        t.iter().skip(1).any(u8::is_ascii_uppercase) && t.iter().any(u8::is_ascii_lowercase);
    t.len() >= 20 || (t.len() >= 6 && (digit || base64_symbol)) || (t.len() >= 8 && mixed_case)
}

// --- Rule 6 helpers: values of key=value pairs ------------------------------

/// The range to redact for a value starting at `v` (after the separator and
/// its spaces), if it qualifies (see rule 6 in the module docs).
fn value_span(b: &[u8], mut v: usize, loose: bool, line_mode: bool) -> Option<(usize, usize)> {
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
fn skip_auth_scheme(b: &[u8], at: usize, limit: usize) -> Option<(usize, bool)> {
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
fn bare_value_end(b: &[u8], start: usize) -> usize {
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
fn find_quote_close(b: &[u8], from: usize, q: u8) -> Option<usize> {
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
fn find_escaped_quote_close(b: &[u8], from: usize) -> Option<usize> {
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
fn looks_machine_made(v: &[u8]) -> bool {
    !v.is_empty()
        && (v.iter().any(|c| c.is_ascii() && !c.is_ascii_alphabetic())
            || (v.len() >= 20 && v.is_ascii()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scrubber() -> Scrubber {
        Scrubber::default()
    }

    /// Scrubs a copy of `text`, asserting that a second scrub changes nothing.
    fn scrubbed(s: &Scrubber, text: &str) -> (String, bool) {
        let mut out = text.to_owned();
        let changed = s.scrub_text(&mut out);
        let mut again = out.clone();
        assert!(
            !s.scrub_text(&mut again),
            "second scrub changed {out:?} into {again:?}"
        );
        assert_eq!(again, out);
        (out, changed)
    }

    fn scrub(text: &str) -> String {
        scrubbed(&scrubber(), text).0
    }

    // --- Keys ---------------------------------------------------------------

    const SECRET_KEYS: &[&str] = &[
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "auth",
        "authorization",
        "cookie",
        "session",
        "credential",
        "private_key",
        "API-KEY",
        "apiKey",
        "ApiKey",
        "APIKey",
        "api key",
        "x-api-key",
        "X-API-KEY",
        "PRIVATE_KEY",
        "private-key",
        "privateKey",
        "X-Auth-Token",
        "X-CSRF-Token",
        "Set-Cookie",
        "Cookie",
        "Authorization",
        "Proxy-Authorization",
        "db_password",
        "DB.PASSWORD",
        "config/secret",
        "clientSecret",
        "client_secret",
        "accessToken",
        "access_token",
        "csrftoken",
        "accesstoken",
        "userpassword",
        "refreshToken",
        "github_token",
        "oauth2Token",
        "sessionid",
        "session_id",
        "sessionId",
        "sessionID",
        "PHPSESSID",
        "JSESSIONID",
        "credentials",
        "aws_secret_access_key",
        "AWS_ACCESS_KEY",
        "secret_key",
        "secretKey",
        "SECRETS",
        "passphrase",
        "ssh_passphrase",
        "passwords",
        "mysql_pwd",
        "MYSQL_PWD",
        "jwt",
        "id_jwt",
        "bearer",
        "signing_key",
        "encryptionKey",
        "user.password",
        "  password  ",
        "--password",
    ];

    const HARMLESS_KEYS: &[&str] = &[
        "token_count",
        "tokens_used",
        "max_tokens",
        "tokens",
        "session_count",
        "sessions",
        "sessions_active",
        "author",
        "authority",
        "author_id",
        "password_min_length",
        "secretary",
        "secretariat",
        "cookie_consent",
        "token_type",
        "token_expiry",
        "auth_method",
        "credential_type",
        "keyboard",
        "monkey",
        "key",
        "primary_key",
        "foreign_key",
        "access_key_id",
        "passenger",
        "passport",
        "tokenizer",
        "possession",
        "obsession",
        "pwd",
        "PWD",
        "username",
        "user",
        "email",
        "id",
        "path",
        "",
        "___",
        "-",
        "ключ",
        "пароль",
        "🎉",
    ];

    #[test]
    fn secret_keys_are_recognized() {
        let s = scrubber();
        for key in SECRET_KEYS {
            assert!(s.is_secret_key(key), "{key:?} should be secret");
        }
    }

    #[test]
    fn harmless_keys_are_not_secret() {
        let s = scrubber();
        for key in HARMLESS_KEYS {
            assert!(!s.is_secret_key(key), "{key:?} should not be secret");
        }
    }

    #[test]
    fn words_split_at_separators_and_camel_case() {
        let words = |k: &str| -> Vec<String> {
            Words::new(k.as_bytes())
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect()
        };
        assert_eq!(words("apiKey"), ["api", "Key"]);
        assert_eq!(words("APIKey"), ["API", "Key"]);
        assert_eq!(words("XAuthToken"), ["X", "Auth", "Token"]);
        assert_eq!(words("oauth2Token"), ["oauth2", "Token"]);
        assert_eq!(
            words("db.pass-word/x y_z"),
            ["db", "pass", "word", "x", "y", "z"]
        );
        assert_eq!(words("sessionID"), ["session", "ID"]);
        assert_eq!(words("клю_чTok"), ["клю", "чTok"]); // ASCII camelCase only
        assert!(words("__--..").is_empty());
    }

    #[test]
    fn extra_keys_match_at_word_boundaries() {
        let s = Scrubber::new(&["ssn".into(), "card_number".into(), "  ".into()]);
        for key in [
            "ssn",
            "SSN",
            "user_ssn",
            "userSsn",
            "card_number",
            "cardNumber",
            "CardNumber",
            "cardnumber",
            "customer_card_number",
            "customer-card-number",
            "customerCardNumber",
            "password", // built-ins still apply
        ] {
            assert!(s.is_secret_key(key), "{key:?} should be secret");
        }
        for key in [
            "card_numbers_count",
            "card_numbers",
            "discardnumber",
            "card",
            "number",
            "lessn",
            "ssn_last_checked",
            "",
            "x",
        ] {
            assert!(!s.is_secret_key(key), "{key:?} should not be secret");
        }
        // Empty extra keys are dropped instead of matching everything.
        assert_eq!(s.extra_keys, ["ssn", "cardnumber"]);
        assert!(!Scrubber::new(&["".into(), "--".into()]).is_secret_key("anything"));
    }

    #[test]
    fn extra_keys_apply_to_text_and_values() {
        let s = Scrubber::new(&["card_number".into()]);
        let (out, changed) = scrubbed(&s, "charge failed: cardNumber=4111111111111111 amount=5");
        assert!(changed);
        assert_eq!(out, "charge failed: cardNumber=[redacted] amount=5");
        let mut v = json!({"customer": {"card-number": 4111111111111111u64, "name": "Bob"}});
        assert!(s.scrub_value(&mut v));
        assert_eq!(
            v,
            json!({"customer": {"card-number": "[redacted]", "name": "Bob"}})
        );
    }

    // --- Text: corpora ------------------------------------------------------

    /// (text, a secret that must be gone)
    const SECRET_TEXTS: &[(&str, &str)] = &[
        ("Authorization: Bearer abcdef0123456789", "abcdef0123456789"),
        ("authorization: bearer AbCdEfGhIjKlMnOp", "AbCdEfGhIjKlMnOp"),
        ("BEARER\tabc.def-ghi_jkl~mno+pqr/stu==", "abc.def"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA"),
        ("auth header was basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("Authorization: Bearer abc", "abc"),
        ("Authorization: Token ghp_16C7e42F292c6912E7710c838347Ae178B4a", "ghp_16C7e42F"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c rejected",
            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        ),
        ("(eyJhbGci.eyJzdWIi.c2lnbmF0dXJl)", "eyJzdWIi"),
        ("unsigned eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "eyJzdWIiOiIxIn0"),
        ("key AKIAIOSFODNN7EXAMPLE used", "IOSFODNN7EXAMPLE"),
        ("ASIAY34FZKBOKMUTVV7A", "Y34FZKBOKMUTVV7A"),
        ("id=ABIA1234567890ABCDEF,", "1234567890ABCDEF"),
        ("[ACCA1234567890ABCDEF]", "1234567890ABCDEF"),
        ("postgres://admin:s3cr3t@db.example.com:5432/app", "s3cr3t"),
        ("redis://:hunter2@cache:6379", "hunter2"),
        ("GET https://bob:hunter2@example.com failed", "hunter2"),
        ("https://user:p@ss@host/path", "p@ss"),
        ("'amqp://guest:gu3st@rabbit'", "gu3st"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
            "MIIEowIBAAKCAQEA",
        ),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----\n",
            "b3BlbnNzaC1rZXk",
        ),
        ("key: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq (cut)", "MIIEvQIBADANBgkq"),
        (
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----",
            "lQOYBF",
        ),
        ("GET /api?token=abc123&page=2", "abc123"),
        ("GET /api?page=2&access_token=xyz", "xyz"),
        ("password=hunter2 user=bob", "hunter2"),
        ("login with passwd=hunter", "hunter"),
        (r#"{"password": "hunter2", "user": "bob"}"#, "hunter2"),
        (r#"{"password":"hunt er2"}"#, "hunt er2"),
        (r#"{"api_key": 123456}"#, "123456"),
        (r#"body: {\"password\":\"hunter2\",\"x\":1}"#, "hunter2"),
        (r#"{\"token\":98765}"#, "98765"),
        ("login failed: password: hunter2", "hunter2"),
        ("Password = s3cret!", "s3cret"),
        ("password: \"hunter\"", "hunter"),
        ("Config { api_key: \"sk_live_123\", retries: 3 }", "sk_live_123"),
        ("Config { token: Some(\"abcdef\") }", "abcdef"),
        ("--password=hunter2", "hunter2"),
        ("user[password]=hunter2&user[name]=bob", "hunter2"),
        ("Cookie: sessionid=abc; csrftoken=def\nHost: x", "csrftoken=def"),
        ("Set-Cookie: id=a3fWa; Expires=Wed, 21 Oct 2015", "a3fWa"),
        ("X-Api-Key: 9f8e7d6c", "9f8e7d6c"),
        ("client_secret='s3cr3t value'", "s3cr3t value"),
        ("DB.PASSWORD=x", "=x"),
        ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ("PHPSESSID=298zf09hf012fh2", "298zf09hf012fh2"),
        ("session:abcdef", "abcdef"),
        ("Session: 6f1c2e9a", "6f1c2e9a"),
        ("token: correcthorsebatterystaple", "correcthorsebatterystaple"),
        ("пароль password=ключ end", "ключ"),
        ("ключ=1 token=значение, ok", "значение"),
        ("mysql_pwd=hunter2", "hunter2"),
    ];

    #[test]
    fn secret_texts_are_redacted() {
        let s = scrubber();
        for (text, secret) in SECRET_TEXTS {
            let (out, changed) = scrubbed(&s, text);
            assert!(changed, "{text:?} was not changed");
            assert!(!out.contains(secret), "{secret:?} left in {out:?}");
            assert!(out.contains(REDACTED), "no marker in {out:?}");
        }
    }

    const HARMLESS_TEXTS: &[&str] = &[
        "",
        "token_count=5",
        "max_tokens: 4096",
        "tokens_used=100 session_count: 12 author_id=7 sessions_active=3",
        "the author wrote a secretary's tokenizer",
        "https://example.com/path?q=1",
        "http://localhost:8080/x",
        "https://example.com:443",
        "ssh://git@github.com/org/repo",
        "git@github.com:org/repo.git",
        "user@example.com",
        "mailto:user@example.com",
        "contact bob@example.com: he knows",
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
        "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYI\n-----END PUBLIC KEY-----",
        "-----BEGIN PRIVATE-----",
        "-----BEGIN ",
        "AKIAIOSFODNN7EXAMPL",
        "AKIAIOSFODNN7EXAMPLE1",
        "xAKIAIOSFODNN7EXAMPLE",
        "AKIAiosfodnn7example",
        "AKIA",
        "eyJhbGciOiJIUzI1NiJ9",
        "eyJhbGciOiJIUzI1NiJ9.eyJ",
        "xeyJhbGci.eyJzdWIi.c2lnbmF0",
        "eyJ.eyJ.eyJ",
        "Bearer of bad news",
        "the bearer token expired",
        "Use Basic auth.",
        "a basic understanding of basic 101",
        "bearer",
        "Bearer [redacted]",
        "Session: expired",
        "Session: expired.",
        "Token: invalid",
        "password: incorrect!",
        "Error: session: Token expired",
        "crate::auth::session::verify",
        "<auth::Session as Drop>::drop",
        "if token == expected { ok }",
        "password != confirmation",
        "token <= limit, secret >= 2",
        "match auth => x",
        "token_type=bearer auth_method=oauth cookie_consent=true",
        "passenger=1 primary_key=42 keyboard=qwerty",
        "PWD=/home/user",
        r#"{"password": null, "token": None}"#,
        "password=null token=None",
        r#"{"token": {"count": 1}, "secret": [1, 2]}"#,
        "password= user=bob",
        "password=",
        "password=[redacted]",
        r#"{"password": "[redacted]"}"#,
        r#"{"password": ""}"#,
        "Authorization: Bearer [redacted]",
        "https://bob:[redacted]@example.com",
        "time 12:30:45, ratio a=b",
        "🎉 emoji token_count=5 ключ: значение",
        "Ошибка сеанса: истекла",
        "пароль: ключ",
    ];

    #[test]
    fn harmless_texts_are_unchanged() {
        let s = scrubber();
        for text in HARMLESS_TEXTS {
            let (out, changed) = scrubbed(&s, text);
            assert_eq!(&out, text);
            assert!(!changed, "{text:?} reported as changed");
        }
    }

    #[test]
    fn unchanged_text_keeps_its_buffer() {
        let s = scrubber();
        let mut text = String::from("nothing to see: token_count=5 https://example.com");
        let before = text.as_ptr();
        assert!(!s.scrub_text(&mut text));
        assert_eq!(text.as_ptr(), before);
    }

    // --- Text: exact results per rule ---------------------------------------

    fn assert_scrubs(pairs: &[(&str, &str)]) {
        for (input, expected) in pairs {
            assert_eq!(&scrub(input), expected, "input: {input:?}");
        }
    }

    #[test]
    fn bearer_and_basic() {
        assert_scrubs(&[
            ("Bearer abcdef0123456789", "Bearer [redacted]"),
            ("bEaReR  abcdef0123456789 next", "bEaReR  [redacted] next"),
            ("(Basic dXNlcjpwYXNz==)", "(Basic [redacted])"),
            ("got Bearer abc.def1.", "got Bearer [redacted]."),
            ("Bearer abc/def", "Bearer [redacted]"),
            ("Bearer abc.def", "Bearer abc.def"),
            (
                "type=bearer auth_method=oauth",
                "type=bearer auth_method=oauth",
            ),
            ("type=bearer next_field", "type=bearer next_field"),
            ("Bearer of bad news", "Bearer of bad news"),
            ("bearer abcdefghijklmnopqrst", "bearer [redacted]"),
            (
                "Authorization: Bearer short",
                "Authorization: Bearer [redacted]",
            ),
            ("Authorization:Bearer x", "Authorization:Bearer [redacted]"),
            (
                r#"{"Authorization": "Bearer abc.def"}"#,
                r#"{"Authorization": "Bearer [redacted]"}"#,
            ),
        ]);
    }

    #[test]
    fn jwts() {
        let jwt =
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        assert_scrubs(&[
            (&format!("t={jwt}&x=1"), "t=[redacted]&x=1"),
            (&format!("{jwt}. Next"), "[redacted]. Next"),
            (&format!("\"{jwt}\""), "\"[redacted]\""),
            (
                "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. done",
                "[redacted]. done",
            ),
            ("eyJhbGci.eyJzdWIi.abc", "eyJhbGci.eyJzdWIi.abc"),
        ]);
    }

    #[test]
    fn aws_key_ids() {
        assert_scrubs(&[
            ("AKIAIOSFODNN7EXAMPLE", "[redacted]"),
            ("k=AKIAIOSFODNN7EXAMPLE;", "k=[redacted];"),
            ("ключAKIAIOSFODNN7EXAMPLEключ", "ключ[redacted]ключ"),
            ("AKIAIOSFODNN7EXAMPLEX", "AKIAIOSFODNN7EXAMPLEX"),
            ("AKIA IOSFODNN7EXAMPLE", "AKIA IOSFODNN7EXAMPLE"),
        ]);
    }

    #[test]
    fn url_passwords() {
        assert_scrubs(&[
            (
                "GET https://bob:hunter2@example.com failed",
                "GET https://bob:[redacted]@example.com failed",
            ),
            (
                "postgres://admin:s3cr3t@db:5432/app?sslmode=require",
                "postgres://admin:[redacted]@db:5432/app?sslmode=require",
            ),
            ("redis://:pw@cache", "redis://:[redacted]@cache"),
            ("https://u:p@ss:w@rd@host/x", "https://u:[redacted]@host/x"),
            (
                r#"{"url":"mongodb+srv://u:pw@c0.example.net","n":"a@b"}"#,
                r#"{"url":"mongodb+srv://u:[redacted]@c0.example.net","n":"a@b"}"#,
            ),
            ("https://user:@host", "https://user:@host"),
            ("https://user@host", "https://user@host"),
            ("://u:p@h", "://u:p@h"),
            (
                "https://token:ghp_abc@github.com",
                "https://token:[redacted]@github.com",
            ),
            ("s3://bucket/key:with@at", "s3://bucket/key:with@at"),
        ]);
    }

    #[test]
    fn pem_private_keys() {
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        let key = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----";
        assert_scrubs(&[
            (&format!("a {key} b"), "a [redacted] b"),
            (&format!("{cert}\n{key}\n{cert}"), &format!("{cert}\n[redacted]\n{cert}")),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\\nMIIF\\n-----END ENCRYPTED PRIVATE KEY-----\\n",
                "[redacted]\\n",
            ),
            ("x -----BEGIN PRIVATE KEY-----\nMIIE cut off", "x [redacted]"),
            // A mismatched END does not end the key: redact to the end.
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY----- tail",
                "[redacted]",
            ),
            (
                "-----BEGIN PRIVATE KEY-----a-----END PRIVATE KEY----------BEGIN PRIVATE KEY-----b-----END PRIVATE KEY-----",
                "[redacted][redacted]",
            ),
        ]);
    }

    #[test]
    fn key_value_pairs() {
        assert_scrubs(&[
            ("password=hunter2 user=bob", "password=[redacted] user=bob"),
            ("?token=abc&x=1", "?token=[redacted]&x=1"),
            ("token_count=5", "token_count=5"),
            ("a=1,secret=s;b=2", "a=1,secret=[redacted];b=2"),
            ("(password=x)", "(password=[redacted])"),
            ("{token=x}", "{token=[redacted]}"),
            ("[token=x]", "[token=[redacted]]"),
            (r#""password": "hunter2""#, r#""password": "[redacted]""#),
            (r#"'password' : 'it\'s'"#, r#"'password' : '[redacted]'"#),
            (r#"{"api_key":42,"n":1}"#, r#"{"api_key":[redacted],"n":1}"#),
            (
                r#"{\"password\":\"hunter2\"}"#,
                r#"{\"password\":\"[redacted]\"}"#,
            ),
            (r#"{\"token\":123}"#, r#"{\"token\":[redacted]}"#),
            ("password: hunter2", "password: [redacted]"),
            ("Password: hunter2.", "Password: [redacted]."),
            ("password: hunter", "password: hunter"),
            ("password: \"hunter\"", "password: \"[redacted]\""),
            ("token = abc1", "token = [redacted]"),
            ("token =abc", "token =abc"),
            ("session:abc", "session:[redacted]"),
            ("Session: expired", "Session: expired"),
            (
                "Config { token: Some(\"abc\") }",
                "Config { token: Some(\"[redacted]\") }",
            ),
            ("Config { token: None }", "Config { token: None }"),
            ("user[password]=x", "user[password]=[redacted]"),
            ("'password\"=x", "'password\"=[redacted]"),
            (
                "Cookie: a=1; b=2\nHost: example.com",
                "Cookie: [redacted]\nHost: example.com",
            ),
            ("Set-Cookie: id=a3fWa; HttpOnly", "Set-Cookie: [redacted]"),
            ("cookie=abc;x=1", "cookie=[redacted];x=1"),
            (
                "Authorization: Token ghp_123abc",
                "Authorization: Token [redacted]",
            ),
            ("password: token expired", "password: token expired"),
            ("пароль password=ключ end", "пароль password=[redacted] end"),
            ("password=ключ", "password=[redacted]"),
            ("ключ token=🎉🎉 ключ", "ключ token=[redacted] ключ"),
            ("password=\"unterminated", "password=\"[redacted]"),
            ("password=\"a\nb\"", "password=\"[redacted]\nb\""),
            ("password= user=bob", "password= user=bob"),
        ]);
    }

    #[test]
    fn long_keys_are_not_keys() {
        let key = format!("{}password", "a".repeat(70));
        let text = format!("{key}=hunter2");
        assert_eq!(scrub(&text), text);
    }

    #[test]
    fn rules_see_each_others_output() {
        // Rule 6 redacts `x/y`, after which the URL's authority reaches the
        // `@` and rule 2 redacts its password in the next round.
        let (out, changed) = scrubbed(&scrubber(), "x://u:password:x/y,@host");
        assert!(changed);
        assert_eq!(out, "x://u:[redacted]@host");
        // A bearer token that ran into an AWS key id.
        assert_eq!(
            scrub("Basic abcd1234-ASIAY34FZKBOKMUTVV7A==["),
            "Basic [redacted][redacted]==["
        );
    }

    #[test]
    fn every_rule_at_once() {
        let text = "user bob: password=hunter2 url=https://bob:pw@x.io/ \
                    auth Bearer abcdef0123456789 key AKIAIOSFODNN7EXAMPLE \
                    jwt eyJhbGci.eyJzdWIi.c2lnbmF0 \
                    -----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY----- end";
        assert_eq!(
            scrub(text),
            "user bob: password=[redacted] url=https://bob:[redacted]@x.io/ \
             auth Bearer [redacted] key [redacted] \
             jwt [redacted] \
             [redacted] end"
        );
    }

    #[test]
    fn idempotent_on_all_corpora() {
        let s = scrubber();
        let texts = SECRET_TEXTS
            .iter()
            .map(|(t, _)| *t)
            .chain(HARMLESS_TEXTS.iter().copied());
        for text in texts {
            let mut once = text.to_owned();
            s.scrub_text(&mut once);
            let mut twice = once.clone();
            assert!(!s.scrub_text(&mut twice), "{text:?}: {once:?} -> {twice:?}");
            assert_eq!(once, twice);
        }
    }

    // --- Robustness ---------------------------------------------------------

    /// A small deterministic generator (xorshift).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }
    }

    /// Fragments that exercise every rule, separators and multibyte text.
    const PIECES: &[&str] = &[
        "a",
        "Z",
        "0",
        "7",
        " ",
        "\t",
        "\n",
        "=",
        ":",
        "&",
        ",",
        ";",
        "\"",
        "'",
        "\\",
        "\\\"",
        "/",
        "@",
        "://",
        ".",
        "-",
        "_",
        "?",
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        "ключ",
        "🎉",
        "é",
        "eyJ",
        "eyJhbGci",
        "AKIA",
        "ASIAY34FZKBOKMUTVV7A",
        "Bearer ",
        "basic ",
        "-----BEGIN ",
        "PRIVATE KEY-----",
        "-----END ",
        "CERTIFICATE-----",
        "token",
        "password",
        "Password",
        "api_key",
        "Cookie",
        "Some(",
        "None",
        "null",
        "https",
        "user",
        "hunter2",
        "[redacted]",
        "abcdef0123456789",
        "dXNlcjpwYXNz",
        "==",
        "=>",
        "::",
    ];

    fn random_text(rng: &mut Rng, min_len: usize) -> String {
        let mut text = String::new();
        while text.len() < min_len {
            text.push_str(rng.pick(PIECES));
        }
        text
    }

    #[test]
    fn random_texts_do_not_panic_and_are_idempotent() {
        let s = Scrubber::new(&["a".into(), "user".into()]);
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let len = (rng.next() % 48) as usize;
            let text = random_text(&mut rng, len);
            let mut once = text.clone();
            s.scrub_text(&mut once);
            let mut twice = once.clone();
            assert!(
                !s.scrub_text(&mut twice),
                "not idempotent: {text:?} -> {once:?} -> {twice:?}"
            );
        }
    }

    #[test]
    fn larger_random_texts_are_idempotent() {
        let s = Scrubber::new(&["a".into()]);
        let mut rng = Rng(7);
        for _ in 0..400 {
            let text = random_text(&mut rng, 16 * 1024);
            let mut once = text.clone();
            s.scrub_text(&mut once);
            let mut twice = once.clone();
            assert!(!s.scrub_text(&mut twice), "not idempotent: {text:?}");
        }
    }

    #[test]
    fn megabyte_of_noise_is_fast() {
        let s = scrubber();
        let mut rng = Rng(42);
        let text = random_text(&mut rng, 1 << 20);
        let started = std::time::Instant::now();
        let mut out = text.clone();
        s.scrub_text(&mut out);
        let mut again = out.clone();
        assert!(!s.scrub_text(&mut again));
        // Linear scanning takes milliseconds even unoptimized; anything
        // quadratic would take hours.
        assert!(
            started.elapsed().as_secs() < 20,
            "took {:?}",
            started.elapsed()
        );
        assert!(out.contains(REDACTED));
    }

    #[test]
    fn adversarial_repetitions_are_fast() {
        let s = scrubber();
        let started = std::time::Instant::now();
        for piece in [
            "a",
            "=",
            ":",
            "a=",
            "token=",
            "token: ",
            "\"token\": \"",
            "://",
            "a://b",
            "@",
            "eyJ",
            "eyJa.",
            "eyJaaaa.eyJaaaa.",
            "Bearer ",
            "bearer bearer",
            "A",
            "AKIA",
            "-----BEGIN ",
            "-----BEGIN PRIVATE KEY-----",
            "-----END ",
            "\\",
            "\\\"",
            "'",
            "Some(",
            "ключ",
        ] {
            let text = piece.repeat((256 * 1024) / piece.len());
            let mut out = text.clone();
            s.scrub_text(&mut out);
            let mut again = out.clone();
            assert!(!s.scrub_text(&mut again), "not idempotent for {piece:?}");
        }
        assert!(
            started.elapsed().as_secs() < 30,
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn multibyte_text_around_every_rule() {
        let s = scrubber();
        for secret in [
            "password=x",
            "Bearer abcdef0123456789",
            "eyJhbGci.eyJzdWIi.c2lnbmF0",
            "AKIAIOSFODNN7EXAMPLE",
            "https://u:p@h",
            "-----BEGIN PRIVATE KEY-----k-----END PRIVATE KEY-----",
        ] {
            for around in ["é", "ключ", "🎉", "\u{301}", "日本"] {
                let text = format!("{around}{secret}{around} {around}{secret}");
                let (out, changed) = scrubbed(&s, &text);
                assert!(changed, "{text:?}");
                assert!(out.contains(REDACTED), "{text:?} -> {out:?}");
                assert!(out.starts_with(around) || out.starts_with(REDACTED));
            }
        }
    }

    // --- JSON values and entries --------------------------------------------

    #[test]
    fn nested_json() {
        let s = scrubber();
        let mut v = json!({
            "db": {"password": "x", "port": 5432},
            "headers": [{"Authorization": "Bearer abc.def"}],
            "note": "token=abc",
            "token_count": 5,
        });
        assert!(s.scrub_value(&mut v));
        assert_eq!(
            v,
            json!({
                "db": {"password": "[redacted]", "port": 5432},
                "headers": [{"Authorization": "[redacted]"}],
                "note": "token=[redacted]",
                "token_count": 5,
            })
        );
        assert!(!s.scrub_value(&mut v), "second scrub changed something");
    }

    #[test]
    fn values_under_secret_keys_of_any_type() {
        let s = scrubber();
        let mut v = json!({
            "pin": 1234,
            "api_key": 123456,
            "secret": true,
            "token": null,
            "credentials": {"user": "bob", "password": "x"},
            "cookies": ["a=1", "b=2"],
            "session": 1.5,
            "password": "[redacted]",
        });
        assert!(s.scrub_value(&mut v));
        assert_eq!(
            v,
            json!({
                "pin": 1234,
                "api_key": "[redacted]",
                "secret": "[redacted]",
                "token": null,
                "credentials": "[redacted]",
                "cookies": "[redacted]",
                "session": "[redacted]",
                "password": "[redacted]",
            })
        );
    }

    #[test]
    fn scalars_and_unchanged_values() {
        let s = scrubber();
        let mut v = json!("Bearer abcdef0123456789");
        assert!(s.scrub_value(&mut v));
        assert_eq!(v, json!("Bearer [redacted]"));
        for mut v in [
            json!(null),
            json!(1),
            json!(true),
            json!("plain text"),
            json!([1, "two", {"token_count": 3, "author": "me"}]),
            json!({"token": null}),
            json!({}),
        ] {
            let before = v.clone();
            assert!(!s.scrub_value(&mut v));
            assert_eq!(v, before);
        }
    }

    #[test]
    fn very_deep_values_do_not_overflow() {
        let s = scrubber();
        // Built by hand: `json!` would serialize the inner value again.
        let mut v = json!("password=x");
        for _ in 0..50_000 {
            let mut map = serde_json::Map::new();
            map.insert("n".to_owned(), v);
            v = Value::Array(vec![Value::Object(map)]);
        }
        assert!(s.scrub_value(&mut v));
        // Take it apart iteratively too: the default drop would recurse.
        let mut stack = vec![v];
        let mut found = false;
        while let Some(v) = stack.pop() {
            match v {
                Value::Array(items) => stack.extend(items),
                Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
                Value::String(text) => found |= text == "password=[redacted]",
                _ => {}
            }
        }
        assert!(found);
    }

    #[test]
    fn entries() {
        let s = scrubber();
        let mut value = String::from("k-123");
        assert!(s.scrub_entry("api_key", &mut value));
        assert_eq!(value, REDACTED);
        assert!(!s.scrub_entry("api_key", &mut value));
        let mut value = String::from("url https://u:pw@h");
        assert!(s.scrub_entry("component", &mut value));
        assert_eq!(value, "url https://u:[redacted]@h");
        let mut value = String::from("ingest");
        assert!(!s.scrub_entry("component", &mut value));
        assert_eq!(value, "ingest");
        let mut value = String::from("5");
        assert!(!s.scrub_entry("token_count", &mut value));
        let mut value = String::new();
        assert!(s.scrub_entry("password", &mut value));
        assert_eq!(value, REDACTED);
    }
}
