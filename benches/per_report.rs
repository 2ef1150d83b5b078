//! CPU per delivered report, on every thread, next to the floor measured in
//! the same run (release build).
//!
//! `cargo bench --bench per_report` delivers 2,000 distinct errors, captured
//! 20 frames deep with aggregation and the rate limit off, to a transport
//! that discards them, and divides the process's CPU time (user + system,
//! all threads, from `getrusage`) by the reports delivered: without a spool
//! and with one, the median of 5 rounds, with the part spent on the
//! capturing thread. The floor is `backtrace::Backtrace::new()` (walk and
//! resolve the same stack) timed the same way, after a first call has
//! loaded the debug info; `Backtrace::new_unresolved()` gives its walk.
use std::path::PathBuf;
use std::time::Duration;

use crashbox::Options;

mod support;
use support::{at_depth, word, Discard, DEPTH};

const REPORTS: usize = 2_000;

/// CPU time so far (user + system) of the process (`libc::RUSAGE_SELF`,
/// all threads) or of the calling thread (`libc::RUSAGE_THREAD`).
fn cpu_of(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn cpu() -> Duration {
    cpu_of(libc::RUSAGE_SELF)
}

/// CPU per delivered report: in all, and on the thread that captured.
#[derive(Clone, Copy)]
struct PerReport {
    total: Duration,
    caller: Duration,
}

/// CPU per delivered report for `REPORTS` distinct errors.
fn per_report(round: &str) -> PerReport {
    let (start, caller_start) = (cpu(), cpu_of(libc::RUSAGE_THREAD));
    for i in 0..REPORTS {
        let error = std::io::Error::other(format!("failure {round} {}", word(i)));
        at_depth(DEPTH, &mut || {
            std::hint::black_box(crashbox::capture_error(&error))
        });
    }
    let caller = cpu_of(libc::RUSAGE_THREAD) - caller_start;
    assert!(crashbox::flush(Duration::from_secs(120)), "flush timed out");
    PerReport {
        total: (cpu() - start) / REPORTS as u32,
        caller: caller / REPORTS as u32,
    }
}

fn main() {
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"per_report".contains(a.as_str()))
    {
        return;
    }
    // The floor: walk and resolve the same stack, debug info loaded.
    at_depth(DEPTH, &mut || {
        std::hint::black_box(backtrace::Backtrace::new())
    });
    let start = cpu();
    for _ in 0..REPORTS {
        at_depth(DEPTH, &mut || {
            std::hint::black_box(backtrace::Backtrace::new())
        });
    }
    let floor = (cpu() - start) / REPORTS as u32;
    // The walk alone, for the capturing thread's share.
    let start = cpu();
    for _ in 0..REPORTS {
        at_depth(DEPTH, &mut || {
            std::hint::black_box(backtrace::Backtrace::new_unresolved())
        });
    }
    let walk = (cpu() - start) / REPORTS as u32;
    println!("per_report: CPU per delivered report, all threads, {REPORTS} distinct errors {DEPTH} frames deep");
    println!(
        "  floor, backtrace::Backtrace::new(): {:.1} us, of which the walk (new_unresolved) {:.1} us",
        floor.as_secs_f64() * 1e6,
        walk.as_secs_f64() * 1e6
    );
    let dir: PathBuf =
        std::env::temp_dir().join(format!("crashbox-bench-per-report-{}", std::process::id()));
    for (label, spool) in [("without a spool", false), ("with a spool", true)] {
        let options = Options::new()
            .transport(Discard)
            .aggregation_window(Duration::ZERO)
            .max_reports_per_minute(0)
            .queue_capacity(REPORTS + 16);
        let options = if spool {
            options.spool_dir(&dir)
        } else {
            options.spool(false)
        };
        let guard = crashbox::init(options).expect("init");
        per_report("warm-up");
        let mut rounds: Vec<PerReport> = (0..5).map(|r| per_report(&word(r))).collect();
        rounds.sort_by_key(|r| r.total);
        let median = rounds[2];
        println!(
            "  {label}: {:.1} us ({:.2}x the floor; median of 5), of which {:.1} us on the capturing thread",
            median.total.as_secs_f64() * 1e6,
            median.total.as_secs_f64() / floor.as_secs_f64(),
            median.caller.as_secs_f64() * 1e6,
        );
        drop(guard);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
