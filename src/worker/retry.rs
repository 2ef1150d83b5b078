//! When a failed batch is tried again.
use std::time::Duration;

/// When to try a failed batch again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub attempts: u32,
}

impl RetryPolicy {
    /// Exponential back-off with jitter: after attempt `n` (1-based), wait a
    /// random time between half and all of `initial * 2^(n-1)`, capped at `max`.
    pub(super) fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .initial
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max);
        let jitter = (crate::rand::random_u128() % 1000) as f64 / 1000.0;
        exp.mul_f64(0.5 + jitter / 2.0)
    }
}
