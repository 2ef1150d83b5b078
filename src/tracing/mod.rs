//! A [`tracing_subscriber::Layer`] that turns tracing events into reports
//! and breadcrumbs (feature `tracing`).
//!
//! ```
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let subscriber = tracing_subscriber::registry().with(crashbox::tracing::layer());
//! let (_, reports) = crashbox::testing::capture(|| {
//!     tracing::subscriber::with_default(subscriber, || {
//!         tracing::info!(user_id = 7, "loading the profile");
//!         let err = std::io::Error::other("disk full");
//!         tracing::error!(error = &err as &dyn std::error::Error, "saving failed");
//!     })
//! });
//! let report = &reports[0];
//! assert_eq!(report.message, "saving failed");
//! assert_eq!(report.exception_types(), ["std::io::Error"]);
//! assert_eq!(report.breadcrumbs[0].message, "loading the profile");
//! assert_eq!(report.breadcrumbs[0].data["user_id"], 7);
//! ```
//!
//! - An event at or above the report level (default `ERROR`) becomes a
//!   report, through [`Event`](crate::Event): its message is the event's
//!   message, its location the event's own file and line, its exceptions the
//!   error fields (a `&dyn Error` field gives the whole source chain; an
//!   `error` or `err` field recorded with `%` or `?` gives one exception),
//!   and its other fields become extra values, with `tracing.target` and
//!   `spans`: the span stack, root first, each `{"name", "fields"}`.
//! - An event at or above the breadcrumb level (default `INFO`) and below the
//!   report level becomes a breadcrumb: the message (or the fields as
//!   `key=value` without one), the target as category, the level, and the
//!   fields as data.
//! - Lower events are ignored, and so is every event raised on crashbox's own
//!   threads or inside `before_send`.
//!
//! Values are bounded as they are formatted (a field's text stops at
//! [`MAX_EXTRA_BYTES`](crate::limits::MAX_EXTRA_BYTES)), a `Debug` impl that
//! panics yields a placeholder, and while nothing receives reports the layer
//! does nothing beyond a comparison and an atomic load.
//!
//! The layer disables nothing for the rest of the subscriber: a layer's
//! `enabled` applies to every layer beside it, so it would hide debug events
//! from an fmt layer too. To have tracing skip the events crashbox ignores
//! before their fields are even built, give the layer a per-layer filter:
//! `layer.with_filter(layer.level_filter())`.
mod fields;

use std::borrow::Cow;

use ::tracing::span::{Attributes, Id, Record};
use ::tracing::{Metadata, Subscriber};
use serde_json::{Map, Value};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::capture::install::is_active;
use crate::limits;
use crate::reentry::Reentry;
use crate::report::Level;
use crate::scope::Crumb;
use fields::{EventFields, Purpose, SpanFields};

/// Spans of the current stack kept in a report's `spans` (the innermost).
pub const MAX_SPANS: usize = 32;
/// Fields kept per span.
pub const MAX_SPAN_FIELDS: usize = 32;
/// Bytes kept of one span field's or breadcrumb datum's text.
const MAX_SMALL_VALUE_BYTES: usize = 1024;
/// Extra keys the layer sets itself; a field of the same name is kept as `field.<name>`.
const TARGET_KEY: &str = "tracing.target";
const SPANS_KEY: &str = "spans";

/// The layer: add it to a `tracing_subscriber::registry()`.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let layer = crashbox::tracing::layer()
///     .report_level(tracing::Level::WARN)
///     .breadcrumb_level(tracing::Level::DEBUG);
/// let _subscriber = tracing_subscriber::registry().with(layer);
/// ```
pub fn layer() -> CrashboxLayer {
    CrashboxLayer::default()
}

/// Reports and breadcrumbs from tracing events; see [the module](self).
#[derive(Clone, Debug)]
pub struct CrashboxLayer {
    report_level: ::tracing::Level,
    breadcrumb_level: ::tracing::Level,
}

impl Default for CrashboxLayer {
    fn default() -> Self {
        CrashboxLayer {
            report_level: ::tracing::Level::ERROR,
            breadcrumb_level: ::tracing::Level::INFO,
        }
    }
}

impl CrashboxLayer {
    /// Events at `level` or more severe become reports (default `ERROR`).
    #[must_use]
    pub fn report_level(mut self, level: ::tracing::Level) -> Self {
        self.report_level = level;
        self
    }

    /// Events at `level` or more severe, and less severe than the report
    /// level, become breadcrumbs (default `INFO`); less severe ones are ignored.
    #[must_use]
    pub fn breadcrumb_level(mut self, level: ::tracing::Level) -> Self {
        self.breadcrumb_level = level;
        self
    }

    /// The most verbose level the layer uses: a filter for
    /// [`with_filter`](tracing_subscriber::Layer::with_filter), so the events
    /// it would ignore are skipped for it alone.
    ///
    /// ```
    /// use tracing_subscriber::layer::SubscriberExt;
    /// use tracing_subscriber::Layer;
    ///
    /// let layer = crashbox::tracing::layer();
    /// let filter = layer.level_filter();
    /// let _subscriber = tracing_subscriber::registry().with(layer.with_filter(filter));
    /// ```
    pub fn level_filter(&self) -> LevelFilter {
        // tracing orders levels by verbosity: the larger is the more verbose.
        LevelFilter::from_level(std::cmp::max(self.report_level, self.breadcrumb_level))
    }

    fn reports(&self, level: &::tracing::Level) -> bool {
        *level <= self.report_level
    }

    fn keeps(&self, level: &::tracing::Level) -> bool {
        self.reports(level) || *level <= self.breadcrumb_level
    }
}

fn crashbox_level(level: &::tracing::Level) -> Level {
    match *level {
        ::tracing::Level::ERROR => Level::Error,
        ::tracing::Level::WARN => Level::Warning,
        ::tracing::Level::INFO => Level::Info,
        _ => Level::Debug,
    }
}

impl<S> Layer<S> for CrashboxLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    // A layer's interest and `enabled` decide for the whole subscriber, so
    // the layer says yes to everything (an fmt layer beside it keeps its
    // debug events) and ignores what it does not use in `on_event`, with one
    // comparison. A per-layer filter (`with_filter`) narrows it for itself.
    fn register_callsite(
        &self,
        _metadata: &'static Metadata<'static>,
    ) -> ::tracing::subscriber::Interest {
        ::tracing::subscriber::Interest::always()
    }

    fn enabled(&self, _metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // No opinion: `Some(level)` would lower the whole subscriber's maximum.
        None
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !is_active() || Reentry::active() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SpanFields::default();
        {
            let _inside = Reentry::enter();
            attrs.record(&mut fields);
        }
        span.extensions_mut().replace(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if !is_active() || Reentry::active() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        // Formatted before the span's extensions are locked: a `Debug` that
        // logs must not find them locked by this thread.
        let mut recorded = SpanFields::default();
        {
            let _inside = Reentry::enter();
            values.record(&mut recorded);
        }
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<SpanFields>() {
            Some(fields) => {
                for (name, value) in recorded.fields {
                    fields.set(name, value);
                }
            }
            None => extensions.insert(recorded),
        }
    }

    fn on_event(&self, event: &::tracing::Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        let level = metadata.level();
        if !self.keeps(level) || !is_active() || Reentry::active() {
            return;
        }
        if self.reports(level) {
            report(event, &ctx);
        } else {
            breadcrumb(event);
        }
    }
}

/// Records `event`'s fields with the thread marked as inside crashbox: a
/// field whose `Debug` panics is caught silently, and an event logged by a
/// field's `Debug` is ignored.
fn record(event: &::tracing::Event<'_>, fields: &mut EventFields) {
    let _inside = Reentry::enter();
    event.record(fields);
}

#[inline(never)]
fn breadcrumb(event: &::tracing::Event<'_>) {
    let metadata = event.metadata();
    let mut fields = EventFields::new(Purpose::Breadcrumb);
    record(event, &mut fields);
    let message = match fields.message.take() {
        Some(message) => message,
        None => fields.summary(),
    };
    let mut crumb = Crumb::now(
        message,
        Some(Cow::Borrowed(metadata.target())),
        crashbox_level(metadata.level()),
    );
    crumb.data = fields
        .values
        .into_iter()
        .map(|(key, value)| (Cow::Borrowed(key), value))
        .collect();
    crate::scope::add_crumb(crumb);
}

#[inline(never)]
fn report<S>(event: &::tracing::Event<'_>, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let metadata = event.metadata();
    let mut fields = EventFields::new(Purpose::Report);
    record(event, &mut fields);

    let mut report = crate::Event::new(crashbox_level(metadata.level()));
    match fields.message.take() {
        Some(message) => report = report.message(message),
        None if fields.exceptions.is_empty() => {
            let summary = fields.summary();
            report = report.message(if summary.is_empty() {
                metadata.name()
            } else {
                &summary
            });
        }
        // The message is the first exception's.
        None => {}
    }
    for link in std::mem::take(&mut fields.exceptions) {
        report = report.exception(link.ty, link.message);
    }
    report = match metadata.file() {
        Some(file) => report.location(file, metadata.line().unwrap_or(0), 0),
        None => report.location(
            metadata.module_path().unwrap_or(metadata.target()),
            metadata.line().unwrap_or(0),
            0,
        ),
    };
    report = report.extra(TARGET_KEY, metadata.target());
    if let Some(spans) = spans(event, ctx) {
        report = report.extra(SPANS_KEY, spans);
    }
    for (key, value) in fields.values {
        report = if key == TARGET_KEY || key == SPANS_KEY {
            report.extra(format!("field.{key}"), value)
        } else {
            report.extra(key, value)
        };
    }
    report.capture();
}

/// The span stack of `event`, root first, as JSON within one extra value's
/// budget: the innermost [`MAX_SPANS`] by name, and their fields while they
/// fit, innermost first.
fn spans<S>(event: &::tracing::Event<'_>, ctx: &Context<'_, S>) -> Option<Value>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let scope = ctx.event_scope(event)?;
    // `[`, `]` and a margin for the cut marker.
    let mut budget = limits::MAX_EXTRA_BYTES.saturating_sub(8);
    // Innermost first: (entry with empty fields, its fields).
    let mut kept: Vec<(Map<String, Value>, Map<String, Value>)> = Vec::new();
    for span in scope.take(MAX_SPANS) {
        let mut entry = Map::new();
        entry.insert("name".to_owned(), Value::String(span.name().to_owned()));
        entry.insert("fields".to_owned(), Value::Object(Map::new()));
        let named = json_len(&entry) + 1;
        if named > budget {
            break;
        }
        budget -= named;
        let fields = span
            .extensions()
            .get::<SpanFields>()
            .map(|f| {
                f.fields
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        kept.push((entry, fields));
    }
    for (entry, fields) in &mut kept {
        if fields.is_empty() {
            continue;
        }
        // What the fields add to the entry's `{}`.
        let more = json_len(fields).saturating_sub(2);
        if more <= budget {
            budget -= more;
            entry.insert("fields".to_owned(), Value::Object(std::mem::take(fields)));
        }
    }
    Some(Value::Array(
        kept.into_iter()
            .rev()
            .map(|(entry, _)| Value::Object(entry))
            .collect(),
    ))
}

fn json_len(map: &Map<String, Value>) -> usize {
    serde_json::to_string(map).map_or(usize::MAX / 2, |s| s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_filter_is_the_more_verbose_of_the_two_levels() {
        assert_eq!(layer().level_filter(), LevelFilter::INFO);
        let warn_only = layer()
            .report_level(::tracing::Level::WARN)
            .breadcrumb_level(::tracing::Level::ERROR);
        assert_eq!(warn_only.level_filter(), LevelFilter::WARN);
        let debug = layer().breadcrumb_level(::tracing::Level::DEBUG);
        assert_eq!(debug.level_filter(), LevelFilter::DEBUG);
    }
}
