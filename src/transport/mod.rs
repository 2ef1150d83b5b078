//! Where finished reports go: the [`Transport`] trait and the built-in collectors.
mod file;
#[cfg(feature = "http")]
mod gzip;
#[cfg(feature = "http")]
pub(crate) mod http;
pub(crate) mod memory;
#[cfg(feature = "http")]
mod otlp;
#[cfg(feature = "http")]
mod rate_limits;
#[cfg(feature = "http")]
mod sentry;
mod stderr;

use std::time::Duration;

use crate::collector::Collector;
use crate::error::ConfigError;
use crate::report::Report;

pub use file::FileTransport;
pub(crate) use file::DEFAULT_FILE_MAX_BYTES;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use http::{
    HttpTransport, CONNECT_TIMEOUT, DEFAULT_RATE_LIMIT, MAX_REQUEST_BYTES, REQUEST_TIMEOUT,
};
pub use memory::MemoryTransport;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use otlp::OtlpTransport;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use sentry::SentryTransport;
pub(crate) use stderr::BriefStderrTransport;
pub use stderr::StderrTransport;

/// Reports handed to a transport in one call, at most (transports may ask for fewer).
pub const MAX_BATCH: usize = 64;

/// Why a transport could not deliver a batch.
///
/// `Display` says what went wrong in a few words; the underlying error (an
/// I/O error, an HTTP client's error, a status line) is its
/// [`source`](std::error::Error::source), and is not repeated in the text.
/// To print the whole story, walk the chain:
///
/// ```
/// use std::error::Error;
/// use crashbox::TransportError;
///
/// let err = TransportError::Retryable(std::io::Error::other("connection reset").into());
/// assert_eq!(err.to_string(), "retryable transport failure");
/// let mut text = err.to_string();
/// let mut cause = err.source();
/// while let Some(e) = cause {
///     text = format!("{text}: {e}");
///     cause = e.source();
/// }
/// assert_eq!(text, "retryable transport failure: connection reset");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// Worth trying again later (a full disk, a timeout, a 5xx). Holds the
    /// underlying error; text converts too: `TransportError::Retryable("down".into())`.
    #[error("retryable transport failure")]
    Retryable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Will fail again the same way (a rejected payload, bad credentials).
    /// Holds the underlying error, like [`Retryable`](TransportError::Retryable).
    #[error("permanent transport failure")]
    Permanent(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Part of the batch got through: a transport that splits a batch into
    /// several requests says which. The first `delivered` reports reached the
    /// collector, the next `failed` met `cause` (the error's source), and any
    /// after those were not tried (the worker offers them again at once).
    #[error("{delivered} reports delivered, {failed} failed")]
    Partial {
        /// How many reports, from the start of the batch, were delivered.
        delivered: usize,
        /// How many reports after those failed.
        failed: usize,
        /// Why they failed.
        #[source]
        cause: Box<TransportError>,
    },
    /// The collector asked for nothing to be sent for `retry_after`.
    #[error("rate limited for {retry_after:?}: {reason}")]
    RateLimited {
        /// How long to send nothing.
        retry_after: Duration,
        /// What the collector said.
        reason: String,
    },
}

impl TransportError {
    /// Whether retrying may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            TransportError::Retryable(_) | TransportError::RateLimited { .. } => true,
            TransportError::Partial { cause, .. } => cause.is_retryable(),
            TransportError::Permanent(_) => false,
        }
    }
}

/// `error` and its chain of sources, as one line: `"outer: inner: innermost"`.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// Delivers batches of finished reports. Runs on crashbox's worker thread
/// only, so it may block (within reason: shutdown waits at most
/// [`Options::shutdown_timeout`](crate::Options::shutdown_timeout)).
///
/// ```
/// use crashbox::{Report, Transport, TransportError};
///
/// struct Count(usize);
/// impl Transport for Count {
///     fn send(&mut self, reports: &[Report]) -> Result<(), TransportError> {
///         self.0 += reports.len();
///         Ok(())
///     }
/// }
/// let _options = crashbox::Options::new().transport(Count(0));
/// ```
pub trait Transport: Send {
    /// Delivers `reports` (at most [`max_batch`](Transport::max_batch) at a
    /// time). On an error the whole batch is tried again or dropped, so a
    /// collector may see a report twice (with the same id) but never lose one
    /// it acknowledged.
    fn send(&mut self, reports: &[Report]) -> Result<(), TransportError>;

    /// The most reports [`send`](Transport::send) takes at once (default 64).
    fn max_batch(&self) -> usize {
        MAX_BATCH
    }
}

/// The transport for a parsed collector.
pub(crate) fn for_collector(
    collector: &Collector,
    service: ServiceInfo,
) -> Result<Box<dyn Transport>, ConfigError> {
    Ok(match collector {
        Collector::File(path) => Box::new(FileTransport::new(path.clone())),
        Collector::Stderr => Box::new(StderrTransport),
        Collector::Memory => Box::new(MemoryTransport),
        #[cfg(feature = "http")]
        Collector::Http(endpoint) => {
            Box::new(HttpTransport::new(endpoint).with_headers(service.headers.clone()))
        }
        #[cfg(feature = "http")]
        Collector::Sentry(dsn) => Box::new(
            SentryTransport::new(dsn.clone())
                .with_default_pii(service.send_default_pii)
                .with_headers(service.headers.clone()),
        ),
        #[cfg(feature = "http")]
        Collector::Otlp(endpoint) => Box::new(OtlpTransport::with_service(endpoint, service)),
        #[cfg(not(feature = "http"))]
        Collector::Http(_) | Collector::Sentry(_) | Collector::Otlp(_) => {
            let _ = service;
            return Err(ConfigError::InvalidCollector {
                collector: format!("{collector:?}"),
                reason: "network collectors need crashbox's `http` feature".into(),
            });
        }
    })
}

/// What the collectors take from the options: the service's name, version
/// and environment (OTLP's resource), and what every request carries.
#[derive(Clone)]
pub(crate) struct ServiceInfo {
    pub name: String,
    pub version: Option<String>,
    pub environment: String,
    /// Whether the Sentry collector sends the user's IP address.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub send_default_pii: bool,
    /// More OTLP resource attributes (`OTEL_RESOURCE_ATTRIBUTES`); they
    /// win over crashbox's own but for `service.name`.
    pub resource_attributes: Vec<(String, String)>,
    /// HTTP headers sent with every request (values secret).
    pub headers: Vec<(String, String)>,
    /// Whether the OTLP endpoint's URL is the logs URL itself
    /// (`OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`), with no `/v1/logs` appended.
    pub otlp_url_as_given: bool,
}

impl std::fmt::Debug for ServiceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceInfo")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("environment", &self.environment)
            .field("resource_attributes", &self.resource_attributes)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("otlp_url_as_given", &self.otlp_url_as_given)
            .finish_non_exhaustive()
    }
}
