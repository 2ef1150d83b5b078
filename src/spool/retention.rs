//! Claiming what dead owners left, folding identical reports, and
//! retention: what is replayed and what is deleted, and saying so.

use super::*;

/// What retention folds by: identical entries share it, in every run of
/// one binary (never an address, which moves from run to run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Identity {
    /// A finished report's fold key.
    Report(u64),
    /// A raw capture's located key.
    Captured(u64),
}

impl Entry {
    /// The borrowed form, for writing.
    pub(super) fn borrowed(&self) -> EntryRef<'_> {
        match self {
            Entry::Report(report) => EntryRef::Report(report),
            Entry::Captured(captured) => EntryRef::Captured(captured),
        }
    }

    /// How many occurrences it stands for (at least 1).
    pub(super) fn count(&self) -> u64 {
        match self {
            Entry::Report(report) => report.count,
            Entry::Captured(captured) => captured.count,
        }
        .max(1)
    }

    /// Makes it stand for `count` occurrences.
    pub(super) fn set_count(&mut self, count: u64) {
        match self {
            Entry::Report(report) => report.count = count,
            Entry::Captured(captured) => captured.count = count,
        }
    }

    /// Its `extra` values.
    pub(super) fn extra(&self) -> &BTreeMap<String, Value> {
        match self {
            Entry::Report(report) => &report.extra,
            Entry::Captured(captured) => &captured.extra,
        }
    }

    /// Its `extra` values, to change.
    pub(super) fn extra_mut(&mut self) -> &mut BTreeMap<String, Value> {
        match self {
            Entry::Report(report) => &mut report.extra,
            Entry::Captured(captured) => &mut captured.extra,
        }
    }

    /// The deleted reports it carries under [`DISCARDED_KEY`].
    pub(super) fn carried(&self) -> u64 {
        self.extra()
            .get(DISCARDED_KEY)
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    /// Makes it carry `discarded` deleted reports (none: no key at all).
    pub(super) fn set_carried(&mut self, discarded: u64) {
        if discarded == 0 {
            self.extra_mut().remove(DISCARDED_KEY);
        } else {
            self.extra_mut()
                .insert(DISCARDED_KEY.to_owned(), Value::from(discarded));
        }
    }

    /// What it folds by (see [`Identity`]).
    pub(super) fn identity(&self) -> Identity {
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
pub(super) struct Scanned {
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
pub(super) fn groups_of<T: Copy + Eq + std::hash::Hash>(identities: &[T]) -> Vec<Vec<usize>> {
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
pub(super) fn doomed(live: &[usize], protected: &[bool], max: usize) -> Vec<usize> {
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
pub(super) fn read_cap(max_reports: usize) -> usize {
    max_reports.saturating_mul(10).saturating_add(1000)
}

impl Spool {
    /// Moves an unreadable file aside into `corrupt/`, keeping the newest 100 there.
    pub(super) fn quarantine(&self, path: &Path) {
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
    pub(super) fn claim(&self, name: &str) -> Option<PathBuf> {
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
    pub(super) fn fold_and_trim(
        &self,
        mut orphans: Vec<(String, u64)>,
        lost: &mut u64,
    ) -> Vec<PathBuf> {
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
    pub(super) fn attach_discarded(&self, claimed: &mut [(PathBuf, Entry)], lost: u64) {
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
}
