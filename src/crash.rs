//! Crashes the panic hook never sees: fatal signals (a segfault in `unsafe`
//! or foreign code, a stack overflow, `abort()`, a double panic), recorded
//! by a signal handler and reported by the next run.
//!
//! # What happens
//!
//! `init` (with a spool) creates an empty file in the spool directory, reads
//! the process's executable mappings and loaded images, serialises them
//! together with the report id to use, and installs handlers for the
//! [`Signal`]s chosen with
//! [`Options::crash_signals`](crate::Options::crash_signals) (all five by
//! default). On the thread that called `init`, it also makes sure there is
//! an alternate signal stack of at least [`ALT_STACK_BYTES`], so a stack
//! overflow there can be handled; std gives every thread it spawns one of
//! its own.
//!
//! When a signal arrives, the handler ([`handler`]) writes a small text
//! record into that file with `write(2)`: the signal, its code, the fault
//! address, the instruction and stack pointers, the thread, the time, the
//! pre-serialised mappings and images, and the return addresses it walks
//! with the system unwinder (`_Unwind_Backtrace`, from the faulting frame
//! outwards). It rewrites the run-state file in place, so that the next
//! [`last_run`](crate::last_run) says the run crashed and how. Then it steps
//! aside, for every signal: it puts back the handlers that were installed
//! before it and lets the signal reach that one, or the default action, so the exit status,
//! core dumps and messages (Rust's "has overflowed its stack") stay as they
//! were.
//!
//! The next run's `init` finds the dead process's file, turns the record
//! into a [`Captured`](crate::record::Captured) of kind
//! [`Kind::Crash`](crate::Kind::Crash) (see [`record`]) and spools it;
//! from there it travels as a panic's raw capture does: resolved against the
//! same binary when it is unchanged, else sent as addresses with their
//! images.
//!
//! # What the handler guarantees
//!
//! It allocates nothing and takes no lock of crashbox's or the allocator's:
//! everything it writes is formatted into static buffers, and the only
//! calls it makes are `write`, `pwrite`, `sigaction`, `sigaltstack`,
//! `prctl`, `clock_gettime`, `getpid`, `gettid`, `tgkill`, `nanosleep` and
//! the unwinder. The unwinder reads unwind tables found through
//! `dl_iterate_phdr`, whose lock glibc makes recursive for the crashing
//! thread (a crash while another thread holds it waits for that thread);
//! it is the one part not on POSIX's async-signal-safe list. Nothing is
//! `fsync`ed: the page cache keeps the record once the process is gone. The record is written in
//! order (header first, frames last), so a second fault while walking a
//! corrupt stack still leaves the signal and the faulting address behind.
//! One crash is recorded per process: a second thread crashing meanwhile
//! waits (at most [`WAIT_FOR_OTHER`]) for the first record to be written,
//! then goes to the previous handler.
//!
//! Not covered: `SIGKILL` (nothing can catch it), a stack overflow on a
//! thread without an alternate signal stack (a thread created outside std),
//! and the scope (tags, user, breadcrumbs), which the handler cannot read
//! safely: a crash report carries the release, environment, thread, stack
//! and signal.
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[cfg(target_os = "linux")]
pub(crate) mod handler;
pub(crate) mod record;
#[cfg(test)]
mod tests;

/// The alternate signal stack `init` makes sure the calling thread has.
pub(crate) const ALT_STACK_BYTES: usize = 64 * 1024;

/// How long a second crashing thread waits for the first one's record.
pub(crate) const WAIT_FOR_OTHER: std::time::Duration = std::time::Duration::from_secs(2);

/// Return addresses the handler walks at most (besides the faulting
/// instruction's).
pub(crate) const MAX_FRAMES: usize = 256;

/// The run-state record's width: the spool writes it at this width, and the
/// handler rewrites it in place.
pub(crate) const RUN_STATE_WIDTH: usize = 128;

/// The first line of a crash record.
pub(crate) const MAGIC: &[u8] = b"crashbox crash 1\n";

/// A fatal signal crashbox can catch.
///
/// ```
/// use crashbox::Signal;
/// assert_eq!(Signal::Segv.name(), "SIGSEGV");
/// assert_eq!("SIGABRT".parse::<Signal>(), Ok(Signal::Abrt));
/// assert_eq!("bus".parse::<Signal>(), Ok(Signal::Bus));
/// assert_eq!(Signal::ALL.len(), 5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Signal {
    /// Invalid memory access: a null or dangling pointer, a stack overflow.
    #[serde(rename = "SIGSEGV")]
    Segv,
    /// Bus error: a misaligned access, a truncated memory-mapped file.
    #[serde(rename = "SIGBUS")]
    Bus,
    /// Illegal instruction (also `core::intrinsics::abort` on x86).
    #[serde(rename = "SIGILL")]
    Ill,
    /// Arithmetic fault, such as an integer division by zero in C code.
    #[serde(rename = "SIGFPE")]
    Fpe,
    /// Abort: `std::process::abort`, a double panic, `abort()` in C code,
    /// a failed allocation (`handle_alloc_error`), Rust's stack-overflow
    /// message.
    #[serde(rename = "SIGABRT")]
    Abrt,
}

impl Signal {
    /// Every signal crashbox catches by default.
    pub const ALL: [Signal; 5] = [
        Signal::Segv,
        Signal::Bus,
        Signal::Ill,
        Signal::Fpe,
        Signal::Abrt,
    ];

    /// The signal's name, `SIGSEGV`: the exception type of its report.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Segv => "SIGSEGV",
            Signal::Bus => "SIGBUS",
            Signal::Ill => "SIGILL",
            Signal::Fpe => "SIGFPE",
            Signal::Abrt => "SIGABRT",
        }
    }

    /// The signal's number on this platform.
    pub fn number(self) -> i32 {
        match self {
            Signal::Segv => libc::SIGSEGV,
            Signal::Bus => libc::SIGBUS,
            Signal::Ill => libc::SIGILL,
            Signal::Fpe => libc::SIGFPE,
            Signal::Abrt => libc::SIGABRT,
        }
    }

    /// The signal with number `number`, if crashbox catches it.
    pub fn from_number(number: i32) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.number() == number)
    }

    /// What a kernel-set `si_code` means for this signal (Linux's values),
    /// `None` for a code it does not define.
    pub(crate) fn code_text(self, code: i32) -> Option<&'static str> {
        let texts: &[&str] = match self {
            Signal::Segv => &[
                "address not mapped",
                "invalid permissions",
                "failed address bound checks",
                "protection key check failed",
            ],
            Signal::Bus => &[
                "invalid address alignment",
                "nonexistent physical address",
                "object-specific hardware error",
                "hardware memory error consumed",
                "hardware memory error detected",
            ],
            Signal::Ill => &[
                "illegal opcode",
                "illegal operand",
                "illegal addressing mode",
                "illegal trap",
                "privileged opcode",
                "privileged register",
                "coprocessor error",
                "internal stack error",
            ],
            Signal::Fpe => &[
                "integer divide by zero",
                "integer overflow",
                "floating-point divide by zero",
                "floating-point overflow",
                "floating-point underflow",
                "floating-point inexact result",
                "floating-point invalid operation",
                "subscript out of range",
            ],
            Signal::Abrt => &[],
        };
        usize::try_from(code)
            .ok()
            .and_then(|c| c.checked_sub(1))
            .and_then(|i| texts.get(i).copied())
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `SIGSEGV`, `segv` or `SEGV` (any case).
impl FromStr for Signal {
    type Err = crate::report::ParseError;

    fn from_str(s: &str) -> Result<Signal, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        Signal::ALL
            .into_iter()
            .find(|signal| &signal.name()[3..] == bare)
            .ok_or_else(|| {
                crate::report::ParseError::new(
                    "a signal (SIGSEGV, SIGBUS, SIGILL, SIGFPE or SIGABRT)",
                    s,
                )
            })
    }
}

/// Whether a signal with this `si_code` is a synchronous fault: raised by
/// the kernel for the instruction the thread was executing, which returning
/// from the handler executes again, and which is frame 0 of its stack.
/// Signals the process raised (`kill`, `raise`, `abort`: a code of 0 or
/// less), SIGABRT, and the kernel's asynchronous reports (a machine-check
/// error detected but not consumed, `BUS_MCEERR_AO`; an asynchronous
/// tag-check fault, `SEGV_MTEAERR`) are not.
pub(crate) fn is_synchronous_fault(signal: i32, code: i32) -> bool {
    const BUS_MCEERR_AO: i32 = 5;
    const SEGV_MTEAERR: i32 = 8;
    code > 0
        && signal != libc::SIGABRT
        && !(signal == libc::SIGBUS && code == BUS_MCEERR_AO)
        && !(signal == libc::SIGSEGV && code == SEGV_MTEAERR)
}

/// What a crash record's reader needs from the process that wrote it,
/// serialised at `init` (the handler cannot): the report id, release and
/// environment, the executable mappings (to tie each address to a file
/// offset) and the loaded images (executable first).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Prologue {
    pub id: crate::report::ReportId,
    pub release: Option<String>,
    pub environment: Option<String>,
    /// (start, end, file offset, index into `modules`)
    pub mappings: Vec<(usize, usize, usize, u32)>,
    pub modules: Vec<crate::mapped_files::Module>,
    pub images: Vec<crate::report::Image>,
    /// Where `std::process::abort` starts in this process (one copy of
    /// std is linked in), so an abort's report starts at its caller.
    #[serde(default)]
    pub abort: usize,
}

impl Prologue {
    /// The prologue of a crash in this process, read now.
    pub(crate) fn now(release: Option<String>, environment: Option<String>) -> Prologue {
        let mut modules: Vec<crate::mapped_files::Module> = Vec::new();
        let mappings = crate::mapped_files::snapshot()
            .into_iter()
            .map(|(start, end, offset, module)| {
                let index = match modules.iter().position(|m| *m == module) {
                    Some(i) => i,
                    None => {
                        modules.push(module);
                        modules.len() - 1
                    }
                };
                (start, end, offset, index as u32)
            })
            .collect();
        Prologue {
            id: crate::report::ReportId::random(),
            release,
            environment,
            mappings,
            modules,
            images: crate::images::all(),
            abort: std::process::abort as fn() -> ! as usize,
        }
    }

    /// The record line the handler writes as it is: `prologue <json>\n`.
    pub(crate) fn line(&self) -> Vec<u8> {
        let mut line = b"prologue ".to_vec();
        // Serialising plain data into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut line, self);
        line.push(b'\n');
        line
    }
}

/// Crash capture as `init` installed it: dropping it (at a clean shutdown)
/// puts back the handlers crashbox replaced and removes the crash file if
/// nothing was written; [`Armed::survived`] also removes the record of a
/// signal the process survived.
#[derive(Debug)]
pub(crate) struct Armed {
    file: std::fs::File,
    path: std::path::PathBuf,
}

/// What [`arm`] needs from the spool: the crash file, made ahead of time
/// (the handler cannot create one), and the run-state file, rewritten in place.
pub(crate) struct Files {
    pub crash: std::fs::File,
    pub path: std::path::PathBuf,
    pub run_state: Option<std::os::fd::RawFd>,
    /// `consecutive_panics` as the run state is to say after a crash.
    pub consecutive: u32,
}

/// Installs crashbox's handler for `signals`; `None` when `signals` is
/// empty or the platform has no handler (Linux only, for now).
pub(crate) fn arm(signals: &[Signal], files: Files, prologue: &Prologue) -> Option<Armed> {
    if signals.is_empty() || !cfg!(target_os = "linux") {
        return None;
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        handler::arm(handler::Arming {
            signals,
            file: files.crash.as_raw_fd(),
            run_state: files.run_state,
            consecutive: files.consecutive,
            prologue: prologue.line(),
        });
    }
    Some(Armed {
        file: files.crash,
        path: files.path,
    })
}

impl Armed {
    /// Whether the handler wrote a record, though this process is still
    /// running (after the recording thread handed the signal on, and a
    /// moment more: a process dying of it is gone by then): a handler
    /// installed before crashbox's recovered from the signal, or a raised
    /// one was let go, so it was no crash.
    ///
    /// At a clean shutdown: puts back the handlers, and removes the record
    /// of a signal survived (the file goes with the drop when empty).
    pub(crate) fn survived(self) -> bool {
        #[cfg(target_os = "linux")]
        handler::disarm();
        if !self.armed_here() || !self.file.metadata().is_ok_and(|m| m.len() > 0) {
            return false;
        }
        #[cfg(target_os = "linux")]
        let survived = handler::settle();
        #[cfg(not(target_os = "linux"))]
        let survived = true;
        if survived {
            let _ = std::fs::remove_file(&self.path);
        }
        survived
    }
}

impl Armed {
    /// Whether this process armed it: a child forked since shares the
    /// files, which stay its parent's.
    fn armed_here(&self) -> bool {
        #[cfg(target_os = "linux")]
        return handler::armed_here();
        #[cfg(not(target_os = "linux"))]
        true
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        handler::disarm();
        if self.armed_here() && self.file.metadata().is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Says that this run panicked (see `handler::note_panic`).
pub(crate) fn note_panic() {
    #[cfg(target_os = "linux")]
    handler::note_panic();
}
