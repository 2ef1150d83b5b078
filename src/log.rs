//! Integration with the `log` crate (feature `log`): a logger that wraps
//! another, so that error records become reports and lower ones
//! breadcrumbs, while the inner logger (`env_logger`, say) still writes
//! every record it did before.
//!
//! ```
//! use crashbox::log::Logger;
//!
//! /// The application's own logger, writing to stderr.
//! struct Stderr;
//!
//! impl log::Log for Stderr {
//!     fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
//!         metadata.level() <= log::Level::Warn
//!     }
//!     fn log(&self, record: &log::Record<'_>) {
//!         if self.enabled(record.metadata()) {
//!             eprintln!("{}: {}", record.level(), record.args());
//!         }
//!     }
//!     fn flush(&self) {}
//! }
//!
//! Logger::new(Stderr).init().expect("no other logger yet");
//! let (_, reports) = crashbox::testing::capture(|| {
//!     log::info!("loading config");
//!     log::error!(path = "/etc/app.toml"; "config is unreadable");
//! });
//! let report = &reports[0];
//! assert_eq!(report.message, "config is unreadable");
//! assert_eq!(report.extra["path"], "/etc/app.toml");
//! assert_eq!(report.breadcrumbs[0].message, "loading config");
//! ```
use std::borrow::Cow;

use ::log::{Level as LogLevel, LevelFilter, Log, Metadata, Record};
use serde_json::Value;

use crate::capture::error::display_bounded;
use crate::limits;
use crate::reentry::Reentry;
use crate::report::Level;
use crate::scope::Crumb;
use crate::Event;

/// A `log::Log` that reports records and passes each on to `inner`.
///
/// - Records at or above [`report_level`](Logger::report_level) (default
///   `Error`) become reports: the record's message, its file and line as
///   the location, its target as the `log.target` extra and its key-values
///   as extra values.
/// - Records at or above [`breadcrumb_level`](Logger::breadcrumb_level)
///   (default `Info`) and below the report level become breadcrumbs, with
///   their level and the target as the category.
/// - Records raised by crashbox's own threads (the HTTP client logs there
///   while it delivers) or inside `before_send` are only passed on.
///
/// `inner` decides what it writes, as before: its `enabled` is asked for
/// each record.
#[derive(Debug)]
pub struct Logger<L> {
    inner: L,
    report_level: LogLevel,
    breadcrumb_level: LevelFilter,
}

impl<L: Log> Logger<L> {
    /// Wraps `inner`, reporting `Error` records and keeping `Info` and up
    /// as breadcrumbs.
    pub fn new(inner: L) -> Self {
        Logger {
            inner,
            report_level: LogLevel::Error,
            breadcrumb_level: LevelFilter::Info,
        }
    }

    /// Records at or above `level` become reports (default `Error`).
    #[must_use]
    pub fn report_level(mut self, level: LogLevel) -> Self {
        self.report_level = level;
        self
    }

    /// Records at or above `level`, below the report level, become
    /// breadcrumbs (default `Info`; `LevelFilter::Off` for none).
    #[must_use]
    pub fn breadcrumb_level(mut self, level: LevelFilter) -> Self {
        self.breadcrumb_level = level;
        self
    }

    /// The most verbose level this logger needs to see: crashbox's own
    /// levels, or the inner logger's (`inner_max`) if more verbose.
    fn max_level(&self, inner_max: LevelFilter) -> LevelFilter {
        inner_max
            .max(self.breadcrumb_level)
            .max(self.report_level.to_level_filter())
    }

    /// Installs this logger as the `log` crate's, with `log::max_level`
    /// set to what it and the inner logger need (`Trace` for the inner
    /// logger, whose own level is not known here; use
    /// [`init_with_max_level`](Logger::init_with_max_level) to say it).
    /// Another logger already set is the `log` crate's error, as with any
    /// logger.
    pub fn init(self) -> Result<(), ::log::SetLoggerError>
    where
        L: Send + Sync + 'static,
    {
        self.init_with_max_level(LevelFilter::Trace)
    }

    /// [`init`](Logger::init), with the inner logger's most verbose level.
    pub fn init_with_max_level(self, inner_max: LevelFilter) -> Result<(), ::log::SetLoggerError>
    where
        L: Send + Sync + 'static,
    {
        let max = self.max_level(inner_max);
        ::log::set_boxed_logger(Box::new(self))?;
        ::log::set_max_level(max);
        Ok(())
    }

    /// The wrapped logger.
    pub fn inner(&self) -> &L {
        &self.inner
    }
}

fn level_of(level: LogLevel) -> Level {
    match level {
        LogLevel::Error => Level::Error,
        LogLevel::Warn => Level::Warning,
        LogLevel::Info => Level::Info,
        LogLevel::Debug | LogLevel::Trace => Level::Debug,
    }
}

impl<L: Log> Log for Logger<L> {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.breadcrumb_level
            || metadata.level() <= self.report_level
            || self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if self.inner.enabled(record.metadata()) {
            self.inner.log(record);
        }
        let level = record.level();
        let reported = level <= self.report_level;
        if !(reported || level <= self.breadcrumb_level)
            || Reentry::active()
            || !crate::capture::install::is_active()
        {
            return;
        }
        if reported {
            report(record);
        } else {
            let (message, _) = display_bounded(record.args(), limits::MAX_BREADCRUMB_MESSAGE_BYTES);
            let mut crumb = Crumb::now(
                message,
                Some(Cow::Owned(record.target().to_owned())),
                level_of(level),
            );
            crumb.data = key_values(record)
                .into_iter()
                .map(|(key, value)| (Cow::Owned(key), Value::String(value)))
                .collect();
            crate::scope::add_crumb(crumb);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

/// Reports `record`: its message, location, target and key-values.
fn report(record: &Record<'_>) {
    let (message, _) = display_bounded(record.args(), limits::MAX_MESSAGE_BYTES);
    let mut event = Event::new(level_of(record.level()))
        .message(message)
        .extra("log.target", record.target());
    match (record.file(), record.line()) {
        (Some(file), Some(line)) => event = event.location(file, line, 0),
        // No file: where the record came from, by its module.
        _ => {
            let module = record.module_path().unwrap_or(record.target());
            event = event.location(module, record.line().unwrap_or(0), 0);
        }
    }
    for (key, value) in key_values(record) {
        event = event.extra(key, value);
    }
    event.capture();
}

/// The record's key-values, each value as its `Display` text (bounded);
/// at most [`crate::MAX_EVENT_EXTRA`].
fn key_values(record: &Record<'_>) -> Vec<(String, String)> {
    struct Collect(Vec<(String, String)>);
    impl<'kvs> ::log::kv::VisitSource<'kvs> for Collect {
        fn visit_pair(
            &mut self,
            key: ::log::kv::Key<'kvs>,
            value: ::log::kv::Value<'kvs>,
        ) -> Result<(), ::log::kv::Error> {
            if self.0.len() >= crate::MAX_EVENT_EXTRA {
                return Err(::log::kv::Error::msg("enough key-values"));
            }
            let (value, _) = display_bounded(&value, limits::MAX_EXTRA_BYTES);
            self.0.push((key.as_str().to_owned(), value));
            Ok(())
        }
    }
    let mut collect = Collect(Vec::new());
    let _ = record.key_values().visit(&mut collect);
    collect.0
}
