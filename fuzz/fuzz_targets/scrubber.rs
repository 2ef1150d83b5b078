//! The scrubber: never panics, scrubbing twice changes nothing the second
//! time, reports whether it changed anything truthfully, and grows the text
//! by a bounded amount per redaction.
//!
//! The bound: every redaction replaces a non-empty span with `[redacted]`
//! (10 bytes), so it grows the text by at most 9 bytes; a later redaction
//! that swallows earlier ones shrinks it. Hence
//! `len(out) <= len(in) + 9 * (number of "[redacted]" in out)`. For JSON
//! values a non-null value under a secret key (at least 1 byte serialized,
//! such as `1`) becomes `"[redacted]"` (12 bytes): at most 11 bytes each.
//!
//! Input: the first byte picks the mode (bit 0: JSON value, else text) and
//! whether the first line holds extra secret keys, comma-separated (bit 1).
#![no_main]

use crashbox::__fuzz::{scrub_text, scrub_value, REDACTED};
use libfuzzer_sys::fuzz_target;

fn check_text(keys: &[String], input: &str) {
    let mut once = input.to_owned();
    let changed = scrub_text(keys, &mut once);
    assert_eq!(changed, once != input, "{input:?} -> {once:?}");
    let redactions = once.matches(REDACTED).count();
    if changed {
        assert!(redactions > 0, "{input:?} -> {once:?}");
    }
    assert!(
        once.len() <= input.len() + (REDACTED.len() - 1) * redactions,
        "{input:?} ({} bytes) -> {once:?} ({} bytes, {redactions} redactions)",
        input.len(),
        once.len()
    );
    let mut twice = once.clone();
    let changed_again = scrub_text(keys, &mut twice);
    assert_eq!(once, twice, "not idempotent on {input:?}");
    assert!(!changed_again, "{input:?}");
}

fn check_value(keys: &[String], input: serde_json::Value) {
    let before = serde_json::to_string(&input).unwrap();
    let mut once = input.clone();
    let changed = scrub_value(keys, &mut once);
    assert_eq!(changed, once != input, "{before}");
    let after = serde_json::to_string(&once).unwrap();
    let redactions = after.matches(REDACTED).count();
    assert!(
        after.len() <= before.len() + (REDACTED.len() + 1) * redactions,
        "{before} -> {after}"
    );
    let mut twice = once.clone();
    assert!(!scrub_value(keys, &mut twice), "{before} -> {after}");
    assert_eq!(once, twice, "not idempotent on {before}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let (keys, text) = if mode & 2 != 0 {
        let (line, text) = text.split_once('\n').unwrap_or((text, ""));
        let keys = line.split(',').map(str::to_owned).collect::<Vec<_>>();
        (keys, text)
    } else {
        (Vec::new(), text)
    };
    if mode & 1 != 0 {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
            check_value(&keys, value);
        }
    } else {
        check_text(&keys, text);
    }
});
