//! Runs the library's capture named on the command line with crashbox
//! installed (reports to the collector in `CRASHBOX_COLLECTOR`), or, for
//! `before-init`, before crashbox is installed.
fn run(mode: &str) -> Option<String> {
    match mode {
        "error" => facade_lib::save("/etc/app.toml").map(|id| id.to_string()),
        "report" => {
            let _ = facade_lib::load("/nonexistent/crashbox-facade");
            None
        }
        "message" => facade_lib::warn().map(|id| id.to_string()),
        other => {
            eprintln!("unknown mode {other:?}");
            std::process::exit(2);
        }
    }
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    if let Some(mode) = mode.strip_prefix("before-init-") {
        // Nothing installed yet: the facade does nothing and says so.
        assert!(run(mode).is_none());
        assert!(!crashbox_api_installed());
    }
    let options = crashbox::Options::from_env()
        .release(crashbox::release!())
        .spool(false)
        .panic_hook(false);
    let guard = crashbox::init(options).expect("init");
    if let Some(id) = run(mode.trim_start_matches("before-init-")) {
        println!("id {id}");
    }
    drop(guard);
}

/// Whether the facade has a backend, asked through the library's own view
/// of it (the application does not depend on crashbox-api).
fn crashbox_api_installed() -> bool {
    facade_lib::installed()
}
