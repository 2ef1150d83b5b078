//! `init` and the `Guard`: one client per process, collector parsing,
//! `Options::from_env`, the default without a collector, bounded shutdown, and the
//! no-client fast path.
//!
//! `init` installs per-process state, so every scenario that calls it runs in
//! a child process (see `util::run_child`).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::errors;
use crate::util::{
    assert_child, child, client_turn, file_collector, read_reports, report_init_outcome,
    report_value, run_child, temp_reports_file,
};
use crashbox::{ConfigError, Level, Options, Report, ResultExt, Transport, TransportError};

/// A credential that must never show up in an error message.
const SECRET: &str = "s3cr3tKEY";

// ---------------------------------------------------------------------------
// One client per process.

#[test]
fn second_init_while_guard_is_live_is_refused_and_init_works_again_after_drop() {
    let out = run_child(&child!(child_init_twice), &[]);
    out.assert_success();
    assert_eq!(out.value("first"), "ok", "{}", out.dump());
    assert_eq!(out.value("second"), "AlreadyInitialized", "{}", out.dump());
    assert_eq!(
        out.value("first_client_still_receives"),
        "true",
        "a refused init must leave the live client alone\n{}",
        out.dump()
    );
    assert_eq!(out.value("after_drop"), "ok", "{}", out.dump());
    assert_eq!(out.value("new_client_receives"), "true", "{}", out.dump());
}

/// Run by `second_init_while_guard_is_live_is_refused_and_init_works_again_after_drop`.
#[test]
#[ignore = "child process of `second_init_while_guard_is_live_is_refused_and_init_works_again_after_drop`"]
fn child_init_twice() {
    assert_child();
    let guard = crashbox::init(Options::new().collector("memory")).expect("first init");
    report_value("first", "ok");
    match crashbox::init(Options::new().collector("memory")) {
        Err(ConfigError::AlreadyInitialized) => report_value("second", "AlreadyInitialized"),
        Err(other) => report_value("second", format!("other error: {other}")),
        Ok(second) => {
            report_value("second", "Ok");
            drop(second);
        }
    }
    let id = crashbox::capture_message("after the refused init", Level::Info);
    assert!(crashbox::flush(Duration::from_secs(10)));
    let received = id.is_some()
        && crashbox::take_memory_reports()
            .iter()
            .any(|r| Some(r.id) == id && r.message == "after the refused init");
    report_value("first_client_still_receives", received);
    drop(guard);

    match crashbox::init(Options::new().collector("memory")) {
        Ok(guard) => {
            report_value("after_drop", "ok");
            let id = crashbox::capture_message("from the second client", Level::Info);
            assert!(crashbox::flush(Duration::from_secs(10)));
            let received = id.is_some()
                && crashbox::take_memory_reports()
                    .iter()
                    .any(|r| Some(r.id) == id);
            report_value("new_client_receives", received);
            drop(guard);
        }
        Err(e) => report_value("after_drop", format!("error: {e}")),
    }
}

// ---------------------------------------------------------------------------
// Malformed collector strings.

/// Inputs, and phrases of which the error must contain one.
///
/// The two credential-bearing URLs are malformed whether or not this build
/// has network collectors (`sentry+https://KEY@host/1` itself is a valid DSN
/// once it does), so the test holds either way and never reaches a network.
fn malformed_collectors() -> Vec<(String, &'static [&'static str])> {
    vec![
        (String::new(), &["the collector string is empty"]),
        ("gopher://x".to_owned(), &["unknown scheme `gopher`"]),
        ("file://relative".to_owned(), &["needs an absolute path"]),
        (
            format!("sentry+https://{SECRET}@host/not-a-project"),
            &[
                "the `sentry+https` collector is not available",
                "the project id `not-a-project` is not a number",
            ],
        ),
        (
            format!("https://user:{SECRET}@host/1"),
            &[
                "the `https` collector is not available",
                "credentials in the URL are not supported",
            ],
        ),
    ]
}

#[test]
fn malformed_collector_strings_are_rejected_naming_the_problem_without_credentials() {
    let out = run_child(&child!(child_malformed_collectors), &[]);
    out.assert_success();
    let cases = malformed_collectors();
    for (i, (_, needles)) in cases.iter().enumerate() {
        let variant = out.value(&format!("variant{i}"));
        assert_eq!(variant, "InvalidCollector", "case {i}\n{}", out.dump());
        let message = out.value(&format!("display{i}"));
        assert!(
            needles.iter().any(|n| message.contains(n)),
            "case {i}: {message:?} should contain one of {needles:?}"
        );
        let debug = out.value(&format!("debug{i}"));
        assert!(!message.contains(SECRET), "case {i} leaks: {message}");
        assert!(!debug.contains(SECRET), "case {i} leaks in Debug: {debug}");
    }
    // The redacted collector is still named, so the user can find the bad setting.
    assert!(out
        .value("display3")
        .contains("`sentry+https://***@host/not-a-project`"));
    // The child never prints the inputs, so the secret can only come from crashbox.
    assert!(!out.stdout.contains(SECRET) && !out.stderr.contains(SECRET));
    assert_eq!(
        out.value("valid_init_after_errors"),
        "ok",
        "a refused init must not leave crashbox half-initialized\n{}",
        out.dump()
    );
}

/// Run by `malformed_collector_strings_are_rejected_naming_the_problem_without_credentials`.
#[test]
#[ignore = "child process of `malformed_collector_strings_are_rejected_naming_the_problem_without_credentials`"]
fn child_malformed_collectors() {
    assert_child();
    for (i, (input, _)) in malformed_collectors().into_iter().enumerate() {
        if let Some(ConfigError::InvalidCollector { collector, reason }) =
            report_init_outcome(i, input)
        {
            assert!(!collector.contains(SECRET), "collector field leaks");
            assert!(!reason.is_empty());
        }
        assert_eq!(
            crashbox::capture_message("no client yet", Level::Error),
            None,
            "a failed init must not install a client"
        );
    }
    match crashbox::init(Options::new().collector("memory")) {
        Ok(guard) => {
            report_value("valid_init_after_errors", "ok");
            drop(guard);
        }
        Err(e) => report_value("valid_init_after_errors", format!("error: {e}")),
    }
}

#[test]
fn a_dsn_with_a_mistyped_separator_does_not_leak_its_key() {
    // Collector::parse is what init calls; it touches no global state.
    for input in [
        format!("sentry+https:/{SECRET}@host/1"),
        format!("sentry+https//{SECRET}@host/1"),
        format!("sentry+https:{SECRET}@host/1"),
    ] {
        let err = crashbox::Collector::parse(&input).expect_err("malformed");
        assert!(matches!(err, ConfigError::InvalidCollector { .. }));
        let message = err.to_string();
        assert!(
            !message.contains(SECRET),
            "the key leaks into the error: {message}"
        );
        assert!(!format!("{err:?}").contains(SECRET));
    }
}

// ---------------------------------------------------------------------------
// Options::from_env

#[test]
fn options_from_env_reads_collector_release_and_environment() {
    let (_dir, path) = temp_reports_file("from-env");
    let out = run_child(
        &child!(child_from_env),
        &[
            ("CRASHBOX_COLLECTOR", file_collector(&path).into()),
            ("CRASHBOX_RELEASE", "envapp@1.2.3".into()),
            ("CRASHBOX_ENVIRONMENT", "staging-from-env".into()),
        ],
    );
    out.assert_success();
    let reports = read_reports(&path);
    assert_eq!(reports.len(), 1, "{}", out.dump());
    let report = &reports[0];
    assert_eq!(report.message, "configured from the environment");
    assert_eq!(report.release.as_deref(), Some("envapp@1.2.3"));
    assert_eq!(report.environment, "staging-from-env");
    assert_eq!(
        out.value("environment"),
        "staging-from-env",
        "environment_name() should reflect CRASHBOX_ENVIRONMENT"
    );
}

/// Run by `options_from_env_reads_collector_release_and_environment`.
#[test]
#[ignore = "child process of `options_from_env_reads_collector_release_and_environment`"]
fn child_from_env() {
    assert_child();
    let options = Options::from_env();
    report_value("environment", options.environment_name());
    let guard = crashbox::init(options).expect("init from env");
    crashbox::capture_message("configured from the environment", Level::Warning).expect("captured");
    drop(guard);
}

// ---------------------------------------------------------------------------
// The default without a collector, and an explicit `stderr`.

const STDERR_MESSAGE: &str = "no collector configured, so this goes to stderr";

#[test]
fn without_a_collector_a_debug_build_prints_one_line_per_report() {
    let out = run_child(&child!(child_default_collector), &[]);
    out.assert_success();
    let id = out.value("id");
    if cfg!(debug_assertions) {
        let lines: Vec<&str> = out.stderr.lines().collect();
        let line = format!("crashbox: WARNING message: {STDERR_MESSAGE} (at tests/client/init.rs:");
        let at = lines
            .iter()
            .position(|l| l.starts_with(&line))
            .unwrap_or_else(|| panic!("no line {line:?}\n{}", out.dump()));
        assert!(
            lines[at].ends_with(&format!(", report {id})")),
            "{}",
            out.dump()
        );
        // How to choose a collector, said once, under the first report.
        let hint = "set CRASHBOX_COLLECTOR or Options::collector";
        assert!(lines[at + 1].contains(hint), "{}", out.dump());
        assert_eq!(out.stderr.matches(hint).count(), 1, "{}", out.dump());
        assert_eq!(
            out.stderr.matches(STDERR_MESSAGE).count(),
            1,
            "{}",
            out.dump()
        );
        assert!(
            !out.stderr.contains("[crashbox]"),
            "no whole report\n{}",
            out.dump()
        );
    } else {
        // A release build prints nothing: the report is kept in a file.
        assert!(!out.stderr.contains(STDERR_MESSAGE), "{}", out.dump());
    }
}

/// Run by `without_a_collector_a_debug_build_prints_one_line_per_report`.
#[test]
#[ignore = "child process of `without_a_collector_a_debug_build_prints_one_line_per_report`"]
fn child_default_collector() {
    assert_child();
    let guard = crashbox::init(Options::new()).expect("init");
    let id = crashbox::capture_message(STDERR_MESSAGE, Level::Warning).expect("captured");
    report_value("id", id);
    drop(guard);
}

#[test]
fn the_stderr_collector_prints_whole_reports() {
    let out = run_child(
        &child!(child_stderr_collector),
        &[("CRASHBOX_COLLECTOR", "stderr".into())],
    );
    out.assert_success();
    let header = format!("[crashbox] warning message: {STDERR_MESSAGE}");
    assert!(
        out.stderr.contains(&header),
        "stderr should contain {header:?}\n{}",
        out.dump()
    );
    assert!(
        out.stderr.contains("tests/client/init.rs"),
        "the summary should name the capture location\n{}",
        out.dump()
    );
}

/// Run by `the_stderr_collector_prints_whole_reports`.
#[test]
#[ignore = "child process of `the_stderr_collector_prints_whole_reports`"]
fn child_stderr_collector() {
    assert_child();
    let guard = crashbox::init(Options::from_env()).expect("init");
    crashbox::capture_message(STDERR_MESSAGE, Level::Warning).expect("captured");
    drop(guard);
}

#[test]
fn an_invalid_crashbox_collector_in_the_environment_falls_back_to_the_default() {
    let out = run_child(
        &child!(child_invalid_env_collector),
        &[(
            "CRASHBOX_COLLECTOR",
            format!("sentry+https://{SECRET}@host/notanumber").into(),
        )],
    );
    out.assert_success();
    let ignoring: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("ignoring"))
        .collect();
    assert_eq!(
        ignoring,
        [
            "crashbox: ignoring CRASHBOX_COLLECTOR=\"sentry+https://***@host/notanumber\": \
          the project id `notanumber` is not a number; using the default"
        ],
        "{}",
        out.dump()
    );
    assert!(!out.stderr.contains(SECRET), "{}", out.dump());
    assert_eq!(out.value("init"), "ok");
}

/// Run by `an_invalid_crashbox_collector_in_the_environment_falls_back_to_the_default`.
#[test]
#[ignore = "child process of `an_invalid_crashbox_collector_in_the_environment_falls_back_to_the_default`"]
fn child_invalid_env_collector() {
    assert_child();
    let guard = crashbox::init(Options::from_env()).expect("init");
    report_value("init", "ok");
    crashbox::capture_message(STDERR_MESSAGE, Level::Warning).expect("captured");
    drop(guard);
}

// ---------------------------------------------------------------------------
// Bounded shutdown with a transport that never finishes.

/// A transport that signals when it is entered, then sleeps for 30 s.
struct Stuck {
    entered: mpsc::Sender<()>,
}

impl Transport for Stuck {
    fn send(&mut self, _reports: &[Report]) -> Result<(), TransportError> {
        let _ = self.entered.send(());
        std::thread::sleep(Duration::from_secs(30));
        Ok(())
    }
}

const SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(300);

#[test]
fn guard_drop_with_a_stuck_transport_returns_within_the_shutdown_timeout() {
    let out = run_child(&child!(child_stuck_transport), &[]);
    out.assert_success();
    let drop_ms = out.number("drop_ms");
    assert!(
        drop_ms < SHUTDOWN_TIMEOUT.as_millis() as u64 + 1_500,
        "Guard::drop took {drop_ms} ms with a {SHUTDOWN_TIMEOUT:?} shutdown timeout"
    );
    assert!(
        out.elapsed < Duration::from_secs(5),
        "the child took {:?}: shutdown waited for the stuck transport\n{}",
        out.elapsed,
        out.dump()
    );
}

#[test]
fn guard_drop_with_a_stuck_transport_counts_undelivered_reports_as_dropped_shutdown() {
    let out = run_child(&child!(child_stuck_transport), &[]);
    out.assert_success();
    let queued = out.number("queued_behind_stuck_send");
    assert!(queued > 0, "{}", out.dump());
    let dropped = out.number("dropped_shutdown");
    assert!(
        dropped > 0,
        "{queued} reports were still queued when shutdown gave up, \
         but stats().dropped_shutdown is {dropped}\n{}",
        out.dump()
    );
}

/// Run by the `guard_drop_with_a_stuck_transport_*` tests.
#[test]
#[ignore = "child process of `guard_drop_with_a_stuck_transport_returns_within_the_shutdown_timeout` and `guard_drop_with_a_stuck_transport_counts_undelivered_reports_as_dropped_shutdown`"]
fn child_stuck_transport() {
    assert_child();
    let (entered_tx, entered_rx) = mpsc::channel();
    let guard = crashbox::init(
        Options::new()
            .transport(Stuck {
                entered: entered_tx,
            })
            // No on-disk spool: undelivered reports are dropped, not kept for a next run.
            .spool(false)
            .shutdown_timeout(SHUTDOWN_TIMEOUT),
    )
    .expect("init");
    crashbox::capture_message("first: the transport gets stuck on it", Level::Error)
        .expect("captured");
    entered_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the worker should call the transport");
    // The worker is now inside the 30 s send: these wait in the queue.
    let mut queued = 0;
    for i in 0..5 {
        if crashbox::capture_message(format!("queued {i}"), Level::Error).is_some() {
            queued += 1;
        }
    }
    report_value("queued_behind_stuck_send", queued);
    let start = Instant::now();
    drop(guard);
    report_value("drop_ms", start.elapsed().as_millis());
    report_value("dropped_shutdown", crashbox::stats().dropped_shutdown);
}

#[test]
fn flush_and_shutdown_accept_an_unbounded_timeout() {
    let out = run_child(&child!(child_unbounded_timeouts), &[]);
    assert_eq!(
        out.value("flush"),
        "true",
        "flush(Duration::MAX) should wait and succeed\n{}",
        out.dump()
    );
    assert_eq!(out.value("drop"), "returned", "{}", out.dump());
    out.assert_success();
}

/// Run by `flush_and_shutdown_accept_an_unbounded_timeout`.
#[test]
#[ignore = "child process of `flush_and_shutdown_accept_an_unbounded_timeout`"]
fn child_unbounded_timeouts() {
    assert_child();
    let guard = crashbox::init(
        Options::new()
            .collector("memory")
            .shutdown_timeout(Duration::MAX),
    )
    .expect("init");
    crashbox::capture_message("wait for me", Level::Info).expect("captured");
    let flushed = std::panic::catch_unwind(|| crashbox::flush(Duration::MAX));
    report_value(
        "flush",
        match flushed {
            Ok(delivered) => delivered.to_string(),
            Err(_) => "panicked".to_owned(),
        },
    );
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(guard)));
    report_value(
        "drop",
        if dropped.is_ok() {
            "returned"
        } else {
            "panicked"
        },
    );
}

// ---------------------------------------------------------------------------
// The no-client fast path (no init in this process: no child needed).

errors::test_error!(Unreported => "nobody is listening");

#[test]
fn captures_without_a_client_return_none() {
    // Alone: no client installed, and no `testing` helper listening.
    let _turn = client_turn();
    let captured_before = crashbox::stats().captured;
    assert_eq!(crashbox::capture_error(&Unreported), None);
    assert_eq!(
        crashbox::capture_message("nobody is listening", Level::Fatal),
        None
    );
    let result: Result<(), Unreported> = Err(Unreported);
    assert!(
        matches!(result.report(), Err(Unreported)),
        "report() must hand the result back unchanged"
    );
    assert!(crashbox::flush(Duration::from_millis(10)));
    assert_eq!(
        crashbox::stats().captured,
        captured_before,
        "nothing should be counted"
    );
}
