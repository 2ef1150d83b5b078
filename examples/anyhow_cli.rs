//! A command-line program built on anyhow that reports its errors.
//!
//! `cargo run --example anyhow_cli --features anyhow` (set
//! `RUST_LIB_BACKTRACE=1` to report where the error was created, too).
use std::time::Duration;

use anyhow::Context;
use crashbox::anyhow::ResultExt;

fn read_config(path: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {path}"))
}

fn run() -> anyhow::Result<()> {
    let config = read_config("/no/such/app.toml").context("starting up")?;
    println!("{config}");
    Ok(())
}

fn main() {
    let _guard = crashbox::init(crashbox::Options::new().collector("memory")).expect("init");
    // `main` would return this error; reporting it first keeps its whole chain.
    let outcome = run().report();
    crashbox::flush(Duration::from_secs(30));
    let reports = crashbox::take_memory_reports();
    let report = reports.first().expect("the error was reported");
    println!("reported: {}", report.message);
    for exception in &report.exceptions {
        println!("  {}: {}", exception.ty, exception.message);
    }
    if let Some(frame) = report.in_app_frames().next() {
        println!(
            "  first in-app frame: {} ({}:{})",
            frame.function.as_deref().unwrap_or("?"),
            frame.file.as_deref().unwrap_or("?"),
            frame.line.unwrap_or(0)
        );
    }
    assert!(outcome.is_err());
    assert_eq!(
        report.exception_types(),
        ["anyhow::Error", "anyhow::Error", "std::io::Error"]
    );
}
