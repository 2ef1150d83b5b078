//! The `http(s)://` collector against a loopback server: the JSON array of
//! reports it POSTs, batching, and how each kind of failure is retried,
//! rejected, rate limited or abandoned at shutdown.
//!
//! `init` installs per-process state, so every scenario runs in a child
//! process (see `util::run_child`); the server lives in the parent, which
//! checks what it received and the counters the child printed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::util::errors::load_error;
use crate::util::http_server::{refused_port, Behavior, Request, Server};
use crate::util::{
    assert_child, assert_keys, child, fast_options, http_collector, is_lower_hex_32,
    is_rfc3339_utc_millis, print_stats, report_value, run_against, stats, wait_for_stats,
    ChildOutput, BREADCRUMB_KEYS, CONTEXT_KEYS, EXCEPTION_KEYS, FRAME_KEYS, LOCATION_KEYS,
    REPORT_KEYS, THREAD_KEYS,
};
use crashbox::{Breadcrumb, Level, Report, User};
use serde_json::Value;

fn id_list(out: &ChildOutput, key: &str) -> Vec<String> {
    out.value(key)
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------
// What the collector receives.

#[test]
fn reports_arrive_as_a_json_array_with_every_schema_key() {
    let server = Server::start();
    let out = run_against(&child!(child_schema), &http_collector(server.port()), &[]);
    let error_id = out.value("error_id");
    let message_id = out.value("message_id");
    let capture_line: u32 = out.value("capture_line").parse().unwrap();

    let requests = server.requests();
    assert!(!requests.is_empty(), "nothing arrived\n{}", out.dump());
    let mut reports: Vec<(Value, Report)> = Vec::new();
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/ingest");
        assert_eq!(
            request.header("content-type"),
            Some("application/json"),
            "{request:?}"
        );
        let body = request.json();
        let array = body.as_array().expect("the body is a JSON array");
        assert!(!array.is_empty(), "an empty batch was sent");
        for raw in array {
            let parsed: Report = serde_json::from_value(raw.clone())
                .unwrap_or_else(|e| panic!("not a crashbox::Report ({e}): {raw}"));
            reports.push((raw.clone(), parsed));
        }
    }
    assert_eq!(reports.len(), 2, "{requests:#?}");

    for (raw, parsed) in &reports {
        assert_keys(raw, REPORT_KEYS, "report");
        let id = raw["id"].as_str().unwrap();
        assert!(is_lower_hex_32(id), "id {id:?}");
        assert_eq!(parsed.id.to_hex(), id);
        let ts = raw["timestamp"].as_str().unwrap();
        assert!(is_rfc3339_utc_millis(ts), "timestamp {ts:?}");
        let frames = raw["frames"].as_array().expect("frames is an array");
        assert!(!frames.is_empty(), "no frames: {raw}");
        for frame in frames {
            assert_keys(frame, FRAME_KEYS, "frame");
            assert!(frame["in_app"].is_boolean(), "{frame}");
            let address = frame["address"].as_str().expect("address is a string");
            assert!(
                address.starts_with("0x") && address.len() > 2,
                "address {address:?}"
            );
        }
        assert!(
            frames.iter().any(|f| f["in_app"] == true),
            "no in-app frame: {raw}"
        );
        assert_keys(&raw["location"], LOCATION_KEYS, "location");
        assert_keys(&raw["thread"], THREAD_KEYS, "thread");
        assert_keys(&raw["context"], CONTEXT_KEYS, "context");
        assert_eq!(raw["sdk"]["name"], "crashbox");
        assert_eq!(raw["sdk"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(raw["release"], "myapp@1.2.3");
        assert_eq!(raw["environment"], "staging");
        assert_eq!(raw["tags"]["tenant"], "acme");
        assert_eq!(raw["extra"]["attempt"], 3);
        assert_eq!(raw["user"]["id"], "user-42");
        let crumbs = raw["breadcrumbs"].as_array().expect("breadcrumbs array");
        assert_eq!(crumbs.len(), 1, "{raw}");
        assert_keys(&crumbs[0], BREADCRUMB_KEYS, "breadcrumb");
        assert_eq!(crumbs[0]["message"], "loaded settings");
    }

    let (error_raw, error) = reports
        .iter()
        .find(|(_, r)| r.id.to_hex() == error_id)
        .expect("the error report arrived");
    assert_eq!(error_raw["level"], "error");
    assert_eq!(error_raw["kind"], "error");
    assert_eq!(
        error_raw["message"],
        "could not load the ingest configuration"
    );
    let exceptions = error_raw["exceptions"].as_array().unwrap();
    assert_eq!(exceptions.len(), 2, "{error_raw}");
    for e in exceptions {
        assert_keys(e, EXCEPTION_KEYS, "exception");
    }
    assert!(
        exceptions[0]["type"]
            .as_str()
            .unwrap()
            .ends_with("LoadError"),
        "{exceptions:?}"
    );
    assert_eq!(exceptions[1]["message"], "app.toml is missing");
    let location = error.location.as_ref().expect("a location");
    assert!(
        location.file.ends_with("tests/collectors/http.rs"),
        "{location:?}"
    );
    assert_eq!(location.line, capture_line);

    let (message_raw, _) = reports
        .iter()
        .find(|(_, r)| r.id.to_hex() == message_id)
        .expect("the message report arrived");
    assert_eq!(message_raw["level"], "warning");
    assert_eq!(message_raw["kind"], "message");
    assert_eq!(message_raw["message"], "cache is cold");
    assert_eq!(message_raw["exceptions"], Value::Array(vec![]));
}

/// Run by `reports_arrive_as_a_json_array_with_every_schema_key`.
#[test]
#[ignore = "child process of `reports_arrive_as_a_json_array_with_every_schema_key`"]
fn child_schema() {
    assert_child();
    let guard =
        crashbox::init(fast_options().release("myapp@1.2.3").environment("staging")).expect("init");
    crashbox::configure_scope(|scope| {
        scope.set_tag("tenant", "acme");
        scope.set_extra("attempt", 3);
        scope.set_user(Some(User::with_id("user-42")));
    });
    crashbox::add_breadcrumb(Breadcrumb::new("loaded settings").category("config"));
    let err = load_error();
    let (error_id, line) = (crashbox::capture_error(&err), line!());
    let message_id = crashbox::capture_message("cache is cold", Level::Warning);
    assert!(crashbox::flush(Duration::from_secs(10)), "flush timed out");
    report_value("error_id", error_id.expect("captured"));
    report_value("message_id", message_id.expect("captured"));
    report_value("capture_line", line);
    drop(guard);
}

// ---------------------------------------------------------------------------
// Batching.

const MANY: usize = 200;

#[test]
fn captures_go_in_batches_of_at_most_64_and_each_id_arrives_once() {
    let server = Server::start();
    let out = run_against(&child!(child_many), &http_collector(server.port()), &[]);
    let captured = id_list(&out, "ids");
    assert_eq!(captured.len(), MANY);

    let requests = server.requests();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for request in &requests {
        let batch = request.report_ids();
        assert!(
            !batch.is_empty() && batch.len() <= crashbox::MAX_BATCH,
            "a batch of {} reports",
            batch.len()
        );
        for id in batch {
            *seen.entry(id).or_default() += 1;
        }
    }
    assert!(
        requests.len() >= MANY.div_ceil(crashbox::MAX_BATCH),
        "{} requests",
        requests.len()
    );
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "ids sent more than once: {twice:?}");
    let expected: BTreeSet<String> = captured.into_iter().collect();
    let got: BTreeSet<String> = seen.into_keys().collect();
    assert_eq!(expected.len(), MANY, "capture returned duplicate ids");
    assert_eq!(got, expected);
    let stats = stats(&out, "stats");
    assert_eq!(stats["sent"], MANY as u64);
    assert_eq!(stats["retries"], 0);
}

/// Run by `captures_go_in_batches_of_at_most_64_and_each_id_arrives_once`.
#[test]
#[ignore = "child process of `captures_go_in_batches_of_at_most_64_and_each_id_arrives_once`"]
fn child_many() {
    assert_child();
    let guard = crashbox::init(fast_options()).expect("init");
    let ids: Vec<String> = (0..MANY)
        .map(|i| {
            crashbox::capture_message(format!("report {i}"), Level::Info)
                .expect("captured")
                .to_hex()
        })
        .collect();
    assert!(crashbox::flush(Duration::from_secs(20)), "flush timed out");
    report_value("ids", ids.join(","));
    print_stats("stats");
    drop(guard);
}

// ---------------------------------------------------------------------------
// Retry decisions.

/// Run by the tests that capture one report, flush, and print the counters.
#[test]
#[ignore = "child process of the retry tests (`a_500_is_retried_and_the_same_report_delivered` and the callers of `assert_status_is_not_retried` and `assert_failure_is_retried_exactly_max_attempts_times`)"]
fn child_one_report() {
    assert_child();
    let guard = crashbox::init(fast_options()).expect("init");
    let id = crashbox::capture_error(&load_error()).expect("captured");
    let start = Instant::now();
    let flushed = crashbox::flush(Duration::from_secs(10));
    report_value("flushed", flushed);
    report_value("flush_ms", start.elapsed().as_millis());
    // Long enough for a wrongly scheduled retry (back-off 50-200 ms) to go out.
    std::thread::sleep(Duration::from_millis(600));
    report_value("id", id);
    print_stats("stats");
    drop(guard);
}

#[test]
fn a_500_is_retried_and_the_same_report_delivered() {
    let server = Server::start();
    server.script([Behavior::status(500)]);
    let out = run_against(
        &child!(child_one_report),
        &http_collector(server.port()),
        &[],
    );
    assert_eq!(out.value("flushed"), "true");
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(requests[0].answered(), Some(500));
    assert_eq!(requests[1].answered(), Some(200));
    let id = out.value("id");
    assert_eq!(requests[0].report_ids(), vec![id.clone()]);
    assert_eq!(
        requests[1].report_ids(),
        vec![id],
        "the retry resends the same report"
    );
    let stats = stats(&out, "stats");
    assert!(stats["retries"] >= 1, "{stats:?}");
    assert_eq!(stats["sent"], 1);
    assert_eq!(stats["dropped_retries_exhausted"], 0);
}

fn assert_status_is_not_retried(status: u16) {
    let server = Server::with_behavior(Behavior::status(status));
    let out = run_against(
        &child!(child_one_report),
        &http_collector(server.port()),
        &[],
    );
    assert_eq!(
        out.value("flushed"),
        "true",
        "a rejected report is settled: flush must not wait for it"
    );
    let requests = server.requests();
    assert_eq!(
        requests.len(),
        1,
        "HTTP {status} must not be retried: {} requests\n{}",
        requests.len(),
        out.dump()
    );
    assert_eq!(requests[0].report_ids(), vec![out.value("id")]);
    let stats = stats(&out, "stats");
    assert_eq!(stats["dropped_rejected"], 1, "{stats:?}");
    assert_eq!(stats["retries"], 0, "{stats:?}");
    assert_eq!(stats["sent"], 0, "{stats:?}");
    assert_eq!(stats["dropped_retries_exhausted"], 0, "{stats:?}");
}

#[test]
fn a_400_is_not_retried_and_counts_as_rejected() {
    assert_status_is_not_retried(400);
}

#[test]
fn a_401_is_not_retried_and_counts_as_rejected() {
    assert_status_is_not_retried(401);
}

#[test]
fn a_403_is_not_retried_and_counts_as_rejected() {
    assert_status_is_not_retried(403);
}

#[test]
fn a_413_is_not_retried_and_counts_as_rejected() {
    assert_status_is_not_retried(413);
}

/// `fast_options` allows this many attempts.
const ATTEMPTS: usize = 4;

#[test]
fn connection_refused_is_retried_max_attempts_times_then_dropped() {
    let collector = http_collector(refused_port());
    let out = run_against(&child!(child_one_report), &collector, &[]);
    assert_eq!(out.value("flushed"), "true");
    let stats = stats(&out, "stats");
    assert_eq!(
        stats["retries"],
        ATTEMPTS as u64 - 1,
        "{ATTEMPTS} attempts are {} retries: {stats:?}",
        ATTEMPTS - 1
    );
    assert_eq!(stats["dropped_retries_exhausted"], 1, "{stats:?}");
    assert_eq!(stats["sent"], 0);
    assert_eq!(stats["dropped_rejected"], 0);
}

fn assert_failure_is_retried_exactly_max_attempts_times(behavior: Behavior) {
    let server = Server::with_behavior(behavior.clone());
    let out = run_against(
        &child!(child_one_report),
        &http_collector(server.port()),
        &[],
    );
    assert_eq!(out.value("flushed"), "true");
    let requests = server.requests();
    assert_eq!(
        requests.len(),
        ATTEMPTS,
        "{behavior:?}: expected {ATTEMPTS} attempts\n{}",
        out.dump()
    );
    let id = out.value("id");
    for request in &requests {
        assert_eq!(request.report_ids(), vec![id.clone()]);
    }
    let stats = stats(&out, "stats");
    assert_eq!(stats["retries"], ATTEMPTS as u64 - 1, "{stats:?}");
    assert_eq!(stats["dropped_retries_exhausted"], 1, "{stats:?}");
    assert_eq!(stats["sent"], 0);
}

#[test]
fn a_persistent_503_is_tried_max_attempts_times_then_dropped() {
    assert_failure_is_retried_exactly_max_attempts_times(Behavior::status(503));
}

#[test]
fn a_connection_closed_without_answer_is_tried_max_attempts_times_then_dropped() {
    assert_failure_is_retried_exactly_max_attempts_times(Behavior::Close);
}

/// Reports in the batch that a large-payload request splits.
const BIG_REPORTS: usize = 5;

#[test]
fn a_rejected_request_does_not_miscount_or_drop_the_rest_of_its_batch() {
    let server = Server::start();
    // The warm-up report's answer is slow, so the big reports queue up and
    // travel as one batch; its first request is accepted, the second refused.
    server.script([
        Behavior::delayed(Duration::from_millis(800), Behavior::ok()),
        Behavior::ok(),
        Behavior::status(413),
    ]);
    let out = run_against(
        &child!(child_big_batch),
        &http_collector(server.port()),
        &[],
    );
    let requests = server.requests();
    let big = id_list(&out, "ids");
    assert_eq!(big.len(), BIG_REPORTS);
    assert!(
        requests.len() >= 3 && requests[1].report_ids().len() < BIG_REPORTS,
        "the batch was not split by size: {:?}",
        requests.iter().map(Request::report_ids).collect::<Vec<_>>()
    );
    let acknowledged: usize = requests
        .iter()
        .filter(|r| r.acknowledged())
        .map(|r| r.report_ids().len())
        .sum();
    let rejected: usize = requests
        .iter()
        .filter(|r| r.answered() == Some(413))
        .map(|r| r.report_ids().len())
        .sum();
    let offered: BTreeSet<String> = requests.iter().flat_map(Request::report_ids).collect();
    let stats = stats(&out, "stats");
    assert_eq!(
        stats["sent"], acknowledged as u64,
        "the collector acknowledged {acknowledged} reports: {stats:?}"
    );
    assert_eq!(
        stats["dropped_rejected"], rejected as u64,
        "the collector refused {rejected} reports: {stats:?}"
    );
    let never_offered: Vec<&String> = big.iter().filter(|id| !offered.contains(*id)).collect();
    assert!(
        never_offered.is_empty(),
        "dropped without being offered to the collector: {never_offered:?}"
    );
}

/// Run by `a_rejected_request_does_not_miscount_or_drop_the_rest_of_its_batch`.
#[test]
#[ignore = "child process of `a_rejected_request_does_not_miscount_or_drop_the_rest_of_its_batch`"]
fn child_big_batch() {
    assert_child();
    // Symbolicate up front so the warm-up report goes out at once.
    let _ = crashbox::testing::capture(|| crashbox::capture_message("symbols", Level::Info));
    let guard = crashbox::init(fast_options()).expect("init");
    crashbox::capture_message("warm-up", Level::Info).expect("captured");
    std::thread::sleep(Duration::from_millis(300));
    // Each report carries about 375 KB of extra: two fit in one request.
    let ids: Vec<String> = crashbox::with_scope(
        |scope| {
            for k in 0..25 {
                scope.set_extra(format!("blob{k}"), "x".repeat(15_000));
            }
        },
        || {
            (0..BIG_REPORTS)
                .map(|i| {
                    crashbox::capture_message(format!("big {i}"), Level::Error)
                        .expect("captured")
                        .to_hex()
                })
                .collect()
        },
    );
    assert!(crashbox::flush(Duration::from_secs(10)), "flush timed out");
    report_value("ids", ids.join(","));
    print_stats("stats");
    drop(guard);
}

// ---------------------------------------------------------------------------
// Rate limits.

#[test]
fn a_429_with_retry_after_holds_every_send_for_that_long() {
    let server = Server::start();
    server.script([Behavior::respond(429, &[("Retry-After", "2")], "{}")]);
    let out = run_against(
        &child!(child_rate_limited_then_more),
        &http_collector(server.port()),
        &[],
    );
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let requests = server.requests();
    assert!(requests.len() >= 2, "{requests:#?}");
    assert_eq!(requests[0].answered(), Some(429));
    let first = out.value("first");
    let second = out.value("second");
    assert_eq!(requests[0].report_ids(), vec![first.clone()]);
    let gap = requests[1].at - requests[0].at;
    assert!(
        gap >= Duration::from_millis(1900),
        "a request reached the server {gap:?} after a 429 with Retry-After: 2"
    );
    let delivered: Vec<String> = requests[1..]
        .iter()
        .filter(|r| r.acknowledged())
        .flat_map(Request::report_ids)
        .collect();
    let mut sorted = delivered.clone();
    sorted.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(
        sorted, expected,
        "both reports delivered once after the wait"
    );
    let stats = stats(&out, "stats");
    assert!(stats["rate_limited"] >= 1, "{stats:?}");
    assert_eq!(stats["sent"], 2);
    assert_eq!(stats["retries"], 0, "rate-limit waits are not retries");
}

/// Run by `a_429_with_retry_after_holds_every_send_for_that_long`.
#[test]
#[ignore = "child process of `a_429_with_retry_after_holds_every_send_for_that_long`"]
fn child_rate_limited_then_more() {
    assert_child();
    let guard = crashbox::init(fast_options()).expect("init");
    let first = crashbox::capture_message("first", Level::Error).expect("captured");
    wait_for_stats(Duration::from_secs(5), |s| s.rate_limited >= 1);
    // Captured inside the window: it must wait too.
    let second = crashbox::capture_message("second", Level::Error).expect("captured");
    report_value("flushed", crashbox::flush(Duration::from_secs(8)));
    report_value("first", first);
    report_value("second", second);
    print_stats("stats");
    drop(guard);
}

#[test]
fn a_bare_429_holds_sends_for_a_minute_and_shutdown_drops_what_waits() {
    let server = Server::with_behavior(Behavior::status(429));
    let out = run_against(&child!(child_bare_429), &http_collector(server.port()), &[]);
    let requests = server.requests();
    assert_eq!(
        requests.len(),
        1,
        "nothing may be sent within a minute of a bare 429\n{}",
        out.dump()
    );
    let during = stats(&out, "stats_before_drop");
    assert_eq!(during["rate_limited"], 1, "{during:?}");
    assert_eq!(during["sent"], 0);
    let drop_ms = out.number("drop_ms");
    assert!(
        drop_ms < 1000,
        "Guard::drop took {drop_ms} ms with shutdown_timeout 500 ms"
    );
    let after = stats(&out, "stats_after_drop");
    assert_eq!(
        after["dropped_shutdown"], 2,
        "both held reports are dropped at shutdown: {after:?}"
    );
}

/// Run by `a_bare_429_holds_sends_for_a_minute_and_shutdown_drops_what_waits`.
#[test]
#[ignore = "child process of `a_bare_429_holds_sends_for_a_minute_and_shutdown_drops_what_waits`"]
fn child_bare_429() {
    assert_child();
    let guard =
        crashbox::init(fast_options().shutdown_timeout(Duration::from_millis(500))).expect("init");
    crashbox::capture_message("first", Level::Error).expect("captured");
    wait_for_stats(Duration::from_secs(5), |s| s.rate_limited >= 1);
    crashbox::capture_message("second", Level::Error).expect("captured");
    std::thread::sleep(Duration::from_secs(3));
    print_stats("stats_before_drop");
    let start = Instant::now();
    drop(guard);
    report_value("drop_ms", start.elapsed().as_millis());
    print_stats("stats_after_drop");
}

// ---------------------------------------------------------------------------
// A collector that never answers does not hold up the application.

const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

fn assert_stuck_server_does_not_block(behavior: Behavior) {
    let server = Server::with_behavior(behavior.clone());
    let out = run_against(
        &child!(child_stuck_server),
        &http_collector(server.port()),
        &[],
    );
    assert!(
        server.request_count() >= 1,
        "the report never reached the server\n{}",
        out.dump()
    );
    let drop_ms = out.number("drop_ms");
    assert!(
        drop_ms < (SHUTDOWN_TIMEOUT + Duration::from_secs(1)).as_millis() as u64,
        "{behavior:?}: Guard::drop took {drop_ms} ms with shutdown_timeout {SHUTDOWN_TIMEOUT:?}"
    );
    let captures = out.number("captures");
    assert!(captures >= 10, "{}", out.dump());
    let max_us = out.number("max_capture_us");
    assert!(
        max_us < 50_000,
        "{behavior:?}: a capture took {max_us} µs while the collector was stuck"
    );
    assert!(
        out.elapsed < Duration::from_secs(8),
        "the child took {:?}: something waited for the stuck request\n{}",
        out.elapsed,
        out.dump()
    );
    // Nothing was delivered: what shutdown left behind is counted.
    let before = out.number("accepted_before_drop");
    let accepted = out.number("accepted");
    let stats = stats(&out, "stats_after_drop");
    assert_eq!(stats["sent"], 0, "{stats:?}");
    assert!(
        (before..=accepted).contains(&stats["dropped_shutdown"]),
        "{behavior:?}: {accepted} reports were accepted ({before} before Guard::drop) \
         and none delivered, but dropped_shutdown is {}",
        stats["dropped_shutdown"]
    );
}

#[test]
fn a_hanging_collector_neither_blocks_captures_nor_shutdown_beyond_its_timeout() {
    assert_stuck_server_does_not_block(Behavior::Hang);
}

#[test]
fn a_slowly_answering_collector_does_not_block_shutdown_beyond_its_timeout() {
    assert_stuck_server_does_not_block(Behavior::SlowBody);
}

/// Run by the stuck-server tests.
#[test]
#[ignore = "child process of the callers of `assert_stuck_server_does_not_block`"]
fn child_stuck_server() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    assert_child();
    // Symbolicate once up front (synchronously, on this thread), so the
    // worker's first report goes out at once.
    let _ = crashbox::testing::capture(|| crashbox::capture_error(&load_error()));
    let guard = crashbox::init(fast_options().shutdown_timeout(SHUTDOWN_TIMEOUT)).expect("init");
    crashbox::capture_error(&load_error()).expect("captured");
    // Let the worker get into the request that will not finish.
    std::thread::sleep(Duration::from_millis(300));
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU64::new(1));
    let capturer = {
        let (stop, accepted) = (stop.clone(), accepted.clone());
        std::thread::spawn(move || {
            let (mut count, mut max) = (0u64, Duration::ZERO);
            while !stop.load(Ordering::SeqCst) || count < 10 {
                let start = Instant::now();
                let id = crashbox::capture_error(&load_error());
                max = max.max(start.elapsed());
                if id.is_some() {
                    accepted.fetch_add(1, Ordering::SeqCst);
                }
                count += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            (count, max)
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    report_value("accepted_before_drop", accepted.load(Ordering::SeqCst));
    let start = Instant::now();
    drop(guard);
    report_value("drop_ms", start.elapsed().as_millis());
    stop.store(true, Ordering::SeqCst);
    let (count, max) = capturer.join().expect("capturing thread");
    report_value("captures", count);
    report_value("max_capture_us", max.as_micros());
    report_value("accepted", accepted.load(Ordering::SeqCst));
    print_stats("stats_after_drop");
}

// ---------------------------------------------------------------------------
// A capture costs the caller microseconds, whatever the worker is doing.

#[test]
fn a_capture_does_not_wait_for_the_workers_first_symbolication() {
    let server = Server::start();
    let out = run_against(
        &child!(child_capture_while_symbolicating),
        &http_collector(server.port()),
        &[],
    );
    let max_us = out.number("max_capture_us");
    assert!(
        max_us < 50_000,
        "a capture took {max_us} µs while the worker symbolicated the first report\n{}",
        out.dump()
    );
}

/// Run by `a_capture_does_not_wait_for_the_workers_first_symbolication`.
#[test]
#[ignore = "child process of `a_capture_does_not_wait_for_the_workers_first_symbolication`"]
fn child_capture_while_symbolicating() {
    assert_child();
    let guard = crashbox::init(fast_options()).expect("init");
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let capturer = {
        let barrier = barrier.clone();
        std::thread::spawn(move || {
            barrier.wait();
            let mut max = Duration::ZERO;
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(1500) {
                let t = Instant::now();
                let _ = crashbox::capture_message("meanwhile", Level::Info);
                max = max.max(t.elapsed());
                std::thread::sleep(Duration::from_millis(10));
            }
            max
        })
    };
    barrier.wait();
    // The worker's first report: it now loads the debug info.
    crashbox::capture_error(&load_error()).expect("captured");
    let max = capturer.join().expect("capturing thread");
    report_value("max_capture_us", max.as_micros());
    assert!(crashbox::flush(Duration::from_secs(10)));
    drop(guard);
}
