//! What the `crashbox spool` command reads and removes in a spool
//! directory, through the same parsers and owner checks the library uses.
//!
//! Not part of the API: hidden from the docs, exempt from semver, and may
//! change or disappear in any release.
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::options::Destination;
use crate::pipeline::scrub::Scrubber;
use crate::record::Captured;
use crate::report::{Report, ReportId};
use crate::spool::{self, Entry};

/// The file a client without a collector keeps its reports in, when its
/// spool directory is `dir` (the previous one is rotated to `<file>.1`).
pub fn kept_file(dir: &Path) -> Option<PathBuf> {
    match crate::Options::new()
        .spool_dir(dir)
        .destination_for(false, || None)
    {
        Ok(Destination::Kept(path)) => Some(path),
        _ => None,
    }
}

/// The folder unreadable spool files are moved to.
pub const CORRUPT_DIR: &str = "corrupt";

/// The default spool directory of the program at `exe`, as that program's
/// client picks it (`$XDG_STATE_HOME/crashbox/<program>-<hash>`, else under
/// `~/.local/state`); `None` without either variable.
pub fn default_dir_for(exe: &Path) -> Option<PathBuf> {
    spool::default_dir_for(Some(exe.to_owned()))
}

/// Where default spool directories live (`$XDG_STATE_HOME/crashbox`, else
/// `~/.local/state/crashbox`), to name the ones that exist.
pub fn default_base() -> Option<PathBuf> {
    default_dir_for(Path::new("x")).and_then(|dir| dir.parent().map(Path::to_owned))
}

/// Where a listed report is, and what will become of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// A finished report in a spool file: sent by the next run.
    Waiting,
    /// A panic's or a crash's raw capture (addresses, not frames) in a spool
    /// file, a spare file or a crash file: resolved and sent by the next
    /// run of the same program.
    Raw,
    /// A capture in a journal, not settled: turned into a spool file by the
    /// next run.
    Journal,
    /// A file that cannot be read as a report: in `corrupt/`, or moved
    /// there by the next run.
    Corrupt,
    /// A report in the file a client without a collector keeps: already
    /// delivered there, not waiting.
    Kept,
}

impl State {
    /// The words `crashbox spool list` prints.
    pub fn describe(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Raw => "raw, resolved at next start",
            State::Journal => "journal",
            State::Corrupt => "corrupt",
            State::Kept => "kept",
        }
    }
}

/// One report found in a spool directory.
#[derive(Debug)]
pub struct Found {
    /// The report id (32 hex digits), when known.
    pub id: Option<String>,
    /// Capture time, milliseconds since the Unix epoch (the file's change
    /// time when unknown).
    pub timestamp_ms: u64,
    /// `panic`, `error`, `message`, `crash`, or `?`.
    pub kind: String,
    /// The level, or `?`.
    pub level: String,
    /// The headline (secrets scrubbed for a raw capture).
    pub message: String,
    /// Where it is, and what becomes of it.
    pub state: State,
    /// Whether the process that owns the file is still running (it sends
    /// the report itself).
    pub live: bool,
    /// The file it is in.
    pub path: PathBuf,
    /// The finished report, when it is one.
    pub report: Option<Box<Report>>,
    /// For a raw capture: the capture as JSON (secrets scrubbed).
    pub raw: Option<serde_json::Value>,
}

impl Found {
    /// The capture time as RFC 3339.
    pub fn time(&self) -> String {
        crate::time::rfc3339_millis(
            UNIX_EPOCH + std::time::Duration::from_millis(self.timestamp_ms),
        )
    }

    /// The report as JSON: the report itself, or a raw capture as spooled.
    pub fn json(&self) -> String {
        match (&self.report, &self.raw) {
            (Some(report), _) => report.to_json(),
            (None, Some(raw)) => raw.to_string(),
            (None, None) => serde_json::json!({
                "id": self.id,
                "state": self.state.describe(),
                "file": self.path.display().to_string(),
            })
            .to_string(),
        }
    }

    /// The readable summary: [`Report::summary`] for a report; for a raw
    /// capture the same headline, chain and location, without frames.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        if let Some(report) = &self.report {
            return report.summary();
        }
        let mut out = format!(
            "[crashbox] {} {}: {}\n",
            self.level, self.kind, self.message
        );
        if let Some(raw) = &self.raw {
            if let Some(chain) = raw["exceptions"].as_array() {
                for (i, e) in chain.iter().enumerate() {
                    let lead = if i == 0 { "" } else { "caused by " };
                    let _ = writeln!(
                        out,
                        "  {lead}{}: {}",
                        e["type"].as_str().unwrap_or("?"),
                        e["message"].as_str().unwrap_or("")
                    );
                }
            }
            if let Some(at) = raw["location"].as_object() {
                let _ = writeln!(
                    out,
                    "  at {}:{}:{} on thread '{}'",
                    at.get("file").and_then(|v| v.as_str()).unwrap_or("?"),
                    at.get("line").and_then(|v| v.as_u64()).unwrap_or(0),
                    at.get("column").and_then(|v| v.as_u64()).unwrap_or(0),
                    raw["thread"]["name"].as_str().unwrap_or("<unnamed>")
                );
            }
        }
        if let Some(id) = &self.id {
            let _ = writeln!(out, "  id {id}");
        }
        let _ = writeln!(out, "  {} ({})", self.state.describe(), self.path.display());
        out
    }
}

fn ms_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn modified_ms(path: &Path) -> u64 {
    fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .map(ms_of)
        .unwrap_or(0)
}

fn from_report(report: Report, state: State, live: bool, path: &Path) -> Found {
    Found {
        id: Some(report.id.to_hex()),
        timestamp_ms: crate::time::parse_rfc3339_millis(&report.timestamp)
            .map(ms_of)
            .unwrap_or_else(|| modified_ms(path)),
        kind: report.kind.to_string(),
        level: report.level.to_string(),
        message: report.message.clone(),
        state,
        live,
        path: path.to_owned(),
        report: Some(Box::new(report)),
        raw: None,
    }
}

fn from_captured(mut captured: Captured, state: State, live: bool, path: &Path) -> Found {
    // Read from disk, so not trusted to be scrubbed: scrub what is shown.
    let scrubber = Scrubber::new(&[]);
    scrubber.scrub_text(&mut captured.message);
    for e in &mut captured.exceptions {
        scrubber.scrub_text(&mut e.message);
    }
    let mut raw = serde_json::to_value(&captured).unwrap_or_default();
    for key in ["tags", "extra", "user", "breadcrumbs"] {
        if let Some(value) = raw.get_mut(key) {
            scrubber.scrub_value(value);
        }
    }
    Found {
        id: Some(captured.id.to_hex()),
        timestamp_ms: captured.timestamp_ms,
        kind: captured.kind.to_string(),
        level: captured
            .level_override
            .unwrap_or(captured.level)
            .to_string(),
        message: captured.message,
        state,
        live,
        path: path.to_owned(),
        report: None,
        raw: Some(raw),
    }
}

fn unreadable(id: Option<String>, timestamp_ms: Option<u64>, live: bool, path: &Path) -> Found {
    Found {
        id,
        timestamp_ms: timestamp_ms.unwrap_or_else(|| modified_ms(path)),
        kind: "?".to_owned(),
        level: "?".to_owned(),
        message: format!(
            "unreadable file {}",
            path.file_name().unwrap_or_default().to_string_lossy()
        ),
        state: State::Corrupt,
        live,
        path: path.to_owned(),
        report: None,
        raw: None,
    }
}

fn from_entry(
    entry: io::Result<Option<Entry>>,
    live: bool,
    path: &Path,
    name_key: Option<(u64, String)>,
) -> Found {
    match entry {
        Ok(Some(Entry::Report(report))) => from_report(*report, State::Waiting, live, path),
        Ok(Some(Entry::Captured(captured))) => from_captured(*captured, State::Raw, live, path),
        _ => {
            let (ms, id) = name_key.unzip();
            unreadable(id, ms, live, path)
        }
    }
}

/// What a file in a spool directory is, by its name.
enum SpoolFile<'a> {
    /// A spool file, with the time, id and owner its name gives (`None`:
    /// a name the spool cannot parse).
    Report(Option<(u64, ReportId, &'a str)>),
    /// A spare file of this owner.
    Spare(&'a str),
    /// A journal of this owner (or one a claimer was taking over).
    Journal(&'a str),
    /// The folder of files set aside as corrupt.
    Corrupt,
    /// Anything else (locks, the run state, the kept file).
    Other,
}

impl<'a> SpoolFile<'a> {
    fn of(name: &'a str, is_dir: bool) -> SpoolFile<'a> {
        if name.ends_with(".report") {
            SpoolFile::Report(spool::parse_file_name(name))
        } else if let Some(owner) = spool::spare_owner(name) {
            SpoolFile::Spare(owner)
        } else if let Some(owner) = spool::journal_owner(name) {
            SpoolFile::Journal(owner)
        } else if name == CORRUPT_DIR && is_dir {
            SpoolFile::Corrupt
        } else {
            SpoolFile::Other
        }
    }
}

/// The entries of the spool directory `dir` (name, path, whether a
/// directory), hidden files (writes in progress) left out; an error when
/// `dir` is not a readable directory.
fn entries(dir: &Path) -> io::Result<Vec<(String, PathBuf, bool)>> {
    if !fs::metadata(dir)?.is_dir() {
        return Err(io::Error::other("it is not a directory"));
    }
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            out.push((name, entry.path(), is_dir));
        }
    }
    Ok(out)
}

/// Every report in the spool directory `dir`: spool files, unsettled
/// journal captures and filled spare files (of any owner), files in
/// `corrupt/`, and the reports in the kept file (`reports.jsonl` and its
/// `.1`). Sorted by time, oldest first. Nothing is changed. An error when
/// `dir` cannot be read.
pub fn list(dir: &Path) -> io::Result<Vec<Found>> {
    let entries = entries(dir)?;
    let kept_names: Vec<String> = kept_file(dir)
        .and_then(|path| Some(path.file_name()?.to_string_lossy().into_owned()))
        .map(|name| vec![format!("{name}.1"), name])
        .unwrap_or_default();
    let mut found = Vec::new();
    for (name, path, is_dir) in entries {
        match SpoolFile::of(&name, is_dir) {
            SpoolFile::Report(key) => {
                let live = key.is_some_and(|(_, _, owner)| spool::owner_alive(dir, owner));
                let name_key = key.map(|(ms, id, _)| (ms, id.to_hex()));
                found.push(from_entry(spool::read_file(&path), live, &path, name_key));
            }
            SpoolFile::Spare(owner) => {
                let live = spool::owner_alive(dir, owner);
                if fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.len() == 0) {
                    continue; // an empty spare holds nothing
                }
                found.push(from_entry(spool::read_file(&path), live, &path, None));
            }
            SpoolFile::Journal(owner) => {
                let live = spool::owner_alive(dir, owner);
                match spool::unsettled_in(&path) {
                    Ok(captures) => found.extend(
                        captures
                            .into_iter()
                            .map(|c| from_captured(c, State::Journal, live, &path)),
                    ),
                    Err(_) => found.push(unreadable(None, None, live, &path)),
                }
            }
            SpoolFile::Corrupt => {
                for file in fs::read_dir(&path).into_iter().flatten().flatten() {
                    let path = file.path();
                    let name = path.file_name().unwrap_or_default().to_string_lossy();
                    let key = spool::parse_file_name(&name).map(|(ms, id, _)| (ms, id.to_hex()));
                    let (ms, id) = key.unzip();
                    found.push(unreadable(id, ms, false, &path));
                }
            }
            SpoolFile::Other if kept_names.contains(&name) => found.extend(kept(&path)?),
            SpoolFile::Other => {}
        }
    }
    found.sort_by(|a, b| (a.timestamp_ms, &a.id, &a.path).cmp(&(b.timestamp_ms, &b.id, &b.path)));
    Ok(found)
}

/// The reports in a kept file, one JSON line each.
fn kept(path: &Path) -> io::Result<Vec<Found>> {
    let bytes = fs::read(path)?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| match serde_json::from_str::<Report>(line) {
            Ok(report) => from_report(report, State::Kept, false, path),
            Err(_) => Found {
                state: State::Kept,
                ..unreadable(None, None, false, path)
            },
        })
        .collect())
}

/// What [`purge`] removed (or, for a dry run, would remove).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    /// Spool files of owners that are gone.
    pub spool_files: usize,
    /// Journals of owners that are gone.
    pub journals: usize,
    /// The unsettled captures in those journals.
    pub journal_captures: usize,
    /// Filled spare files (raw panic captures) of owners that are gone.
    pub spares: usize,
    /// Files in `corrupt/`.
    pub corrupt: usize,
    /// Files left alone because their owner is running.
    pub live: usize,
    /// Files that could not be removed.
    pub failed: usize,
}

/// Removes the reports waiting in `dir` (`dry_run`: only counts them):
/// spool files, journals and filled spare files whose owner is gone, and
/// `corrupt/`. A running owner's files, lock files, the run-state record
/// and the kept file stay.
pub fn purge(dir: &Path, dry_run: bool) -> io::Result<Purged> {
    let entries = entries(dir)?;
    let mut purged = Purged::default();
    let remove = |path: &Path, purged: &mut Purged| -> bool {
        if dry_run {
            return true;
        }
        match fs::remove_file(path) {
            Ok(()) => true,
            // Claimed by a run that started meanwhile: it sends it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(_) => {
                purged.failed += 1;
                false
            }
        }
    };
    for (name, path, is_dir) in entries {
        match SpoolFile::of(&name, is_dir) {
            // A name the spool cannot parse has no owner: the next run
            // would set it aside as corrupt.
            SpoolFile::Report(key) => {
                if key.is_some_and(|(_, _, owner)| spool::owner_alive(dir, owner)) {
                    purged.live += 1;
                } else if remove(&path, &mut purged) {
                    purged.spool_files += 1;
                }
            }
            SpoolFile::Spare(owner) => {
                let filled = fs::symlink_metadata(&path).is_ok_and(|m| !m.is_file() || m.len() > 0);
                if !filled {
                    // Holds nothing: the next run would remove it too.
                    if !dry_run && !spool::owner_alive(dir, owner) {
                        let _ = fs::remove_file(&path);
                    }
                } else if spool::owner_alive(dir, owner) {
                    purged.live += 1;
                } else if remove(&path, &mut purged) {
                    purged.spares += 1;
                }
            }
            SpoolFile::Journal(owner) => {
                if spool::owner_alive(dir, owner) {
                    purged.live += 1;
                    continue;
                }
                let captures = spool::unsettled_in(&path).map_or(0, |c| c.len());
                if remove(&path, &mut purged) {
                    purged.journals += 1;
                    purged.journal_captures += captures;
                }
            }
            SpoolFile::Corrupt => {
                for file in fs::read_dir(&path)? {
                    if remove(&file?.path(), &mut purged) {
                        purged.corrupt += 1;
                    }
                }
                if !dry_run {
                    let _ = fs::remove_dir(&path);
                }
            }
            SpoolFile::Other => {}
        }
    }
    Ok(purged)
}

/// Removes the empty spare files of owners that are gone (a client leaves
/// its spares behind when it ends; the next run would remove them).
pub fn remove_empty_spares(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = spool::spare_owner(&name) else {
            continue;
        };
        let empty = entry.metadata().is_ok_and(|m| m.is_file() && m.len() == 0);
        if empty && !spool::owner_alive(dir, owner) {
            let _ = fs::remove_file(entry.path());
        }
    }
}
