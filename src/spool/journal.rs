//! The journal: where the worker writes each capture the moment it takes
//! it in, before its symbols are resolved. Appending a line to one open
//! file costs microseconds where creating a file can cost a millisecond, so
//! a burst of captures is on disk as fast as it arrives.
//!
//! `<owner>.journal` holds one line per capture (a spool file's JSON, as
//! `{"format":1,"entry":{"type":"captured",…}}`) and one per capture that
//! no longer needs it (`{"settled":"<id>"}`: delivered or dropped, or its
//! report is in a spool file of its own). A report on its way to the
//! collector keeps its capture's line: if the process dies first, the next
//! run processes the capture again. Once every capture in it is settled
//! the file is emptied. A journal whose owner is gone is turned into
//! ordinary orphan spool files, one per unsettled capture, by the next run.
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use super::{
    create_private, encode, open_regular, owner_alive, parse_captured, parse_entry, Entry,
    EntryRef, Spool, MAX_FILE_BYTES, SUFFIX,
};
use crate::record::Captured;
use crate::report::ReportId;
use crate::stats::STATS;

const JOURNAL_SUFFIX: &str = ".journal";
/// A journal being taken over (renamed to its claimer's name first).
const CLAIM_SUFFIX: &str = ".jclaim";
/// The most a journal grows to; past it, captures go to spool files of their own.
const MAX_JOURNAL_BYTES: u64 = 64 << 20;

#[derive(Serialize, Deserialize)]
struct Settled {
    settled: ReportId,
}

/// Where a capture's line is in the journal, to read it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    offset: u64,
    /// With its newline.
    len: u32,
}

/// This run's journal (see the module docs).
pub(crate) struct Journal {
    path: PathBuf,
    file: Option<File>,
    /// Captures written and not settled since the file was last emptied.
    unsettled: usize,
    /// Where the next line goes (only this process writes the file);
    /// `None`: not known, ask the file.
    end: Option<u64>,
    /// Lines appended and not written yet (see [`commit`](Self::commit)),
    /// and how many captures they hold.
    staged: Vec<u8>,
    staged_captures: usize,
}

impl Journal {
    /// The journal of `spool`'s owner (created on the first write).
    pub(crate) fn new(spool: &Spool) -> Journal {
        Journal {
            path: spool.dir.join(format!("{}{JOURNAL_SUFFIX}", spool.owner)),
            file: None,
            unsettled: 0,
            end: None,
            staged: Vec::new(),
            staged_captures: 0,
        }
    }

    fn file(&mut self) -> io::Result<&mut File> {
        if self.file.is_none() {
            let file = match create_private(&self.path) {
                Ok(file) => file,
                // Left by an earlier journal of this owner: start it over.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let file = open_regular(&self.path, true)?;
                    file.set_len(0)?;
                    file
                }
                Err(e) => return Err(e),
            };
            self.file = Some(file);
            self.end = Some(0);
        }
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("no journal"))
    }

    /// Stages `captured` as one line, written with the others staged by
    /// the next [`commit`](Self::commit) (one system call for a burst of
    /// captures); once that returns `Ok` it survives the process. Returns
    /// where the line will be, for [`read`](Self::read). A journal past
    /// [`MAX_JOURNAL_BYTES`] (the worker has not caught up for a long time)
    /// takes nothing more until it is emptied.
    pub(crate) fn append(&mut self, captured: &Captured) -> io::Result<Line> {
        let mut line = encode(EntryRef::Captured(captured))?;
        line.push(b'\n');
        let len = u32::try_from(line.len()).map_err(io::Error::other)?;
        let offset = self.end()? + self.staged.len() as u64;
        if offset + line.len() as u64 > MAX_JOURNAL_BYTES {
            return Err(io::Error::other("the journal is full"));
        }
        self.staged.extend_from_slice(&line);
        self.staged_captures += 1;
        self.unsettled += 1;
        Ok(Line { offset, len })
    }

    /// Writes the staged lines. On failure none of them is in the journal:
    /// the captures they hold need another place.
    pub(crate) fn commit(&mut self) -> io::Result<()> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let staged = std::mem::take(&mut self.staged);
        let captures = std::mem::take(&mut self.staged_captures);
        let written = self.write_line(&staged, u64::MAX).map(|_| ());
        if written.is_err() {
            self.unsettled -= captures;
        }
        // The buffer is kept for the next burst.
        self.staged = staged;
        self.staged.clear();
        written
    }

    /// Where the next line goes, the file opened if it was not.
    fn end(&mut self) -> io::Result<u64> {
        let known = self.end;
        let file = self.file()?;
        match known {
            Some(end) => Ok(end),
            None => io::Seek::seek(file, io::SeekFrom::End(0)),
        }
    }

    /// Appends `line` if the journal stays within `max` bytes; a write that
    /// fails halfway is cut off again, so the next line starts on a line of
    /// its own.
    fn write_line(&mut self, line: &[u8], max: u64) -> io::Result<u64> {
        let known = self.end.take();
        let file = self.file()?;
        let start = match known {
            Some(end) => end,
            None => io::Seek::seek(file, io::SeekFrom::End(0))?,
        };
        if start + line.len() as u64 > max {
            self.end = Some(start);
            return Err(io::Error::other("the journal is full"));
        }
        if let Err(e) = write_at(file, line, start) {
            if file.set_len(start).is_ok() {
                self.end = Some(start);
            } else {
                // Cannot cut it off: end the fragment, so it is one bad line.
                let _ = io::Seek::seek(file, io::SeekFrom::End(0));
                let _ = file.write_all(b"\n");
            }
            return Err(e);
        }
        self.end = Some(start + line.len() as u64);
        Ok(start)
    }

    /// The capture written at `line` (see [`append`](Self::append)), read
    /// back as any spool file is: not trusted to be scrubbed or within the
    /// limits.
    pub(crate) fn read(&self, line: Line) -> Option<Captured> {
        let file = self.file.as_ref()?;
        let mut bytes = vec![0; line.len as usize];
        read_at(file, &mut bytes, line.offset).ok()?;
        if bytes.pop() != Some(b'\n') {
            return None;
        }
        parse_captured(&bytes)
    }

    /// The captures `ids` written here no longer need the journal (one
    /// write for them all); once none does, the file is emptied.
    pub(crate) fn settle(&mut self, ids: &[ReportId]) {
        // The worker commits staged lines before it settles anything; the
        // settled lines must come after them in any case.
        debug_assert!(self.staged.is_empty(), "settled with lines staged");
        if self.commit().is_err() {
            STATS.spool_write_errors.inc();
        }
        let ids = &ids[..ids.len().min(self.unsettled)];
        if ids.is_empty() {
            return;
        }
        self.unsettled -= ids.len();
        if self.file.is_none() {
            return;
        }
        let written = if self.unsettled == 0 {
            let emptied = self.file.as_mut().map_or(Ok(()), |file| file.set_len(0));
            self.end = emptied.is_ok().then_some(0);
            emptied
        } else {
            let mut lines = Vec::with_capacity(ids.len() * 48);
            for &id in ids {
                if serde_json::to_writer(&mut lines, &Settled { settled: id }).is_ok() {
                    lines.push(b'\n');
                }
            }
            // Settled lines are written even past the size limit: they only
            // keep a capture from being sent twice.
            self.write_line(&lines, u64::MAX).map(|_| ())
        };
        if written.is_err() {
            STATS.spool_write_errors.inc();
        }
    }
}

/// Reads exactly `bytes.len()` bytes at `offset`.
fn read_at(file: &File, bytes: &mut [u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, bytes, offset)
    }
    #[cfg(not(unix))]
    {
        let mut file = file;
        io::Seek::seek(&mut file, io::SeekFrom::Start(offset))?;
        file.read_exact(bytes)
    }
}

/// Writes `bytes` at `offset`, one system call where the platform has one.
fn write_at(file: &mut File, bytes: &[u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
    }
    #[cfg(not(unix))]
    {
        io::Seek::seek(file, io::SeekFrom::Start(offset))?;
        file.write_all(bytes)
    }
}

/// The owner of a journal, or of one a claimer was taking over when it
/// died (`<owner>.journal`, `<claimer>-<n>.jclaim`); `None` for any other name.
pub(crate) fn journal_owner(name: &str) -> Option<&str> {
    name.strip_suffix(JOURNAL_SUFFIX)
        .or_else(|| name.strip_suffix(CLAIM_SUFFIX))
        .map(|s| s.split('-').next().unwrap_or(s))
}

/// The captures in the journal at `path` that are not settled, read as the
/// next run reads them, without claiming the journal.
pub(crate) fn unsettled_in(path: &Path) -> io::Result<Vec<Captured>> {
    let mut settled = HashSet::new();
    let mut captures = Vec::new();
    read_lines(path, |line| {
        if let Ok(Settled { settled: id }) = serde_json::from_slice(line) {
            settled.insert(id);
        } else if let Some(Entry::Captured(captured)) = parse_entry(line) {
            captures.push(*captured);
        }
    })?;
    captures.retain(|c| !settled.contains(&c.id));
    Ok(captures)
}

impl Spool {
    /// Turns the journals of owners that are gone into orphan spool files,
    /// one per capture not settled (at most `max_reports`, the newest; the
    /// older ones are counted as discarded), and removes them.
    pub(super) fn adopt_dead_journals(&self) {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(owner) = journal_owner(&name).map(str::to_owned) else {
                continue;
            };
            if owner == self.owner || owner_alive(&self.dir, &owner) {
                continue;
            }
            let n = self.next_spare.fetch_add(1, Ordering::Relaxed);
            let mine = self.dir.join(format!("{}-{n}{CLAIM_SUFFIX}", self.owner));
            if fs::rename(entry.path(), &mine).is_err() {
                // Another process took it over first.
                continue;
            }
            self.expand_journal(&mine, &owner);
            let _ = fs::remove_file(&mine);
        }
    }

    /// Writes each unsettled capture of the journal at `path` (of `owner`)
    /// as an orphan spool file.
    fn expand_journal(&self, path: &Path, owner: &str) {
        let mut settled = HashSet::new();
        let mut captures = 0usize;
        let read = read_lines(path, |line| {
            if let Ok(Settled { settled: id }) = serde_json::from_slice(line) {
                settled.insert(id);
            } else {
                captures += 1;
            }
        });
        if read.is_err() {
            return;
        }
        // Retention would delete the oldest beyond `max_reports` anyway.
        let mut skip = captures.saturating_sub(settled.len() + self.max_reports);
        STATS.spool_discarded.add(skip as u64);
        let _ = read_lines(path, |line| {
            let Some(Entry::Captured(captured)) = parse_entry(line) else {
                return;
            };
            if settled.contains(&captured.id) {
                return;
            }
            if skip > 0 {
                skip -= 1;
                return;
            }
            let name = format!(
                "{:016}-{}.{owner}{SUFFIX}",
                captured.timestamp_ms, captured.id
            );
            let tmp = self.dir.join(format!(".{name}.tmp"));
            let _ = fs::remove_file(&tmp);
            let written = encode(EntryRef::Captured(&captured)).and_then(|bytes| {
                create_private(&tmp)
                    .and_then(|mut f| f.write_all(&bytes))
                    .and_then(|()| fs::rename(&tmp, self.dir.join(&name)))
            });
            if written.is_err() {
                let _ = fs::remove_file(&tmp);
                STATS.spool_write_errors.inc();
            }
        });
    }
}

/// Calls `each` with every line of the journal at `path`, without its
/// newline. A line longer than a spool file is skipped unread; a last line
/// without a newline (the process died while writing it) is not a line.
fn read_lines(path: &Path, mut each: impl FnMut(&[u8])) -> io::Result<()> {
    let mut reader = BufReader::new(open_regular(path, false)?);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_FILE_BYTES + 1)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            return Ok(());
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            each(&line);
            continue;
        }
        if read as u64 <= MAX_FILE_BYTES {
            return Ok(());
        }
        // Too long for a line crashbox wrote: skip to its end.
        loop {
            let buf = reader.fill_buf()?;
            if buf.is_empty() {
                return Ok(());
            }
            match buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    reader.consume(i + 1);
                    break;
                }
                None => {
                    let n = buf.len();
                    reader.consume(n);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn temp_spool(label: &str) -> Spool {
        let dir = std::env::temp_dir().join(format!(
            "crashbox-journal-unit-{label}-{}-{}",
            std::process::id(),
            crate::rand::random_u128() as u32
        ));
        Spool::open(dir, 100, Duration::from_secs(30 * 86_400)).expect("a spool")
    }

    fn capture(message: &str) -> Captured {
        Captured::sample(message, 1_700_000_000_000, Vec::new())
    }

    /// The orphan report files in `spool`'s directory, by message.
    fn orphans(spool: &Spool) -> Vec<String> {
        let mut messages: Vec<String> = fs::read_dir(&spool.dir)
            .expect("the spool")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(SUFFIX))
            .filter_map(|e| match spool.read_entry(&e.path()) {
                Some(Entry::Captured(c)) => Some(c.message),
                _ => None,
            })
            .collect();
        messages.sort();
        messages
    }

    #[test]
    fn a_journal_is_emptied_once_everything_in_it_is_settled() {
        let spool = temp_spool("emptied");
        let mut journal = Journal::new(&spool);
        let (a, b) = (capture("a"), capture("b"));
        journal.append(&a).expect("staged");
        journal.append(&b).expect("staged");
        let path = journal.path.clone();
        let len = || fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert_eq!(len(), 0, "staged, not written yet");
        journal.commit().expect("written");
        let full = len();
        assert!(full > 0);
        journal.settle(&[a.id]);
        assert!(len() > full, "a settled line was added");
        journal.settle(&[b.id]);
        assert_eq!(len(), 0, "nothing unsettled: emptied");
        let _ = fs::remove_dir_all(&spool.dir);
    }

    #[test]
    fn a_dead_owners_journal_becomes_one_orphan_file_per_unsettled_capture() {
        let dead = temp_spool("dead");
        let dir = dead.dir.clone();
        let mut journal = Journal::new(&dead);
        for message in ["first", "settled", "second"] {
            journal.append(&capture(message)).expect("staged");
        }
        journal.commit().expect("written");
        let settled = {
            let text = fs::read_to_string(&journal.path).expect("the journal");
            let line = text.lines().nth(1).expect("the second line");
            let entry: serde_json::Value = serde_json::from_str(line).expect("json");
            serde_json::from_value::<ReportId>(entry["entry"]["id"].clone()).expect("an id")
        };
        journal.settle(&[settled]);
        // A line cut short by the process's death, and one far too long.
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&journal.path)
            .expect("the journal");
        file.write_all(&vec![b'x'; MAX_FILE_BYTES as usize + 10])
            .and_then(|()| file.write_all(b"\n{\"format\":1,\"entry\":{\"type\":\"capt"))
            .expect("written");
        drop(journal);
        drop(dead);
        let next = Spool::open(dir.clone(), 100, Duration::from_secs(30 * 86_400))
            .expect("the same spool");
        next.adopt_dead_journals();
        assert_eq!(orphans(&next), ["first", "second"]);
        let journals = fs::read_dir(&dir)
            .expect("the spool")
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.ends_with(JOURNAL_SUFFIX) || name.ends_with(CLAIM_SUFFIX)
            })
            .count();
        assert_eq!(journals, 0, "the journal is gone once expanded");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_capture_is_read_back_from_its_line() {
        let spool = temp_spool("read-at");
        let mut journal = Journal::new(&spool);
        let first = journal.append(&capture("first")).expect("staged");
        journal.commit().expect("written");
        let mut planted = capture("password=hunter2");
        planted.scrubbed = true;
        let second = journal.append(&planted).expect("staged");
        assert!(journal.read(second).is_none(), "staged, not written yet");
        journal.commit().expect("written");
        let read = journal.read(second).expect("read back");
        assert_eq!(read.message, "password=hunter2");
        assert!(!read.scrubbed, "what is read from disk is scrubbed again");
        assert_eq!(
            journal.read(first).map(|c| c.message).as_deref(),
            Some("first")
        );
        let shifted = Line {
            offset: second.offset + 1,
            ..second
        };
        assert!(journal.read(shifted).is_none(), "not where a line starts");
        let past = Line {
            offset: second.offset + 4096,
            ..second
        };
        assert!(journal.read(past).is_none(), "past the end");
        let _ = fs::remove_dir_all(&spool.dir);
    }

    #[test]
    fn a_live_owners_journal_is_left_alone() {
        let live = temp_spool("live");
        let mut journal = Journal::new(&live);
        journal.append(&capture("mine")).expect("staged");
        journal.commit().expect("written");
        let other = Spool::open(live.dir.clone(), 100, Duration::from_secs(30 * 86_400))
            .expect("a second owner");
        other.adopt_dead_journals();
        assert!(orphans(&other).is_empty());
        assert!(journal.path.exists());
        let _ = fs::remove_dir_all(&live.dir);
    }
}
