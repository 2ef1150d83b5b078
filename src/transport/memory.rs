//! `memory`: reports kept in process, read with [`memory_reports`](crate::memory_reports).
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use super::{Transport, TransportError};
use crate::report::Report;
use crate::stats::STATS;

/// Reports the `memory` collector keeps; older ones are let go of and counted
/// in [`Stats::memory_evicted`](crate::Stats::memory_evicted).
pub const MEMORY_CAPACITY: usize = 10_000;

static STORE: Mutex<VecDeque<Report>> = Mutex::new(VecDeque::new());

/// Keeps reports in process memory.
#[derive(Debug, Default)]
pub struct MemoryTransport;

impl Transport for MemoryTransport {
    fn send(&mut self, reports: &[Report]) -> Result<(), TransportError> {
        let mut store = STORE.lock().unwrap_or_else(PoisonError::into_inner);
        for report in reports {
            if store.len() == MEMORY_CAPACITY {
                store.pop_front();
                STATS.memory_evicted.inc();
            }
            store.push_back(report.clone());
        }
        Ok(())
    }
}

/// The reports the `memory` collector holds, oldest first.
///
/// ```
/// let guard = crashbox::init(crashbox::Options::new().collector("memory")).unwrap();
/// crashbox::capture_message("hello", crashbox::Level::Info);
/// crashbox::flush(std::time::Duration::from_secs(5));
/// assert!(crashbox::memory_reports().iter().any(|r| r.message == "hello"));
/// drop(guard);
/// ```
pub fn reports() -> Vec<Report> {
    STORE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .cloned()
        .collect()
}

/// Removes and returns the reports the `memory` collector holds, oldest first.
pub fn take() -> Vec<Report> {
    STORE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain(..)
        .collect()
}
