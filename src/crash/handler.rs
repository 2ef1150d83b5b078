//! The signal handler (Linux): what it writes, and how it steps aside.
//!
//! Everything the handler reads was set up by [`arm`] before the handler
//! was installed: atomics, a leaked prologue, static buffers. Only the
//! thread that wins [`STATE`] uses the buffers, so no lock is needed.
use std::cell::UnsafeCell;
use std::ffi::{c_int, c_void};
use std::mem::MaybeUninit;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU8, AtomicUsize};
use std::sync::{Mutex, PoisonError};

use super::WAIT_FOR_OTHER;
use super::{is_synchronous_fault, Signal, ALT_STACK_BYTES, MAGIC, MAX_FRAMES, RUN_STATE_WIDTH};

/// The handler does not walk the stack with less alternate stack left than
/// this: a fault inside the handler would kill the process with another
/// signal than the one it was dying of. The walk was measured to use 2,063
/// bytes of it (an unoptimised build, x86_64, painted stack); std's 8 KiB
/// alternate stacks have about 4 KiB left at this point on a machine with
/// AVX2, less where the kernel saves more registers (then only the
/// faulting instruction is recorded).
const MIN_WALK_STACK: usize = 3 * 1024;

/// A fault address this close to the stack pointer is a stack overflow.
const OVERFLOW_REACH: usize = 64 * 1024;

/// A static only the handler that won [`STATE`] (or `arm`, before the
/// handler is installed) touches.
struct Shared<T>(UnsafeCell<T>);

// SAFETY: access is serialised by `STATE` (handler) and `ARMING` (arm/disarm).
unsafe impl<T> Sync for Shared<T> {}

const IDLE: u8 = 0;
const BUSY: u8 = 1;
const DONE: u8 = 2;

/// Whether a crash is being recorded (or was) in this process.
static STATE: AtomicU8 = AtomicU8::new(IDLE);
/// The thread recording it.
static BUSY_TID: AtomicI32 = AtomicI32::new(0);
/// Whether that thread has handed the signal on (see [`settle`]).
static HANDED_ON: AtomicBool = AtomicBool::new(false);
/// How long [`settle`] waits after the signal was handed on.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(500);
/// The crash file (`-1`: none, the handler records nothing).
static FILE: AtomicI32 = AtomicI32::new(-1);
/// The process that armed the handler: a child it forked (without exec)
/// shares the crash file's descriptor and offset, and records nothing.
static ARMED_PID: AtomicI32 = AtomicI32::new(0);
/// The open run-state file (`-1`: none).
static RUN_STATE: AtomicI32 = AtomicI32::new(-1);
/// `consecutive_panics` as the run-state file is to say after a crash.
static CONSECUTIVE: AtomicU32 = AtomicU32::new(1);
/// Whether this run panicked before (a double panic aborts after the hook).
static PANICKED: AtomicBool = AtomicBool::new(false);
/// The serialised prologue line (leaked: a handler may be reading it).
static PROLOGUE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static PROLOGUE_LEN: AtomicUsize = AtomicUsize::new(0);
/// Per signal (by index in `Signal::ALL`): whether its handler is crashbox's,
/// and whether `PREVIOUS` holds what was there before.
static OURS: AtomicU8 = AtomicU8::new(0);
static KNOWN: AtomicU8 = AtomicU8::new(0);
static PREVIOUS: Shared<[MaybeUninit<libc::sigaction>; 5]> =
    Shared(UnsafeCell::new([MaybeUninit::uninit(); 5]));
/// The kernel name of the thread that called `init` (the program's, from
/// the main thread), so a thread std left unnamed, which inherits it, is not
/// reported under it.
static MAIN_COMM: Shared<[u8; 16]> = Shared(UnsafeCell::new([0; 16]));
/// Per frame: the return address, and the start of its function (from the
/// unwind tables, so known in a stripped build too; 0 if not).
static FRAMES: Shared<[(usize, usize); MAX_FRAMES]> = Shared(UnsafeCell::new([(0, 0); MAX_FRAMES]));
static OUT: Shared<[u8; 1024]> = Shared(UnsafeCell::new([0; 1024]));
/// Serialises `arm` and `disarm`.
static ARMING: Mutex<()> = Mutex::new(());

/// What the handler needs, handed over by `arm`.
pub(crate) struct Arming<'a> {
    pub signals: &'a [Signal],
    pub file: c_int,
    pub run_state: Option<c_int>,
    pub consecutive: u32,
    pub prologue: Vec<u8>,
}

/// Installs the handler for `arming.signals` (those already crashbox's stay),
/// and makes sure the calling thread has an alternate signal stack.
pub(crate) fn arm(arming: Arming<'_>) {
    let _arming = ARMING.lock().unwrap_or_else(PoisonError::into_inner);
    let prologue: &'static mut [u8] = Box::leak(arming.prologue.into_boxed_slice());
    PROLOGUE_LEN.store(0, SeqCst);
    PROLOGUE.store(prologue.as_mut_ptr(), SeqCst);
    PROLOGUE_LEN.store(prologue.len(), SeqCst);
    // SAFETY: getpid has no preconditions.
    ARMED_PID.store(unsafe { libc::getpid() }, SeqCst);
    FILE.store(arming.file, SeqCst);
    RUN_STATE.store(arming.run_state.unwrap_or(-1), SeqCst);
    CONSECUTIVE.store(arming.consecutive, SeqCst);
    PANICKED.store(false, SeqCst);
    HANDED_ON.store(false, SeqCst);
    STATE.store(IDLE, SeqCst);
    // SAFETY: prctl(PR_GET_NAME) writes at most 16 bytes; no handler reads
    // MAIN_COMM while ARMING is held... except one already running, which
    // only compares it.
    unsafe {
        libc::prctl(libc::PR_GET_NAME, (*MAIN_COMM.0.get()).as_mut_ptr());
    }
    ensure_alt_stack();
    for (i, signal) in Signal::ALL.iter().enumerate() {
        let bit = 1u8 << i;
        if !arming.signals.contains(signal) || still_chained(*signal, bit) {
            continue;
        }
        // SAFETY: a zeroed sigaction is valid; the handler has the
        // SA_SIGINFO signature; PREVIOUS[i] is written before the bit that
        // lets the handler read it.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal.number(), &action, &mut previous) == 0 {
                (*PREVIOUS.0.get())[i] = MaybeUninit::new(previous);
                KNOWN.fetch_or(bit, SeqCst);
                OURS.fetch_or(bit, SeqCst);
            }
        }
    }
}

/// Whether crashbox's handler for `signal` (`bit`) is still reachable:
/// installed, or behind a handler installed since that calls it. When that
/// handler was taken away for a default action since, it is not.
fn still_chained(signal: Signal, bit: u8) -> bool {
    if OURS.load(SeqCst) & bit == 0 {
        return false;
    }
    // SAFETY: reading the current action.
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    unsafe { libc::sigaction(signal.number(), std::ptr::null(), &mut current) };
    if current.sa_sigaction == libc::SIG_DFL || current.sa_sigaction == libc::SIG_IGN {
        OURS.fetch_and(!bit, SeqCst);
        return false;
    }
    true
}

/// Puts back the handlers crashbox replaced, where crashbox's is still the
/// one installed (a handler installed since stays, and may still call
/// crashbox's, which then only hands on; a later `arm` leaves that chain as
/// it is). The handler records nothing more.
pub(crate) fn disarm() {
    let _arming = ARMING.lock().unwrap_or_else(PoisonError::into_inner);
    FILE.store(-1, SeqCst);
    RUN_STATE.store(-1, SeqCst);
    for (i, signal) in Signal::ALL.iter().enumerate() {
        let bit = 1u8 << i;
        if OURS.load(SeqCst) & bit == 0 {
            continue;
        }
        // SAFETY: PREVIOUS[i] is initialised (KNOWN has the bit).
        unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            libc::sigaction(signal.number(), std::ptr::null(), &mut current);
            if current.sa_sigaction != on_signal as *const () as usize {
                // A handler installed since may call crashbox's: it stays
                // installed behind it (and is not installed again).
                continue;
            }
            let previous = (*PREVIOUS.0.get())[i].assume_init_ref();
            libc::sigaction(signal.number(), previous, std::ptr::null_mut());
        }
        OURS.fetch_and(!bit, SeqCst);
    }
    // A crash being recorded on another thread still writes to the file the
    // caller is about to close (and whose number could be reused): let it
    // finish first.
    let deadline = std::time::Instant::now() + WAIT_FOR_OTHER;
    while STATE.load(SeqCst) == BUSY && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Whether this process armed the handler (a child it forked shares the
/// crash and run-state files, and must leave them to it).
pub(crate) fn armed_here() -> bool {
    // SAFETY: getpid has no preconditions.
    ARMED_PID.load(SeqCst) == unsafe { libc::getpid() }
}

/// Says that this run panicked: a crash after it (a double panic's abort)
/// keeps `panicked` in the run state.
pub(crate) fn note_panic() {
    PANICKED.store(true, Relaxed);
}

/// Gives the calling thread an alternate signal stack of at least
/// [`ALT_STACK_BYTES`] (plus a guard page below it), unless it has one.
/// The stack is never freed: the thread may use it until it ends.
fn ensure_alt_stack() {
    // SAFETY: sigaltstack with a null new stack only reads the current one;
    // the mapping is private and anonymous, and handed to the kernel whole.
    unsafe {
        let mut current: libc::stack_t = std::mem::zeroed();
        if libc::sigaltstack(std::ptr::null(), &mut current) != 0 {
            return;
        }
        if current.ss_flags & libc::SS_DISABLE == 0 && current.ss_size >= ALT_STACK_BYTES {
            return;
        }
        let page = usize::try_from(libc::sysconf(libc::_SC_PAGESIZE)).unwrap_or(4096);
        let total = ALT_STACK_BYTES + page;
        let base = libc::mmap(
            std::ptr::null_mut(),
            total,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if base == libc::MAP_FAILED {
            return;
        }
        libc::mprotect(base, page, libc::PROT_NONE);
        let stack = libc::stack_t {
            ss_sp: (base as *mut u8).add(page) as *mut c_void,
            ss_flags: 0,
            ss_size: ALT_STACK_BYTES,
        };
        if libc::sigaltstack(&stack, std::ptr::null_mut()) != 0 {
            libc::munmap(base, total);
        }
    }
}

/// The handler: records the first crash, then hands the signal on.
extern "C" fn on_signal(signal: c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo and ucontext to an
    // SA_SIGINFO handler; everything below is async-signal-safe.
    unsafe {
        let errno = *libc::__errno_location();
        let tid = libc::syscall(libc::SYS_gettid) as i32;
        match STATE.compare_exchange(IDLE, BUSY, AcqRel, Acquire) {
            Ok(_) => {
                BUSY_TID.store(tid, Release);
                if !info.is_null() && !follows_a_panic(signal) {
                    record(signal, &*info, context, tid);
                }
                STATE.store(DONE, Release);
            }
            // Another thread is writing its crash: let it finish, since
            // handing on may end the process.
            Err(BUSY) if BUSY_TID.load(Acquire) != tid => wait_for_other(),
            // A crash was recorded, or this thread faulted while recording.
            Err(_) => {}
        }
        hand_on(signal, info, context, tid);
        if BUSY_TID.load(Acquire) == tid {
            HANDED_ON.store(true, Release);
        }
        *libc::__errno_location() = errno;
    }
}

/// After a record was written, in a process still running: waits until the
/// recording thread has handed the signal on, and a moment more, so that a
/// process dying of it is gone before its record would be taken for one of
/// a signal it survived. `true` when it was handed on.
pub(crate) fn settle() -> bool {
    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
    if BUSY_TID.load(Acquire) == me {
        // This very thread recorded it, and is running on.
        return true;
    }
    let deadline = std::time::Instant::now() + WAIT_FOR_OTHER;
    while !HANDED_ON.load(Acquire) {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // Handed on: a fault is executed again, a raised signal delivered, as
    // the handler returns; a process that dies of it does so at once.
    std::thread::sleep(SETTLE);
    true
}

/// Whether `signal` is the abort that ends a panic under `panic = "abort"`,
/// which the panic hook reported already.
fn follows_a_panic(signal: c_int) -> bool {
    cfg!(panic = "abort") && signal == libc::SIGABRT && PANICKED.load(Relaxed)
}

/// Waits for the recording thread, at most [`WAIT_FOR_OTHER`].
fn wait_for_other() {
    let step = libc::timespec {
        tv_sec: 0,
        tv_nsec: 1_000_000,
    };
    for _ in 0..WAIT_FOR_OTHER.as_millis() {
        if STATE.load(Acquire) == DONE {
            return;
        }
        // SAFETY: nanosleep with a valid timespec.
        unsafe { libc::nanosleep(&step, std::ptr::null_mut()) };
    }
}

/// Hands the signal to what was installed before crashbox: put back (so a
/// fault, executed again, meets it, and a signal raised again reaches it),
/// or called directly when another handler, installed since, called this one.
///
/// # Safety
/// From the handler only.
unsafe fn hand_on(signal: c_int, info: *mut libc::siginfo_t, context: *mut c_void, tid: i32) {
    let Some(i) =
        Signal::from_number(signal).and_then(|s| Signal::ALL.iter().position(|x| *x == s))
    else {
        return;
    };
    if KNOWN.load(Acquire) & (1 << i) == 0 {
        return;
    }
    // SAFETY: KNOWN says PREVIOUS[i] is initialised.
    let previous = unsafe { (*PREVIOUS.0.get())[i].assume_init_ref() };
    let mut current: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: reading the current action.
    unsafe { libc::sigaction(signal, std::ptr::null(), &mut current) };
    let action = previous.sa_sigaction;
    let ours = current.sa_sigaction == on_signal as *const () as usize;
    // SAFETY: reading the siginfo the kernel passed.
    let code = if info.is_null() {
        0
    } else {
        unsafe { (*info).si_code }
    };
    let fault = is_synchronous_fault(signal, code);
    let raise_again = || {
        // Blocked while this handler runs, it is delivered as it returns.
        // SAFETY: sending a signal to this thread.
        unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, signal) };
    };
    if ours {
        // Every signal, not this one only: what comes next (Rust's
        // stack-overflow handler aborts) must not run crashbox's handler
        // again, nested on an alternate stack that may be nearly full.
        step_aside();
        if !fault {
            raise_again();
        }
        return;
    }
    // Called by a handler installed since, which hands on to crashbox's as
    // it would to the default action: what the action before crashbox's
    // would have done is done here.
    if action == libc::SIG_DFL || (action == libc::SIG_IGN && fault) {
        // The default action (the kernel forces it on an ignored fault).
        let mut default: libc::sigaction = unsafe { std::mem::zeroed() };
        default.sa_sigaction = libc::SIG_DFL;
        // SAFETY: installing the default action.
        unsafe { libc::sigaction(signal, &default, std::ptr::null_mut()) };
        OURS.fetch_and(!(1 << i), SeqCst);
        if !fault {
            raise_again();
        }
        return;
    }
    if action == libc::SIG_IGN {
        // A raised signal that was ignored before crashbox: still ignored.
        return;
    }
    // SAFETY: a handler the application installed, called as the kernel
    // would have (with SA_SIGINFO, the three-argument form).
    unsafe {
        if previous.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) =
                std::mem::transmute(action);
            f(signal, info, context);
        } else {
            let f: extern "C" fn(c_int) = std::mem::transmute(action);
            f(signal);
        }
    }
}

/// Puts back the action crashbox's replaced for every signal it is still
/// installed for: after one crash, the process dies as it would without it.
fn step_aside() {
    let ours = on_signal as *const () as usize;
    for (i, signal) in Signal::ALL.iter().enumerate() {
        let bit = 1u8 << i;
        if OURS.load(Acquire) & bit == 0 || KNOWN.load(Acquire) & bit == 0 {
            continue;
        }
        // SAFETY: reading the current action; KNOWN says PREVIOUS[i] is
        // initialised; restoring an action the kernel gave us.
        unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            libc::sigaction(signal.number(), std::ptr::null(), &mut current);
            if current.sa_sigaction == ours {
                let previous = (*PREVIOUS.0.get())[i].assume_init_ref();
                libc::sigaction(signal.number(), previous, std::ptr::null_mut());
                OURS.fetch_and(!bit, SeqCst);
            }
        }
    }
}

/// The instruction and stack pointers at the signal.
///
/// # Safety
/// `context` is the handler's ucontext (or null).
unsafe fn registers(context: *mut c_void) -> (usize, usize) {
    if context.is_null() {
        return (0, 0);
    }
    #[cfg(target_arch = "x86_64")]
    {
        let uc = unsafe { &*(context as *const libc::ucontext_t) };
        let gregs = &uc.uc_mcontext.gregs;
        (
            gregs[libc::REG_RIP as usize] as usize,
            gregs[libc::REG_RSP as usize] as usize,
        )
    }
    #[cfg(target_arch = "aarch64")]
    {
        let uc = unsafe { &*(context as *const libc::ucontext_t) };
        (uc.uc_mcontext.pc as usize, uc.uc_mcontext.sp as usize)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        (0, 0)
    }
}

/// Writes the record and the run state.
///
/// # Safety
/// From the handler, by the thread that won [`STATE`].
unsafe fn record(signal: c_int, info: &libc::siginfo_t, context: *mut c_void, tid: i32) {
    let code = info.si_code;
    // SAFETY: si_addr is meaningful for the fault signals; for others it
    // reads whatever the union holds, which is only printed.
    let address = unsafe { info.si_addr() } as usize;
    let sender = if code <= 0 {
        unsafe { info.si_pid() }
    } else {
        0
    };
    let (pc, sp) = unsafe { registers(context) };
    let overflow = (signal == libc::SIGSEGV || signal == libc::SIGBUS)
        && code > 0
        && sp != 0
        && address.abs_diff(sp) <= OVERFLOW_REACH;
    let pid = unsafe { libc::getpid() };
    let mut now: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    let ms = (now.tv_sec as u64)
        .saturating_mul(1000)
        .saturating_add(now.tv_nsec as u64 / 1_000_000);
    let name = Signal::from_number(signal).map_or("", Signal::name);
    if ARMED_PID.load(Acquire) != pid {
        return;
    }
    // SAFETY: this thread won STATE: the buffers are its own.
    let out_buf = unsafe { &mut *OUT.0.get() };

    write_run_state(out_buf, name, overflow);

    let fd = FILE.load(Acquire);
    if fd < 0 {
        return;
    }
    let mut out = Out::new(fd, out_buf);
    out.bytes(MAGIC);
    out.field_dec("signal", signal as i64);
    out.field_dec("code", code as i64);
    out.field_hex("address", address);
    out.field_hex("pc", pc);
    out.field_hex("sp", sp);
    out.field_dec("overflow", overflow as i64);
    out.field_dec("pid", pid as i64);
    out.field_dec("tid", tid as i64);
    out.field_dec("sender", sender as i64);
    out.field_dec("time_ms", ms as i64);
    let mut comm = [0u8; 16];
    if tid == pid {
        out.bytes(b"thread main\n");
    } else if unsafe { libc::prctl(libc::PR_GET_NAME, comm.as_mut_ptr()) } == 0
        && comm[0] != 0
        && comm != unsafe { *MAIN_COMM.0.get() }
    {
        let len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
        out.bytes(b"thread ");
        // A newline in a thread's name would end the field early.
        for &b in &comm[..len] {
            out.bytes(&[if b == b'\n' { b' ' } else { b }]);
        }
        out.bytes(b"\n");
    }
    out.flush();
    let prologue = PROLOGUE.load(Acquire);
    let len = PROLOGUE_LEN.load(Acquire);
    if !prologue.is_null() && len > 0 {
        // SAFETY: the leaked prologue is never freed.
        write_all(fd, unsafe { std::slice::from_raw_parts(prologue, len) });
    }
    // The frames last: a walk that faults leaves the rest behind.
    if pc != 0 {
        // Frame 0 is the faulting instruction itself, not a return address:
        // one past it, so that resolving "the instruction before" (as for
        // return addresses) finds it.
        out.field_hex("frame", pc.wrapping_add(1));
        out.flush();
    }
    if room_to_walk() {
        let frames = unsafe { &mut *FRAMES.0.get() };
        let count = unsafe { walk(frames, pc) };
        for &(frame, start) in &frames[..count] {
            out.frame(frame, start);
        }
    }
    out.bytes(b"end\n");
    out.flush();
}

/// Whether enough alternate signal stack is left to walk the stack (or the
/// handler is not on one).
fn room_to_walk() -> bool {
    let marker = 0u8;
    let here = &marker as *const u8 as usize;
    // SAFETY: reading the current alternate stack.
    let mut stack: libc::stack_t = unsafe { std::mem::zeroed() };
    if unsafe { libc::sigaltstack(std::ptr::null(), &mut stack) } != 0 {
        return false;
    }
    if stack.ss_flags & libc::SS_ONSTACK == 0 {
        return true;
    }
    here.saturating_sub(stack.ss_sp as usize) >= MIN_WALK_STACK
}

/// Walks the stack from the frame that was interrupted at `pc` outwards
/// (the handler's own frames and the signal trampoline left out); with
/// `pc` unknown, everything. Returns how many frames it wrote: each return
/// address with the start of its function (`_Unwind_FindEnclosingFunction`,
/// the same table lookup as the step itself).
///
/// # Safety
/// From the handler.
#[inline(never)]
unsafe fn walk(frames: &mut [(usize, usize); MAX_FRAMES], pc: usize) -> usize {
    let mut count = 0;
    let mut past_signal = pc == 0;
    // SAFETY: the unsynchronised walk takes no lock of backtrace's; only
    // this thread walks (it won STATE).
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            let ip = frame.ip() as usize;
            if !past_signal {
                past_signal = ip == pc;
                return true;
            }
            if ip == 0 {
                return false;
            }
            frames[count] = (ip, frame.symbol_address() as usize);
            count += 1;
            count < MAX_FRAMES
        });
    }
    count
}

/// Rewrites the run-state file in place: this run crashed.
fn write_run_state(buf: &mut [u8; 1024], signal: &str, overflow: bool) {
    let fd = RUN_STATE.load(Acquire);
    if fd < 0 {
        return;
    }
    let mut text = Cursor { buf, len: 0 };
    text.put(b"{\"panicked\":");
    text.put(if PANICKED.load(Relaxed) {
        b"true"
    } else {
        b"false"
    });
    text.put(b",\"consecutive_panics\":");
    text.dec(CONSECUTIVE.load(Relaxed) as i64);
    text.put(b",\"crashed\":\"");
    text.put(signal.as_bytes());
    text.put(b"\",\"stack_overflow\":");
    text.put(if overflow { b"true" } else { b"false" });
    text.put(b"}");
    let len = text.len;
    if len > RUN_STATE_WIDTH {
        return;
    }
    buf[len..RUN_STATE_WIDTH].fill(b' ');
    // SAFETY: pwrite from a buffer of RUN_STATE_WIDTH bytes.
    unsafe {
        libc::pwrite(fd, buf.as_ptr() as *const c_void, RUN_STATE_WIDTH, 0);
    }
}

/// Formats into a fixed buffer, dropping what does not fit.
struct Cursor<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Cursor<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let room = self.buf.len() - self.len;
        let n = bytes.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    fn dec(&mut self, value: i64) {
        let mut digits = [0u8; 20];
        let mut n = value.unsigned_abs();
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if value < 0 {
            self.put(b"-");
        }
        self.put(&digits[at..]);
    }

    fn hex(&mut self, value: usize) {
        let mut digits = [0u8; 16];
        let mut n = value;
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b"0123456789abcdef"[n & 0xf];
            n >>= 4;
            if n == 0 {
                break;
            }
        }
        self.put(b"0x");
        self.put(&digits[at..]);
    }
}

/// Record lines into a buffer, written out with `write(2)` when it fills.
struct Out<'a> {
    fd: c_int,
    cursor: Cursor<'a>,
}

impl<'a> Out<'a> {
    fn new(fd: c_int, buf: &'a mut [u8]) -> Out<'a> {
        Out {
            fd,
            cursor: Cursor { buf, len: 0 },
        }
    }

    /// Makes room for a line of up to 64 bytes.
    fn room(&mut self) {
        if self.cursor.buf.len() - self.cursor.len < 64 {
            self.flush();
        }
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(64) {
            self.room();
            self.cursor.put(chunk);
        }
    }

    fn field_dec(&mut self, key: &str, value: i64) {
        self.room();
        self.cursor.put(key.as_bytes());
        self.cursor.put(b" ");
        self.cursor.dec(value);
        self.cursor.put(b"\n");
    }

    fn field_hex(&mut self, key: &str, value: usize) {
        self.room();
        self.cursor.put(key.as_bytes());
        self.cursor.put(b" ");
        self.cursor.hex(value);
        self.cursor.put(b"\n");
    }

    /// `frame 0x<return address> 0x<function start>`.
    fn frame(&mut self, address: usize, start: usize) {
        self.room();
        self.cursor.put(b"frame ");
        self.cursor.hex(address);
        self.cursor.put(b" ");
        self.cursor.hex(start);
        self.cursor.put(b"\n");
    }

    fn flush(&mut self) {
        write_all(self.fd, &self.cursor.buf[..self.cursor.len]);
        self.cursor.len = 0;
    }
}

/// `write(2)` until all is written or it fails.
fn write_all(fd: c_int, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writing from a valid slice.
        let n = unsafe { libc::write(fd, bytes.as_ptr() as *const c_void, bytes.len()) };
        if n < 0 {
            // SAFETY: reading errno.
            if unsafe { *libc::__errno_location() } == libc::EINTR {
                continue;
            }
            return;
        }
        if n == 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_without_allocating() {
        let mut buf = [0u8; 64];
        let mut c = Cursor {
            buf: &mut buf,
            len: 0,
        };
        c.dec(0);
        c.put(b" ");
        c.dec(-42);
        c.put(b" ");
        c.dec(i64::MAX);
        c.put(b" ");
        c.hex(0);
        c.put(b" ");
        c.hex(0xdead_beef);
        c.put(b" ");
        c.hex(usize::MAX);
        let len = c.len;
        assert_eq!(
            std::str::from_utf8(&buf[..len]).unwrap(),
            "0 -42 9223372036854775807 0x0 0xdeadbeef 0xffffffffffffffff"
        );
    }

    #[test]
    fn a_full_cursor_drops_what_does_not_fit() {
        let mut buf = [0u8; 4];
        let mut c = Cursor {
            buf: &mut buf,
            len: 0,
        };
        c.put(b"abc");
        c.dec(12345);
        assert_eq!(c.len, 4);
        assert_eq!(&buf, b"abc1");
    }
}
