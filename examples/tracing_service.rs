//! A service that logs with `tracing`, with crashbox's layer beside the fmt
//! layer: info events become breadcrumbs, and an error event inside a span
//! becomes a report with the event's location, the error's source chain, its
//! fields and the span stack.
//!
//! Run with: `cargo run --example tracing_service --features tracing`
use std::fmt;
use std::time::Duration;

use crashbox::Options;
use tracing_subscriber::layer::SubscriberExt;

/// An application error wrapping the I/O error that caused it.
#[derive(Debug)]
struct SaveError {
    user_id: u64,
    source: std::io::Error,
}

impl fmt::Display for SaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not save the profile of user {}", self.user_id)
    }
}

impl std::error::Error for SaveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn save_profile(user_id: u64) -> Result<(), SaveError> {
    Err(SaveError {
        user_id,
        source: std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left on device"),
    })
}

fn handle_request(request_id: u64, user_id: u64) {
    let span = tracing::info_span!("request", request_id, route = "/profile");
    let _span = span.enter();
    tracing::info!(user_id, "loading the profile");
    tracing::info!(bytes = 2048u64, "profile rendered");
    if let Err(e) = save_profile(user_id) {
        tracing::error!(
            error = &e as &dyn std::error::Error,
            user_id = 7,
            "saving failed"
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let guard = crashbox::init(Options::new().collector("memory").spool(false))?;
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(crashbox::tracing::layer());
    tracing::subscriber::set_global_default(subscriber)?;

    tracing::info!("service started");
    handle_request(41, 7);

    if !crashbox::flush(Duration::from_secs(10)) {
        return Err("flush timed out".into());
    }
    let reports = crashbox::memory_reports();
    if reports.len() != 1 {
        return Err(format!("expected one report, got {}", reports.len()).into());
    }
    let report = &reports[0];
    println!("message:    {}", report.message);
    println!("exceptions: {:?}", report.exception_types());
    if let Some(location) = &report.location {
        println!("location:   {location}");
    }
    println!("user_id:    {}", report.extra["user_id"]);
    println!("spans:      {}", report.extra["spans"]);
    for crumb in &report.breadcrumbs {
        println!(
            "breadcrumb: [{}] {} {}",
            crumb.level,
            crumb.category.as_deref().unwrap_or(""),
            crumb.message
        );
    }
    drop(guard);
    Ok(())
}
