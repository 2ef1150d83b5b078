//! A library that reports through `crashbox-api` (the facade, no
//! dependencies), inside an application that installs crashbox: the
//! library's breadcrumb, tag and error reach the application's collector,
//! with the library's function as frame 0.
//!
//! Run with: `cargo run --example library`

/// What would be a crate of its own, depending only on `crashbox-api`.
mod settings {
    use crashbox_api::{Breadcrumb, ResultExt};

    /// Reads the settings file; a failure is reported, then returned.
    #[inline(never)]
    pub fn load(path: &str) -> std::io::Result<String> {
        crashbox_api::set_tag("component", "settings");
        let data = [("path", path)];
        crashbox_api::add_breadcrumb(
            Breadcrumb::new("loading the settings")
                .category("config")
                .data(&data),
        );
        std::fs::read_to_string(path).report()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Before the application installs crashbox, the facade does nothing.
    assert!(settings::load("/nonexistent/before-init.toml").is_err());
    assert!(!crashbox_api::is_installed());

    let guard = crashbox::init(
        crashbox::Options::new()
            .collector("memory")
            .spool(false)
            .release(crashbox::release!()),
    )?;
    let _ = settings::load("/nonexistent/settings.toml");
    guard.flush(std::time::Duration::from_secs(10));

    let reports = crashbox::memory_reports();
    let [report] = &reports[..] else {
        return Err(format!("expected one report, got {}", reports.len()).into());
    };
    let top = report.frames.first().and_then(|f| f.function.as_deref());
    println!("message:    {}", report.message);
    println!("exceptions: {:?}", report.exception_types());
    println!("frame 0:    {}", top.unwrap_or("?"));
    println!(
        "tag:        component={}",
        report.tag("component").unwrap_or("")
    );
    for crumb in &report.breadcrumbs {
        println!("breadcrumb: {} {:?}", crumb.message, crumb.data);
    }
    if !top.is_some_and(|f| f.ends_with("settings::load")) {
        return Err(format!("frame 0 is {top:?}, not settings::load").into());
    }
    Ok(())
}
