//! `crashbox::Event`: a capture built from explicit parts (message, level,
//! chain, location, extra), through the same pipeline as every capture.
use std::hint::black_box;

use crate::util::without_client;
use crashbox::{testing, Event, Kind, Level, Report, MAX_EVENT_EXTRA};

/// The one report `f` captures (no client installed meanwhile).
fn report_of(f: impl FnOnce()) -> Report {
    let _turn = without_client();
    let ((), mut reports) = testing::capture(f);
    assert_eq!(reports.len(), 1, "{reports:#?}");
    reports.remove(0)
}

#[inline(never)]
fn report_from_a_named_function() -> Option<crashbox::ReportId> {
    black_box(
        Event::new(Level::Error)
            .message("the handler failed")
            .location("src/handler.rs", 120, 4)
            .capture(),
    )
}

#[test]
fn an_event_keeps_its_own_location_and_its_stack_starts_at_the_caller() {
    let report = report_of(|| {
        report_from_a_named_function().expect("a report");
    });
    assert_eq!(report.message, "the handler failed");
    assert_eq!(report.kind, Kind::Message, "no exceptions: a message");
    let location = report.location.as_ref().expect("a location");
    assert_eq!(
        (location.file.as_str(), location.line, location.column),
        ("src/handler.rs", 120, 4)
    );
    let top = report.frames[0].function.as_deref().unwrap_or("");
    assert!(
        top.contains("report_from_a_named_function"),
        "frames[0] should be the function that called capture, got {top}\n{:#?}",
        report.frames
    );
}

#[test]
fn without_a_location_an_event_is_located_where_it_is_captured() {
    let mut line = 0;
    let report = report_of(|| {
        line = line!() + 1;
        Event::new(Level::Info).message("here").capture();
    });
    let location = report.location.expect("a location");
    assert!(location.file.ends_with("event.rs"), "{}", location.file);
    assert_eq!(location.line, line);
}

#[test]
fn an_events_chain_is_its_links_in_order_and_its_message_the_first_links_without_one() {
    let io = std::io::Error::other("connection reset");
    let report = report_of(|| {
        Event::new(Level::Error)
            .exception("app::SyncError", "syncing the inbox")
            .error(&io)
            .capture();
    });
    assert_eq!(report.kind, Kind::Error);
    assert_eq!(
        report.exception_types(),
        ["app::SyncError", "std::io::Error"]
    );
    assert_eq!(report.message, "syncing the inbox");
    assert_eq!(report.exceptions[1].message, "connection reset");
}

#[test]
fn an_events_extra_wins_over_the_scopes_and_the_scope_still_applies() {
    let report = report_of(|| {
        crashbox::with_scope(
            |scope| {
                scope.set_tag("tenant", "acme");
                scope.set_extra("attempt", 1);
                scope.set_extra("region", "eu");
            },
            || {
                Event::new(Level::Warning)
                    .message("retrying")
                    .extra("attempt", 2)
                    .extra("request", serde_json::json!({"id": "r-7"}))
                    .capture();
            },
        );
    });
    assert_eq!(report.level, Level::Warning);
    assert_eq!(report.tag("tenant"), Some("acme"));
    assert_eq!(report.extra["attempt"], 2);
    assert_eq!(report.extra["region"], "eu");
    assert_eq!(report.extra["request"]["id"], "r-7");
}

#[test]
fn oversized_events_are_cut_by_the_documented_limits() {
    let big = "x".repeat(10 * 1024 * 1024);
    let report = report_of(|| {
        let mut event = Event::new(Level::Error)
            .message(&big)
            .extra("big", &big)
            .exception("T".repeat(10_000), "m");
        for i in 0..10_000 {
            event = event.extra(format!("field{i}"), i);
        }
        event.capture();
    });
    assert!(report.message.len() <= crashbox::limits::MAX_MESSAGE_BYTES + 4);
    assert!(report.exceptions[0].ty.len() <= crashbox::limits::MAX_NAME_BYTES + 4);
    let big_extra = report.extra["big"].as_str().expect("cut JSON text");
    assert!(big_extra.len() <= crashbox::limits::MAX_EXTRA_BYTES + 4);
    assert_eq!(report.extra.len(), MAX_EVENT_EXTRA);
    for cut in ["message", "extra", "extra.big"] {
        assert!(
            report.truncated.iter().any(|t| t == cut),
            "{cut} not in {:?}",
            report.truncated
        );
    }
}

#[test]
fn with_no_client_an_event_is_not_captured() {
    let _turn = without_client();
    assert_eq!(Event::new(Level::Error).message("nobody").capture(), None);
}
