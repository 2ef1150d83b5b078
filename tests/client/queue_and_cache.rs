//! The bounded queue between callers and the worker, and the worker's symbol
//! cache.
//!
//! Both scenarios call `init` and read process-wide `stats()`, so each runs
//! in a child process and prints its counters for the parent to check.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::errors;
use crate::util::{assert_child, child, one_by_one, report_value, run_child};
use crashbox::{Level, Options, Report, Transport, TransportError};

// ---------------------------------------------------------------------------
// A full queue drops captures and says so.

/// A transport that announces its first call, then blocks until released
/// (the release sender is dropped).
struct Gate {
    entered: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
}

impl Transport for Gate {
    fn send(&mut self, _reports: &[Report]) -> Result<(), TransportError> {
        let _ = self.entered.send(());
        let _ = self.release.recv_timeout(Duration::from_secs(60));
        Ok(())
    }
}

const BURST: u64 = 100;

#[test]
fn a_full_queue_drops_captures_counts_them_and_returns_none() {
    let out = run_child(&child!(child_full_queue), &[]);
    out.assert_success();
    let dropped = out.number("dropped_queue_full");
    let returned_none = out.number("returned_none");
    let returned_some = out.number("returned_some");
    assert!(
        dropped >= 90,
        "only {dropped} of {BURST} captures were dropped with a queue of 1\n{}",
        out.dump()
    );
    assert_eq!(returned_none + returned_some, BURST);
    assert_eq!(
        returned_none, dropped,
        "every dropped capture must return None, and only those"
    );
    // What was accepted is delivered once the transport is released.
    assert_eq!(out.number("sent"), 1 + returned_some, "{}", out.dump());
    assert_eq!(out.number("delivered_ids_match"), 1);
}

/// Run by `a_full_queue_drops_captures_counts_them_and_returns_none`.
#[test]
#[ignore = "child process of `a_full_queue_drops_captures_counts_them_and_returns_none`"]
fn child_full_queue() {
    assert_child();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let delivered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = delivered.clone();
    let guard = crashbox::init(
        Options::new()
            .transport(Gate {
                entered: entered_tx,
                release: release_rx,
            })
            .queue_capacity(1)
            // No on-disk spool: this is about the in-memory queue alone.
            .spool(false)
            .shutdown_timeout(Duration::from_secs(30))
            .before_send(move |report| {
                seen.lock().unwrap().push(report.id);
                Some(report)
            }),
    )
    .expect("init");
    let first = crashbox::capture_message("blocks the transport", Level::Error).expect("captured");
    entered_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the worker should call the transport");
    // The worker is stuck in send: one capture fits in the queue, the rest must not.
    let before = crashbox::stats().dropped_queue_full;
    let ids: Vec<_> = (0..BURST)
        .map(|i| crashbox::capture_message(format!("burst {i}"), Level::Error))
        .collect();
    let after = crashbox::stats().dropped_queue_full;
    report_value("dropped_queue_full", after - before);
    report_value(
        "returned_none",
        ids.iter().filter(|id| id.is_none()).count(),
    );
    report_value(
        "returned_some",
        ids.iter().filter(|id| id.is_some()).count(),
    );
    drop(release_tx);
    assert!(
        crashbox::flush(Duration::from_secs(30)),
        "flush after release"
    );
    let sent = crashbox::stats().sent;
    report_value("sent", sent);
    let mut expected: Vec<_> = std::iter::once(first)
        .chain(ids.into_iter().flatten())
        .collect();
    let mut got = delivered.lock().unwrap().clone();
    expected.sort();
    got.sort();
    report_value("delivered_ids_match", u8::from(expected == got));
    drop(guard);
}

// ---------------------------------------------------------------------------
// Symbols are resolved once per address, not once per capture.

errors::test_error!(Repeated => "the same error, again");

/// The one call site every capture comes from.
#[inline(never)]
fn capture_site(err: &Repeated) -> bool {
    crashbox::capture_error(err).is_some()
}

const REPEATS: usize = 10_000;

/// Slower than the others (10,000 captures processed in a debug build): a few seconds.
#[test]
fn repeated_captures_from_one_site_reuse_resolved_symbols() {
    let out = run_child(&child!(child_repeated_captures), &[]);
    out.assert_success();
    let first = out.number("resolved_after_first");
    let total = out.number("resolved_after_all");
    assert!(first > 0, "the first capture must resolve its stack");
    assert!(
        total < 3 * first,
        "{REPEATS} captures resolved {total} addresses, the first alone {first}: \
         symbols are being resolved per capture"
    );
    assert_eq!(out.number("accepted"), REPEATS as u64, "{}", out.dump());
    assert_eq!(out.number("stored"), REPEATS as u64, "{}", out.dump());
}

/// Run by `repeated_captures_from_one_site_reuse_resolved_symbols`.
#[test]
#[ignore = "child process of `repeated_captures_from_one_site_reuse_resolved_symbols`"]
fn child_repeated_captures() {
    assert_child();
    let guard = crashbox::init(
        // Every repeat processed on its own: this test is about the symbol cache.
        one_by_one(Options::new())
            .collector("memory")
            .queue_capacity(2 * REPEATS)
            .shutdown_timeout(Duration::from_secs(60)),
    )
    .expect("init");
    let err = Repeated;
    let start = Instant::now();
    let mut accepted = 0;
    for i in 0..REPEATS {
        if capture_site(&err) {
            accepted += 1;
        }
        if i == 0 {
            assert!(crashbox::flush(Duration::from_secs(60)));
            report_value("resolved_after_first", crashbox::stats().addresses_resolved);
        }
    }
    assert!(crashbox::flush(Duration::from_secs(120)));
    report_value("resolved_after_all", crashbox::stats().addresses_resolved);
    report_value("accepted", accepted);
    report_value("stored", crashbox::memory_reports().len());
    report_value("elapsed_ms", start.elapsed().as_millis());
    drop(guard);
}
