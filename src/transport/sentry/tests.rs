//! Unit tests of the Sentry transport and event mapping.
use serde_json::{json, Value};

use super::*;
use crate::report::{ExceptionInfo, Kind, Level};

fn local_dsn() -> Dsn {
    match crate::Collector::parse("sentry+http://k@127.0.0.1:1/5") {
        Ok(crate::Collector::Sentry(dsn)) => dsn,
        other => panic!("not a DSN: {other:?}"),
    }
}

fn report(kind: Kind) -> Report {
    let (_, reports) = crate::testing::capture(|| {
        crashbox_capture(kind);
    });
    reports.into_iter().next().expect("one report")
}

#[inline(never)]
fn crashbox_capture(kind: Kind) {
    match kind {
        Kind::Message => {
            crate::capture_message("disk almost full", Level::Warning);
        }
        _ => {
            let err = std::io::Error::other("inner cause");
            crate::capture_error(&err);
        }
    }
}

#[test]
fn error_events_put_causes_and_frames_oldest_first() {
    let mut r = report(Kind::Error);
    r.exceptions = vec![
        ExceptionInfo {
            ty: "Outer".into(),
            message: "outer".into(),
        },
        ExceptionInfo {
            ty: "Inner".into(),
            message: "inner".into(),
        },
    ];
    let e = event(&r);
    let values = e["exception"]["values"].as_array().unwrap();
    assert_eq!(values[0]["type"], "Inner");
    assert_eq!(values[1]["type"], "Outer");
    assert_eq!(values[1]["mechanism"]["type"], "generic");
    assert_eq!(values[1]["mechanism"]["handled"], true);
    assert!(values[0].get("stacktrace").is_none());
    let frames = values[1]["stacktrace"]["frames"].as_array().unwrap();
    let last = frames.last().unwrap();
    assert_eq!(last["function"], json!(r.frames[0].function));
    assert_eq!(e["platform"], "native");
    assert_eq!(e["level"], "error");
    assert!(e.get("message").is_none());
}

#[test]
fn images_become_debug_meta_and_frames_keep_their_absolute_address() {
    let mut r = report(Kind::Error);
    assert!(!r.frames.is_empty());
    let e = event(&r);
    let frames = e["exception"]["values"][0]["stacktrace"]["frames"]
        .as_array()
        .unwrap();
    let last = frames.last().unwrap();
    assert_eq!(last["instruction_addr"], json!(r.frames[0].address));
    if cfg!(target_os = "linux") {
        let images = e["debug_meta"]["images"].as_array().unwrap();
        assert_eq!(images.len(), r.images.len());
        assert_eq!(images[0]["type"], "elf");
        assert_eq!(images[0]["image_addr"], json!(r.images[0].image_addr));
        assert_eq!(images[0]["code_id"], json!(r.images[0].code_id));
    }
    r.images.clear();
    assert!(event(&r).get("debug_meta").is_none());
}

#[test]
fn message_events_use_logentry() {
    let r = report(Kind::Message);
    let e = event(&r);
    assert_eq!(e["logentry"]["formatted"], "disk almost full");
    assert!(e.get("exception").is_none());
    assert!(e["threads"]["values"][0]["stacktrace"]["frames"].is_array());
}

#[test]
fn envelopes_have_header_item_and_payload_lines() {
    let r = report(Kind::Error);
    let dsn = local_dsn();
    let body = envelope(&r, &dsn);
    let text = String::from_utf8(body).unwrap();
    let lines: Vec<&str> = text.trim_end().split('\n').collect();
    assert_eq!(lines.len(), 3);
    let header: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(header["event_id"], r.id.to_hex());
    let item: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(item["type"], "event");
    assert_eq!(item["length"].as_u64().unwrap() as usize, lines[2].len());
    let payload: Value = serde_json::from_str(lines[2]).unwrap();
    assert_eq!(payload["event_id"], r.id.to_hex());
}

#[test]
fn the_count_travels_as_a_tag_and_an_extra() {
    let mut r = report(Kind::Error);
    r.count = 4_711;
    let e = event(&r);
    assert_eq!(e["tags"]["crashbox.count"], "4711");
    assert_eq!(e["extra"]["crashbox.count"], 4_711);
}

#[test]
fn default_pii_asks_the_server_for_the_ip_unless_one_is_set() {
    let dsn = local_dsn();
    let payload = |r: &Report, pii: bool| -> Value {
        let body = String::from_utf8(envelope_with(r, &dsn, pii)).unwrap();
        serde_json::from_str(body.trim_end().split('\n').nth(2).unwrap()).unwrap()
    };
    let mut r = report(Kind::Error);
    r.user = None;
    assert!(payload(&r, false).get("user").is_none());
    assert_eq!(payload(&r, true)["user"]["ip_address"], "{{auto}}");
    r.user = Some(crate::User {
        ip_address: Some("10.1.2.3".into()),
        ..crate::User::default()
    });
    assert_eq!(payload(&r, true)["user"]["ip_address"], "10.1.2.3");
    assert_eq!(payload(&r, false)["user"]["ip_address"], "10.1.2.3");
}

#[test]
fn oversized_events_shrink_under_the_limit() {
    let mut r = report(Kind::Error);
    for i in 0..100 {
        r.extra.insert(format!("k{i}"), json!("x".repeat(16_000)));
    }
    let e = fitted_event(&r);
    assert!(serde_json::to_vec(&e).unwrap().len() <= MAX_EVENT_BYTES);
    assert!(e["extra"]["crashbox.truncated"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == "sentry event size"));
}

#[test]
fn rate_limit_header_keeps_the_longest_window_per_category() {
    let dsn = local_dsn();
    let mut t = SentryTransport::new(dsn);
    t.apply_rate_limits("60:transaction:key, 5:error;default:organization, 30:error:key");
    let blocked = t.blocked_for().unwrap();
    assert!(blocked > Duration::from_secs(25) && blocked <= Duration::from_secs(30));
    let mut t2 = SentryTransport::new(t.dsn.clone());
    t2.apply_rate_limits("10:transaction:key");
    assert!(
        t2.blocked_for().is_none(),
        "other categories do not block events"
    );
    t2.apply_rate_limits("3::organization");
    assert!(
        t2.blocked_for().is_some(),
        "an empty category list blocks everything"
    );
}

#[test]
fn nonsense_rate_limit_values_are_ignored() {
    let dsn = local_dsn();
    let mut t = SentryTransport::new(dsn);
    t.apply_rate_limits("nan:error, inf:error, -5:error, 1e400:error, abc:error, :error");
    assert!(t.blocked_for().is_none());
    t.apply_rate_limits("99999999:error");
    assert!(t.blocked_for().unwrap() <= Duration::from_secs(86_400));
}
