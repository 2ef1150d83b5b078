//! The whole pipeline on the embedded `memory` collector: no server needed.
//!
//! Reports a handled error with a source chain, a message, a storm of one
//! error (its first ten sent one by one, the rest aggregated into one report
//! with a count), and a panic on a named
//! thread, with a secret in the scope and in a message (scrubbed); then prints
//! every captured report as JSON and the counters.
//!
//! Run with: `cargo run --example quickstart`
use std::fmt;
use std::time::Duration;

use crashbox::{Breadcrumb, Level, Options, ResultExt, User};

/// An application error wrapping the I/O error that caused it.
#[derive(Debug)]
struct ConfigError {
    path: String,
    source: std::io::Error,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not load configuration from {}", self.path)
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn load_config(path: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError {
        path: path.to_owned(),
        source,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let guard = crashbox::init(
        Options::new()
            .collector("memory")
            .release(crashbox::release!())
            .environment("quickstart"),
    )?;

    crashbox::configure_scope(|scope| {
        scope.set_tag("component", "quickstart");
        scope.set_user(Some(User::with_id("user-42")));
        scope.set_extra("config_search_path", ["/etc/quickstart", "./conf"]);
        // Scrubbed: reports show `[redacted]`.
        scope.set_tag("api_key", "sk-live-4f9c2a7d1e");
    });
    crashbox::add_breadcrumb(Breadcrumb::new("starting up").category("lifecycle"));

    // A handled error with a source chain: reported, then handled.
    if load_config("/nonexistent/quickstart.toml")
        .report()
        .is_err()
    {
        crashbox::add_breadcrumb(Breadcrumb::new("falling back to defaults").category("config"));
    }

    crashbox::capture_message(
        "running with default configuration; mirror is https://ci:hunter2@mirror.example.com",
        Level::Warning,
    );

    // A storm: the first ten are sent at once (`aggregation_burst`), the
    // other 990 become one report whose `count` is 990 when the window
    // closes (here: at flush).
    for _ in 0..1000 {
        crashbox::capture_error(&std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "metrics endpoint timed out",
        ));
    }

    // A panic on a named thread: captured by the panic hook.
    let worker = std::thread::Builder::new()
        .name("ingest-worker".into())
        .spawn(|| {
            let batch: Vec<u32> = Vec::new();
            let first = batch.first().expect("ingest batch must not be empty");
            println!("{first}");
        })?;
    let _ = worker.join();

    if !crashbox::flush(Duration::from_secs(5)) {
        eprintln!("crashbox: flush timed out");
    }
    let reports = crashbox::take_memory_reports();
    for report in &reports {
        println!("{}", serde_json::to_string_pretty(report)?);
    }
    drop(guard);

    let stats = crashbox::stats();
    println!(
        "captured {}: {} reports delivered, {} repeats aggregated into their counts, {} dropped",
        stats.captured,
        stats.sent,
        stats.aggregated,
        stats.dropped()
    );
    Ok(())
}
