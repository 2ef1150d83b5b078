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

pub(crate) use journal::Journal;

use crate::limits::MAX_REPORT_BYTES;
use crate::record::Captured;
use crate::report::{Report, ReportId};
use crate::stats::STATS;

/// The spool file format this version writes and reads.
const FORMAT: u32 = 1;
const SUFFIX: &str = ".report";
const RUN_STATE: &str = "run-state.json";

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

/// What retention folds by: identical entries share it, in every run of
/// one binary (never an address, which moves from run to run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Identity {
    /// A finished report's fold key.
    Report(u64),
    /// A raw capture's located key.
    Captured(u64),
}

impl Entry {
    /// The borrowed form, for writing.
    fn borrowed(&self) -> EntryRef<'_> {
        match self {
            Entry::Report(report) => EntryRef::Report(report),
            Entry::Captured(captured) => EntryRef::Captured(captured),
        }
    }

    /// How many occurrences it stands for (at least 1).
    fn count(&self) -> u64 {
        match self {
            Entry::Report(report) => report.count,
            Entry::Captured(captured) => captured.count,
        }
        .max(1)
    }

    /// Makes it stand for `count` occurrences.
    fn set_count(&mut self, count: u64) {
        match self {
            Entry::Report(report) => report.count = count,
            Entry::Captured(captured) => captured.count = count,
        }
    }

    /// Its `extra` values.
    fn extra(&self) -> &BTreeMap<String, Value> {
        match self {
            Entry::Report(report) => &report.extra,
            Entry::Captured(captured) => &captured.extra,
        }
    }

    /// Its `extra` values, to change.
    fn extra_mut(&mut self) -> &mut BTreeMap<String, Value> {
        match self {
            Entry::Report(report) => &mut report.extra,
            Entry::Captured(captured) => &mut captured.extra,
        }
    }

    /// The deleted reports it carries under [`DISCARDED_KEY`].
    fn carried(&self) -> u64 {
        self.extra()
            .get(DISCARDED_KEY)
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    /// Makes it carry `discarded` deleted reports (none: no key at all).
    fn set_carried(&mut self, discarded: u64) {
        if discarded == 0 {
            self.extra_mut().remove(DISCARDED_KEY);
        } else {
            self.extra_mut()
                .insert(DISCARDED_KEY.to_owned(), Value::from(discarded));
        }
    }

    /// What it folds by (see [`Identity`]).
    fn identity(&self) -> Identity {
        use crate::pipeline::aggregate;
        match self {
            Entry::Report(report) => Identity::Report(aggregate::fold_key(report)),
            Entry::Captured(c) => Identity::Captured(aggregate::located_key(
                c.kind,
                &c.message,
                &c.exceptions,
                c.location.as_ref(),
                c.fingerprint.as_deref(),
                c.located.iter().map(|at| {
                    let (module, offset) = (*at)?;
                    let module = c.modules.get(module as usize)?;
                    Some((module.path.as_str(), module.identity.as_str(), offset))
                }),
            )),
        }
    }
}

/// What retention keeps of a claimed file while it decides: not the entry,
/// only what folding and choosing need.
struct Scanned {
    /// The file, under this owner's name.
    path: PathBuf,
    identity: Identity,
    /// The occurrences it stands for.
    count: u64,
    /// The deleted reports it carries.
    carried: u64,
}

/// The groups of identical files (`identities`, oldest first) with more
/// than one member, each as its members' indices, oldest first.
fn groups_of<T: Copy + Eq + std::hash::Hash>(identities: &[T]) -> Vec<Vec<usize>> {
    let mut group_of: HashMap<T, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, identity) in identities.iter().enumerate() {
        match group_of.entry(*identity) {
            std::collections::hash_map::Entry::Occupied(group) => groups[*group.get()].push(i),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(groups.len());
                groups.push(vec![i]);
            }
        }
    }
    groups.retain(|group| group.len() > 1);
    groups
}

/// Which of the `live` files (indices, oldest first) retention deletes to
/// leave at most `max`: the oldest first, but the `protected` (the first and
/// the latest of a crash loop) only once no other is left. Sorted.
fn doomed(live: &[usize], protected: &[bool], max: usize) -> Vec<usize> {
    let excess = live.len().saturating_sub(max);
    let mut chosen: Vec<usize> = live
        .iter()
        .copied()
        .filter(|&i| !protected[i])
        .take(excess)
        .collect();
    let more = excess - chosen.len();
    chosen.extend(live.iter().copied().filter(|&i| protected[i]).take(more));
    chosen.sort_unstable();
    chosen
}

/// How many orphans retention reads when there are too many: the others
/// (the oldest, but for the oldest of all) are deleted unread.
fn read_cap(max_reports: usize) -> usize {
    max_reports.saturating_mul(10).saturating_add(1000)
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

/// How the previous run of this program ended, as its spool recorded it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LastRun {
    /// The previous run panicked.
    pub panicked: bool,
    /// How many runs in a row, up to and including the previous one, panicked
    /// (0 when the previous run did not): a crash-loop signal.
    pub consecutive_panics: u32,
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

/// Spare files kept ready for panics.
const SPARES: usize = 2;
const SPARE_SUFFIX: &str = ".spare";
/// The run-state record is rewritten in place at this fixed width.
const RUN_STATE_WIDTH: usize = 64;
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
    use crate::limits::{truncate, MAX_CHAIN, MAX_EXCEPTION_MESSAGE_BYTES, MAX_MESSAGE_BYTES};
    let file: SpoolFile = serde_json::from_slice(bytes).ok()?;
    if file.format != FORMAT {
        return None;
    }
    Some(match file.entry {
        Entry::Captured(mut captured) => {
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
            Entry::Captured(captured)
        }
        entry => entry,
    })
}

/// Checks that only the current user can change `dir`, tightening its mode
/// to 0700 first when it is looser.
fn check_private(dir: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() {
        return Err(io::Error::other("it is a symbolic link"));
    }
    if !meta.is_dir() {
        return Err(io::Error::other("it is not a directory"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(io::Error::other(format!(
                "it is owned by uid {}, not by this user (uid {me})",
                meta.uid()
            )));
        }
        if meta.mode() & 0o077 != 0 {
            // Tighten a directory made before (by us, or with a lax umask).
            let chmod = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
            let mode = fs::symlink_metadata(dir)?.mode();
            if mode & 0o022 != 0 {
                let why = chmod.err().map(|e| format!(" ({e})")).unwrap_or_default();
                return Err(io::Error::other(format!(
                    "it stays writable by group or others (mode {:o}) after chmod 700{why}",
                    mode & 0o777
                )));
            }
        }
    }
    Ok(())
}

/// A fresh owner token for one open spool: the pid (for people reading the
/// directory) and 32 random bits, so a recycled pid, a pid namespace or a
/// second `init` in the same process is never mistaken for the writer.
fn new_owner() -> String {
    format!(
        "{}_{:08x}",
        std::process::id(),
        crate::rand::random_u128() as u32
    )
}

fn lock_path(dir: &Path, owner: &str) -> PathBuf {
    dir.join(format!("{owner}.lock"))
}

/// Whether the process that owns `owner`'s files is still running: it holds
/// an exclusive lock on `<owner>.lock` for as long as its spool is open, and
/// the system releases the lock when the process ends, however it ends.
///
/// Probing takes a shared lock, so two processes probing at once do not
/// mistake each other for the owner; any doubt (an error other than a
/// missing lock file) counts as alive, so a live owner's files are never taken.
///
/// A lock path that is not a regular file (a FIFO, a symbolic link, a
/// device) was never made by crashbox, which only locks regular files: its
/// owner counts as gone.
fn owner_alive(dir: &Path, owner: &str) -> bool {
    let path = lock_path(dir, owner);
    match open_regular(&path, false) {
        Ok(file) => match file.try_lock_shared() {
            Ok(()) => false,
            Err(fs::TryLockError::WouldBlock) => true,
            Err(fs::TryLockError::Error(_)) => true,
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(_) => fs::symlink_metadata(&path).map_or(true, |m| m.is_file()),
    }
}

/// Creates `<owner>.lock`, locked, under a temporary name first, so no other
/// process ever sees it unlocked.
fn hold_lock(dir: &Path, owner: &str) -> io::Result<File> {
    let tmp = dir.join(format!(".{owner}.lock.tmp"));
    let file = create_private(&tmp)?;
    file.try_lock().map_err(io::Error::other)?;
    fs::rename(&tmp, lock_path(dir, owner))?;
    Ok(file)
}

/// A short stable hash (FNV-1a), so programs of the same name in different
/// places get different spools.
fn short_hash(bytes: &[u8]) -> String {
    format!("{:08x}", crate::hash::fnv1a_32(bytes))
}

/// The default spool directory: `$XDG_STATE_HOME/crashbox/<program>-<hash>`,
/// else `~/.local/state/crashbox/<program>-<hash>`, where the hash is of the
/// executable's full path. `None` without either variable: a shared temp
/// directory would let other users meddle with the spool.
pub(crate) fn default_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok();
    let program = exe
        .as_ref()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "program".to_owned());
    let hash = short_hash(
        exe.as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
            .as_bytes(),
    );
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = var("XDG_STATE_HOME").or_else(|| var("HOME").map(|h| h.join(".local/state")))?;
    Some(base.join("crashbox").join(format!("{program}-{hash}")))
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

/// Parses `<ms>-<id>.<owner>.report` into (ms, owner).
fn parse_name(name: &str) -> Option<(u64, &str)> {
    let stem = name.strip_suffix(SUFFIX)?;
    let (key, owner) = stem.rsplit_once('.')?;
    let (ms, id) = key.split_once('-')?;
    ReportId::parse(id)?;
    Some((ms.parse().ok()?, owner))
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

    /// Creates spare files until [`SPARES`] are ready (on the worker).
    pub(crate) fn refill_spares(&self) {
        while lock(&self.spares).len() < SPARES {
            let n = self.next_spare.fetch_add(1, Ordering::Relaxed);
            let path = self.dir.join(format!("{}-{n}{SPARE_SUFFIX}", self.owner));
            match create_private(&path) {
                Ok(file) => lock(&self.spares).push((file, path)),
                Err(_) => return,
            }
        }
    }

    /// Writes a panic's capture, into a spare file when one is ready (no
    /// file creation, no rename: the panic hook's path), else atomically.
    pub(crate) fn write_panic(&self, captured: &Captured) -> io::Result<PathBuf> {
        let spare = lock(&self.spares).pop();
        let Some((mut file, path)) = spare else {
            return self.write(
                captured.id,
                captured.timestamp_ms,
                EntryRef::Captured(captured),
            );
        };
        let bytes = encode(EntryRef::Captured(captured))?;
        file.write_all(&bytes)?;
        Ok(path)
    }

    /// Gives a filled spare file its report name (on the worker, after the hook).
    pub(crate) fn adopt(&self, path: PathBuf, id: ReportId, timestamp_ms: u64) -> PathBuf {
        if !path.to_string_lossy().ends_with(SPARE_SUFFIX) {
            return path;
        }
        let named = self.dir.join(self.file_name(id, timestamp_ms));
        match fs::rename(&path, &named) {
            Ok(()) => named,
            Err(_) => path,
        }
    }

    /// Turns the filled spare files of dead processes (and spares a dead
    /// process was claiming) into ordinary orphan report files; empty ones
    /// are removed.
    fn adopt_dead_spares(&self) {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // A spare file, or a spare some process was claiming when it died.
            let Some(owner) = name
                .strip_suffix(SPARE_SUFFIX)
                .or_else(|| name.strip_suffix(".claim"))
                .and_then(|s| s.rsplit_once('-'))
                .map(|(owner, _)| owner.to_owned())
            else {
                continue;
            };
            if owner == self.owner || owner_alive(&self.dir, &owner) {
                continue;
            }
            // Claim it first, so only one process handles it.
            let n = self.next_spare.fetch_add(1, Ordering::Relaxed);
            let mine = self.dir.join(format!("{}-c{n}.claim", self.owner));
            if fs::rename(entry.path(), &mine).is_err() {
                continue;
            }
            let bytes = match read_capped(&mine, MAX_FILE_BYTES) {
                Ok(bytes) if bytes.is_empty() => {
                    let _ = fs::remove_file(&mine);
                    continue;
                }
                Ok(bytes) => bytes,
                Err(_) => {
                    self.quarantine(&mine);
                    continue;
                }
            };
            let key = parse_entry(&bytes).and_then(|entry| match entry {
                Entry::Captured(c) => Some((c.timestamp_ms, c.id)),
                Entry::Report(_) => None,
            });
            match key {
                Some((ms, id)) => {
                    let orphan = self.dir.join(format!("{ms:016}-{id}.{owner}{SUFFIX}"));
                    if fs::rename(&mine, &orphan).is_err() {
                        self.quarantine(&mine);
                    }
                }
                None => self.quarantine(&mine),
            }
        }
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

    /// Moves an unreadable file aside into `corrupt/`, keeping the newest 100 there.
    fn quarantine(&self, path: &Path) {
        STATS.spool_corrupt.inc();
        let corrupt = self.dir.join("corrupt");
        let is_real_dir = |p: &Path| fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_dir());
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        let moved = (is_real_dir(&corrupt) || builder.create(&corrupt).is_ok())
            && is_real_dir(&corrupt)
            && path
                .file_name()
                .is_some_and(|name| fs::rename(path, corrupt.join(name)).is_ok());
        if !moved {
            let _ = fs::remove_file(path);
            return;
        }
        if let Ok(entries) = fs::read_dir(&corrupt) {
            let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            if names.len() > 100 {
                names.sort();
                for old in &names[..names.len() - 100] {
                    let _ = fs::remove_file(old);
                }
            }
        }
    }

    /// Applies retention and claims every file whose owner is gone, oldest
    /// first. Returns the claimed entries with their (new) paths.
    pub(crate) fn claim_orphans(&self) -> Vec<(PathBuf, Entry)> {
        self.adopt_dead_spares();
        self.adopt_dead_journals();
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let oldest_ms = now_ms.saturating_sub(self.max_age.as_millis() as u64);
        let mut orphans: Vec<(String, u64)> = Vec::new();
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with('.') && name.ends_with(".tmp") {
                // A write that never finished: its writer died between write and rename.
                let stale = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > Duration::from_secs(3600));
                if stale {
                    let _ = fs::remove_file(&path);
                }
                continue;
            }
            if !name.ends_with(SUFFIX) {
                continue;
            }
            match parse_name(&name) {
                None => self.quarantine(&path),
                Some((_, owner)) if owner == self.owner || owner_alive(&self.dir, owner) => {}
                Some((ms, _)) => orphans.push((name, ms)),
            }
        }
        orphans.sort();
        // The reports this pass deletes (a file stands for its count).
        let mut lost = 0u64;
        orphans.retain(|(name, ms)| {
            if *ms >= oldest_ms {
                return true;
            }
            let path = self.dir.join(name);
            let occurrences = self
                .read_entry(&path)
                .map_or(1, |entry| entry.count().saturating_add(entry.carried()));
            if fs::remove_file(&path).is_ok() {
                STATS.spool_discarded.inc();
                lost = lost.saturating_add(occurrences);
            }
            false
        });
        // Only orphans count against the limit: live processes' files are theirs.
        let paths = if orphans.len() > self.max_reports {
            self.fold_and_trim(orphans, &mut lost)
        } else {
            orphans
                .iter()
                .filter_map(|(name, _)| self.claim(name))
                .collect()
        };
        let mut claimed = Vec::new();
        for path in paths {
            match self.read_entry(&path) {
                Some(entry) => claimed.push((path, entry)),
                None => self.quarantine(&path),
            }
        }
        self.attach_discarded(&mut claimed, lost);
        self.remove_dead_locks();
        claimed
    }

    /// Claims the orphan `name` by renaming it to this owner's name; `None`
    /// when another process claimed it first.
    fn claim(&self, name: &str) -> Option<PathBuf> {
        let (key, _) = name.strip_suffix(SUFFIX)?.rsplit_once('.')?;
        let mine = self.dir.join(format!("{key}.{}{SUFFIX}", self.owner));
        fs::rename(self.dir.join(name), &mine).ok()?;
        Some(mine)
    }

    /// Retention over more orphans (`orphans`, oldest first) than
    /// `max_reports`. Claims them all, reading at most [`read_cap`] (of the
    /// others the oldest go unread, though never the oldest of all). In each
    /// run of identical files, the files between the first and the latest
    /// are folded into the first: its `count` (and the deleted reports it
    /// carries) grows by theirs, and they go. Then the oldest are deleted
    /// until `max_reports` remain, the first and latest of a run only once
    /// nothing else is left. Adds the reports deleted to `lost`; returns the
    /// files kept, oldest first.
    fn fold_and_trim(&self, mut orphans: Vec<(String, u64)>, lost: &mut u64) -> Vec<PathBuf> {
        let cap = read_cap(self.max_reports);
        if orphans.len() > cap {
            let unread = orphans.len() - cap;
            for (name, _) in orphans.drain(1..=unread) {
                if fs::remove_file(self.dir.join(name)).is_ok() {
                    STATS.spool_discarded.inc();
                    *lost = lost.saturating_add(1);
                }
            }
        }
        let mut files: Vec<Scanned> = Vec::with_capacity(orphans.len());
        for (name, _) in orphans {
            let Some(path) = self.claim(&name) else {
                continue;
            };
            match self.read_entry(&path) {
                Some(entry) => files.push(Scanned {
                    identity: entry.identity(),
                    count: entry.count(),
                    carried: entry.carried(),
                    path,
                }),
                None => self.quarantine(&path),
            }
        }
        let identities: Vec<Identity> = files.iter().map(|f| f.identity).collect();
        let mut gone = vec![false; files.len()];
        let mut protected = vec![false; files.len()];
        for group in groups_of(&identities) {
            let (first, latest) = (group[0], group[group.len() - 1]);
            protected[first] = true;
            protected[latest] = true;
            let middle = &group[1..group.len() - 1];
            if middle.is_empty() {
                continue;
            }
            let (count, carried) = middle.iter().fold(
                (files[first].count, files[first].carried),
                |(count, carried), &i| {
                    (
                        count.saturating_add(files[i].count),
                        carried.saturating_add(files[i].carried),
                    )
                },
            );
            let folded = self
                .read_entry(&files[first].path)
                .is_some_and(|mut entry| {
                    entry.set_count(count);
                    entry.set_carried(carried);
                    self.replace(&files[first].path, entry.borrowed()).is_ok()
                });
            if !folded {
                // They stay as they are, for the trimming below.
                continue;
            }
            files[first].count = count;
            files[first].carried = carried;
            // Dying between the rewrite and these removals would count them
            // twice, never lose them.
            for &i in middle {
                gone[i] = true;
                if fs::remove_file(&files[i].path).is_ok() {
                    STATS.spool_folded.inc();
                }
            }
        }
        let live: Vec<usize> = (0..files.len()).filter(|&i| !gone[i]).collect();
        for i in doomed(&live, &protected, self.max_reports) {
            gone[i] = true;
            if fs::remove_file(&files[i].path).is_ok() {
                STATS.spool_discarded.inc();
                *lost = lost
                    .saturating_add(files[i].count)
                    .saturating_add(files[i].carried);
            }
        }
        files
            .into_iter()
            .zip(gone)
            .filter(|(_, gone)| !gone)
            .map(|(file, _)| file.path)
            .collect()
    }

    /// Makes a claimed entry carry `lost`, the reports this pass deleted,
    /// under [`DISCARDED_KEY`] (added to what it carried), in memory and in
    /// its file, so that the number survives this run dying before
    /// delivery. The carrier is the first finished report, which goes out
    /// as it is, else the first entry: a raw capture is processed again,
    /// and aggregation may copy its report into another. With no claimed
    /// entry, the number waits for [`take_discarded`](Self::take_discarded).
    fn attach_discarded(&self, claimed: &mut [(PathBuf, Entry)], lost: u64) {
        if lost == 0 {
            return;
        }
        let carrier = claimed
            .iter()
            .position(|(_, entry)| matches!(entry, Entry::Report(_)))
            .unwrap_or(0);
        let Some((path, entry)) = claimed.get_mut(carrier) else {
            self.unattached.fetch_add(lost, Ordering::Relaxed);
            return;
        };
        entry.set_carried(entry.carried().saturating_add(lost));
        // In memory the number goes out in any case; on disk it waits for a
        // later run if this one dies first.
        let _ = self.replace(path, entry.borrowed());
    }

    /// The reports retention deleted that no claimed entry could carry
    /// (none was left), for the next report to carry; zero afterwards.
    pub(crate) fn take_discarded(&self) -> u64 {
        self.unattached.swap(0, Ordering::Relaxed)
    }

    /// Removes the lock files of owners that are gone (locked first, so a
    /// live owner's file is never touched).
    fn remove_dead_locks(&self) {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".lock") || name == format!("{}.lock", self.owner) {
                continue;
            }
            match open_regular(&entry.path(), false) {
                Ok(file) => {
                    if file.try_lock().is_ok() {
                        let _ = fs::remove_file(entry.path());
                    }
                }
                // Not a regular file: no crashbox process locks it.
                Err(_) if entry.file_type().is_ok_and(|t| !t.is_file()) => {
                    let _ = fs::remove_file(entry.path());
                }
                Err(_) => {}
            }
        }
    }

    /// Reads how the previous run ended and records that this one started.
    pub(crate) fn start_run(&self) -> LastRun {
        let path = self.dir.join(RUN_STATE);
        let previous: LastRun = read_capped(&path, 4096)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let last = LastRun {
            panicked: previous.panicked,
            consecutive_panics: if previous.panicked {
                previous.consecutive_panics
            } else {
                0
            },
        };
        // Anything but a regular file there (a link, a FIFO) is replaced.
        let file = open_regular(&path, true).or_else(|_| {
            let _ = fs::remove_file(&path);
            create_private(&path)
        });
        // Another process of the same program may have just created it.
        let file = file.or_else(|_| open_regular(&path, true));
        *lock(&self.run_state) = file.ok();
        self.write_run_state(LastRun {
            panicked: false,
            consecutive_panics: last.consecutive_panics,
        });
        last
    }

    /// Records that this run panicked, following `last`.
    pub(crate) fn record_panic(&self, last: LastRun) {
        self.write_run_state(LastRun {
            panicked: true,
            consecutive_panics: last.consecutive_panics.saturating_add(1),
        });
    }

    /// Rewrites the open run-state file in place, padded to a fixed width.
    fn write_run_state(&self, state: LastRun) {
        let Ok(mut bytes) = serde_json::to_vec(&state) else {
            return;
        };
        bytes.resize(RUN_STATE_WIDTH.max(bytes.len()), b' ');
        if let Some(file) = lock(&self.run_state).as_mut() {
            let _ = file
                .seek(SeekFrom::Start(0))
                .and_then(|_| file.write_all(&bytes))
                .and_then(|()| file.set_len(bytes.len() as u64));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_hash_is_stable_across_versions() {
        // A new version must find the spool an older one left behind.
        assert_eq!(short_hash(b""), "811c9dc5");
        assert_eq!(short_hash(b"a"), "e40c292c");
        assert_eq!(short_hash(b"/usr/local/bin/my-app"), "f18a0993");
    }

    fn temp_spool(label: &str) -> Spool {
        let dir = std::env::temp_dir().join(format!(
            "crashbox-spool-unit-{label}-{}-{}",
            std::process::id(),
            crate::rand::random_u128() as u32
        ));
        Spool::open(dir, 100, Duration::from_secs(30 * 86_400)).unwrap()
    }

    #[test]
    fn files_are_private_and_named_for_their_owner() {
        let spool = temp_spool("private");
        let r = Report::sample("x");
        let path = spool.write(r.id, 5, EntryRef::Report(&r)).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            parse_name(&name).map(|(ms, o)| (ms, o.to_owned())),
            Some((5, spool.owner.clone()))
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        // Its owner (this process) is alive: nobody may claim it.
        assert!(spool.claim_orphans().is_empty());
        fs::remove_dir_all(spool.dir()).unwrap();
    }

    #[test]
    fn orphans_are_claimed_oldest_first_and_corrupt_files_set_aside() {
        let spool = temp_spool("orphans");
        let dead = "4194999_1";
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        for (i, message) in ["second", "first"].iter().enumerate() {
            let r = Report::sample(message);
            let bytes = serde_json::to_vec(&SpoolFileRef {
                format: FORMAT,
                entry: EntryRef::Report(&r),
            })
            .unwrap();
            let ms = now_ms - 10 + (1 - i as u64);
            fs::write(
                spool
                    .dir()
                    .join(format!("{ms:016}-{}.{dead}{SUFFIX}", r.id)),
                bytes,
            )
            .unwrap();
        }
        let junk = spool.dir().join(format!(
            "{:016}-{}.{dead}{SUFFIX}",
            now_ms,
            ReportId::random()
        ));
        fs::write(&junk, b"{not json").unwrap();
        let future = spool.dir().join(format!(
            "{:016}-{}.{dead}{SUFFIX}",
            now_ms,
            ReportId::random()
        ));
        fs::write(&future, br#"{"format": 99, "entry": {}}"#).unwrap();
        let corrupt_before = crate::stats().spool_corrupt;
        let claimed = spool.claim_orphans();
        let messages: Vec<String> = claimed
            .iter()
            .map(|(_, e)| match e {
                Entry::Report(r) => r.message.clone(),
                Entry::Captured(c) => c.message.clone(),
            })
            .collect();
        assert_eq!(messages, vec!["first", "second"]);
        assert!(claimed
            .iter()
            .all(|(p, _)| p.to_string_lossy().contains(&spool.owner)));
        assert!(crate::stats().spool_corrupt >= corrupt_before + 2);
        assert_eq!(
            fs::read_dir(spool.dir().join("corrupt")).unwrap().count(),
            2
        );
        fs::remove_dir_all(spool.dir()).unwrap();
    }

    #[test]
    fn a_live_owners_files_neither_count_against_retention_nor_get_claimed() {
        let dir = temp_spool("retention").dir().to_path_buf();
        let live = Spool::open(dir.clone(), 3, Duration::from_secs(86_400)).unwrap();
        let claimer = Spool::open(dir.clone(), 3, Duration::from_secs(86_400)).unwrap();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        // Five different reports: nothing to fold.
        for (i, word) in ["alpha", "bravo", "charlie", "delta", "echo"]
            .iter()
            .enumerate()
        {
            let r = Report::sample(&format!("live {word}"));
            live.write(r.id, now_ms + i as u64, EntryRef::Report(&r))
                .unwrap();
        }
        for i in 0..2 {
            let r = Report::sample("orphan");
            let bytes = serde_json::to_vec(&SpoolFileRef {
                format: FORMAT,
                entry: EntryRef::Report(&r),
            })
            .unwrap();
            let name = format!("{:016}-{}.4194999_dead{SUFFIX}", now_ms + i, r.id);
            fs::write(dir.join(name), bytes).unwrap();
        }
        let claimed = claimer.claim_orphans();
        assert_eq!(
            claimed.len(),
            2,
            "the live owner's 5 files leave room for both orphans"
        );
        assert!(claimed
            .iter()
            .all(|(_, e)| matches!(e, Entry::Report(r) if r.message == "orphan")));
        assert!(
            claimed.iter().all(|(_, e)| e.carried() == 0),
            "nothing was deleted"
        );
        drop(live);
        // Once its owner is gone (lock released), the files are orphans too.
        let claimed = claimer.claim_orphans();
        assert_eq!(claimed.len(), 3, "retention keeps the newest 3 of 5");
        let messages: Vec<&str> = claimed
            .iter()
            .map(|(_, e)| match e {
                Entry::Report(r) => r.message.as_str(),
                Entry::Captured(c) => c.message.as_str(),
            })
            .collect();
        assert_eq!(messages, ["live charlie", "live delta", "live echo"]);
        assert_eq!(claimed[0].1.carried(), 2, "the first carries the 2 deleted");
        assert_eq!(claimer.take_discarded(), 0, "none left unattached");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_oversized_capture_is_written_smaller_and_an_oversized_file_is_not_read() {
        let spool = temp_spool("oversized");
        let crumb = serde_json::json!({"timestamp": "2026-01-01T00:00:00.000Z",
            "level": "info", "category": null, "message": "b".repeat(1000), "data": {}});
        let captured: Captured = serde_json::from_value(serde_json::json!({
            "id": ReportId::random(), "timestamp_ms": 1, "level": "error", "kind": "error",
            "message": "m".repeat(20_000), "exceptions": [], "addresses": [], "location": null,
            "thread": {"name": null, "id": 1}, "tags": {}, "extra": {"small": 1},
            "user": null, "level_override": null, "fingerprint": null,
            "breadcrumbs": vec![crumb; 3000], "truncated": [], "scrubbed": true,
        }))
        .unwrap();
        let path = spool
            .write(captured.id, 1, EntryRef::Captured(&captured))
            .unwrap();
        assert!(fs::metadata(&path).unwrap().len() <= MAX_FILE_BYTES);
        let Some(Entry::Captured(back)) = spool.read_entry(&path) else {
            panic!("not read back");
        };
        assert!(back.breadcrumbs.is_empty());
        assert_eq!(back.extra.len(), 1, "extra fits once breadcrumbs are gone");
        assert!(back.message.len() <= crate::limits::MAX_MESSAGE_BYTES + 3);
        assert_eq!(back.truncated, ["breadcrumbs", "message"]);
        assert!(!back.scrubbed, "scrubbed again whatever the file says");
        // A file over the cap is refused unread.
        fs::write(&path, vec![b' '; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert!(spool.read_entry(&path).is_none());
        fs::remove_dir_all(spool.dir()).unwrap();
    }

    /// Writes `entry` as an orphan of a process that is gone, captured at `ms`.
    fn write_orphan(dir: &Path, ms: u64, entry: EntryRef<'_>) -> PathBuf {
        let id = match entry {
            EntryRef::Report(r) => r.id,
            EntryRef::Captured(c) => c.id,
        };
        let path = dir.join(format!("{ms:016}-{id}.4194999_gone{SUFFIX}"));
        let bytes = serde_json::to_vec(&SpoolFileRef {
            format: FORMAT,
            entry,
        })
        .unwrap();
        fs::write(&path, bytes).unwrap();
        path
    }

    /// A panic's raw capture as the panic hook spools it: `base` is where
    /// the binary was loaded in the run that captured it (it differs from
    /// run to run), `offsets` where the frames are in the binary.
    fn panic_capture(message: &str, ms: u64, base: usize, offsets: &[u64]) -> Captured {
        let addresses: Vec<usize> = offsets.iter().map(|&o| base + o as usize).collect();
        let located: Vec<Option<(u32, u64)>> = offsets.iter().map(|&o| Some((0, o))).collect();
        serde_json::from_value(serde_json::json!({
            "id": ReportId::random(), "timestamp_ms": ms, "level": "fatal", "kind": "panic",
            "message": message, "exceptions": [], "addresses": addresses,
            "located": located,
            "modules": [{"path": "/usr/bin/app", "identity": "2049:77:4096:1700000000"}],
            "location": {"file": "src/main.rs", "line": 7, "column": 5},
            "thread": {"name": "main", "id": 1}, "tags": {}, "extra": {},
            "user": null, "level_override": null, "fingerprint": null,
            "breadcrumbs": [], "truncated": [], "scrubbed": true,
        }))
        .unwrap()
    }

    /// The time now, in ms since the Unix epoch.
    fn now_ms() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    /// The message of a report or capture.
    fn message_of(entry: &Entry) -> &str {
        match entry {
            Entry::Report(r) => &r.message,
            Entry::Captured(c) => &c.message,
        }
    }

    #[test]
    fn identical_files_group_by_identity_oldest_first() {
        assert_eq!(
            groups_of(&[7, 8, 7, 9, 7, 8]),
            vec![vec![0, 2, 4], vec![1, 5]]
        );
        assert!(groups_of(&[1, 2, 3]).is_empty());
        assert!(groups_of::<u64>(&[]).is_empty());
    }

    #[test]
    fn deletion_takes_the_oldest_and_spares_first_and_latest_while_it_can() {
        let protected = [true, false, true, false, false];
        let live = [0, 1, 2, 3, 4];
        assert_eq!(doomed(&live, &protected, 5), Vec::<usize>::new());
        assert_eq!(doomed(&live, &protected, 3), vec![1, 3]);
        // Nothing unprotected is left: the protected go, oldest first.
        assert_eq!(doomed(&live, &protected, 1), vec![0, 1, 3, 4]);
        assert_eq!(doomed(&[1, 3, 4], &protected, 1), vec![1, 3]);
        assert_eq!(doomed(&live, &protected, 0), live.to_vec());
    }

    #[test]
    fn a_capture_s_identity_survives_a_new_load_address_but_not_a_new_stack() {
        let identity = |c: Captured| Entry::Captured(Box::new(c)).identity();
        let one = panic_capture("loop 1", 1, 0x5555_0000_0000, &[0x1200, 0x3400]);
        let moved = panic_capture("loop 2", 2, 0x7f00_1000_0000, &[0x1200, 0x3400]);
        assert_eq!(identity(one.clone()), identity(moved));
        let other_site = panic_capture("loop 1", 1, 0x5555_0000_0000, &[0x1208, 0x3400]);
        assert_ne!(identity(one.clone()), identity(other_site));
        let other_text = panic_capture("other failure", 1, 0x5555_0000_0000, &[0x1200, 0x3400]);
        assert_ne!(identity(one.clone()), identity(other_text));
        let mut rebuilt = one.clone();
        rebuilt.modules[0].identity = "2049:77:4096:1700000999".to_owned();
        assert_ne!(identity(one.clone()), identity(rebuilt));
        let mut fingerprinted = one.clone();
        fingerprinted.fingerprint = Some(vec!["custom".to_owned()]);
        assert_ne!(identity(one.clone()), identity(fingerprinted));
        // A report folds by its fold key, apart from any capture.
        let report = |m: &str| Entry::Report(Box::new(Report::sample(m))).identity();
        assert_eq!(report("timeout after 17 ms"), report("timeout after 18 ms"));
        assert_ne!(report("timeout"), report("refused"));
    }

    #[test]
    fn a_crash_loop_is_folded_into_its_first_panic_keeping_the_latest() {
        let dir = temp_spool("fold").dir().to_path_buf();
        let spool = Spool::open(dir, 4, Duration::from_secs(86_400)).unwrap();
        let start = now_ms() - 60_000;
        let folded_before = crate::stats().spool_folded;
        // Two unrelated reports, the oldest files of all.
        for (i, word) in ["alpha", "bravo"].iter().enumerate() {
            let r = Report::sample(&format!("unrelated {word}"));
            write_orphan(spool.dir(), start + i as u64, EntryRef::Report(&r));
        }
        // A crash loop: one panic per run, each run loaded elsewhere; one of
        // them already stands for 5 (folded by an earlier pass) and carries 3
        // deleted reports.
        let mut ids = Vec::new();
        for run in 0..8u64 {
            let mut c = panic_capture(
                &format!("crash loop {run}"),
                start + 10 + run,
                0x5555_0000_0000 + run as usize * 0x10_0000,
                &[0x1200, 0x3400],
            );
            if run == 3 {
                c.count = 5;
                c.extra.insert(DISCARDED_KEY.to_owned(), Value::from(3u64));
            }
            ids.push(c.id);
            write_orphan(spool.dir(), c.timestamp_ms, EntryRef::Captured(&c));
        }
        let claimed = spool.claim_orphans();
        // 8 panics fold into 2 files; of 4 files the limit keeps 4.
        assert_eq!(
            claimed.len(),
            4,
            "{:?}",
            claimed
                .iter()
                .map(|(_, e)| message_of(e))
                .collect::<Vec<_>>()
        );
        assert_eq!(message_of(&claimed[0].1), "unrelated alpha");
        assert_eq!(message_of(&claimed[1].1), "unrelated bravo");
        let Entry::Captured(first) = &claimed[2].1 else {
            panic!("the first panic is a capture still");
        };
        assert_eq!(first.id, ids[0], "the first panic survives");
        assert_eq!(
            first.count,
            1 + 6 + 4,
            "itself, the 6 between, 4 more for the folded one"
        );
        assert_eq!(claimed[2].1.carried(), 3, "what the folded one carried");
        let Entry::Captured(latest) = &claimed[3].1 else {
            panic!("the latest panic is a capture still");
        };
        assert_eq!(
            (latest.id, latest.count),
            (ids[7], 1),
            "the latest survives"
        );
        // The first's file says so too, under the same name, as a capture.
        let Some(Entry::Captured(on_disk)) = spool.read_entry(&claimed[2].0) else {
            panic!("the first's file holds a capture");
        };
        assert_eq!(on_disk.count, 11);
        assert!(claimed[2].0.to_string_lossy().contains(&ids[0].to_string()));
        assert_eq!(report_files(spool.dir()).len(), 4, "the 6 between are gone");
        assert!(crate::stats().spool_folded >= folded_before + 6);
        assert_eq!(claimed[0].1.carried(), 0, "nothing was deleted");
        assert_eq!(spool.take_discarded(), 0);
        fs::remove_dir_all(spool.dir()).unwrap();
    }

    #[test]
    fn past_the_limit_the_oldest_go_but_a_crash_loop_s_first_and_latest_stay() {
        let dir = temp_spool("trim").dir().to_path_buf();
        let spool = Spool::open(dir.clone(), 3, Duration::from_secs(86_400)).unwrap();
        let start = now_ms() - 60_000;
        let mut loop_ids = Vec::new();
        for run in 0..2u64 {
            let c = panic_capture("crash loop", start + run, 0x1000 * run as usize, &[0x42]);
            loop_ids.push(c.id);
            write_orphan(&dir, c.timestamp_ms, EntryRef::Captured(&c));
        }
        for (i, word) in ["alpha", "bravo", "charlie", "delta"].iter().enumerate() {
            let mut r = Report::sample(&format!("unrelated {word}"));
            if i == 0 {
                // Deleted with this one: 4 occurrences and 2 reports it carried.
                r.count = 4;
                r.extra.insert(DISCARDED_KEY.to_owned(), Value::from(2u64));
            }
            write_orphan(&dir, start + 10 + i as u64, EntryRef::Report(&r));
        }
        let claimed = spool.claim_orphans();
        let messages: Vec<&str> = claimed.iter().map(|(_, e)| message_of(e)).collect();
        assert_eq!(messages, ["crash loop", "crash loop", "unrelated delta"]);
        let ids: Vec<ReportId> = claimed
            .iter()
            .filter_map(|(_, e)| match e {
                Entry::Captured(c) => Some(c.id),
                Entry::Report(_) => None,
            })
            .collect();
        assert_eq!(ids, loop_ids);
        // Deleted: alpha (4 + the 2 it carried), bravo, charlie. The first
        // finished report carries the loss, ahead of the older captures.
        assert_eq!(claimed[2].1.carried(), 8);
        let on_disk = spool.read_entry(&claimed[2].0).unwrap();
        assert_eq!(on_disk.carried(), 8, "in its file too");
        assert_eq!(claimed[0].1.carried() + claimed[1].1.carried(), 0);
        assert_eq!(spool.take_discarded(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn with_nothing_left_to_carry_it_the_loss_waits_for_the_next_report() {
        let dir = temp_spool("unattached").dir().to_path_buf();
        let spool = Spool::open(dir.clone(), 0, Duration::from_secs(86_400)).unwrap();
        let start = now_ms() - 60_000;
        for run in 0..3u64 {
            let c = panic_capture("crash loop", start + run, 0x1000 * run as usize, &[0x42]);
            write_orphan(&dir, c.timestamp_ms, EntryRef::Captured(&c));
        }
        assert!(spool.claim_orphans().is_empty());
        assert!(report_files(&dir).is_empty());
        assert_eq!(
            spool.take_discarded(),
            3,
            "3 panics, one folded, all deleted"
        );
        assert_eq!(spool.take_discarded(), 0, "taken once");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn under_the_limit_nothing_is_folded_or_deleted() {
        let spool = temp_spool("under");
        let start = now_ms() - 60_000;
        for run in 0..5u64 {
            let c = panic_capture("crash loop", start + run, 0x1000 * run as usize, &[0x42]);
            write_orphan(spool.dir(), c.timestamp_ms, EntryRef::Captured(&c));
        }
        let claimed = spool.claim_orphans();
        assert_eq!(claimed.len(), 5);
        assert!(claimed
            .iter()
            .all(|(_, e)| e.count() == 1 && e.carried() == 0));
        fs::remove_dir_all(spool.dir()).unwrap();
    }

    #[test]
    fn beyond_the_read_cap_the_oldest_go_unread_but_the_oldest_of_all_stays() {
        let dir = temp_spool("cap").dir().to_path_buf();
        let spool = Spool::open(dir.clone(), 2, Duration::from_secs(86_400)).unwrap();
        let cap = read_cap(2);
        let start = now_ms() - 600_000;
        let first = panic_capture("crash loop", start, 0, &[0x42]);
        write_orphan(&dir, start, EntryRef::Captured(&first));
        // Unreadable files past the cap: read, they would be set aside.
        for i in 1..=5u64 {
            let name = format!(
                "{:016}-{}.4194999_gone{SUFFIX}",
                start + i,
                ReportId::random()
            );
            fs::write(dir.join(name), b"{not json").unwrap();
        }
        let mut latest = None;
        for i in 0..cap as u64 - 1 {
            let c = panic_capture("crash loop", start + 10 + i, 0x1000, &[0x42]);
            latest = Some(c.id);
            write_orphan(&dir, c.timestamp_ms, EntryRef::Captured(&c));
        }
        let claimed = spool.claim_orphans();
        assert!(
            !dir.join("corrupt").exists(),
            "the 5 past the cap were deleted unread"
        );
        let kept: Vec<(ReportId, u64)> = claimed
            .iter()
            .map(|(_, e)| match e {
                Entry::Captured(c) => (c.id, c.count),
                Entry::Report(r) => (r.id, r.count),
            })
            .collect();
        // The oldest of all was read: the loop folded into it.
        assert_eq!(
            kept,
            [(first.id, cap as u64 - 1), (latest.unwrap(), 1)],
            "the first stands for itself and the {} between",
            cap - 2
        );
        assert_eq!(claimed[0].1.carried(), 5, "the 5 deleted unread");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// The spool files in `dir`.
    fn report_files(dir: &Path) -> Vec<PathBuf> {
        fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(SUFFIX))
            .collect()
    }

    #[test]
    fn run_state_counts_panics_in_a_row() {
        let spool = temp_spool("runs");
        assert_eq!(spool.start_run(), LastRun::default());
        let last = spool.start_run();
        spool.record_panic(last);
        let last = spool.start_run();
        assert_eq!(
            last,
            LastRun {
                panicked: true,
                consecutive_panics: 1
            }
        );
        spool.record_panic(last);
        let last = spool.start_run();
        assert_eq!(last.consecutive_panics, 2);
        // A run that ends without panicking breaks the loop.
        assert_eq!(spool.start_run(), LastRun::default());
        fs::remove_dir_all(spool.dir()).unwrap();
    }
}
