//! `stderr`: a short human-readable report each.
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
