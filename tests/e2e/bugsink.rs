//! End to end against a real Bugsink server (a self-hosted, Sentry-compatible
//! tracker) with strict event-schema validation on.
//!
//! `.ci/run` starts the server with `tests/e2e/bugsink.sh start` and passes
//! its DSN in `CRASHBOX_E2E_BUGSINK_DSN`; without it this test says so and
//! skips. To run it by hand:
//!
//! ```sh
//! CRASHBOX_E2E_BUGSINK_DSN=$(tests/e2e/bugsink.sh start) cargo test --test tests e2e::bugsink
//! tests/e2e/bugsink.sh stop
//! ```
//!
//! The integrations report there too: an anyhow error with a context layer
//! and a tracing error event, each with its chain, title and culprit.
//!
//! A segfault lands there too: one run dies of a write through a null
//! pointer, the next run on the same spool delivers it, and Bugsink stores a
//! fatal `SIGSEGV` event, unrejected, with the crashing function as culprit.
//!
//! Besides this test binary's own application, the fixture application of
//! tests/fixture_app, built with `debug = "line-tables-only"`, reports to
//! the server: Bugsink must name its function as each issue's culprit.
use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util;
use crate::util::errors;
use crate::util::sentry_fixture;
use crate::util::{assert_child, child};
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
#[ignore = "child process of `reports_land_in_bugsink_as_sent`"]
fn child_app_reports_to_bugsink() {
    assert_child();
    let guard = crashbox::init(
        crashbox::Options::from_env()
            .release("ledger-app@3.1.4")
            .environment("e2e")
            .shutdown_timeout(std::time::Duration::from_secs(10))
            .aggregation_burst(1),
    )
    .expect("init");
    crashbox::configure_scope(|scope| {
        scope.set_tag("tenant", "acme");
        scope.set_user(Some(crashbox::User::with_id("user-7")));
    });
    crashbox::add_breadcrumb(crashbox::Breadcrumb::new("opening ledger").category("storage"));
    // The same handled error, five times, with a burst of one: sent once at
    // once, then once with the count of its four repeats; one issue in Bugsink.
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
    util::report_value("sent", stats.sent);
    util::report_value("dropped", stats.dropped());
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/bugsink.sh")
}

fn stored_events() -> Vec<Value> {
    let out = util::run_command(
        Command::new("bash").arg(script()).arg("events"),
        "bugsink.sh events",
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("event JSON"))
        .collect()
}

fn stored_issues() -> Vec<Value> {
    let out = util::run_command(
        Command::new("bash").arg(script()).arg("issues"),
        "bugsink.sh issues",
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("issue JSON"))
        .collect()
}

/// The DSN of the fixture application's own project on the server.
fn fixture_project_dsn() -> String {
    let out = util::run_command(
        Command::new("bash")
            .arg(script())
            .args(["project", "crashbox-fixture"]),
        "bugsink.sh project",
    );
    let dsn = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        dsn.starts_with("http://"),
        "bugsink.sh project printed {dsn:?}"
    );
    dsn
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

/// The server's DSN, or `None` after saying why the test skips; fails
/// instead when `CRASHBOX_E2E_REQUIRED` is set.
fn server_dsn() -> Option<String> {
    let Ok(dsn) = std::env::var(DSN_ENV) else {
        assert!(
            std::env::var_os("CRASHBOX_E2E_REQUIRED").is_none(),
            "CRASHBOX_E2E_REQUIRED is set but {DSN_ENV} is not: the Bugsink server did not start"
        );
        eprintln!("skipped: {DSN_ENV} is not set (start a server with tests/e2e/bugsink.sh start; .ci/run does)");
        return None;
    };
    Some(dsn)
}

/// The ids of the events the server holds (`events` lists them by each
/// issue's own order, not by arrival: what is new is an id not seen before).
fn stored_event_ids() -> HashSet<String> {
    stored_events()
        .iter()
        .filter_map(|e| e["event_id"].as_str().map(str::to_owned))
        .collect()
}

/// The events of `release` the server holds that are not in `before`.
fn new_events(release: &str, before: &HashSet<String>) -> Vec<Value> {
    stored_events()
        .into_iter()
        .filter(|e| e["release"] == release)
        .filter(|e| {
            e["event_id"]
                .as_str()
                .is_some_and(|id| !before.contains(id))
        })
        .collect()
}

#[test]
fn reports_land_in_bugsink_as_sent() {
    let Some(dsn) = server_dsn() else {
        return;
    };
    let before = stored_event_ids();
    let child = util::run_child(
        &child!(child_app_reports_to_bugsink),
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

    // The other tests may report to the same server meanwhile.
    let events = new_events("ledger-app@3.1.4", &before);
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

/// Where `child_app_crashes_under_bugsink`'s spool is: the crashing run and
/// the run after it share it.
const SPOOL_ENV: &str = "CRASHBOX_TEST_SPOOL";

/// The release of the crash scenario's runs (the other tests count their
/// own releases' events).
const CRASH_RELEASE: &str = "ledger-app@3.2.0";

/// The options of both runs of the crash scenario.
fn crash_options() -> crashbox::Options {
    crashbox::Options::from_env()
        .release(CRASH_RELEASE)
        .environment("e2e")
        .spool_dir(util::env_var(SPOOL_ENV))
        .shutdown_timeout(std::time::Duration::from_secs(10))
}

/// The application, crashing: run in a child process by
/// `a_segfault_lands_in_bugsink_as_a_fatal_crash`. It dies of SIGSEGV.
#[test]
#[ignore = "child process of `a_segfault_lands_in_bugsink_as_a_fatal_crash`"]
fn child_app_crashes_under_bugsink() {
    assert_child();
    errors::no_core_dump();
    let _guard = crashbox::init(crash_options()).expect("init");
    util::report_value("crashing", "null");
    errors::write_through_null();
    panic!("the write through a null pointer did not crash");
}

/// The application's next start on the same spool: delivers the crash.
#[test]
#[ignore = "child process of `a_segfault_lands_in_bugsink_as_a_fatal_crash`"]
fn child_app_delivers_the_crash_to_bugsink() {
    assert_child();
    let guard = crashbox::init(crash_options()).expect("init");
    let last = crashbox::last_run().expect("a spool is in use");
    util::report_value(
        "last_run_crashed",
        last.crashed.map_or("none", crashbox::Signal::name),
    );
    assert!(
        crashbox::flush(std::time::Duration::from_secs(30)),
        "flush timed out"
    );
    drop(guard);
    let stats = crashbox::stats();
    util::report_value("sent", stats.sent);
    util::report_value("dropped", stats.dropped());
}

#[test]
fn a_segfault_lands_in_bugsink_as_a_fatal_crash() {
    use std::os::unix::process::ExitStatusExt;
    let Some(dsn) = server_dsn() else {
        return;
    };
    let before = stored_event_ids();
    let root = util::TempDir::new("bugsink-crash");
    let envs = [
        (
            "CRASHBOX_COLLECTOR",
            OsString::from(format!("sentry+{dsn}")),
        ),
        (SPOOL_ENV, root.path().join("spool").into_os_string()),
    ];
    let crashed = util::run_child(&child!(child_app_crashes_under_bugsink), &envs);
    assert!(
        crashed.stdout.contains("CHILD:crashing=null"),
        "the run got to its crash\n{}",
        crashed.dump()
    );
    assert_eq!(
        crashed.status.signal(),
        Some(libc::SIGSEGV),
        "the run died of SIGSEGV\n{}",
        crashed.dump()
    );
    let replay = util::run_child(&child!(child_app_delivers_the_crash_to_bugsink), &envs);
    replay.assert_success();
    assert_eq!(
        replay.value("last_run_crashed"),
        "SIGSEGV",
        "{}",
        replay.dump()
    );
    assert_eq!(replay.value("sent"), "1", "{}", replay.dump());
    assert_eq!(replay.value("dropped"), "0", "{}", replay.dump());

    let log = server_log();
    assert!(
        !log.contains("ValidationError in digest") && !log.contains("Internal Server Error"),
        "Bugsink rejected or failed on an event:\n{log}"
    );
    let events = new_events(CRASH_RELEASE, &before);
    let [event] = events.as_slice() else {
        panic!(
            "expected one crash event in Bugsink, found {}: {events:#?}\n{}\n--- server log ---\n{log}",
            events.len(),
            replay.dump()
        );
    };
    assert_eq!(event["level"], "fatal", "{event}");
    assert_eq!(event["platform"], "native");
    assert_eq!(event["environment"], "e2e");
    assert_eq!(event["sdk"]["name"], "crashbox");
    let values = event["exception"]["values"].as_array().expect("exception");
    assert_eq!(values.len(), 1, "{event}");
    let value = &values[0];
    assert_eq!(value["type"], "SIGSEGV", "{value}");
    assert_eq!(value["value"], errors::NULL_WRITE_MESSAGE, "{value}");
    // Code 1 is SEGV_MAPERR: no mapping at the address.
    assert_eq!(
        value["mechanism"],
        serde_json::json!({
            "type": "signalhandler",
            "handled": false,
            "meta": {"signal": {"number": libc::SIGSEGV, "name": "SIGSEGV", "code": 1}}
        })
    );
    assert_eq!(event["threads"]["values"][0]["crashed"], true, "{event}");

    // Oldest call first: the crashing function is the innermost frame, its
    // caller before it, and nothing of the signal handler in the stack.
    let frames = frames(value);
    let innermost = frames.last().expect("frames");
    assert_eq!(
        bare(function(innermost)),
        "write_through_null",
        "innermost frame: {innermost}"
    );
    assert_eq!(innermost["in_app"], true, "{innermost}");
    assert!(
        frames
            .iter()
            .any(|f| function(f).contains("child_app_crashes_under_bugsink")),
        "the caller is in the stack: {frames:#?}"
    );
    for f in &frames {
        let name = function(f);
        assert!(
            !name.starts_with("crashbox::") && !name.contains("_Unwind_"),
            "a frame of crashbox's handler: {f}"
        );
    }
    let crash = culprit_frame(event).expect("an in-app frame");
    assert_eq!(bare(function(crash)), "write_through_null", "{crash}");

    let issue = stored_issues()
        .into_iter()
        .find(|i| i["id"] == event["_issue_id"])
        .unwrap_or_else(|| panic!("no issue {} in Bugsink", event["_issue_id"]));
    println!(
        "crash: culprit {} in {}, title {}: {}",
        issue["last_frame_function"],
        issue["last_frame_filename"],
        issue["calculated_type"],
        issue["calculated_value"]
    );
    assert_eq!(issue["calculated_type"], "SIGSEGV", "{issue}");
    assert_eq!(
        issue["calculated_value"],
        errors::NULL_WRITE_MESSAGE,
        "{issue}"
    );
    let culprit = issue["last_frame_function"].as_str().unwrap_or("");
    assert_eq!(bare(culprit), "write_through_null", "{issue}");
}

/// Fixture modes, the function Bugsink must name as the issue's culprit,
/// and the start of the issue's title.
const CULPRITS: &[(&str, &str, &str)] = &[
    (
        "error",
        "save",
        "std::io::Error: cannot write /etc/app.toml",
    ),
    ("panic-index", "lookup", "panic: index out of bounds"),
];

/// The last path segment of a function name, without generic arguments.
fn bare(name: &str) -> &str {
    let name = name.split('<').next().unwrap_or(name);
    name.rsplit("::").next().unwrap_or(name)
}

/// The frame Bugsink (as Sentry) takes for the crash location: the
/// innermost in-app frame with a function name of the last exception.
fn culprit_frame(event: &Value) -> Option<&Value> {
    let values = event["exception"]["values"].as_array()?;
    frames(values.last()?)
        .into_iter()
        .rev()
        .find(|f| f["in_app"] == true && !function(f).is_empty())
}

/// Checks what Bugsink stored of one run of the fixture; returns problems.
fn check_culprit(
    mode: &str,
    expected: &str,
    title: &str,
    event: &Value,
    issue: &Value,
) -> Vec<String> {
    let mut problems = Vec::new();
    let sources = sentry_fixture::sources();
    let in_sources = |file: &str| Path::new(file).starts_with(&sources);

    let culprit = issue["last_frame_function"].as_str().unwrap_or("");
    if bare(culprit) != expected {
        problems.push(format!(
            "{mode}: Bugsink's culprit is {culprit:?}, not {expected}: {issue}"
        ));
    }
    let file = issue["last_frame_filename"].as_str().unwrap_or("");
    if !in_sources(file) {
        problems.push(format!(
            "{mode}: the culprit's file {file:?} is not the application's ({})",
            sources.display()
        ));
    }
    let shown = format!(
        "{}: {}",
        issue["calculated_type"].as_str().unwrap_or(""),
        issue["calculated_value"].as_str().unwrap_or("")
    );
    if !shown.starts_with(title) {
        problems.push(format!(
            "{mode}: the issue's title is {shown:?}, not {title:?}…"
        ));
    }
    // No transaction is sent: Bugsink shows the crash frame instead.
    if issue["transaction"] != "" {
        problems.push(format!("{mode}: the issue has a transaction: {issue}"));
    }

    // The stored event agrees: its innermost frame is the culprit, and
    // nothing of crashbox or of the stack walker is in the stack.
    match culprit_frame(event) {
        Some(frame) if bare(function(frame)) == expected => {}
        other => problems.push(format!("{mode}: the event's crash frame is {other:?}")),
    }
    let values = event["exception"]["values"].as_array();
    let stack = values
        .and_then(|v| v.last())
        .map(frames)
        .unwrap_or_default();
    match stack.last() {
        Some(innermost) if bare(function(innermost)) == expected && innermost["in_app"] == true => {
        }
        other => problems.push(format!(
            "{mode}: the innermost frame is {other:?}, not the application's {expected}"
        )),
    }
    let own = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for frame in &stack {
        let name = function(frame);
        let file = frame["filename"].as_str().unwrap_or("");
        if name.starts_with("crashbox::")
            || name.starts_with("backtrace::")
            || Path::new(file).starts_with(&own)
            || file.contains("/backtrace-0.")
        {
            problems.push(format!(
                "{mode}: a frame of crashbox or the walker: {frame}"
            ));
        }
        if frame["in_app"] == true && !in_sources(file) {
            problems.push(format!(
                "{mode}: in-app frame outside the application: {frame}"
            ));
        }
    }
    problems
}

#[test]
fn a_line_tables_build_shows_the_application_function_as_the_culprit() {
    if server_dsn().is_none() {
        return;
    }
    // Bugsink groups by type and message alone and takes an issue's crash
    // location from its first event: in the shared project, this test
    // binary's own panic of the same kind would be the culprit.
    let dsn = fixture_project_dsn();
    let project: u64 = dsn
        .rsplit('/')
        .next()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no project id in {dsn}"));
    let binary = sentry_fixture::build("line-tables");
    let collector = format!("sentry+{dsn}");
    let mut problems = Vec::new();
    for &(mode, expected, title) in CULPRITS {
        let before = stored_event_ids();
        let out = sentry_fixture::run(&binary, mode, &collector);
        out.assert_success();
        let events = new_events(sentry_fixture::RELEASE, &before);
        let [event] = events.as_slice() else {
            panic!(
                "{mode}: expected one new event in Bugsink, found {}\n{}\n--- server log ---\n{}",
                events.len(),
                out.dump(),
                server_log()
            );
        };
        let issue = stored_issues()
            .into_iter()
            .find(|i| i["id"] == event["_issue_id"])
            .unwrap_or_else(|| panic!("{mode}: no issue {} in Bugsink", event["_issue_id"]));
        if issue["project_id"] != project {
            problems.push(format!(
                "{mode}: the issue is in project {}, not {project}",
                issue["project_id"]
            ));
        }
        println!(
            "{mode}: culprit {} in {}, title {}: {}",
            issue["last_frame_function"],
            issue["last_frame_filename"],
            issue["calculated_type"],
            issue["calculated_value"]
        );
        problems.extend(check_culprit(mode, expected, title, event, &issue));
    }
    let log = server_log();
    assert!(
        !log.contains("ValidationError in digest") && !log.contains("Internal Server Error"),
        "Bugsink rejected or failed on an event:\n{log}"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Where the anyhow error of `child_integrations_report_to_bugsink` is made.
#[cfg(all(feature = "anyhow", feature = "tracing"))]
#[inline(never)]
fn open_the_vault() -> anyhow::Result<()> {
    use anyhow::Context;
    let missing: std::io::Result<()> = Err(std::io::Error::other("vault.key is missing"));
    std::hint::black_box(missing.context("unlocking the vault"))
}

/// Where the tracing error event of `child_integrations_report_to_bugsink` is raised.
#[cfg(all(feature = "anyhow", feature = "tracing"))]
#[inline(never)]
fn save_the_draft() {
    let err = std::io::Error::other("disk quota exceeded");
    tracing::error!(
        error = &err as &dyn std::error::Error,
        draft = 12,
        "saving the draft failed"
    );
}

/// The integrations' application: run in a child process (with
/// `RUST_LIB_BACKTRACE=1`) by `integration_reports_land_in_bugsink_with_their_chains_and_culprits`.
#[cfg(all(feature = "anyhow", feature = "tracing"))]
#[test]
#[ignore = "child process of `integration_reports_land_in_bugsink_with_their_chains_and_culprits`"]
fn child_integrations_report_to_bugsink() {
    use tracing_subscriber::layer::SubscriberExt;
    assert_child();
    let guard = crashbox::init(
        crashbox::Options::from_env()
            .release("vault-app@1.0.0")
            .environment("e2e")
            .shutdown_timeout(std::time::Duration::from_secs(10)),
    )
    .expect("init");
    let err = open_the_vault().expect_err("the vault stays locked");
    crashbox::anyhow::capture(&err).expect("reported");
    let subscriber = tracing_subscriber::registry().with(crashbox::tracing::layer());
    tracing::subscriber::with_default(subscriber, save_the_draft);
    assert!(
        crashbox::flush(std::time::Duration::from_secs(20)),
        "flush timed out"
    );
    drop(guard);
    util::report_value("sent", crashbox::stats().sent);
}

#[cfg(all(feature = "anyhow", feature = "tracing"))]
#[test]
fn integration_reports_land_in_bugsink_with_their_chains_and_culprits() {
    let Some(dsn) = server_dsn() else {
        return;
    };
    let before = stored_event_ids();
    let child = util::run_child(
        &child!(child_integrations_report_to_bugsink),
        &[
            (
                "CRASHBOX_COLLECTOR",
                OsString::from(format!("sentry+{dsn}")),
            ),
            ("RUST_LIB_BACKTRACE", OsString::from("1")),
        ],
    );
    child.assert_success();
    assert_eq!(child.value("sent"), "2", "{}", child.dump());
    let events = new_events("vault-app@1.0.0", &before);
    assert_eq!(events.len(), 2, "stored events: {events:#?}");
    let issues = stored_issues();
    let issue_of = |event: &Value| {
        issues
            .iter()
            .find(|i| i["id"] == event["_issue_id"])
            .cloned()
            .unwrap_or_else(|| panic!("no issue {} in Bugsink", event["_issue_id"]))
    };
    let chain = |event: &Value| -> Vec<(String, String)> {
        event["exception"]["values"]
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .map(|v| {
                        (
                            v["type"].as_str().unwrap_or("").to_owned(),
                            v["value"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(t, v)| (t.to_string(), v.to_string()))
            .collect()
    };
    let wanted = [
        (
            // Oldest cause first; the origin is where the error was made.
            pairs(&[
                ("std::io::Error", "vault.key is missing"),
                ("anyhow::Error", "unlocking the vault"),
            ]),
            "open_the_vault",
            "anyhow::Error: unlocking the vault",
        ),
        (
            pairs(&[("std::io::Error", "disk quota exceeded")]),
            "save_the_draft",
            "std::io::Error: disk quota exceeded",
        ),
    ];
    for (expected_chain, culprit, title) in wanted {
        let event = events
            .iter()
            .find(|e| chain(e) == expected_chain)
            .unwrap_or_else(|| panic!("no event with {expected_chain:?}: {events:#?}"));
        let issue = issue_of(event);
        let shown = format!(
            "{}: {}",
            issue["calculated_type"].as_str().unwrap_or(""),
            issue["calculated_value"].as_str().unwrap_or("")
        );
        assert!(shown.starts_with(title), "title {shown:?}, not {title:?}");
        let stored_culprit = issue["last_frame_function"].as_str().unwrap_or("");
        assert_eq!(bare(stored_culprit), culprit, "{issue}");
        let crash = culprit_frame(event).expect("an in-app frame");
        assert_eq!(bare(function(crash)), culprit, "{crash}");
    }
    let tracing_event = events
        .iter()
        .find(|e| chain(e).len() == 1)
        .expect("the tracing event");
    assert_eq!(tracing_event["extra"]["draft"], 12, "{tracing_event}");
    let log = server_log();
    assert!(
        !log.contains("ValidationError in digest") && !log.contains("Internal Server Error"),
        "Bugsink rejected or failed on an event:\n{log}"
    );
}
