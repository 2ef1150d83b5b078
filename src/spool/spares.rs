//! Spare files created ahead of time, so the panic hook only writes into one.

use super::*;

/// Spare files kept ready for panics.
pub(super) const SPARES: usize = 2;

pub(super) const SPARE_SUFFIX: &str = ".spare";

/// The crash file's name after its owner: `<owner>-crash.spare`, a spare
/// to the rest of the spool.
const CRASH_SPARE: &str = "-crash";

/// The owner of a spare file, or of a spare some process was claiming when
/// it died (`<owner>-<n>.spare`, `<claimer>-c<n>.claim`); `None` for any
/// other name.
pub(crate) fn spare_owner(name: &str) -> Option<&str> {
    name.strip_suffix(SPARE_SUFFIX)
        .or_else(|| name.strip_suffix(".claim"))
        .and_then(|s| s.rsplit_once('-'))
        .map(|(owner, _)| owner)
}

/// The capture a crash record (the file at `path`) becomes, held to a
/// capture's limits; its time is the file's when the record has none.
pub(super) fn crash_capture(bytes: &[u8], path: &Path) -> Option<Captured> {
    let record = crate::crash::record::parse(bytes)?;
    let written = fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| SystemTime::now());
    let ms = written
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut captured = record.into_captured(ms);
    distrust(&mut captured);
    Some(captured)
}

impl Spool {
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

    /// Creates this process's crash file, which the signal handler writes
    /// into (see `crate::crash`).
    pub(crate) fn create_crash_file(&self) -> io::Result<(File, PathBuf)> {
        let path = self
            .dir
            .join(format!("{}{CRASH_SPARE}{SPARE_SUFFIX}", self.owner));
        let _ = fs::remove_file(&path);
        Ok((create_private(&path)?, path))
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

    fn orphan_path(&self, ms: u64, id: ReportId, owner: &str) -> PathBuf {
        self.dir.join(format!("{ms:016}-{id}.{owner}{SUFFIX}"))
    }

    /// Turns a dead process's crash record (claimed at `claimed`) into an
    /// orphan capture of kind `crash`, which the replay resolves and sends.
    fn adopt_crash(&self, claimed: &Path, bytes: &[u8], owner: &str) {
        let Some(captured) = crash_capture(bytes, claimed) else {
            self.quarantine(claimed);
            return;
        };
        let orphan = self.orphan_path(captured.timestamp_ms, captured.id, owner);
        match self.replace(&orphan, EntryRef::Captured(&captured)) {
            Ok(()) => {
                let _ = fs::remove_file(claimed);
            }
            Err(_) => self.quarantine(claimed),
        }
    }

    /// Turns the filled spare files of dead processes (and spares a dead
    /// process was claiming) into ordinary orphan report files; empty ones
    /// are removed.
    pub(super) fn adopt_dead_spares(&self) {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(owner) = spare_owner(&name).map(str::to_owned) else {
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
            if bytes.starts_with(crate::crash::MAGIC) {
                self.adopt_crash(&mine, &bytes, &owner);
                continue;
            }
            let key = parse_entry(&bytes).and_then(|entry| match entry {
                Entry::Captured(c) => Some((c.timestamp_ms, c.id)),
                Entry::Report(_) => None,
            });
            match key {
                Some((ms, id)) => {
                    let orphan = self.orphan_path(ms, id, &owner);
                    if fs::rename(&mine, &orphan).is_err() {
                        self.quarantine(&mine);
                    }
                }
                None => self.quarantine(&mine),
            }
        }
    }
}
