//! The worker's side: turns a [`Pending`] capture into a finished [`Report`].
//!
//! The steps, in order: scrub secrets, symbolicate (cached), trim and mark
//! in-app frames, merge the scope, attach context, fingerprint, fit the size
//! limits. The worker then aggregates repeats, runs `before_send` and
//! applies the rate limit.
pub(crate) mod aggregate;
pub(crate) mod fingerprint;
mod fit;
pub(crate) mod scrub;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;

use crate::capture::backtrace::{InAppRules, SymbolCache};
use crate::capture::Captured;
use crate::options::{BeforeSend, Options};
use crate::report::User;
use crate::report::{Kind, Report, Sdk};
use crate::stats::STATS;
use scrub::Scrubber;

/// What processing needs from the options.
pub(crate) struct Settings {
    pub release: Option<String>,
    pub environment: String,
    pub in_app: InAppRules,
    pub before_send: Option<BeforeSend>,
    pub aggregation_window: Duration,
    pub max_reports_per_minute: u32,
    pub sample_rate: f64,
    pub scrubber: Option<Scrubber>,
    /// The login name to fill in as the username, with `send_default_pii`.
    pub default_username: Option<String>,
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
            aggregation_window: options.aggregation_window,
            max_reports_per_minute: options.max_reports_per_minute,
            sample_rate: options.sample_rate,
            scrubber: options.scrub.then(|| Scrubber::new(&options.scrub_keys)),
            default_username: if options.send_default_pii {
                ["USER", "LOGNAME", "USERNAME"]
                    .iter()
                    .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
            } else {
                None
            },
        }
    }

    /// Whether a capture of `kind` is kept by the sample rate.
    pub(crate) fn sampled_in(&self, kind: Kind) -> bool {
        if kind == Kind::Panic || self.sample_rate >= 1.0 {
            return true;
        }
        let draw = (crate::capture::random_u128() >> 75) as f64 / (1u64 << 53) as f64;
        draw < self.sample_rate
    }

    /// Redacts secrets in a capture, before it is spooled or processed;
    /// once per capture.
    pub(crate) fn scrub(&self, captured: &mut Captured) {
        let Some(scrubber) = self.scrubber.as_ref().filter(|_| !captured.scrubbed) else {
            return;
        };
        captured.scrubbed = true;
        scrubber.scrub_text(&mut captured.message);
        for e in &mut captured.exceptions {
            scrubber.scrub_text(&mut e.message);
        }
        for (key, value) in &mut captured.tags {
            scrubber.scrub_entry(key, value);
        }
        scrub_map(scrubber, &mut captured.extra);
        for field in captured.user.iter_mut().flat_map(User::fields_mut) {
            scrubber.scrub_text(field);
        }
        for crumb in &mut captured.breadcrumbs {
            scrubber.scrub_text(&mut crumb.message);
            scrub_map(scrubber, &mut crumb.data);
        }
        for part in captured.fingerprint.iter_mut().flatten() {
            scrubber.scrub_text(part);
        }
    }
}

/// Values under secret keys become `[redacted]` (a null stays null); the
/// rest are scrubbed inside.
fn scrub_map(scrubber: &Scrubber, map: &mut BTreeMap<String, Value>) {
    for (key, value) in map.iter_mut() {
        if scrubber.is_secret_key(key) {
            if !value.is_null() {
                *value = Value::String(scrub::REDACTED.to_owned());
            }
        } else {
            scrubber.scrub_value(value);
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

    /// The finished report, before aggregation and `before_send`.
    pub(crate) fn process(&mut self, mut captured: Captured) -> Report {
        self.settings.scrub(&mut captured);
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
            mut user,
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
        if let Some(name) = &self.settings.default_username {
            let user = user.get_or_insert_with(User::default);
            if user.username.is_none() {
                user.username = Some(name.clone());
            }
        }
        let group = fingerprint::hash(
            || fingerprint::default_hash(kind, &message, &exceptions, &frames, location.as_ref()),
            fingerprint.as_deref(),
        );
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
            group: fingerprint::to_hex(group),
            count: 1,
            truncated,
        };
        fit::fit(&mut report);
        report
    }

    /// Runs `before_send`: `None` when it dropped the report (the caller
    /// counts it as filtered). A panicking hook is caught and counted, and
    /// the report goes on unchanged; while the hook runs, captures on this
    /// thread are ignored (and counted), so a hook that reports cannot loop.
    pub(crate) fn before_send(&self, report: Report) -> Option<Report> {
        let Some(hook) = &self.settings.before_send else {
            return Some(report);
        };
        let fallback = report.clone();
        let _reentry = crate::capture::Reentry::enter();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(report))) {
            Ok(report) => report,
            Err(_) => {
                STATS.before_send_panics.inc();
                Some(fallback)
            }
        }
    }
}
