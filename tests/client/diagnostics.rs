//! What crashbox says on stderr about itself: every decision with
//! `Options::debug(true)` or `CRASHBOX_DEBUG=1`, and, whatever the setting,
//! one line when a shutdown leaves reports neither delivered nor spooled.

use std::ffi::OsString;
use std::time::Duration;

use crate::util::{assert_child, child, report_value, run_child};
use crashbox::Options;

#[test]
fn a_shutdown_that_loses_reports_says_so_once() {
    let out = run_child(&child!(child_loses_a_report_at_shutdown), &[]);
    out.assert_success();
    assert_eq!(out.number("dropped_shutdown"), 1, "{}", out.dump());
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("crashbox: "))
        .collect();
    assert_eq!(lines.len(), 1, "{}", out.dump());
    assert!(
        lines[0].contains("1 report(s) neither delivered nor spooled")
            && lines[0].contains("no spool"),
        "{}",
        out.dump()
    );
    assert!(
        !out.stderr.contains("[crashbox]"),
        "debug is off: {}",
        out.dump()
    );
}

/// Run by `a_shutdown_that_loses_reports_says_so_once`: a collector that
/// refuses connections, no spool, a short shutdown.
#[test]
#[ignore = "child process of `a_shutdown_that_loses_reports_says_so_once`"]
fn child_loses_a_report_at_shutdown() {
    assert_child();
    let guard = crashbox::init(
        Options::new()
            .collector("http://127.0.0.1:9/reports")
            .spool(false)
            .retry_backoff(Duration::from_secs(30), Duration::from_secs(60))
            .shutdown_timeout(Duration::from_millis(200)),
    )
    .expect("init");
    crashbox::capture_error(&std::io::Error::other("lost at exit"));
    drop(guard);
    report_value("dropped_shutdown", crashbox::stats().dropped_shutdown);
}

#[test]
fn debug_says_what_crashbox_decides() {
    let on = run_child(
        &child!(child_drops_with_before_send),
        &[("CRASHBOX_DEBUG", OsString::from("1"))],
    );
    on.assert_success();
    assert!(
        on.stderr.contains("[crashbox] filtered +1"),
        "{}",
        on.dump()
    );
    let off = run_child(&child!(child_drops_with_before_send), &[]);
    off.assert_success();
    assert_eq!(off.number("filtered"), 1, "{}", off.dump());
    assert!(!off.stderr.contains("[crashbox]"), "{}", off.dump());
}

/// Run by `debug_says_what_crashbox_decides`: `before_send` drops a report.
#[test]
#[ignore = "child process of `debug_says_what_crashbox_decides`"]
fn child_drops_with_before_send() {
    assert_child();
    let guard = crashbox::init(
        Options::from_env()
            .collector("memory")
            .spool(false)
            .before_send(|_| None),
    )
    .expect("init");
    crashbox::capture_error(&std::io::Error::other("filtered out"));
    assert!(crashbox::flush(Duration::from_secs(30)));
    report_value("filtered", crashbox::stats().filtered);
    drop(guard);
}
