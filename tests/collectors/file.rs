//! The `file:///path.jsonl` collector: directory creation, whole lines under
//! concurrency, and the documented JSON schema of each line.
//!
//! Each scenario calls `init`, so it runs in a child process; the parent
//! reads the file the child wrote.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use crate::util;
use crate::util::errors;
use crate::util::{
    assert_child, assert_keys, child, child_file_collector, is_lower_hex_32, is_rfc3339_utc_millis,
    one_by_one, read_lines, read_reports, report_value, run_writing_to, temp_reports_file, TempDir,
    BREADCRUMB_KEYS, CONTEXT_KEYS, EXCEPTION_KEYS, FRAME_KEYS, LOCATION_KEYS, REPORT_KEYS,
    THREAD_KEYS,
};
use crashbox::{Breadcrumb, Level, Options, User};
use serde_json::Value;

// ---------------------------------------------------------------------------

#[test]
fn file_collector_creates_missing_parent_directories() {
    let dir = TempDir::new("nested");
    let path = dir.path().join("nested/dir/reports.jsonl");
    assert!(!path.parent().unwrap().exists());
    let out = run_writing_to(&child!(child_write_one_report), &path);
    let reports = read_reports(&path);
    assert_eq!(reports.len(), 1, "{}", out.dump());
    assert_eq!(reports[0].message, "into a directory that did not exist");
    assert_eq!(reports[0].id.to_hex(), out.value("id"));
}

/// Run by `file_collector_creates_missing_parent_directories`.
#[test]
#[ignore = "child process of `file_collector_creates_missing_parent_directories`"]
fn child_write_one_report() {
    assert_child();
    let guard = crashbox::init(Options::new().collector(child_file_collector())).expect("init");
    let id = crashbox::capture_message("into a directory that did not exist", Level::Info)
        .expect("captured");
    report_value("id", id);
    drop(guard);
}

// ---------------------------------------------------------------------------

const THREADS: usize = 8;
const PER_THREAD: usize = 200;

#[test]
fn concurrent_captures_from_8_threads_write_1600_whole_distinct_lines() {
    let (_dir, path) = temp_reports_file("concurrent");
    let out = run_writing_to(&child!(child_concurrent_captures), &path);
    assert_eq!(out.value("dropped"), "0", "{}", out.dump());

    let lines = read_lines(&path);
    assert_eq!(lines.len(), THREADS * PER_THREAD);
    let mut ids = HashSet::new();
    let mut messages = HashSet::new();
    for line in &lines {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a whole JSON line ({e}): {line}"));
        assert!(value.is_object(), "{line}");
        let report: crashbox::Report =
            serde_json::from_value(value).unwrap_or_else(|e| panic!("not a Report ({e}): {line}"));
        let hex = report.id.to_hex();
        assert!(is_lower_hex_32(&hex), "{hex}");
        assert!(line.contains(&format!("\"id\":\"{hex}\"")), "{line}");
        assert!(ids.insert(hex), "duplicate id in {line}");
        assert!(messages.insert(report.message.clone()), "duplicate message");
    }
    let expected: HashSet<String> = (0..THREADS)
        .flat_map(|t| (0..PER_THREAD).map(move |i| format!("thread {t} capture {i}")))
        .collect();
    assert_eq!(messages, expected);
    let returned: HashSet<String> = out.values("id").into_iter().collect();
    assert_eq!(
        returned, ids,
        "the ids capture_message returned must be the ids written"
    );
}

/// Run by `concurrent_captures_from_8_threads_write_1600_whole_distinct_lines`.
#[test]
#[ignore = "child process of `concurrent_captures_from_8_threads_write_1600_whole_distinct_lines`"]
fn child_concurrent_captures() {
    assert_child();
    let guard = crashbox::init(
        one_by_one(Options::new())
            .collector(child_file_collector())
            // Room for every capture: this test is about the file, not the queue.
            .queue_capacity(4 * THREADS * PER_THREAD)
            .shutdown_timeout(Duration::from_secs(60)),
    )
    .expect("init");
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                (0..PER_THREAD)
                    .map(|i| {
                        crashbox::capture_message(format!("thread {t} capture {i}"), Level::Info)
                            .expect("captured")
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for handle in handles {
        for id in handle.join().unwrap() {
            report_value("id", id);
        }
    }
    drop(guard);
    report_value("dropped", crashbox::stats().dropped());
}

// ---------------------------------------------------------------------------

errors::test_error! {
    /// An error with a cause, so `exceptions` has two links.
    LoadError => "could not load the ledger", source: io::Error
}

#[track_caller]
fn object<'a>(value: &'a Value, key: &str) -> &'a serde_json::Map<String, Value> {
    value
        .get(key)
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("`{key}` should be an object in {value}"))
}

#[test]
fn each_line_carries_every_documented_schema_field() {
    let (_dir, path) = temp_reports_file("schema");
    let out = run_writing_to(&child!(child_rich_report), &path);
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 1, "{}", out.dump());
    let v: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_keys(&v, REPORT_KEYS, "report");

    assert!(is_lower_hex_32(v["id"].as_str().unwrap()), "{}", v["id"]);
    let timestamp = v["timestamp"].as_str().unwrap();
    assert!(is_rfc3339_utc_millis(timestamp), "{timestamp}");
    assert_eq!(v["level"], "error");
    assert_eq!(v["kind"], "error");
    assert_eq!(v["message"], "could not load the ledger");

    let exceptions = v["exceptions"].as_array().unwrap();
    assert_eq!(exceptions.len(), 2, "{exceptions:?}");
    for e in exceptions {
        assert_keys(e, EXCEPTION_KEYS, "exception");
    }
    assert!(exceptions[0]["type"]
        .as_str()
        .unwrap()
        .ends_with("LoadError"));
    assert_eq!(exceptions[1]["type"], "std::io::Error");
    assert_eq!(exceptions[1]["message"], "ledger.db is missing");

    let frames = v["frames"].as_array().unwrap();
    assert!(!frames.is_empty());
    for f in frames {
        assert_keys(f, FRAME_KEYS, "frame");
        assert!(f["in_app"].is_boolean());
        assert!(f["address"].as_str().unwrap().starts_with("0x"), "{f}");
    }

    assert_keys(&v["location"], LOCATION_KEYS, "location");
    let location = object(&v, "location");
    assert!(location["file"]
        .as_str()
        .unwrap()
        .ends_with("tests/collectors/file.rs"));
    assert_eq!(
        location["line"].as_u64().unwrap().to_string(),
        out.value("capture_line")
    );

    assert_keys(&v["thread"], THREAD_KEYS, "thread");
    let thread = object(&v, "thread");
    assert_eq!(thread["name"], "schema-writer");
    assert!(thread["id"].as_u64().unwrap() > 0);

    assert_eq!(object(&v, "tags")["component"], "ledger");
    assert_eq!(object(&v, "extra")["attempt"], 3);
    assert_eq!(object(&v, "user")["id"], "user-7");
    let crumbs = v["breadcrumbs"].as_array().unwrap();
    assert_eq!(crumbs.len(), 1);
    assert_keys(&crumbs[0], BREADCRUMB_KEYS, "breadcrumb");
    assert_eq!(crumbs[0]["message"], "opened the ledger");
    assert_eq!(crumbs[0]["category"], "io");
    assert!(is_rfc3339_utc_millis(
        crumbs[0]["timestamp"].as_str().unwrap()
    ));

    assert_keys(&v["context"], CONTEXT_KEYS, "context");
    let context = object(&v, "context");
    assert_eq!(context["arch"], std::env::consts::ARCH);
    assert_eq!(
        context["executable"].as_str().map(Path::new),
        Some(std::env::current_exe().unwrap().as_path()),
        "the child is this test binary"
    );
    assert_eq!(
        context["pid"].as_u64().unwrap().to_string(),
        out.value("pid"),
        "the child's pid"
    );
    assert!(context["rustc"].as_str().unwrap().starts_with("rustc "));

    assert_eq!(v["release"], "schema-app@0.9.0");
    assert_eq!(v["environment"], "schema-test");
    let sdk = object(&v, "sdk");
    assert_eq!(sdk["name"], "crashbox");
    assert_eq!(sdk["version"], env!("CARGO_PKG_VERSION"));

    // And the line reads back as a Report equal in content.
    let report: crashbox::Report = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(report.to_json(), lines[0]);
}

/// Run by `each_line_carries_every_documented_schema_field`.
#[test]
#[ignore = "child process of `each_line_carries_every_documented_schema_field`"]
fn child_rich_report() {
    assert_child();
    let guard = crashbox::init(
        Options::new()
            .collector(child_file_collector())
            .release("schema-app@0.9.0")
            .environment("schema-test"),
    )
    .expect("init");
    crashbox::configure_scope(|scope| {
        scope.set_tag("component", "ledger");
        scope.set_extra("attempt", 3);
        scope.set_user(Some(User::with_id("user-7")));
    });
    crashbox::add_breadcrumb(Breadcrumb::new("opened the ledger").category("io"));
    std::thread::Builder::new()
        .name("schema-writer".into())
        .spawn(|| {
            let err = LoadError::new(std::io::ErrorKind::NotFound, "ledger.db is missing");
            let line = line!() + 1;
            crashbox::capture_error(&err).expect("captured");
            report_value("capture_line", line);
        })
        .unwrap()
        .join()
        .unwrap();
    report_value("pid", std::process::id());
    drop(guard);
}

// ---------------------------------------------------------------------------
// A file that cannot be written. A regular file stands where the reports'
// directory should be: that fails for every user, root included (a
// read-only directory would not stop root).

/// The lines of `stderr` saying that a file collector cannot be written.
fn unwritable_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| line.contains("not writable"))
        .collect()
}

/// Panics, showing the child's output, unless its stderr has exactly one
/// line saying that `path` cannot be written and what becomes of the
/// reports. Returns that line.
#[track_caller]
fn assert_said_once(out: &util::ChildOutput, path: &std::path::Path) -> String {
    let lines = unwritable_lines(&out.stderr);
    assert_eq!(lines.len(), 1, "{}", out.dump());
    let line = lines[0];
    let expected_start = format!(
        "crashbox: file collector {} is not writable: ",
        path.display()
    );
    assert!(line.starts_with(&expected_start), "{line}");
    assert!(
        line.contains("spool"),
        "says what becomes of the reports: {line}"
    );
    line.to_owned()
}

#[test]
fn a_file_collector_under_a_regular_file_is_said_once_at_init_and_exit_stays_prompt() {
    let dir = TempDir::new("unwritable-init");
    let blocker = dir.path().join("afile");
    std::fs::write(&blocker, "").unwrap();
    let path = blocker.join("reports.jsonl");
    let out = run_writing_to(&child!(child_capture_into_unwritable_file), &path);
    eprintln!(
        "child with an unwritable file collector exited after {:?}",
        out.elapsed
    );
    let line = assert_said_once(&out, &path);
    assert!(
        line.contains(&format!("{} is not a directory", blocker.display())),
        "{line}"
    );
    assert_eq!(out.value("captured"), "true", "{}", out.dump());
    // A file collector keeps its reports in the spool until the file can be
    // written: nothing is dropped.
    assert_eq!(out.value("dropped"), "0", "{}", out.dump());
    assert_eq!(out.value("spooled"), "1", "{}", out.dump());
    assert!(std::fs::metadata(&blocker).unwrap().is_file(), "left alone");
    assert!(
        out.elapsed < Duration::from_secs(10),
        "exit took {:?}\n{}",
        out.elapsed,
        out.dump()
    );
}

/// Run by `a_file_collector_under_a_regular_file_is_said_once_at_init_and_exit_stays_prompt`.
#[test]
#[ignore = "child process of `a_file_collector_under_a_regular_file_is_said_once_at_init_and_exit_stays_prompt`"]
fn child_capture_into_unwritable_file() {
    assert_child();
    let guard = crashbox::init(Options::new().collector(child_file_collector())).expect("init");
    let err = LoadError::new(std::io::ErrorKind::NotFound, "ledger.db is missing");
    report_value("captured", crashbox::capture_error(&err).is_some());
    drop(guard);
    report_value("dropped", crashbox::stats().dropped());
    report_value("spooled", crashbox::stats().spooled);
}

#[test]
fn a_file_collector_that_becomes_unwritable_is_said_once_on_the_first_failed_write() {
    let dir = TempDir::new("unwritable-later");
    // The child makes `later` a regular file after init.
    let later = dir.path().join("later");
    let path = later.join("reports.jsonl");
    let out = run_writing_to(
        &child!(child_capture_after_the_file_became_unwritable),
        &path,
    );
    eprintln!(
        "child whose file collector became unwritable exited after {:?}",
        out.elapsed
    );
    let line = assert_said_once(&out, &path);
    assert!(
        line.contains(&format!("{} is not a directory", later.display())),
        "{line}"
    );
    // Each of the 3 reports failed its 3 attempts: 9 failed writes, one line.
    assert_eq!(out.value("retries"), "6", "{}", out.dump());
    assert_eq!(out.value("dropped"), "3", "{}", out.dump());
    assert!(
        out.elapsed < Duration::from_secs(10),
        "exit took {:?}\n{}",
        out.elapsed,
        out.dump()
    );
}

/// Run by `a_file_collector_that_becomes_unwritable_is_said_once_on_the_first_failed_write`.
#[test]
#[ignore = "child process of `a_file_collector_that_becomes_unwritable_is_said_once_on_the_first_failed_write`"]
fn child_capture_after_the_file_became_unwritable() {
    assert_child();
    let guard = crashbox::init(
        one_by_one(Options::new())
            .collector(child_file_collector())
            .spool(false)
            .retry_backoff(Duration::from_millis(20), Duration::from_millis(50))
            .max_attempts(3),
    )
    .expect("init");
    let path = std::path::PathBuf::from(util::env_var(util::REPORTS_ENV));
    std::fs::write(path.parent().unwrap(), "").unwrap();
    for i in 0..3u64 {
        let err = LoadError::new(
            std::io::ErrorKind::NotFound,
            &format!("ledger {i} is missing"),
        );
        assert!(crashbox::capture_error(&err).is_some());
        // One report at a time: each meets every attempt on its own.
        util::wait_for_stats(Duration::from_secs(60), |s| s.dropped_retries_exhausted > i);
    }
    let stats = crashbox::stats();
    drop(guard);
    report_value("retries", stats.retries);
    report_value("dropped", crashbox::stats().dropped());
}
