//! CPU per delivered report, on every thread, next to the floor measured in
//! the same run (release build).
//!
//! `cargo bench --bench per_report` delivers 2,000 distinct errors, captured
//! 20 frames deep with aggregation and the rate limit off, to a transport
//! that discards them, and divides the process's CPU time (user + system,
//! all threads, from `getrusage`) by the reports delivered: without a spool
//! and with one. The floor is `backtrace::Backtrace::new()` (walk and resolve
//! the same stack) timed the same way, after a first call has loaded the
//! debug info.
use std::path::PathBuf;
use std::time::Duration;

use crashbox::{Options, Report, Transport, TransportError};

mod support;
use support::{at_depth, DEPTH};

const REPORTS: usize = 2_000;

struct Discard;
impl Transport for Discard {
    fn send(&mut self, _reports: &[Report]) -> Result<(), TransportError> {
        Ok(())
    }
}

/// The process's CPU time so far (user + system, all threads).
fn cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn word(mut n: usize) -> String {
    let mut word = String::new();
    loop {
        word.push((b'g' + (n % 20) as u8) as char);
        n /= 20;
        if n == 0 {
            return word;
        }
    }
}

/// CPU per delivered report for `REPORTS` distinct errors.
fn per_report(round: &str) -> Duration {
    let start = cpu();
    for i in 0..REPORTS {
        let error = std::io::Error::other(format!("failure {round} {}", word(i)));
        at_depth(DEPTH, &mut || {
            std::hint::black_box(crashbox::capture_error(&error))
        });
    }
    assert!(crashbox::flush(Duration::from_secs(120)), "flush timed out");
    (cpu() - start) / REPORTS as u32
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
    println!("per_report: CPU per delivered report, all threads, {REPORTS} distinct errors {DEPTH} frames deep");
    println!(
        "  floor, backtrace::Backtrace::new(): {:.1} us",
        floor.as_secs_f64() * 1e6
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
        let mut rounds: Vec<Duration> = (0..3).map(|r| per_report(&word(r))).collect();
        rounds.sort();
        let median = rounds[1];
        println!(
            "  {label}: {:.1} us ({:.2}x the floor; median of 3)",
            median.as_secs_f64() * 1e6,
            median.as_secs_f64() / floor.as_secs_f64()
        );
        drop(guard);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
