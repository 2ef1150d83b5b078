//! Captures made through `crashbox-api` (the facade libraries depend on):
//! the same reports as crashbox's own entry points make, collected by
//! `testing::capture`, with the facade's frames left out and bad input
//! bounded.
use std::hint::black_box;

use crate::util::without_client;
use crashbox::{testing, Kind, Level, Report};

/// What `f` captured (no client installed meanwhile).
fn reports_of(f: impl FnOnce()) -> Vec<Report> {
    let _turn = without_client();
    testing::capture(f).1
}

#[inline(never)]
fn library_save(path: &str) -> Option<crashbox_api::ReportId> {
    let err = std::io::Error::new(std::io::ErrorKind::PermissionDenied, path.to_owned());
    black_box(crashbox_api::capture_error(&err))
}

#[inline(never)]
fn library_parse(text: &str) -> Result<u8, std::num::ParseIntError> {
    use crashbox_api::ResultExt;
    black_box(text.parse::<u8>().report())
}

#[test]
fn a_facade_capture_is_the_report_crashbox_would_make() {
    let mut ids = Vec::new();
    let mut line = 0;
    let reports = reports_of(|| {
        crashbox_api::add_breadcrumb(
            crashbox_api::Breadcrumb::new("opening")
                .category("store")
                .level(crashbox_api::Level::Debug)
                .data(&[("path", "/etc/app.toml")]),
        );
        crashbox_api::set_tag("component", "store");
        ids.push(library_save("/etc/app.toml"));
        line = line!() + 1;
        let _ = library_parse("300");
        ids.push(crashbox_api::capture_message(
            "cache is cold",
            crashbox_api::Level::Warning,
        ));
    });
    assert_eq!(reports.len(), 3, "{reports:#?}");

    let saved = &reports[0];
    assert_eq!(ids[0].map(|id| id.to_string()), Some(saved.id.to_string()));
    assert_eq!(saved.kind, Kind::Error);
    assert_eq!(saved.exception_types(), ["std::io::Error"]);
    assert_eq!(saved.message, "/etc/app.toml");
    let top = saved.frames[0].function.as_deref().unwrap_or("");
    assert!(
        top.ends_with("library_save"),
        "frame 0 is {top}\n{:#?}",
        saved.frames
    );
    assert_eq!(saved.tag("component"), Some("store"));
    let crumb = saved.breadcrumbs.last().expect("the breadcrumb");
    assert_eq!(
        (
            crumb.message.as_str(),
            crumb.category.as_deref(),
            crumb.level
        ),
        ("opening", Some("store"), Level::Debug)
    );
    assert_eq!(crumb.data["path"], "/etc/app.toml");

    let parsed = &reports[1];
    assert_eq!(parsed.exception_types(), ["std::num::ParseIntError"]);
    let top = parsed.frames[0].function.as_deref().unwrap_or("");
    assert!(
        top.ends_with("library_parse"),
        "frame 0 is {top}\n{:#?}",
        parsed.frames
    );
    // `report()` is located where it was called, inside `library_parse`.
    let location = parsed.location.as_ref().expect("a location");
    assert!(location.file.ends_with("facade.rs"), "{location:?}");
    assert!(
        parsed.frames.iter().all(|f| {
            let function = f.function.as_deref().unwrap_or("");
            !function.contains("crashbox_api::")
                && !f
                    .file
                    .as_deref()
                    .unwrap_or("")
                    .starts_with(crashbox_api::__SOURCE_DIR)
        }),
        "a facade frame is left in: {:#?}",
        parsed.frames
    );

    let message = &reports[2];
    assert_eq!(
        ids[1].map(|id| id.to_string()),
        Some(message.id.to_string())
    );
    assert_eq!(
        (message.kind, message.level),
        (Kind::Message, Level::Warning)
    );
    assert_eq!(message.message, "cache is cold");
    let location = message.location.as_ref().expect("a location");
    assert_eq!(location.line, line + 1);
}

#[test]
fn a_boxed_error_through_the_facade_is_named_by_its_debug_form() {
    #[derive(Debug)]
    struct QuotaExceeded;
    impl std::fmt::Display for QuotaExceeded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("quota exceeded")
        }
    }
    impl std::error::Error for QuotaExceeded {}

    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(QuotaExceeded);
    let reports = reports_of(|| {
        crashbox_api::capture_error(&*boxed);
    });
    assert_eq!(reports[0].exception_types(), ["QuotaExceeded"]);
    assert_eq!(reports[0].message, "quota exceeded");
}

#[test]
fn oversized_facade_breadcrumbs_are_cut_to_the_breadcrumb_limits() {
    let huge = "x".repeat(10 << 20);
    // 1,000 entries, each value the one 10 MB string.
    let keys: Vec<String> = (0..1000).map(|i| format!("k{i:04}")).collect();
    let data: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), huge.as_str())).collect();
    let reports = reports_of(|| {
        crashbox_api::add_breadcrumb(
            crashbox_api::Breadcrumb::new(&huge)
                .category(&huge)
                .data(&data),
        );
        crashbox_api::capture_message("after", crashbox_api::Level::Info);
    });
    let crumb = reports[0].breadcrumbs.last().expect("the breadcrumb");
    assert!(crumb.message.len() <= crashbox::limits::MAX_BREADCRUMB_MESSAGE_BYTES + 3);
    assert!(crumb.category.as_ref().unwrap().len() <= crashbox::limits::MAX_NAME_BYTES + 3);
    assert_eq!(crumb.data.len(), crashbox::limits::MAX_PARTS);
    assert!(crumb
        .data
        .values()
        .all(|v| v.as_str().unwrap().len() <= crashbox::limits::MAX_EXTRA_BYTES + 3));
}

#[test]
fn outside_a_capture_with_no_client_the_facade_reports_nothing() {
    let _turn = without_client();
    let err = std::io::Error::other("unseen");
    assert_eq!(crashbox_api::capture_error(&err), None);
    assert_eq!(
        crashbox_api::capture_message("unseen", crashbox_api::Level::Error),
        None
    );
}
