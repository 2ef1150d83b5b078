//! The panic hook: a `fatal` report of kind `panic`, then the previous hook;
//! [`capture_panic`] for an application's own hook, which captures the same
//! way; and the crash message (see [`crash_message`]).
//!
//! crashbox's hook is a boxed value of its own holding a [`Live`] marker: std drops the hook when a later `std::panic::set_hook`
//! replaces it (or when the `Box` that `take_hook` returned is dropped), and
//! the marker's drop counts it in
//! [`Stats::panic_hook_replaced`](crate::Stats::panic_hook_replaced). A
//! client that asked for the hook says so once on stderr when it next
//! flushes or shuts down ([`say_if_replaced`]); the drop itself says
//! nothing, since test harnesses drop the hook as they exit. A hook that
//! keeps crashbox's (to call it from its own) keeps it alive: panics are
//! still captured then, and nothing is counted. Nothing is polled and
//! `take_hook` is never called to look, so no panic on another thread can
//! meet a missing hook and no concurrent `set_hook` can be undone.
use std::any::Any;
use std::cell::Cell;
use std::io::Write;
use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::capture;
use crate::capture::stack::{self, StackMark, Top};
use crate::reentry::Reentry;
use crate::report::{ExceptionInfo, Kind, Level, Location, ReportId};
use crate::stats::STATS;

pub(crate) mod crash_message;

pub use crash_message::CrashMessage;

/// The text of a panic payload (`&str` or `String`), else a placeholder.
pub(crate) fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    }
}

type StdHook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

/// Serializes installing (and calibrating with a temporary hook).
static INSTALLING: Mutex<()> = Mutex::new(());
/// Whether crashbox's hook exists: installed, and not dropped since.
static LIVE: AtomicBool = AtomicBool::new(false);
/// Whether crashbox's hook was dropped since it was last installed.
static REPLACED: AtomicBool = AtomicBool::new(false);
/// Whether the replacement was said on stderr (once per process).
static SAID: AtomicBool = AtomicBool::new(false);
/// The start address of the std function that calls panic hooks, learnt the
/// first time a hook of crashbox's runs (at calibration): where an
/// application's hook chain ends on the stack (see [`capture_panic`]).
static HOOK_CALLER: AtomicUsize = AtomicUsize::new(0);

/// The line said on stderr when crashbox's hook is replaced.
const REPLACED_NOTE: &str = "crashbox: the panic hook was replaced by a later std::panic::set_hook; panics are no longer captured unless that hook calls crashbox::capture_panic (or the hook it replaced)";

/// Lives inside crashbox's hook: its drop is the hook's.
struct Live(());

impl Drop for Live {
    fn drop(&mut self) {
        LIVE.store(false, Ordering::SeqCst);
        REPLACED.store(true, Ordering::SeqCst);
        STATS.panic_hook_replaced.inc();
    }
}

/// For a client that installed crashbox's hook: says on stderr, once per
/// process, that the hook was replaced since (see the module's docs).
pub(crate) fn say_if_replaced() {
    if REPLACED.load(Ordering::SeqCst) && !SAID.swap(true, Ordering::SeqCst) {
        let _ = writeln!(std::io::stderr(), "{REPLACED_NOTE}");
    }
}

/// crashbox's hook: what it hands over to, and the marker of its life.
struct Hook {
    previous: StdHook,
    _live: Live,
}

/// Installs crashbox's hook in front of the current one, unless it is
/// installed (and not replaced since). The hook forwards to the previous hook
/// in every case, except for panics raised inside crashbox itself (a user's
/// `Display` impl, say), which crashbox catches and reports in place.
pub(crate) fn install() {
    if LIVE.load(Ordering::Acquire) {
        return;
    }
    if std::thread::panicking() {
        // `take_hook` would panic on a panicking thread; try again next init.
        return;
    }
    let _installing = INSTALLING.lock().unwrap_or_else(PoisonError::into_inner);
    if LIVE.load(Ordering::Acquire) {
        return;
    }
    let hook = Hook {
        previous: std::panic::take_hook(),
        _live: Live(()),
    };
    LIVE.store(true, Ordering::SeqCst);
    REPLACED.store(false, Ordering::SeqCst);
    std::panic::set_hook(Box::new(move |info| {
        // The mark is in the frame std calls: the hook's own frames are
        // this one and what it calls.
        let anchor = 0u8;
        run_hook(&hook, info, StackMark::new(&anchor), address_of(&anchor));
    }));
    // Now that crashbox's hook is the current one, it can swallow the
    // panics that teach it std's panic machinery.
    stack::calibrate();
}

/// Learns std's panic machinery without leaving crashbox's hook installed
/// (`Options::panic_hook(false)`), so [`capture_panic`] trims it too: a
/// temporary hook swallows the calibration panics and hands any other panic
/// to the current hook, which is put back afterwards. A `set_hook` made by
/// another thread during those few microseconds is undone.
pub(crate) fn prepare() {
    if !cfg!(panic = "unwind") || std::thread::panicking() {
        return;
    }
    let _installing = INSTALLING.lock().unwrap_or_else(PoisonError::into_inner);
    if LIVE.load(Ordering::Acquire) || HOOK_CALLER.load(Ordering::Acquire) != 0 {
        // crashbox's hook calibrated as it was installed.
        return;
    }
    let current: Arc<StdHook> = Arc::new(std::panic::take_hook());
    let forward = current.clone();
    std::panic::set_hook(Box::new(move |info| {
        let anchor = 0u8;
        let mark = StackMark::new(&anchor);
        learn_hook_caller(address_of(&anchor));
        if !stack::calibration_panic(mark) {
            forward(info);
        }
    }));
    stack::calibrate();
    // Dropping the temporary hook drops its clone of `current`.
    drop(std::panic::take_hook());
    match Arc::try_unwrap(current) {
        Ok(hook) => std::panic::set_hook(hook),
        Err(shared) => std::panic::set_hook(Box::new(move |info| shared(info))),
    }
}

/// crashbox's hook, called by the closure std calls, whose frame holds
/// `mark` (at address `here`).
#[inline(never)]
fn run_hook(hook: &Hook, info: &PanicHookInfo<'_>, mark: StackMark, here: usize) {
    if HOOK_CALLER.load(Ordering::Relaxed) == 0 {
        learn_hook_caller(here);
    }
    if stack::calibration_panic(mark) {
        return;
    }
    if Reentry::active() {
        return;
    }
    let key = info as *const PanicHookInfo<'_> as usize;
    let earlier = CAPTURED.try_with(Cell::get).ok().flatten();
    let outcome = match earlier {
        // The application's hook, which holds this one, captured it already
        // with `capture_panic` (and said the crash message).
        Some(earlier) if earlier.key == key && !earlier.by_hook => None,
        // From the mark: std calls this hook directly, unless a hook that
        // keeps crashbox's calls it (then that hook's frames stay on top;
        // looking past them, as `capture_panic` does, costs a second walk,
        // about a third of a panic's capture).
        _ if capture::install::is_active() => Some(capture_at(info, mark)),
        _ => None,
    };
    // While the previous hook runs, `capture_panic` in it returns this id.
    let _ = CAPTURED.try_with(|c| {
        c.set(outcome.as_ref().map(|o| Captured {
            key,
            id: o.id,
            by_hook: true,
        }))
    });
    (hook.previous)(info);
    let _ = CAPTURED.try_with(|c| c.set(None));
    if let Some(outcome) = outcome {
        outcome.say();
    }
}

/// A panic this thread's hooks captured, while they run.
#[derive(Clone, Copy)]
struct Captured {
    /// The `PanicHookInfo`'s address: the same for every hook of one panic.
    key: usize,
    id: Option<ReportId>,
    /// Whether crashbox's own hook captured it (and clears this after),
    /// rather than `capture_panic` in the application's hook.
    by_hook: bool,
}

thread_local! {
    static CAPTURED: Cell<Option<Captured>> = const { Cell::new(None) };
}

/// What a panic's capture made: its report's id and the crash message to say.
struct Outcome {
    id: Option<ReportId>,
    message: Option<String>,
}

impl Outcome {
    /// Says the crash message, if the client has one, on stderr.
    fn say(self) {
        if let Some(text) = self.message {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(text.as_bytes());
            let _ = stderr.flush();
        }
    }
}

/// Captures the panic `info` describes as crashbox's own hook does, for an
/// application that installs a panic hook of its own: a `fatal` report of
/// kind `panic` with the panic's message, location and thread, its stack
/// starting at the function that panicked (your hook's frames and std's
/// panic machinery left out), written to the spool before this returns, and
/// waited for up to [`Options::panic_flush_timeout`](crate::Options::panic_flush_timeout)
/// where the hook waits (`file://` and `stderr` collectors, `panic = "abort"`).
/// Then the [crash message](crate::Options::crash_message), if one is set,
/// is printed on stderr.
///
/// Returns the report's id; `None` when no client is installed (or the
/// capture was dropped). Call it from a panic hook only: `info` is that
/// hook's argument.
///
/// With a hook of your own, either install it before `init` (crashbox's
/// hook then captures each panic and calls yours), or call `capture_panic`
/// from it and pass [`Options::panic_hook(false)`](crate::Options::panic_hook),
/// so that crashbox installs no hook for yours to replace. Either way a
/// panic is captured once: called while crashbox's hook runs (yours is the
/// one it hands over to) `capture_panic` returns that hook's report's id,
/// and crashbox's hook, called by yours after `capture_panic`, captures
/// nothing more.
///
/// ```
/// let options = crashbox::Options::new().collector("memory").panic_hook(false);
/// let guard = crashbox::init(options)?;
/// std::panic::set_hook(Box::new(|info| {
///     if let Some(id) = crashbox::capture_panic(info) {
///         eprintln!("crash report {id}");
///     }
/// }));
/// let _ = std::panic::catch_unwind(|| panic!("out of disk"));
/// assert!(crashbox::flush(std::time::Duration::from_secs(5)));
/// assert!(crashbox::memory_reports().iter().any(|r| r.message == "out of disk"));
/// # drop(guard);
/// # Ok::<(), crashbox::ConfigError>(())
/// ```
///
/// The stack is trimmed by the addresses of std's functions that crashbox
/// learns as `init` starts (or as `testing::capture` first runs); under
/// `panic = "abort"` it cannot learn them, the worker removes std's frames
/// by name, and your hook's frames stay on top.
pub fn capture_panic(info: &PanicHookInfo<'_>) -> Option<ReportId> {
    if !capture::install::is_active() || Reentry::active() {
        return None;
    }
    let key = info as *const PanicHookInfo<'_> as usize;
    if let Some(earlier) = CAPTURED.try_with(Cell::get).ok().flatten() {
        if earlier.key == key && earlier.by_hook {
            return earlier.id;
        }
    }
    let anchor = 0u8;
    let mark = StackMark::new(&anchor);
    let mark = hook_chain_end(address_of(&anchor)).unwrap_or(mark);
    let outcome = capture_at(info, mark);
    let id = outcome.id;
    // For crashbox's hook, if this hook holds it and calls it next (it
    // clears this); when it is gone nothing would.
    if id.is_some() && LIVE.load(Ordering::Acquire) {
        let _ = CAPTURED.try_with(|c| {
            c.set(Some(Captured {
                key,
                id,
                by_hook: false,
            }))
        });
    }
    outcome.say();
    id
}

/// Records the start address of the function that called the hook whose
/// frame holds the local at `mark`: std's caller of panic hooks.
#[inline(never)]
fn learn_hook_caller(mark: usize) {
    let mut found = 0usize;
    let mut visit = |frame: &backtrace::Frame| {
        let sp = frame.sp() as usize;
        if sp == 0 {
            return false;
        }
        if sp <= mark {
            return true;
        }
        found = frame.symbol_address() as usize;
        false
    };
    trace(&mut visit);
    if found != 0 {
        HOOK_CALLER.store(found, Ordering::Release);
    }
}

/// A mark at std's caller of panic hooks, above the application's hook
/// frames (whatever their number and shape): a walk from it starts past
/// them, at std's panic machinery, which [`Top::Panic`] then skips. `None`
/// when that function was never learnt or is not on the stack.
#[inline(never)]
fn hook_chain_end(mark: usize) -> Option<StackMark> {
    let caller = HOOK_CALLER.load(Ordering::Acquire);
    if caller == 0 {
        return None;
    }
    let mut found = None;
    let mut depth = 0;
    let mut visit = |frame: &backtrace::Frame| {
        let sp = frame.sp() as usize;
        depth += 1;
        if sp == 0 || depth > crate::limits::MAX_RAW_FRAMES {
            return false;
        }
        if sp > mark && frame.symbol_address() as usize == caller {
            found = Some(sp);
            return false;
        }
        true
    };
    trace(&mut visit);
    found.map(StackMark::at)
}

/// The address of a local, as a [`StackMark`] holds it.
#[inline(always)]
fn address_of(anchor: &u8) -> usize {
    std::hint::black_box(anchor) as *const u8 as usize
}

fn trace(visit: &mut dyn FnMut(&backtrace::Frame) -> bool) {
    // SAFETY: on unix the walk uses the system unwinder (`_Unwind_Backtrace`),
    // which is safe to call from several threads at once (as in `stack::walk`).
    #[cfg(unix)]
    unsafe {
        backtrace::trace_unsynchronized(visit)
    };
    #[cfg(not(unix))]
    backtrace::trace(visit);
}

/// The capture both the hook and [`capture_panic`] make, the stack starting
/// above `mark` and std's panic machinery.
fn capture_at(info: &PanicHookInfo<'_>, mark: StackMark) -> Outcome {
    let mut message_out = None;
    let id = capture::run(|target| {
        let mut message = payload_text(info.payload());
        let mut truncated = Vec::new();
        if crate::limits::truncate(&mut message, crate::limits::MAX_MESSAGE_BYTES) {
            truncated.push("message".to_owned());
        }
        let mut exception_message = message.clone();
        crate::limits::truncate(
            &mut exception_message,
            crate::limits::MAX_EXCEPTION_MESSAGE_BYTES,
        );
        let exceptions = vec![ExceptionInfo {
            ty: "panic".to_owned(),
            message: exception_message,
        }];
        let location = info.location().map(Location::from_std);
        let facts_message = message.clone();
        let facts_location = location.clone();
        let pending = capture::pending(
            Level::Fatal,
            Kind::Panic,
            message,
            exceptions,
            location,
            truncated,
            mark,
            Top::Panic,
        );
        let id = target.submit(pending);
        message_out = target.crash_message(&PanicFacts {
            id,
            message: &facts_message,
            location: facts_location.as_ref(),
        });
        id
    });
    Outcome {
        id,
        message: message_out,
    }
}

/// A captured panic, as the crash message tells it.
pub(crate) struct PanicFacts<'a> {
    /// The report's id; `None` when none was kept.
    pub(crate) id: Option<ReportId>,
    /// The panic's message.
    pub(crate) message: &'a str,
    /// Where it panicked.
    pub(crate) location: Option<&'a Location>,
}

#[cfg(test)]
mod tests {
    use crate::report::Kind;

    /// Whatever the cargo features (`panic` is a no-op): the hook is always
    /// compiled, and `testing::capture` installs it.
    #[test]
    fn a_test_capture_captures_a_panic_whatever_the_features() {
        let ((), reports) = crate::testing::capture(|| {
            let _ = std::panic::catch_unwind(|| panic!("caught in a unit test"));
        });
        assert_eq!(reports.len(), 1, "{reports:#?}");
        assert_eq!(reports[0].kind, Kind::Panic);
        assert_eq!(reports[0].message, "caught in a unit test");
        assert_eq!(crate::last_report_id(), Some(reports[0].id));
    }
}
