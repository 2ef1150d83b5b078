//! Headers set with `Options::header` and gzip request bodies, as a
//! loopback server receives them from the OTLP, HTTP JSON and Sentry
//! collectors; and header values kept out of every text.
//!
//! `init` installs per-process state, so every scenario runs in a child
//! process (see `util::run_child`); the server lives in the parent.

use std::time::Duration;

use crate::util::errors::load_error;
use crate::util::http_server::{gunzip, Request, Server};
use crate::util::{
    assert_child, child, fast_options, http_collector, report_value, run_against, sentry_collector,
};
use crashbox::{ConfigError, Options};
use serde_json::Value;

/// A header value that must never show up in any text crashbox writes.
const SECRET: &str = "Bearer s3cr3t-t0ken";

/// Run by the header tests: one error, with two headers configured.
#[test]
#[ignore = "child process of the tests of `tests/collectors/headers.rs`"]
fn child_with_headers() {
    assert_child();
    let options = fast_options()
        .header("Authorization", SECRET)
        .header("X-Tenant", "acme");
    let debug = format!("{options:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    let guard = crashbox::init(options).expect("init");
    let id = crashbox::capture_error(&load_error()).expect("captured");
    report_value("flushed", crashbox::flush(Duration::from_secs(10)));
    report_value("id", id);
    drop(guard);
}

/// The one request that reached `server`.
#[track_caller]
fn only_request(server: &Server) -> Request {
    let requests = server.wait_for_requests(1, Duration::from_secs(10));
    assert_eq!(requests.len(), 1, "{requests:#?}");
    requests.into_iter().next().unwrap()
}

#[track_caller]
fn assert_configured_headers(request: &Request) {
    assert_eq!(request.header("authorization"), Some(SECRET), "{request:?}");
    assert_eq!(request.header("x-tenant"), Some("acme"), "{request:?}");
}

/// The body of `request`, gunzipped here (not by the server's reading).
#[track_caller]
fn gunzipped(request: &Request) -> Vec<u8> {
    assert_eq!(
        request.header("content-encoding"),
        Some("gzip"),
        "{request:?}"
    );
    let body = gunzip(&request.raw_body).expect("the body gunzips");
    assert!(
        request.raw_body.len() < body.len(),
        "gzip made {} bytes of {}",
        request.raw_body.len(),
        body.len()
    );
    body
}

#[test]
fn otlp_requests_carry_the_headers_and_a_gzip_body_of_otlp_json() {
    let server = Server::start();
    // A query string stays after the `/v1/logs` appended to the path.
    let collector = format!("otlp+http://127.0.0.1:{}/otlp?tenant=acme", server.port());
    let out = run_against(&child!(child_with_headers), &collector, &[]);
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let request = only_request(&server);
    assert_eq!(request.path, "/otlp/v1/logs?tenant=acme");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_configured_headers(&request);
    let body: Value = serde_json::from_slice(&gunzipped(&request)).expect("OTLP JSON");
    let record = &body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
    let attribute = |key: &str| {
        record["attributes"]
            .as_array()
            .expect("attributes")
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| a["value"].clone())
    };
    let file = attribute("code.file.path").expect("code.file.path");
    assert!(
        file["stringValue"]
            .as_str()
            .unwrap()
            .ends_with("tests/collectors/headers.rs"),
        "{record}"
    );
    assert!(attribute("code.line.number").unwrap()["intValue"].is_string());
    assert!(attribute("code.filepath").is_none() && attribute("code.lineno").is_none());
    assert_eq!(
        attribute("crashbox.report.id").unwrap()["stringValue"],
        out.value("id")
    );
    assert!(!out.stderr.contains("s3cr3t"), "{}", out.dump());
}

#[test]
fn http_json_requests_carry_the_headers() {
    let server = Server::start();
    let out = run_against(
        &child!(child_with_headers),
        &http_collector(server.port()),
        &[],
    );
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let request = only_request(&server);
    assert_configured_headers(&request);
    // Crashbox's own JSON goes to endpoints of any kind: not compressed.
    assert_eq!(request.header("content-encoding"), None);
    assert_eq!(request.report_ids(), [out.value("id")]);
}

#[test]
fn sentry_envelopes_carry_the_headers_and_are_gzipped() {
    let server = Server::start();
    let out = run_against(
        &child!(child_with_headers),
        &sentry_collector("publickey", server.port(), 5),
        &[],
    );
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let request = only_request(&server);
    assert_configured_headers(&request);
    assert!(request
        .header("x-sentry-auth")
        .is_some_and(|a| a.contains("sentry_key=publickey")));
    let body = gunzipped(&request);
    let event_line = body.split(|b| *b == b'\n').nth(2).expect("an event line");
    let event: Value = serde_json::from_slice(event_line).expect("the event is JSON");
    assert_eq!(event["event_id"], out.value("id"));
}

#[test]
fn invalid_headers_are_refused_by_init_naming_them_but_not_their_values() {
    for (name, value, needle) in [
        ("Bad Name", "v", "not an HTTP token"),
        ("", "v", "name is empty"),
        ("X-Key", "s3cr3t\r\nInjected: yes", "control character"),
        ("X-Key", "s3cr3t-é", "non-ASCII"),
        ("Content-Encoding", "identity", "set by crashbox itself"),
    ] {
        let options = Options::new()
            .collector("otlp+http://127.0.0.1:4318")
            .header(name, value);
        // Checked before anything is installed: no child process needed.
        let err = crashbox::init(options).expect_err("refused");
        assert!(
            matches!(
                err,
                ConfigError::InvalidOption {
                    option: "header",
                    ..
                }
            ),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(needle), "{name:?}: {text}");
        assert!(!text.contains("s3cr3t") && !format!("{err:?}").contains("s3cr3t"));
    }
}

#[test]
fn options_debug_shows_header_names_with_masked_values() {
    let options = Options::new()
        .header("Authorization", SECRET)
        .header("X-Api-Key", "k-s3cr3t");
    let debug = format!("{options:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert!(
        debug.contains(r#"headers: [("Authorization", "***"), ("X-Api-Key", "***")]"#),
        "{debug}"
    );
}
