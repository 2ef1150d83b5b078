//! `sentry+http(s)://KEY@host/PROJECT_ID`: Sentry envelopes, one event each,
//! for Sentry, GlitchTip and Bugsink.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::http::{HttpClient, DEFAULT_RATE_LIMIT};
use super::{rate_limits, Transport, TransportError};
use crate::collector::Dsn;
use crate::report::Report;

mod event;
#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) use event::envelope;
use event::envelope_with;
#[cfg(test)]
use event::{event, fitted_event};

/// The largest event sent; bigger ones lose breadcrumbs, extra and middle frames first.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Sends each report as a Sentry envelope holding one event.
pub struct SentryTransport {
    client: HttpClient,
    dsn: Dsn,
    url: String,
    auth: String,
    /// Rate-limit windows by data category (`""` means every category).
    limits: HashMap<String, Instant>,
    /// Whether the server records the sender's IP for users without one.
    auto_ip: bool,
}

impl std::fmt::Debug for SentryTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The DSN's own `Debug` masks its key.
        f.debug_struct("SentryTransport")
            .field("dsn", &self.dsn)
            .field("headers", &self.client.header_names())
            .finish_non_exhaustive()
    }
}

impl SentryTransport {
    /// A transport for `dsn`.
    pub fn new(dsn: Dsn) -> Self {
        SentryTransport {
            client: HttpClient::new(),
            url: dsn.envelope_url(),
            auth: dsn.auth_header(),
            dsn,
            limits: HashMap::new(),
            auto_ip: false,
        }
    }

    /// Asks the server to record the sender's IP address as the user's, when
    /// the report's user has none ([`Options::send_default_pii`](crate::Options::send_default_pii)
    /// sets this for the `sentry+` collector).
    pub fn with_default_pii(mut self, enabled: bool) -> Self {
        self.auto_ip = enabled;
        self
    }

    /// Sends `headers` (name, value) with every request as well.
    pub(crate) fn with_headers(mut self, headers: Vec<(String, String)>) -> Self {
        self.client = self.client.with_headers(headers);
        self
    }

    /// How long events are still blocked for, if they are.
    pub(crate) fn blocked_for(&self) -> Option<Duration> {
        let now = Instant::now();
        ["", "error"]
            .iter()
            .filter_map(|c| self.limits.get(*c))
            .filter(|until| **until > now)
            .max()
            .map(|until| *until - now)
    }

    fn limit(&mut self, category: &str, for_: Duration) {
        let until = crate::deadline::deadline_after(for_);
        let entry = self.limits.entry(category.to_owned()).or_insert(until);
        if *entry < until {
            *entry = until;
        }
    }

    /// Applies `X-Sentry-Rate-Limits` (see [`rate_limits::sentry_rate_limits`]),
    /// keeping the longest limit per category.
    pub(crate) fn apply_rate_limits(&mut self, header: &str) {
        for (category, wait) in rate_limits::sentry_rate_limits(header) {
            self.limit(category, wait);
        }
    }
}

impl Transport for SentryTransport {
    fn send(&mut self, reports: &[Report]) -> Result<(), TransportError> {
        for report in reports {
            if let Some(wait) = self.blocked_for() {
                return Err(TransportError::RateLimited {
                    retry_after: wait,
                    reason: "within a Sentry rate-limit window".into(),
                });
            }
            let (body, encoding) =
                super::gzip::maybe_gzip(envelope_with(report, &self.dsn, self.auto_ip));
            let mut headers = vec![("X-Sentry-Auth", self.auth.as_str())];
            if let Some(encoding) = encoding {
                headers.push(("Content-Encoding", encoding));
            }
            let answer =
                self.client
                    .post(&self.url, "application/x-sentry-envelope", &headers, &body)?;
            if let Some(header) = &answer.sentry_rate_limits {
                let header = header.clone();
                self.apply_rate_limits(&header);
            }
            if answer.status == 429 {
                if answer.sentry_rate_limits.is_none() {
                    let wait = answer.retry_after().unwrap_or(DEFAULT_RATE_LIMIT);
                    self.limit("", wait);
                }
                return Err(match self.blocked_for() {
                    Some(retry_after) => TransportError::RateLimited {
                        retry_after,
                        reason: "HTTP 429 Too Many Requests".into(),
                    },
                    // The limits named other categories: try again with the usual back-off.
                    None => TransportError::Retryable("HTTP 429 for other data categories".into()),
                });
            }
            answer.into_result()?;
        }
        Ok(())
    }

    fn max_batch(&self) -> usize {
        1
    }
}
