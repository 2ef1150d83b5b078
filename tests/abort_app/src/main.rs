//! Run by `tests/spool/abort.rs`: `abort_app panic` installs crashbox and panics
//! (the process aborts: `panic = "abort"`); `abort_app replay` installs
//! crashbox on the same spool, lets it replay what the spool holds, and exits.
//!
//! Environment: `ABORT_APP_COLLECTOR`, `ABORT_APP_SPOOL`, and
//! `ABORT_APP_FLUSH_MS` (the panic hook's wait for delivery).
use std::time::Duration;

use crashbox::Options;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// The panic site the tests look for among the report's frames.
#[inline(never)]
fn abort_app_panics_here(message: &str) -> ! {
    panic!("{message}")
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let flush_ms: u64 = std::env::var("ABORT_APP_FLUSH_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let guard = crashbox::init(
        Options::new()
            .collector(var("ABORT_APP_COLLECTOR"))
            .spool_dir(var("ABORT_APP_SPOOL"))
            .retry_backoff(Duration::from_millis(20), Duration::from_millis(100))
            .max_attempts(3)
            .panic_flush_timeout(Duration::from_millis(flush_ms)),
    )
    .expect("init");
    match mode.as_str() {
        "panic" => {
            println!("ABORT_APP:started");
            abort_app_panics_here("abort_app went down");
        }
        "replay" => {
            let flushed = crashbox::flush(Duration::from_secs(20));
            println!("ABORT_APP:flushed={flushed}");
            println!("ABORT_APP:stats={:?}", crashbox::stats());
            println!("ABORT_APP:last_run={:?}", crashbox::last_run());
            drop(guard);
        }
        other => panic!("unknown mode {other:?}"),
    }
}
