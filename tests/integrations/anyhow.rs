//! `crashbox::anyhow` (feature `anyhow`): `capture` and `ResultExt::report`
//! for `anyhow::Error`, each context layer an exception.
use std::fmt;

use anyhow::Context;
use crashbox::anyhow::ResultExt;
use crashbox::{testing, Kind, Level, Report};

use super::wrapper_tests;
use crate::util::{assert_child, child, run_child, without_client};

wrapper_tests!(anyhow, anyhow::Error, context, "anyhow::Error");

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
