//! `Options::before_send`: the hook that sees each processed report before it
//! is sent. It can change a report or drop it (counted in `stats().filtered`);
//! it runs on the worker thread, never on the capturing one; a hook that
//! panics is caught and counted (`before_send_panics`) and the report goes out
//! unchanged; and a hook that itself calls `capture_*`, `add_breadcrumb` or
//! `configure_scope` neither deadlocks nor loops (its captures are ignored
//! and counted in `dropped_reentrant`).
//!
//! `init` installs per-process state, so the in-process tests take turns
//! (`util::client_turn`) and compare `crashbox::stats()` deltas; reports go
//! to the `memory` collector, one report per capture (no aggregation, no
//! rate limit). The panicking hook runs in a child process too, so that its
//! stderr can be checked for a leaked panic message.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use crate::util::{
    assert_child, child, parse_stats, print_stats, report_value, run_child, MemoryClient,
};
use crashbox::{Breadcrumb, Kind, Level, Options, Report, Stats};

/// Long enough for a loaded 2-core machine (the first report loads debug info).
const FLUSH: Duration = Duration::from_secs(30);

/// `after - before`, counter by counter, for the ones these tests check.
#[derive(Debug)]
struct Delta {
    captured: u64,
    sent: u64,
    filtered: u64,
    before_send_panics: u64,
    dropped_reentrant: u64,
    dropped: u64,
}

fn delta(before: &Stats, after: &Stats) -> Delta {
    Delta {
        captured: after.captured - before.captured,
        sent: after.sent - before.sent,
        filtered: after.filtered - before.filtered,
        before_send_panics: after.before_send_panics - before.before_send_panics,
        dropped_reentrant: after.dropped_reentrant - before.dropped_reentrant,
        dropped: after.dropped() - before.dropped(),
    }
}

#[test]
fn before_send_changes_and_drops_reports() {
    let mut client = MemoryClient::start(Options::new().before_send(|mut report| {
        if report.message.starts_with("drop-me") {
            return None;
        }
        report.tags.insert("edited_by".into(), "before_send".into());
        report.message = format!("{} (edited)", report.message);
        Some(report)
    }));
    let before = crashbox::stats();
    let mut kept = BTreeSet::new();
    let mut dropped = BTreeSet::new();
    for i in 0..6 {
        let keep = crashbox::capture_message(format!("keep-me {i}"), Level::Warning);
        kept.insert(keep.expect("captured").to_hex());
        if i % 2 == 0 {
            let drop = crashbox::capture_message(format!("drop-me {i}"), Level::Error);
            dropped.insert(drop.expect("captured").to_hex());
        }
    }
    let err = std::io::Error::other("keep-me too");
    kept.insert(crashbox::capture_error(&err).expect("captured").to_hex());
    assert!(crashbox::flush(FLUSH), "flush timed out");
    let d = delta(&before, &crashbox::stats());
    let reports = client.shut_down();

    let delivered: BTreeSet<String> = reports.iter().map(|r| r.id.to_hex()).collect();
    assert_eq!(delivered, kept, "{reports:#?}");
    assert!(delivered.is_disjoint(&dropped));
    for report in &reports {
        assert_eq!(report.tag("edited_by"), Some("before_send"), "{report:#?}");
        assert!(
            report.message.starts_with("keep-me") && report.message.ends_with(" (edited)"),
            "{:?}",
            report.message
        );
    }
    let error = reports.iter().find(|r| r.kind == Kind::Error).unwrap();
    assert_eq!(error.message, "keep-me too (edited)");
    assert_eq!(d.filtered, dropped.len() as u64, "{d:?}");
    assert_eq!(d.sent, kept.len() as u64, "{d:?}");
}

/// The name and id of a thread the hook ran on.
type SeenThread = (Option<String>, ThreadId);

#[test]
fn before_send_runs_on_the_worker_thread() {
    let seen: Arc<Mutex<Vec<SeenThread>>> = Arc::default();
    let record = seen.clone();
    let mut client = MemoryClient::start(Options::new().before_send(move |report| {
        let thread = std::thread::current();
        record
            .lock()
            .unwrap()
            .push((thread.name().map(str::to_owned), thread.id()));
        Some(report)
    }));
    let main_id = std::thread::current().id();
    crashbox::capture_message("from the test thread", Level::Info).expect("captured");
    let app = std::thread::Builder::new()
        .name("app-thread".into())
        .spawn(|| {
            crashbox::capture_error(&std::io::Error::other("from app-thread")).expect("captured");
            std::thread::current().id()
        })
        .unwrap();
    let app_id = app.join().unwrap();
    assert!(crashbox::flush(FLUSH), "flush timed out");
    let reports = client.shut_down();
    assert_eq!(reports.len(), 2, "{reports:#?}");

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "the hook runs once per report: {seen:?}");
    for (name, id) in seen.iter() {
        assert_eq!(name.as_deref(), Some("crashbox-worker"));
        assert_ne!(*id, main_id, "before_send ran on the capturing thread");
        assert_ne!(*id, app_id, "before_send ran on the capturing thread");
    }
    // The reports still name the threads that captured them.
    let threads: BTreeSet<Option<&str>> =
        reports.iter().map(|r| r.thread.name.as_deref()).collect();
    assert!(threads.contains(&Some("app-thread")), "{threads:?}");
}

/// How many captures the panicking-hook scenario makes; every third one's hook panics.
const PANIC_CAPTURES: usize = 9;
/// What the panicking hook panics with.
const HOOK_PANIC: &str = "before_send hook exploded";

/// Run by the panicking-hook tests: the hook first changes the report (a
/// tag, the message) and then panics for every third capture.
fn panicking_hook_scenario() -> (Vec<Report>, Vec<String>, Delta, usize) {
    let mut client = MemoryClient::start(Options::new().before_send(|mut report| {
        let explode = report.message.ends_with("explode");
        report.tags.insert("touched".into(), "yes".into());
        report.message.push_str(" (changed)");
        if explode {
            panic!("{HOOK_PANIC}");
        }
        Some(report)
    }));
    let before = crashbox::stats();
    let mut exploding = Vec::new();
    let mut continued = 0;
    for i in 0..PANIC_CAPTURES {
        let message = if i % 3 == 0 {
            format!("capture {i} explode")
        } else {
            format!("capture {i} fine")
        };
        let id = crashbox::capture_message(&message, Level::Error).expect("captured");
        if i % 3 == 0 {
            exploding.push(id.to_hex());
        }
        // Flush each one, so a hook panic that escaped would hit this thread
        // or kill the worker before the next capture.
        assert!(crashbox::flush(FLUSH), "flush timed out after capture {i}");
        continued += 1;
    }
    let d = delta(&before, &crashbox::stats());
    let reports = client.shut_down();
    (reports, exploding, d, continued)
}

#[test]
fn a_panicking_before_send_is_caught_and_the_report_sent_unchanged() {
    let (reports, exploding, d, continued) = panicking_hook_scenario();
    assert_eq!(
        continued, PANIC_CAPTURES,
        "the capturing code did not continue"
    );
    assert_eq!(reports.len(), PANIC_CAPTURES, "{reports:#?}");
    assert_eq!(d.before_send_panics, exploding.len() as u64, "{d:?}");
    assert_eq!(d.sent, PANIC_CAPTURES as u64, "{d:?}");
    assert_eq!(d.filtered, 0, "{d:?}");
    assert_eq!(d.dropped, 0, "{d:?}");
    for report in &reports {
        let id = report.id.to_hex();
        if exploding.contains(&id) {
            // Unchanged: neither the tag nor the message edit the hook made
            // before panicking.
            assert!(report.message.ends_with(" explode"), "{:?}", report.message);
            assert_eq!(report.tag("touched"), None, "{report:#?}");
        } else {
            assert!(report.message.ends_with(" fine (changed)"));
            assert_eq!(report.tag("touched"), Some("yes"));
        }
    }
    // The hook's own panic is not reported.
    assert!(
        reports
            .iter()
            .all(|r| r.kind != Kind::Panic && !r.to_json().contains(HOOK_PANIC)),
        "{reports:#?}"
    );
}

#[test]
fn a_panicking_before_send_stays_silent_in_a_child_process() {
    let out = run_child(&child!(child_panicking_before_send), &[]);
    out.assert_success();
    assert_eq!(
        out.number("delivered"),
        PANIC_CAPTURES as u64,
        "{}",
        out.dump()
    );
    assert_eq!(out.number("panic_reports"), 0, "{}", out.dump());
    let stats = parse_stats(&out.value("stats"));
    assert_eq!(stats["before_send_panics"], 3, "{stats:?}");
    assert_eq!(stats["sent"], PANIC_CAPTURES as u64, "{stats:?}");
    // Nothing of the hook's panic reaches the application's panic hook
    // (Rust's default one prints it on stderr).
    assert!(!out.stderr.contains(HOOK_PANIC), "{}", out.dump());
}

/// Run by `a_panicking_before_send_stays_silent_in_a_child_process`.
#[test]
#[ignore = "child process of `a_panicking_before_send_stays_silent_in_a_child_process`"]
fn child_panicking_before_send() {
    assert_child();
    let (reports, _, _, _) = panicking_hook_scenario();
    report_value("delivered", reports.len());
    report_value(
        "panic_reports",
        reports.iter().filter(|r| r.kind == Kind::Panic).count(),
    );
    print_stats("stats");
}

/// App captures in the re-entrant hook scenario.
const APP_CAPTURES: usize = 200;
/// `capture_*` calls the re-entrant hook makes per report.
const HOOK_CAPTURES_PER_CALL: usize = 2;

#[test]
fn a_before_send_that_reports_does_not_deadlock_or_loop() {
    let calls = Arc::new(AtomicUsize::new(0));
    // Captures from inside the hook that were taken (returned an id).
    let taken = Arc::new(AtomicUsize::new(0));
    let (counter, hook_taken) = (calls.clone(), taken.clone());
    let mut client = MemoryClient::start(Options::new().before_send(move |report| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let from_hook = crashbox::capture_error(&std::io::Error::other("captured by the hook"));
        let message = crashbox::capture_message("message from the hook", Level::Error);
        let ids = usize::from(from_hook.is_some()) + usize::from(message.is_some());
        hook_taken.fetch_add(ids, Ordering::SeqCst);
        crashbox::add_breadcrumb(Breadcrumb::new(format!("hook breadcrumb {n}")).category("hook"));
        crashbox::configure_scope(|scope| scope.set_tag("hook_ran", "yes"));
        Some(report)
    }));
    let before = crashbox::stats();
    let mut ids = BTreeSet::new();
    for i in 0..APP_CAPTURES {
        let id = if i % 2 == 0 {
            crashbox::capture_message(format!("app message {i}"), Level::Warning)
        } else {
            crashbox::capture_error(&std::io::Error::other(format!("app error {i}")))
        };
        ids.insert(id.expect("captured").to_hex());
    }
    assert!(
        crashbox::flush(Duration::from_secs(30)),
        "flush timed out: a re-entrant before_send deadlocked? {:?}",
        crashbox::stats()
    );
    let first = crashbox::take_memory_reports();
    let hook_calls = calls.load(Ordering::SeqCst);
    let d = delta(&before, &crashbox::stats());

    assert_eq!(
        taken.load(Ordering::SeqCst),
        0,
        "captures made inside before_send were taken instead of ignored \
         (after {hook_calls} hook calls, {} reports delivered): {d:?}",
        first.len()
    );
    let delivered: BTreeSet<String> = first.iter().map(|r| r.id.to_hex()).collect();
    assert_eq!(first.len(), APP_CAPTURES, "delivered: {}", first.len());
    assert_eq!(delivered, ids, "exactly the app's reports are delivered");
    assert!(first.iter().all(|r| !r.message.contains("hook")));
    assert_eq!(hook_calls, APP_CAPTURES, "the hook ran once per report");
    let hook_captures = (HOOK_CAPTURES_PER_CALL * hook_calls) as u64;
    assert_eq!(d.dropped_reentrant, hook_captures, "{d:?}");
    assert_eq!(d.captured, APP_CAPTURES as u64 + hook_captures, "{d:?}");
    assert_eq!(d.sent, APP_CAPTURES as u64, "{d:?}");
    assert_eq!(d.before_send_panics, 0, "{d:?}");
    assert_eq!(
        d.dropped, d.dropped_reentrant,
        "nothing else was dropped: {d:?}"
    );

    // Nothing keeps going on its own: another flush and a pause deliver nothing.
    assert!(crashbox::flush(FLUSH));
    std::thread::sleep(Duration::from_millis(300));
    assert!(crashbox::flush(FLUSH));
    assert_eq!(crashbox::take_memory_reports().len(), 0);
    assert_eq!(calls.load(Ordering::SeqCst), APP_CAPTURES);

    // What the hook did to the global scope and breadcrumbs shows on
    // reports the app captures afterwards.
    let late = crashbox::capture_message("captured after the hook ran", Level::Info);
    assert!(crashbox::flush(FLUSH));
    let reports = client.shut_down();
    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert_eq!(Some(reports[0].id), late);
    assert_eq!(
        reports[0].tag("hook_ran"),
        Some("yes"),
        "{:?}",
        reports[0].tags
    );
    let hook_crumbs = reports[0]
        .breadcrumbs
        .iter()
        .filter(|b| b.category.as_deref() == Some("hook"))
        .count();
    assert!(hook_crumbs > 0, "{:#?}", reports[0].breadcrumbs);
    assert_eq!(calls.load(Ordering::SeqCst), APP_CAPTURES + 1);
}

/// Captures in the accounting scenario, and how many of them the hook drops.
const ACCOUNTED: u64 = 80;
const ACCOUNTED_FILTERED: u64 = 10;

#[test]
fn after_flush_every_capture_is_sent_or_filtered() {
    // In a child process, so the counters hold this scenario's captures only.
    let out = run_child(&child!(child_accounting), &[]);
    out.assert_success();
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    assert_eq!(out.value("in_flight"), "0", "{}", out.dump());
    let stats = parse_stats(&out.value("stats"));
    assert_eq!(stats["captured"], ACCOUNTED, "{stats:?}");
    assert_eq!(stats["filtered"], ACCOUNTED_FILTERED, "{stats:?}");
    assert_eq!(stats["sent"] + stats["filtered"], ACCOUNTED, "{stats:?}");
    assert_eq!(out.number("delivered"), stats["sent"], "{}", out.dump());
    assert_eq!(out.number("delivered_secret"), 0, "{}", out.dump());
}

/// Run by `after_flush_every_capture_is_sent_or_filtered`.
#[test]
#[ignore = "child process of `after_flush_every_capture_is_sent_or_filtered`"]
fn child_accounting() {
    assert_child();
    let mut client = MemoryClient::start(
        Options::new().before_send(|report| (!report.message.contains("secret")).then_some(report)),
    );
    for i in 0..ACCOUNTED / 2 {
        let message = if i % 4 == 0 {
            format!("secret {i}")
        } else {
            format!("public {i}")
        };
        crashbox::capture_message(message, Level::Info).expect("captured");
        crashbox::capture_error(&std::io::Error::other(format!("public error {i}")))
            .expect("captured");
    }
    report_value("flushed", crashbox::flush(FLUSH));
    let stats = crashbox::stats();
    report_value("in_flight", stats.in_flight());
    print_stats("stats");
    let reports = client.shut_down();
    report_value("delivered", reports.len());
    report_value(
        "delivered_secret",
        reports
            .iter()
            .filter(|r| r.message.contains("secret"))
            .count(),
    );
}
