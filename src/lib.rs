//! # crashbox
//!
//! Error capture for Rust programs: panics and reported errors are captured
//! on the spot at little cost to the calling thread, processed on a
//! background worker (symbols, scope, machine context, size limits) and
//! shipped to the collector the application chose.
//!
//! ## In 30 seconds
//!
//! ```
//! use crashbox::{Level, Options, ResultExt};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // CRASHBOX_COLLECTOR names the collector; without one, debug builds
//!     // print a line per report on stderr and release builds keep them on disk.
//!     let _guard = crashbox::init(Options::from_env().release(crashbox::release!()))?;
//!
//!     crashbox::configure_scope(|scope| scope.set_tag("component", "ingest"));
//!
//!     // A handled error, reported where it happens.
//!     let _ = "not a number".parse::<u32>().report();
//!     crashbox::capture_message("started without a cache", Level::Warning);
//!     Ok(())
//!     // Dropping the guard delivers what is queued (at most 2 s by default).
//! }
//! ```
//!
//! A library calls [`capture_error`] or [`ResultExt::report`] and pays one
//! atomic load when no application installed a client. Tests use
//! [`testing::capture`] and [`testing::assert_no_reports`].
//!
//! ## What runs where
//!
//! The caller's thread walks the stack from its caller's frame outwards
//! (addresses only: crashbox's own frames are left out by stack address, not
//! by symbol name), reads the error's source chain, snapshots the scope and
//! queues the capture without blocking; a full queue drops the capture and
//! counts it ([`stats`]). A repeat of an error beyond the first
//! [`Options::aggregation_burst`] (10) in the current aggregation window is
//! only counted, with one compare-and-swap. The worker thread scrubs
//! secrets, resolves symbols (cached by address; not for the system's shared
//! libraries), removes std's panic machinery, marks in-app frames (by source
//! path, else by the crate that expanded [`release!`]), records the loaded
//! images the frames fall in, merges scopes, adds the machine context,
//! fingerprints the report, enforces the [`limits`], aggregates repeats
//! ([`Options::aggregation_window`]), runs `before_send`, applies the rate
//! limit and hands batches to the [`Transport`]. Every capture ends in
//! exactly one counter of [`Stats`] (see [`Stats::in_flight`]).
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// What the `crashbox spool` command reads in a spool directory; not part of the API.
#[doc(hidden)]
#[path = "cli_hooks.rs"]
pub mod __cli;
/// Entry points for the fuzz targets in `fuzz/`; not part of the API.
#[doc(hidden)]
#[path = "fuzz_hooks.rs"]
pub mod __fuzz;
#[cfg(feature = "anyhow")]
#[cfg_attr(docsrs, doc(cfg(feature = "anyhow")))]
pub mod anyhow;
mod capture;
mod client;
mod collector;
mod context;
mod crash;
mod deadline;
mod error;
mod event;
#[cfg(feature = "eyre")]
#[cfg_attr(docsrs, doc(cfg(feature = "eyre")))]
pub mod eyre;
pub mod future;
mod hash;
#[cfg(target_os = "linux")]
mod images;
#[cfg(not(target_os = "linux"))]
#[path = "images_fallback.rs"]
mod images;
pub mod limits;
#[cfg(feature = "log")]
#[cfg_attr(docsrs, doc(cfg(feature = "log")))]
pub mod log;
#[cfg(target_os = "linux")]
mod mapped_files;
#[cfg(not(target_os = "linux"))]
#[path = "mapped_files_fallback.rs"]
mod mapped_files;
mod options;
mod pipeline;
mod rand;
mod record;
mod reentry;
mod report;
mod scope;
mod spool;
mod stats;
pub mod testing;
pub mod thread;
#[cfg(test)]
mod tidy;
mod time;
#[cfg(feature = "tracing")]
#[cfg_attr(docsrs, doc(cfg(feature = "tracing")))]
pub mod tracing;
pub mod transport;
mod worker;

use std::error::Error;
use std::panic::Location as StdLocation;
use std::time::Duration;

use capture::stack::StackMark;

pub use capture::panic::{capture_panic, CrashMessage};
pub use client::{init, last_run, spool_dir, Guard};
pub use collector::{Collector, Dsn, Endpoint};
pub use crash::Signal;
pub use error::ConfigError;
pub use event::{Event, MAX_EVENT_EXTRA};
#[doc(hidden)]
pub use options::__application_crate;
pub use options::Options;
pub use options::{DEFAULT_AGGREGATION_BURST, DEFAULT_MAX_REPORTS_PER_MINUTE, MAX_QUEUE_CAPACITY};
#[doc(hidden)]
pub use pipeline::symbolicate::frames_from_resolved as __frames_from_resolved;
pub use pipeline::BeforeSend;
pub use report::Image;
pub use report::{
    Breadcrumb, Context, ExceptionInfo, Frame, Kind, Level, Location, ParseError, Report, ReportId,
    Sdk, ThreadInfo, User,
};
pub use scope::Scope;
pub use spool::LastRun;
pub use stats::{stats, Stats};
pub use thread::bind;
pub use transport::memory::{reports as memory_reports, take as take_memory_reports};
pub use transport::{Transport, TransportError, MAX_BATCH};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// Captures `err` and its source chain as a report of level `error`.
///
/// Returns the report's id, or `None` when no report of its own was made:
/// no client installed, the queue was full, the sample rate left it out, or
/// it is a repeat counted into an aggregated report (see
/// [`Options::aggregation_window`]). With no client this is one atomic load.
///
/// ```
/// let (_, reports) = crashbox::testing::capture(|| {
///     let err = std::io::Error::new(std::io::ErrorKind::Other, "disk on fire");
///     crashbox::capture_error(&err)
/// });
/// assert_eq!(reports[0].message, "disk on fire");
/// assert_eq!(reports[0].kind, crashbox::Kind::Error);
/// ```
// The entry points are `#[inline(always)]`: the stack mark they take must be
// in the caller's frame (see `capture::stack`).
#[track_caller]
#[inline(always)]
pub fn capture_error<E: Error + ?Sized>(err: &E) -> Option<ReportId> {
    if !capture::install::is_active() {
        return None;
    }
    let anchor = 0u8;
    capture_error_at(err, StdLocation::caller(), StackMark::new(&anchor))
}

#[inline(never)]
fn capture_error_at<E: Error + ?Sized>(
    err: &E,
    location: &'static StdLocation<'static>,
    mark: StackMark,
) -> Option<ReportId> {
    capture::entry::error(|| capture::error::chain(err), location, mark)
}

/// Captures a message at `level`, with the caller's stack and location.
///
/// ```
/// let (_, reports) = crashbox::testing::capture(|| {
///     crashbox::capture_message("queue is 90% full", crashbox::Level::Warning);
/// });
/// assert_eq!(reports[0].kind, crashbox::Kind::Message);
/// ```
#[track_caller]
#[inline(always)]
pub fn capture_message(message: impl AsRef<str>, level: Level) -> Option<ReportId> {
    if !capture::install::is_active() {
        return None;
    }
    let anchor = 0u8;
    capture_message_at(
        message.as_ref(),
        level,
        StdLocation::caller(),
        StackMark::new(&anchor),
    )
}

#[inline(never)]
fn capture_message_at(
    message: &str,
    level: Level,
    location: &'static StdLocation<'static>,
    mark: StackMark,
) -> Option<ReportId> {
    capture::entry::message(message, level, location, mark)
}

/// Reporting for `Result`: `do_it().report()?` captures the error, if any,
/// and returns the result unchanged.
///
/// ```
/// use crashbox::ResultExt;
///
/// fn parse(s: &str) -> Result<u8, std::num::ParseIntError> {
///     s.parse::<u8>().report()
/// }
/// let (_, reports) = crashbox::testing::capture(|| parse("300"));
/// assert_eq!(reports.len(), 1);
/// ```
///
/// The trait is sealed: crashbox implements it, for `Result`s of errors.
pub trait ResultExt<T, E>: sealed::Sealed {
    /// Captures the `Err` (see [`capture_error`]) and returns `self`.
    fn report(self) -> Self;
}

mod sealed {
    /// Keeps [`ResultExt`](super::ResultExt) for the types crashbox implements it for.
    pub trait Sealed {}
    impl<T, E: std::error::Error> Sealed for Result<T, E> {}
}

impl<T, E: Error> ResultExt<T, E> for Result<T, E> {
    #[track_caller]
    #[inline(always)]
    fn report(self) -> Self {
        if let Err(err) = &self {
            if capture::install::is_active() {
                let anchor = 0u8;
                capture_error_at(err, StdLocation::caller(), StackMark::new(&anchor));
            }
        }
        self
    }
}

/// Changes the scope of the current hub: the process-wide scope, or inside
/// [`testing::capture`] the test's own. Updates from many threads are
/// serialized, never lost; capturing inside `f` is fine. (A nested
/// `configure_scope` inside `f` works on its own copy, which the outer call
/// then replaces: change the `scope` argument instead.)
///
/// ```
/// crashbox::configure_scope(|scope| {
///     scope.set_tag("tenant", "acme");
///     scope.set_user(Some(crashbox::User::with_id("42")));
/// });
/// ```
pub fn configure_scope<R>(f: impl FnOnce(&mut Scope) -> R) -> R {
    scope::with_current_hub(|hub| hub.configure(f))
}

/// Runs `work` with an extra scope layer on this thread, set up by
/// `configure`. Reports captured inside carry the layer's tags, extra, user,
/// level and fingerprint on top of the hub's scope.
///
/// ```
/// let (_, reports) = crashbox::testing::capture(|| {
///     crashbox::with_scope(
///         |scope| scope.set_tag("request", "r-1"),
///         || crashbox::capture_message("slow", crashbox::Level::Info),
///     );
/// });
/// assert_eq!(reports[0].tag("request"), Some("r-1"));
/// ```
pub fn with_scope<C, F, R>(configure: C, work: F) -> R
where
    C: FnOnce(&mut Scope),
    F: FnOnce() -> R,
{
    let mut layer = Scope::default();
    configure(&mut layer);
    scope::with_layer(layer, work)
}

/// Adds a breadcrumb to the current hub's ring (the newest
/// [`Options::max_breadcrumbs`] are kept). A no-op while nothing would
/// receive reports.
///
/// ```
/// crashbox::add_breadcrumb(crashbox::Breadcrumb::new("user clicked save").category("ui"));
/// ```
pub fn add_breadcrumb(breadcrumb: Breadcrumb) {
    if !capture::install::is_active() {
        return;
    }
    scope::add_crumb(breadcrumb.into());
}

/// Removes all breadcrumbs from the current hub.
pub fn clear_breadcrumbs() {
    scope::with_current_hub(|hub| hub.clear_breadcrumbs());
}

/// Waits up to `timeout` until everything captured so far has been handed to
/// the transport. `true` when it was (or when no client is installed).
/// It also ends every aggregation window, so repeats counted so far go out.
/// Called from `before_send` or a transport (on crashbox's worker thread), it
/// returns `false` at once: the worker cannot wait for itself.
///
/// ```
/// assert!(crashbox::flush(std::time::Duration::from_millis(10)));
/// ```
pub fn flush(timeout: Duration) -> bool {
    match client::current() {
        Some(client) => {
            client.say_if_hook_replaced();
            client.flush(timeout)
        }
        None => true,
    }
}

/// The id of the last report captured on the calling thread (a panic's
/// included), else the last one the installed client captured on any
/// thread; `None` before the first. So a command-line program's `main`
/// sees the id of its own last report (its last error, or a panic on
/// `main` itself), and, when it captured nothing itself, the last report of
/// any thread (a worker thread's panic, say); once `main` has captured
/// something, a later panic on another thread does not change what `main`
/// sees. Only captures that made a report of their own
/// count, the ones whose id `capture_*` returned (not a repeat counted
/// into an aggregated report, nor one left out by the sample rate); inside
/// [`testing::capture`] the thread's captures count, not the process's.
///
/// ```
/// let (id, _) = crashbox::testing::capture(|| {
///     crashbox::capture_message("disk almost full", crashbox::Level::Warning)
/// });
/// assert_eq!(crashbox::last_report_id(), id);
/// ```
pub fn last_report_id() -> Option<ReportId> {
    capture::install::last_report_id()
}
