//! `file:///path.jsonl`: one JSON report a line, appended.
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Transport, TransportError};
use crate::report::Report;

/// Appends one JSON report a line to a file, creating it and its parent
/// directories. A batch is written with one `write` call on a file opened for
/// appending, so lines never interleave, even between processes.
///
/// A file that cannot be written (its directory is read-only, a regular file
/// stands where a directory should, the path is a directory, the file is
/// read-only, the file system is mounted read-only) is said once on stderr:
/// when the transport is created, or else on the first write that fails.
#[derive(Debug)]
pub struct FileTransport {
    path: PathBuf,
    file: Option<File>,
    /// Whether stderr has been told that the file cannot be written.
    unwritable_said: bool,
    /// When set, a file that would grow past this many bytes is first
    /// renamed to `<path>.1` (replacing the one before), so the reports
    /// take at most about twice this on disk.
    max_bytes: Option<u64>,
    /// Whether a file it creates is readable by its owner only.
    private: bool,
}

/// Where the file collector crashbox picks itself (see `Options::destination`)
/// starts a new file: 4 MiB, about a thousand reports.
pub(crate) const DEFAULT_FILE_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// What becomes of reports while the file cannot be written, as said on stderr.
const UNWRITABLE_FATE: &str = "reports stay in the spool, when one is in use, \
     until a run finds the file writable; without a spool they are dropped \
     and counted in crashbox::stats()";

/// What failed while opening or writing the file: the error a failed send
/// holds as its source.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
struct FileError {
    /// What was being done, naming the path (`"opening /var/log/app.jsonl"`),
    /// or what is wrong with it.
    what: String,
    /// The I/O error met, when it is not misleading (see [`FileTransport::open`]).
    #[source]
    source: Option<io::Error>,
}

/// A failure to open or write the file: the error for the worker, and
/// whether it means the file cannot be written at all (rather than, say, a
/// full disk).
struct WriteFailure {
    error: FileError,
    /// Permission denied, read-only file system, a directory or a regular
    /// file in the way.
    unwritable: bool,
}

impl WriteFailure {
    /// `error` met while `doing` (`"opening /var/log/app.jsonl"`).
    fn new(doing: String, error: io::Error) -> Self {
        WriteFailure {
            unwritable: is_unwritable(&error),
            error: FileError {
                what: doing,
                source: Some(error),
            },
        }
    }
}

/// Whether `error` says the path cannot be written whatever is retried soon.
fn is_unwritable(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::PermissionDenied
            | io::ErrorKind::ReadOnlyFilesystem
            | io::ErrorKind::IsADirectory
            | io::ErrorKind::NotADirectory
    )
}

impl FileTransport {
    /// A transport appending to `path` (opened on first use). Checks at once,
    /// without creating the file, that it could be written, and says on
    /// stderr if not (see [`FileTransport`]); it is created either way.
    pub fn new(path: PathBuf) -> Self {
        let mut transport = FileTransport {
            path,
            file: None,
            unwritable_said: false,
            max_bytes: None,
            private: false,
        };
        if let Err(reason) = probe_writable(&transport.path) {
            transport.say_unwritable(&reason);
        }
        transport
    }

    /// Keeps the file under about `max_bytes`: a batch that would take it
    /// past that renames it to `<path>.1` first (replacing the older one)
    /// and starts a new file. The size is read from the open file before
    /// each write; a file another process rotated is reopened, not
    /// rotated again.
    pub(crate) fn rotate_at(mut self, max_bytes: u64) -> Self {
        self.max_bytes = Some(max_bytes);
        self
    }

    /// Creates the file readable and writable by its owner only (unix
    /// mode 0600), as the spool's files are.
    pub(crate) fn private(mut self) -> Self {
        self.private = true;
        self
    }

    /// `<path>.1`, where a rotated file goes.
    pub(crate) fn rotated_path(&self) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(".1");
        PathBuf::from(name)
    }

    /// Rotates the file when `incoming` more bytes would take it past
    /// `max_bytes`; returns the file to write to (`None`: open it again).
    fn rotate_if_full(&self, file: File, incoming: usize) -> Option<File> {
        let max = self.max_bytes?;
        let Ok(meta) = file.metadata() else {
            return Some(file);
        };
        // Another process rotated it: the path names a new file now.
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            match std::fs::metadata(&self.path) {
                Ok(at_path) if at_path.ino() == meta.ino() && at_path.dev() == meta.dev() => {}
                _ => return None,
            }
        }
        if meta.len() == 0 || meta.len().saturating_add(incoming as u64) <= max {
            return Some(file);
        }
        drop(file);
        // On failure the file goes on growing: a report kept beats one lost.
        let _ = std::fs::rename(&self.path, self.rotated_path());
        None
    }

    /// Says once on stderr that the file cannot be written, and why.
    fn say_unwritable(&mut self, reason: &str) {
        if self.unwritable_said {
            return;
        }
        self.unwritable_said = true;
        crate::stats::say(format_args!(
            "crashbox: file collector {} is not writable: {reason}; {UNWRITABLE_FATE}",
            self.path.display()
        ));
    }

    /// Opens the file for appending, creating it and its directories.
    fn open(&self) -> Result<File, WriteFailure> {
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| {
                // `create_dir_all` says "exists" when a non-directory is in
                // the way: that error would mislead, so it is not kept.
                if e.kind() == io::ErrorKind::AlreadyExists {
                    WriteFailure {
                        error: FileError {
                            what: format!("{} is not a directory", parent.display()),
                            source: None,
                        },
                        unwritable: true,
                    }
                } else {
                    WriteFailure::new(format!("creating {}", parent.display()), e)
                }
            })?;
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        if self.private {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options
            .open(&self.path)
            .map_err(|e| WriteFailure::new(format!("opening {}", self.path.display()), e))
    }

    /// Turns `failure` into the worker's error, saying on stderr (once)
    /// when it means the file cannot be written.
    fn fail(&mut self, failure: WriteFailure) -> TransportError {
        if failure.unwritable {
            self.say_unwritable(&super::error_chain(&failure.error));
        }
        // Retryable even when unwritable: a spool keeps the reports for a
        // run that finds the file writable.
        TransportError::Retryable(Box::new(failure.error))
    }
}

impl Transport for FileTransport {
    fn send(&mut self, reports: &[Report]) -> Result<(), TransportError> {
        let mut buf = Vec::with_capacity(reports.len() * 2048);
        for report in reports {
            serde_json::to_writer(&mut buf, report)
                .map_err(|e| TransportError::Permanent(Box::new(e)))?;
            buf.push(b'\n');
        }
        let file = match self.file.take() {
            Some(file) => self.rotate_if_full(file, buf.len()),
            None => None,
        };
        let file = match file {
            Some(file) => Some(file),
            None => match self.open() {
                Ok(file) => self.rotate_if_full(file, buf.len()),
                Err(failure) => return Err(self.fail(failure)),
            },
        };
        let mut file = match file {
            Some(file) => file,
            None => match self.open() {
                Ok(file) => file,
                Err(failure) => return Err(self.fail(failure)),
            },
        };
        match file.write_all(&buf).and_then(|()| file.flush()) {
            Ok(()) => {
                self.file = Some(file);
                Ok(())
            }
            // The file is reopened next time: it may have been rotated or its disk remounted.
            Err(e) => {
                let failure = WriteFailure::new(format!("writing {}", self.path.display()), e);
                Err(self.fail(failure))
            }
        }
    }
}

/// Whether `path` could be appended to, checked without creating it or any
/// directory: an existing regular file is opened for appending (without
/// creating it); otherwise the nearest existing ancestor directory must
/// take a new file (a uniquely named one is created there and removed at
/// once). Anything else that exists (a pipe, a device) is left to the first
/// write, since opening it might block. Returns why not, naming what failed.
fn probe_writable(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err("it is a directory".to_owned()),
        Ok(meta) if meta.is_file() => OpenOptions::new()
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| format!("opening it for appending: {e}")),
        Ok(_) => Ok(()),
        Err(e) if is_missing(&e) => probe_nearest_dir(path.parent().unwrap_or(Path::new(""))),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether `error` says a path does not exist (possibly because a regular
/// file stands where one of its directories should).
fn is_missing(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// Whether a file could be created in `dir`, or, when `dir` does not exist,
/// in its nearest existing ancestor (where `create_dir_all` would start).
fn probe_nearest_dir(dir: &Path) -> Result<(), String> {
    for ancestor in dir.ancestors() {
        // A relative path's last ancestor is "": the current directory.
        let ancestor = if ancestor.as_os_str().is_empty() {
            Path::new(".")
        } else {
            ancestor
        };
        match std::fs::metadata(ancestor) {
            Ok(meta) if meta.is_dir() => return probe_create_in(ancestor),
            Ok(_) => return Err(format!("{} is not a directory", ancestor.display())),
            Err(e) if is_missing(&e) => continue,
            Err(e) => return Err(format!("{}: {e}", ancestor.display())),
        }
    }
    Ok(())
}

/// Whether a new file can be created in the existing directory `dir`: one
/// with a name no other probe uses is created, then removed.
fn probe_create_in(dir: &Path) -> Result<(), String> {
    static PROBES: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let name = format!(
        ".crashbox-probe-{}-{}-{nanos}",
        std::process::id(),
        PROBES.fetch_add(1, Ordering::Relaxed)
    );
    let probe = dir.join(name);
    match OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(file) => {
            drop(file);
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        // Someone else's file by that name says nothing about the directory.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("cannot create a file in {}: {e}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh, empty directory under the system temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(label: &str) -> Self {
            static N: AtomicU64 = AtomicU64::new(0);
            let dir = std::env::temp_dir().join(format!(
                "crashbox-file-probe-{}-{}-{label}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        /// The names in the directory, sorted.
        fn names(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(&self.0)
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn probe_accepts_a_writable_place_and_creates_nothing() {
        let scratch = Scratch::new("ok");
        assert_eq!(probe_writable(&scratch.0.join("reports.jsonl")), Ok(()));
        assert_eq!(probe_writable(&scratch.0.join("a/b/reports.jsonl")), Ok(()));
        assert!(scratch.names().is_empty(), "{:?}", scratch.names());

        let existing = scratch.0.join("existing.jsonl");
        std::fs::write(&existing, "line\n").unwrap();
        assert_eq!(probe_writable(&existing), Ok(()));
        assert_eq!(std::fs::read_to_string(&existing).unwrap(), "line\n");
        assert_eq!(scratch.names(), ["existing.jsonl"]);
    }

    #[test]
    fn probe_refuses_a_regular_file_in_place_of_a_directory() {
        let scratch = Scratch::new("file-parent");
        let blocker = scratch.0.join("afile");
        std::fs::write(&blocker, "").unwrap();
        for path in [
            blocker.join("reports.jsonl"),
            blocker.join("sub/reports.jsonl"),
        ] {
            let reason = probe_writable(&path).unwrap_err();
            assert_eq!(reason, format!("{} is not a directory", blocker.display()));
        }
        assert_eq!(scratch.names(), ["afile"]);
    }

    #[test]
    fn probe_refuses_a_directory() {
        let scratch = Scratch::new("dir");
        assert_eq!(
            probe_writable(&scratch.0),
            Err("it is a directory".to_owned())
        );
    }

    #[test]
    fn a_bounded_file_rotates_keeping_one_older_file() {
        let scratch = Scratch::new("rotate");
        let path = scratch.0.join("reports.jsonl");
        let mut transport = FileTransport::new(path.clone()).rotate_at(4096);
        let report = Report::sample("rotated");
        let line_len = serde_json::to_vec(&report).unwrap().len() as u64 + 1;
        let mut sent = 0;
        while sent * line_len < 3 * 4096 {
            transport.send(std::slice::from_ref(&report)).unwrap();
            sent += 1;
            let current = std::fs::metadata(&path).unwrap().len();
            assert!(current <= 4096, "{current} bytes after {sent} sends");
        }
        assert_eq!(scratch.names(), ["reports.jsonl", "reports.jsonl.1"]);
        let older = std::fs::read_to_string(transport.rotated_path()).unwrap();
        let newer = std::fs::read_to_string(&path).unwrap();
        assert!(older.len() as u64 <= 4096 && older.len() as u64 + line_len > 4096);
        for line in older.lines().chain(newer.lines()) {
            let parsed: Report = serde_json::from_str(line).unwrap();
            assert_eq!(parsed.message, "rotated");
        }
        // A batch bigger than the bound still goes into a file of its own.
        let big: Vec<Report> = (0..(4096 / line_len + 2)).map(|_| report.clone()).collect();
        transport.send(&big).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().lines().count(),
            big.len()
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_private_file_is_created_for_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let scratch = Scratch::new("private");
        let private = scratch.0.join("kept.jsonl");
        let shared = scratch.0.join("shared.jsonl");
        FileTransport::new(private.clone())
            .private()
            .send(&[Report::sample("kept")])
            .unwrap();
        FileTransport::new(shared.clone())
            .send(&[Report::sample("shared")])
            .unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&private), 0o600);
        // A `file://` collector's file keeps the usual mode: 0666 less the
        // umask (read from /proc where there is one).
        let umask = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                let line = status.lines().find(|l| l.starts_with("Umask:"))?;
                u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
            });
        if let Some(umask) = umask {
            assert_eq!(mode(&shared), 0o666 & !umask, "umask {umask:o}");
        }
    }

    #[test]
    fn a_failed_send_keeps_the_io_error_as_its_cause() {
        let scratch = Scratch::new("io-source");
        // The path is a directory: opening it for appending fails.
        let mut transport = FileTransport::new(scratch.0.clone());
        let err = transport
            .send(&[Report::sample("not written")])
            .unwrap_err();
        let TransportError::Retryable(cause) = &err else {
            panic!("expected a retryable error, got {err:?}");
        };
        assert_eq!(
            cause.to_string(),
            format!("opening {}", scratch.0.display())
        );
        let io = std::error::Error::source(&**cause)
            .and_then(|e| e.downcast_ref::<io::Error>())
            .expect("the io::Error itself");
        assert_eq!(io.kind(), io::ErrorKind::IsADirectory);
        let text = crate::transport::error_chain(&err);
        assert!(
            text.starts_with(&format!(
                "retryable transport failure: opening {}: ",
                scratch.0.display()
            )),
            "{text}"
        );
    }

    #[test]
    fn an_unwritable_file_is_said_once_and_each_send_stays_retryable() {
        let scratch = Scratch::new("send");
        let blocker = scratch.0.join("afile");
        std::fs::write(&blocker, "").unwrap();
        let probed = FileTransport::new(blocker.join("reports.jsonl"));
        assert!(probed.unwritable_said, "the probe found it");

        // The probe passes, then a file takes the directory's place: the
        // first failing send says it.
        let later = scratch.0.join("later");
        let mut transport = FileTransport::new(later.join("reports.jsonl"));
        assert!(!transport.unwritable_said);
        std::fs::write(&later, "").unwrap();
        let report = Report::sample("kept for later");
        for _ in 0..3 {
            match transport.send(std::slice::from_ref(&report)) {
                Err(err @ TransportError::Retryable(_)) => {
                    let cause = std::error::Error::source(&err).expect("a cause");
                    assert_eq!(
                        cause.to_string(),
                        format!("{} is not a directory", later.display())
                    );
                    let text = crate::transport::error_chain(&err);
                    assert!(text.ends_with("is not a directory"), "{text}");
                }
                other => panic!("expected a retryable error, got {other:?}"),
            }
            assert!(transport.unwritable_said);
        }
    }
}
