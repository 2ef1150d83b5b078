//! The caller's side of a capture: only what cannot be done later.
//!
//! A capture walks the stack (addresses only), reads the error's text,
//! snapshots the scope and hands a [`Pending`] report to the worker (or to the
//! test sink bound to the thread). Everything else happens in the pipeline.
pub(crate) mod backtrace;
pub(crate) mod error;
pub(crate) mod panic;

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::SystemTime;

use crate::client;
use crate::report::{ExceptionInfo, Kind, Level, Location, ReportId};
use crate::scope::{self, ScopeSnapshot};

/// A captured report before symbolication and enrichment.
pub(crate) struct Pending {
    pub id: ReportId,
    pub timestamp: SystemTime,
    pub level: Level,
    pub kind: Kind,
    pub message: String,
    pub exceptions: Vec<ExceptionInfo>,
    pub addresses: Vec<usize>,
    pub location: Option<Location>,
    pub thread: std::thread::Thread,
    pub scope: ScopeSnapshot,
    /// Fields cut on the caller's thread.
    pub truncated: Vec<String>,
}

thread_local! {
    static IN_CAPTURE: Cell<bool> = const { Cell::new(false) };
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// Marks the thread as inside crashbox; `None` when it already is, so a panic
/// raised while capturing is never captured in turn.
pub(crate) struct Reentry(());

impl Reentry {
    pub(crate) fn enter() -> Option<Reentry> {
        let was = IN_CAPTURE.try_with(|c| c.replace(true)).unwrap_or(true);
        (!was).then_some(Reentry(()))
    }

    /// Whether this thread is inside a crashbox capture.
    pub(crate) fn active() -> bool {
        IN_CAPTURE.try_with(Cell::get).unwrap_or(true)
    }
}

impl Drop for Reentry {
    fn drop(&mut self) {
        let _ = IN_CAPTURE.try_with(|c| c.set(false));
    }
}

/// A per-thread splitmix64 stream, seeded from the OS-randomised hasher keys.
pub(crate) fn random_u128() -> u128 {
    fn next() -> u64 {
        RNG.try_with(|state| {
            let mut s = state.get();
            if s == 0 {
                let mut h = RandomState::new().build_hasher();
                h.write_u128(
                    SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map(|d| d.as_nanos())
                        .unwrap_or(0),
                );
                s = h.finish() | 1;
            }
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            state.set(s);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
        .unwrap_or_else(|_| {
            let mut h = RandomState::new().build_hasher();
            h.write_u8(0);
            h.finish()
        })
    }
    (u128::from(next()) << 64) | u128::from(next())
}

/// Where a capture on this thread goes.
pub(crate) enum Target {
    Client(std::sync::Arc<client::Client>),
    Test(std::sync::Arc<crate::testing::TestSink>),
}

impl Target {
    /// The thread's test sink, else the installed client; `None` when neither exists.
    pub(crate) fn current() -> Option<Target> {
        if let Some(sink) = scope::bound_test_sink() {
            return Some(Target::Test(sink));
        }
        client::current().map(Target::Client)
    }

    pub(crate) fn submit(self, pending: Pending) -> Option<ReportId> {
        crate::stats::STATS.captured.inc();
        match self {
            Target::Client(client) => client.enqueue(pending),
            Target::Test(sink) => Some(sink.accept(pending)),
        }
    }
}

/// The fields every capture shares: id, time, thread, stack and scope.
pub(crate) fn pending(
    level: Level,
    kind: Kind,
    message: String,
    exceptions: Vec<ExceptionInfo>,
    location: Option<Location>,
    truncated: Vec<String>,
) -> Pending {
    let (addresses, cut) = backtrace::capture_addresses();
    let mut truncated = truncated;
    if cut {
        truncated.push("frames".to_owned());
    }
    Pending {
        id: ReportId::random(),
        timestamp: SystemTime::now(),
        level,
        kind,
        message,
        exceptions,
        addresses,
        location,
        thread: std::thread::current(),
        scope: ScopeSnapshot::capture(),
        truncated,
    }
}

/// Runs `f` as a capture: skipped when nothing would receive it, guarded
/// against re-entry, and never unwinding into the caller.
pub(crate) fn run(f: impl FnOnce(Target) -> Option<ReportId>) -> Option<ReportId> {
    let _reentry = Reentry::enter()?;
    let target = Target::current()?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(target)))
        .ok()
        .flatten()
}
