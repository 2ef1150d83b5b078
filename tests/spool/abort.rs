//! `panic = "abort"` (the tests/abort_app program): the panic hook delivers
//! the report before the process aborts, waits at most the panic flush
//! timeout for a hanging collector, and leaves what it could not deliver to
//! the next run.
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{assert_files_private, delivered, has_in_app_frame, pending_files};
use crate::util::http_server::{refused_port, Behavior, Server};
use crate::util::{http_collector, run_command, wait_for_exit, ChildOutput, TempDir};
use serde_json::Value;

/// SIGABRT on Linux.
const SIGABRT: i32 = 6;

/// Builds `tests/abort_app` once per test process; returns its executable.
fn abort_app() -> &'static Path {
    static APP: OnceLock<PathBuf> = OnceLock::new();
    APP.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"))
            .join("abort_app");
        run_command(
            Command::new(env!("CARGO"))
                .arg("build")
                .arg("--manifest-path")
                .arg(root.join("tests/abort_app/Cargo.toml"))
                .arg("--target-dir")
                .arg(&target),
            "building tests/abort_app",
        );
        target.join("debug").join("abort_app")
    })
}

/// Runs the abort app in `mode`; kills it after a minute.
/// `flush_ms` is the panic hook's wait (`None`: crashbox's default).
fn run_abort_app(mode: &str, collector: &str, spool: &Path, flush_ms: Option<u64>) -> ChildOutput {
    let start = Instant::now();
    let mut command = Command::new(abort_app());
    if let Some(ms) = flush_ms {
        command.env("ABORT_APP_FLUSH_MS", ms.to_string());
    }
    let child = command
        .arg(mode)
        .env("ABORT_APP_COLLECTOR", collector)
        .env("ABORT_APP_SPOOL", spool)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start abort_app");
    wait_for_exit(
        child,
        start,
        Duration::from_secs(60),
        &format!("abort_app {mode}"),
    )
}

#[track_caller]
fn assert_abort_app_panic(report: &Value) {
    assert_eq!(report["level"], "fatal", "{report:#}");
    assert_eq!(report["kind"], "panic", "{report:#}");
    assert_eq!(report["message"], "abort_app went down", "{report:#}");
    assert!(
        has_in_app_frame(report, "abort_app_panics_here"),
        "no resolved in-app frame for the panicking function: {:#}",
        report["frames"]
    );
}

#[test]
fn under_panic_abort_the_hook_delivers_the_report_before_the_process_aborts() {
    let app = abort_app();
    assert!(app.exists());
    let server = Server::start();
    let spool = TempDir::new("spool-abort-up");
    // A long flush timeout: the hook must return as soon as the report is delivered.
    let run = run_abort_app(
        "panic",
        &http_collector(server.port()),
        spool.path(),
        Some(20_000),
    );
    assert_eq!(run.status.signal(), Some(SIGABRT), "{}", run.dump());
    assert!(run.stdout.contains("ABORT_APP:started"), "{}", run.dump());
    let reports = delivered(&server);
    assert_eq!(reports.len(), 1, "{}\n{reports:#?}", run.dump());
    assert_abort_app_panic(&reports[0]);
    assert!(
        run.elapsed < Duration::from_secs(10),
        "the hook waited {:?}, not for the delivery",
        run.elapsed
    );
    assert!(
        pending_files(spool.path()).is_empty(),
        "a delivered report left its file"
    );
}

#[test]
fn under_panic_abort_an_undelivered_panic_is_delivered_by_the_next_run() {
    abort_app();
    let spool = TempDir::new("spool-abort-down");
    let run = run_abort_app(
        "panic",
        &http_collector(refused_port()),
        spool.path(),
        Some(500),
    );
    assert_eq!(run.status.signal(), Some(SIGABRT), "{}", run.dump());
    let files = pending_files(spool.path());
    assert_eq!(files.len(), 1, "{}\n{files:?}", run.dump());
    assert_files_private(spool.path());

    let server = Server::start();
    let replay = run_abort_app(
        "replay",
        &http_collector(server.port()),
        spool.path(),
        Some(500),
    );
    assert!(replay.status.success(), "{}", replay.dump());
    assert!(
        replay.stdout.contains("ABORT_APP:flushed=true"),
        "{}",
        replay.dump()
    );
    assert!(
        replay
            .stdout
            // The abort that ended the panic is the panic's, not a crash of its own.
            .contains("ABORT_APP:last_run=Some(LastRun { panicked: true, consecutive_panics: 1, crashed: None, stack_overflow: false })"),
        "{}",
        replay.dump()
    );
    let reports = delivered(&server);
    assert_eq!(reports.len(), 1, "{}\n{reports:#?}", replay.dump());
    assert_abort_app_panic(&reports[0]);
    assert!(pending_files(spool.path()).is_empty());
}

#[test]
fn under_panic_abort_the_hook_waits_at_most_panic_flush_timeout_for_a_hanging_collector() {
    abort_app();
    let hanging = Server::with_behavior(Behavior::Hang);
    let spool = TempDir::new("spool-abort-hang");
    let run = run_abort_app("panic", &http_collector(hanging.port()), spool.path(), None);
    assert_eq!(run.status.signal(), Some(SIGABRT), "{}", run.dump());
    assert_eq!(hanging.request_count(), 1, "{}", run.dump());
    // The default wait is 2 s; far less than the 15 s the hanging request could take.
    assert!(
        run.elapsed >= Duration::from_secs(2) && run.elapsed < Duration::from_secs(8),
        "aborted after {:?}",
        run.elapsed
    );
    assert_eq!(pending_files(spool.path()).len(), 1, "{}", run.dump());
    drop(hanging);

    let server = Server::start();
    let replay = run_abort_app("replay", &http_collector(server.port()), spool.path(), None);
    assert!(replay.status.success(), "{}", replay.dump());
    let reports = delivered(&server);
    assert_eq!(reports.len(), 1, "{}\n{reports:#?}", replay.dump());
    assert_abort_app_panic(&reports[0]);
    assert!(pending_files(spool.path()).is_empty());
}
