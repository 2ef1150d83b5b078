//! The on-disk spool: a report bound for a network collector is a file until
//! the collector has it, so neither a dead collector, a hanging one, a
//! SIGKILL nor `panic = "abort"` loses it, and the next run delivers it.
//!
//! `init` installs per-process state, so every run of the program is a child
//! process: a `child_*` test of this binary (see `common::run_child`), or the
//! `tests/abort_app` program built with `panic = "abort"`. The collector is a
//! loopback HTTP server in the parent; each test gives its children their
//! own spool directory.
mod common;
#[path = "support/http_server.rs"]
mod http_server;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{
    child_collector, child_command, env_var, http_collector, is_child, one_by_one, otlp_collector,
    print_stats, report_value, run_against, run_child, run_command, sentry_collector, stats_with,
    wait_for, wait_for_exit, ChildOutput, TempDir, COLLECTOR_ENV,
};
use crashbox::{Level, Options};
use http_server::{refused_port, Behavior, Server};
use serde_json::{json, Value};

/// The child's spool directory.
const SPOOL_ENV: &str = "CRASHBOX_TEST_SPOOL";
/// A scratch directory the parent and the child share (marker and id files).
const WORK_ENV: &str = "CRASHBOX_TEST_WORK";
/// `Options::spool_max_reports` for `child_replay`, when set.
const MAX_REPORTS_ENV: &str = "CRASHBOX_TEST_MAX_REPORTS";
/// Unix time in ms at which `child_replay` calls `init`, when set.
const START_AT_ENV: &str = "CRASHBOX_TEST_START_AT_MS";
/// `panic` or `clean`, for `child_last_run`.
const MODE_ENV: &str = "CRASHBOX_TEST_MODE";

/// An owner token no live process can have: the pid is above Linux's
/// largest `pid_max` (2^22).
const DEAD_OWNER: &str = "4194999_1";

/// The thread that panics in the SIGKILL test, and what it says.
const PANIC_THREAD: &str = "spool-panicker";
const PANIC_MESSAGE: &str = "the spool keeps this panic";

/// SIGKILL and SIGABRT on Linux.
const SIGKILL: i32 = 9;
const SIGABRT: i32 = 6;

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

/// In a child: waits until crashbox's spool holds `n` `*.report` files;
/// panics after 20 s, naming `what`.
#[track_caller]
fn wait_for_report_files(n: usize, what: &str) {
    let spool = crashbox::spool_dir().expect("a spool is in use");
    wait_for(Duration::from_secs(20), what, || {
        report_files(&spool).len() == n
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
    assert!(common::is_lower_hex_32(id), "{name}");
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
fn child_replay() {
    if !is_child() {
        return;
    }
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

// ---------------------------------------------------------------------------
// 1. The collector is down while reports are captured, then comes back.

const THOUSAND: usize = 1000;

#[test]
fn a_thousand_reports_captured_while_the_collector_is_down_all_arrive_once_it_is_up() {
    let server = Server::with_behavior(Behavior::status(503));
    let spool = TempDir::new("spool-thousand");
    let work = TempDir::new("work-thousand");
    let envs = {
        let mut envs = child_env(&http_collector(server.port()), spool.path());
        envs.push((WORK_ENV, work.path().into()));
        envs
    };
    let child = std::thread::spawn(move || run_child("child_capture_a_thousand", &envs));
    wait_for(Duration::from_secs(60), "the child's captures", || {
        work.path().join("captured").exists()
    });
    // The worker kept trying (and failing) while everything was captured.
    server.wait_for_requests(3, Duration::from_secs(10));
    assert!(server.requests().iter().all(|r| r.answered() == Some(503)));
    server.set_behavior(Behavior::ok());
    let out = child.join().unwrap();
    out.assert_success();

    let captured: Vec<String> = std::fs::read_to_string(work.path().join("ids"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let captured_set: BTreeSet<&String> = captured.iter().collect();
    assert_eq!(captured.len(), THOUSAND);
    assert_eq!(captured_set.len(), THOUSAND, "capture ids are distinct");
    let reports = delivered(&server);
    // No report arrived under two ids: one id per message.
    let mut ids_by_message: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in &reports {
        ids_by_message
            .entry(r["message"].as_str().unwrap())
            .or_default()
            .insert(r["id"].as_str().unwrap());
    }
    assert_eq!(ids_by_message.len(), THOUSAND);
    assert!(ids_by_message.values().all(|ids| ids.len() == 1));
    let arrived = ids_of(&reports);
    let arrived_set: BTreeSet<&String> = arrived.iter().collect();
    assert_eq!(
        arrived_set,
        captured_set,
        "the collector got exactly the captured ids ({} reports in {} acknowledged ids)",
        arrived_set.len(),
        arrived.len()
    );
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let stats = stats(&out);
    assert_eq!(stats["sent"], THOUSAND as u64, "{stats:?}");
    assert_eq!(stats["spool_write_errors"], 0, "{stats:?}");
    assert!(stats["retries"] >= 2, "{stats:?}");
    // Each was in the spool until delivered, and removed then.
    assert_eq!(out.value("report_files_after_flush"), "0", "{}", out.dump());
    assert!(report_files(spool.path()).is_empty());
}

/// Run by `a_thousand_reports_captured_while_the_collector_is_down_all_arrive_once_it_is_up`.
#[test]
fn child_capture_a_thousand() {
    if !is_child() {
        return;
    }
    // Retry for as long as the parent keeps the collector down.
    let guard = crashbox::init(options().max_attempts(100_000)).expect("init");
    let ids: Vec<String> = (0..THOUSAND)
        .map(|i| {
            crashbox::capture_message(format!("captured while down #{i}"), Level::Error)
                .expect("queued")
                .to_hex()
        })
        .collect();
    let work = PathBuf::from(env_var(WORK_ENV));
    std::fs::write(work.join("ids"), ids.join("\n")).unwrap();
    std::fs::write(work.join("captured"), b"").unwrap();
    report_value("flushed", crashbox::flush(Duration::from_secs(60)));
    report_value(
        "report_files_after_flush",
        report_files(&crashbox::spool_dir().unwrap()).len(),
    );
    print_stats("stats");
    drop(guard);
}

#[test]
fn reports_whose_retries_ran_out_stay_spooled_and_the_next_run_delivers_them_oldest_first() {
    let spool = TempDir::new("spool-exhausted");
    let work = TempDir::new("work-exhausted");
    let first = run_ok(
        "child_capture_a_thousand_while_refused",
        &http_collector(refused_port()),
        spool.path(),
        &[(WORK_ENV, work.path().into())],
    );
    let stats1 = stats(&first);
    assert_eq!(stats1["spooled"], THOUSAND as u64, "{stats1:?}");
    assert_eq!(stats1["sent"], 0, "{stats1:?}");
    let dropped: u64 = stats1
        .iter()
        .filter(|(k, _)| k.starts_with("dropped"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(dropped, 0, "{stats1:?}");
    let captured: BTreeSet<String> = std::fs::read_to_string(work.path().join("ids"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(captured.len(), THOUSAND);
    let files = report_files(spool.path());
    assert_eq!(files.len(), THOUSAND, "every undelivered report is a file");
    let in_names: BTreeSet<String> = files.iter().map(|p| id_in_name(p)).collect();
    assert_eq!(in_names, captured);
    assert_files_private(spool.path());
    assert_spool_file(&files[0], &first.value("pid"));

    let server = Server::start();
    let second = run_ok(
        "child_replay",
        &http_collector(server.port()),
        spool.path(),
        &[(MAX_REPORTS_ENV, THOUSAND.to_string().into())],
    );
    assert_eq!(second.value("flushed"), "true", "{}", second.dump());
    let stats2 = stats(&second);
    assert_eq!(stats2["replayed"], THOUSAND as u64, "{stats2:?}");
    assert_eq!(stats2["sent"], THOUSAND as u64, "{stats2:?}");
    assert_eq!(stats2["spool_discarded"], 0, "{stats2:?}");
    let reports = delivered(&server);
    let arrived = ids_of(&reports);
    assert_eq!(arrived.len(), THOUSAND, "each arrived once");
    assert_eq!(arrived.iter().cloned().collect::<BTreeSet<_>>(), captured);
    let times: Vec<&str> = reports
        .iter()
        .map(|r| r["timestamp"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "replayed oldest first"
    );
    assert!(report_files(spool.path()).is_empty());
}

/// Run by `reports_whose_retries_ran_out_stay_spooled_and_the_next_run_delivers_them_oldest_first`.
#[test]
fn child_capture_a_thousand_while_refused() {
    if !is_child() {
        return;
    }
    // A limit that holds them all, however retention may treat a live spool.
    let guard =
        crashbox::init(options().max_attempts(2).spool_max_reports(THOUSAND)).expect("init");
    report_value("pid", std::process::id());
    let ids: Vec<String> = (0..THOUSAND)
        .map(|i| {
            crashbox::capture_message(format!("refused #{i}"), Level::Error)
                .expect("queued")
                .to_hex()
        })
        .collect();
    std::fs::write(PathBuf::from(env_var(WORK_ENV)).join("ids"), ids.join("\n")).unwrap();
    // Every batch is tried twice, then left in the spool.
    wait_for(Duration::from_secs(60), "every report spooled", || {
        crashbox::stats().spooled == THOUSAND as u64
    });
    print_stats("stats");
    drop(guard);
}

// ---------------------------------------------------------------------------
// 2. SIGKILL right after a panic.

/// The panic site the test looks for among the delivered frames.
#[inline(never)]
fn panics_on_the_named_thread(message: &str) {
    panic!("{message}");
}

/// Starts child test `name` itself (not through `run_child`, which waits
/// for the exit): stdout lines arrive on the returned channel, and stderr
/// is read to its end by the returned thread.
fn spawn_child(
    name: &str,
    envs: &[(&'static str, OsString)],
    state: &TempDir,
) -> (Child, mpsc::Receiver<String>, JoinHandle<String>) {
    let mut child = child_command(name, envs, state.path())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx, stderr)
}

/// Runs child test `name` until it prints `CHILD:joined=`, then SIGKILLs
/// it; returns the lines it printed before.
fn run_until_joined_then_kill(name: &str, envs: &[(&'static str, OsString)]) -> Vec<String> {
    let state = TempDir::new("state-kill");
    let (mut child, lines, stderr) = spawn_child(name, envs, &state);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains("CHILD:joined=") => break,
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = stderr.join().unwrap();
                panic!("child {name} never reported its panic: {seen:#?}\n{stderr}");
            }
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no shutdown, nothing flushed
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert_eq!(status.signal(), Some(SIGKILL), "{status}\n{stderr}");
    seen
}

/// Installs a panic hook for crashbox to hand over to, which prints how many
/// raw panic captures with the panic's message the spool holds by then.
///
/// The worker may be renaming the hook's spare file meanwhile, so one
/// directory scan can miss it: the hook scans a few times. That proves no
/// less, since only the panic hook writes `captured` entries (the worker
/// writes `report` entries and renames), and crashbox's hook is blocked in
/// this call for as long as it runs.
fn install_previous_hook() {
    let spool = PathBuf::from(env_var(SPOOL_ENV));
    std::panic::set_hook(Box::new(move |_| {
        let mut ids = BTreeSet::new();
        for _ in 0..50 {
            for path in pending_files(&spool) {
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                let Ok(file) = serde_json::from_slice::<Value>(&bytes) else {
                    continue;
                };
                let entry = &file["entry"];
                if entry["type"] == "captured" && entry["message"] == PANIC_MESSAGE {
                    ids.insert(entry["id"].as_str().unwrap_or_default().to_owned());
                }
            }
            if !ids.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        report_value("durable_in_previous_hook", ids.len());
    }));
}

/// Panics on [`PANIC_THREAD`], joins it, and says so.
fn panic_on_the_named_thread() {
    let joined = std::thread::Builder::new()
        .name(PANIC_THREAD.to_owned())
        .spawn(|| panics_on_the_named_thread(PANIC_MESSAGE))
        .unwrap()
        .join();
    assert!(joined.is_err());
    report_value("joined", 1);
}

#[track_caller]
fn assert_is_the_named_thread_panic(report: &Value) {
    assert_eq!(report["level"], "fatal", "{report:#}");
    assert_eq!(report["kind"], "panic", "{report:#}");
    assert_eq!(report["message"], PANIC_MESSAGE, "{report:#}");
    assert_eq!(report["thread"]["name"], PANIC_THREAD, "{report:#}");
    assert!(
        has_in_app_frame(report, "panics_on_the_named_thread"),
        "no resolved in-app frame for the panicking function: {:#}",
        report["frames"]
    );
}

#[test]
fn a_panic_survives_sigkill_and_the_next_run_delivers_it_with_resolved_frames() {
    let spool = TempDir::new("spool-sigkill");
    let seen = run_until_joined_then_kill(
        "child_panic_then_wait_to_be_killed",
        &child_env(&http_collector(refused_port()), spool.path()),
    );
    assert!(
        seen.iter()
            .any(|l| l.contains("CHILD:durable_in_previous_hook=1")),
        "the panic was not in the spool when the previous hook ran: {seen:#?}"
    );

    // The panic is on disk as a raw capture: addresses tied to their files.
    let files = pending_files(spool.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let file: Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(file["format"], 1, "{file}");
    let entry = &file["entry"];
    assert_eq!(entry["type"], "captured", "{file}");
    assert_eq!(entry["message"], PANIC_MESSAGE);
    let modules = entry["modules"].as_array().expect("modules");
    assert!(!modules.is_empty(), "{file}");
    assert!(modules
        .iter()
        .all(|m| m["path"].as_str().is_some_and(|p| p.starts_with('/'))
            && m["identity"].as_str().is_some_and(|i| !i.is_empty())));
    let exe = std::env::current_exe().unwrap();
    assert!(
        modules.iter().any(|m| m["path"].as_str() == exe.to_str()),
        "this binary is not among the modules: {modules:#?}"
    );
    assert!(entry["located"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| !l.is_null()));
    let id = entry["id"].as_str().unwrap().to_owned();
    assert_files_private(spool.path());

    let server = Server::start();
    let out = run_ok(
        "child_replay",
        &http_collector(server.port()),
        spool.path(),
        &[],
    );
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    assert_eq!(out.value("last_run"), "true/1", "the killed run panicked");
    let stats = stats(&out);
    assert_eq!(stats["replayed"], 1, "{stats:?}");
    assert_eq!(stats["sent"], 1, "{stats:?}");
    let reports = delivered(&server);
    assert_eq!(reports.len(), 1, "{reports:#?}");
    let report = &reports[0];
    assert_eq!(report["id"], id.as_str());
    assert_is_the_named_thread_panic(report);
    assert!(pending_files(spool.path()).is_empty());
}

#[test]
fn a_panic_spooled_by_another_build_is_delivered_with_its_addresses_only() {
    let spool = TempDir::new("spool-rebuilt");
    run_until_joined_then_kill(
        "child_panic_then_wait_to_be_killed",
        &child_env(&http_collector(refused_port()), spool.path()),
    );
    let files = pending_files(spool.path());
    assert_eq!(files.len(), 1, "{files:?}");
    // Pretend every file it ran from was rebuilt since (another identity).
    let mut file: Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    let entry = &mut file["entry"];
    let addresses = entry["addresses"].as_array().unwrap().len();
    assert!(addresses > 0);
    for module in entry["modules"].as_array_mut().unwrap() {
        module["identity"] = "1:2:3:4".into();
    }
    std::fs::write(&files[0], serde_json::to_vec(&file).unwrap()).unwrap();

    let server = Server::start();
    let out = run_ok(
        "child_replay",
        &http_collector(server.port()),
        spool.path(),
        &[],
    );
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let reports = delivered(&server);
    assert_eq!(reports.len(), 1, "{reports:#?}");
    let report = &reports[0];
    assert_eq!(report["message"], PANIC_MESSAGE);
    assert_eq!(report["level"], "fatal");
    let frames = report["frames"].as_array().unwrap();
    assert_eq!(frames.len(), addresses, "one frame an address");
    for frame in frames {
        assert!(
            frame["function"].is_null(),
            "resolved against the wrong build: {frame}"
        );
        assert_eq!(frame["in_app"], false, "{frame}");
        assert!(
            frame["address"].as_str().unwrap().starts_with("0x"),
            "{frame}"
        );
    }
}

/// Run (and killed) by `a_panic_survives_sigkill_and_the_next_run_delivers_it_with_resolved_frames`
/// and `a_panic_spooled_by_another_build_is_delivered_with_its_addresses_only`.
#[test]
fn child_panic_then_wait_to_be_killed() {
    if !is_child() {
        return;
    }
    install_previous_hook();
    let _guard = crashbox::init(options().max_attempts(100_000)).expect("init");
    panic_on_the_named_thread();
    std::thread::sleep(Duration::from_secs(120));
    unreachable!("the parent kills this process");
}

#[test]
fn a_panic_while_the_worker_is_stuck_in_a_send_survives_sigkill_in_its_spare_file() {
    let hanging = Server::with_behavior(Behavior::Hang);
    let spool = TempDir::new("spool-stuck-panic");
    let work = TempDir::new("work-stuck-panic");
    let mut envs = child_env(&http_collector(hanging.port()), spool.path());
    envs.push((WORK_ENV, work.path().into()));
    let seen = std::thread::scope(|scope| {
        mark_when_stuck(scope, &hanging, work.path());
        run_until_joined_then_kill("child_panic_while_the_worker_is_stuck", &envs)
    });
    assert!(
        seen.iter()
            .any(|l| l.contains("CHILD:durable_in_previous_hook=1")),
        "the panic was not in the spool when the previous hook ran: {seen:#?}"
    );
    assert_eq!(
        hanging.request_count(),
        1,
        "the worker never got past its first send"
    );
    // The hanging send holds up the transport's thread only: the panic is
    // on disk, in the hook's spare file or (once the worker took it in)
    // under its report name, beside the message sent before.
    let filled: Vec<PathBuf> = files_ending(spool.path(), ".spare")
        .into_iter()
        .filter(|p| std::fs::metadata(p).unwrap().len() > 0)
        .collect();
    let reports = report_files(spool.path());
    assert_eq!(
        filled.len() + reports.len(),
        2,
        "the message and the panic: {filled:?} {reports:?}"
    );
    drop(hanging);

    let server = Server::start();
    let out = run_ok(
        "child_replay",
        &http_collector(server.port()),
        spool.path(),
        &[],
    );
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    assert_eq!(out.value("last_run"), "true/1");
    let reports = delivered(&server);
    assert_eq!(reports.len(), 2, "{reports:#?}");
    assert_eq!(reports[0]["message"], "sent before the panic");
    assert_is_the_named_thread_panic(&reports[1]);
    assert!(pending_files(spool.path()).is_empty());
}

/// Run (and killed) by `a_panic_while_the_worker_is_stuck_in_a_send_survives_sigkill_in_its_spare_file`.
#[test]
fn child_panic_while_the_worker_is_stuck() {
    if !is_child() {
        return;
    }
    install_previous_hook();
    let _guard = crashbox::init(options()).expect("init");
    crashbox::capture_message("sent before the panic", Level::Error).expect("queued");
    wait_for_report_files(1, "the message in the spool");
    wait_until_stuck();
    panic_on_the_named_thread();
    std::thread::sleep(Duration::from_secs(120));
    unreachable!("the parent kills this process");
}

// ---------------------------------------------------------------------------
// 3. panic = "abort" (tests/abort_app)

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
            .contains("ABORT_APP:last_run=Some(LastRun { panicked: true, consecutive_panics: 1 })"),
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

// ---------------------------------------------------------------------------
// 4. A collector that accepts connections and never answers.

const SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(500);
const HUNG: usize = 5;

#[test]
fn a_hanging_collector_delays_shutdown_only_to_its_timeout_and_the_next_run_delivers_what_was_left()
{
    let hanging = Server::with_behavior(Behavior::Hang);
    let spool = TempDir::new("spool-hang");
    let work = TempDir::new("work-hang");
    let out = run_while_stuck(
        "child_capture_then_shut_down_while_the_collector_hangs",
        &hanging,
        spool.path(),
        work.path(),
    );
    let drop_ms = out.number("drop_ms");
    assert!(
        drop_ms <= (SHUTDOWN_TIMEOUT + Duration::from_secs(1)).as_millis() as u64,
        "dropping the guard took {drop_ms} ms"
    );
    assert!(
        hanging.request_count() >= 1,
        "the worker reached the collector"
    );
    let captured: BTreeSet<String> = out.values("id").into_iter().collect();
    assert_eq!(captured.len(), HUNG);
    let files = report_files(spool.path());
    let in_names: BTreeSet<String> = files.iter().map(|p| id_in_name(p)).collect();
    assert_eq!(
        in_names, captured,
        "the undelivered reports are in the spool"
    );
    assert_files_private(spool.path());
    let stats1 = stats(&out);
    assert_eq!(stats1["spooled"], HUNG as u64, "{stats1:?}");
    assert_eq!(stats1["dropped_shutdown"], 0, "{stats1:?}");
    // The spare files kept ready for a panic: `<pid>_<token>-<n>.spare`, empty.
    let owner = files[0]
        .to_string_lossy()
        .rsplit('.')
        .nth(1)
        .unwrap()
        .to_owned();
    let spares = files_ending(spool.path(), ".spare");
    assert!(!spares.is_empty(), "no spare files");
    for spare in &spares {
        let name = spare.file_name().unwrap().to_string_lossy().into_owned();
        let n = name
            .strip_prefix(&format!("{owner}-"))
            .and_then(|rest| rest.strip_suffix(".spare"))
            .unwrap_or_else(|| panic!("{name} is not {owner}-<n>.spare"));
        assert!(n.parse::<u64>().is_ok(), "{name}");
        assert_eq!(std::fs::metadata(spare).unwrap().len(), 0, "{name}");
    }
    drop(hanging);

    // A run whose collector is down replays them, fails, and leaves them again.
    let down = run_ok(
        "child_replay",
        &http_collector(refused_port()),
        spool.path(),
        &[],
    );
    let stats2 = stats(&down);
    assert_eq!(stats2["replayed"], HUNG as u64, "{stats2:?}");
    assert_eq!(stats2["spooled"], HUNG as u64, "{stats2:?}");
    let in_names: BTreeSet<String> = report_files(spool.path())
        .iter()
        .map(|p| id_in_name(p))
        .collect();
    assert_eq!(in_names, captured, "still in the spool, under the same ids");

    let server = Server::start();
    let next = run_ok(
        "child_replay",
        &http_collector(server.port()),
        spool.path(),
        &[],
    );
    assert_eq!(next.value("flushed"), "true", "{}", next.dump());
    let arrived = ids_of(&delivered(&server));
    assert_eq!(arrived.len(), HUNG, "{arrived:?}");
    assert_eq!(arrived.into_iter().collect::<BTreeSet<_>>(), captured);
    assert!(report_files(spool.path()).is_empty());
    let old_spares: Vec<PathBuf> = files_ending(spool.path(), ".spare")
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&owner))
        .collect();
    assert!(
        old_spares.is_empty(),
        "a dead process's empty spares stay: {old_spares:?}"
    );
}

/// Run by `a_hanging_collector_delays_shutdown_only_to_its_timeout_and_the_next_run_delivers_what_was_left`.
#[test]
fn child_capture_then_shut_down_while_the_collector_hangs() {
    if !is_child() {
        return;
    }
    let guard = crashbox::init(options().shutdown_timeout(SHUTDOWN_TIMEOUT)).expect("init");
    for i in 0..HUNG {
        let id = crashbox::capture_message(format!("hung #{i}"), Level::Error).expect("queued");
        report_value("id", id);
    }
    // The worker spools what it takes off the queue before it sends.
    wait_for_report_files(HUNG, "the reports in the spool");
    wait_until_stuck();
    let start = Instant::now();
    drop(guard);
    report_value("drop_ms", start.elapsed().as_millis());
    print_stats("stats");
}

#[test]
fn reports_captured_while_the_worker_is_stuck_in_a_send_are_spooled_too() {
    let hanging = Server::with_behavior(Behavior::Hang);
    let spool = TempDir::new("spool-stuck");
    let work = TempDir::new("work-stuck");
    let out = run_while_stuck(
        "child_capture_while_the_worker_is_stuck",
        &hanging,
        spool.path(),
        work.path(),
    );
    assert_eq!(
        hanging.request_count(),
        1,
        "the worker is stuck in one request"
    );
    let captured: BTreeSet<String> = out.values("id").into_iter().collect();
    assert_eq!(captured.len(), HUNG);
    let in_names: BTreeSet<String> = report_files(spool.path())
        .iter()
        .map(|p| id_in_name(p))
        .collect();
    let stats = stats(&out);
    assert_eq!(
        in_names, captured,
        "reports captured during the hanging send are not in the spool; stats: {stats:?}"
    );
}

/// Run by `reports_captured_while_the_worker_is_stuck_in_a_send_are_spooled_too`.
#[test]
fn child_capture_while_the_worker_is_stuck() {
    if !is_child() {
        return;
    }
    let guard = crashbox::init(options().shutdown_timeout(SHUTDOWN_TIMEOUT)).expect("init");
    let first = crashbox::capture_message("before the hang", Level::Error).expect("queued");
    report_value("id", first);
    wait_for_report_files(1, "the first report in the spool");
    std::thread::sleep(Duration::from_millis(300)); // the worker now waits for an answer
    for i in 1..HUNG {
        let id = crashbox::capture_message(format!("during the hang #{i}"), Level::Error)
            .expect("queued");
        report_value("id", id);
    }
    std::thread::sleep(Duration::from_millis(300));
    drop(guard);
    print_stats("stats");
}

// ---------------------------------------------------------------------------
// 5. Replay of a spool full of orphans, junk and files of another version.

const MANY: usize = 10_000;
const KEEP: usize = 50;

#[test]
fn replay_survives_corrupt_and_foreign_files_and_keeps_only_the_newest_max_reports() {
    let spool = TempDir::new("spool-junk");
    let dir = spool.path();
    let first_ms = now_ms() - 3_600_000;
    let valid = write_orphans(dir, 0x5b00_0005, MANY, first_ms);
    let template = template_report();
    let junk_id = |n: u32| format!("{:08x}{n:024x}", 0xbad0_0005u32);
    // Newer than every valid orphan, so retention keeps them and replay reads them.
    let junk_ms = first_ms + MANY as u64 + 1000;
    let named_junk: Vec<(String, Vec<u8>)> = vec![
        (
            orphan_name(junk_ms, &junk_id(1)),
            vec![0xff, 0xfe, 0x00, 0x13, 0x37],
        ),
        (orphan_name(junk_ms + 1, &junk_id(2)), {
            let whole = spool_bytes(&template, &junk_id(2), 1);
            whole[..whole.len() / 2].to_vec()
        }),
        (
            orphan_name(junk_ms + 2, &junk_id(3)),
            spool_bytes(&template, &junk_id(3), 99),
        ),
        (orphan_name(junk_ms + 3, &junk_id(4)), Vec::new()),
    ];
    for (name, bytes) in &named_junk {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    // A report-named directory: it cannot be read as a file.
    std::fs::create_dir(dir.join(orphan_name(junk_ms + 4, &junk_id(5)))).unwrap();
    let claimed_junk = named_junk.len() + 1;
    // Names that are not report names at all.
    std::fs::write(dir.join("garbage.report"), b"{}").unwrap();
    std::fs::write(
        dir.join(format!("12-not-an-id.{DEAD_OWNER}.report")),
        spool_bytes(&template, &junk_id(6), 1),
    )
    .unwrap();
    // A dead process's spare files: one filled with junk, one never used.
    std::fs::write(dir.join(format!("{DEAD_OWNER}-0.spare")), b"{\"format\":1,").unwrap();
    std::fs::write(dir.join(format!("{DEAD_OWNER}-1.spare")), b"").unwrap();
    let corrupt = claimed_junk + 2 + 1;

    let server = Server::start();
    let start = Instant::now();
    let out = run_ok(
        "child_replay",
        &http_collector(server.port()),
        dir,
        &[(MAX_REPORTS_ENV, KEEP.to_string().into())],
    );
    let replay_time = start.elapsed();
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let stats = stats(&out);
    let arrived = ids_of(&delivered(&server));
    assert!(arrived.len() <= KEEP, "{} delivered", arrived.len());
    // The junk is set aside before retention counts, so it takes no place
    // of a valid orphan: those are the newest KEEP.
    let _ = claimed_junk;
    assert_eq!(arrived, valid[MANY - KEEP..], "newest, oldest first");
    assert_eq!(stats["replayed"], arrived.len() as u64, "{stats:?}");
    assert_eq!(
        stats["spool_discarded"] + arrived.len() as u64,
        MANY as u64,
        "{stats:?}"
    );
    assert_eq!(stats["spool_corrupt"], corrupt as u64, "{stats:?}");
    let set_aside = std::fs::read_dir(dir.join("corrupt")).unwrap().count();
    assert_eq!(set_aside, corrupt, "every bad file is in corrupt/");
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(DEAD_OWNER) || n.ends_with(".report"))
        .collect();
    assert!(left.is_empty(), "left in the spool: {left:?}");
    assert!(
        replay_time < Duration::from_secs(20),
        "replay took {replay_time:?}"
    );
    let init_ms = out.number("init_ms");
    assert!(
        init_ms < 1000,
        "init waited {init_ms} ms: replay is not in the background"
    );
}

// ---------------------------------------------------------------------------
// 6. Two processes replaying one spool at once.

const SHARED: usize = 200;

#[test]
fn two_processes_replaying_one_spool_deliver_each_report_exactly_once() {
    let spool = TempDir::new("spool-shared");
    let orphans: BTreeSet<String> =
        write_orphans(spool.path(), 0x5b00_0006, SHARED, now_ms() - 60_000)
            .into_iter()
            .collect();
    let server = Server::start();
    let start_at = (now_ms() + 1500).to_string();
    let children: Vec<_> = (0..2)
        .map(|_| {
            let mut envs = child_env(&http_collector(server.port()), spool.path());
            envs.push((MAX_REPORTS_ENV, "1000".into()));
            envs.push((START_AT_ENV, start_at.clone().into()));
            std::thread::spawn(move || run_child("child_replay", &envs))
        })
        .collect();
    let outs: Vec<ChildOutput> = children.into_iter().map(|c| c.join().unwrap()).collect();
    let mut replayed = 0;
    for out in &outs {
        out.assert_success();
        assert_eq!(out.value("flushed"), "true", "{}", out.dump());
        let stats = stats(out);
        assert_eq!(stats["sent"], stats["replayed"], "{stats:?}");
        replayed += stats["replayed"];
    }
    assert_eq!(
        replayed, SHARED as u64,
        "between them, each file replayed once"
    );
    let arrived = ids_of(&delivered(&server));
    let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
    for id in &arrived {
        *counts.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(arrived.len(), SHARED);
    assert_eq!(arrived.iter().cloned().collect::<BTreeSet<_>>(), orphans);
    assert!(report_files(spool.path()).is_empty());
}

// ---------------------------------------------------------------------------
// 7. last_run, and private files.

#[test]
fn last_run_counts_panicking_runs_in_a_row_and_resets_after_a_clean_run() {
    let root = TempDir::new("spool-last-run");
    // Not there yet: crashbox creates it.
    let spool = root.path().join("state").join("spool");
    let mut seen = Vec::new();
    for mode in ["panic", "panic", "panic", "clean", "clean"] {
        let out = run_ok(
            "child_last_run",
            "memory",
            &spool,
            &[(MODE_ENV, mode.into())],
        );
        seen.push(out.value("last_run"));
    }
    assert_eq!(
        seen,
        ["false/0", "true/1", "true/2", "true/3", "false/0"],
        "last_run of each run"
    );
    assert_eq!(mode(&spool), 0o700, "the spool directory is private");
    assert_files_private(&spool);
    assert!(spool.join("run-state.json").is_file());
}

/// Run by `last_run_counts_panicking_runs_in_a_row_and_resets_after_a_clean_run`.
#[test]
fn child_last_run() {
    if !is_child() {
        return;
    }
    let guard = crashbox::init(
        Options::new()
            .collector(env_var(COLLECTOR_ENV))
            .spool_dir(env_var(SPOOL_ENV)),
    )
    .expect("init");
    let last = crashbox::last_run().expect("a spool is in use");
    report_value(
        "last_run",
        format!("{}/{}", last.panicked, last.consecutive_panics),
    );
    if env_var(MODE_ENV) == "panic" {
        // Two panics: still one panicking run.
        for _ in 0..2 {
            let caught = std::panic::catch_unwind(|| panic!("crash loop"));
            assert!(caught.is_err());
        }
        assert!(crashbox::flush(Duration::from_secs(10)));
        assert_eq!(crashbox::memory_reports().len(), 2);
    }
    drop(guard);
}

// ---------------------------------------------------------------------------
// More retention and durability edges.

#[test]
fn orphans_older_than_spool_max_age_are_discarded_not_replayed() {
    let spool = TempDir::new("spool-age");
    let day_ms = 86_400_000;
    let stale = write_orphans(spool.path(), 0x5b00_0a6e, 10, now_ms() - 31 * day_ms);
    let fresh = write_orphans(spool.path(), 0x5b01_0a6e, 10, now_ms() - 60_000);
    let server = Server::start();
    let out = run_ok(
        "child_replay",
        &http_collector(server.port()),
        spool.path(),
        &[],
    );
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let stats = stats(&out);
    assert_eq!(stats["spool_discarded"], stale.len() as u64, "{stats:?}");
    assert_eq!(stats["replayed"], fresh.len() as u64, "{stats:?}");
    assert_eq!(
        ids_of(&delivered(&server)),
        fresh,
        "only the fresh ones, oldest first"
    );
    assert!(report_files(spool.path()).is_empty());
}

#[test]
fn a_report_that_cannot_be_spooled_is_still_delivered_and_counted() {
    let server = Server::start();
    let root = TempDir::new("spool-vanishing");
    let spool = root.path().join("spool");
    let out = run_ok(
        "child_spool_dir_removed",
        &http_collector(server.port()),
        &spool,
        &[],
    );
    let stats = stats(&out);
    // Written to the journal as captured, then as a finished report.
    assert!(stats["spool_write_errors"] >= 1, "{stats:?}");
    assert_eq!(stats["sent"], 1, "{stats:?}");
    assert_eq!(ids_of(&delivered(&server)), vec![out.value("id")]);
}

/// Run by `a_report_that_cannot_be_spooled_is_still_delivered_and_counted`.
#[test]
fn child_spool_dir_removed() {
    if !is_child() {
        return;
    }
    let guard = crashbox::init(options()).expect("init");
    std::fs::remove_dir_all(crashbox::spool_dir().unwrap()).unwrap();
    let id = crashbox::capture_message("nowhere to spool", Level::Error).expect("queued");
    report_value("id", id);
    assert!(crashbox::flush(Duration::from_secs(20)));
    print_stats("stats");
    drop(guard);
}

/// The collector for the second `init` of `child_init_twice`.
const SECOND_COLLECTOR_ENV: &str = "CRASHBOX_TEST_SECOND_COLLECTOR";

#[test]
fn a_second_init_in_the_same_process_replays_what_the_first_left_in_the_spool() {
    let server = Server::start();
    let spool = TempDir::new("spool-reinit");
    let out = run_ok(
        "child_init_twice",
        &http_collector(refused_port()),
        spool.path(),
        &[(SECOND_COLLECTOR_ENV, http_collector(server.port()).into())],
    );
    let captured: BTreeSet<String> = out.values("id").into_iter().collect();
    assert_eq!(captured.len(), 3);
    let arrived: BTreeSet<String> = ids_of(&delivered(&server)).into_iter().collect();
    assert_eq!(
        arrived,
        captured,
        "the second init did not deliver the first one's leftovers\n{}",
        out.dump()
    );
}

/// Run by `a_second_init_in_the_same_process_replays_what_the_first_left_in_the_spool`.
#[test]
fn child_init_twice() {
    if !is_child() {
        return;
    }
    let guard = crashbox::init(options().max_attempts(1)).expect("first init");
    for i in 0..3 {
        let id = crashbox::capture_message(format!("left by the first client #{i}"), Level::Error)
            .expect("queued");
        report_value("id", id);
    }
    wait_for(Duration::from_secs(20), "every report spooled", || {
        crashbox::stats().spooled == 3
    });
    drop(guard);
    let guard =
        crashbox::init(options().collector(env_var(SECOND_COLLECTOR_ENV))).expect("second init");
    report_value("flushed", crashbox::flush(Duration::from_secs(20)));
    print_stats("stats");
    drop(guard);
}

// ---------------------------------------------------------------------------
// Which collectors go through the spool.

/// A custom transport whose collector is always down.
struct Down;

impl crashbox::Transport for Down {
    fn send(&mut self, _: &[crashbox::Report]) -> Result<(), crashbox::TransportError> {
        Err(crashbox::TransportError::Retryable("down".into()))
    }
}

/// The collectors `child_collectors` tries, by label: `down:` ones are
/// network collectors (or a custom transport) that cannot deliver.
fn spooling_collectors() -> Vec<(&'static str, String)> {
    let port = refused_port();
    vec![
        ("http", http_collector(port)),
        ("sentry", sentry_collector("key", port, 1)),
        ("otlp", otlp_collector(port)),
        ("transport", String::new()),
    ]
}

#[test]
fn network_and_file_collectors_and_custom_transports_spool_and_memory_and_stderr_do_not() {
    let root = TempDir::new("spool-collectors");
    let from_env = root.path().join("from-env");
    let out = run_ok(
        "child_collectors",
        "memory",
        root.path(),
        &[("CRASHBOX_SPOOL_DIR", from_env.clone().into())],
    );
    assert_eq!(out.value("from_env_dir"), from_env.display().to_string());
    for (label, _) in spooling_collectors() {
        let dir = root.path().join(label);
        let files = report_files(&dir);
        assert_eq!(files.len(), 1, "{label}: {files:?}\n{}", out.dump());
        assert_eq!(id_in_name(&files[0]), out.value(label), "{label}");
    }
    // Memory and stderr use no spool unless a spool_dir is given; a file
    // keeps its reports in one until they are written.
    assert_eq!(out.value("memory"), "None");
    assert_eq!(out.value("stderr"), "None");
    assert!(
        out.value("file").contains("/crashbox/spool-"),
        "{}",
        out.value("file")
    );
    assert_eq!(
        out.value("memory_with_dir"),
        format!("{:?}", Some(root.path().join("memory")))
    );
    // A network collector without spool_dir uses `$XDG_STATE_HOME/crashbox/<program>`.
    let default = out.value("default_dir");
    assert!(
        default.contains("crashbox-test-") && default.contains("/crashbox/spool-"),
        "{default}"
    );
}

/// Run by `network_and_file_collectors_and_custom_transports_spool_and_memory_and_stderr_do_not`.
#[test]
fn child_collectors() {
    if !is_child() {
        return;
    }
    let root = PathBuf::from(env_var(SPOOL_ENV));
    let fast = |options: Options| {
        options
            .retry_backoff(Duration::from_millis(20), Duration::from_millis(100))
            .max_attempts(1)
            .shutdown_timeout(Duration::from_millis(500))
    };
    for (n, (label, collector)) in spooling_collectors().into_iter().enumerate() {
        let options = match label {
            "transport" => Options::new().transport(Down),
            _ => Options::new().collector(collector),
        };
        let guard = crashbox::init(fast(options).spool_dir(root.join(label))).expect(label);
        let id = crashbox::capture_message(format!("via {label}"), Level::Error).expect(label);
        report_value(label, id);
        wait_for(Duration::from_secs(20), label, || {
            crashbox::stats().spooled == n as u64 + 1
        });
        drop(guard);
    }
    let jsonl = root.join("reports.jsonl");
    for (label, collector) in [
        ("memory", "memory".to_owned()),
        ("stderr", "stderr".to_owned()),
        ("file", common::file_collector(&jsonl)),
    ] {
        let guard = crashbox::init(Options::new().collector(collector)).expect(label);
        report_value(label, format!("{:?}", crashbox::spool_dir()));
        drop(guard);
    }
    let guard = crashbox::init(
        Options::new()
            .collector("memory")
            .spool_dir(root.join("memory")),
    )
    .expect("memory with a spool_dir");
    report_value("memory_with_dir", format!("{:?}", crashbox::spool_dir()));
    drop(guard);
    let guard = crashbox::init(fast(
        Options::new().collector(spooling_collectors()[0].1.clone()),
    ))
    .expect("default spool");
    report_value("default_dir", crashbox::spool_dir().unwrap().display());
    drop(guard);
    let guard = crashbox::init(fast(
        Options::from_env().collector(spooling_collectors()[0].1.clone()),
    ))
    .expect("CRASHBOX_SPOOL_DIR");
    report_value("from_env_dir", crashbox::spool_dir().unwrap().display());
    drop(guard);
}
