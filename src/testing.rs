//! Test support: capture the reports a piece of code emits, or assert it emits none.
//!
//! Each helper binds a private collector to the current thread, so tests
//! running in parallel never see each other's reports, and nothing reaches
//! the application's real collector. Reports come back fully processed
//! (symbolicated, scoped, with context), synchronously: no flush, no sleep.
//!
//! Threads spawned inside the closure report into the same collector when
//! they are started with [`crashbox::thread::spawn`](crate::thread::spawn) or
//! run a closure wrapped by [`crashbox::bind`](crate::bind). A thread started
//! with plain `std::thread::spawn` is not bound: its reports go to the
//! application's client if one is installed, and are not captured here.
//!
//! ```
//! use crashbox::{testing, Level};
//!
//! let (value, reports) = testing::capture(|| {
//!     crashbox::capture_message("cache miss", Level::Warning);
//!     42
//! });
//! assert_eq!(value, 42);
//! assert_eq!(reports.len(), 1);
//! assert_eq!(reports[0].message, "cache miss");
//! assert_eq!(reports[0].level, Level::Warning);
//!
//! testing::assert_no_reports(|| {
//!     let _ = "7".parse::<u8>();
//! });
//! ```
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};

use crate::capture::install::{self, Listener, Sink};
use crate::client;
use crate::options::Options;
use crate::pipeline::Processor;
use crate::record::Pending;
use crate::report::{Report, ReportId};
use crate::scope::{self, BindGuard, Hub};

/// Where a bound thread's captures wait until the helper returns. Processing
/// is deferred to then, so nothing slow or fallible runs inside a panic hook.
pub(crate) struct TestSink {
    pending: Mutex<Vec<Pending>>,
}

/// Test captures stay out of the application's counters: nothing here
/// touches [`Stats`](crate::Stats).
impl Sink for TestSink {
    fn submit(&self, pending: Pending) -> Option<ReportId> {
        let id = pending.id;
        // `last_report_id` on this thread; the process's stays the client's.
        install::record_report(id, false);
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(pending);
        Some(id)
    }
}

impl TestSink {
    fn take_reports(&self) -> Vec<Report> {
        let pending =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        if pending.is_empty() {
            return Vec::new();
        }
        let settings =
            client::current_settings().unwrap_or_else(|| Arc::new(Options::new().settings()));
        let mut processor = Processor::new(settings);
        // A panicking before_send is caught and counted, not captured again.
        let _reentry = crate::reentry::Reentry::enter();
        pending
            .into_iter()
            .filter_map(|p| {
                let report = processor.process(p.into_captured());
                // Test captures stay out of the application's counters.
                processor.before_send(report)
            })
            .collect()
    }
}

/// A private collector bound to this thread while it lives, with a scope
/// of its own.
struct Binding {
    sink: Arc<TestSink>,
    // Field order: unbind first, then stop counting as a receiver.
    _sink: install::Bound,
    _scope: BindGuard,
    _listener: Listener,
}

impl Binding {
    fn new() -> Binding {
        // Reports made through `crashbox-api` are captured too.
        crate::capture::facade::install();
        // Panics are captured whatever the cargo features.
        crate::capture::panic::install();
        let sink = Arc::new(TestSink {
            pending: Mutex::new(Vec::new()),
        });
        let hub = Arc::new(Hub::new());
        let listener = Listener::register();
        Binding {
            _sink: install::bind(Some(sink.clone())),
            _scope: scope::bind_hub(Some(hub), Vec::new()),
            sink,
            _listener: listener,
        }
    }
}

/// Runs `f` and returns its result with every report it emitted, oldest first.
///
/// A panic that `f` catches is a report like any other; a panic that escapes
/// `f` is captured and then resumed, so the test fails as it would have.
///
/// ```
/// let (_, reports) = crashbox::testing::capture(|| {
///     let err = "x".parse::<i32>().unwrap_err();
///     crashbox::capture_error(&err);
/// });
/// assert_eq!(reports[0].exceptions[0].ty, "std::num::ParseIntError");
/// assert!(reports[0].location.as_ref().unwrap().file.ends_with(".rs"));
/// ```
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<Report>) {
    let binding = Binding::new();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let sink = binding.sink.clone();
    drop(binding);
    let reports = sink.take_reports();
    match outcome {
        Ok(value) => (value, reports),
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

/// Runs `f`, failing the test if it emitted any report. The failure lists
/// each report's level, message, exception chain, location and top in-app frames.
///
/// ```should_panic
/// crashbox::testing::assert_no_reports(|| {
///     crashbox::capture_message("unexpected", crashbox::Level::Error);
/// });
/// ```
#[track_caller]
pub fn assert_no_reports<R>(f: impl FnOnce() -> R) -> R {
    let (value, reports) = capture(f);
    if !reports.is_empty() {
        panic!("{}", describe(&reports));
    }
    value
}

/// Fails the test when dropped if any report was emitted on this thread
/// while it lived.
///
/// ```should_panic
/// let _guard = crashbox::testing::forbid_reports();
/// crashbox::capture_message("unexpected", crashbox::Level::Error);
/// ```
pub fn forbid_reports() -> NoReportsGuard {
    NoReportsGuard {
        binding: Some(Binding::new()),
        _not_send: PhantomData,
    }
}

/// Returned by [`forbid_reports`]; checks for reports when dropped.
#[must_use = "the check happens when the guard drops"]
pub struct NoReportsGuard {
    binding: Option<Binding>,
    _not_send: PhantomData<*const ()>,
}

impl std::fmt::Debug for NoReportsGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoReportsGuard").finish_non_exhaustive()
    }
}

impl Drop for NoReportsGuard {
    fn drop(&mut self) {
        let Some(binding) = self.binding.take() else {
            return;
        };
        let sink = binding.sink.clone();
        drop(binding);
        let reports = sink.take_reports();
        if !reports.is_empty() && !std::thread::panicking() {
            panic!("{}", describe(&reports));
        }
    }
}

/// The failure message for unexpected reports.
fn describe(reports: &[Report]) -> String {
    let mut text = format!("expected no crashbox reports, got {}:\n", reports.len());
    for report in reports {
        text.push_str(&report.summary());
    }
    text
}
