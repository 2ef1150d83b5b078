//! Deadlines that never overflow.
use std::time::{Duration, Instant};

/// `now + timeout`, saturating: `Duration::MAX` means about a century.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    deadline_after_from(Instant::now(), timeout)
}

/// `now + timeout`, saturating like [`deadline_after`].
pub(crate) fn deadline_after_from(now: Instant, timeout: Duration) -> Instant {
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}
