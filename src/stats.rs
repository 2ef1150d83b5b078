//! Counters of what crashbox captured, delivered and dropped, for the whole process.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub(crate) struct Counter {
    value: AtomicU64,
    name: &'static str,
}

/// Whether crashbox says on stderr what it decides ([`Options::debug`](crate::Options::debug)).
static DEBUG: AtomicBool = AtomicBool::new(false);

pub(crate) fn set_debug(enabled: bool) {
    DEBUG.store(enabled, Ordering::Relaxed);
}

/// The counters whose every change [`Options::debug`](crate::Options::debug)
/// reports: drops by reason, retries, rate limits, spool writes and replays.
fn is_decision(name: &str) -> bool {
    name.starts_with("dropped_")
        || name.starts_with("spool")
        || matches!(
            name,
            "retries" | "rate_limited" | "replayed" | "filtered" | "before_send_panics"
        )
}

impl Counter {
    const fn new(name: &'static str) -> Self {
        Counter {
            value: AtomicU64::new(0),
            name,
        }
    }
    pub(crate) fn inc(&self) {
        self.add(1);
    }
    pub(crate) fn add(&self, n: u64) {
        if n == 0 {
            return;
        }
        self.value.fetch_add(n, Ordering::Relaxed);
        if DEBUG.load(Ordering::Relaxed) && is_decision(self.name) {
            say(format_args!("[crashbox] {} +{n}", self.name));
        }
    }
    pub(crate) fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        pub(crate) struct Counters {
            $(pub $name: Counter,)*
        }

        pub(crate) static STATS: Counters = Counters {
            $($name: Counter::new(stringify!($name)),)*
        };

        /// A snapshot of crashbox's counters since the process started.
        ///
        /// ```
        /// let stats = crashbox::stats();
        /// // Replayed reports were captured by an earlier run.
        /// assert!(stats.sent <= stats.captured + stats.replayed);
        /// ```
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct Stats {
            $($(#[$doc])* pub $name: u64,)*
        }

        /// Reads the counters.
        pub fn stats() -> Stats {
            Stats {
                $($name: STATS.$name.get(),)*
            }
        }
    };
}

counters! {
    /// Reports captured (handed to the worker or a test collector), including
    /// those later aggregated, sampled out or dropped.
    captured,
    /// Reports the transport accepted.
    sent,
    /// Repeats of a fingerprint folded into the `count` of the report that
    /// closes their aggregation window, instead of being sent one by one.
    /// That report stands for one more repeat, and its own fate (sent,
    /// filtered, dropped) is counted once, like any report's.
    aggregated,
    /// Captures left out by [`Options::sample_rate`](crate::Options::sample_rate).
    dropped_sampled,
    /// Reports over [`Options::max_reports_per_minute`](crate::Options::max_reports_per_minute).
    dropped_rate_limited,
    /// Captures made from inside crashbox itself (a `before_send` hook or a
    /// transport calling `capture_*`), ignored so they cannot loop.
    dropped_reentrant,
    /// Captures dropped because the worker's queue was full.
    dropped_queue_full,
    /// Reports the collector refused for good (HTTP 400, 401, 403, 413, …): not retried.
    dropped_rejected,
    /// Reports dropped after every retry failed (connection errors, timeouts, 5xx).
    dropped_retries_exhausted,
    /// Reports dropped because the outbox was full while the collector was unavailable.
    dropped_backlog,
    /// Reports still undelivered, and not in the spool, when shutdown's time ran out.
    dropped_shutdown,
    /// Reports lost to a bug in crashbox's own processing (caught, never propagated).
    dropped_internal,
    /// Reports that `before_send` chose to drop.
    filtered,
    /// `before_send` calls that panicked (the report was sent unchanged).
    before_send_panics,
    /// Delivery attempts that failed and were scheduled again.
    retries,
    /// Times a collector's rate limit held deliveries back.
    rate_limited,
    /// Distinct addresses resolved to symbols (cache misses).
    addresses_resolved,
    /// Reports the `memory` collector let go of because it holds at most 10,000.
    memory_evicted,
    /// Reports left in the spool for a later run (collector down, retries
    /// exhausted, outbox full, or shutdown's time ran out).
    spooled,
    /// Reports loaded from the spool, written by an earlier (or dead) process.
    replayed,
    /// Spool files removed by retention (too many, or too old).
    spool_discarded,
    /// Spool files that retention folded into an identical earlier report
    /// (the first of a crash loop) instead of removing them: that report's
    /// `count` stands for them, so they are not lost.
    spool_folded,
    /// Spool files that could not be read (moved to `corrupt/`).
    spool_corrupt,
    /// Reports that could not be written to the spool (the report itself still goes out).
    spool_write_errors,
    /// Spool directories `init` refused (owned by another user, writable by
    /// group or others even after a chmod to 0700, or unusable): that client
    /// reports without a spool, and `init` said why on stderr.
    spool_refused,
    /// Times crashbox's panic hook was replaced: a later
    /// `std::panic::set_hook` (or a `take_hook` whose result was dropped)
    /// removed it without keeping it to call. From then on panics are not
    /// captured unless the new hook calls
    /// [`capture_panic`](crate::capture_panic). A client that installed the
    /// hook says so once on stderr at its next [`flush`](crate::flush) or
    /// shutdown, and the next `init` installs the hook again. A hook that
    /// keeps crashbox's (to call it) does not count. Usually 0; 1 after a
    /// replacement.
    panic_hook_replaced,
}

impl Stats {
    /// All reports lost for any reason other than `before_send`.
    pub fn dropped(&self) -> u64 {
        self.dropped_sampled
            + self.dropped_rate_limited
            + self.dropped_reentrant
            + self.dropped_queue_full
            + self.dropped_rejected
            + self.dropped_retries_exhausted
            + self.dropped_backlog
            + self.dropped_shutdown
            + self.dropped_internal
    }

    /// Captures whose fate is not counted yet: still queued, in an open
    /// aggregation window, or on their way to the collector. Once
    /// [`flush`](crate::flush) returns `true` (or the [`Guard`](crate::Guard)
    /// has dropped) it is zero for the reports captured before, because
    /// every capture (and every report replayed from the spool) ends in
    /// exactly one counter:
    ///
    /// `captured + replayed = sent + aggregated + filtered + spooled + dropped()`
    ///
    /// ```
    /// let guard = crashbox::init(crashbox::Options::new().collector("memory"))?;
    /// for _ in 0..1000 {
    ///     crashbox::capture_message("disk almost full", crashbox::Level::Warning);
    /// }
    /// assert!(crashbox::flush(std::time::Duration::from_secs(5)));
    /// let stats = crashbox::stats();
    /// assert_eq!(stats.in_flight(), 0);
    /// // The first 10 are sent one by one; the other 990 become one report
    /// // with a count, which stands for one of them.
    /// assert!(stats.aggregated >= 989);
    /// # drop(guard);
    /// # Ok::<(), crashbox::ConfigError>(())
    /// ```
    pub fn in_flight(&self) -> i64 {
        let settled = self.sent + self.aggregated + self.filtered + self.spooled + self.dropped();
        (self.captured + self.replayed) as i64 - settled as i64
    }
}

/// Writes one line on stderr for the person running the program, ignoring
/// a failed write (a closed pipe): `eprintln!` would panic there.
pub(crate) fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
