//! The worker's side: turns a [`Pending`] capture into a finished [`Report`].
//!
//! The steps, in order: symbolicate (cached), trim and mark in-app frames,
//! merge the scope, attach context, fit the size limits, run `before_send`.
mod fit;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::capture::backtrace::{InAppRules, SymbolCache};
use crate::capture::Captured;
use crate::options::{BeforeSend, Options};
use crate::report::{Kind, Report, Sdk};
use crate::stats::STATS;

/// What processing needs from the options.
pub(crate) struct Settings {
    pub release: Option<String>,
    pub environment: String,
    pub in_app: InAppRules,
    pub before_send: Option<BeforeSend>,
}

impl Settings {
    pub(crate) fn from_options(options: &Options) -> Self {
        Settings {
            release: options.release.clone(),
            environment: options.environment.clone(),
            in_app: InAppRules {
                include: options.in_app_prefixes(),
                exclude: options.in_app_exclude.clone(),
            },
            before_send: options.before_send.clone(),
        }
    }
}

/// Turns captures into reports; owns the symbol cache.
pub(crate) struct Processor {
    settings: Arc<Settings>,
    symbols: SymbolCache,
}

impl Processor {
    pub(crate) fn new(settings: Arc<Settings>) -> Self {
        Processor {
            settings,
            symbols: SymbolCache::new(),
        }
    }

    /// The finished report, or `None` when `before_send` dropped it (the
    /// caller counts it as filtered).
    pub(crate) fn process(&mut self, captured: Captured) -> Option<Report> {
        let resolvable = captured.resolvable_addresses();
        let Captured {
            id,
            timestamp_ms,
            level,
            kind,
            message,
            exceptions,
            addresses,
            location,
            thread,
            tags,
            extra,
            user,
            level_override,
            fingerprint,
            breadcrumbs,
            mut truncated,
            release,
            environment,
            ..
        } = captured;
        let (frames, cut) = self
            .symbols
            .frames(&addresses, &resolvable, &self.settings.in_app);
        if cut && !truncated.iter().any(|t| t == "frames") {
            truncated.push("frames".to_owned());
        }
        let level = match (kind, level_override) {
            (Kind::Panic, _) | (_, None) => level,
            (_, Some(scope_level)) => scope_level,
        };
        let timestamp = UNIX_EPOCH + Duration::from_millis(timestamp_ms);
        let mut report = Report {
            id,
            timestamp: crate::time::rfc3339_millis(timestamp),
            level,
            kind,
            message,
            exceptions,
            frames,
            location,
            thread,
            tags,
            extra,
            user,
            breadcrumbs,
            context: crate::context::get().clone(),
            release: release.or_else(|| self.settings.release.clone()),
            environment: environment.unwrap_or_else(|| self.settings.environment.clone()),
            sdk: Sdk::default(),
            fingerprint,
            truncated,
        };
        fit::fit(&mut report);
        self.before_send(report)
    }

    fn before_send(&self, report: Report) -> Option<Report> {
        let Some(hook) = &self.settings.before_send else {
            return Some(report);
        };
        let fallback = report.clone();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(report))) {
            Ok(report) => report,
            Err(_) => {
                STATS.before_send_panics.inc();
                Some(fallback)
            }
        }
    }
}
