//! Collectors configured by `Options::from_env` from the OpenTelemetry SDK's
//! and Sentry's standard variables, against a loopback server.
//!
//! `init` installs per-process state and these read the environment, so
//! every scenario runs in a child process with its own variables (see
//! `util::run_child`); the server lives in the parent.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

use crate::util::errors::load_error;
use crate::util::http_server::{Request, Server};
use crate::util::{assert_child, child, one_by_one, report_value, run_child};
use crashbox::Options;
use serde_json::Value;

/// Run by the tests below: options from the environment, one error.
#[test]
#[ignore = "child process of the tests of `tests/collectors/from_env.rs`"]
fn child_from_env_one_error() {
    assert_child();
    let options = one_by_one(Options::from_env().spool(false))
        .retry_backoff(Duration::from_millis(50), Duration::from_millis(200));
    let guard = crashbox::init(options).expect("init");
    let id = crashbox::capture_error(&load_error()).expect("captured");
    report_value("flushed", crashbox::flush(Duration::from_secs(10)));
    report_value("id", id);
    drop(guard);
}

/// Runs the child with `envs` and returns the one request `server` got.
fn one_request(server: &Server, envs: &[(&str, OsString)]) -> Request {
    let out = run_child(&child!(child_from_env_one_error), envs);
    out.assert_success();
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    assert!(!out.stderr.contains("s3cr3t"), "{}", out.dump());
    let requests = server.wait_for_requests(1, Duration::from_secs(10));
    assert_eq!(requests.len(), 1, "{requests:#?}\n{}", out.dump());
    requests.into_iter().next().unwrap()
}

/// The resource attributes of an OTLP request, key → string value.
fn resource(request: &Request) -> BTreeMap<String, String> {
    request.json()["resourceLogs"][0]["resource"]["attributes"]
        .as_array()
        .expect("resource attributes")
        .iter()
        .map(|a| {
            let value = &a["value"];
            let text = value["stringValue"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            (a["key"].as_str().unwrap().to_owned(), text)
        })
        .collect()
}

#[test]
fn otel_endpoint_headers_service_name_and_resource_attributes_are_used() {
    let server = Server::start();
    let request = one_request(
        &server,
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{}/base/", server.port()).into(),
            ),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "Authorization=Bearer%20s3cr3t, x-tenant=acme".into(),
            ),
            ("OTEL_SERVICE_NAME", "checkout".into()),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=not-this,service.namespace=shop,deployment.environment.name=canary"
                    .into(),
            ),
        ],
    );
    assert_eq!(request.path, "/base/v1/logs");
    assert_eq!(request.header("authorization"), Some("Bearer s3cr3t"));
    assert_eq!(request.header("x-tenant"), Some("acme"));
    assert_eq!(request.header("content-encoding"), Some("gzip"));
    let resource = resource(&request);
    assert_eq!(resource["service.name"], "checkout");
    assert_eq!(resource["service.namespace"], "shop");
    assert_eq!(resource["deployment.environment.name"], "canary");
    assert_eq!(resource["os.type"], std::env::consts::OS);
}

#[test]
fn the_otel_logs_endpoint_is_used_as_is_and_wins() {
    let server = Server::start();
    let request = one_request(
        &server,
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{}/base", server.port()).into(),
            ),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                format!("http://127.0.0.1:{}/custom/logs?k=v", server.port()).into(),
            ),
        ],
    );
    assert_eq!(request.path, "/custom/logs?k=v");
    let resource = resource(&request);
    assert!(!resource["service.name"].is_empty());
}

#[test]
fn sentry_release_and_environment_are_used_with_a_sentry_dsn() {
    let server = Server::start();
    let request = one_request(
        &server,
        &[
            (
                "SENTRY_DSN",
                format!("http://publickey@127.0.0.1:{}/5", server.port()).into(),
            ),
            ("SENTRY_RELEASE", "shop@9.9.9".into()),
            ("SENTRY_ENVIRONMENT", "canary".into()),
        ],
    );
    let event_line = request
        .body
        .split(|b| *b == b'\n')
        .nth(2)
        .expect("an event line");
    let event: Value = serde_json::from_slice(event_line).expect("the event is JSON");
    assert_eq!(event["release"], "shop@9.9.9");
    assert_eq!(event["environment"], "canary");
}
