//! The stack walk on the caller's thread: return addresses only, from the
//! user's frame outwards.
//!
//! Which frames are crashbox's is decided by stack address, not by symbol
//! name (names vary with the build profile and are gone in stripped
//! binaries). Every public capture entry point takes a [`StackMark`]: the
//! address of a local variable in its own frame. The entry points are
//! `#[inline(always)]`, so that frame is the caller's. The unwinder gives
//! each frame's stack pointer; the stack grows down, so the frames at or
//! below the mark are the marking frame (the last of them) and what it
//! called (the capture, the walker), which are left out.
//!
//! The panic hook cannot mark the panicking function's frame. It marks its
//! own, drops that frame too, and then drops the physical frames of std's
//! panic machinery, known by their function start addresses: at install,
//! crashbox raises a few panics of the common kinds (`unwrap`, `expect`,
//! indexing, `assert_eq!`, ...) inside `catch_unwind` and records the
//! functions between its hook and the panicking function. This works in
//! stripped binaries; under `panic = "abort"` it cannot run, and the names
//! and source files of those frames (when the build has them) let the worker
//! trim them instead.
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::limits;

/// The address of a local variable in the frame of the function that
/// called into crashbox: where the capture's own frames end.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StackMark(usize);

impl StackMark {
    /// Marks the frame that holds `anchor`.
    #[inline(always)]
    pub(crate) fn new(anchor: &u8) -> StackMark {
        StackMark(std::hint::black_box(anchor) as *const u8 as usize)
    }

    /// A mark taken elsewhere: the address of a local variable in the
    /// caller's frame (`crashbox-api`'s entry points take it that way).
    pub(crate) fn at(address: usize) -> StackMark {
        StackMark(address)
    }
}

/// Function start addresses of std's panic machinery, learnt at install.
const MAX_MACHINERY: usize = 32;
static MACHINERY: [AtomicUsize; MAX_MACHINERY] = [const { AtomicUsize::new(0) }; MAX_MACHINERY];
static MACHINERY_LEN: AtomicUsize = AtomicUsize::new(0);

fn is_machinery(function_start: usize) -> bool {
    let len = MACHINERY_LEN.load(Ordering::Acquire).min(MAX_MACHINERY);
    function_start != 0
        && MACHINERY[..len]
            .iter()
            .any(|f| f.load(Ordering::Relaxed) == function_start)
}

fn learn_machinery(function_start: usize) {
    if function_start == 0 || is_machinery(function_start) {
        return;
    }
    let len = MACHINERY_LEN.load(Ordering::Acquire);
    if len < MAX_MACHINERY {
        MACHINERY[len].store(function_start, Ordering::Relaxed);
        MACHINERY_LEN.store(len + 1, Ordering::Release);
    }
}

/// How a walk starts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Top {
    /// At the frame holding the mark (an entry point inlined into its caller).
    Marked,
    /// Above the frame holding the mark and above std's panic machinery (the
    /// mark is in the panic hook's frame).
    Panic,
}

/// Walks the stack and records return addresses, outwards from the frame
/// `top` describes. Returns whether the walk stopped at
/// [`limits::MAX_RAW_FRAMES`].
#[inline(never)]
pub(crate) fn walk(mark: StackMark, top: Top) -> (Vec<usize>, bool) {
    let mut addresses = Vec::with_capacity(64);
    let mut cut = false;
    // The unwinder gives each frame's own stack pointer: the frame holding
    // the mark is the last one at or below it, its callees come before it.
    let mut holder: Option<usize> = None;
    let mut above = false;
    let mut in_machinery = top == Top::Panic;
    let mut push = |ip: usize, addresses: &mut Vec<usize>| {
        if addresses.len() == limits::MAX_RAW_FRAMES {
            cut = true;
            return false;
        }
        addresses.push(ip);
        true
    };
    let mut visit = |frame: &backtrace::Frame| {
        let ip = frame.ip() as usize;
        let sp = frame.sp() as usize;
        if !above {
            // Without a stack pointer (an unwinder that does not give one)
            // nothing can be told apart here; the worker trims by source.
            if sp != 0 && sp <= mark.0 {
                holder = Some(ip);
                return true;
            }
            above = true;
            if let (Top::Marked, Some(holder)) = (top, holder) {
                in_machinery = false;
                if !push(holder, &mut addresses) {
                    return false;
                }
            }
        }
        if in_machinery {
            if is_machinery(frame.symbol_address() as usize) {
                return true;
            }
            in_machinery = false;
        }
        if ip == 0 {
            // The end of the stack on some unwinders: not a frame.
            return false;
        }
        push(ip, &mut addresses)
    };
    // `backtrace::trace` takes the crate's global lock, which the worker holds
    // while it loads debug info (tens of milliseconds): a capture must not
    // wait for that. The lock exists for Windows' dbghelp; the unwinder used
    // elsewhere is thread-safe.
    #[cfg(unix)]
    // SAFETY: on unix the walk uses the system unwinder (`_Unwind_Backtrace`),
    // which is safe to call from several threads at once.
    unsafe {
        backtrace::trace_unsynchronized(&mut visit)
    };
    #[cfg(not(unix))]
    backtrace::trace(&mut visit);
    (addresses, cut)
}

thread_local! {
    /// While this thread raises a calibration panic: the mark of the
    /// function that raises it.
    static CALIBRATING: Cell<Option<StackMark>> = const { Cell::new(None) };
}

/// In the panic hook: whether this panic is a calibration panic, in which
/// case its machinery frames were recorded and the hook must do nothing else.
pub(crate) fn calibration_panic(hook: StackMark) -> bool {
    let Some(Some(raiser)) = CALIBRATING.try_with(Cell::get).ok() else {
        return false;
    };
    // The frames between the hook's frame and the raising function's,
    // which is the last one at or below the raiser's mark.
    let mut found = [0usize; MAX_MACHINERY + 1];
    let mut len = 0;
    let mut visit = |frame: &backtrace::Frame| {
        let sp = frame.sp() as usize;
        if sp == 0 || sp > raiser.0 {
            return false;
        }
        if sp > hook.0 && len < found.len() {
            found[len] = frame.symbol_address() as usize;
            len += 1;
        }
        true
    };
    // SAFETY: as in `walk`.
    #[cfg(unix)]
    unsafe {
        backtrace::trace_unsynchronized(&mut visit)
    };
    #[cfg(not(unix))]
    backtrace::trace(&mut visit);
    for &function in &found[..len.saturating_sub(1)] {
        learn_machinery(function);
    }
    true
}

/// Learns std's panic machinery by raising one panic of each common kind
/// under `catch_unwind` (crashbox's hook, installed first, records and
/// swallows them: nothing is printed and nothing is reported). A no-op
/// under `panic = "abort"`, where a panic cannot be caught.
pub(crate) fn calibrate() {
    if !cfg!(panic = "unwind") || MACHINERY_LEN.load(Ordering::Acquire) > 0 {
        return;
    }
    type Raise = fn(usize) -> usize;
    let raises: [Raise; 9] = [
        raise_fmt,
        raise_unwrap_none,
        raise_unwrap_err,
        raise_expect,
        raise_index,
        raise_slice,
        raise_assert_eq,
        raise_unreachable,
        raise_any,
    ];
    for raise in raises {
        let _ = std::panic::catch_unwind(move || raise(std::hint::black_box(usize::MAX)));
    }
}

/// Marks the calling frame as the raiser while `f` panics.
#[inline(always)]
fn raising(mark: StackMark) -> CalibrationGuard {
    let _ = CALIBRATING.try_with(|c| c.set(Some(mark)));
    CalibrationGuard
}

struct CalibrationGuard;

impl Drop for CalibrationGuard {
    fn drop(&mut self) {
        let _ = CALIBRATING.try_with(|c| c.set(None));
    }
}

macro_rules! raise {
    ($name:ident, |$n:ident| $body:expr) => {
        #[inline(never)]
        fn $name($n: usize) -> usize {
            let anchor = 0u8;
            let _guard = raising(StackMark::new(&anchor));
            std::hint::black_box($body)
        }
    };
}

raise!(raise_fmt, |n| if n > 0 {
    panic!("calibration {n}")
} else {
    n
});
raise!(raise_unwrap_none, |n| (n == usize::MAX)
    .then_some(1usize)
    .filter(|_| false)
    .unwrap());
raise!(raise_unwrap_err, |n| "x".parse::<usize>().unwrap() + n);
raise!(raise_expect, |n| (n == 0)
    .then_some(1usize)
    .expect("calibration"));
raise!(raise_index, |n| [1usize, 2][n % 7 + 2]);
raise!(raise_slice, |n| [1usize, 2][..n % 7 + 3].len());
raise!(raise_assert_eq, |n| {
    assert_eq!(n, 0);
    n
});
raise!(raise_unreachable, |n| if n > 0 {
    unreachable!()
} else {
    n
});
raise!(raise_any, |n| if n > 0 {
    std::panic::panic_any(n)
} else {
    n
});

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn marked_walk() -> (Vec<usize>, usize) {
        let anchor = 0u8;
        let mark = StackMark::new(&anchor);
        let (addresses, _) = walk(mark, Top::Marked);
        (addresses, marked_walk as *const () as usize)
    }

    #[test]
    fn the_walk_starts_in_the_marking_function() {
        let (addresses, start) = marked_walk();
        let first = addresses[0];
        // The return address into `marked_walk` lies inside it.
        assert!(
            first > start && first < start + 4096,
            "first frame {first:#x} is not in the marking function at {start:#x}"
        );
        assert!(addresses.iter().all(|&a| a != 0));
    }
}
