//! A tokio service that logs with `tracing`, with crashbox's layer beside
//! the fmt layer: info events become breadcrumbs, and an error event inside a
//! span becomes a report with the event's location, the error's source chain,
//! its fields and the span stack. Each request is a task bound to a scope of
//! its own (`bind_scope`), so its user and breadcrumbs stay with it.
//!
//! Run with: `cargo run --example tracing_service --features tracing`
use std::fmt;
use std::time::Duration;

use crashbox::future::FutureExt;
use crashbox::{Options, User};
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

async fn handle_request(request_id: u64, user_id: u64) {
    let span = tracing::info_span!("request", request_id, route = "/profile");
    // The span is entered only between awaits, as `Instrument` would do.
    span.in_scope(|| tracing::info!(user_id, "loading the profile"));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let _span = span.enter();
    tracing::info!(bytes = 2048u64, "profile rendered");
    if let Err(e) = save_profile(user_id) {
        tracing::error!(
            error = &e as &dyn std::error::Error,
            user_id,
            "saving failed"
        );
    }
}

/// Saving fails only for user 7.
fn save_profile(user_id: u64) -> Result<(), SaveError> {
    if user_id != 7 {
        return Ok(());
    }
    Err(SaveError {
        user_id,
        source: std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left on device"),
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let guard = crashbox::init(Options::new().collector("memory").spool(false))?;
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(crashbox::tracing::layer());
    tracing::subscriber::set_global_default(subscriber)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()?;
    runtime.block_on(async {
        tracing::info!("service started");
        // Each request runs as a task with a scope of its own: its user and
        // breadcrumbs never reach another request's report.
        let tasks: Vec<_> = [(40, 5), (41, 7), (42, 9)]
            .into_iter()
            .map(|(request_id, user_id)| {
                crashbox::with_scope(
                    |scope| scope.set_user(Some(User::with_id(user_id.to_string()))),
                    || tokio::spawn(handle_request(request_id, user_id).bind_scope()),
                )
            })
            .collect();
        for task in tasks {
            task.await?;
        }
        Ok::<_, tokio::task::JoinError>(())
    })?;

    if !crashbox::flush(Duration::from_secs(10)) {
        return Err("flush timed out".into());
    }
    let reports = crashbox::memory_reports();
    if reports.len() != 1 {
        return Err(format!("expected one report, got {}", reports.len()).into());
    }
    let report = &reports[0];
    let user = report.user.as_ref().and_then(|u| u.id.as_deref());
    if user != Some("7") {
        return Err(format!("the report carries user {user:?}, not 7").into());
    }
    println!("message:    {}", report.message);
    println!("exceptions: {:?}", report.exception_types());
    if let Some(location) = &report.location {
        println!("location:   {location}");
    }
    println!("user:       {}", user.unwrap_or_default());
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
