//! Thin wrappers over internal parsers for the fuzz targets in `fuzz/`.
//!
//! Not part of the API: hidden from the docs, exempt from semver, and may
//! change or disappear in any release. Each wrapper calls the same code the
//! library runs, with nothing added, so a fuzz finding is a library finding.
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::pipeline::scrub::Scrubber;
use crate::spool::{Entry, Spool};

/// The text the scrubber puts in place of a secret.
pub const REDACTED: &str = crate::pipeline::scrub::REDACTED;

/// `Scrubber::scrub_text` with the built-in rules plus `extra_keys`.
pub fn scrub_text(extra_keys: &[String], text: &mut String) -> bool {
    Scrubber::new(extra_keys).scrub_text(text)
}

/// `Scrubber::scrub_value` with the built-in rules plus `extra_keys`.
pub fn scrub_value(extra_keys: &[String], value: &mut serde_json::Value) -> bool {
    Scrubber::new(extra_keys).scrub_value(value)
}

/// The report timestamp format (`2026-11-25T12:37:17.438Z`).
pub fn rfc3339_millis(t: SystemTime) -> String {
    crate::time::rfc3339_millis(t)
}

/// Parses what [`rfc3339_millis`] writes.
pub fn parse_rfc3339_millis(s: &str) -> Option<SystemTime> {
    crate::time::parse_rfc3339_millis(s)
}

/// Parses an HTTP date in any of the three forms RFC 9110 names.
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    crate::time::parse_http_date(s)
}

/// How long a 429 answer with this `Retry-After` value makes crashbox wait.
#[cfg(feature = "http")]
pub fn retry_after(value: &str) -> Option<Duration> {
    crate::transport::http::Answer {
        status: 429,
        retry_after: Some(value.to_owned()),
        sentry_rate_limits: None,
    }
    .retry_after()
}

/// How long events stay blocked after an `X-Sentry-Rate-Limits` header.
#[cfg(feature = "http")]
pub fn sentry_rate_limits(dsn: &crate::Dsn, header: &str) -> Option<Duration> {
    let mut transport = crate::transport::SentryTransport::new(dsn.clone());
    transport.apply_rate_limits(header);
    transport.blocked_for()
}

/// One spool file the replay claimed.
#[derive(Debug)]
pub struct Claimed {
    /// Where the claimed file now is.
    pub path: PathBuf,
    /// The report, for a finished report; `None` for a raw panic capture.
    pub report: Option<crate::Report>,
    /// For a raw capture: whether it claims to be scrubbed already.
    pub scrubbed: bool,
    /// For a raw capture: its kind (`Crash` for a crash record).
    pub kind: Option<crate::Kind>,
}

/// Opens the spool at `dir` as a new run does and claims the files of dead
/// owners, as the worker's replay does. `None` when the spool cannot be opened.
pub fn claim_orphans(dir: &Path) -> Option<Vec<Claimed>> {
    let spool = Spool::open(dir.to_owned(), 100, Duration::from_secs(30 * 86_400)).ok()?;
    Some(
        spool
            .claim_orphans()
            .into_iter()
            .map(|(path, entry)| match entry {
                Entry::Report(report) => Claimed {
                    path,
                    report: Some(*report),
                    scrubbed: false,
                    kind: None,
                },
                Entry::Captured(captured) => Claimed {
                    path,
                    report: None,
                    scrubbed: captured.scrubbed,
                    kind: Some(captured.kind),
                },
            })
            .collect(),
    )
}
