//! `sentry+http(s)://KEY@host/PROJECT_ID`: Sentry envelopes, one event each,
//! for Sentry, GlitchTip and Bugsink.
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Map, Value};

use super::http::{HttpClient, DEFAULT_RATE_LIMIT};
use super::{Transport, TransportError};
use crate::collector::Dsn;
use crate::report::{Frame, Image, Kind, Report};

/// The largest event sent; bigger ones lose breadcrumbs, extra and middle frames first.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Sends each report as a Sentry envelope holding one event.
pub struct SentryTransport {
    client: HttpClient,
    dsn: Dsn,
    url: String,
    auth: String,
    /// Rate-limit windows by data category (`""` means every category).
    limits: HashMap<String, Instant>,
    /// Whether the server records the sender's IP for users without one.
    auto_ip: bool,
}

impl std::fmt::Debug for SentryTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The DSN's own `Debug` masks its key.
        f.debug_struct("SentryTransport")
            .field("dsn", &self.dsn)
            .finish_non_exhaustive()
    }
}

impl SentryTransport {
    /// A transport for `dsn`.
    pub fn new(dsn: Dsn) -> Self {
        SentryTransport {
            client: HttpClient::new(),
            url: dsn.envelope_url(),
            auth: dsn.auth_header(),
            dsn,
            limits: HashMap::new(),
            auto_ip: false,
        }
    }

    /// Asks the server to record the sender's IP address as the user's, when
    /// the report's user has none ([`Options::send_default_pii`](crate::Options::send_default_pii)
    /// sets this for the `sentry+` collector).
    pub fn with_default_pii(mut self, enabled: bool) -> Self {
        self.auto_ip = enabled;
        self
    }

    /// How long events are still blocked for, if they are.
    pub(crate) fn blocked_for(&self) -> Option<Duration> {
        let now = Instant::now();
        ["", "error"]
            .iter()
            .filter_map(|c| self.limits.get(*c))
            .filter(|until| **until > now)
            .max()
            .map(|until| *until - now)
    }

    fn limit(&mut self, category: &str, for_: Duration) {
        let until = crate::deadline::deadline_after(for_);
        let entry = self.limits.entry(category.to_owned()).or_insert(until);
        if *entry < until {
            *entry = until;
        }
    }

    /// Applies `X-Sentry-Rate-Limits`: `SECONDS:CAT;CAT:SCOPE[:REASON], …`,
    /// keeping the longest limit per category.
    pub(crate) fn apply_rate_limits(&mut self, header: &str) {
        for entry in header.split(',') {
            let mut fields = entry.trim().split(':');
            let Some(Ok(secs)) = fields.next().map(|s| s.trim().parse::<f64>()) else {
                continue;
            };
            // `nan`, `inf` and negative values parse as floats: ignore them.
            if !secs.is_finite() {
                continue;
            }
            let Ok(duration) = Duration::try_from_secs_f64(secs.min(86_400.0)) else {
                continue;
            };
            let categories = fields.next().unwrap_or("");
            if categories.is_empty() {
                self.limit("", duration);
            } else {
                for category in categories.split(';') {
                    self.limit(category.trim(), duration);
                }
            }
        }
    }
}

impl Transport for SentryTransport {
    fn send(&mut self, reports: &[Report]) -> Result<(), TransportError> {
        for report in reports {
            if let Some(wait) = self.blocked_for() {
                return Err(TransportError::RateLimited {
                    retry_after: wait,
                    reason: "within a Sentry rate-limit window".into(),
                });
            }
            let body = envelope_with(report, &self.dsn, self.auto_ip);
            let answer = self.client.post(
                &self.url,
                "application/x-sentry-envelope",
                &[("X-Sentry-Auth", &self.auth)],
                &body,
            )?;
            if let Some(header) = &answer.sentry_rate_limits {
                let header = header.clone();
                self.apply_rate_limits(&header);
            }
            if answer.status == 429 {
                if answer.sentry_rate_limits.is_none() {
                    let wait = answer.retry_after().unwrap_or(DEFAULT_RATE_LIMIT);
                    self.limit("", wait);
                }
                return Err(match self.blocked_for() {
                    Some(retry_after) => TransportError::RateLimited {
                        retry_after,
                        reason: "HTTP 429 Too Many Requests".into(),
                    },
                    // The limits named other categories: try again with the usual back-off.
                    None => TransportError::Retryable("HTTP 429 for other data categories".into()),
                });
            }
            answer.into_result()?;
        }
        Ok(())
    }

    fn max_batch(&self) -> usize {
        1
    }
}

/// The envelope: header line, item header line, event payload.
#[cfg(test)]
pub(crate) fn envelope(report: &Report, dsn: &Dsn) -> Vec<u8> {
    envelope_with(report, dsn, false)
}

/// The envelope; with `auto_ip`, a user without an IP address gets `{{auto}}`.
fn envelope_with(report: &Report, dsn: &Dsn, auto_ip: bool) -> Vec<u8> {
    let mut event = fitted_event(report);
    if auto_ip {
        let user = event
            .as_object_mut()
            .map(|e| e.entry("user").or_insert_with(|| json!({})));
        if let Some(Value::Object(user)) = user {
            user.entry("ip_address")
                .or_insert_with(|| json!("{{auto}}"));
        }
    }
    let payload = serde_json::to_vec(&event).unwrap_or_default();
    let header = json!({
        "event_id": report.id.to_hex(),
        "sent_at": crate::time::rfc3339_millis(SystemTime::now()),
        "dsn": dsn.to_sentry_string(),
    });
    let item = json!({
        "type": "event",
        "length": payload.len(),
        "content_type": "application/json",
    });
    let mut out = Vec::with_capacity(payload.len() + 256);
    out.extend_from_slice(header.to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(item.to_string().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&payload);
    out.push(b'\n');
    out
}

fn sentry_frame(frame: &Frame) -> Value {
    let mut f = Map::new();
    if let Some(function) = &frame.function {
        f.insert("function".into(), json!(function));
    }
    if let Some(file) = &frame.file {
        f.insert("filename".into(), json!(file));
        if file.starts_with('/') {
            f.insert("abs_path".into(), json!(file));
        }
    }
    if let Some(line) = frame.line {
        f.insert("lineno".into(), json!(line));
    }
    if let Some(column) = frame.column {
        f.insert("colno".into(), json!(column));
    }
    f.insert("in_app".into(), json!(frame.in_app));
    f.insert("instruction_addr".into(), json!(frame.address));
    Value::Object(f)
}

/// A `debug_meta` image; identifiers Sentry would reject are left out
/// rather than sent empty.
fn debug_image(image: &Image) -> Value {
    let mut i = Map::new();
    i.insert("type".into(), json!(image.ty));
    i.insert("code_file".into(), json!(image.code_file));
    if let Some(code_id) = &image.code_id {
        i.insert("code_id".into(), json!(code_id));
    }
    if let Some(debug_id) = &image.debug_id {
        i.insert("debug_id".into(), json!(debug_id));
    }
    i.insert("image_addr".into(), json!(image.image_addr));
    i.insert("image_size".into(), json!(image.image_size));
    Value::Object(i)
}

/// Sentry wants the oldest call first: the reverse of crashbox's order.
fn stacktrace(frames: &[Frame]) -> Value {
    json!({ "frames": frames.iter().rev().map(sentry_frame).collect::<Vec<_>>() })
}

/// The Sentry event for a report.
pub(crate) fn event(report: &Report) -> Value {
    let mut event = Map::new();
    event.insert("event_id".into(), json!(report.id.to_hex()));
    event.insert("timestamp".into(), json!(report.timestamp));
    event.insert("platform".into(), json!("native"));
    event.insert("level".into(), json!(report.level.as_str()));
    event.insert("logger".into(), json!("crashbox"));
    if let Some(release) = &report.release {
        event.insert("release".into(), json!(release));
    }
    event.insert("environment".into(), json!(report.environment));
    if let Some(host) = &report.context.hostname {
        event.insert("server_name".into(), json!(host));
    }
    let has_stack = !report.frames.is_empty();
    match report.kind {
        Kind::Message => {
            // Bugsink's strict schema wants `logentry`, not a top-level `message`.
            event.insert("logentry".into(), json!({ "formatted": report.message }));
        }
        Kind::Error | Kind::Panic => {
            let mechanism = if report.kind == Kind::Panic {
                json!({"type": "panic", "handled": false})
            } else {
                json!({"type": "generic", "handled": true})
            };
            // Oldest cause first; the stack belongs to the outermost error, now last.
            let values: Vec<Value> = report
                .exceptions
                .iter()
                .enumerate()
                .rev()
                .map(|(i, e)| {
                    let mut v = json!({
                        "type": e.ty,
                        "value": e.message,
                        "mechanism": mechanism,
                    });
                    if i == 0 && has_stack {
                        v["stacktrace"] = stacktrace(&report.frames);
                    }
                    v["thread_id"] = json!(report.thread.id);
                    v
                })
                .collect();
            event.insert("exception".into(), json!({ "values": values }));
        }
    }
    let mut thread = json!({
        "id": report.thread.id,
        "current": true,
        "crashed": report.kind == Kind::Panic,
    });
    if let Some(name) = &report.thread.name {
        thread["name"] = json!(name);
    }
    if report.kind == Kind::Message && has_stack {
        thread["stacktrace"] = stacktrace(&report.frames);
    }
    event.insert("threads".into(), json!({ "values": [thread] }));
    let mut tags = report.tags.clone();
    tags.insert("crashbox.count".into(), report.count.to_string());
    event.insert("tags".into(), json!(tags));
    let mut extra = report.extra.clone();
    if let Some(location) = &report.location {
        extra.insert("crashbox.location".into(), json!(location.to_string()));
    }
    if !report.truncated.is_empty() {
        extra.insert("crashbox.truncated".into(), json!(report.truncated));
    }
    // How many occurrences the event stands for (more than one when it
    // closes an aggregation window), as a tag to search by and as a number.
    extra.insert("crashbox.count".into(), json!(report.count));
    if !extra.is_empty() {
        event.insert("extra".into(), json!(extra));
    }
    if let Some(user) = &report.user {
        event.insert("user".into(), json!(user));
    }
    if !report.breadcrumbs.is_empty() {
        let values: Vec<Value> = report
            .breadcrumbs
            .iter()
            .map(|b| {
                let mut v = json!({
                    "timestamp": b.timestamp,
                    "type": "default",
                    "message": b.message,
                    "level": b.level.as_str(),
                });
                if let Some(category) = &b.category {
                    v["category"] = json!(category);
                }
                if !b.data.is_empty() {
                    v["data"] = json!(b.data);
                }
                v
            })
            .collect();
        event.insert("breadcrumbs".into(), json!({ "values": values }));
    }
    let c = &report.context;
    let mut os =
        json!({"type": "os", "name": c.os.clone().unwrap_or_else(|| std::env::consts::OS.into())});
    if let Some(version) = &c.os_version {
        os["version"] = json!(version);
    }
    if let Some(kernel) = &c.kernel {
        os["kernel_version"] = json!(kernel);
    }
    let rustc_version = c
        .rustc
        .split_whitespace()
        .nth(1)
        .unwrap_or(c.rustc.as_str());
    event.insert(
        "contexts".into(),
        json!({
            "os": os,
            "runtime": {"type": "runtime", "name": "rustc", "version": rustc_version, "raw_description": c.rustc},
            "device": {"type": "device", "arch": c.arch},
        }),
    );
    if let Some(fingerprint) = &report.fingerprint {
        event.insert("fingerprint".into(), json!(fingerprint));
    }
    // With these, Sentry symbolicates the frames' `instruction_addr`s from
    // the debug files uploaded for each build id (a stripped binary's too).
    if !report.images.is_empty() {
        let images: Vec<Value> = report.images.iter().map(debug_image).collect();
        event.insert("debug_meta".into(), json!({ "images": images }));
    }
    event.insert(
        "sdk".into(),
        json!({"name": report.sdk.name, "version": report.sdk.version}),
    );
    Value::Object(event)
}

/// The event, shrunk under [`MAX_EVENT_BYTES`] if needed.
pub(crate) fn fitted_event(report: &Report) -> Value {
    let first = event(report);
    if serde_json::to_vec(&first).map(|v| v.len()).unwrap_or(0) <= MAX_EVENT_BYTES {
        return first;
    }
    let mut report = report.clone();
    loop {
        let candidate = event(&report);
        let size = serde_json::to_vec(&candidate).map(|v| v.len()).unwrap_or(0);
        if size <= MAX_EVENT_BYTES {
            return candidate;
        }
        if !report.truncated.iter().any(|t| t == "sentry event size") {
            report.truncated.push("sentry event size".into());
        }
        if !report.breadcrumbs.is_empty() {
            report.breadcrumbs.clear();
        } else if !report.extra.is_empty() {
            report.extra.clear();
        } else if report.frames.len() > 16 {
            let keep = report.frames.len() / 4;
            let end = report.frames.len() - keep;
            report.frames.drain(keep..end);
        } else if !report.tags.is_empty() {
            report.tags.clear();
        } else if report.exceptions.len() > 1 {
            report.exceptions.truncate(1);
        } else {
            // Message and exception texts are capped at a few KiB: this fits.
            return event(&report);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ExceptionInfo, Level};

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
}
