//! A program that logs through the `log` crate: crashbox's logger wraps the
//! application's own, so error records become reports and lower ones
//! breadcrumbs, while every record is still printed.
//!
//! `cargo run --example log_app --features log`
use std::time::Duration;

/// The application's logger: every record at `Info` and up, to stderr.
struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("[{}] {}", record.level(), record.args());
        }
    }

    fn flush(&self) {}
}

fn main() {
    let _guard = crashbox::init(crashbox::Options::new().collector("memory")).expect("init");
    crashbox::log::Logger::new(Stderr)
        .init_with_max_level(log::LevelFilter::Info)
        .expect("the first logger");
    log::info!("starting");
    log::warn!(attempt = 2; "retrying the upload");
    log::error!(file = "report.pdf"; "upload failed");
    crashbox::flush(Duration::from_secs(30));
    let reports = crashbox::take_memory_reports();
    let report = reports.first().expect("the error record was reported");
    println!(
        "reported: {} (file {})",
        report.message, report.extra["file"]
    );
    for crumb in &report.breadcrumbs {
        println!("  breadcrumb [{:?}] {}", crumb.level, crumb.message);
    }
    assert_eq!(report.breadcrumbs.len(), 2);
}
