//! `crashbox::log::Logger` (feature `log`): error records become reports
//! with the record's own file and line, lower ones breadcrumbs, and the
//! inner logger still gets every record it enables.
//!
//! The `log` crate takes one logger per process: the first test to run
//! installs [`Logger`] around a recording inner logger, once.
use std::sync::{Mutex, Once, PoisonError};

use crate::util::{without_client, MemoryClient};
use crashbox::log::Logger;
use crashbox::{testing, Level, Options, Report};

/// Keeps the text of every record it is given (those at `Debug` and up).
struct Recording;

static RECORDED: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl log::Log for Recording {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Debug
    }

    fn log(&self, record: &log::Record<'_>) {
        RECORDED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(format!("{} {}", record.level(), record.args()));
    }

    fn flush(&self) {}
}

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        Logger::new(Recording)
            .init_with_max_level(log::LevelFilter::Debug)
            .expect("the first logger of the process");
    });
}

fn recorded(text: &str) -> bool {
    RECORDED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .any(|r| r.ends_with(text))
}

/// The reports made on this thread while `f` runs, the logger installed.
fn reports_of(f: impl FnOnce()) -> Vec<Report> {
    install();
    let _turn = without_client();
    testing::capture(f).1
}

#[test]
fn an_error_record_is_a_report_at_its_own_file_and_line_with_its_key_values() {
    let mut line = 0;
    let reports = reports_of(|| {
        line = line!() + 1;
        log::error!(target: "app::store", path = "/etc/app.toml", attempt = 3; "config is unreadable");
    });
    assert_eq!(reports.len(), 1, "{reports:#?}");
    let report = &reports[0];
    assert_eq!(report.message, "config is unreadable");
    assert_eq!(report.level, Level::Error);
    let location = report.location.as_ref().expect("a location");
    assert!(location.file.ends_with("log.rs"), "{}", location.file);
    assert_eq!(location.line, line);
    assert_eq!(report.extra["log.target"], "app::store");
    assert_eq!(report.extra["path"], "/etc/app.toml");
    assert_eq!(report.extra["attempt"], "3");
    assert!(
        recorded("config is unreadable"),
        "the inner logger has it too"
    );
}

#[test]
fn lower_records_are_breadcrumbs_and_debug_ones_only_go_to_the_inner_logger() {
    let reports = reports_of(|| {
        log::debug!("tick 1");
        log::info!(target: "app::net", "connected");
        log::warn!(peer = "10.0.0.7"; "slow peer");
        log::error!("lost the connection");
    });
    assert_eq!(reports.len(), 1, "only the error is a report: {reports:#?}");
    let crumbs = &reports[0].breadcrumbs;
    let seen: Vec<(&str, Level, Option<&str>)> = crumbs
        .iter()
        .map(|c| (c.message.as_str(), c.level, c.category.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("connected", Level::Info, Some("app::net")),
            ("slow peer", Level::Warning, Some(module_path!())),
        ]
    );
    assert_eq!(crumbs[1].data["peer"], "10.0.0.7");
    assert!(
        recorded("tick 1"),
        "the inner logger still gets debug records"
    );
}

#[test]
fn a_second_logger_is_the_log_crates_error_not_a_panic() {
    install();
    assert!(Logger::new(Recording).init().is_err());
}

#[test]
fn records_logged_inside_before_send_do_not_become_reports() {
    install();
    let client = MemoryClient::start(Options::new().before_send(|report| {
        log::error!("logged while sending {}", report.message);
        log::info!("also a breadcrumb candidate");
        Some(report)
    }));
    crashbox::capture_message("the only report", Level::Error);
    // The logger is the whole process's: other tests' threads may log
    // meanwhile, so look for these records only.
    let reports = client.reports();
    assert!(
        reports.iter().any(|r| r.message == "the only report"),
        "{reports:#?}"
    );
    assert!(
        reports
            .iter()
            .all(|r| !r.message.starts_with("logged while sending")),
        "a record logged by before_send became a report: {reports:#?}"
    );
    assert!(recorded("logged while sending the only report"));
    crashbox::capture_message("the next report", Level::Error);
    let next = client.reports();
    let next = next
        .iter()
        .find(|r| r.message == "the next report")
        .expect("the next report");
    assert!(
        next.breadcrumbs
            .iter()
            .all(|c| c.message != "also a breadcrumb candidate"),
        "{:#?}",
        next.breadcrumbs
    );
}
