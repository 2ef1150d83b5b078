//! A command-line program as the people who run it meet crashbox: a handled
//! error shown with its report id, a crash explained by the crash message
//! instead of Rust's panic lines, and the reports delivered before exit.
//!
//! Run with: `cargo run --example cli` (with no `CRASHBOX_COLLECTOR`, a
//! debug build prints one line per report; set it to
//! `file:///tmp/cli.jsonl` to keep them).
use std::process::ExitCode;

use crashbox::{CrashMessage, Options, ResultExt};

fn import(path: &str) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

fn main() -> ExitCode {
    // A silent hook before `init`: on a panic, the person sees the crash
    // message alone (the report still has the panic's message and stack).
    std::panic::set_hook(Box::new(|_| {}));
    let options = Options::from_env()
        .release(crashbox::release!())
        .crash_message(
            CrashMessage::new()
                .app_name("ledger-tool")
                .contact("https://example.com/ledger-tool/issues"),
        );
    let guard = match crashbox::init(options) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("ledger-tool: {e}");
            return ExitCode::FAILURE;
        }
    };

    // A handled error: reported, and its id given to the person.
    let mut error_id = None;
    if let Err(e) = import("/nonexistent/ledger.csv").report() {
        error_id = crashbox::last_report_id();
        let id = error_id.map(|id| id.to_string()).unwrap_or_default();
        eprintln!("ledger-tool: cannot import /nonexistent/ledger.csv: {e} (report {id})");
    }

    // A crash on a worker thread: the crash message says what happened,
    // where the report went and whom to tell.
    let worker = std::thread::spawn(|| {
        let rows: Vec<u32> = std::hint::black_box(Vec::new());
        rows[3]
    });
    let crashed = worker.join().is_err();
    // This thread's last report is still the error's: the crash was the
    // worker's.
    let still_the_error = crashbox::last_report_id() == error_id;

    // `std::process::exit` would skip the guard's drop, which delivers
    // what is still queued: drop it first (or return, as here).
    drop(guard);
    if crashed && error_id.is_some() && still_the_error {
        ExitCode::SUCCESS
    } else {
        eprintln!("ledger-tool: expected a report for the error and one for the crash");
        ExitCode::FAILURE
    }
}
