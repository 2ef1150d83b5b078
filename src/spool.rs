//! The on-disk outbox: every report bound for a network collector is a file
//! here until the collector has it, so neither a dead collector nor a dead
//! process loses it. The next run replays what is left, oldest first.
//!
//! A file is named `<capture ms>-<report id>.<owner>.report`, where the owner
//! is the writing process's pid and start time: a file whose owner is alive
//! belongs to that process, and a file whose owner is gone is claimed by
//! renaming it to the claimer's own name, so two processes sharing a spool
//! never send the same file twice. Files are written to a temporary name and
//! renamed into place (mode 0600), so a reader never sees half a report.
//!
//! Retention keeps at most `max_reports` orphans. Past that, identical files
//! (a crash loop's panics) are first folded into the oldest of them, whose
//! `count` grows by theirs, keeping that first one and the latest; only then
//! are the oldest deleted, the first and latest of a crash loop last. How
//! many reports were deleted rides on the next report, in its `extra` under
//! [`DISCARDED_KEY`].
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod journal;
mod owner;
mod retention;
mod run_state;
mod spares;
#[cfg(test)]
mod tests;

pub(crate) use journal::{journal_owner, unsettled_in};
pub(crate) use journal::{Journal, Line};
use owner::*;
pub(crate) use owner::{default_dir, default_dir_for, owner_alive};
pub use run_state::LastRun;
pub(crate) use spares::spare_owner;

use crate::limits::MAX_REPORT_BYTES;
use crate::record::Captured;
use crate::report::{Report, ReportId};
use crate::stats::STATS;

/// The spool file format this version writes and reads.
const FORMAT: u32 = 1;
const SUFFIX: &str = ".report";
/// The `extra` key under which a report says how many reports the spool's
/// retention deleted (a number), so the loss reaches the collector.
pub(crate) const DISCARDED_KEY: &str = "crashbox.spool_discarded";

/// What a spool file holds: a finished report, or a panic's raw capture to
/// be resolved against the same binary by a later run.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum Entry {
    Report(Box<Report>),
    Captured(Box<Captured>),
}

#[derive(Deserialize)]
struct SpoolFile {
    format: u32,
    entry: Entry,
}

/// The borrowed form of [`Entry`], for writing without a copy.
#[derive(Clone, Copy, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum EntryRef<'a> {
    Report(&'a Report),
    Captured(&'a Captured),
}

#[derive(Serialize)]
struct SpoolFileRef<'a> {
    format: u32,
    entry: EntryRef<'a>,
}

/// The spool directory and its limits.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    owner: String,
    max_reports: usize,
    max_age: Duration,
    /// Empty files created ahead of time, so the panic hook only writes into
    /// one: creating a file costs hundreds of microseconds on some disks.
    spares: Mutex<Vec<(File, PathBuf)>>,
    next_spare: AtomicU64,
    /// The run-state file, kept open so the panic hook rewrites it in place.
    run_state: Mutex<Option<File>>,
    /// Reports retention deleted that no claimed entry could carry.
    unattached: AtomicU64,
    /// Held (locked) while the spool is open: says this owner is alive.
    _lock: File,
}

/// The largest spool file written or read back. A raw capture carries its
/// addresses, modules and images besides what its report will, so it gets
/// twice the report limit; a larger file was not written by crashbox and is
/// set aside unread rather than loaded into memory.
const MAX_FILE_BYTES: u64 = 2 * MAX_REPORT_BYTES as u64;

/// Serializes a spool file, at most [`MAX_FILE_BYTES`] long. A finished
/// report is already within its limit; a raw capture that is not (huge
/// breadcrumbs or extra) loses its breadcrumbs, then its extra, as its
/// report would have (and says so in `truncated`).
fn encode(entry: EntryRef<'_>) -> io::Result<Vec<u8>> {
    fn to_vec(entry: EntryRef<'_>) -> io::Result<Vec<u8>> {
        serde_json::to_vec(&SpoolFileRef {
            format: FORMAT,
            entry,
        })
        .map_err(io::Error::other)
    }
    let bytes = to_vec(entry)?;
    let EntryRef::Captured(captured) = entry else {
        return Ok(bytes);
    };
    if bytes.len() as u64 <= MAX_FILE_BYTES {
        return Ok(bytes);
    }
    let mut smaller = captured.clone();
    smaller.breadcrumbs.clear();
    smaller.truncated.push("breadcrumbs".to_owned());
    let bytes = to_vec(EntryRef::Captured(&smaller))?;
    if bytes.len() as u64 <= MAX_FILE_BYTES {
        return Ok(bytes);
    }
    smaller.extra.clear();
    smaller.truncated.push("extra".to_owned());
    let bytes = to_vec(EntryRef::Captured(&smaller))?;
    if bytes.len() as u64 <= MAX_FILE_BYTES {
        return Ok(bytes);
    }
    Err(io::Error::other("the capture is too large for the spool"))
}

/// Opens an existing spool file for reading (and writing, with `write`)
/// without following a symbolic link and without blocking on a FIFO or a
/// device, and keeps it only if it is a regular file: anything else planted
/// under a spool name could hang or mislead the reader.
fn open_regular(path: &Path, write: bool) -> io::Result<File> {
    let mut options = fs::OpenOptions::new();
    options.read(true).write(write);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        libc::O_NOFOLLOW | libc::O_NONBLOCK,
    );
    let file = options.open(path)?;
    if !file.metadata()?.file_type().is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// Reads a spool file of at most `max` bytes; a larger one is an error.
fn read_capped(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let file = open_regular(path, false)?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::other("larger than a spool file can be"));
    }
    Ok(bytes)
}

/// Parses a spool file's bytes. A capture read back is held to a fresh
/// capture's limits and scrubbed again whatever it claims: its `scrubbed`
/// mark is only as trustworthy as the file, and scrubbing twice changes
/// nothing. (A finished report gets the same on the worker.)
fn parse_entry(bytes: &[u8]) -> Option<Entry> {
    let file: SpoolFile = serde_json::from_slice(bytes).ok()?;
    if file.format != FORMAT {
        return None;
    }
    Some(match file.entry {
        Entry::Captured(mut captured) => {
            distrust(&mut captured);
            Entry::Captured(captured)
        }
        entry => entry,
    })
}

/// A spool file known to hold a capture (a journal line this process
/// wrote): read straight into a [`Captured`], without the detour through
/// an untyped value that a tagged [`Entry`] takes.
fn parse_captured(bytes: &[u8]) -> Option<Captured> {
    #[derive(Deserialize)]
    struct CapturedFile {
        format: u32,
        entry: Captured,
    }
    let file: CapturedFile = serde_json::from_slice(bytes).ok()?;
    let mut captured = file.entry;
    (file.format == FORMAT).then(|| {
        distrust(&mut captured);
        captured
    })
}

/// A capture read from disk, which anyone who could write there may have
/// made: to be scrubbed again, and cut to the limits.
fn distrust(captured: &mut Captured) {
    use crate::limits::{truncate, MAX_CHAIN, MAX_EXCEPTION_MESSAGE_BYTES, MAX_MESSAGE_BYTES};
    captured.scrubbed = false;
    if truncate(&mut captured.message, MAX_MESSAGE_BYTES) {
        captured.truncated.push("message".to_owned());
    }
    captured.exceptions.truncate(MAX_CHAIN);
    captured.addresses.truncate(crate::limits::MAX_RAW_FRAMES);
    captured.located.truncate(crate::limits::MAX_RAW_FRAMES);
    for (i, e) in captured.exceptions.iter_mut().enumerate() {
        if truncate(&mut e.message, MAX_EXCEPTION_MESSAGE_BYTES) {
            captured.truncated.push(format!("exceptions[{i}].message"));
        }
    }
}

fn create_private(path: &Path) -> io::Result<File> {
    let mut options = fs::OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    create_private(path)?.write_all(bytes)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads the spool file at `path` as the replay does, without claiming it
/// (for the `crashbox spool` command, which only looks), a crash record as
/// the capture it becomes: `Ok(None)` when it holds nothing this version reads.
pub(crate) fn read_file(path: &Path) -> io::Result<Option<Entry>> {
    let bytes = read_capped(path, MAX_FILE_BYTES)?;
    if bytes.starts_with(crate::crash::MAGIC) {
        let captured = spares::crash_capture(&bytes, path);
        return Ok(captured.map(|c| Entry::Captured(Box::new(c))));
    }
    Ok(parse_entry(&bytes))
}

/// The capture time (ms), report id and owner in a spool file's name
/// (`<ms>-<id>.<owner>.report`).
pub(crate) fn parse_file_name(name: &str) -> Option<(u64, ReportId, &str)> {
    let (ms, owner) = parse_name(name)?;
    let id = name.split_once('-')?.1.split_once('.')?.0;
    Some((ms, ReportId::parse(id)?, owner))
}

/// Parses `<ms>-<id>.<owner>.report` into (ms, owner).
fn parse_name(name: &str) -> Option<(u64, &str)> {
    let stem = name.strip_suffix(SUFFIX)?;
    let (key, owner) = stem.rsplit_once('.')?;
    let (ms, id) = key.split_once('-')?;
    ReportId::parse(id)?;
    Some((ms.parse().ok()?, owner))
}

/// A spool closed by its owner: its lock file goes with it (the lock alone
/// would be released when the file closes, but the file would be left for
/// the next run to clear).
impl Drop for Spool {
    fn drop(&mut self) {
        let _ = fs::remove_file(lock_path(&self.dir, &self.owner));
    }
}

impl Spool {
    /// Opens (creating, mode 0700) the spool at `dir`. A directory another
    /// user owns, or one that stays writable by group or others after a
    /// chmod to 0700, is refused.
    pub(crate) fn open(dir: PathBuf, max_reports: usize, max_age: Duration) -> io::Result<Spool> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir)?;
        check_private(&dir)?;
        let owner = new_owner();
        let lock = hold_lock(&dir, &owner)?;
        Ok(Spool {
            dir,
            owner,
            max_reports,
            max_age,
            spares: Mutex::new(Vec::new()),
            next_spare: AtomicU64::new(0),
            run_state: Mutex::new(None),
            unattached: AtomicU64::new(0),
            _lock: lock,
        })
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn file_name(&self, id: ReportId, timestamp_ms: u64) -> String {
        format!("{timestamp_ms:016}-{id}.{}{SUFFIX}", self.owner)
    }

    /// Writes `entry` atomically; returns its path.
    pub(crate) fn write(
        &self,
        id: ReportId,
        timestamp_ms: u64,
        entry: EntryRef<'_>,
    ) -> io::Result<PathBuf> {
        let path = self.dir.join(self.file_name(id, timestamp_ms));
        self.replace(&path, entry)?;
        Ok(path)
    }

    /// Writes `entry` at `path` (in the spool) atomically, through a
    /// temporary file renamed over it.
    fn replace(&self, path: &Path, entry: EntryRef<'_>) -> io::Result<()> {
        let bytes = encode(entry)?;
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::other("no file name"))?
            .to_string_lossy();
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let _ = fs::remove_file(&tmp);
        write_private(&tmp, &bytes)
            .and_then(|()| fs::rename(&tmp, path))
            .inspect_err(|_| {
                let _ = fs::remove_file(&tmp);
            })
    }

    /// Reads back an entry this client spooled.
    pub(crate) fn read_entry(&self, path: &Path) -> Option<Entry> {
        parse_entry(&read_capped(path, MAX_FILE_BYTES).ok()?)
    }

    /// Removes a delivered (or hopeless) report's file.
    pub(crate) fn remove(&self, path: &Path) {
        let _ = fs::remove_file(path);
    }
}
