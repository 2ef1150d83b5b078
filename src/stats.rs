//! Counters of what crashbox captured, delivered and dropped, for the whole process.
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }
    pub(crate) fn inc(&self) {
        self.add(1);
    }
    pub(crate) fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

pub(crate) struct Counters {
    pub captured: Counter,
    pub sent: Counter,
    pub dropped_queue_full: Counter,
    pub dropped_transport: Counter,
    pub dropped_shutdown: Counter,
    pub filtered: Counter,
    pub before_send_panics: Counter,
    pub transport_retries: Counter,
    pub addresses_resolved: Counter,
    pub memory_evicted: Counter,
}

pub(crate) static STATS: Counters = Counters {
    captured: Counter::new(),
    sent: Counter::new(),
    dropped_queue_full: Counter::new(),
    dropped_transport: Counter::new(),
    dropped_shutdown: Counter::new(),
    filtered: Counter::new(),
    before_send_panics: Counter::new(),
    transport_retries: Counter::new(),
    addresses_resolved: Counter::new(),
    memory_evicted: Counter::new(),
};

/// A snapshot of crashbox's counters since the process started.
///
/// ```
/// let stats = crashbox::stats();
/// assert!(stats.sent <= stats.captured);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Reports captured (handed to the worker or a test sink).
    pub captured: u64,
    /// Reports the transport accepted.
    pub sent: u64,
    /// Captures dropped because the worker's queue was full.
    pub dropped_queue_full: u64,
    /// Reports dropped because the transport failed permanently or kept failing.
    pub dropped_transport: u64,
    /// Reports still queued when shutdown gave up waiting, or captured after it.
    pub dropped_shutdown: u64,
    /// Reports that `before_send` chose to drop.
    pub filtered: u64,
    /// `before_send` calls that panicked (the report was sent unchanged).
    pub before_send_panics: u64,
    /// Transport attempts that were retried.
    pub transport_retries: u64,
    /// Distinct addresses resolved to symbols (cache misses).
    pub addresses_resolved: u64,
    /// Reports the `memory` collector let go of because it holds at most 10,000.
    pub memory_evicted: u64,
}

impl Stats {
    /// All reports lost for any reason other than `before_send`.
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full + self.dropped_transport + self.dropped_shutdown
    }
}

/// Reads the counters.
pub fn stats() -> Stats {
    Stats {
        captured: STATS.captured.get(),
        sent: STATS.sent.get(),
        dropped_queue_full: STATS.dropped_queue_full.get(),
        dropped_transport: STATS.dropped_transport.get(),
        dropped_shutdown: STATS.dropped_shutdown.get(),
        filtered: STATS.filtered.get(),
        before_send_panics: STATS.before_send_panics.get(),
        transport_retries: STATS.transport_retries.get(),
        addresses_resolved: STATS.addresses_resolved.get(),
        memory_evicted: STATS.memory_evicted.get(),
    }
}
