//! The caller's side of a capture: only what cannot be done later.
//!
//! A capture walks the stack (addresses only), reads the error's text,
//! snapshots the scope and hands a [`Pending`] record to the installed
//! [`Sink`](install::Sink) (the client, or a test's sink bound to the
//! thread). Everything else happens in the pipeline.
pub(crate) mod entry;
pub(crate) mod error;
pub(crate) mod facade;
pub(crate) mod install;
#[cfg(any(feature = "anyhow", feature = "eyre"))]
pub(crate) mod origin;
pub(crate) mod panic;
pub(crate) mod stack;

use std::sync::Arc;
use std::time::SystemTime;

use crate::record::Pending;
use crate::reentry::Reentry;
use crate::report::{ExceptionInfo, Kind, Level, Location, ReportId};
use crate::scope::ScopeSnapshot;
use install::Sink;

/// The fields every capture shares: id, time, thread, stack and scope. The
/// stack starts where `mark` and `top` say (see [`stack`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn pending(
    level: Level,
    kind: Kind,
    message: String,
    exceptions: Vec<ExceptionInfo>,
    location: Option<Location>,
    truncated: Vec<String>,
    mark: stack::StackMark,
    top: stack::Top,
) -> Pending {
    let (addresses, cut) = stack::walk(mark, top);
    let mut truncated = truncated;
    if cut {
        truncated.push("frames".to_owned());
    }
    let scope = ScopeSnapshot::capture();
    let raw_key = (!scope.has_fingerprint())
        .then(|| crate::pipeline::aggregate::raw_key(kind, &message, &exceptions, &addresses));
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
        scope,
        truncated,
        raw_key,
        claimed: false,
        extra: Default::default(),
        frames: None,
    }
}

/// Runs `f` as a capture: skipped when nothing would receive it, guarded
/// against re-entry, and never unwinding into the caller.
pub(crate) fn run(f: impl FnOnce(Arc<dyn Sink>) -> Option<ReportId>) -> Option<ReportId> {
    let Some(_reentry) = Reentry::enter() else {
        // A capture from inside crashbox (a before_send hook, a transport):
        // taking it could loop, so it is only counted by the sink.
        if let Some(sink) = install::current() {
            sink.refused_reentrant();
        }
        return None;
    };
    let sink = install::current()?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(sink)))
        .ok()
        .flatten()
}
