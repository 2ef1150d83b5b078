//! Configuration: the [`Options`] builder, [`Options::from_env`], and collector string parsing.
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use crate::error::ConfigError;
use crate::report::Report;
use crate::transport::Transport;
pub(crate) use destination::Destination;
pub(crate) use shared_transport::SharedTransport;

mod config;
mod derived;
mod destination;
mod env;
mod shared_transport;
#[cfg(test)]
mod tests;

/// Returns `"<package name>@<package version>"` of the crate that expands
/// it, and names that crate as the application: its functions are in-app
/// even where the build recorded no source paths (`debug = false`), by the
/// crate's own name (`CARGO_CRATE_NAME`: `rg` for ripgrep's binary, not the
/// package name `ripgrep`).
///
/// ```
/// let release = crashbox::release!();
/// assert!(release.contains('@'));
/// ```
#[macro_export]
macro_rules! release {
    () => {
        $crate::__application_crate(
            env!("CARGO_CRATE_NAME"),
            concat!(env!("CARGO_PKG_NAME"), "@", env!("CARGO_PKG_VERSION")),
        )
    };
}

/// Application crates named by [`release!`], at most a few.
static APPLICATION_CRATES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

/// Records `crate_name` as an application crate and returns `release`
/// (the expansion of [`release!`]).
#[doc(hidden)]
pub fn __application_crate(crate_name: &'static str, release: &'static str) -> &'static str {
    let mut crates = APPLICATION_CRATES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !crates.contains(&crate_name) && crates.len() < 16 {
        crates.push(crate_name);
    }
    release
}

pub use crate::pipeline::BeforeSend;

/// Configuration for [`init`](crate::init).
///
/// ```
/// use std::time::Duration;
/// let options = crashbox::Options::new()
///     .collector("memory")
///     .release(crashbox::release!())
///     .environment("staging")
///     .shutdown_timeout(Duration::from_secs(1));
/// assert_eq!(options.environment_name(), "staging");
/// ```
///
/// # Clones
///
/// A clone has the same settings. Everything in them is a value, except a
/// custom [`transport`](Options::transport) and the
/// [`before_send`](Options::before_send) hook: clones share those (the one
/// instance each, not copies). So a client started from a clone sends
/// through the same transport object, with whatever state it keeps, as one
/// started from the original:
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use crashbox::{Level, Options, Report, Transport, TransportError};
///
/// /// Counts its sends and records `(send number, message)`.
/// struct Recorder {
///     sends: usize,
///     seen: Arc<Mutex<Vec<(usize, String)>>>,
/// }
///
/// impl Transport for Recorder {
///     fn send(&mut self, reports: &[Report]) -> Result<(), TransportError> {
///         for report in reports {
///             self.seen.lock().unwrap().push((self.sends, report.message.clone()));
///         }
///         self.sends += 1;
///         Ok(())
///     }
/// }
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let options = Options::new()
///     .transport(Recorder { sends: 0, seen: seen.clone() })
///     .spool(false);
///
/// let guard = crashbox::init(options.clone())?;
/// crashbox::capture_message("from the clone", Level::Info);
/// assert!(crashbox::flush(Duration::from_secs(5)));
/// drop(guard);
///
/// let guard = crashbox::init(options)?;
/// crashbox::capture_message("from the original", Level::Info);
/// assert!(crashbox::flush(Duration::from_secs(5)));
/// drop(guard);
///
/// // One transport instance saw both: its send count went on.
/// assert_eq!(
///     *seen.lock().unwrap(),
///     [(0, "from the clone".to_owned()), (1, "from the original".to_owned())]
/// );
/// # Ok::<(), crashbox::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Options {
    pub(crate) collector: Option<String>,
    pub(crate) transport: Option<SharedTransport>,
    pub(crate) release: Option<String>,
    pub(crate) environment: String,
    pub(crate) in_app_include: Vec<String>,
    pub(crate) in_app_exclude: Vec<String>,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) max_breadcrumbs: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) panic_hook: bool,
    pub(crate) crash_signals: Vec<crate::crash::Signal>,
    pub(crate) crash_message: Option<crate::capture::panic::CrashMessage>,
    pub(crate) before_send: Option<BeforeSend>,
    pub(crate) service_name: Option<String>,
    pub(crate) retry_initial: Duration,
    pub(crate) retry_max: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) spool: Option<bool>,
    pub(crate) spool_dir: Option<PathBuf>,
    pub(crate) spool_max_reports: usize,
    pub(crate) spool_max_age: Duration,
    pub(crate) panic_flush_timeout: Duration,
    pub(crate) aggregation_window: Duration,
    pub(crate) aggregation_burst: u32,
    pub(crate) max_reports_per_minute: u32,
    pub(crate) sample_rate: f64,
    pub(crate) scrub: bool,
    pub(crate) scrub_keys: Vec<String>,
    pub(crate) send_default_pii: bool,
    pub(crate) debug: bool,
    pub(crate) symbolicate: bool,
    /// HTTP headers for the network collectors, in the order given.
    pub(crate) headers: Vec<(String, String)>,
    /// More OTLP resource attributes, in the order given.
    pub(crate) resource_attributes: Vec<(String, String)>,
    /// Whether an OTLP collector's URL is its logs URL as is
    /// (`OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`).
    pub(crate) otlp_url_as_given: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options::new()
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field(
                "collector",
                &self.collector.as_deref().map(crate::collector::redact),
            )
            .field("custom_transport", &self.transport.is_some())
            .field("release", &self.release)
            .field("environment", &self.environment)
            .field("in_app_include", &self.in_app_include)
            .field("in_app_exclude", &self.in_app_exclude)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("max_breadcrumbs", &self.max_breadcrumbs)
            .field("queue_capacity", &self.queue_capacity)
            .field("panic_hook", &self.panic_hook)
            .field("crash_message", &self.crash_message)
            .field("crash_signals", &self.crash_signals)
            .field("before_send", &self.before_send.is_some())
            .field("service_name", &self.service_name)
            .field("retry_initial", &self.retry_initial)
            .field("retry_max", &self.retry_max)
            .field("max_attempts", &self.max_attempts)
            .field("spool", &self.spool)
            .field("spool_dir", &self.spool_dir)
            .field("spool_max_reports", &self.spool_max_reports)
            .field("spool_max_age", &self.spool_max_age)
            .field("panic_flush_timeout", &self.panic_flush_timeout)
            .field("aggregation_window", &self.aggregation_window)
            .field("aggregation_burst", &self.aggregation_burst)
            .field("max_reports_per_minute", &self.max_reports_per_minute)
            .field("sample_rate", &self.sample_rate)
            .field("scrub", &self.scrub)
            .field("scrub_keys", &self.scrub_keys)
            .field("send_default_pii", &self.send_default_pii)
            .field("debug", &self.debug)
            .field("symbolicate", &self.symbolicate)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(name, _)| (name.as_str(), "***"))
                    .collect::<Vec<_>>(),
            )
            .field("resource_attributes", &self.resource_attributes)
            .finish_non_exhaustive()
    }
}

/// The default of [`Options::aggregation_burst`].
pub const DEFAULT_AGGREGATION_BURST: u32 = 10;

/// The default of [`Options::max_reports_per_minute`].
pub const DEFAULT_MAX_REPORTS_PER_MINUTE: u32 = 600;

/// The largest accepted `queue_capacity`; beyond it a storm would only buy memory.
pub const MAX_QUEUE_CAPACITY: usize = 1 << 20;

impl Options {
    /// Defaults: with no collector, reports are summed up on stderr in debug
    /// builds and kept in a file in release builds (see
    /// [`collector`](Options::collector)), environment `development` in debug builds
    /// and `production` otherwise, shutdown timeout 2 s, 100 breadcrumbs,
    /// a queue of 1024 reports, panic hook on, repeats beyond the first 10
    /// aggregated over 60 s,
    /// a rate limit of 600 reports a minute, every capture kept (sample rate 1.0),
    /// secrets scrubbed, no default PII.
    pub fn new() -> Self {
        Options {
            collector: None,
            transport: None,
            release: None,
            environment: if cfg!(debug_assertions) {
                "development"
            } else {
                "production"
            }
            .to_owned(),
            in_app_include: Vec::new(),
            in_app_exclude: Vec::new(),
            shutdown_timeout: Duration::from_secs(2),
            max_breadcrumbs: 100,
            queue_capacity: 1024,
            panic_hook: true,
            crash_message: None,
            crash_signals: crate::crash::Signal::ALL.to_vec(),
            before_send: None,
            service_name: None,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            max_attempts: 6,
            spool: None,
            spool_dir: None,
            spool_max_reports: 100,
            spool_max_age: Duration::from_secs(30 * 86_400),
            panic_flush_timeout: Duration::from_secs(2),
            aggregation_window: Duration::from_secs(60),
            aggregation_burst: DEFAULT_AGGREGATION_BURST,
            max_reports_per_minute: DEFAULT_MAX_REPORTS_PER_MINUTE,
            sample_rate: 1.0,
            scrub: true,
            scrub_keys: Vec::new(),
            send_default_pii: false,
            debug: false,
            symbolicate: true,
            headers: Vec::new(),
            resource_attributes: Vec::new(),
            otlp_url_as_given: false,
        }
    }

    /// Where reports go: see the README's collector strings. Parsed by `init`,
    /// which returns a [`ConfigError`] for a malformed one.
    ///
    /// With none (and no [`transport`](Options::transport)), debug builds
    /// print one line per report on stderr (level, kind, message, location,
    /// id) and, once, how to choose a collector; release builds print
    /// nothing and append the reports as JSON lines to `reports.jsonl` in
    /// the spool directory ([`spool_dir`](Options::spool_dir) or its
    /// default), which is renamed to `reports.jsonl.1` when it would pass
    /// 4 MiB. Without a directory for it (no `$XDG_STATE_HOME` or `$HOME`),
    /// release builds print the one-line summaries too. `stderr` prints
    /// whole reports in any build.
    #[must_use]
    pub fn collector(mut self, collector: impl Into<String>) -> Self {
        self.collector = Some(collector.into());
        self
    }

    /// Sends reports through a transport of your own instead of a collector string.
    ///
    /// The options keep this one instance: their clones share it (see
    /// [Clones](Options#clones)), and so do the clients started from them,
    /// one after the other. A client calls it one batch at a time; one
    /// started while a send for an earlier client still runs (after that
    /// client's [`shutdown_timeout`](Options::shutdown_timeout) ran out) has
    /// its first send wait for it.
    #[must_use]
    pub fn transport(mut self, transport: impl Transport + 'static) -> Self {
        self.transport = Some(SharedTransport::new(Box::new(transport)));
        self
    }

    /// The release, such as `crashbox::release!()`. Its crate name (before `@`)
    /// also counts as an in-app prefix.
    #[must_use]
    pub fn release(mut self, release: impl Into<String>) -> Self {
        self.release = Some(release.into());
        self
    }

    /// The environment, such as `production` or `staging`.
    #[must_use]
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = environment.into();
        self
    }

    /// Marks frames whose function path starts with `prefix` (such as `myapp::`
    /// or `myapp`) as in-app.
    #[must_use]
    pub fn in_app_include(mut self, prefix: impl Into<String>) -> Self {
        self.in_app_include.push(prefix.into());
        self
    }

    /// Marks frames whose function path starts with `prefix` as not in-app,
    /// even where an include rule matches.
    #[must_use]
    pub fn in_app_exclude(mut self, prefix: impl Into<String>) -> Self {
        self.in_app_exclude.push(prefix.into());
        self
    }

    /// How long dropping the [`Guard`](crate::Guard) may wait for delivery (default 2 s).
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How many breadcrumbs to keep (default 100, at most 1000).
    #[must_use]
    pub fn max_breadcrumbs(mut self, max: usize) -> Self {
        self.max_breadcrumbs = max;
        self
    }

    /// How many captured reports may wait for the worker (default 1024). When
    /// the queue is full, a capture is dropped and counted in
    /// [`Stats::dropped_queue_full`](crate::Stats::dropped_queue_full).
    #[must_use]
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Whether `init` installs the panic hook (default `true`).
    #[must_use]
    pub fn panic_hook(mut self, install: bool) -> Self {
        self.panic_hook = install;
        self
    }

    /// The fatal signals `init` installs crashbox's signal handler for
    /// (default: all of [`Signal::ALL`](crate::Signal::ALL); Linux only).
    /// An empty list installs none.
    ///
    /// When one arrives (a segfault, a stack overflow, `abort()`, a double
    /// panic), the handler writes a raw record into a file it created in
    /// the spool beforehand, notes the crash in the run state, and hands
    /// the signal to the handler installed before it (or the default
    /// action), so the exit status, core dumps and Rust's own
    /// stack-overflow message stay as they were. The next run's `init`
    /// turns the record into a `fatal` report of kind
    /// [`Kind::Crash`](crate::Kind::Crash), with the signal's name as the
    /// exception type and a message such as `SIGSEGV at 0x0 (address not
    /// mapped)`, and [`last_run`](crate::last_run) says the previous run
    /// crashed. It needs the spool (a network collector, a file, or
    /// [`spool`](Options::spool)): without one no handler is installed.
    /// Dropping the [`Guard`](crate::Guard) puts back the handlers it replaced.
    ///
    /// ```
    /// use crashbox::{Options, Signal};
    /// // Leave SIGFPE to a numeric library that handles it itself.
    /// let options = Options::new().crash_signals([Signal::Segv, Signal::Bus, Signal::Abrt]);
    /// # let _ = options;
    /// // No signal handler at all.
    /// let options = Options::new().crash_signals([]);
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn crash_signals(
        mut self,
        signals: impl IntoIterator<Item = crate::crash::Signal>,
    ) -> Self {
        self.crash_signals.clear();
        for signal in signals {
            if !self.crash_signals.contains(&signal) {
                self.crash_signals.push(signal);
            }
        }
        self
    }

    /// A message for the person running the program, printed on stderr
    /// after each panic's report is captured (and written to the spool, and
    /// waited for where the hook waits): what happened, where the report
    /// went, its id and whom to send it to (see [`CrashMessage`](crate::CrashMessage)).
    /// Off by default; `None` turns it off again.
    ///
    /// crashbox's hook prints it after the hook installed before it has run,
    /// so it comes after Rust's `thread 'main' panicked at …` lines; to
    /// print only the crash message, install a silent hook
    /// (`std::panic::set_hook(Box::new(|_| {}))`) before `init`.
    /// [`capture_panic`](crate::capture_panic) prints it before it returns.
    ///
    /// ```
    /// let options = crashbox::Options::new()
    ///     .crash_message(crashbox::CrashMessage::new().contact("bugs@example.com"));
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn crash_message(
        mut self,
        message: impl Into<Option<crate::capture::panic::CrashMessage>>,
    ) -> Self {
        self.crash_message = message.into();
        self
    }

    /// Runs `hook` on the worker thread for each processed report; returning
    /// `None` drops the report (counted as filtered). A panicking hook is caught:
    /// the report is sent unchanged.
    ///
    /// ```
    /// let options = crashbox::Options::new().before_send(|mut report| {
    ///     report.tags.remove("session");
    ///     Some(report)
    /// });
    /// # let _ = options;
    /// ```
    pub fn before_send(
        mut self,
        hook: impl Fn(Report) -> Option<Report> + Send + Sync + 'static,
    ) -> Self {
        self.before_send = Some(Arc::new(hook));
        self
    }

    /// The service name the OTLP collector reports (default: the release's
    /// crate name, else the executable's file name).
    #[must_use]
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Back-off between delivery attempts: the first wait is about `initial`
    /// (default 1 s), doubling with jitter up to `max` (default 60 s).
    #[must_use]
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry_initial = initial;
        self.retry_max = max;
        self
    }

    /// Delivery attempts per batch before it is dropped and counted in
    /// [`Stats::dropped_retries_exhausted`](crate::Stats::dropped_retries_exhausted)
    /// (default 6). Rate-limit waits do not count as attempts.
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Whether reports pass through the on-disk spool. By default they do
    /// for network collectors, `file://` and custom transports (and for any
    /// collector when [`spool_dir`](Options::spool_dir) is set), and not for
    /// `memory` and `stderr`. With a spool, every capture is written there as
    /// the worker takes it in, before its symbols are resolved, so a killed
    /// process loses none it handed over.
    #[must_use]
    pub fn spool(mut self, enabled: bool) -> Self {
        self.spool = Some(enabled);
        self
    }

    /// Where the spool lives (default `$XDG_STATE_HOME/crashbox/<program>-<hash>`,
    /// else `~/.local/state/crashbox/<program>-<hash>`, the hash being of the
    /// executable's path; with neither variable set, no default spool).
    /// A directory that cannot be used, is owned by another user, or stays
    /// writable by group or others after a chmod to 0700 is refused: `init`
    /// still succeeds, without a spool, and says so on stderr and in
    /// [`Stats::spool_refused`](crate::Stats::spool_refused).
    #[must_use]
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    /// How many reports the spool keeps for replay (default 100); the oldest go first.
    #[must_use]
    pub fn spool_max_reports(mut self, max: usize) -> Self {
        self.spool_max_reports = max;
        self
    }

    /// How old a spooled report may be and still be replayed (default 30 days).
    #[must_use]
    pub fn spool_max_age(mut self, age: Duration) -> Self {
        self.spool_max_age = age;
        self
    }

    /// How long the panic hook waits for its report to be delivered, under
    /// `panic = "abort"` (before the process aborts) and with a `file://` or
    /// `stderr` collector (where delivery is a local write, and a process
    /// that panicked may end without running destructors); default 2 s. With
    /// a spool, the report is in it either way, and a later run delivers it.
    #[must_use]
    pub fn panic_flush_timeout(mut self, timeout: Duration) -> Self {
        self.panic_flush_timeout = timeout;
        self
    }

    /// How long repeats of one error are aggregated (default 60 s; at most a
    /// day). Within the window the first [`aggregation_burst`](Options::aggregation_burst)
    /// reports of an error are sent at once; later repeats are counted in
    /// [`Stats::aggregated`](crate::Stats::aggregated), and when the window
    /// ends one of them is sent carrying their total in
    /// [`Report::count`](crate::Report::count). [`flush`](crate::flush) and
    /// shutdown end every window. `Duration::ZERO` sends every report.
    ///
    /// ```
    /// use std::time::Duration;
    /// let guard = crashbox::init(
    ///     crashbox::Options::new()
    ///         .collector("memory")
    ///         .aggregation_window(Duration::from_secs(10))
    ///         .aggregation_burst(1),
    /// )?;
    /// let err = std::io::Error::other("disk full");
    /// for _ in 0..100 {
    ///     crashbox::capture_error(&err);
    /// }
    /// crashbox::flush(Duration::from_secs(5));
    /// let reports = crashbox::take_memory_reports();
    /// assert_eq!(reports.len(), 2);
    /// assert_eq!(reports[0].count, 1);
    /// assert_eq!(reports[1].count, 99);
    /// # drop(guard);
    /// # Ok::<(), crashbox::ConfigError>(())
    /// ```
    #[must_use]
    pub fn aggregation_window(mut self, window: Duration) -> Self {
        self.aggregation_window = window;
        self
    }

    /// How many occurrences of one error are sent as reports of their own
    /// in each [aggregation window](Options::aggregation_window) (default
    /// [`DEFAULT_AGGREGATION_BURST`], 10), each with `count` 1, so that a
    /// collector's event counts, frequency charts and alert thresholds are
    /// exact for errors that occur fewer times than that. Occurrences beyond
    /// it are only counted, and go out as one report carrying their `count`
    /// when the window closes: a storm costs at most `burst + 1` reports per
    /// error per window. `0` and `1` both send only the first occurrence on
    /// its own.
    ///
    /// Occurrences of one error are reports with the same fingerprint
    /// ([`Report::group`](crate::Report::group)), exception types and
    /// messages, once the variable parts of the messages (numbers, hex
    /// numbers and strings, UUIDs and other ids) are set aside: `"burst
    /// error 17"` and `"burst error 18"` are one error, `"Permission denied
    /// (os error 13)"` and `"No space left on device (os error 28)"` are two,
    /// even from one function.
    ///
    /// ```
    /// use std::time::Duration;
    /// let guard = crashbox::init(
    ///     crashbox::Options::new()
    ///         .collector("memory")
    ///         .aggregation_burst(3),
    /// )?;
    /// for attempt in 0..10 {
    ///     let err = std::io::Error::other(format!("attempt {attempt} timed out"));
    ///     crashbox::capture_error(&err);
    /// }
    /// crashbox::flush(Duration::from_secs(5));
    /// let counts: Vec<u64> = crashbox::take_memory_reports()
    ///     .iter()
    ///     .map(|r| r.count)
    ///     .collect();
    /// // Three sent as they happened, then one standing for the other seven.
    /// assert_eq!(counts, [1, 1, 1, 7]);
    /// # drop(guard);
    /// # Ok::<(), crashbox::ConfigError>(())
    /// ```
    #[must_use]
    pub fn aggregation_burst(mut self, burst: u32) -> Self {
        self.aggregation_burst = burst;
        self
    }

    /// The most reports sent on their own per minute: the first reports of
    /// aggregation windows and the rest of their
    /// [bursts](Options::aggregation_burst) (default
    /// [`DEFAULT_MAX_REPORTS_PER_MINUTE`], 600): a bucket of that many
    /// refilled evenly over the minute. A first report over it is dropped and
    /// counted in [`Stats::dropped_rate_limited`](crate::Stats::dropped_rate_limited),
    /// and its window does not open; a later one of a burst is counted in
    /// the report that closes its window instead. Panics are never held to
    /// it, nor are the reports that close windows (at most one per first
    /// report, so at most about twice the limit is sent a minute). `0` turns
    /// the limit off.
    #[must_use]
    pub fn max_reports_per_minute(mut self, max: u32) -> Self {
        self.max_reports_per_minute = max;
        self
    }

    /// The share of captured errors and messages kept, from `0.0` to `1.0`
    /// (default `1.0`). The choice is made on the caller's thread before the
    /// stack is walked; the ones left out are counted in
    /// [`Stats::dropped_sampled`](crate::Stats::dropped_sampled). Panics are
    /// always kept. `init` refuses a value outside `0.0..=1.0`.
    #[must_use]
    pub fn sample_rate(mut self, rate: f64) -> Self {
        self.sample_rate = rate;
        self
    }

    /// Whether secrets are scrubbed (default `true`): before a report is
    /// spooled or sent, values under keys that look secret (`password`,
    /// `token`, `api_key`, `authorization`, `cookie`, `session`, … in any
    /// case and separator style) and credentials found in any text (bearer
    /// tokens, JWTs, AWS access keys, passwords in URLs, PEM private keys,
    /// `password=…` pairs) are replaced by `[redacted]`. See the README for
    /// the full rules.
    ///
    /// ```
    /// let (_, reports) = crashbox::testing::capture(|| {
    ///     crashbox::configure_scope(|s| s.set_tag("api_key", "k-123"));
    ///     crashbox::capture_message(
    ///         "GET https://bob:hunter2@example.com failed",
    ///         crashbox::Level::Error,
    ///     );
    ///     crashbox::configure_scope(|s| s.remove_tag("api_key"));
    /// });
    /// assert_eq!(reports[0].tag("api_key"), Some("[redacted]"));
    /// assert_eq!(reports[0].message, "GET https://bob:[redacted]@example.com failed");
    /// ```
    #[must_use]
    pub fn scrub(mut self, enabled: bool) -> Self {
        self.scrub = enabled;
        self
    }

    /// More keys whose values are secret, matched like the built-in ones
    /// (case and separators do not matter: `card_number` also matches
    /// `cardNumber` and `customer-card-number`).
    pub fn scrub_keys<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scrub_keys.extend(keys.into_iter().map(Into::into));
        self
    }

    /// Whether crashbox adds personal data of its own (default `false`).
    /// With `true`, a report whose user has no username gets the login name
    /// of the process's user, and the Sentry collector asks the server to
    /// record the sender's IP address. A user's IP address and username set
    /// explicitly with [`Scope::set_user`](crate::Scope::set_user) are sent
    /// either way.
    #[must_use]
    pub fn send_default_pii(mut self, enabled: bool) -> Self {
        self.send_default_pii = enabled;
        self
    }

    /// Says on stderr what crashbox decides, one line per event, prefixed
    /// `[crashbox]`: reports dropped (by reason), filtered by `before_send`,
    /// retried, held by a collector's rate limit, written to, replayed from
    /// or discarded by the spool (off by default; `CRASHBOX_DEBUG=1` turns
    /// it on in [`Options::from_env`]). Drops counted on a caller's thread
    /// (a full queue) are written there.
    ///
    /// ```
    /// let options = crashbox::Options::new().collector("memory").debug(true);
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn debug(mut self, enabled: bool) -> Self {
        self.debug = enabled;
        self
    }

    /// Whether the worker resolves frames to function, file and line
    /// (default `true`). With `false` it loads no debug information at all:
    /// frames keep only their absolute `address` (none is in-app), and the
    /// report's [`images`](crate::Report::images) let a server that
    /// symbolicates (Sentry, with the debug files uploaded) or
    /// `crashbox symbolicate` fill them in later. For processes that must
    /// stay small, and for stripped binaries. `CRASHBOX_SYMBOLICATE=0`
    /// (or `false`, `off`, `no`) sets it from the environment with
    /// [`from_env`](Options::from_env).
    ///
    /// With `true`, the debug information loaded for a report (tens of MiB
    /// for a binary built with debug info) is let go once the worker has
    /// processed no capture for 10 seconds; the next report loads it again.
    ///
    /// ```
    /// let options = crashbox::Options::new().symbolicate(false);
    /// # let _ = options;
    /// ```
    #[must_use]
    pub fn symbolicate(mut self, enabled: bool) -> Self {
        self.symbolicate = enabled;
        self
    }

    /// Adds an HTTP header to every request of the network collectors
    /// (`http(s)://`, `otlp+`, `sentry+`), such as an API key or an
    /// `Authorization`; repeatable. Values are secret: `Debug` output and
    /// error messages show names only, values as `***`. A name that is not
    /// an HTTP token, a value with control characters (line breaks
    /// included) or non-ASCII text, and the headers crashbox sets itself
    /// (`Content-Type`, `Content-Encoding`, `Content-Length`,
    /// `Transfer-Encoding`, `Host`) make `init` return a [`ConfigError`].
    ///
    /// ```
    /// let options = crashbox::Options::new()
    ///     .collector("otlp+https://otlp.example.com")
    ///     .header("Authorization", "Bearer s3cr3t");
    /// assert!(!format!("{options:?}").contains("s3cr3t"));
    /// ```
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds an OTLP resource attribute (`key`, a string `value`), such as
    /// `service.namespace` or `k8s.pod.name`; repeatable, a later one for a
    /// key replacing an earlier one, and all of them crashbox's own but for
    /// `service.name` (set that with [`service_name`](Options::service_name)).
    /// `OTEL_RESOURCE_ATTRIBUTES` sets these in [`from_env`](Options::from_env).
    #[must_use]
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.resource_attributes.retain(|(k, _)| *k != key);
        self.resource_attributes.push((key, value.into()));
        self
    }

    /// The environment set with [`environment`](Options::environment) (or
    /// the default, or `CRASHBOX_ENVIRONMENT` with [`from_env`](Options::from_env)).
    pub fn environment_name(&self) -> &str {
        &self.environment
    }
}
