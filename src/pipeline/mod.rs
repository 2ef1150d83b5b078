//! The worker's side: turns a [`Pending`] capture into a finished [`Report`].
//!
//! The steps, in order: scrub secrets, symbolicate (cached), trim and mark
//! in-app frames, merge the scope, attach context, fingerprint, fit the size
//! limits. The worker then aggregates repeats, runs `before_send` and
//! applies the rate limit.
pub(crate) mod aggregate;
pub(crate) mod fingerprint;
pub(crate) mod scrub;
mod size_limits;
pub(crate) mod symbolicate;
pub(crate) mod symtab;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde_json::Value;

use crate::record::Captured;
use crate::report::User;
use crate::report::{Image, Kind, Report, Sdk};
use crate::stats::STATS;
use scrub::Scrubber;
use symbolicate::{InAppRules, SymbolCache, Symbolicated};

/// A hook that sees each processed report before it is sent: return `None` to drop it.
pub type BeforeSend = Arc<dyn Fn(Report) -> Option<Report> + Send + Sync>;

/// What processing needs from the options (see `Options::settings`).
pub(crate) struct Settings {
    pub release: Option<String>,
    pub environment: String,
    pub in_app: InAppRules,
    pub before_send: Option<BeforeSend>,
    pub aggregation_window: Duration,
    pub aggregation_burst: u32,
    pub max_reports_per_minute: u32,
    pub sample_rate: f64,
    pub scrubber: Option<Scrubber>,
    /// The login name to fill in as the username, with `send_default_pii`.
    pub default_username: Option<String>,
    /// Whether frames are resolved here; without, no debug info is loaded.
    pub symbolicate: bool,
    /// Captures the queue to the worker holds.
    pub queue_capacity: usize,
}

impl Settings {
    /// Whether a capture of `kind` is kept by the sample rate.
    pub(crate) fn sampled_in(&self, kind: Kind) -> bool {
        if kind.is_fatal() || self.sample_rate >= 1.0 {
            return true;
        }
        let draw = (crate::rand::random_u128() >> 75) as f64 / (1u64 << 53) as f64;
        draw < self.sample_rate
    }

    /// Redacts secrets in a capture, before it is spooled or processed;
    /// once per capture.
    pub(crate) fn scrub(&self, captured: &mut Captured) {
        let Some(scrubber) = self.scrubber.as_ref().filter(|_| !captured.scrubbed) else {
            return;
        };
        captured.scrubbed = true;
        Fields {
            message: &mut captured.message,
            exceptions: &mut captured.exceptions,
            tags: &mut captured.tags,
            extra: &mut captured.extra,
            user: &mut captured.user,
            breadcrumbs: &mut captured.breadcrumbs,
            fingerprint: &mut captured.fingerprint,
        }
        .scrub(scrubber);
    }

    /// A capture in the form a later run can resolve: scrubbed (secrets
    /// never reach the disk), its addresses tied to their files, with this
    /// run's release and environment.
    pub(crate) fn captured_for_spool(&self, pending: crate::record::Pending) -> Captured {
        let mut captured = pending.into_captured();
        self.scrub(&mut captured);
        captured.locate_addresses();
        captured.release = self.release.clone();
        captured.environment = Some(self.environment.clone());
        captured
    }

    /// A finished report read back from the spool, which anyone who could
    /// write there may have made: scrubbed and cut to the limits again, like
    /// a fresh one (both change nothing in a report crashbox wrote).
    pub(crate) fn recheck(&self, report: &mut Report) {
        use crate::limits::{truncate, MAX_EXCEPTION_MESSAGE_BYTES, MAX_MESSAGE_BYTES};
        let mut cuts = Vec::new();
        if truncate(&mut report.message, MAX_MESSAGE_BYTES) {
            cuts.push("message".to_owned());
        }
        if report.exceptions.len() > crate::limits::MAX_CHAIN {
            report.exceptions.truncate(crate::limits::MAX_CHAIN);
            cuts.push("exceptions".to_owned());
        }
        for (i, e) in report.exceptions.iter_mut().enumerate() {
            if truncate(&mut e.message, MAX_EXCEPTION_MESSAGE_BYTES) {
                cuts.push(format!("exceptions[{i}].message"));
            }
        }
        for cut in cuts {
            if !report.truncated.contains(&cut) {
                report.truncated.push(cut);
            }
        }
        if let Some(scrubber) = &self.scrubber {
            Fields {
                message: &mut report.message,
                exceptions: &mut report.exceptions,
                tags: &mut report.tags,
                extra: &mut report.extra,
                user: &mut report.user,
                breadcrumbs: &mut report.breadcrumbs,
                fingerprint: &mut report.fingerprint,
            }
            .scrub(scrubber);
        }
        size_limits::enforce(report);
    }
}

/// The text fields a capture and a report share, where secrets can be.
struct Fields<'a> {
    message: &'a mut String,
    exceptions: &'a mut [crate::report::ExceptionInfo],
    tags: &'a mut BTreeMap<String, String>,
    extra: &'a mut BTreeMap<String, Value>,
    user: &'a mut Option<User>,
    breadcrumbs: &'a mut [crate::report::Breadcrumb],
    fingerprint: &'a mut Option<Vec<String>>,
}

impl Fields<'_> {
    fn scrub(self, scrubber: &Scrubber) {
        scrubber.scrub_text(self.message);
        for e in self.exceptions.iter_mut() {
            scrubber.scrub_text(&mut e.message);
        }
        for (key, value) in self.tags.iter_mut() {
            scrubber.scrub_entry(key, value);
        }
        scrub_map(scrubber, self.extra);
        for field in self.user.iter_mut().flat_map(User::fields_mut) {
            scrubber.scrub_text(field);
        }
        for crumb in self.breadcrumbs.iter_mut() {
            scrubber.scrub_text(&mut crumb.message);
            scrub_map(scrubber, &mut crumb.data);
        }
        for part in self.fingerprint.iter_mut().flatten() {
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

/// The images the frames (at `addresses`) fall in: the ones recorded at
/// capture time when there are some (a replayed capture's addresses belong
/// to the process that captured it), else, for a live capture, this
/// process's.
fn frame_images(addresses: &[usize], live: bool, recorded: Vec<Image>) -> Vec<Image> {
    if recorded.is_empty() && live {
        return crate::images::images_for(addresses);
    }
    let mut images: Vec<Image> = Vec::new();
    for &a in addresses {
        if let Some(image) = recorded.iter().find(|i| i.contains(a as u64)) {
            if !images.contains(image) {
                images.push(image.clone());
            }
        }
    }
    images
}

/// Turns captures into reports; owns the symbol cache.
pub(crate) struct Processor {
    settings: Arc<Settings>,
    symbols: SymbolCache,
    /// When frames were last resolved, while the debug info loaded for
    /// them may still be held (see [`Processor::release_symbols`]).
    last_resolved: Option<Instant>,
    /// `false`: frames keep their addresses only (at a shutdown deadline,
    /// when the debug info would not be loaded in time).
    resolving: bool,
}

impl Processor {
    pub(crate) fn new(settings: Arc<Settings>) -> Self {
        Processor {
            symbols: SymbolCache::new(settings.in_app.clone()),
            settings,
            last_resolved: None,
            resolving: true,
        }
    }

    /// When frames were last resolved; `None` once [`release_symbols`](Self::release_symbols)
    /// let go of what that loaded (or when nothing was resolved yet).
    pub(crate) fn last_resolved(&self) -> Option<Instant> {
        self.last_resolved
    }

    /// Lets go of the debug info loaded to resolve frames (the `backtrace`
    /// crate's parsed files, tens of MiB for a binary with debug info) and
    /// of the resolved addresses. The worker calls it once idle; the next
    /// capture loads again what it needs.
    pub(crate) fn release_symbols(&mut self) {
        self.symbols = SymbolCache::new(self.settings.in_app.clone());
        backtrace::clear_symbol_cache();
        // glibc keeps what the worker thread's arena freed for reuse: without
        // a trim, half of the debug info's memory stays resident.
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim takes the allocator's own locks; any thread may call it.
        unsafe {
            libc::malloc_trim(0);
        }
        self.last_resolved = None;
    }

    /// Whether frames are resolved, or keep their addresses only.
    pub(crate) fn set_resolving(&mut self, resolving: bool) {
        self.resolving = resolving;
    }

    /// See [`Settings::recheck`].
    pub(crate) fn recheck(&self, report: &mut Report) {
        self.settings.recheck(report);
    }

    /// The finished report, before aggregation and `before_send`.
    pub(crate) fn process(&mut self, mut captured: Captured) -> Report {
        self.settings.scrub(&mut captured);
        let resolve = self.settings.symbolicate && self.resolving;
        if resolve {
            self.last_resolved = Some(Instant::now());
        }
        let resolvable = if resolve {
            symbolicate::resolvable(&captured)
        } else {
            vec![None; captured.addresses.len()]
        };
        let (live, captured_images) = (captured.live, std::mem::take(&mut captured.images));
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
            count,
            frames: given_frames,
            fault,
            ..
        } = captured;
        let Symbolicated {
            frames,
            physical,
            addresses,
            cut,
        } = match given_frames {
            Some(given) => symbolicate::given(given, &self.settings.in_app),
            None => {
                let top = symbolicate::Top::of(kind, fault);
                self.symbols.frames(&addresses, &resolvable, top)
            }
        };
        if cut && !truncated.iter().any(|t| t == "frames") {
            truncated.push("frames".to_owned());
        }
        let images = frame_images(&addresses, live, captured_images);
        let level = match (kind, level_override) {
            (Kind::Panic | Kind::Crash, _) | (_, None) => level,
            (_, Some(scope_level)) => scope_level,
        };
        if let Some(name) = &self.settings.default_username {
            let user = user.get_or_insert_with(User::default);
            if user.username.is_none() {
                user.username = Some(name.clone());
            }
        }
        let group = fingerprint::hash(
            || fingerprint::default_hash(kind, &message, &exceptions, &physical, location.as_ref()),
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
            // A capture the spool folded identical ones into stands for them all.
            count: count.max(1),
            truncated,
            images,
        };
        size_limits::enforce(&mut report);
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
        let _reentry = crate::reentry::Reentry::enter();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(report))) {
            Ok(report) => report,
            Err(_) => {
                STATS.before_send_panics.inc();
                Some(fallback)
            }
        }
    }
}

#[cfg(test)]
mod image_tests {
    use super::*;

    fn image(name: &str, start: u64, size: u64) -> Image {
        serde_json::from_value(serde_json::json!({
            "type": "elf", "code_file": name, "code_id": null, "debug_id": null,
            "image_addr": format!("{start:#x}"), "image_size": size,
        }))
        .unwrap()
    }

    #[test]
    fn a_replayed_capture_keeps_the_images_recorded_at_capture_time() {
        let recorded = vec![
            image("/lib/libc.so.6", 0x7000_0000, 0x1000),
            image("/bin/app", 0x1000, 0x1000),
            image("/lib/unused.so", 0x9000_0000, 0x1000),
        ];
        let addresses = [0x1010, 0x1010, 0x7000_0010, 0x1020];
        let images = frame_images(&addresses, false, recorded.clone());
        assert_eq!(images, vec![recorded[1].clone(), recorded[0].clone()]);
        // Not this process's images, even when it has none recorded.
        assert!(frame_images(&addresses, false, Vec::new()).is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_live_capture_gets_this_process_s_images() {
        let here = a_live_capture_gets_this_process_s_images as *const () as usize;
        let images = frame_images(&[here], true, Vec::new());
        assert_eq!(images.len(), 1);
        assert!(images[0].contains(here as u64));
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(images[0].code_file, exe.to_string_lossy());
    }
}
