//! The panic hook `init` installs: what a panic report holds, that the hook
//! installed before it keeps running, and that a panicking `Display` inside a
//! capture is contained.
//!
//! The hook is per process, so each scenario runs in a child process that
//! writes to a `file://` collector the parent reads.

use crate::util::errors::panic_text;
use crate::util::{
    assert_child, child, child_file_collector, read_reports, report_value, run_writing_to,
    temp_reports_file, without_client, ChildOutput,
};
use crashbox::{testing, Kind, Level, Options, Report};

/// What the hook installed before `init` prints to stderr.
const MARKER: &str = "PREVIOUS-HOOK-RAN";

/// Runs `child_panic_on_named_thread` and returns its output and reports.
fn run_panic_child() -> (ChildOutput, Vec<Report>) {
    let (_dir, path) = temp_reports_file("panic");
    let out = run_writing_to(&child!(child_panic_on_named_thread), &path);
    let reports = read_reports(&path);
    (out, reports)
}

/// The single panic report, by its payload.
#[track_caller]
fn panic_report<'a>(out: &ChildOutput, reports: &'a [Report]) -> &'a Report {
    let payload = out.value("payload");
    let matching: Vec<&Report> = reports.iter().filter(|r| r.message == payload).collect();
    assert_eq!(
        matching.len(),
        1,
        "expected one report with message {payload:?}, got {reports:#?}\n{}",
        out.dump()
    );
    matching[0]
}

#[test]
fn panic_report_is_fatal_with_payload_location_and_thread_name() {
    let (out, reports) = run_panic_child();
    let report = panic_report(&out, &reports);
    assert_eq!(report.level, Level::Fatal);
    assert_eq!(report.kind, Kind::Panic);
    assert!(report.message.starts_with("ingest batch is empty (line "));
    assert_eq!(report.exceptions.len(), 1);
    assert_eq!(report.exceptions[0].message, report.message);
    let location = report.location.as_ref().expect("a panic location");
    assert!(
        location.file.ends_with("tests/capture/panic_hook.rs"),
        "{}",
        location.file
    );
    assert_eq!(location.line.to_string(), out.value("panic_line"));
    assert_eq!(report.thread.name.as_deref(), Some("ingest"));
}

#[test]
fn panic_report_frames_start_at_the_panicking_closure() {
    let (out, reports) = run_panic_child();
    let report = panic_report(&out, &reports);
    let first = report.frames.first().expect("frames");
    let function = first.function.as_deref().unwrap_or("<none>");
    assert!(
        function.starts_with("tests::capture::panic_hook::child_panic_on_named_thread"),
        "frames[0] should be the test's closure, got {function}\n{:#?}",
        report.frames
    );
    assert!(first.in_app, "{first:?}");
    assert!(
        first
            .file
            .as_deref()
            .is_some_and(|f| f.ends_with("tests/capture/panic_hook.rs")),
        "{first:?}"
    );
    let machinery = ["crashbox::", "std::panicking", "core::panicking"];
    for frame in report.frames.iter().take_while(|f| !f.in_app) {
        let name = frame.function.as_deref().unwrap_or("");
        assert!(
            !machinery.iter().any(|m| name.contains(m)),
            "machinery frame {name} before the first in-app frame"
        );
    }
}

#[test]
fn hook_installed_before_init_still_runs_for_each_panic() {
    let (out, reports) = run_panic_child();
    let payload = out.value("payload");
    assert!(
        out.stderr.contains(&format!("{MARKER}: {payload}")),
        "the previous hook should have seen the reported panic\n{}",
        out.dump()
    );
    assert!(
        out.stderr
            .contains(&format!("{MARKER}: panic after the guard was dropped")),
        "the previous hook should still run once crashbox is shut down\n{}",
        out.dump()
    );
    assert!(
        !reports
            .iter()
            .any(|r| r.message.contains("after the guard was dropped")),
        "a panic after shutdown must not be reported: {reports:#?}"
    );
}

/// Run by the `panic_report_*` and `hook_installed_before_init_*` tests.
#[test]
#[ignore = "child process of the callers of `run_panic_child`"]
fn child_panic_on_named_thread() {
    assert_child();
    std::panic::set_hook(Box::new(|info| {
        let payload = panic_text(info.payload()).unwrap_or_default();
        eprintln!("{MARKER}: {payload}");
    }));
    let guard = crashbox::init(Options::new().collector(child_file_collector())).expect("init");
    let joined = std::thread::Builder::new()
        .name("ingest".into())
        .spawn(|| {
            panic!("ingest batch is empty (line {})", line!());
        })
        .unwrap()
        .join();
    let payload = joined.expect_err("the thread panicked");
    // `line!()` is a literal, so the message may be a `&'static str` payload.
    let payload = panic_text(&*payload).expect("a text payload");
    report_value("payload", &payload);
    let line = payload
        .trim_end_matches(')')
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    report_value("panic_line", line);
    drop(guard);

    let after = std::thread::spawn(|| panic!("panic after the guard was dropped")).join();
    assert!(after.is_err());
}

// ---------------------------------------------------------------------------

/// An error whose `Display` panics.
#[derive(Debug)]
struct PanickyDisplay;

impl std::fmt::Display for PanickyDisplay {
    fn fmt(&self, _f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("display exploded");
    }
}

impl std::error::Error for PanickyDisplay {}

#[test]
fn a_panicking_display_in_capture_error_is_contained_and_reported() {
    let (_dir, path) = temp_reports_file("display");
    let out = run_writing_to(&child!(child_panicking_display), &path);
    assert_eq!(out.value("after"), "still running", "{}", out.dump());
    let reports = read_reports(&path);
    assert_eq!(reports.len(), 2, "{reports:#?}\n{}", out.dump());
    let report = reports
        .iter()
        .find(|r| r.kind == Kind::Error)
        .expect("the error report");
    assert_eq!(report.id.to_hex(), out.value("id"));
    let text = &report.exceptions[0].message;
    assert!(
        text.contains("Display panicked") && text.contains("display exploded"),
        "{text}"
    );
    assert!(report.message.contains("Display panicked"), "{report:#?}");
    assert!(
        !reports.iter().any(|r| r.kind == Kind::Panic),
        "crashbox's own contained panic must not become a panic report"
    );
    assert!(
        reports
            .iter()
            .any(|r| r.message == "captured after the Display panic"),
        "{reports:#?}"
    );
}

/// Run by `a_panicking_display_in_capture_error_is_contained_and_reported`.
#[test]
#[ignore = "child process of `a_panicking_display_in_capture_error_is_contained_and_reported`"]
fn child_panicking_display() {
    assert_child();
    let guard = crashbox::init(Options::new().collector(child_file_collector())).expect("init");
    let id = crashbox::capture_error(&PanickyDisplay).expect("captured despite the panic");
    report_value("id", id);
    crashbox::capture_message("captured after the Display panic", Level::Info)
        .expect("still capturing");
    report_value("after", "still running");
    drop(guard);
}

// ---------------------------------------------------------------------------
// Through `testing::capture`, which installs the same hook and binds a
// private collector to the thread: no child process needed.

#[test]
fn a_runtime_formatted_panic_message_is_the_report_message() {
    let _turn = without_client();
    let n = std::hint::black_box(7);
    let ((), reports) = testing::capture(|| {
        let _ = std::panic::catch_unwind(|| panic!("item {n} is missing"));
    });
    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert_eq!(reports[0].message, "item 7 is missing");
    assert_eq!(reports[0].exceptions[0].ty, "panic");
}

#[test]
fn a_non_string_panic_payload_is_still_reported() {
    let _turn = without_client();
    let ((), reports) = testing::capture(|| {
        let _ = std::panic::catch_unwind(|| std::panic::panic_any(42_u32));
    });
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].kind, Kind::Panic);
    assert!(!reports[0].message.is_empty());
}

#[inline(never)]
fn first_of(batch: &[u32]) -> u32 {
    *batch.first().expect("batch must not be empty")
}

#[test]
fn an_expect_panic_report_starts_at_the_caller_not_in_core() {
    let _turn = without_client();
    let ((), reports) = testing::capture(|| {
        let _ = std::panic::catch_unwind(|| first_of(&[]));
    });
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!(report.message, "batch must not be empty");
    let top = report.frames[0].function.as_deref().unwrap_or("");
    assert!(
        top.ends_with("first_of"),
        "frames[0] should be the function that called expect, got {top}\n{:#?}",
        report.frames
    );
    assert!(report
        .location
        .as_ref()
        .unwrap()
        .file
        .ends_with("panic_hook.rs"));
}

#[test]
fn a_panic_stays_fatal_whatever_the_scope_level() {
    let _turn = without_client();
    let ((), reports) = testing::capture(|| {
        crashbox::configure_scope(|scope| scope.set_level(Some(Level::Info)));
        crashbox::capture_message("follows the scope", Level::Error);
        let _ = std::panic::catch_unwind(|| panic!("still fatal"));
    });
    assert_eq!(reports.len(), 2);
    assert_eq!(
        reports[0].level,
        Level::Info,
        "messages take the scope's level"
    );
    assert_eq!(reports[1].level, Level::Fatal);
}
