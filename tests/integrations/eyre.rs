//! `crashbox::eyre` (feature `eyre`): `capture` and `ResultExt::report`
//! for `eyre::Report`, each `wrap_err` layer an exception.
use std::fmt;

use crashbox::eyre::ResultExt;
use crashbox::{testing, Kind, Level, Report};
use eyre::WrapErr;

use crate::util::without_client;

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

fn upload() -> eyre::Result<()> {
    let read = std::fs::read("/no/such/file").wrap_err("reading the upload");
    let _ = read.wrap_err("handling request r-7")?;
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
        ["eyre::Report", "eyre::Report", "std::io::Error"]
    );
    assert_eq!(report.exceptions[1].message, "reading the upload");
    // The report site is the location.
    let location = report.location.as_ref().expect("a location");
    assert!(location.file.ends_with("eyre.rs"), "{}", location.file);
    assert_eq!(location.line, line);
}

#[test]
fn a_wrapped_application_error_keeps_its_type_name_and_a_message_is_named_by_anyhow() {
    let reports = reports_of(|| {
        let quota = eyre::Report::new(QuotaExceeded { used: 12 });
        crashbox::eyre::capture(&quota);
        crashbox::eyre::capture(&eyre::eyre!("no route to {}", "db-1"));
    });
    assert_eq!(reports.len(), 2, "{reports:#?}");
    assert_eq!(reports[0].exception_types(), ["QuotaExceeded"]);
    assert_eq!(reports[0].message, "quota exceeded (12 used)");
    assert_eq!(reports[1].exception_types(), ["eyre::Report"]);
    assert_eq!(reports[1].message, "no route to db-1");
}

#[test]
fn an_ok_result_reports_nothing() {
    let reports = reports_of(|| eyre::Result::<u8>::Ok(1).report());
    assert!(reports.is_empty(), "{reports:#?}");
}
