//! `file:///path.jsonl`: one JSON report a line, appended.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;

use super::{Transport, TransportError};
use crate::report::Report;

/// Appends one JSON report a line to a file, creating it and its parent
/// directories. A batch is written with one `write` call on a file opened for
/// appending, so lines never interleave, even between processes.
#[derive(Debug)]
pub struct FileTransport {
    path: PathBuf,
    file: Option<File>,
}

impl FileTransport {
    /// A transport appending to `path` (opened on first use).
    pub fn new(path: PathBuf) -> Self {
        FileTransport { path, file: None }
    }

    fn open(&self) -> Result<File, TransportError> {
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                TransportError::Retryable(format!("creating {}: {e}", parent.display()))
            })?;
        }
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| TransportError::Retryable(format!("opening {}: {e}", self.path.display())))
    }
}

impl Transport for FileTransport {
    fn send(&mut self, reports: &[Report]) -> Result<(), TransportError> {
        let mut buf = Vec::with_capacity(reports.len() * 2048);
        for report in reports {
            serde_json::to_writer(&mut buf, report)
                .map_err(|e| TransportError::Permanent(format!("serializing: {e}")))?;
            buf.push(b'\n');
        }
        let mut file = match self.file.take() {
            Some(file) => file,
            None => self.open()?,
        };
        match file.write_all(&buf).and_then(|()| file.flush()) {
            Ok(()) => {
                self.file = Some(file);
                Ok(())
            }
            // The file is reopened next time: it may have been rotated or its disk remounted.
            Err(e) => Err(TransportError::Retryable(format!(
                "writing {}: {e}",
                self.path.display()
            ))),
        }
    }
}
