//! A report as a Sentry event, and the envelope that carries it.
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::MAX_EVENT_BYTES;
use crate::collector::Dsn;
use crate::report::{Frame, Image, Kind, Report};

/// The envelope: header line, item header line, event payload.
#[cfg(test)]
pub(crate) fn envelope(report: &Report, dsn: &Dsn) -> Vec<u8> {
    envelope_with(report, dsn, false)
}

/// The envelope; with `auto_ip`, a user without an IP address gets `{{auto}}`.
pub(super) fn envelope_with(report: &Report, dsn: &Dsn, auto_ip: bool) -> Vec<u8> {
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

pub(super) fn sentry_frame(frame: &Frame) -> Value {
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
    // Frames given without an address (an error's origin) say `0x0`.
    if &*frame.address != "0x0" {
        f.insert("instruction_addr".into(), json!(frame.address));
    }
    Value::Object(f)
}

/// A `debug_meta` image; identifiers Sentry would reject are left out
/// rather than sent empty.
pub(super) fn debug_image(image: &Image) -> Value {
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
pub(super) fn stacktrace(frames: &[Frame]) -> Value {
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
        Kind::Error | Kind::Panic | Kind::Crash => {
            let mechanism = if report.kind == Kind::Panic {
                json!({"type": "panic", "handled": false})
            } else if report.kind == Kind::Crash {
                // Sentry's mechanism for a POSIX signal, with its number
                // and code as the crash record gave them.
                let crash = report.extra.get("crash");
                let field = |key: &str| crash.and_then(|c| c.get(key)).cloned();
                let mut mechanism = json!({"type": "signalhandler", "handled": false});
                if let (Some(number), Some(name)) = (field("number"), field("signal")) {
                    let mut signal = json!({"number": number, "name": name});
                    if let Some(code) = field("code") {
                        signal["code"] = code;
                    }
                    mechanism["meta"] = json!({ "signal": signal });
                }
                mechanism
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
        "crashed": report.kind.is_fatal(),
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
