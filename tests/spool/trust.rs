//! A spool directory crashbox can trust: one another user owns, or one
//! still open to others, is refused (reporting goes on without a spool);
//! FIFOs, symbolic links and oversized files planted under spool names are
//! neither followed, nor waited on, nor loaded whole; and what a replay
//! reads is scrubbed and cut to the limits like a fresh capture.
//!
//! Every run of the program is a child process (`util::run_child`)
//! reporting to a loopback HTTP collector in the parent, on a spool
//! directory the parent prepared.

use std::collections::BTreeMap;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::util::http_server::Server;
use crate::util::{
    assert_child, child, child_collector, env_var, file_collector, http_collector, one_by_one,
    print_stats, read_reports, report_value, run_against, stats_with, temp_reports_file,
    ChildOutput, TempDir,
};
use crashbox::{Level, Options};
use serde_json::{json, Value};

/// The child's spool directory.
const SPOOL_ENV: &str = "CRASHBOX_TEST_SPOOL";

/// Owner tokens no live process can have: their pids are above Linux's
/// largest `pid_max` (2^22).
const DEAD_OWNER: &str = "4194999_1";
const OTHER_DEAD_OWNER: &str = "4194998_2";

/// What the child captures itself, next to whatever it replays.
const FRESH: &str = "captured by this run";

/// A password the scrubber recognises by its `password=` shape.
const SECRET: &str = "hunter2";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(
        rc,
        0,
        "mkfifo {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// A report id that says which test planted it.
fn planted_id(tag: u32, n: u32) -> String {
    format!("{tag:08x}{n:024x}")
}

/// The name a process that is gone would have given a report captured at `ms`.
fn orphan_name(owner: &str, ms: u64, id: &str) -> String {
    format!("{ms:016}-{id}.{owner}.report")
}

/// A finished report as the spool stores it: a real `crashbox::Report`,
/// captured through the test helper, with id `id` and message `message`.
fn report_entry(id: &str, message: &str) -> Value {
    let (_, reports) = crashbox::testing::capture(|| {
        crashbox::capture_message("template", Level::Warning);
    });
    let mut entry = serde_json::to_value(&reports[0]).unwrap();
    entry["id"] = id.into();
    entry["message"] = message.into();
    entry["type"] = "report".into();
    entry
}

/// A spool file's bytes for `entry`.
fn spool_bytes(entry: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"format": 1, "entry": entry})).unwrap()
}

fn plant(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Every report the collector acknowledged, by message.
fn delivered(server: &Server) -> BTreeMap<String, Value> {
    server
        .requests()
        .iter()
        .filter(|r| r.acknowledged())
        .flat_map(|r| r.json().as_array().expect("a JSON array").clone())
        .map(|report| (report["message"].as_str().unwrap().to_owned(), report))
        .collect()
}

fn stats(out: &ChildOutput) -> BTreeMap<String, u64> {
    stats_with(out, "stats", "spool_refused")
}

/// Runs `child_report` on `spool` against `server`.
#[track_caller]
fn run(server: &Server, spool: &Path) -> ChildOutput {
    run_against(
        &child!(child_report),
        &http_collector(server.port()),
        &[(SPOOL_ENV, spool.into())],
    )
}

/// Calls `init` on the parent's spool and collector (timing it), captures
/// [`FRESH`], waits until everything (the replay too) is delivered, and
/// prints what happened.
#[test]
#[ignore = "child process of the callers of `run` and `an_explicit_spool_dir_that_cannot_be_used_does_not_fail_init`"]
fn child_report() {
    assert_child();
    let options = one_by_one(Options::new())
        .collector(child_collector())
        .spool_dir(env_var(SPOOL_ENV))
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(100))
        .max_attempts(3);
    let start = Instant::now();
    let guard = crashbox::init(options).expect("init never fails for the spool's sake");
    report_value("init_ms", start.elapsed().as_millis());
    report_value(
        "spool_dir",
        crashbox::spool_dir().map_or("none".to_owned(), |d| d.display().to_string()),
    );
    crashbox::capture_message(FRESH, Level::Error).expect("captured");
    report_value("flushed", crashbox::flush(Duration::from_secs(60)));
    print_stats("stats");
    drop(guard);
}

// ---------------------------------------------------------------------------
// The directory itself.

#[test]
fn a_directory_open_to_everyone_but_owned_by_this_user_is_tightened_and_used() {
    let root = TempDir::new("trust-0777");
    let spool = root.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(mode(&spool), 0o777);
    let server = Server::start();
    let out = run(&server, &spool);
    assert_eq!(out.value("spool_dir"), spool.display().to_string());
    assert_eq!(mode(&spool), 0o700, "chmod'ed to owner only");
    let stats = stats(&out);
    assert_eq!(stats["spool_refused"], 0, "{}", out.dump());
    assert!(delivered(&server).contains_key(FRESH));
    assert!(
        !out.stderr.contains("not using spool directory"),
        "{}",
        out.dump()
    );
}

#[test]
fn a_directory_owned_by_another_user_is_refused_and_reports_still_go_out() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: giving a directory to another user needs root");
        return;
    }
    let root = TempDir::new("trust-foreign");
    let spool = root.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o700)).unwrap();
    // `nobody` on most systems.
    const NOBODY: u32 = 65534;
    std::os::unix::fs::chown(&spool, Some(NOBODY), Some(NOBODY)).unwrap();
    // A report planted there must not be replayed by this user.
    let id = planted_id(0x7a00_0001, 1);
    plant(
        &spool,
        &orphan_name(DEAD_OWNER, now_ms() - 1000, &id),
        &spool_bytes(report_entry(&id, "planted by another user")),
    );
    let server = Server::start();
    let out = run(&server, &spool);
    assert_eq!(out.value("spool_dir"), "none", "{}", out.dump());
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let stats = stats(&out);
    assert_eq!(stats["spool_refused"], 1, "{stats:?}");
    assert_eq!(stats["replayed"], 0, "{stats:?}");
    let line = format!("not using spool directory {}", spool.display());
    let said: Vec<&str> = out.stderr.lines().filter(|l| l.contains(&line)).collect();
    assert_eq!(said.len(), 1, "{}", out.dump());
    assert!(
        said[0].contains(&format!("owned by uid {NOBODY}")),
        "{}",
        said[0]
    );
    let delivered = delivered(&server);
    assert!(delivered.contains_key(FRESH), "{delivered:?}");
    assert!(!delivered.contains_key("planted by another user"));
    // Nothing was written into it.
    let names: Vec<_> = std::fs::read_dir(&spool).unwrap().flatten().collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn an_explicit_spool_dir_that_cannot_be_used_does_not_fail_init() {
    let root = TempDir::new("trust-file");
    let not_a_dir = plant(root.path(), "spool", b"a regular file");
    let (_reports_dir, reports) = temp_reports_file("trust-file-reports");
    let out = run_against(
        &child!(child_report),
        &file_collector(&reports),
        &[(SPOOL_ENV, OsString::from(&not_a_dir))],
    );
    assert_eq!(out.value("spool_dir"), "none", "{}", out.dump());
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let stats = stats(&out);
    assert_eq!(stats["spool_refused"], 1, "{stats:?}");
    assert_eq!(stats["sent"], 1, "{stats:?}");
    let line = format!("not using spool directory {}", not_a_dir.display());
    assert_eq!(
        out.stderr.lines().filter(|l| l.contains(&line)).count(),
        1,
        "{}",
        out.dump()
    );
    let delivered = read_reports(&reports);
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].message, FRESH);
    assert_eq!(std::fs::read(&not_a_dir).unwrap(), b"a regular file");
}

// ---------------------------------------------------------------------------
// Files planted under spool names.

#[test]
fn a_fifo_planted_as_run_state_does_not_block_init() {
    let spool = TempDir::new("trust-run-state");
    std::fs::set_permissions(spool.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let run_state = spool.path().join("run-state.json");
    mkfifo(&run_state);
    let server = Server::start();
    // A blocked init would hang the child: `run_child` kills it after two
    // minutes and fails; a working one returns in well under a second.
    let out = run(&server, spool.path());
    let init_ms = out.number("init_ms");
    assert!(init_ms < 10_000, "init took {init_ms} ms");
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    assert!(delivered(&server).contains_key(FRESH));
    let meta = std::fs::symlink_metadata(&run_state).unwrap();
    assert!(meta.is_file(), "the FIFO was replaced by the run state");
    assert_eq!(mode(&run_state), 0o600);
}

#[test]
fn fifos_planted_as_a_dead_owners_lock_report_and_spare_do_not_wedge_the_worker() {
    let spool = TempDir::new("trust-fifos");
    let dir = spool.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let ms = now_ms() - 10_000;
    let good: Vec<String> = (0..3)
        .map(|i| {
            let id = planted_id(0x7a00_0002, i);
            let message = format!("orphan {i}");
            plant(
                dir,
                &orphan_name(DEAD_OWNER, ms + u64::from(i), &id),
                &spool_bytes(report_entry(&id, &message)),
            );
            message
        })
        .collect();
    // The dead owner's lock, another dead owner's report and spare file.
    mkfifo(&dir.join(format!("{DEAD_OWNER}.lock")));
    mkfifo(&dir.join(orphan_name(
        OTHER_DEAD_OWNER,
        ms + 5,
        &planted_id(0x7a00_0002, 9),
    )));
    mkfifo(&dir.join(format!("{OTHER_DEAD_OWNER}-0.spare")));
    let server = Server::start();
    let out = run(&server, dir);
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let delivered = delivered(&server);
    for message in good.iter().map(String::as_str).chain([FRESH]) {
        assert!(
            delivered.contains_key(message),
            "{message} missing: {delivered:?}"
        );
    }
    let stats = stats(&out);
    assert_eq!(stats["replayed"], 3, "{stats:?}");
    assert_eq!(
        stats["spool_corrupt"], 2,
        "the FIFO report and spare: {stats:?}"
    );
    // The planted lock is gone with its owner; the FIFOs are set aside.
    assert!(std::fs::symlink_metadata(dir.join(format!("{DEAD_OWNER}.lock"))).is_err());
    assert_eq!(std::fs::read_dir(dir.join("corrupt")).unwrap().count(), 2);
}

#[test]
fn a_symlink_planted_as_a_report_is_not_followed() {
    let spool = TempDir::new("trust-symlink");
    let elsewhere = TempDir::new("trust-symlink-target");
    let dir = spool.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let id = planted_id(0x7a00_0003, 1);
    let bytes = spool_bytes(report_entry(&id, "read through a link"));
    let target = plant(elsewhere.path(), "target.json", &bytes);
    let link = dir.join(orphan_name(DEAD_OWNER, now_ms() - 1000, &id));
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let server = Server::start();
    let out = run(&server, dir);
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let delivered = delivered(&server);
    assert!(delivered.contains_key(FRESH));
    assert!(
        !delivered.contains_key("read through a link"),
        "{delivered:?}"
    );
    let stats = stats(&out);
    assert_eq!(stats["replayed"], 0, "{stats:?}");
    assert_eq!(stats["spool_corrupt"], 1, "{stats:?}");
    assert_eq!(std::fs::read(&target).unwrap(), bytes, "target untouched");
}

// ---------------------------------------------------------------------------
// What a replay reads.

#[test]
fn planted_reports_are_held_to_the_size_limits() {
    let spool = TempDir::new("trust-size");
    let dir = spool.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let ms = now_ms() - 10_000;
    // Far over any spool file crashbox writes: set aside unread.
    let huge_id = planted_id(0x7a00_0004, 1);
    let mut huge = report_entry(&huge_id, "huge");
    huge["extra"] = json!({"blob": "x".repeat(8 << 20)});
    plant(
        dir,
        &orphan_name(DEAD_OWNER, ms, &huge_id),
        &spool_bytes(huge),
    );
    // Readable, but over the report limit and with an overlong message.
    let big_id = planted_id(0x7a00_0004, 2);
    let mut big = report_entry(&big_id, &"m".repeat(100_000));
    big["extra"] = json!({"a": "y".repeat(600_000), "b": "z".repeat(600_000)});
    plant(
        dir,
        &orphan_name(DEAD_OWNER, ms + 1, &big_id),
        &spool_bytes(big),
    );
    let server = Server::start();
    let out = run(&server, dir);
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let stats = stats(&out);
    assert_eq!(stats["spool_corrupt"], 1, "{stats:?}");
    assert_eq!(stats["replayed"], 1, "{stats:?}");
    let delivered: Vec<Value> = delivered(&server).into_values().collect();
    assert!(delivered.iter().all(|r| r["id"] != huge_id.as_str()));
    let big = delivered
        .iter()
        .find(|r| r["id"] == big_id.as_str())
        .expect("the big report was replayed");
    let size = serde_json::to_vec(big).unwrap().len();
    assert!(size <= crashbox::limits::MAX_REPORT_BYTES, "{size} bytes");
    let message = big["message"].as_str().unwrap();
    assert!(
        message.len() <= crashbox::limits::MAX_MESSAGE_BYTES + 3,
        "{} bytes",
        message.len()
    );
    let truncated = big["truncated"].to_string();
    assert!(
        truncated.contains("message") && truncated.contains("extra"),
        "{truncated}"
    );
}

#[test]
fn planted_reports_and_captures_are_scrubbed_whatever_they_claim() {
    let spool = TempDir::new("trust-scrub");
    let dir = spool.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let ms = now_ms() - 10_000;
    let secret = format!("login with password={SECRET}");
    // A raw capture that says it was scrubbed already.
    let captured_id = planted_id(0x7a00_0005, 1);
    let captured = json!({
        "type": "captured",
        "id": captured_id,
        "timestamp_ms": ms,
        "level": "error",
        "kind": "message",
        "message": format!("capture: {secret}"),
        "exceptions": [],
        "addresses": [],
        "location": null,
        "thread": {"name": "main", "id": 1},
        "tags": {"note": secret},
        "extra": {"api_password": SECRET},
        "user": null,
        "level_override": null,
        "fingerprint": null,
        "breadcrumbs": [],
        "truncated": [],
        "scrubbed": true,
    });
    plant(
        dir,
        &orphan_name(DEAD_OWNER, ms, &captured_id),
        &spool_bytes(captured),
    );
    // A finished report.
    let report_id = planted_id(0x7a00_0005, 2);
    let mut report = report_entry(&report_id, &format!("report: {secret}"));
    report["extra"] = json!({"password": SECRET});
    plant(
        dir,
        &orphan_name(DEAD_OWNER, ms + 1, &report_id),
        &spool_bytes(report),
    );
    let server = Server::start();
    let out = run(&server, dir);
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let stats = stats(&out);
    assert_eq!(stats["spool_corrupt"], 0, "both files parse: {stats:?}");
    assert_eq!(stats["replayed"], 2, "{stats:?}");
    let delivered: Vec<Value> = delivered(&server).into_values().collect();
    for id in [&captured_id, &report_id] {
        let report = delivered
            .iter()
            .find(|r| r["id"] == id.as_str())
            .unwrap_or_else(|| panic!("{id} not delivered: {delivered:?}"));
        let text = report.to_string();
        assert!(!text.contains(SECRET), "secret left in {text}");
        assert!(
            report["message"]
                .as_str()
                .unwrap()
                .ends_with("login with password=[redacted]"),
            "{text}"
        );
    }
}
