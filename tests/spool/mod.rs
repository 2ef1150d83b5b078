//! The on-disk spool: a report bound for a network collector is a file until
//! the collector has it, so neither a dead collector, a hanging one, a
//! SIGKILL nor `panic = "abort"` loses it, and the next run delivers it.
//!
//! `init` installs per-process state, so every run of the program is a child
//! process: a `child_*` test of this binary (see `util::run_child`), or the
//! `tests/abort_app` program built with `panic = "abort"`. The collector is a
//! loopback HTTP server in the parent; each test gives its children their
//! own spool directory.
//!
//! - `abort`: `panic = "abort"` (tests/abort_app): delivered before the abort,
//!   or by the next run.
//! - `collectors`: which collectors go through the spool, and where it is.
//! - `crash`: fatal signals (a segfault, a stack overflow, an abort, a
//!   double panic, a raised SIGBUS) recorded by the handler and reported
//!   by the next run, with the exit status they had without crashbox.
//! - `crash_loop`: the same panic run after run folds into one report with a
//!   count, and every capture is accounted for.
//! - `last_run`: `crashbox::last_run`, and private spool files.
//! - `outage`: a collector down or hanging: reports wait in the spool and
//!   are delivered once; shutdown stays bounded.
//! - `panic_durable`: a panic is on disk before its hook returns, so SIGKILL
//!   loses nothing.
//! - `replay`: replay of orphans, junk and foreign files; retention by count
//!   and age; a second `init` replays the first one's leftovers.
//! - `sharing`: two processes replaying one spool deliver each report once.
//! - `trust`: spool directories and files crashbox will not trust.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::util;
use crate::util::http_server::Server;
use crate::util::{
    assert_child, child_collector, env_var, http_collector, one_by_one, print_stats, report_value,
    run_against, stats_with, wait_for, without_client, ChildOutput, COLLECTOR_ENV,
};
use crashbox::{Level, Options};
use serde_json::{json, Value};

mod abort;
mod collectors;
mod crash;
mod crash_loop;
mod last_run;
mod outage;
mod panic_durable;
mod replay;
mod sharing;
mod trust;

/// The child's spool directory.
const SPOOL_ENV: &str = "CRASHBOX_TEST_SPOOL";
/// A scratch directory the parent and the child share (marker and id files).
const WORK_ENV: &str = "CRASHBOX_TEST_WORK";
/// `Options::spool_max_reports` for `child_replay`, when set.
const MAX_REPORTS_ENV: &str = "CRASHBOX_TEST_MAX_REPORTS";
/// Unix time in ms at which `child_replay` calls `init`, when set.
const START_AT_ENV: &str = "CRASHBOX_TEST_START_AT_MS";

/// An owner token no live process can have: the pid is above Linux's
/// largest `pid_max` (2^22).
const DEAD_OWNER: &str = "4194999_1";

/// What every child starts from: the parent's collector and spool, and
/// retries fast enough for a test.
fn options() -> Options {
    one_by_one(Options::new())
        .collector(child_collector())
        .spool_dir(env_var(SPOOL_ENV))
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(100))
        .max_attempts(3)
}

fn child_env(collector: &str, spool: &Path) -> Vec<(&'static str, OsString)> {
    vec![(COLLECTOR_ENV, collector.into()), (SPOOL_ENV, spool.into())]
}

/// Runs child test `name` against `collector` and `spool` (plus `extra`
/// variables) and asserts it succeeded.
#[track_caller]
fn run_ok(
    name: &str,
    collector: &str,
    spool: &Path,
    extra: &[(&'static str, OsString)],
) -> ChildOutput {
    let mut envs = vec![(SPOOL_ENV, spool.into())];
    envs.extend(extra.iter().cloned());
    run_against(name, collector, &envs)
}

/// The counters a child printed with `print_stats("stats")`.
#[track_caller]
fn stats(out: &ChildOutput) -> BTreeMap<String, u64> {
    stats_with(out, "stats", "spool_corrupt")
}

/// Every report the server acknowledged (2xx), in arrival order.
fn delivered(server: &Server) -> Vec<Value> {
    server
        .requests()
        .iter()
        .filter(|r| r.acknowledged())
        .flat_map(|r| {
            assert_eq!(r.path, "/ingest");
            r.json().as_array().expect("a JSON array").clone()
        })
        .collect()
}

fn ids_of(reports: &[Value]) -> Vec<String> {
    reports
        .iter()
        .map(|r| r["id"].as_str().expect("a string id").to_owned())
        .collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The marker file the parent creates once the hanging collector holds the
/// worker's first request.
const STUCK_MARKER: &str = "worker-stuck";

/// With `server` (a hanging collector): writes the marker into `work` as
/// soon as a request arrived, so the child knows its worker is stuck.
fn mark_when_stuck<'s>(
    scope: &'s std::thread::Scope<'s, '_>,
    server: &'s Server,
    work: &'s Path,
) -> std::thread::ScopedJoinHandle<'s, ()> {
    scope.spawn(move || {
        let requests = server.wait_for_requests(1, Duration::from_secs(60));
        if !requests.is_empty() {
            std::fs::write(work.join(STUCK_MARKER), b"").unwrap();
        }
    })
}

/// Runs child test `name` (with `run_ok`) against `hanging`, a collector
/// that never answers, and `spool`; marks in `work` (`WORK_ENV`) when the
/// worker is stuck in a send.
#[track_caller]
fn run_while_stuck(name: &str, hanging: &Server, spool: &Path, work: &Path) -> ChildOutput {
    std::thread::scope(|scope| {
        mark_when_stuck(scope, hanging, work);
        run_ok(
            name,
            &http_collector(hanging.port()),
            spool,
            &[(WORK_ENV, work.into())],
        )
    })
}

/// In a child: waits until the parent says the worker is stuck in a send.
fn wait_until_stuck() {
    let marker = PathBuf::from(env_var(WORK_ENV)).join(STUCK_MARKER);
    wait_for(
        Duration::from_secs(30),
        "the worker stuck in a send",
        || marker.exists(),
    );
}

/// The `*.report` files directly in `dir`, sorted by name.
fn report_files(dir: &Path) -> Vec<PathBuf> {
    files_ending(dir, ".report")
}

/// The ids of the reports `dir` keeps for a later run: those of its
/// `*.report` files, and the captures its journals have not settled (a
/// report on its way to the collector keeps its capture's journal line).
fn spooled_ids(dir: &Path) -> std::collections::BTreeSet<String> {
    let mut ids: std::collections::BTreeSet<String> =
        report_files(dir).iter().map(|p| id_in_name(p)).collect();
    for journal in files_ending(dir, ".journal") {
        let text = std::fs::read_to_string(&journal).unwrap_or_default();
        let mut unsettled = std::collections::BTreeSet::new();
        for line in text.lines() {
            let Ok(value) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if let Some(id) = value["settled"].as_str() {
                unsettled.remove(id);
            } else if let Some(id) = value["entry"]["id"].as_str() {
                unsettled.insert(id.to_owned());
            }
        }
        ids.extend(unsettled);
    }
    ids
}

/// In a child: waits until crashbox's spool keeps `n` reports (see
/// [`spooled_ids`]); panics after 20 s, naming `what`.
#[track_caller]
fn wait_for_spooled(n: usize, what: &str) {
    let spool = crashbox::spool_dir().expect("a spool is in use");
    wait_for(Duration::from_secs(20), what, || {
        spooled_ids(&spool).len() == n
    });
}

fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.to_string_lossy().ends_with(suffix))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Files that still hold a report: `*.report`, and spare files a panic filled.
fn pending_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = report_files(dir);
    files.extend(
        files_ending(dir, ".spare")
            .into_iter()
            .filter(|p| std::fs::metadata(p).map(|m| m.len() > 0).unwrap_or(false)),
    );
    files
}

/// The report id in a spool file's name: `<ms>-<id>.<owner>.report`.
fn id_in_name(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy();
    let (_, rest) = name.split_once('-').expect("<ms>-<id>");
    rest.split('.').next().unwrap().to_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file directly in the spool `dir` is readable by its owner only.
#[track_caller]
fn assert_files_private(dir: &Path) {
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_file() {
            seen += 1;
            assert_eq!(mode(&path), 0o600, "{} is not private", path.display());
        }
    }
    assert!(seen > 0, "no files in {}", dir.display());
}

/// A report as the spool stores it, to copy for orphan files: a real
/// `crashbox::Report`, captured through the test helper.
fn template_report() -> Value {
    let _turn = without_client();
    let (_, reports) = crashbox::testing::capture(|| {
        crashbox::capture_message("left behind by a dead process", Level::Warning)
    });
    assert_eq!(reports.len(), 1);
    serde_json::to_value(&reports[0]).unwrap()
}

/// The documented spool file content for `report` with id `id`.
fn spool_bytes(template: &Value, id: &str, format: u32) -> Vec<u8> {
    let mut entry = template.clone();
    entry["id"] = id.into();
    entry["message"] = format!("orphan {id}").into();
    // Distinct reports (retention would fold identical ones).
    entry["group"] = id[16..].into();
    entry["type"] = "report".into();
    serde_json::to_vec(&json!({"format": format, "entry": entry})).unwrap()
}

/// The name a process that is gone would have given a report captured at `ms`.
fn orphan_name(ms: u64, id: &str) -> String {
    format!("{ms:016}-{id}.{DEAD_OWNER}.report")
}

/// Writes `n` orphan reports into `dir`, one ms apart from `first_ms`;
/// returns their ids, oldest first. `tag` keeps ids distinct across tests.
fn write_orphans(dir: &Path, tag: u32, n: usize, first_ms: u64) -> Vec<String> {
    let template = template_report();
    (0..n)
        .map(|i| {
            let id = format!("{tag:08x}{i:024x}");
            let path = dir.join(orphan_name(first_ms + i as u64, &id));
            std::fs::write(path, spool_bytes(&template, &id, 1)).unwrap();
            id
        })
        .collect()
}

/// `path` is `<16-digit ms>-<32-hex id>.<pid>_<token>.report`, written
/// by process `pid`, holding `{"format":1,"entry":{"type":"report",…}}` for
/// the report the name says, captured at that ms.
#[track_caller]
fn assert_spool_file(path: &Path, pid: &str) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let (ms, rest) = name.split_once('-').expect("<ms>-<rest>");
    let (id, rest) = rest.split_once('.').expect("<id>.<owner>.report");
    let owner = rest.strip_suffix(".report").expect(".report");
    assert!(
        ms.len() == 16 && ms.bytes().all(|b| b.is_ascii_digit()),
        "{name}"
    );
    assert!(util::is_lower_hex_32(id), "{name}");
    let (owner_pid, token) = owner.split_once('_').expect("<pid>_<token>");
    assert_eq!(owner_pid, pid, "{name}");
    assert!(
        token.len() == 8 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{name}"
    );
    let file: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(file["format"], 1, "{file}");
    assert_eq!(file["entry"]["type"], "report", "{file}");
    assert_eq!(file["entry"]["id"], id, "{file}");
    let report: crashbox::Report = serde_json::from_value({
        let mut entry = file["entry"].clone();
        entry.as_object_mut().unwrap().remove("type");
        entry
    })
    .expect("the entry is a crashbox::Report");
    assert_eq!(report.id.to_hex(), id);
    let captured_at = report.timestamp.clone();
    let ms: u64 = ms.parse().unwrap();
    // The name's ms is the report's capture time: same second and millisecond.
    assert_eq!(
        &captured_at[17..23],
        format!("{:02}.{:03}", (ms / 1000) % 60, ms % 1000),
        "{name} vs {captured_at}"
    );
}

/// Whether `report` has a resolved, in-app frame in a function named `name`.
fn has_in_app_frame(report: &Value, name: &str) -> bool {
    report["frames"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["in_app"] == true && f["function"].as_str().is_some_and(|s| s.contains(name)))
}

// ---------------------------------------------------------------------------
// Children that only replay

/// Installs crashbox on the parent's spool (optionally at `START_AT_ENV`,
/// with `MAX_REPORTS_ENV`), waits until the replay is delivered, and prints
/// what happened.
#[test]
#[ignore = "child process of the spool tests that replay what earlier runs left"]
fn child_replay() {
    assert_child();
    if let Ok(at) = std::env::var(START_AT_ENV) {
        let at: u64 = at.parse().unwrap();
        std::thread::sleep(Duration::from_millis(at.saturating_sub(now_ms())));
    }
    let mut options = options();
    if let Ok(max) = std::env::var(MAX_REPORTS_ENV) {
        options = options.spool_max_reports(max.parse().unwrap());
    }
    let start = Instant::now();
    let guard = crashbox::init(options).expect("init");
    report_value("init_ms", start.elapsed().as_millis());
    let last = crashbox::last_run().expect("a spool is in use");
    report_value(
        "last_run",
        format!("{}/{}", last.panicked, last.consecutive_panics),
    );
    report_value("flushed", crashbox::flush(Duration::from_secs(30)));
    print_stats("stats");
    drop(guard);
}
