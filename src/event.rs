//! A capture built from explicit parts.
use std::collections::BTreeMap;
use std::error::Error;
use std::panic::Location as StdLocation;

use serde::Serialize;
use serde_json::Value;

use crate::capture;
use crate::capture::stack::{StackMark, Top};
use crate::limits;
use crate::report::{ExceptionInfo, Frame, Kind, Level, Location, ReportId};

/// The most extra values one event keeps; beyond, the rest are left out
/// and `extra` is listed in the report's `truncated` field.
pub const MAX_EVENT_EXTRA: usize = 256;

/// A capture built from explicit parts: a message, a level, an error chain
/// (from an error value, or link by link), the source location, and extra
/// values. For integrations that report what another system saw (a log
/// record, a tracing event: their own file and line, not the integration's)
/// and for code that knows more than [`capture_error`](crate::capture_error)
/// can find out by itself.
///
/// It goes through the same pipeline as every capture: sampling,
/// aggregation, scrubbing, the scope, accounting. The stack is the caller's
/// of [`capture`](Event::capture).
///
/// ```
/// use crashbox::{Event, Level};
///
/// let (_, reports) = crashbox::testing::capture(|| {
///     let err = std::io::Error::other("connection reset");
///     Event::new(Level::Warning)
///         .message("sync failed, will retry")
///         .error(&err)
///         .location("src/sync.rs", 42, 9)
///         .extra("attempt", 3)
///         .capture()
/// });
/// let report = &reports[0];
/// assert_eq!(report.message, "sync failed, will retry");
/// assert_eq!(report.level, Level::Warning);
/// assert_eq!(report.exception_types(), ["std::io::Error"]);
/// assert_eq!(report.location.as_ref().unwrap().line, 42);
/// assert_eq!(report.extra["attempt"], 3);
/// ```
#[must_use = "an event is only reported by `capture`"]
#[derive(Debug)]
pub struct Event {
    level: Level,
    message: Option<String>,
    exceptions: Vec<ExceptionInfo>,
    location: Option<Location>,
    extra: BTreeMap<String, Value>,
    frames: Option<Vec<Frame>>,
    truncated: Vec<String>,
}

impl Event {
    /// An event of `level`, with nothing else yet.
    pub fn new(level: Level) -> Self {
        Event {
            level,
            message: None,
            exceptions: Vec::new(),
            location: None,
            extra: BTreeMap::new(),
            frames: None,
            truncated: Vec::new(),
        }
    }

    /// The report's message (cut to 8 KiB). Without one, the message is the
    /// first exception's.
    pub fn message(mut self, message: impl AsRef<str>) -> Self {
        let message = message.as_ref();
        let mut text = message.to_owned();
        if limits::truncate(&mut text, limits::MAX_MESSAGE_BYTES) {
            self.note("message");
        }
        self.message = Some(text);
        self
    }

    /// Adds `err` and its source chain to the exceptions, outer error
    /// first, as [`capture_error`](crate::capture_error) reads them.
    pub fn error<E: Error + ?Sized>(self, err: &E) -> Self {
        let (links, truncated) = capture::error::chain(err);
        self.chain(links, truncated)
    }

    /// Adds the chain of an error a wrapper holds (see
    /// [`capture::error::wrapped_chain`]).
    #[cfg(any(feature = "anyhow", feature = "eyre"))]
    pub(crate) fn wrapped_error(self, err: &(dyn Error + 'static), wrapper: &str) -> Self {
        let (links, truncated) = capture::error::wrapped_chain(err, wrapper);
        self.chain(links, truncated)
    }

    fn chain(mut self, links: Vec<ExceptionInfo>, truncated: Vec<String>) -> Self {
        // The chain's notes count its links from 0; here they follow ours.
        let offset = self.exceptions.len();
        for t in truncated {
            let shifted = t
                .strip_prefix("exceptions[")
                .and_then(|rest| rest.split_once(']'))
                .and_then(|(i, rest)| Some((i.parse::<usize>().ok()? + offset, rest)))
                .map(|(i, rest)| format!("exceptions[{i}]{rest}"));
            self.note(&shifted.unwrap_or(t));
        }
        self.push_links(links);
        self
    }

    /// Adds one exception, of type `ty`, saying `message`: for a chain
    /// known only as text (a wrapper's context layers, a log record).
    pub fn exception(mut self, ty: impl Into<String>, message: impl Into<String>) -> Self {
        let mut link = ExceptionInfo::new(ty, message);
        limits::truncate(&mut link.ty, limits::MAX_NAME_BYTES);
        if limits::truncate(&mut link.message, limits::MAX_EXCEPTION_MESSAGE_BYTES) {
            let at = self.exceptions.len();
            self.note(&format!("exceptions[{at}].message"));
        }
        self.push_links(vec![link]);
        self
    }

    /// Where it happened, instead of where [`capture`](Event::capture) is called.
    pub fn location(mut self, file: impl Into<String>, line: u32, column: u32) -> Self {
        let mut file = file.into();
        limits::truncate(&mut file, limits::MAX_NAME_BYTES);
        self.location = Some(Location::new(file, line, column));
        self
    }

    /// An extra value, over the scope's of the same key: anything serde can
    /// serialize, cut like [`Scope::set_extra`](crate::Scope::set_extra)'s.
    /// At most [`MAX_EVENT_EXTRA`] are kept.
    pub fn extra(mut self, key: impl Into<String>, value: impl Serialize) -> Self {
        let key = key.into();
        if self.extra.len() >= MAX_EVENT_EXTRA && !self.extra.contains_key(&key) {
            self.note("extra");
            return self;
        }
        let (key, value, cut) = crate::scope::bounded_extra(key, &value);
        if cut {
            self.note(&format!("extra.{key}"));
        }
        self.extra.insert(key, value);
        self
    }

    /// The report's frames, instead of the stack [`capture`](Event::capture)
    /// is called from: where an error was created, say, resolved already
    /// (each frame's function, file and line; innermost first). crashbox's
    /// own frames are left out and in-app is marked by the options' rules,
    /// as for any stack; at most [`limits::MAX_FRAMES`] are kept.
    ///
    /// ```
    /// use crashbox::{Event, Frame, Level};
    ///
    /// let mut origin = Frame::at_address("0x0");
    /// origin.function = Some("app::store::save".into());
    /// origin.file = Some("/src/app/src/store.rs".into());
    /// origin.line = Some(88);
    /// let (_, reports) = crashbox::testing::capture(|| {
    ///     Event::new(Level::Error).message("save failed").frames(vec![origin]).capture()
    /// });
    /// assert_eq!(reports[0].frames[0].function.as_deref(), Some("app::store::save"));
    /// assert!(reports[0].frames[0].in_app);
    /// ```
    pub fn frames(mut self, frames: Vec<Frame>) -> Self {
        self.frames = Some(frames);
        self
    }

    /// Captures the event; returns its id as
    /// [`capture_error`](crate::capture_error) does. Its kind is `error`
    /// when it has exceptions, else `message`.
    #[track_caller]
    #[inline(always)]
    pub fn capture(self) -> Option<ReportId> {
        if !capture::install::is_active() {
            return None;
        }
        let anchor = 0u8;
        self.capture_at(StdLocation::caller(), StackMark::new(&anchor))
    }

    #[inline(never)]
    fn capture_at(
        self,
        caller: &'static StdLocation<'static>,
        mark: StackMark,
    ) -> Option<ReportId> {
        capture::run(|target| {
            let kind = if self.exceptions.is_empty() {
                Kind::Message
            } else {
                Kind::Error
            };
            if !target.sampled_in(kind) {
                return None;
            }
            let Event {
                level,
                message,
                exceptions,
                location,
                extra,
                frames,
                mut truncated,
            } = self;
            let message = match message {
                Some(message) => message,
                None => {
                    if truncated.iter().any(|t| t == "exceptions[0].message") {
                        truncated.push("message".to_owned());
                    }
                    exceptions
                        .first()
                        .map(|e| e.message.clone())
                        .unwrap_or_default()
                }
            };
            let location = location.unwrap_or_else(|| Location::from_std(caller));
            let mut pending = capture::pending(
                level,
                kind,
                message,
                exceptions,
                Some(location),
                truncated,
                mark,
                Top::Marked,
            );
            pending.extra = extra;
            pending.frames = frames;
            target.submit(pending)
        })
    }

    fn push_links(&mut self, links: Vec<ExceptionInfo>) {
        let room = limits::MAX_CHAIN.saturating_sub(self.exceptions.len());
        if links.len() > room {
            self.note("exceptions");
        }
        self.exceptions.extend(links.into_iter().take(room));
    }

    fn note(&mut self, what: &str) {
        if !self.truncated.iter().any(|t| t == what) {
            self.truncated.push(what.to_owned());
        }
    }
}
