//! Where finished reports go: the [`Transport`] trait and the built-in collectors.
mod file;
pub(crate) mod memory;
mod stderr;

use crate::options::{Collector, ConfigError};
use crate::report::Report;

pub use file::FileTransport;
pub use memory::MemoryTransport;
pub use stderr::StderrTransport;

/// Why a transport could not deliver a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// Worth trying again later (a full disk, a timeout, a 5xx).
    #[error("retryable transport failure: {0}")]
    Retryable(String),
    /// Will fail again the same way (a rejected payload, bad credentials).
    #[error("permanent transport failure: {0}")]
    Permanent(String),
}

impl TransportError {
    /// Whether retrying may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, TransportError::Retryable(_))
    }
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
    /// Delivers `reports` (at most 64 at a time), all or nothing.
    fn send(&mut self, reports: &[Report]) -> Result<(), TransportError>;
}

/// The transport for a parsed collector.
pub(crate) fn for_collector(collector: &Collector) -> Result<Box<dyn Transport>, ConfigError> {
    Ok(match collector {
        Collector::File(path) => Box::new(FileTransport::new(path.clone())),
        Collector::Stderr => Box::new(StderrTransport),
        Collector::Memory => Box::new(MemoryTransport),
    })
}
