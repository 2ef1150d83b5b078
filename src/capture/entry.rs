//! The bodies shared by the capture entry points (`crashbox::capture_error`,
//! `capture_message`, `ResultExt::report`, and the same through
//! `crashbox-api`): each entry point only takes its caller's location and
//! stack mark and hands them here.
use std::panic::Location as StdLocation;

use super::stack::{StackMark, Top};
use crate::limits;
use crate::report::{ExceptionInfo, Kind, Level, Location, ReportId};

/// Captures an error whose chain `read_chain` reads (only when the capture
/// is sampled in): the links, outer first, and the fields it cut.
pub(crate) fn error(
    read_chain: impl FnOnce() -> (Vec<ExceptionInfo>, Vec<String>),
    location: &'static StdLocation<'static>,
    mark: StackMark,
) -> Option<ReportId> {
    super::run(|target| {
        if !target.sampled_in(Kind::Error) {
            return None;
        }
        let (exceptions, mut truncated) = read_chain();
        // The headline is the outer error's text, cut where its exception entry was.
        let message = exceptions
            .first()
            .map(|e| e.message.clone())
            .unwrap_or_default();
        if truncated.iter().any(|t| t == "exceptions[0].message") {
            truncated.push("message".to_owned());
        }
        let pending = super::pending(
            Level::Error,
            Kind::Error,
            message,
            exceptions,
            Some(Location::from_std(location)),
            truncated,
            mark,
            Top::Marked,
        );
        target.submit(pending)
    })
}

/// Captures `message` at `level`, cut to the message limit.
pub(crate) fn message(
    message: &str,
    level: Level,
    location: &'static StdLocation<'static>,
    mark: StackMark,
) -> Option<ReportId> {
    super::run(|target| {
        if !target.sampled_in(Kind::Message) {
            return None;
        }
        let mut truncated = Vec::new();
        let mut end = message.len().min(limits::MAX_MESSAGE_BYTES);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        let mut text = message[..end].to_owned();
        if end < message.len() {
            text.push('…');
            truncated.push("message".to_owned());
        }
        let pending = super::pending(
            level,
            Kind::Message,
            text,
            Vec::new(),
            Some(Location::from_std(location)),
            truncated,
            mark,
            Top::Marked,
        );
        target.submit(pending)
    })
}
