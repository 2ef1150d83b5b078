//! `otlp+http(s)://host:4318`: OTLP/HTTP JSON log records, one per report,
//! with the OpenTelemetry exception semantic conventions.
use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::http::{chunks_by_size, partial, HttpClient, MAX_REQUEST_BYTES};
use super::{ServiceInfo, Transport, TransportError};
use crate::collector::Endpoint;
use crate::report::{Level, Report};

/// Posts batches of log records to `{endpoint}/v1/logs`.
pub struct OtlpTransport {
    client: HttpClient,
    url: String,
    service: ServiceInfo,
    /// Built on first use, on the worker: it reads the machine context.
    resource: Option<Value>,
}

fn string_attr(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

/// OTLP JSON writes 64-bit integers as strings.
fn int_attr(key: &str, value: i64) -> Value {
    json!({"key": key, "value": {"intValue": value.to_string()}})
}

fn nanos(t: SystemTime) -> String {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        .to_string()
}

/// OpenTelemetry severity numbers: FATAL 21, ERROR 17, WARN 13, INFO 9, DEBUG 5.
fn severity(level: Level) -> (u8, &'static str) {
    match level {
        Level::Fatal => (21, "FATAL"),
        Level::Error => (17, "ERROR"),
        Level::Warning => (13, "WARN"),
        Level::Info => (9, "INFO"),
        Level::Debug => (5, "DEBUG"),
    }
}

/// The whole chain and stack as text, like `RUST_BACKTRACE` output.
pub(crate) fn stacktrace_text(report: &Report) -> String {
    let mut text = String::new();
    for (i, e) in report.exceptions.iter().enumerate() {
        if i == 0 {
            let _ = writeln!(text, "{}: {}", e.ty, e.message);
        } else {
            let _ = writeln!(text, "Caused by: {}: {}", e.ty, e.message);
        }
    }
    for (i, f) in report.frames.iter().enumerate() {
        let _ = writeln!(
            text,
            "{i:4}: {}",
            f.function.as_deref().unwrap_or("<unknown>")
        );
        if let Some(file) = &f.file {
            let _ = writeln!(
                text,
                "             at {file}:{}:{}",
                f.line.unwrap_or(0),
                f.column.unwrap_or(0)
            );
        }
    }
    text
}

impl std::fmt::Debug for OtlpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpTransport")
            .field("url", &self.url.split('?').next().unwrap_or(""))
            .field("headers", &self.client.header_names())
            .field("service", &self.service.name)
            .finish_non_exhaustive()
    }
}

impl OtlpTransport {
    /// A transport posting to `endpoint` for the service `service_name`
    /// (resource attribute `service.name`), in environment `production`.
    ///
    /// ```
    /// # #[cfg(feature = "http")] {
    /// let crashbox::Collector::Otlp(endpoint) =
    ///     crashbox::Collector::parse("otlp+http://127.0.0.1:4318")?
    /// else {
    ///     unreachable!()
    /// };
    /// let transport = crashbox::transport::OtlpTransport::new(&endpoint, "billing")
    ///     .service_version("1.4.2")
    ///     .environment("staging");
    /// let _options = crashbox::Options::new().transport(transport);
    /// # }
    /// # Ok::<(), crashbox::ConfigError>(())
    /// ```
    pub fn new(endpoint: &Endpoint, service_name: impl Into<String>) -> Self {
        OtlpTransport::with_service(
            endpoint,
            ServiceInfo {
                name: service_name.into(),
                version: None,
                environment: "production".to_owned(),
                send_default_pii: false,
                resource_attributes: Vec::new(),
                headers: Vec::new(),
                otlp_url_as_given: false,
            },
        )
    }

    /// The service's version (resource attribute `service.version`).
    #[must_use]
    pub fn service_version(mut self, version: impl Into<String>) -> Self {
        self.service.version = Some(version.into());
        self
    }

    /// The deployment environment (`deployment.environment.name`).
    #[must_use]
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.service.environment = environment.into();
        self
    }

    pub(crate) fn with_service(endpoint: &Endpoint, service: ServiceInfo) -> Self {
        // A path that already ends in `/v1/logs` is the logs URL itself.
        let given = service.otlp_url_as_given
            || endpoint
                .path()
                .split('?')
                .next()
                .is_some_and(|p| p.ends_with("/v1/logs"));
        OtlpTransport {
            client: HttpClient::new().with_headers(service.headers.clone()),
            url: if given {
                endpoint.url()
            } else {
                endpoint.url_with_path_suffix("/v1/logs")
            },
            service,
            resource: None,
        }
    }

    fn resource(service: &ServiceInfo) -> Value {
        let context = crate::context::get();
        let mut attributes = vec![
            string_attr("service.name", &service.name),
            string_attr("deployment.environment.name", &service.environment),
            string_attr("os.type", std::env::consts::OS),
            int_attr("process.pid", i64::from(context.pid)),
            string_attr("telemetry.sdk.name", "crashbox"),
            string_attr("telemetry.sdk.language", "rust"),
            string_attr("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
        ];
        if let Some(version) = &service.version {
            attributes.push(string_attr("service.version", version));
        }
        if let Some(host) = &context.hostname {
            attributes.push(string_attr("host.name", host));
        }
        // Configured attributes win over crashbox's own, except
        // `service.name`, which the service's name already settled.
        for (key, value) in &service.resource_attributes {
            if key == "service.name" {
                continue;
            }
            attributes.retain(|a| a["key"] != key.as_str());
            attributes.push(string_attr(key, value));
        }
        json!({ "attributes": attributes })
    }

    fn body(&mut self, records: &[Vec<u8>]) -> Vec<u8> {
        let service = &self.service;
        let resource = self.resource.get_or_insert_with(|| Self::resource(service));
        // Splice the pre-serialized records into the envelope around them.
        let head = json!({
            "resourceLogs": [{
                "resource": resource,
                "scopeLogs": [{
                    "scope": {"name": "crashbox", "version": env!("CARGO_PKG_VERSION")},
                    "logRecords": ["RECORDS"]
                }]
            }]
        })
        .to_string();
        let (before, after) = head.split_once("\"RECORDS\"").unwrap_or((&head, ""));
        let mut body = Vec::with_capacity(
            before.len()
                + after.len()
                + records.iter().map(Vec::len).sum::<usize>()
                + records.len(),
        );
        body.extend_from_slice(before.as_bytes());
        for (i, record) in records.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(record);
        }
        body.extend_from_slice(after.as_bytes());
        body
    }
}

/// One LogRecord for a report.
pub(crate) fn log_record(report: &Report) -> Value {
    let (number, text) = severity(report.level);
    let mut attributes = vec![
        string_attr("crashbox.report.id", &report.id.to_hex()),
        string_attr("crashbox.report.kind", report.kind.as_str()),
    ];
    if let Some(outer) = report.exceptions.first() {
        attributes.push(string_attr("exception.type", &outer.ty));
        attributes.push(string_attr("exception.message", &outer.message));
    }
    if !report.exceptions.is_empty() || !report.frames.is_empty() {
        attributes.push(string_attr(
            "exception.stacktrace",
            &stacktrace_text(report),
        ));
    }
    if let Some(location) = &report.location {
        attributes.push(string_attr("code.file.path", &location.file));
        attributes.push(int_attr("code.line.number", i64::from(location.line)));
        attributes.push(int_attr("code.column.number", i64::from(location.column)));
    }
    if let Some(name) = &report.thread.name {
        attributes.push(string_attr("thread.name", name));
    }
    attributes.push(int_attr("thread.id", report.thread.id as i64));
    attributes.push(string_attr("crashbox.report.group", &report.group));
    attributes.push(int_attr("crashbox.report.count", report.count as i64));
    if let Some(user) = report.user.as_ref().and_then(|u| u.id.as_deref()) {
        attributes.push(string_attr("enduser.id", user));
    }
    for (key, value) in &report.tags {
        attributes.push(string_attr(key, value));
    }
    let time = crate::time::parse_rfc3339_millis(&report.timestamp).unwrap_or_else(SystemTime::now);
    json!({
        "timeUnixNano": nanos(time),
        "observedTimeUnixNano": nanos(SystemTime::now()),
        "severityNumber": number,
        "severityText": text,
        "body": {"stringValue": report.message},
        "attributes": attributes,
    })
}

impl Transport for OtlpTransport {
    fn send(&mut self, reports: &[Report]) -> Result<(), TransportError> {
        let records: Vec<Vec<u8>> = reports
            .iter()
            .map(|r| serde_json::to_vec(&log_record(r)).unwrap_or_default())
            .collect();
        for range in chunks_by_size(&records, MAX_REQUEST_BYTES) {
            let (body, encoding) = super::gzip::maybe_gzip(self.body(&records[range.clone()]));
            let headers: &[(&str, &str)] = match encoding {
                Some(encoding) => &[("Content-Encoding", encoding)],
                None => &[],
            };
            self.client
                .post(&self.url, "application/json", headers, &body)
                .and_then(|answer| answer.into_result())
                .map_err(|e| partial(range, records.len(), e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_records_follow_the_exception_conventions() {
        let (_, reports) = crate::testing::capture(|| {
            let err = std::io::Error::other("socket closed");
            crate::configure_scope(|s| s.set_tag("shard", "7"));
            crate::capture_error(&err);
        });
        let r = &reports[0];
        let record = log_record(r);
        assert_eq!(record["severityNumber"], 17);
        assert_eq!(record["severityText"], "ERROR");
        assert_eq!(record["body"]["stringValue"], "socket closed");
        let attrs = record["attributes"].as_array().unwrap();
        let get = |k: &str| {
            attrs
                .iter()
                .find(|a| a["key"] == k)
                .map(|a| a["value"].clone())
        };
        assert_eq!(
            get("exception.type").unwrap()["stringValue"],
            "std::io::Error"
        );
        assert_eq!(
            get("exception.message").unwrap()["stringValue"],
            "socket closed"
        );
        assert_eq!(get("crashbox.report.count").unwrap()["intValue"], "1");
        assert_eq!(
            get("crashbox.report.group").unwrap()["stringValue"],
            r.group.as_str()
        );
        assert!(get("exception.stacktrace").unwrap()["stringValue"]
            .as_str()
            .unwrap()
            .contains("log_records_follow_the_exception_conventions"));
        assert_eq!(
            get("code.line.number").unwrap()["intValue"],
            r.location.as_ref().unwrap().line.to_string()
        );
        assert_eq!(
            get("code.file.path").unwrap()["stringValue"],
            r.location.as_ref().unwrap().file.as_str()
        );
        assert!(get("code.lineno").is_none() && get("code.filepath").is_none());
        assert_eq!(get("shard").unwrap()["stringValue"], "7");
        let t: u128 = record["timeUnixNano"].as_str().unwrap().parse().unwrap();
        assert!(t > 1_700_000_000_000_000_000);
    }
}
