//! The rules that find credentials in text by their shape.
use super::*;

// --- Rule 1: PEM private keys -----------------------------------------------

pub(super) fn scrub_pem_keys(rw: &mut Rewriter<'_>) {
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
pub(super) fn pem_end(b: &[u8], from: usize, label: &[u8]) -> Option<usize> {
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

pub(super) fn scrub_url_passwords(rw: &mut Rewriter<'_>) {
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

pub(super) fn is_authority_end(c: u8) -> bool {
    c.is_ascii_whitespace() || matches!(c, b'/' | b'"' | b'\'' | b'<' | b'>' | b'\\' | b'`')
}

// --- Rule 3: JWTs -----------------------------------------------------------

pub(super) fn scrub_jwts(rw: &mut Rewriter<'_>) {
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

pub(super) fn scrub_aws_key_ids(rw: &mut Rewriter<'_>) {
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

pub(super) fn scrub_auth_schemes(rw: &mut Rewriter<'_>) {
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
pub(super) fn token_end(b: &[u8], start: usize) -> Option<usize> {
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
pub(super) fn credential_like_token(t: &[u8]) -> bool {
    let digit = t.iter().any(u8::is_ascii_digit);
    let base64_symbol = t.iter().any(|c| matches!(c, b'+' | b'/' | b'='));
    let mixed_case =
        t.iter().skip(1).any(u8::is_ascii_uppercase) && t.iter().any(u8::is_ascii_lowercase);
    t.len() >= 20 || (t.len() >= 6 && (digit || base64_symbol)) || (t.len() >= 8 && mixed_case)
}
