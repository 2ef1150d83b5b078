//! An error storm: 2 threads each capture the same error 100,000 times from
//! a 20-frame-deep stack (release build), with the default options.
//!
//! `cargo bench --bench storm` prints the throughput in captures per second,
//! the process's peak RSS, and the accounting: every capture is sent on its
//! own, aggregated into another report's `count`, or dropped, and the counts
//! carried by the reports the transport received add up to the captures.
//! It exits with an error if the accounting does not balance.
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crashbox::{Options, Report, Transport, TransportError};

mod support;
use support::{at_depth, Chained, DEPTH};

const THREADS: usize = 2;
const PER_THREAD: u64 = 100_000;

/// Counts the reports and the occurrences they stand for, then discards them.
struct Counting {
    reports: Arc<AtomicU64>,
    occurrences: Arc<AtomicU64>,
}
impl Transport for Counting {
    fn send(&mut self, reports: &[Report]) -> Result<(), TransportError> {
        self.reports
            .fetch_add(reports.len() as u64, Ordering::Relaxed);
        let occurrences: u64 = reports.iter().map(|r| r.count).sum();
        self.occurrences.fetch_add(occurrences, Ordering::Relaxed);
        Ok(())
    }
}

/// Peak resident set size, in KiB (Linux), from `/proc/self/status`.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// One storm: `THREADS` threads capture the same error `PER_THREAD` times
/// each. Returns the elapsed time.
fn storm() -> Duration {
    let start = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            std::thread::spawn(|| {
                let err = Chained::new(
                    "upstream timed out",
                    std::io::ErrorKind::TimedOut,
                    "10.0.0.7:5432",
                );
                for _ in 0..PER_THREAD {
                    at_depth(DEPTH, &mut || black_box(crashbox::capture_error(&err)));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("storm thread");
    }
    start.elapsed()
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or("?".to_owned(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that does not name
    // this bench skips it (as `cargo bench --bench capture foo` would).
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"storm".contains(a.as_str()))
    {
        return;
    }
    let reports = Arc::new(AtomicU64::new(0));
    let occurrences = Arc::new(AtomicU64::new(0));
    let rss_start = peak_rss_kib();
    let guard = crashbox::init(
        Options::new()
            .transport(Counting {
                reports: reports.clone(),
                occurrences: occurrences.clone(),
            })
            .spool(false),
    )
    .expect("init");
    let total = THREADS as u64 * PER_THREAD;
    println!("storm: {THREADS} threads x {PER_THREAD} captures of one error, depth {DEPTH}, default options");
    // Cold: the first captures of the process; the worker loads debug info
    // to resolve the first report while the storm goes on.
    // Warm: the same again, with the symbol cache filled.
    let mut balanced = true;
    for round in ["cold", "warm"] {
        let before = crashbox::stats();
        let (reports_before, carried_before) = (
            reports.load(Ordering::Relaxed),
            occurrences.load(Ordering::Relaxed),
        );
        let elapsed = storm();
        let flushed = crashbox::flush(Duration::from_secs(30));
        let stats = crashbox::stats();
        let received = reports.load(Ordering::Relaxed) - reports_before;
        let carried = occurrences.load(Ordering::Relaxed) - carried_before;
        let (captured, sent, aggregated, dropped) = (
            stats.captured - before.captured,
            stats.sent - before.sent,
            stats.aggregated - before.aggregated,
            stats.dropped() - before.dropped(),
        );
        println!(
            "  {round}: {:.1} ms, {:.0} captures/s, {:.2} us per capture per thread, peak RSS so far {}",
            elapsed.as_secs_f64() * 1e3,
            total as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1e6 / PER_THREAD as f64,
            mib(peak_rss_kib()),
        );
        println!(
            "    captured {captured}, sent {sent}, aggregated {aggregated}, dropped {dropped}, in flight {}; \
             the transport received {received} reports carrying {carried} occurrences",
            stats.in_flight()
        );
        balanced &= flushed
            && captured == total
            && stats.in_flight() == 0
            && sent == received
            && sent + aggregated + dropped == captured
            && carried + dropped == total;
    }
    drop(guard);
    println!("  peak RSS before init {}", mib(rss_start));
    if !balanced {
        eprintln!("storm: the accounting does not balance");
        std::process::exit(1);
    }
    println!("  every capture accounted for: sent + aggregated + dropped = captured");
}
