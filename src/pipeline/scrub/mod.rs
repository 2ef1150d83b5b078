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
mod bytes;
mod keys;
mod pairs;
mod rewrite;
mod rules;
#[cfg(test)]
mod tests;

use memchr::{memchr, memchr2, memchr3, memmem};

use bytes::*;
use keys::*;
use pairs::*;
use rewrite::*;
use rules::*;
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
