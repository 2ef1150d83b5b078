//! The client-side rate limit.
use std::time::Instant;

/// The client-side rate limit: a token bucket holding a minute's worth.
pub(crate) struct RateLimiter {
    per_minute: u32,
    tokens: f64,
    pub(super) last: Instant,
}

impl RateLimiter {
    /// `per_minute == 0`: no limit.
    pub(crate) fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute,
            tokens: f64::from(per_minute),
            last: Instant::now(),
        }
    }

    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        let cap = f64::from(self.per_minute);
        self.tokens = (self.tokens + elapsed * cap / 60.0).min(cap);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
