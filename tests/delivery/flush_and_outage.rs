//! Delivery as the application sees it, over the `http://` collector and a
//! loopback server: what `flush` promises, and reports captured while the
//! collector is down reaching it, each once, when it comes back.
//!
//! `init` installs per-process state, so every scenario runs in a child
//! process (see `util::run_child`); the server lives in the parent.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::util::http_server::{Behavior, Server};
use crate::util::{
    assert_child, child, child_options, fast_options, http_collector, print_stats, report_value,
    run_against, stats, wait_for_stats,
};
use crashbox::Level;

// ---------------------------------------------------------------------------
// flush

/// How long the server takes to acknowledge in the flush test.
const ACK_DELAY: Duration = Duration::from_millis(700);

#[test]
fn flush_returns_true_once_the_server_acknowledged() {
    let server = Server::with_behavior(Behavior::delayed(ACK_DELAY, Behavior::ok()));
    let out = run_against(
        &child!(child_flush_acknowledged),
        &http_collector(server.port()),
        &[],
    );
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let flush_ms = out.number("flush_ms");
    assert!(
        flush_ms >= ACK_DELAY.as_millis() as u64 - 50,
        "flush returned after {flush_ms} ms, before the server answered (after {ACK_DELAY:?})"
    );
    assert_eq!(
        out.value("sent_when_flushed"),
        "1",
        "flush returned true before the transport was done"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].report_ids(), vec![out.value("id")]);
}

/// Run by `flush_returns_true_once_the_server_acknowledged`.
#[test]
#[ignore = "child process of `flush_returns_true_once_the_server_acknowledged`"]
fn child_flush_acknowledged() {
    assert_child();
    let guard = crashbox::init(child_options()).expect("init");
    let id = crashbox::capture_message("acknowledge me", Level::Error).expect("captured");
    let start = Instant::now();
    let flushed = crashbox::flush(Duration::from_secs(8));
    report_value("flush_ms", start.elapsed().as_millis());
    report_value("sent_when_flushed", crashbox::stats().sent);
    report_value("flushed", flushed);
    report_value("id", id);
    drop(guard);
}

#[test]
fn flush_waits_for_a_retry_to_succeed() {
    let server = Server::start();
    server.script([Behavior::status(503), Behavior::status(503)]);
    let out = run_against(
        &child!(child_flush_after_retries),
        &http_collector(server.port()),
        &[],
    );
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let stats = stats(&out, "stats_when_flushed");
    assert_eq!(stats["sent"], 1, "{stats:?}");
    assert_eq!(stats["retries"], 2, "{stats:?}");
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    assert!(requests[2].acknowledged());
}

/// Run by `flush_waits_for_a_retry_to_succeed`.
#[test]
#[ignore = "child process of `flush_waits_for_a_retry_to_succeed`"]
fn child_flush_after_retries() {
    assert_child();
    let guard = crashbox::init(fast_options().max_attempts(5)).expect("init");
    crashbox::capture_message("retry me", Level::Error).expect("captured");
    report_value("flushed", crashbox::flush(Duration::from_secs(8)));
    print_stats("stats_when_flushed");
    drop(guard);
}

const FLUSH_TIMEOUT: Duration = Duration::from_millis(500);

#[test]
fn flush_with_a_hanging_server_returns_false_within_its_timeout() {
    let server = Server::with_behavior(Behavior::Hang);
    let out = run_against(
        &child!(child_flush_hanging),
        &http_collector(server.port()),
        &[],
    );
    assert_eq!(
        out.value("flushed"),
        "false",
        "nothing was acknowledged\n{}",
        out.dump()
    );
    let flush_ms = out.number("flush_ms");
    let timeout_ms = FLUSH_TIMEOUT.as_millis() as u64;
    assert!(
        flush_ms + 20 >= timeout_ms && flush_ms < timeout_ms + 1000,
        "flush({FLUSH_TIMEOUT:?}) returned after {flush_ms} ms"
    );
    assert_eq!(server.request_count(), 1);
    assert!(
        out.elapsed < Duration::from_secs(8),
        "the child waited for the hanging request: {:?}",
        out.elapsed
    );
}

/// Run by `flush_with_a_hanging_server_returns_false_within_its_timeout`.
#[test]
#[ignore = "child process of `flush_with_a_hanging_server_returns_false_within_its_timeout`"]
fn child_flush_hanging() {
    assert_child();
    let guard =
        crashbox::init(child_options().shutdown_timeout(Duration::from_millis(300))).expect("init");
    // Symbolicate up front so the worker's first report is quick, then give
    // it time to get into the request that will never be answered.
    let _ = crashbox::testing::capture(|| crashbox::capture_message("warm-up", Level::Info));
    crashbox::capture_message("never acknowledged", Level::Error).expect("captured");
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let flushed = crashbox::flush(FLUSH_TIMEOUT);
    report_value("flush_ms", start.elapsed().as_millis());
    report_value("flushed", flushed);
    drop(guard);
}

// ---------------------------------------------------------------------------
// An outage.

/// Captures per phase: before the outage is noticed, during connection
/// drops, during 500s, after recovery.
const PER_PHASE: usize = 5;

#[test]
fn captures_while_the_collector_is_down_are_all_delivered_once_it_is_up() {
    let server = Server::with_behavior(Behavior::Close);
    let driver = std::thread::scope(|scope| {
        let driver = scope.spawn(|| {
            // Down (connections dropped) for a few attempts, then 500s, then up.
            let seen = server.wait_for_requests(3, Duration::from_secs(20));
            assert!(seen.len() >= 3, "the child never tried to deliver");
            server.set_behavior(Behavior::status(500));
            let seen = server.wait_until(Duration::from_secs(20), |r| {
                r.iter().filter(|r| r.answered() == Some(500)).count() >= 3
            });
            assert!(seen.iter().filter(|r| r.answered() == Some(500)).count() >= 3);
            server.set_behavior(Behavior::ok());
        });
        let out = run_against(&child!(child_outage), &http_collector(server.port()), &[]);
        (driver.join(), out)
    });
    let (driven, out) = driver;
    driven.expect("the server driver failed");

    let captured: Vec<String> = out.value("ids").split(',').map(str::to_owned).collect();
    assert_eq!(captured.len(), 4 * PER_PHASE);
    let distinct: BTreeSet<&String> = captured.iter().collect();
    assert_eq!(
        distinct.len(),
        captured.len(),
        "capture returned a repeated id"
    );

    let requests = server.requests();
    assert!(
        requests.iter().any(|r| r.answered().is_none()),
        "no connection was dropped"
    );
    assert!(requests.iter().any(|r| r.answered() == Some(500)));
    let mut delivered: BTreeMap<String, usize> = BTreeMap::new();
    for request in requests.iter().filter(|r| r.acknowledged()) {
        for id in request.report_ids() {
            *delivered.entry(id).or_default() += 1;
        }
    }
    let twice: Vec<_> = delivered.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "acknowledged more than once: {twice:?}");
    let delivered: BTreeSet<&String> = delivered.keys().collect();
    assert_eq!(delivered, distinct, "every captured report is delivered");
    let stats = stats(&out, "stats");
    assert_eq!(stats["sent"], (4 * PER_PHASE) as u64, "{stats:?}");
    assert_eq!(stats["dropped"], 0, "{stats:?}");
    assert_eq!(stats["dropped_retries_exhausted"], 0, "{stats:?}");
}

/// Run by `captures_while_the_collector_is_down_are_all_delivered_once_it_is_up`.
#[test]
#[ignore = "child process of `captures_while_the_collector_is_down_are_all_delivered_once_it_is_up`"]
fn child_outage() {
    assert_child();
    let guard = crashbox::init(fast_options().max_attempts(50)).expect("init");
    let mut ids = Vec::new();
    let mut capture = |phase: &str| {
        for i in 0..PER_PHASE {
            let id =
                crashbox::capture_message(format!("{phase} {i}"), Level::Error).expect("captured");
            ids.push(id.to_hex());
        }
    };
    capture("before");
    // Connections are being dropped.
    wait_for_stats(Duration::from_secs(20), |s| s.retries >= 1);
    capture("dropped");
    // The parent switches to 500s after three attempts.
    wait_for_stats(Duration::from_secs(20), |s| s.retries >= 4);
    capture("failing");
    // Up again.
    wait_for_stats(Duration::from_secs(20), |s| s.sent >= 1);
    capture("recovered");
    report_value("flushed", crashbox::flush(Duration::from_secs(20)));
    report_value("ids", ids.join(","));
    let stats = crashbox::stats();
    report_value(
        "stats",
        format!("{stats:?}").replace('}', &format!(", dropped: {} }}", stats.dropped())),
    );
    drop(guard);
}
