//! Where captures go, the way the `log` crate reaches its logger: a count of
//! receivers that makes the no-client path one atomic load, a global slot
//! holding the installed [`Sink`] (the client), and a per-thread slot for a
//! sink bound to the thread (a test's, see `testing::capture`), which wins.
//! The caller's side knows only the trait, never what implements it.
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::capture::panic::PanicFacts;
use crate::record::Pending;
use crate::report::{Kind, ReportId};

/// What a capture is handed to.
pub(crate) trait Sink: Send + Sync {
    /// Whether a capture of `kind` is kept (by the sample rate); one left
    /// out is counted by the sink.
    fn sampled_in(&self, _kind: Kind) -> bool {
        true
    }

    /// Takes a capture; its report's id when a report of its own was made.
    fn submit(&self, pending: Pending) -> Option<ReportId>;

    /// A capture was refused because it came from inside crashbox (a
    /// `before_send` hook, a transport), where taking it could loop.
    fn refused_reentrant(&self) {}

    /// The crash message to print on stderr for a panic just captured, if
    /// this sink has one (see `Options::crash_message`).
    fn crash_message(&self, _panic: &PanicFacts<'_>) -> Option<String> {
        None
    }
}

/// How many things would receive a capture: the installed client plus live
/// test captures. Zero makes every capture a single load and a return.
static RECEIVERS: AtomicUsize = AtomicUsize::new(0);
static GLOBAL: RwLock<Option<Arc<dyn Sink>>> = RwLock::new(None);

thread_local! {
    static BOUND: RefCell<Option<Arc<dyn Sink>>> = const { RefCell::new(None) };
    /// The id of the last report captured on this thread.
    static LAST_ON_THREAD: Cell<Option<ReportId>> = const { Cell::new(None) };
}

/// The id of the last report the installed client captured, on any thread.
static LAST_IN_PROCESS: Mutex<Option<ReportId>> = Mutex::new(None);

/// Records `id` as this thread's last report, and, when the installed
/// client (not a test's sink) took it, as the process's.
pub(crate) fn record_report(id: ReportId, process_wide: bool) {
    let _ = LAST_ON_THREAD.try_with(|c| c.set(Some(id)));
    if process_wide {
        *LAST_IN_PROCESS
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(id);
    }
}

/// The id of the last report captured on this thread, else in the process.
pub(crate) fn last_report_id() -> Option<ReportId> {
    LAST_ON_THREAD
        .try_with(Cell::get)
        .ok()
        .flatten()
        .or_else(|| {
            *LAST_IN_PROCESS
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        })
}

/// Whether any capture could be received. The no-client fast path.
#[inline(always)]
pub(crate) fn is_active() -> bool {
    RECEIVERS.load(Ordering::Relaxed) != 0
}

/// Counts a receiver of captures for as long as the value lives.
pub(crate) struct Listener(());

impl Listener {
    pub(crate) fn register() -> Listener {
        RECEIVERS.fetch_add(1, Ordering::SeqCst);
        Listener(())
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        RECEIVERS.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Listener")
    }
}

/// Installs (or, with `None`, removes) the process's sink.
pub(crate) fn set_global(sink: Option<Arc<dyn Sink>>) {
    *GLOBAL.write().unwrap_or_else(PoisonError::into_inner) = sink;
}

/// The sink bound to this thread, else the installed one.
pub(crate) fn current() -> Option<Arc<dyn Sink>> {
    bound().or_else(|| {
        GLOBAL
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    })
}

/// The sink bound to this thread, if any.
pub(crate) fn bound() -> Option<Arc<dyn Sink>> {
    BOUND.try_with(|b| b.borrow().clone()).ok().flatten()
}

/// Binds `sink` to this thread until the guard drops (then the previous
/// binding is back).
pub(crate) fn bind(sink: Option<Arc<dyn Sink>>) -> Bound {
    let previous = BOUND
        .try_with(|b| std::mem::replace(&mut *b.borrow_mut(), sink))
        .ok()
        .flatten();
    Bound { previous }
}

/// Restores the thread's previous sink on drop.
pub(crate) struct Bound {
    previous: Option<Arc<dyn Sink>>,
}

impl Drop for Bound {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = BOUND.try_with(|b| *b.borrow_mut() = previous);
    }
}
