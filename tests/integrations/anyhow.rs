//! `crashbox::anyhow` (feature `anyhow`): `capture` and `ResultExt::report`
//! for `anyhow::Error`, each context layer an exception.
use std::fmt;

use anyhow::Context;
use crashbox::anyhow::ResultExt;
use crashbox::{testing, Kind, Level, Report};

use crate::util::{assert_child, child, run_child, without_client};

/// An application error with a `Debug` named after its type.
#[derive(Debug)]
struct QuotaExceeded {
    used: u32,
}

impl fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "quota exceeded ({} used)", self.used)
    }
}

impl std::error::Error for QuotaExceeded {}

fn reports_of<R>(f: impl FnOnce() -> R) -> Vec<Report> {
    let _turn = without_client();
    testing::capture(f).1
}

fn upload() -> anyhow::Result<()> {
    let read = std::fs::read("/no/such/file").context("reading the upload");
    let _ = read.context("handling request r-7")?;
    Ok(())
}

#[test]
fn each_context_layer_is_an_exception_outer_first() {
    let mut line = 0;
    let reports = reports_of(|| {
        line = line!() + 1;
        upload().report()
    });
    assert_eq!(reports.len(), 1, "{reports:#?}");
    let report = &reports[0];
    assert_eq!(report.kind, Kind::Error);
    assert_eq!(report.level, Level::Error);
    assert_eq!(report.message, "handling request r-7");
    assert_eq!(
        report.exception_types(),
        ["anyhow::Error", "anyhow::Error", "std::io::Error"]
    );
    assert_eq!(report.exceptions[1].message, "reading the upload");
    // The report site is the location.
    let location = report.location.as_ref().expect("a location");
    assert!(location.file.ends_with("anyhow.rs"), "{}", location.file);
    assert_eq!(location.line, line);
}

#[test]
fn a_wrapped_application_error_keeps_its_type_name_and_a_message_is_named_by_anyhow() {
    let reports = reports_of(|| {
        let quota = anyhow::Error::new(QuotaExceeded { used: 12 });
        crashbox::anyhow::capture(&quota);
        crashbox::anyhow::capture(&anyhow::anyhow!("no route to {}", "db-1"));
    });
    assert_eq!(reports.len(), 2, "{reports:#?}");
    assert_eq!(reports[0].exception_types(), ["QuotaExceeded"]);
    assert_eq!(reports[0].message, "quota exceeded (12 used)");
    assert_eq!(reports[1].exception_types(), ["anyhow::Error"]);
    assert_eq!(reports[1].message, "no route to db-1");
}

#[test]
fn an_ok_result_reports_nothing() {
    let reports = reports_of(|| anyhow::Result::<u8>::Ok(1).report());
    assert!(reports.is_empty(), "{reports:#?}");
}

#[test]
fn a_boxed_error_is_named_by_its_debug_form_not_dyn_error() {
    let reports = reports_of(|| {
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(QuotaExceeded { used: 3 });
        crashbox::capture_error(&*boxed)
    });
    assert_eq!(reports[0].exception_types(), ["QuotaExceeded"]);
}

#[inline(never)]
fn create_the_error() -> anyhow::Error {
    std::hint::black_box(anyhow::anyhow!("created deep down"))
}

#[test]
fn with_a_captured_backtrace_the_frames_are_the_origin_and_the_location_the_report_site() {
    // anyhow decides once per process whether to capture backtraces: the
    // child starts with the variable set.
    let out = run_child(
        &child!(child_report_an_error_with_its_origin),
        &[("RUST_LIB_BACKTRACE", "1".into())],
    );
    out.assert_success();
}

/// Run by `with_a_captured_backtrace_the_frames_are_the_origin_and_the_location_the_report_site`.
#[test]
#[ignore = "child process of `with_a_captured_backtrace_the_frames_are_the_origin_and_the_location_the_report_site`"]
fn child_report_an_error_with_its_origin() {
    assert_child();
    let err = create_the_error();
    assert_eq!(
        err.backtrace().status(),
        std::backtrace::BacktraceStatus::Captured,
        "anyhow did not capture a backtrace"
    );
    let mut line = 0;
    let reports = reports_of(|| {
        line = line!() + 1;
        crashbox::anyhow::capture(&err)
    });
    let report = &reports[0];
    let top = report.frames[0].function.as_deref().unwrap_or("");
    assert!(
        top.contains("create_the_error"),
        "frames[0] should be where the error was created, got {top}\n{:#?}",
        report.frames
    );
    assert!(report.frames[0].in_app, "{:#?}", report.frames[0]);
    assert!(report.frames[0]
        .file
        .as_deref()
        .is_some_and(|f| f.ends_with("anyhow.rs")));
    assert!(
        report
            .frames
            .iter()
            .all(|f| !f.function.as_deref().unwrap_or("").starts_with("anyhow::")),
        "{:#?}",
        report.frames
    );
    assert_eq!(report.location.as_ref().map(|l| l.line), Some(line));
}
