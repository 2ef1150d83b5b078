//! The Sentry events crashbox sends pass Sentry Relay's own store
//! normaliser (PyPI `sentry-relay`, `sentry_relay.processing.StoreNormalizer`)
//! with no error and no remark other than trimming: what Sentry's ingestion
//! would store of them, without a Sentry server.
//!
//! The events are real: the fixture application (tests/fixture_app, built
//! with `debug = "line-tables-only"` and the `http` feature) sends them in
//! every capture mode to a loopback HTTP server, and the event items of the
//! envelopes it received go through tests/e2e/relay_normalize.py. So does a
//! crash: a segfault, sent by the next run on the same spool, whose signal
//! mechanism Relay must keep.
//!
//! The normaliser runs with the python in `CRASHBOX_E2E_RELAY_PYTHON`, else
//! the virtualenv `tests/e2e/relay.sh install` makes under target/relay,
//! else `python3`. Without python or `sentry_relay` the tests say so and
//! skip, unless `CRASHBOX_E2E_REQUIRED` is set (`.ci/run` installs it and
//! sets both).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::util;
use crate::util::errors;
use crate::util::http_server::{Request, Server};
use crate::util::sentry_fixture;
use crate::util::{assert_child, child};
use serde_json::Value;

const PYTHON_ENV: &str = "CRASHBOX_E2E_RELAY_PYTHON";

/// Every capture mode of the fixture.
const MODES: &[&str] = &[
    "error",
    "report",
    "message",
    "thread",
    "panic-index",
    "panic-unwrap",
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn checker() -> PathBuf {
    repo().join("tests/e2e/relay_normalize.py")
}

fn python() -> OsString {
    if let Some(python) = std::env::var_os(PYTHON_ENV).filter(|p| !p.is_empty()) {
        return python;
    }
    let venv = repo().join("target/relay/venv/bin/python");
    if venv.exists() {
        return venv.into_os_string();
    }
    "python3".into()
}

/// The python that has `sentry_relay`, or why there is none: the test
/// skips on `None` unless `CRASHBOX_E2E_REQUIRED` is set.
fn relay_python() -> Option<OsString> {
    let python = python();
    let why = match Command::new(&python)
        .args(["-c", "from sentry_relay.processing import StoreNormalizer"])
        .output()
    {
        Ok(out) if out.status.success() => return Some(python),
        Ok(out) => format!(
            "{} cannot import sentry_relay: {}",
            python.to_string_lossy(),
            // The traceback's last line names what is missing.
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
        ),
        Err(e) => format!("{} does not run: {e}", python.to_string_lossy()),
    };
    assert!(
        std::env::var_os("CRASHBOX_E2E_REQUIRED").is_none(),
        "CRASHBOX_E2E_REQUIRED is set but Sentry Relay's normaliser is missing: {why}"
    );
    eprintln!(
        "skipped: {why} (install it with tests/e2e/relay.sh install, or set {PYTHON_ENV}; .ci/run does)"
    );
    None
}

/// The payloads of an envelope's `event` items: a header line, then per
/// item a header line and a payload of `length` bytes (or up to the next
/// newline without one).
fn event_items(request: &Request) -> Vec<Value> {
    let body = request.body.as_slice();
    let line = |at: usize| -> (&[u8], usize) {
        let end = body[at..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(body.len(), |n| at + n);
        (&body[at..end], (end + 1).min(body.len()))
    };
    let (_, mut at) = line(0);
    let mut events = Vec::new();
    while at < body.len() {
        let (header, next) = line(at);
        if header.is_empty() {
            at = next;
            continue;
        }
        let header: Value = serde_json::from_slice(header).unwrap_or_else(|e| {
            panic!(
                "an envelope item header is not JSON ({e}): {}",
                String::from_utf8_lossy(body)
            )
        });
        let (payload, after) = match header["length"].as_u64() {
            Some(length) => {
                let end = next + length as usize;
                assert!(end <= body.len(), "an item is longer than its envelope");
                (&body[next..end], (end + 1).min(body.len()))
            }
            None => line(next),
        };
        if header["type"] == "event" {
            events.push(serde_json::from_slice(payload).expect("an event item is JSON"));
        }
        at = after;
    }
    events
}

fn run_checker(python: &OsString, files: &[&Path]) -> Output {
    Command::new(python)
        .arg(checker())
        .args(files)
        .output()
        .expect("the checker runs")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("relay-normalizer");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn fixture_events_pass_sentry_relays_normaliser() {
    let Some(python) = relay_python() else {
        return;
    };
    let binary = sentry_fixture::build("line-tables");
    let server = Server::start();
    let collector = util::sentry_collector("0123abcdpublickey", server.port(), 7);
    let mut events = Vec::new();
    for mode in MODES {
        let before = server.request_count();
        sentry_fixture::run(&binary, mode, &collector).assert_success();
        let requests = server.wait_for_requests(before + 1, Duration::from_secs(30));
        let items: Vec<Value> = requests[before..].iter().flat_map(event_items).collect();
        assert_eq!(
            items.len(),
            1,
            "{mode}: expected one event, the server got {} requests",
            requests.len() - before
        );
        events.extend(items);
    }
    let stdout = assert_normalised(&python, "fixture-events.jsonl", &events);
    assert!(
        stdout.contains(&format!("{} events, 0 problems", MODES.len())),
        "{stdout}"
    );
}

/// Run by `events_with_scope_chains_and_counts_pass_sentry_relays_normaliser`:
/// what the fixture does not send (a cause chain, tags, extra, a user with
/// every field and `{{auto}}` IP, breadcrumbs, a custom fingerprint, a
/// repeated error's count, a panic on a named thread).
#[test]
#[ignore = "child process of `events_with_scope_chains_and_counts_pass_sentry_relays_normaliser`"]
fn child_rich_events() {
    assert_child();
    let guard = crashbox::init(
        // Default aggregation: repeats beyond the burst fold into one
        // event with their count.
        crashbox::Options::new()
            .collector(util::child_collector())
            .spool(false)
            .release("relay-check@0.3.0")
            .environment("staging")
            .send_default_pii(true),
    )
    .expect("init");
    crashbox::configure_scope(|scope| {
        scope.set_tag("tenant", "acme");
        scope.set_extra("attempt", 3);
        scope.set_extra("batch", serde_json::json!({"size": 12, "ids": [1, 2]}));
        scope.set_user(Some(
            crashbox::User::with_id("user-7")
                .username("ada")
                .email("ada@example.com"),
        ));
    });
    crashbox::add_breadcrumb(
        crashbox::Breadcrumb::new("opened the ledger")
            .category("storage")
            .level(crashbox::Level::Info),
    );
    for _ in 0..12 {
        crashbox::capture_error(&errors::load_error());
    }
    crashbox::with_scope(
        |scope| scope.set_fingerprint(["ledger", "read-only"]),
        || crashbox::capture_message("ledger running read-only", crashbox::Level::Info),
    );
    errors::panic_on_thread("reconciler", || panic!("batch 7 is empty"));
    assert!(crashbox::flush(Duration::from_secs(20)), "flush timed out");
    drop(guard);
}

#[test]
fn events_with_scope_chains_and_counts_pass_sentry_relays_normaliser() {
    let Some(python) = relay_python() else {
        return;
    };
    let server = Server::start();
    let collector = util::sentry_collector("0123abcdpublickey", server.port(), 7);
    util::run_against(&child!(child_rich_events), &collector, &[]);
    let events: Vec<Value> = server.requests().iter().flat_map(event_items).collect();
    let counted = events.iter().any(|e| {
        e["tags"]["crashbox.count"]
            .as_str()
            .is_some_and(|c| c != "1")
    });
    assert!(counted, "no event carries a repeat count: {events:#?}");
    assert!(events
        .iter()
        .any(|e| e["exception"]["values"].as_array().map(Vec::len) == Some(2)));
    assert!(events.iter().any(|e| e["fingerprint"].is_array()));
    assert!(events.iter().any(|e| e["level"] == "fatal"));
    assert_normalised(&python, "rich-events.jsonl", &events);
}

/// Where the crash runs' spool is: the crashing run and the one after it
/// share it.
const SPOOL_ENV: &str = "CRASHBOX_TEST_SPOOL";

fn crash_options() -> crashbox::Options {
    crashbox::Options::new()
        .collector(util::child_collector())
        .spool_dir(util::env_var(SPOOL_ENV))
        .release("relay-check@0.3.0")
        .environment("staging")
}

/// Run by `a_crash_event_passes_sentry_relays_normaliser`: dies of SIGSEGV.
#[test]
#[ignore = "child process of `a_crash_event_passes_sentry_relays_normaliser`"]
fn child_crashes() {
    assert_child();
    crate::util::errors::no_core_dump();
    let _guard = crashbox::init(crash_options()).expect("init");
    util::report_value("crashing", "null");
    crate::util::errors::write_through_null();
    panic!("the write through a null pointer did not crash");
}

/// Run by `a_crash_event_passes_sentry_relays_normaliser`: the next start,
/// which sends the crash.
#[test]
#[ignore = "child process of `a_crash_event_passes_sentry_relays_normaliser`"]
fn child_sends_the_crash() {
    assert_child();
    let guard = crashbox::init(crash_options()).expect("init");
    assert!(crashbox::flush(Duration::from_secs(20)), "flush timed out");
    drop(guard);
}

#[test]
fn a_crash_event_passes_sentry_relays_normaliser() {
    use std::os::unix::process::ExitStatusExt;
    let Some(python) = relay_python() else {
        return;
    };
    let server = Server::start();
    let collector = util::sentry_collector("0123abcdpublickey", server.port(), 7);
    let root = util::TempDir::new("relay-crash");
    let envs = [
        (util::COLLECTOR_ENV, OsString::from(&collector)),
        (SPOOL_ENV, root.path().join("spool").into_os_string()),
    ];
    let crashed = util::run_child(&child!(child_crashes), &envs);
    assert!(
        crashed.stdout.contains("CHILD:crashing=null")
            && crashed.status.signal() == Some(libc::SIGSEGV),
        "the run died of SIGSEGV\n{}",
        crashed.dump()
    );
    util::run_child(&child!(child_sends_the_crash), &envs).assert_success();
    let events: Vec<Value> = server.requests().iter().flat_map(event_items).collect();
    let [event] = events.as_slice() else {
        panic!("expected one crash event: {events:#?}");
    };
    assert_eq!(event["level"], "fatal", "{event}");
    assert_eq!(
        event["exception"]["values"][0]["mechanism"]["type"], "signalhandler",
        "{event}"
    );
    let stdout = assert_normalised(&python, "crash-event.jsonl", &events);
    assert!(stdout.contains("1 events, 0 problems"), "{stdout}");

    // What Relay keeps of it: the signal, as sent.
    let file = scratch("crash-event.jsonl");
    let out = Command::new(&python)
        .arg(checker())
        .arg("--show")
        .arg(&file)
        .output()
        .expect("the checker runs");
    let shown = String::from_utf8_lossy(&out.stdout);
    let start = shown.find("\n{\n").map_or(0, |at| at + 1);
    let end = shown.rfind("\n}\n").map_or(shown.len(), |at| at + 2);
    let normalised: Value = serde_json::from_str(&shown[start..end])
        .unwrap_or_else(|e| panic!("the normalised event is not JSON ({e}):\n{shown}"));
    let value = &normalised["exception"]["values"][0];
    assert_eq!(value["type"], "SIGSEGV", "{value}");
    let mechanism = &value["mechanism"];
    assert_eq!(mechanism["type"], "signalhandler", "{mechanism}");
    assert_eq!(mechanism["handled"], false, "{mechanism}");
    let signal = &mechanism["meta"]["signal"];
    assert_eq!(signal["number"], libc::SIGSEGV, "{mechanism}");
    assert_eq!(signal["name"], "SIGSEGV", "{mechanism}");
    assert_eq!(signal["code"], 1, "{mechanism}");
    println!("Relay's mechanism: {mechanism}");
}

/// The checker itself: it must flag what Relay drops or rejects, and let
/// trimming to Sentry's size limits pass.
#[test]
fn the_checker_flags_invalid_data_and_allows_trimming() {
    let Some(python) = relay_python() else {
        return;
    };
    let event = |id: char, extra: Value| {
        let mut event = serde_json::json!({
            "event_id": id.to_string().repeat(32),
            "timestamp": 1_700_000_000.5,
            "platform": "native",
            "level": "error",
            "exception": {"values": [{"type": "E", "value": "v", "stacktrace": {"frames": [
                {"function": "main", "in_app": true, "instruction_addr": "0x5555deadbeef"}
            ]}}]},
        });
        if let (Value::Object(e), Value::Object(extra)) = (&mut event, extra) {
            e.extend(extra);
        }
        event
    };
    let long = scratch("long-message.json");
    let long_value = "x".repeat(20_000);
    std::fs::write(
        &long,
        event(
            'a',
            serde_json::json!({"logentry": {"formatted": long_value}}),
        )
        .to_string(),
    )
    .unwrap();
    let out = run_checker(&python, &[&long]);
    assert!(
        out.status.success(),
        "trimming alone is not a problem:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("trimmed (allowed): logentry.formatted"));

    let bad = scratch("bad-event.json");
    let mut invalid = event('b', serde_json::json!({"culprit_frame": 3}));
    invalid["exception"]["values"][0]["stacktrace"]["frames"][0]["lineno"] = "twelve".into();
    std::fs::write(&bad, invalid.to_string()).unwrap();
    let out = run_checker(&python, &[&bad]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("exception.values.0.stacktrace.frames.0.lineno"),
        "{stdout}"
    );
    assert!(stdout.contains("culprit_frame"), "{stdout}");
}

/// Writes `events` to the scratch file `name`, one a line, runs the Relay
/// checker on it and fails unless it accepts them all; returns its report.
#[track_caller]
fn assert_normalised(python: &OsString, name: &str, events: &[Value]) -> String {
    let file = scratch(name);
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let out = run_checker(python, &[&file]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}");
    assert!(
        out.status.success(),
        "Sentry Relay's normaliser objects to crashbox's events ({}):\n{stdout}{}\nevents in {}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        file.display()
    );
    stdout
}
