//! HTTP delivery shared by the network collectors (over `ureq`, blocking, on
//! the worker thread only), and the `http(s)://` collector of crashbox JSON.
use std::time::Duration;

use super::{rate_limits, Transport, TransportError};
use crate::collector::Endpoint;
use crate::report::Report;

/// Time allowed to open a connection (TCP and TLS).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for a whole request: connect, send, and read the answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Back-off after a 429 that says nothing about how long to wait.
pub const DEFAULT_RATE_LIMIT: Duration = Duration::from_secs(60);
/// Request body size the batching collectors aim to stay under.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// What a collector answered.
pub(crate) struct Answer {
    pub status: u16,
    pub(crate) retry_after: Option<String>,
    pub sentry_rate_limits: Option<String>,
}

impl Answer {
    /// How long `Retry-After` asks to wait (see [`rate_limits::retry_after`]).
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        rate_limits::retry_after(self.retry_after.as_deref()?)
    }

    /// Success, or the error the status stands for: 429 is a rate limit,
    /// 408 and 5xx may succeed later, any other status will not.
    pub(crate) fn into_result(self) -> Result<(), TransportError> {
        match self.status {
            200..=299 => Ok(()),
            429 => Err(TransportError::RateLimited {
                retry_after: self.retry_after().unwrap_or(DEFAULT_RATE_LIMIT),
                reason: "HTTP 429 Too Many Requests".into(),
            }),
            408 | 500..=599 => Err(TransportError::Retryable(
                format!("HTTP {}", self.status).into(),
            )),
            status => Err(TransportError::Permanent(format!("HTTP {status}").into())),
        }
    }
}

/// A blocking HTTP client with crashbox's timeouts; redirects are not followed.
pub(crate) struct HttpClient {
    agent: ureq::Agent,
    /// Headers of [`Options::header`](crate::Options::header), sent with
    /// every request (their values never shown).
    headers: Vec<(String, String)>,
}

impl HttpClient {
    pub(crate) fn new() -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("crashbox/", env!("CARGO_PKG_VERSION")))
            .build();
        HttpClient {
            agent: config.into(),
            headers: Vec::new(),
        }
    }

    /// Sends `headers` with every request as well.
    pub(crate) fn with_headers(mut self, headers: Vec<(String, String)>) -> Self {
        self.headers = headers;
        self
    }

    /// The names of the extra headers (their values are secret), for `Debug`.
    pub(crate) fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// POSTs `body`. Transport-level failures (refused, reset, timed out) are retryable.
    pub(crate) fn post(
        &self,
        url: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Answer, TransportError> {
        let mut request = self.agent.post(url).header("Content-Type", content_type);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let mut response = request.send(body).map_err(|e| match e {
            ureq::Error::BadUri(_) | ureq::Error::Http(_) => TransportError::Permanent(Box::new(e)),
            e => TransportError::Retryable(Box::new(e)),
        })?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let answer = Answer {
            status: response.status().as_u16(),
            retry_after: header("retry-after"),
            sentry_rate_limits: header("x-sentry-rate-limits"),
        };
        // Read (a bounded amount of) the answer so the connection can be reused.
        let _ = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_vec();
        Ok(answer)
    }
}

/// `cause` for the reports in `failed` (a range of the batch), saying that
/// the ones before got through and the ones after were not tried.
pub(crate) fn partial(
    failed: std::ops::Range<usize>,
    total: usize,
    cause: TransportError,
) -> TransportError {
    if failed.start == 0 && failed.end == total {
        cause
    } else {
        TransportError::Partial {
            delivered: failed.start,
            failed: failed.len(),
            cause: Box::new(cause),
        }
    }
}

/// Splits serialized items into groups whose total stays under `max_bytes`
/// (a single larger item still travels alone).
pub(crate) fn chunks_by_size(items: &[Vec<u8>], max_bytes: usize) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (i, item) in items.iter().enumerate() {
        if i > start && size + item.len() + 1 > max_bytes {
            ranges.push(start..i);
            start = i;
            size = 0;
        }
        size += item.len() + 1;
    }
    if start < items.len() {
        ranges.push(start..items.len());
    }
    ranges
}

/// `http(s)://host/path`: POSTs `application/json` arrays of crashbox reports
/// (the README's schema), at most 64 reports and about 1 MiB a request.
pub struct HttpTransport {
    client: HttpClient,
    url: String,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("url", &self.url.split('?').next().unwrap_or(""))
            .field("headers", &self.client.header_names())
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    /// A transport posting to `endpoint`.
    pub fn new(endpoint: &Endpoint) -> Self {
        HttpTransport {
            client: HttpClient::new(),
            url: endpoint.url(),
        }
    }

    /// Sends `headers` (name, value) with every request.
    pub(crate) fn with_headers(mut self, headers: Vec<(String, String)>) -> Self {
        self.client = self.client.with_headers(headers);
        self
    }
}

impl Transport for HttpTransport {
    fn send(&mut self, reports: &[Report]) -> Result<(), TransportError> {
        let items: Vec<Vec<u8>> = reports
            .iter()
            .map(|r| serde_json::to_vec(r).unwrap_or_default())
            .collect();
        for range in chunks_by_size(&items, MAX_REQUEST_BYTES) {
            let mut body = Vec::with_capacity(MAX_REQUEST_BYTES.min(64 * 1024));
            body.push(b'[');
            for (i, item) in items[range.clone()].iter().enumerate() {
                if i > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(item);
            }
            body.push(b']');
            self.client
                .post(&self.url, "application/json", &[], &body)
                .and_then(|answer| answer.into_result())
                .map_err(|e| partial(range, items.len(), e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, retry_after: Option<&str>) -> Answer {
        Answer {
            status,
            retry_after: retry_after.map(str::to_owned),
            sentry_rate_limits: None,
        }
    }

    #[test]
    fn statuses_map_to_retry_decisions() {
        assert!(answer(202, None).into_result().is_ok());
        for status in [500, 502, 503, 408] {
            assert!(answer(status, None)
                .into_result()
                .unwrap_err()
                .is_retryable());
        }
        for status in [400, 401, 403, 413, 404] {
            let err = answer(status, None).into_result().unwrap_err();
            assert!(matches!(err, TransportError::Permanent(_)), "{status}");
        }
        match answer(429, Some("7")).into_result() {
            Err(TransportError::RateLimited { retry_after, .. }) => {
                assert_eq!(retry_after, Duration::from_secs(7))
            }
            other => panic!("{other:?}"),
        }
        match answer(429, None).into_result() {
            Err(TransportError::RateLimited { retry_after, .. }) => {
                assert_eq!(retry_after, DEFAULT_RATE_LIMIT)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_429_waits_as_retry_after_says_in_any_date_form() {
        match answer(429, Some("Sun Nov  6 08:49:37 1994")).into_result() {
            Err(TransportError::RateLimited { retry_after, .. }) => {
                assert_eq!(retry_after, Duration::ZERO)
            }
            other => panic!("{other:?}"),
        }
        match answer(429, Some("Fri, 31 Dec 9999 23:59:59 GMT")).into_result() {
            Err(TransportError::RateLimited { retry_after, .. }) => {
                assert_eq!(retry_after, rate_limits::MAX_WAIT)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn statuses_are_the_cause_not_the_summary() {
        use std::error::Error;
        let err = answer(503, None).into_result().unwrap_err();
        assert_eq!(err.to_string(), "retryable transport failure");
        assert_eq!(err.source().unwrap().to_string(), "HTTP 503");
        let err = answer(401, None).into_result().unwrap_err();
        assert_eq!(
            crate::transport::error_chain(&err),
            "permanent transport failure: HTTP 401"
        );
    }

    #[test]
    fn a_refused_connection_keeps_the_client_error() {
        // A port nothing listens on: bind one, then let it go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = HttpClient::new()
            .post(
                &format!("http://127.0.0.1:{port}/"),
                "application/json",
                &[],
                b"[]",
            )
            .err()
            .expect("nothing listens");
        let TransportError::Retryable(cause) = &err else {
            panic!("{err:?}");
        };
        assert!(cause.downcast_ref::<ureq::Error>().is_some(), "{cause:?}");
    }

    #[test]
    fn batches_split_by_size() {
        let items = vec![
            vec![0u8; 400],
            vec![0u8; 400],
            vec![0u8; 400],
            vec![0u8; 2000],
        ];
        assert_eq!(chunks_by_size(&items, 1000), vec![0..2, 2..3, 3..4]);
        assert!(chunks_by_size(&[], 1000).is_empty());
    }
}
