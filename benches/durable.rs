//! What making every capture durable costs the worker, and how soon a
//! capture is on disk (release build).
//!
//! `cargo bench --bench durable` captures 2,000 distinct errors as fast as
//! possible, with aggregation and the rate limit off, and times how long the
//! worker takes to deliver them all to a transport that discards them: once
//! with a spool (each capture appended to the journal as it arrives, its
//! line kept until its report is delivered) and once without. Then, with a
//! collector that is down (so nothing leaves the spool) and the worker
//! idle, it times 200 single captures from `capture_error` returning to the
//! capture being on disk (in the journal, or in a file of its own).
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod support;
use support::{word, Discard};

use crashbox::{Options, Report, Transport, TransportError};

const BURST: usize = 2_000;
const SINGLES: usize = 200;

/// Refuses everything, to be tried again much later.
struct Down;
impl Transport for Down {
    fn send(&mut self, _reports: &[Report]) -> Result<(), TransportError> {
        Err(TransportError::Retryable("down".into()))
    }
}

fn options(spool: Option<&Path>) -> Options {
    let options = Options::new()
        .aggregation_window(Duration::ZERO)
        .max_reports_per_minute(0)
        .queue_capacity(BURST + 16);
    match spool {
        Some(dir) => options.spool_dir(dir),
        None => options.spool(false),
    }
}

/// Captures `BURST` distinct errors and waits until all are delivered;
/// returns the time from the first capture to the last delivery.
fn burst(round: usize) -> Duration {
    let start = Instant::now();
    for i in 0..BURST {
        let error = std::io::Error::other(format!("failure {} {}", word(round), word(i)));
        std::hint::black_box(crashbox::capture_error(&error));
    }
    assert!(crashbox::flush(Duration::from_secs(120)), "flush timed out");
    start.elapsed()
}

/// Bytes in the spool's journal files.
fn journal_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".journal"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn report_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".report"))
                .count()
        })
        .unwrap_or(0)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that does not name
    // this bench skips it.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"durable".contains(a.as_str()))
    {
        return;
    }
    let dir: PathBuf =
        std::env::temp_dir().join(format!("crashbox-bench-durable-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    println!("durable: {BURST} distinct errors captured back to back, delivered to a transport that discards them");
    let mut per_capture = Vec::new();
    for (label, spool) in [
        ("without a spool", None),
        ("with a spool", Some(dir.as_path())),
    ] {
        let guard = crashbox::init(options(spool).transport(Discard)).expect("init");
        // Debug info loaded and caches warm before timing.
        burst(0);
        let mut times: Vec<Duration> = (1..=3).map(burst).collect();
        times.sort();
        let median = times[1];
        let us = median.as_secs_f64() * 1e6 / BURST as f64;
        println!(
            "  {label}: {:.1} ms for {BURST} (median of 3), {us:.1} us per capture on the worker",
            median.as_secs_f64() * 1e3
        );
        per_capture.push(us);
        drop(guard);
    }
    // How soon a capture is on disk, the worker otherwise idle.
    let guard = crashbox::init(
        options(Some(&dir))
            .transport(Down)
            .retry_backoff(Duration::from_secs(3600), Duration::from_secs(3600))
            .shutdown_timeout(Duration::from_millis(100)),
    )
    .expect("init");
    let mut latencies = Vec::new();
    for i in 0..SINGLES {
        let (files, bytes) = (report_files(&dir), journal_bytes(&dir));
        let error = std::io::Error::other(format!("single {}", word(i)));
        crashbox::capture_error(&error);
        let returned = Instant::now();
        while journal_bytes(&dir) <= bytes
            && report_files(&dir) <= files
            && returned.elapsed() < Duration::from_secs(10)
        {
            std::hint::spin_loop();
        }
        latencies.push(returned.elapsed());
        // The worker idle again before the next one: its report processed
        // and its first delivery attempt failed.
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(guard);
    latencies.sort();
    println!(
        "  on disk after capture_error returned: median {:.0} us, 99th percentile {:.0} us, max {:.0} us ({SINGLES} captures)",
        latencies[SINGLES / 2].as_secs_f64() * 1e6,
        latencies[SINGLES * 99 / 100].as_secs_f64() * 1e6,
        latencies[SINGLES - 1].as_secs_f64() * 1e6
    );
    println!(
        "  the spool costs the worker {:.1} us per capture",
        per_capture[1] - per_capture[0]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
