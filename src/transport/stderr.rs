//! `stderr`: a short human-readable report each; and the brief line each
//! a debug build prints when no collector is configured.
use std::io::Write;

use super::{Transport, TransportError};
use crate::report::Report;

/// Prints [`Report::summary`] of each report to standard error.
#[derive(Debug, Default)]
pub struct StderrTransport;

impl Transport for StderrTransport {
    fn send(&mut self, reports: &[Report]) -> Result<(), TransportError> {
        let mut text = String::new();
        for report in reports {
            text.push_str(&report.summary());
        }
        std::io::stderr()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| TransportError::Retryable(Box::new(e)))
    }
}

/// What the brief lines say, once, under the first: how to choose a collector.
pub(crate) const CHOOSE_A_COLLECTOR: &str = "crashbox: no collector configured, so reports are \
     only summarised here (debug build); set CRASHBOX_COLLECTOR or Options::collector \
     (`stderr` for whole reports, `file:///path.jsonl`, `sentry+https://KEY@host/ID`, \
     `otlp+http://host:4318`)";

/// The longest message a brief line quotes, in characters.
const BRIEF_MESSAGE_CHARS: usize = 200;

/// With no collector configured, in debug builds: one line per report on
/// stderr (level, kind, message, location, id), and once, the way to
/// choose a collector.
#[derive(Debug, Default)]
pub(crate) struct BriefStderrTransport {
    hinted: bool,
}

/// The one line `report` is summed up in:
/// `crashbox: ERROR error: socket closed (at src/main.rs:10:5, report 3f…)`.
pub(crate) fn brief_line(report: &Report) -> String {
    let kind = report.kind.as_str();
    // The first line of the message, cut to a length a terminal shows.
    let first = report.message.lines().next().unwrap_or("");
    let mut message: String = first.chars().take(BRIEF_MESSAGE_CHARS).collect();
    if message.len() < report.message.len() {
        message.push('…');
    }
    let mut line = format!(
        "crashbox: {} {kind}: {message} (",
        report.level.as_str().to_ascii_uppercase()
    );
    if let Some(location) = &report.location {
        line.push_str(&format!("at {location}, "));
    }
    line.push_str(&format!("report {})\n", report.id));
    line
}

impl Transport for BriefStderrTransport {
    fn send(&mut self, reports: &[Report]) -> Result<(), TransportError> {
        let mut text = String::new();
        for report in reports {
            text.push_str(&brief_line(report));
            if !self.hinted {
                self.hinted = true;
                text.push_str(CHOOSE_A_COLLECTOR);
                text.push('\n');
            }
        }
        std::io::stderr()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| TransportError::Retryable(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_brief_line_names_level_kind_message_location_and_id() {
        let mut report = Report::sample("disk full\nsecond line");
        report.location = Some(crate::report::Location::new("src/main.rs", 10, 5));
        let line = brief_line(&report);
        assert_eq!(
            line,
            format!(
                "crashbox: {} {}: disk full… (at src/main.rs:10:5, report {})\n",
                report.level.as_str().to_ascii_uppercase(),
                report.kind,
                report.id
            )
        );
        assert_eq!(line.lines().count(), 1);
        report.message = "x".repeat(500);
        report.location = None;
        let line = brief_line(&report);
        assert!(
            line.contains(&format!("{}… (report ", "x".repeat(200))),
            "{line}"
        );
    }
}
