//! Collector strings: parsing never panics, a failure is always
//! `ConfigError::InvalidCollector` naming the string, and a credential never
//! reaches an error message or a parsed DSN's `Debug` output.
#![no_main]

use crashbox::{Collector, ConfigError};
use libfuzzer_sys::fuzz_target;

/// A key no error text can contain unless it was copied from the input: it
/// is only put where a credential stands (`…KEY@…`).
const CANARY: &str = "Zq7Canary9Xw";

/// `planted`: the canary was put where a credential stands, so it must
/// not be shown (a raw input may hold it anywhere, legitimately shown).
fn check(input: &str, planted: bool) -> Option<Collector> {
    match Collector::parse(input) {
        Ok(collector) => {
            if let Collector::Sentry(dsn) = &collector {
                let shown = format!("{collector:?} {dsn:?}");
                assert!(shown.contains("***@"), "{input:?} shows as {shown:?}");
                assert!(
                    !planted || !shown.contains(CANARY),
                    "{input:?} shows as {shown:?}"
                );
            }
            Some(collector)
        }
        Err(err) => {
            let message = err.to_string();
            match &err {
                ConfigError::InvalidCollector { collector, reason } => {
                    assert!(!reason.is_empty(), "{input:?}: no reason");
                    assert!(message.contains(collector.as_str()), "{message}");
                }
                other => panic!("{input:?}: unexpected error {other:?}"),
            }
            assert!(
                !planted || !message.contains(CANARY),
                "{input:?}: {message}"
            );
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    // The same text parsed twice gives the same answer.
    let first = check(s, false);
    assert!(first == Collector::parse(s).ok());

    // The canary as the credential: the fuzz input, split at its first `@`,
    // around `CANARY@`. Whatever stands before an `@` back to the scheme
    // (well formed or not: `sentry+https:/KEY@host/1`) is a credential.
    if let Some((head, tail)) = s.split_once('@') {
        let planted = format!("{head}{CANARY}@{tail}");
        if planted.matches(CANARY).count() == 1 {
            check(&planted, true);
        }
    }
    // And as the secret of the old `KEY:SECRET@` form.
    if let Some((head, tail)) = s.split_once("://") {
        let planted = format!("{head}://k:{CANARY}@{tail}");
        if planted.matches(CANARY).count() == 1 {
            check(&planted, true);
        }
    }
});
