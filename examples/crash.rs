//! A crash no panic hook sees, reported by the next run: the program starts
//! itself again as a child, which writes through a null pointer's field in
//! `unsafe` code and dies of SIGSEGV; then it starts again on the same
//! spool, as the program's next start would, and prints what
//! `crashbox::last_run()` says and the crash report it delivers.
//!
//! Run with: `cargo run --example crash` (Linux).
use std::process::{Command, ExitCode};
use std::time::Duration;

use crashbox::{Kind, Options};

/// The child's role, in its first argument.
const CRASH: &str = "crash";

/// A parsed record of a ledger, reached through a pointer from C code.
#[repr(C)]
struct Entry {
    next: *mut Entry,
    amount: u64,
}

/// Posts an amount into the entry C code handed over: here, a null pointer.
#[inline(never)]
fn post(entry: *mut Entry, amount: u64) {
    // The field's address by hand, as C would compute it (a debug build
    // checks a plain dereference of a null pointer and aborts before it).
    let field = (entry as usize + std::mem::offset_of!(Entry, amount)) as *mut u64;
    // SAFETY: none: this is the crash the example shows.
    unsafe { field.write_volatile(amount) };
}

fn options(spool: &str, reports: &str) -> Options {
    Options::new()
        .collector(format!("file://{reports}"))
        .spool_dir(spool)
        .release("crash-example@1.0.0")
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some(CRASH) {
        let (spool, reports) = (args.next().unwrap(), args.next().unwrap());
        // The example's crash leaves no core file behind.
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit with a valid limit.
        unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
        let _guard = crashbox::init(options(&spool, &reports)).expect("init");
        let entry: *mut Entry = std::hint::black_box(std::ptr::null_mut());
        post(entry, 42);
        unreachable!("the write above crashes");
    }

    let dir = std::env::temp_dir().join(format!("crashbox-crash-example-{}", std::process::id()));
    let spool = dir.join("spool").display().to_string();
    let reports = dir.join("reports.jsonl").display().to_string();
    let exe = std::env::current_exe().expect("this program's path");
    let status = Command::new(exe)
        .args([CRASH, &spool, &reports])
        .status()
        .expect("start the child");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        println!("the first run died of signal {:?}", status.signal());
    }
    #[cfg(not(unix))]
    println!("the first run ended with {status}");

    // The next start: `init` finds the dead run's record and delivers it.
    let guard = crashbox::init(options(&spool, &reports)).expect("init");
    let last = crashbox::last_run().expect("a spool is in use");
    println!(
        "last_run: crashed {:?}, stack overflow {}",
        last.crashed, last.stack_overflow
    );
    let flushed = crashbox::flush(Duration::from_secs(30));
    drop(guard);

    let text = std::fs::read_to_string(&reports).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    let crash = text
        .lines()
        .filter_map(|line| serde_json::from_str::<crashbox::Report>(line).ok())
        .find(|report| report.kind == Kind::Crash);
    let Some(crash) = crash else {
        eprintln!("no crash report (flushed: {flushed})");
        return ExitCode::FAILURE;
    };
    println!("{}", crash.summary());
    let frame0 = crash.frames.first().and_then(|f| f.function.as_deref());
    if frame0.is_some_and(|f| f.ends_with("post")) && last.crashed == Some(crashbox::Signal::Segv) {
        ExitCode::SUCCESS
    } else {
        eprintln!("expected frame 0 in `post` and SIGSEGV, got {frame0:?}");
        ExitCode::FAILURE
    }
}
