//! Reading fields: each value bounded as it is formatted, a panicking
//! `Debug` caught, an error field read as an exception chain.
use std::error::Error;
use std::fmt::{self, Write as _};
use std::panic::AssertUnwindSafe;

use ::tracing::field::{Field, Visit};
use serde_json::Value;

use super::{MAX_SMALL_VALUE_BYTES, MAX_SPAN_FIELDS};
use crate::limits::{self, BoundedWriter};
use crate::report::ExceptionInfo;

/// A span's fields, kept in its extensions from creation and `record`.
#[derive(Default)]
pub(super) struct SpanFields {
    pub(super) fields: Vec<(&'static str, Value)>,
}

impl SpanFields {
    pub(super) fn set(&mut self, name: &'static str, value: Value) {
        if let Some(slot) = self.fields.iter_mut().find(|(k, _)| *k == name) {
            slot.1 = value;
        } else if self.fields.len() < MAX_SPAN_FIELDS {
            self.fields.push((name, value));
        }
    }

    fn room(&self, field: &Field) -> bool {
        self.fields.len() < MAX_SPAN_FIELDS || self.fields.iter().any(|(k, _)| *k == field.name())
    }
}

impl Visit for SpanFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.room(field) {
            let text = debug_bounded(value, MAX_SMALL_VALUE_BYTES);
            self.set(field.name(), Value::String(text));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if self.room(field) {
            self.set(
                field.name(),
                Value::String(str_bounded(value, MAX_SMALL_VALUE_BYTES)),
            );
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), Value::Bool(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field.name(), f64_value(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        if self.room(field) {
            let (text, _) = display_bounded(value, MAX_SMALL_VALUE_BYTES);
            self.set(field.name(), Value::String(text));
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Purpose {
    Report,
    Breadcrumb,
}

/// An event's fields, read once, each bounded as it is formatted.
pub(super) struct EventFields {
    purpose: Purpose,
    pub(super) message: Option<String>,
    pub(super) exceptions: Vec<ExceptionInfo>,
    pub(super) values: Vec<(&'static str, Value)>,
}

impl EventFields {
    pub(super) fn new(purpose: Purpose) -> Self {
        EventFields {
            purpose,
            message: None,
            exceptions: Vec::new(),
            values: Vec::new(),
        }
    }

    fn max_values(&self) -> usize {
        match self.purpose {
            // `Event` keeps the first it can after the layer's own keys
            // and lists `extra` as cut when there were more.
            Purpose::Report => crate::MAX_EVENT_EXTRA,
            Purpose::Breadcrumb => limits::MAX_PARTS,
        }
    }

    fn value_limit(&self) -> usize {
        match self.purpose {
            Purpose::Report => limits::MAX_EXTRA_BYTES,
            Purpose::Breadcrumb => MAX_SMALL_VALUE_BYTES,
        }
    }

    fn message_limit(&self) -> usize {
        match self.purpose {
            Purpose::Report => limits::MAX_MESSAGE_BYTES,
            Purpose::Breadcrumb => limits::MAX_BREADCRUMB_MESSAGE_BYTES,
        }
    }

    /// Whether another field is kept.
    fn room(&self) -> bool {
        self.values.len() < self.max_values()
    }

    fn push(&mut self, field: &Field, value: Value) {
        if self.room() {
            self.values.push((field.name(), value));
        }
    }

    /// The fields as `key=value`, for an event without a message.
    pub(super) fn summary(&self) -> String {
        let mut w = BoundedWriter::new(self.message_limit());
        for (i, (key, value)) in self.values.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            let written = match value {
                Value::String(s) => write!(w, "{sep}{key}={s}"),
                other => write!(w, "{sep}{key}={other}"),
            };
            if written.is_err() {
                break;
            }
        }
        w.buf
    }
}

fn is_error_name(name: &str) -> bool {
    name == "error" || name == "err"
}

impl Visit for EventFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if name == "message" {
            self.message = Some(debug_bounded(value, self.message_limit()));
        } else if self.purpose == Purpose::Report && is_error_name(name) {
            // `error = %e` or `error = ?e`: known only as text.
            let text = debug_bounded(value, limits::MAX_EXCEPTION_MESSAGE_BYTES);
            self.exceptions
                .push(ExceptionInfo::new(type_from_text(&text), text));
        } else if self.room() {
            let text = debug_bounded(value, self.value_limit());
            self.values.push((name, Value::String(text)));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(str_bounded(value, self.message_limit()));
        } else if self.room() {
            let text = str_bounded(value, self.value_limit());
            self.values.push((field.name(), Value::String(text)));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Value::Bool(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, f64_value(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn Error + 'static)) {
        match self.purpose {
            Purpose::Report => {
                // Read through a wrapper so the outer error is named as a
                // source is (its `dyn Error` type says nothing).
                let (links, _) = crate::capture::error::chain(&Outer(value));
                self.exceptions.extend(links.into_iter().skip(1));
            }
            Purpose::Breadcrumb => {
                if self.room() {
                    let (text, _) = display_bounded(value, self.value_limit());
                    self.values.push((field.name(), Value::String(text)));
                }
            }
        }
    }
}

/// A `dyn Error` seen as the source of an error, for its type name.
struct Outer<'a>(&'a (dyn Error + 'static));

impl fmt::Debug for Outer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Outer")
    }
}

impl fmt::Display for Outer<'_> {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

impl Error for Outer<'_> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self.0)
    }
}

/// The type of an error known as text: the leading identifier of a `Debug`
/// form (`SaveError { .. }`), else `Error`.
fn type_from_text(text: &str) -> String {
    let ident: String = text
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
        .take(limits::MAX_NAME_BYTES)
        .collect();
    if ident.starts_with(|c: char| c.is_ascii_uppercase()) {
        ident
    } else {
        "Error".to_owned()
    }
}

fn f64_value(value: f64) -> Value {
    serde_json::Number::from_f64(value)
        .map(Value::Number)
        .unwrap_or_else(|| Value::String(value.to_string()))
}

/// The first `limit` bytes of `value` (on a character boundary, then `…`),
/// copied without copying the rest.
fn str_bounded(value: &str, limit: usize) -> String {
    if value.len() <= limit {
        return value.to_owned();
    }
    let mut end = limit;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let mut text = String::with_capacity(end + '…'.len_utf8());
    text.push_str(&value[..end]);
    text.push('…');
    text
}

/// `value`'s `Debug` form in at most `limit` bytes; a panicking impl
/// yields a placeholder.
fn debug_bounded(value: &dyn fmt::Debug, limit: usize) -> String {
    struct AsDisplay<'a>(&'a dyn fmt::Debug);
    impl fmt::Display for AsDisplay<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt::Debug::fmt(self.0, f)
        }
    }
    let mut w = BoundedWriter::new(limit);
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let _ = write!(w, "{}", AsDisplay(value));
        w
    }));
    match outcome {
        Ok(w) => w.buf,
        Err(payload) => format!(
            "<Debug panicked: {}>",
            crate::capture::panic::payload_text(&*payload)
        ),
    }
}

fn display_bounded(value: &dyn fmt::Display, limit: usize) -> (String, bool) {
    crate::capture::error::display_bounded(value, limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_error_is_named_by_its_leading_type_name() {
        assert_eq!(type_from_text("SaveError { path: \"/x\" }"), "SaveError");
        assert_eq!(type_from_text("Os { code: 2 }"), "Os");
        assert_eq!(type_from_text("disk full"), "Error");
        assert_eq!(type_from_text(""), "Error");
    }

    #[test]
    fn a_long_str_is_cut_on_a_character_boundary() {
        assert_eq!(str_bounded("ééé", 3), "é…");
        assert_eq!(str_bounded("ok", 3), "ok");
    }
}
