//! `crashbox::tracing`: the layer that turns tracing events into reports
//! (at the event's own location, with its error chain, fields and spans)
//! and breadcrumbs, beside other layers and filters, bounded whatever the
//! fields, and never from inside crashbox.
use std::error::Error;
use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crashbox::limits::MAX_EXTRA_BYTES;
use crashbox::{testing, Kind, Level, Options, Report, MAX_EVENT_EXTRA};
use serde_json::json;
use tracing::callsite::{Callsite, Identifier};
use tracing::field::{FieldSet, Value};
use tracing::metadata::Kind as MetadataKind;
use tracing::subscriber::Interest;
use tracing::{Dispatch, Metadata, Subscriber};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

use crate::util::{without_client, MemoryClient};

/// The target of this file's events: its module path.
const TARGET: &str = module_path!();

/// The reports `f` captures with `subscriber` as this thread's default.
fn reports_with(
    subscriber: impl Subscriber + Send + Sync + 'static,
    f: impl FnOnce(),
) -> Vec<Report> {
    let _turn = without_client();
    let ((), reports) = testing::capture(|| tracing::subscriber::with_default(subscriber, f));
    reports
}

/// The reports `f` captures through a registry with the default layer only.
fn reports_of(f: impl FnOnce()) -> Vec<Report> {
    reports_with(
        tracing_subscriber::registry().with(crashbox::tracing::layer()),
        f,
    )
}

/// The one report `f` captures through the default layer.
fn report_of(f: impl FnOnce()) -> Report {
    let mut reports = reports_of(f);
    assert_eq!(reports.len(), 1, "{reports:#?}");
    reports.remove(0)
}

/// An application error whose source is an I/O error.
#[derive(Debug)]
struct SaveError {
    path: &'static str,
    source: std::io::Error,
}

impl fmt::Display for SaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not save {}", self.path)
    }
}

impl Error for SaveError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

fn save_error() -> SaveError {
    SaveError {
        path: "/srv/profile.json",
        source: std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left"),
    }
}

#[test]
fn an_error_event_is_a_report_at_the_events_own_file_and_line() {
    let mut line = 0;
    let report = report_of(|| {
        line = line!() + 1;
        tracing::error!("payment declined");
    });
    assert_eq!(report.message, "payment declined");
    assert_eq!(report.level, Level::Error);
    assert_eq!(report.kind, Kind::Message);
    let location = report.location.as_ref().expect("a location");
    assert!(
        location.file.ends_with("integrations/tracing.rs"),
        "{}",
        location.file
    );
    assert_eq!((location.line, location.column), (line, 0));
    assert_eq!(report.extra["tracing.target"], TARGET);
    assert!(
        !report.extra.contains_key("spans"),
        "no span: {:?}",
        report.extra
    );
}

#[test]
fn an_error_field_gives_the_whole_source_chain() {
    let err = save_error();
    let report = report_of(|| {
        tracing::error!(error = &err as &dyn Error, "saving the profile failed");
    });
    assert_eq!(report.kind, Kind::Error);
    assert_eq!(report.message, "saving the profile failed");
    assert_eq!(report.exception_types(), ["SaveError", "std::io::Error"]);
    assert_eq!(
        report.exceptions[0].message,
        "could not save /srv/profile.json"
    );
    assert_eq!(report.exceptions[1].message, "no space left");
    assert!(
        !report.extra.contains_key("error"),
        "the chain is not extra too: {:?}",
        report.extra
    );

    // Without a message, the message is the first exception's.
    let report = report_of(|| {
        tracing::error!(cause = &err as &dyn Error);
    });
    assert_eq!(report.message, "could not save /srv/profile.json");
    assert_eq!(report.exception_types(), ["SaveError", "std::io::Error"]);
}

#[test]
fn display_and_debug_error_fields_are_one_exception_each() {
    let io = std::io::Error::other("disk full");
    let err = save_error();
    let reports = reports_of(|| {
        tracing::error!(error = %io, "flushing failed");
        tracing::error!(err = ?err);
    });
    assert_eq!(reports.len(), 2, "{reports:#?}");

    let display = &reports[0];
    assert_eq!(display.message, "flushing failed");
    assert_eq!(display.exception_types(), ["Error"]);
    assert_eq!(display.exceptions[0].message, "disk full");

    let debug = &reports[1];
    assert_eq!(debug.exception_types(), ["SaveError"]);
    assert_eq!(debug.exceptions[0].message, format!("{err:?}"));
    assert_eq!(debug.message, format!("{err:?}"), "the exception's text");
}

#[test]
fn other_fields_become_extra_values_of_their_own_json_types() {
    let report = report_of(|| {
        tracing::error!(
            user_id = 7u64,
            delta = -3i64,
            ratio = 0.5,
            retried = true,
            name = "bob",
            shown = %"a b",
            ids = ?vec![1, 2],
            "checkout failed"
        );
    });
    let extra = &report.extra;
    assert_eq!(extra["user_id"], json!(7));
    assert_eq!(extra["delta"], json!(-3));
    assert_eq!(extra["ratio"], json!(0.5));
    assert_eq!(extra["retried"], json!(true));
    assert_eq!(extra["name"], json!("bob"));
    assert_eq!(extra["shown"], json!("a b"));
    assert_eq!(extra["ids"], json!("[1, 2]"));
    assert!(!extra.contains_key("message"), "{extra:?}");
    assert!(report.truncated.is_empty(), "{:?}", report.truncated);
}

#[test]
fn the_span_stack_is_extra_spans_root_first_with_fields() {
    let report = report_of(|| {
        let request = tracing::info_span!("request", request_id = 42u64, path = "/save");
        let _request = request.enter();
        let step = tracing::info_span!("save", step = "write", bytes = tracing::field::Empty);
        step.record("bytes", 512u64);
        let _step = step.enter();
        tracing::error!("write failed");
    });
    assert_eq!(
        report.extra["spans"],
        json!([
            {"name": "request", "fields": {"request_id": 42, "path": "/save"}},
            {"name": "save", "fields": {"step": "write", "bytes": 512}},
        ])
    );
}

#[test]
fn a_deep_span_stack_with_large_fields_stays_one_json_array() {
    let big = "s".repeat(4 * 1024);
    let report = report_of(|| {
        // Each span a child of the one before.
        let mut spans = vec![tracing::info_span!(
            "level",
            depth = 0u64,
            big = big.as_str()
        )];
        for depth in 1..100u64 {
            let parent = spans.last().unwrap();
            spans.push(tracing::info_span!(parent: parent, "level", depth, big = big.as_str()));
        }
        let _entered = spans.last().unwrap().enter();
        tracing::error!("deep");
    });
    let spans = report.extra["spans"].as_array().expect("an array");
    assert!(
        !spans.is_empty() && spans.len() <= crashbox::tracing::MAX_SPANS,
        "{}",
        spans.len()
    );
    assert!(report.extra["spans"].to_string().len() <= MAX_EXTRA_BYTES);
    // The innermost 32 spans are kept, root first: the inner ones with their
    // fields while they fit, the outer ones by name.
    assert_eq!(spans.len(), crashbox::tracing::MAX_SPANS);
    let depths: Vec<u64> = spans
        .iter()
        .filter_map(|s| s["fields"]["depth"].as_u64())
        .collect();
    assert!(depths.len() >= 2, "{depths:?}");
    let first = 100 - depths.len() as u64;
    assert_eq!(depths, (first..100).collect::<Vec<_>>());
    let by_name = &spans[..spans.len() - depths.len()];
    assert!(!by_name.is_empty());
    for span in by_name {
        assert_eq!(span, &json!({"name": "level", "fields": {}}));
    }
}

#[test]
fn info_and_warn_events_are_breadcrumbs_on_the_next_report() {
    let report = report_of(|| {
        tracing::info!(items = 3u64, "cart loaded");
        tracing::warn!("payment provider slow");
        tracing::info!(user = "bob", attempt = 2u64);
        tracing::error!("payment failed");
    });
    assert_eq!(report.message, "payment failed");
    let crumbs = &report.breadcrumbs;
    assert_eq!(crumbs.len(), 3, "{crumbs:#?}");
    assert_eq!(crumbs[0].message, "cart loaded");
    assert_eq!(crumbs[0].level, Level::Info);
    assert_eq!(crumbs[0].category.as_deref(), Some(TARGET));
    assert_eq!(crumbs[0].data["items"], json!(3));
    assert_eq!(crumbs[1].message, "payment provider slow");
    assert_eq!(crumbs[1].level, Level::Warning);
    assert_eq!(crumbs[2].message, "user=bob attempt=2");
    assert_eq!(crumbs[2].data["user"], json!("bob"));
}

#[test]
fn debug_and_trace_events_are_ignored_by_default() {
    let report = report_of(|| {
        tracing::debug!("cache probe");
        tracing::trace!(key = "k", "lookup");
        tracing::error!("lookup failed");
    });
    assert!(report.breadcrumbs.is_empty(), "{:#?}", report.breadcrumbs);

    let reports = reports_of(|| {
        tracing::info!("only a breadcrumb");
        tracing::warn!("only a breadcrumb too");
    });
    assert!(reports.is_empty(), "{reports:#?}");
}

#[test]
fn report_level_warn_makes_warn_events_reports_and_breadcrumb_level_debug_keeps_debug() {
    let layer = crashbox::tracing::layer()
        .report_level(tracing::Level::WARN)
        .breadcrumb_level(tracing::Level::DEBUG);
    let reports = reports_with(tracing_subscriber::registry().with(layer), || {
        tracing::trace!("ignored");
        tracing::debug!("probe");
        tracing::info!("started");
        tracing::warn!("queue nearly full");
    });
    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert_eq!(reports[0].level, Level::Warning);
    assert_eq!(reports[0].message, "queue nearly full");
    let crumbs: Vec<(&str, Level)> = reports[0]
        .breadcrumbs
        .iter()
        .map(|b| (b.message.as_str(), b.level))
        .collect();
    assert_eq!(crumbs, [("probe", Level::Debug), ("started", Level::Info)]);
}

/// A writer for the fmt layer that keeps what it is given.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn fmt_layer<S>(buffer: &Buffer) -> impl Layer<S>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let buffer = buffer.clone();
    tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(move || buffer.clone())
}

#[test]
fn the_layer_works_beside_an_fmt_layer_and_an_env_filter_without_hiding_their_events() {
    let out = Buffer::default();
    let subscriber = tracing_subscriber::registry()
        .with(EnvFilter::new("debug"))
        .with(fmt_layer(&out))
        .with(crashbox::tracing::layer());
    let reports = reports_with(subscriber, || {
        tracing::trace!("filtered out by the env filter");
        tracing::debug!("seen by fmt only");
        tracing::info!("seen by both");
        tracing::error!("reported");
    });
    let text = out.text();
    assert!(text.contains("seen by fmt only"), "{text}");
    assert!(
        text.contains("seen by both") && text.contains("reported"),
        "{text}"
    );
    assert!(!text.contains("filtered out"), "{text}");
    assert_eq!(reports.len(), 1, "{reports:#?}");
    let crumbs: Vec<&str> = reports[0]
        .breadcrumbs
        .iter()
        .map(|b| b.message.as_str())
        .collect();
    assert_eq!(crumbs, ["seen by both"]);
}

#[test]
fn a_per_layer_filter_narrows_the_layer_alone() {
    let out = Buffer::default();
    let subscriber = tracing_subscriber::registry()
        .with(fmt_layer(&out))
        .with(crashbox::tracing::layer().with_filter(LevelFilter::ERROR));
    let reports = reports_with(subscriber, || {
        tracing::info!("not a breadcrumb under the filter");
        tracing::error!("reported");
    });
    assert!(
        out.text().contains("not a breadcrumb under the filter"),
        "{}",
        out.text()
    );
    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert!(
        reports[0].breadcrumbs.is_empty(),
        "{:#?}",
        reports[0].breadcrumbs
    );

    // The layer's own filter: what it ignores is skipped for it alone.
    let out = Buffer::default();
    let layer = crashbox::tracing::layer();
    let filter = layer.level_filter();
    let subscriber = tracing_subscriber::registry()
        .with(fmt_layer(&out).with_filter(LevelFilter::DEBUG))
        .with(layer.with_filter(filter));
    let reports = reports_with(subscriber, || {
        tracing::debug!("fmt only");
        tracing::info!("a breadcrumb");
        tracing::error!("reported");
    });
    assert!(out.text().contains("fmt only"), "{}", out.text());
    let crumbs: Vec<&str> = reports[0]
        .breadcrumbs
        .iter()
        .map(|b| b.message.as_str())
        .collect();
    assert_eq!(crumbs, ["a breadcrumb"]);
}

/// Writes 10 MB of `Debug` text in 1 KiB pieces, counting the pieces taken.
struct Huge(Arc<AtomicUsize>);

impl fmt::Debug for Huge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let piece = "d".repeat(1024);
        for _ in 0..10 * 1024 {
            f.write_str(&piece)?;
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[test]
fn a_10_mb_field_is_cut_while_it_is_formatted() {
    let big = "x".repeat(10 * 1024 * 1024);
    let pieces = Arc::new(AtomicUsize::new(0));
    let huge = Huge(pieces.clone());
    let report = report_of(|| {
        tracing::error!(big = big.as_str(), huge = ?huge, "large fields");
    });
    for key in ["big", "huge"] {
        let json = report.extra[key].to_string();
        assert!(
            json.len() <= MAX_EXTRA_BYTES + 16,
            "{key}: {} bytes",
            json.len()
        );
        assert!(
            report
                .truncated
                .iter()
                .any(|t| t == &format!("extra.{key}")),
            "{key}: {:?}",
            report.truncated
        );
    }
    let taken = pieces.load(Ordering::Relaxed);
    assert!(
        taken <= MAX_EXTRA_BYTES / 1024 + 1,
        "formatting went on after the limit: {taken} pieces of 1 KiB"
    );

    // As a breadcrumb, a smaller bound.
    pieces.store(0, Ordering::Relaxed);
    let report = report_of(|| {
        tracing::info!(big = big.as_str(), huge = ?huge, "large fields");
        tracing::error!("next");
    });
    let crumb = &report.breadcrumbs[0];
    assert!(crumb.data["big"].to_string().len() <= 1024 + 16);
    assert!(crumb.data["huge"].to_string().len() <= 1024 + 16);
    assert!(pieces.load(Ordering::Relaxed) <= 2);
}

/// A callsite made at run time, for an event with more fields than a macro takes.
struct RuntimeCallsite(OnceLock<&'static Metadata<'static>>);

impl Callsite for RuntimeCallsite {
    fn set_interest(&self, _: Interest) {}

    fn metadata(&self) -> &Metadata<'_> {
        self.0.get().expect("metadata set")
    }
}

/// Emits an event at `level` with `count` fields `f0`, `f1`, … of value `i`.
fn emit_with_fields(level: tracing::Level, count: usize) {
    let site: &'static RuntimeCallsite = Box::leak(Box::new(RuntimeCallsite(OnceLock::new())));
    let names: Vec<&'static str> = (0..count)
        .map(|i| &*Box::leak(format!("f{i}").into_boxed_str()))
        .collect();
    let fields = FieldSet::new(Box::leak(names.into_boxed_slice()), Identifier(site));
    let metadata: &'static Metadata<'static> = Box::leak(Box::new(Metadata::new(
        "many fields",
        TARGET,
        level,
        Some(file!()),
        Some(line!()),
        Some(module_path!()),
        fields,
        MetadataKind::EVENT,
    )));
    site.0.set(metadata).ok();
    let values: Vec<u64> = (0..count as u64).collect();
    let values: Vec<Option<&dyn Value>> = values.iter().map(|v| Some(v as &dyn Value)).collect();
    let set = metadata.fields().value_set_all(&values);
    tracing::Event::dispatch(metadata, &set);
}

#[test]
fn ten_thousand_fields_stay_bounded() {
    let report = report_of(|| {
        emit_with_fields(tracing::Level::INFO, 10_000);
        emit_with_fields(tracing::Level::ERROR, 10_000);
    });
    assert!(
        report.extra.len() <= MAX_EVENT_EXTRA,
        "{}",
        report.extra.len()
    );
    assert_eq!(
        report.extra["tracing.target"], TARGET,
        "the layer's keys come first"
    );
    assert_eq!(report.extra["f0"], json!(0));
    assert!(
        report.truncated.iter().any(|t| t == "extra"),
        "{:?}",
        report.truncated
    );
    // No message: the kept fields as `key=value`.
    assert!(
        report.message.starts_with("f0=0 f1=1 f2=2 "),
        "{}",
        report.message
    );
    assert!(report.message.ends_with(" f255=255"), "{}", report.message);
    let crumb = &report.breadcrumbs[0];
    assert!(
        crumb.data.len() <= crashbox::limits::MAX_PARTS,
        "{}",
        crumb.data.len()
    );
    assert!(crumb.message.len() <= crashbox::limits::MAX_BREADCRUMB_MESSAGE_BYTES + 3);
}

/// A value whose `Debug` panics.
struct Explodes;

impl fmt::Debug for Explodes {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("Debug exploded")
    }
}

#[test]
fn a_field_whose_debug_panics_leaves_a_placeholder() {
    let report = report_of(|| {
        tracing::info!(bad = ?Explodes, "before");
        let span = tracing::info_span!("job", bad = ?Explodes);
        let _span = span.enter();
        tracing::error!(bad = ?Explodes, good = 1u64, "still reported");
    });
    assert_eq!(report.message, "still reported");
    assert_eq!(report.extra["good"], json!(1));
    let placeholder = report.extra["bad"].as_str().expect("a string");
    assert!(placeholder.contains("Debug exploded"), "{placeholder}");
    assert!(
        report.extra["spans"][0]["fields"]["bad"]
            .as_str()
            .is_some_and(|s| s.contains("Debug exploded")),
        "{}",
        report.extra["spans"]
    );
    assert_eq!(report.breadcrumbs.len(), 1);
    assert!(report.breadcrumbs[0].data["bad"]
        .to_string()
        .contains("Debug exploded"));
}

#[test]
fn events_inside_before_send_are_neither_reports_nor_breadcrumbs() {
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(crashbox::tracing::layer()));
    let hook_calls = Arc::new(AtomicUsize::new(0));
    let (calls, hook_dispatch) = (hook_calls.clone(), dispatch.clone());
    let client = MemoryClient::start(Options::new().before_send(move |report| {
        calls.fetch_add(1, Ordering::SeqCst);
        tracing::dispatcher::with_default(&hook_dispatch, || {
            tracing::info!("breadcrumb from before_send");
            tracing::error!("error from before_send");
        });
        Some(report)
    }));
    let before = crashbox::stats();
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::error!("first app error");
    });
    let first = client.reports();
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::error!("second app error");
    });
    let second = client.reports();
    let after = crashbox::stats();

    assert_eq!(
        hook_calls.load(Ordering::SeqCst),
        2,
        "the hook ran once per report"
    );
    let messages: Vec<&str> = first
        .iter()
        .chain(&second)
        .map(|r| r.message.as_str())
        .collect();
    assert_eq!(messages, ["first app error", "second app error"]);
    assert!(
        second[0]
            .breadcrumbs
            .iter()
            .all(|b| !b.message.contains("before_send")),
        "{:#?}",
        second[0].breadcrumbs
    );
    assert_eq!(
        after.dropped_reentrant - before.dropped_reentrant,
        0,
        "the layer never even tried to capture from the hook"
    );
    // Flushing returned in time (`reports` asserts it): no deadlock.
    assert!(crashbox::flush(Duration::from_secs(30)));
}
