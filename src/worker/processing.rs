//! The worker's processing: captures taken in (written to the journal
//! first), debug info loaded on a thread of its own, captures turned into
//! reports, aggregated, passed through `before_send` and rate limited, and
//! earlier runs' reports replayed.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::*;

impl Worker {
    /// How long until the debug info held for resolving frames is let go;
    /// `None` when none is held.
    pub(super) fn symbols_release_in(&self) -> Option<Duration> {
        let last = self.processor.last_resolved()?;
        let due = last.checked_add(self.symbols_idle)?;
        Some(due.saturating_duration_since(Instant::now()))
    }

    /// A long-running process reports rarely: between bursts, the tens of
    /// MiB of parsed debug info are not worth keeping.
    pub(super) fn release_symbols_if_idle(&mut self) {
        if self.symbols_release_in() != Some(Duration::ZERO) || !self.unprocessed.is_empty() {
            return;
        }
        self.processor.release_symbols();
        self.symbols = Symbols::Cold;
        #[cfg(test)]
        if let Some(tx) = &self.on_release {
            let _ = tx.try_send(());
        }
    }

    /// Whether captures can be processed now without loading debug info on
    /// this thread; starts loading it when nobody has.
    pub(super) fn symbols_ready(&mut self) -> bool {
        if !self.settings.symbolicate {
            return true;
        }
        match &self.symbols {
            Symbols::Ready => true,
            Symbols::Loading(thread) if thread.is_finished() => {
                self.symbols = Symbols::Ready;
                true
            }
            Symbols::Loading(_) => false,
            Symbols::Cold => {
                let addresses = match self.unprocessed.front() {
                    Some(Work::Capture { captured, .. }) => {
                        crate::pipeline::symbolicate::resolvable(captured)
                            .into_iter()
                            .flatten()
                            .collect()
                    }
                    // The executable's own debug info, which most frames need.
                    _ => vec![Worker::run as *const () as usize],
                };
                let waker = self.waker.clone();
                let loading = std::thread::Builder::new()
                    .name("crashbox-symbols".to_owned())
                    .spawn(move || {
                        let _reentry = crate::reentry::Reentry::enter();
                        for address in addresses {
                            backtrace::resolve(address as *mut std::ffi::c_void, |_| {});
                        }
                        waker.wake();
                    });
                match loading {
                    Ok(thread) => {
                        self.symbols = Symbols::Loading(thread);
                        false
                    }
                    // No thread: load on this one.
                    Err(_) => {
                        self.symbols = Symbols::Ready;
                        true
                    }
                }
            }
        }
    }

    /// Handles one message; `Some` for a shutdown request.
    pub(super) fn handle(&mut self, message: Message) -> Option<Intake> {
        match message {
            Message::Report(pending) => {
                // A repeat in an open window is only counted: no processing.
                // (It is settled when its window closes, as one of the count.)
                if !pending.claimed
                    && pending
                        .raw_key
                        .is_some_and(|key| self.aggregator.fold_raw(key, Instant::now()))
                {
                    // Counted in receipt order all the same.
                    self.next_seq(false);
                    return None;
                }
                let seq = self.next_seq(false);
                let (captured, durable) = self.make_durable(*pending);
                let journaled = match durable {
                    Durable::File(path) => {
                        self.wait_for_processing(seq, captured, Some(path), true);
                        return None;
                    }
                    Durable::Journal(line) => Some(line),
                    Durable::Memory => None,
                };
                // In memory until the journal is committed (see `commit_journal`).
                self.unprocessed.push_back(Work::Capture {
                    seq,
                    captured: Box::new(captured),
                    spool_file: None,
                    journaled,
                    fresh: true,
                });
            }
            Message::Durable {
                captured,
                spool_file,
            } => {
                let spool_file = match (&self.spool, spool_file) {
                    (Some(spool), Some(path)) => {
                        let named = spool.adopt(path, captured.id, captured.timestamp_ms);
                        spool.refill_spares();
                        Some(named)
                    }
                    (_, file) => file,
                };
                let seq = self.next_seq(false);
                self.wait_for_processing(seq, *captured, spool_file, true);
            }
            Message::Flush(done) => self.unprocessed.push_back(Work::Flush(done)),
            Message::Shutdown { done, deadline } => return Some(Intake::Stop { done, deadline }),
            Message::Wake => {}
        }
        None
    }

    /// With a spool, stages a capture for the journal as it is (scrubbed,
    /// its addresses tied to their files), to be written before any
    /// processing (see [`commit_journal`](Self::commit_journal)): from then
    /// on a killed process loses nothing of it. A full journal leaves it to
    /// a spool file of its own.
    pub(super) fn make_durable(&mut self, pending: Pending) -> (Captured, Durable) {
        let (Some(journal), Some(spool)) = (self.journal.as_mut(), &self.spool) else {
            return (pending.into_captured(), Durable::Memory);
        };
        let captured = self.settings.captured_for_spool(pending);
        let durable = match journal.append(&captured) {
            Ok(line) => Durable::Journal(line),
            Err(_) => match spool.write(
                captured.id,
                captured.timestamp_ms,
                EntryRef::Captured(&captured),
            ) {
                Ok(path) => Durable::File(path),
                Err(_) => {
                    STATS.spool_write_errors.inc();
                    return (captured, Durable::Memory);
                }
            },
        };
        // Counted as spooled if shutdown gives up on the worker.
        self.ledger.to_disk();
        (captured, durable)
    }

    /// Writes the captures staged for the journal since `from` (their place
    /// in `unprocessed`) with one system call; of those beyond the ones kept
    /// in memory, only the line is kept. If the journal cannot take them,
    /// each gets a spool file of its own.
    pub(super) fn commit_journal(&mut self, from: usize) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        let committed = journal.commit().is_ok();
        for i in from..self.unprocessed.len() {
            let Some(Work::Capture {
                seq,
                captured,
                spool_file,
                journaled: journaled @ Some(_),
                ..
            }) = self.unprocessed.get_mut(i)
            else {
                continue;
            };
            if committed {
                if let (true, Some(line)) = (i >= self.in_memory, *journaled) {
                    self.unprocessed[i] = Work::Journaled {
                        seq: *seq,
                        line,
                        id: captured.id,
                        raw_key: captured.raw_key,
                        claimed: captured.claimed,
                    };
                }
                continue;
            }
            *journaled = None;
            let written = self.spool.as_ref().map(|spool| {
                spool.write(
                    captured.id,
                    captured.timestamp_ms,
                    EntryRef::Captured(captured),
                )
            });
            match written {
                Some(Ok(path)) => *spool_file = Some(path),
                _ => {
                    STATS.spool_write_errors.inc();
                    self.ledger.to_memory();
                }
            }
        }
    }

    /// Queues a capture for processing (by path only when many wait and it
    /// is in the spool).
    pub(super) fn wait_for_processing(
        &mut self,
        seq: Seq,
        captured: Captured,
        spool_file: Option<PathBuf>,
        fresh: bool,
    ) {
        let work = match spool_file {
            Some(path) if self.unprocessed.len() >= self.in_memory => Work::Spooled {
                seq,
                path,
                raw_key: captured.raw_key,
                claimed: captured.claimed,
                fresh,
            },
            spool_file => Work::Capture {
                seq,
                captured: Box::new(captured),
                spool_file,
                journaled: None,
                fresh,
            },
        };
        self.unprocessed.push_back(work);
    }

    /// Processes what waits, a few at a time, once the debug info is ready.
    pub(super) fn process_some(&mut self) {
        for _ in 0..PROCESS_BURST {
            let ready = match self.unprocessed.front() {
                None => return,
                Some(Work::Flush(_)) => true,
                Some(_) => !self.held_back_by_delivery() && self.symbols_ready(),
            };
            if !ready {
                return;
            }
            if let Some(work) = self.unprocessed.pop_front() {
                self.process(work);
            }
        }
    }

    pub(super) fn process(&mut self, work: Work) {
        match work {
            Work::Flush(done) => {
                // Reports held back for their windows go out now.
                self.aggregator.close_all();
                self.emit_ready();
                if self.waiters.len() >= MAX_WAITERS {
                    self.waiters.pop_front();
                }
                self.waiters.push_back((self.received, done));
            }
            Work::Capture {
                seq,
                captured,
                spool_file,
                journaled,
                fresh,
            } => {
                self.seq = seq;
                let id = captured.id;
                // From here on it is handled as a capture in memory; once
                // shutdown gave up (and counted it as spooled) it is left
                // in the journal for the next run.
                if journaled.is_some() && !self.ledger.to_memory() {
                    return;
                }
                self.admit_journaled(*captured, spool_file, fresh, journaled.map(|_| id));
            }
            Work::Journaled {
                seq,
                line,
                id,
                raw_key,
                claimed,
            } => {
                self.seq = seq;
                if !self.ledger.to_memory() {
                    return;
                }
                let read = self.journal.as_ref().and_then(|j| j.read(line));
                match read {
                    Some(mut captured) => {
                        // This process's own capture: its addresses are live.
                        captured.live = true;
                        captured.raw_key = raw_key;
                        captured.claimed = claimed;
                        self.admit_journaled(captured, None, true, Some(id));
                    }
                    None => {
                        if let (Some(key), true) = (raw_key, claimed) {
                            STATS.dropped_internal.add(self.aggregator.release(key));
                        }
                        self.drop_report(None, &STATS.dropped_internal);
                        self.settle_journal(&[id]);
                    }
                }
            }
            Work::Spooled {
                seq,
                path,
                raw_key,
                claimed,
                fresh,
            } => {
                self.seq = seq;
                let entry = self.spool.as_ref().and_then(|s| s.read_entry(&path));
                match entry {
                    Some(Entry::Captured(mut captured)) => {
                        // This process's own capture: its addresses are live.
                        captured.live = !seq.earlier_run;
                        captured.raw_key = raw_key;
                        captured.claimed = claimed;
                        self.admit(*captured, Some(path), fresh);
                    }
                    _ => {
                        if let (Some(key), true) = (raw_key, claimed) {
                            STATS.dropped_internal.add(self.aggregator.release(key));
                        }
                        self.drop_report(Some(path), &STATS.dropped_internal);
                    }
                }
            }
        }
    }

    /// Claims what earlier or dead processes left in the spool; each is
    /// handled when the worker has nothing of this run's to do.
    pub(super) fn claim_replays(&mut self) {
        let Some(spool) = self.spool.clone() else {
            return;
        };
        spool.refill_spares();
        for (path, entry) in spool.claim_orphans() {
            STATS.replayed.inc();
            if !self.ledger.admit(true) {
                STATS.spooled.inc();
                continue;
            }
            let seq = self.next_seq(true);
            self.replays.push_back((seq, path, entry));
        }
    }

    /// Handles one earlier run's report.
    pub(super) fn replay_one(&mut self) {
        let Some((seq, path, entry)) = self.replays.pop_front() else {
            return;
        };
        match entry {
            // A raw capture (a panic, or a capture the run did not get to
            // process) is aggregated and rate limited like this run's own.
            // One that stands for several (folded by retention) is sent as it
            // is: a window would count it once.
            Entry::Captured(captured) => {
                let fresh = captured.count <= 1;
                self.wait_for_processing(seq, *captured, Some(path), fresh)
            }
            Entry::Report(mut report) => {
                self.processor.recheck(&mut report);
                self.seq = seq;
                self.enqueue(*report, Some(path))
            }
        }
    }

    /// [`admit`](Self::admit)s a capture; one from the journal (`journaled`:
    /// its id) keeps its line there while its report is on its way (see
    /// [`enqueue`](Self::enqueue)), and settles it once the capture went no
    /// further (folded into a window, filtered, dropped) or its report has
    /// a spool file of its own.
    pub(super) fn admit_journaled(
        &mut self,
        captured: Captured,
        spool_file: Option<PathBuf>,
        fresh: bool,
        journaled: Option<ReportId>,
    ) {
        self.journal_line = journaled;
        self.admit(captured, spool_file, fresh);
        if let Some(id) = self.journal_line.take() {
            self.settle_journal(&[id]);
        }
    }

    /// Settles journal lines, unless shutdown gave up on the worker (then
    /// they were counted as spooled, and the next run has them).
    pub(super) fn settle_journal(&mut self, ids: &[ReportId]) {
        if self.ledger.is_closed() {
            return;
        }
        if let Some(journal) = self.journal.as_mut() {
            journal.settle(ids);
        }
    }

    /// Processes a capture and, unless it is a repeat counted in its window,
    /// puts the report in the outbox. `fresh`: not processed before (a
    /// processed report replayed from the spool was aggregated and rate
    /// limited by the run that wrote it).
    pub(super) fn admit(&mut self, captured: Captured, spool_file: Option<PathBuf>, fresh: bool) {
        let (raw_key, claimed) = (captured.raw_key, captured.claimed);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.processor.process(captured)
        }));
        let report = match outcome {
            Ok(report) => report,
            Err(_) => {
                // A bug in processing loses this report only (and the
                // repeats its slot absorbed), and says so.
                if let (Some(key), true) = (raw_key, claimed) {
                    STATS.dropped_internal.add(self.aggregator.release(key));
                }
                self.drop_report(spool_file, &STATS.dropped_internal);
                return;
            }
        };
        if !fresh {
            return self.send(report, spool_file, false, None);
        }
        match self
            .aggregator
            .offer(report, spool_file, raw_key, claimed, Instant::now())
        {
            Offer::Send(report, spool_file, window) => self.send(*report, spool_file, true, window),
            Offer::Folded { discard } => self.held(discard),
        }
        self.emit_ready();
    }

    /// A repeat is held (in the ledger) until its window closes; the window
    /// keeps one repeat's spool file, the others (`discard`) go.
    pub(super) fn held(&mut self, discard: Option<PathBuf>) {
        if let Some(path) = discard {
            if self.ledger.to_memory() {
                self.discard_file(Some(path));
            }
        }
    }

    /// Runs `before_send` and, for a report sent on its own (`rate_limited`:
    /// the first of its aggregation `window` or one of its burst), takes a
    /// token; then queues the report for delivery.
    pub(super) fn send(
        &mut self,
        report: Report,
        spool_file: Option<PathBuf>,
        rate_limited: bool,
        window: Option<WindowRef>,
    ) {
        let Some(report) = self.processor.before_send(report) else {
            return self.drop_report(spool_file, &STATS.filtered);
        };
        let mut spool_file = spool_file;
        if rate_limited && !report.kind.is_fatal() && !self.limiter.allow(Instant::now()) {
            match window {
                Some(WindowRef { key, opened: true }) => {
                    // Its window does not open: repeats counted meanwhile share its fate.
                    STATS.dropped_rate_limited.add(self.aggregator.forget(key));
                }
                Some(WindowRef { key, opened: false }) => {
                    // One of an open window's burst: counted in the report
                    // that closes the window instead.
                    match self.aggregator.hold(key, spool_file) {
                        Ok(discard) => return self.held(discard),
                        Err(file) => spool_file = file,
                    }
                }
                None => {}
            }
            return self.drop_report(spool_file, &STATS.dropped_rate_limited);
        }
        self.enqueue(report, spool_file);
    }

    /// The reports that close aggregation windows, carrying their counts.
    /// Each takes the place of one of its repeats (held in the ledger, or
    /// absorbed in a slot); the others are counted as aggregated.
    pub(super) fn emit_ready(&mut self) {
        for closed in self.aggregator.take_ready() {
            let Closed {
                mut report,
                mut held,
                held_file,
                mut absorbed,
            } = closed;
            // The first report of the window said it already.
            report.extra.remove(crate::spool::DISCARDED_KEY);
            if self.ledger.is_closed() {
                // Shutdown gave up on us: it counted the repeats held (and
                // kept the spool file); those only in slots are lost.
                STATS.dropped_shutdown.add(absorbed);
                continue;
            }
            if let Some(path) = held_file {
                if held == 0 {
                    // The only repeat with a ledger entry is on disk: the
                    // report takes its place, in memory until it is spooled.
                    if !self.ledger.to_memory() {
                        STATS.dropped_shutdown.add(absorbed);
                        continue;
                    }
                    held = 1;
                } else {
                    self.ledger.settle(true, Some(&STATS.aggregated));
                }
                self.discard_file(Some(path));
            }
            if held > 0 {
                held -= 1;
            } else if self.ledger.admit(false) {
                absorbed -= 1;
            } else {
                // Shutdown is over: this window's repeats are lost with it.
                STATS.dropped_shutdown.add(absorbed);
                continue;
            }
            self.ledger.settle_many(false, held, &STATS.aggregated);
            STATS.aggregated.add(absorbed);
            self.seq = self.next_seq(false);
            self.send(report, None, false, None);
        }
    }
}
