//! End to end against a real Bugsink server (a self-hosted, Sentry-compatible
//! tracker) with strict event-schema validation on.
//!
//! `.ci/run` starts the server with `tests/e2e/bugsink.sh start` and passes
//! its DSN in `CRASHBOX_E2E_BUGSINK_DSN`; without it this test says so and
//! skips. To run it by hand:
//!
//! ```sh
//! CRASHBOX_E2E_BUGSINK_DSN=$(tests/e2e/bugsink.sh start) cargo test --test bugsink_e2e
//! tests/e2e/bugsink.sh stop
//! ```
mod common;
#[path = "support/errors.rs"]
mod errors;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const DSN_ENV: &str = "CRASHBOX_E2E_BUGSINK_DSN";

errors::test_error! {
    StoreError => "could not open the ledger store", source: io::Error
}

#[inline(never)]
fn open_ledger() -> Result<(), StoreError> {
    Err(StoreError::new(
        std::io::ErrorKind::PermissionDenied,
        "ledger.db is locked",
    ))
}

#[inline(never)]
fn report_ledger_failure() {
    use crashbox::ResultExt;
    let _ = open_ledger().report();
}

#[inline(never)]
fn reconcile_batch(batch: &[u32]) -> u32 {
    batch[3]
}

/// The application: run in a child process by `reports_land_in_bugsink_as_sent`.
#[test]
fn child_app_reports_to_bugsink() {
    if !common::is_child() {
        return;
    }
    let guard = crashbox::init(
        crashbox::Options::from_env()
            .release("ledger-app@3.1.4")
            .environment("e2e")
            .shutdown_timeout(std::time::Duration::from_secs(10)),
    )
    .expect("init");
    crashbox::configure_scope(|scope| {
        scope.set_tag("tenant", "acme");
        scope.set_user(Some(crashbox::User::with_id("user-7")));
    });
    crashbox::add_breadcrumb(crashbox::Breadcrumb::new("opening ledger").category("storage"));
    // The same handled error, five times: sent once at once, then once with
    // the count of its four repeats; one issue in Bugsink.
    for _ in 0..5 {
        report_ledger_failure();
    }
    crashbox::capture_message("ledger running read-only", crashbox::Level::Warning);
    let worker = std::thread::Builder::new()
        .name("reconciler".into())
        .spawn(|| reconcile_batch(&[1, 2]))
        .unwrap();
    assert!(worker.join().is_err());
    assert!(
        crashbox::flush(std::time::Duration::from_secs(20)),
        "flush timed out"
    );
    drop(guard);
    let stats = crashbox::stats();
    common::report_value("sent", stats.sent);
    common::report_value("dropped", stats.dropped());
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/bugsink.sh")
}

fn stored_events() -> Vec<Value> {
    let out = common::run_command(
        Command::new("bash").arg(script()).arg("events"),
        "bugsink.sh events",
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("event JSON"))
        .collect()
}

fn server_log() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bugsink/state/server.log");
    std::fs::read_to_string(path).unwrap_or_default()
}

fn frames(value: &Value) -> Vec<&Value> {
    value["stacktrace"]["frames"]
        .as_array()
        .map(|f| f.iter().collect())
        .unwrap_or_default()
}

fn function(frame: &Value) -> &str {
    frame["function"].as_str().unwrap_or("")
}

#[test]
fn reports_land_in_bugsink_as_sent() {
    let Ok(dsn) = std::env::var(DSN_ENV) else {
        assert!(
            std::env::var_os("CRASHBOX_E2E_REQUIRED").is_none(),
            "CRASHBOX_E2E_REQUIRED is set but {DSN_ENV} is not: the Bugsink server did not start"
        );
        eprintln!("skipped: {DSN_ENV} is not set (start a server with tests/e2e/bugsink.sh start; .ci/run does)");
        return;
    };
    let before = stored_events().len();
    let child = common::run_child(
        "child_app_reports_to_bugsink",
        &[
            (
                "CRASHBOX_COLLECTOR",
                OsString::from(format!("sentry+{dsn}")),
            ),
            ("RUST_BACKTRACE", OsString::from("0")),
        ],
    );
    child.assert_success();
    assert_eq!(child.value("sent"), "4", "{}", child.dump());
    assert_eq!(child.value("dropped"), "0", "{}", child.dump());

    let log = server_log();
    assert!(
        !log.contains("ValidationError in digest"),
        "Bugsink rejected an event:\n{log}"
    );
    assert!(
        !log.contains("Internal Server Error"),
        "Bugsink failed on an event:\n{log}"
    );

    let events: Vec<Value> = stored_events().into_iter().skip(before).collect();
    assert_eq!(events.len(), 4, "stored events: {events:#?}");
    for event in &events {
        assert_eq!(event["release"], "ledger-app@3.1.4");
        assert_eq!(event["environment"], "e2e");
        assert_eq!(event["tags"]["tenant"], "acme");
        assert_eq!(event["user"]["id"], "user-7");
        assert_eq!(event["platform"], "native");
        assert_eq!(event["sdk"]["name"], "crashbox");
        assert!(event["contexts"]["os"]["name"].is_string());
        assert_eq!(event["event_id"].as_str().map(str::len), Some(32));
    }

    let errors: Vec<&Value> = events
        .iter()
        .filter(|e| e["exception"]["values"][0]["mechanism"]["type"] == "generic")
        .collect();
    assert_eq!(errors.len(), 2);
    for error in &errors {
        assert_eq!(error["level"], "error");
        let values = error["exception"]["values"].as_array().unwrap();
        assert_eq!(values.len(), 2);
        // Oldest cause first.
        assert_eq!(values[0]["type"], "std::io::Error");
        assert_eq!(values[0]["value"], "ledger.db is locked");
        assert!(values[1]["type"].as_str().unwrap().ends_with("StoreError"));
        assert_eq!(values[1]["value"], "could not open the ledger store");
        assert_eq!(values[1]["mechanism"]["handled"], true);
        let frames = frames(&values[1]);
        let innermost = frames.last().expect("frames");
        assert!(
            function(innermost).contains("report_ledger_failure"),
            "{innermost}"
        );
        assert_eq!(innermost["in_app"], true);
        assert!(frames
            .iter()
            .any(|f| function(f).contains("child_app_reports_to_bugsink") && f["in_app"] == true));
        // Oldest call first: the test harness's frames come before the app's.
        let app = frames
            .iter()
            .position(|f| function(f).contains("child_app_reports_to_bugsink"))
            .unwrap();
        assert!(app < frames.len() - 1);
        assert!(
            !frames
                .iter()
                .any(|f| function(f).starts_with("crashbox::capture")),
            "{frames:#?}"
        );
    }
    assert_eq!(
        errors[0]["_issue_id"], errors[1]["_issue_id"],
        "the same error twice is one issue"
    );
    let mut counts: Vec<&str> = errors
        .iter()
        .map(|e| e["tags"]["crashbox.count"].as_str().unwrap_or("missing"))
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        ["1", "4"],
        "the first alone, then its repeats' count"
    );
    let extra_counts: u64 = errors
        .iter()
        .map(|e| e["extra"]["crashbox.count"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(extra_counts, 5);

    let message = events
        .iter()
        .find(|e| e["logentry"].is_object())
        .expect("message event");
    assert_eq!(message["logentry"]["formatted"], "ledger running read-only");
    assert_eq!(message["level"], "warning");
    assert!(message.get("message").is_none());

    let panic = events
        .iter()
        .find(|e| e["level"] == "fatal")
        .expect("panic event");
    let value = &panic["exception"]["values"][0];
    assert_eq!(value["type"], "panic");
    assert!(
        value["value"]
            .as_str()
            .unwrap()
            .contains("index out of bounds"),
        "{value}"
    );
    assert_eq!(
        value["mechanism"],
        serde_json::json!({"type": "panic", "handled": false})
    );
    let frames = frames(value);
    let innermost = frames.last().unwrap();
    assert!(
        function(innermost).contains("reconcile_batch"),
        "innermost frame: {innermost}"
    );
    assert_eq!(innermost["in_app"], true);
    for f in &frames {
        let name = function(f);
        assert!(
            !(name.starts_with("std::panicking::begin_panic")
                || name.starts_with("std::panicking::rust_panic")
                || name.starts_with("core::panicking")
                || name.contains("rust_begin_unwind")
                || name.starts_with("crashbox::")),
            "panic machinery left in the stack: {name}"
        );
    }
    assert_eq!(panic["threads"]["values"][0]["name"], "reconciler");
}
