//! The worker's delivery: the outbox and its spooled overflow, batches
//! handed to the courier, what becomes of them (sent, retried, rate limited,
//! refused), and what shutdown delivers by its deadline.
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::*;

impl Worker {
    /// Settles a report that goes no further under `counter`.
    pub(super) fn drop_report(&mut self, spool_file: Option<PathBuf>, counter: &Counter) {
        self.ledger.settle(spool_file.is_some(), Some(counter));
        self.discard_file(spool_file);
    }

    /// Makes the report durable (when a spool is in use) and queues it for delivery.
    pub(super) fn enqueue(&mut self, mut report: Report, spool_file: Option<PathBuf>) {
        // Reports the spool's retention deleted with nothing left to say so:
        // the next report says it.
        if let Some(spool) = &self.spool {
            let discarded = spool.take_discarded();
            if discarded > 0 {
                let carried = report
                    .extra
                    .get(crate::spool::DISCARDED_KEY)
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
                report.extra.insert(
                    crate::spool::DISCARDED_KEY.to_owned(),
                    (carried + discarded).into(),
                );
            }
        }
        let room = self.outbox.len() < OUTBOX_CAPACITY && self.overflow.is_empty();
        // A report whose capture is in the journal needs no file of its own
        // while it waits in the outbox: the line stays until it is delivered.
        let mut journal_line = self.journal_line.take();
        let spool_file = match (&self.spool, spool_file) {
            (Some(_), None) if room && journal_line.is_some() => {
                self.ledger.to_disk();
                None
            }
            (Some(_), None) => match self.spool_report(&report) {
                Some(path) => {
                    self.ledger.to_disk();
                    if let Some(id) = journal_line.take() {
                        self.settle_journal(&[id]);
                    }
                    Some(path)
                }
                None => {
                    if journal_line.is_some() {
                        // The journal still has it.
                        self.ledger.to_disk();
                    }
                    None
                }
            },
            (_, file) => file,
        };
        if room {
            self.outbox.push_back(Outgoing {
                seq: self.seq,
                report: Some(report),
                spool_file,
                journal_line,
            });
            return;
        }
        match spool_file {
            Some(path) if self.overflow.len() < MAX_OVERFLOW => {
                self.overflow.push_back((self.seq, path));
            }
            Some(_) => self.ledger.settle(true, Some(&STATS.spooled)),
            // Left in the journal for the next run.
            None if journal_line.is_some() => self.ledger.settle(true, Some(&STATS.spooled)),
            None => self.ledger.settle(false, Some(&STATS.dropped_backlog)),
        }
    }

    /// Moves spooled reports from the overflow into the outbox while it has room.
    pub(super) fn refill(&mut self) {
        let Some(spool) = self.spool.clone() else {
            return;
        };
        while self.outbox.len() < OUTBOX_CAPACITY {
            let Some((seq, path)) = self.overflow.pop_front() else {
                return;
            };
            // A panic's file holds its raw capture: process it again.
            let report = match spool.read_entry(&path) {
                Some(Entry::Report(mut report)) => {
                    self.processor.recheck(&mut report);
                    Ok(Some(*report))
                }
                Some(Entry::Captured(captured)) => {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let report = self.processor.process(*captured);
                        self.processor.before_send(report)
                    }))
                }
                None => Err(Box::new(()) as Box<dyn std::any::Any + Send>),
            };
            match report {
                Ok(Some(report)) => self.outbox.push_back(Outgoing {
                    seq,
                    report: Some(report),
                    spool_file: Some(path),
                    journal_line: None,
                }),
                Ok(None) => {
                    self.ledger.settle(true, Some(&STATS.filtered));
                    spool.remove(&path);
                }
                Err(_) => {
                    self.ledger.settle(true, Some(&STATS.dropped_internal));
                    spool.remove(&path);
                }
            }
        }
    }

    pub(super) fn discard_file(&self, spool_file: Option<PathBuf>) {
        if self.ledger.is_closed() {
            // Shutdown gave up on us and counted the file as spooled: keep it.
            return;
        }
        if let (Some(spool), Some(path)) = (&self.spool, spool_file) {
            spool.remove(&path);
        }
    }

    /// Takes the first `n` reports off the outbox for now: each on disk stays
    /// there for a later run, each in memory only is counted under `reason`.
    /// Before shutdown (`exiting` false), a report kept by its journal line
    /// is written to a spool file of its own, so the journal can be emptied.
    pub(super) fn give_up(&mut self, n: usize, reason: &Counter, exiting: bool) {
        let gone: Vec<Outgoing> = self.outbox.drain(..n).collect();
        for mut outgoing in gone {
            if !exiting {
                self.spool_instead_of_journal(&mut outgoing);
            }
            let on_disk = outgoing.on_disk();
            let counter = if on_disk { &STATS.spooled } else { reason };
            self.ledger.settle(on_disk, Some(counter));
        }
        self.refill();
    }

    /// Writes a report kept by its journal line to a spool file of its own
    /// and settles the line (left as it is if the file cannot be written).
    fn spool_instead_of_journal(&mut self, outgoing: &mut Outgoing) {
        let (Some(id), Some(report)) = (outgoing.journal_line, &outgoing.report) else {
            return;
        };
        if let Some(path) = self.spool_report(report) {
            outgoing.spool_file = Some(path);
            outgoing.journal_line = None;
            self.settle_journal(&[id]);
        }
    }

    /// Writes `report` to a spool file of its own (a failure is counted).
    fn spool_report(&self, report: &Report) -> Option<PathBuf> {
        let spool = self.spool.as_ref()?;
        let timestamp_ms = crate::time::parse_rfc3339_millis(&report.timestamp)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        match spool.write(report.id, timestamp_ms, EntryRef::Report(report)) {
            Ok(path) => Some(path),
            Err(_) => {
                STATS.spool_write_errors.inc();
                None
            }
        }
    }

    /// Takes the first `n` reports off the outbox for good (delivered, or
    /// refused for good), counting each under `counter` and removing its
    /// file or settling its journal line.
    pub(super) fn settle(&mut self, n: usize, counter: &Counter) {
        let gone: Vec<Outgoing> = self.outbox.drain(..n).collect();
        let mut lines = Vec::new();
        for outgoing in gone {
            self.ledger.settle(outgoing.on_disk(), Some(counter));
            lines.extend(outgoing.journal_line);
            self.discard_file(outgoing.spool_file);
        }
        self.settle_journal(&lines);
        self.refill();
    }

    /// Hands the batch at the front of the outbox to the transport's thread
    /// when a delivery is due and none is on its way. With `linger`, a batch
    /// that is not full waits up to [`BATCH_LINGER`] for more reports, unless
    /// a flush waits for it.
    pub(super) fn pump(&mut self, linger: bool) {
        if self.outbox.is_empty() {
            self.lingering = None;
            return;
        }
        if self.courier.in_flight().is_some() || self.not_before.is_some_and(|t| Instant::now() < t)
        {
            return;
        }
        let n = self.courier.max_batch().min(self.outbox.len());
        if linger && n < self.courier.max_batch() && self.waiters.is_empty() {
            let since = *self.lingering.get_or_insert_with(Instant::now);
            if since.elapsed() < BATCH_LINGER {
                return;
            }
        }
        self.lingering = None;
        // Moved, not copied: the courier hands the batch back with its outcome.
        let batch: Vec<Report> = self
            .outbox
            .iter_mut()
            .take(n)
            .filter_map(|o| o.report.take())
            .collect();
        if let Err(batch) = self.courier.dispatch(batch) {
            let gone = TransportError::Permanent("the transport's thread ended".into());
            self.on_outcome(n, batch, Err(gone));
        }
    }

    /// Takes the outcome of the batch on its way, waiting up to `wait` for it.
    pub(super) fn collect(&mut self, wait: Duration) {
        if let Some((n, batch, outcome)) = self.courier.outcome(wait) {
            self.on_outcome(n, batch, outcome);
        }
    }

    /// Settles the first `n` reports of the outbox (the `batch` that was
    /// sent, back from the courier) by what became of them.
    pub(super) fn on_outcome(&mut self, n: usize, batch: Vec<Report>, outcome: Outcome) {
        let n = n.min(self.outbox.len());
        for (outgoing, report) in self.outbox.iter_mut().zip(batch) {
            outgoing.report = Some(report);
        }
        let (n, error) = match outcome {
            Ok(()) => {
                self.settle(n, &STATS.sent);
                self.attempts = 0;
                self.not_before = None;
                return;
            }
            Err(TransportError::Partial {
                delivered,
                failed,
                cause,
            }) => {
                // Count what the collector has; `cause` applies to the failed part.
                let delivered = delivered.min(n);
                self.settle(delivered, &STATS.sent);
                if delivered > 0 {
                    self.attempts = 0;
                }
                let rest = n - delivered;
                let failed = if failed == 0 { rest } else { failed.min(rest) };
                (failed, *cause)
            }
            Err(error) => (n, error),
        };
        match error {
            TransportError::RateLimited { retry_after, .. } => {
                STATS.rate_limited.inc();
                // A zero or past wait must not turn into a busy loop against the collector.
                let wait = retry_after.max(MIN_RATE_LIMIT_WAIT);
                self.not_before = Some(crate::deadline::deadline_after(wait));
            }
            TransportError::Retryable(_) if self.attempts + 1 < self.retry.attempts => {
                self.attempts += 1;
                STATS.retries.inc();
                let delay = self.retry.delay(self.attempts);
                self.not_before = Some(crate::deadline::deadline_after(delay));
            }
            TransportError::Retryable(_) => {
                self.give_up(n, &STATS.dropped_retries_exhausted, false);
                self.attempts = 0;
                self.not_before = None;
            }
            TransportError::Permanent(_) | TransportError::Partial { .. } => {
                // Refused for good; whatever follows is offered again at once.
                self.settle(n, &STATS.dropped_rejected);
                self.attempts = 0;
                self.not_before = None;
            }
        }
    }

    /// Delivers this run's reports until `deadline`; the rest stays in the
    /// spool (or, without one, is counted as dropped at shutdown). Earlier
    /// runs' reports are left in the spool at once, and a batch that failed
    /// is not tried again: the spool keeps it for the next run.
    pub(super) fn finish(&mut self, deadline: Instant) {
        // Earlier runs' reports not handled yet stay where they are.
        for _ in std::mem::take(&mut self.replays) {
            self.ledger.settle(true, Some(&STATS.spooled));
        }
        // This run's captures are resolved if the debug info is ready by
        // half the time left, else sent with their addresses only.
        if self
            .unprocessed
            .iter()
            .any(|w| !matches!(w, Work::Flush(_)))
        {
            let halfway = Instant::now() + deadline.saturating_duration_since(Instant::now()) / 2;
            while !self.symbols_ready() && Instant::now() < halfway {
                std::thread::sleep(Duration::from_millis(2));
            }
            let resolve = self.symbols_ready();
            self.processor.set_resolving(resolve);
        }
        while let Some(work) = self.unprocessed.pop_front() {
            if self.ledger.is_closed() {
                return;
            }
            if Instant::now() >= deadline {
                // Out of time: what is on disk stays there for the next run.
                self.leave(work);
                continue;
            }
            match work {
                Work::Capture {
                    seq, spool_file, ..
                } if seq.earlier_run => self
                    .ledger
                    .settle(spool_file.is_some(), Some(&STATS.spooled)),
                Work::Spooled { seq, .. } if seq.earlier_run => {
                    self.ledger.settle(true, Some(&STATS.spooled))
                }
                work => self.process(work),
            }
        }
        self.processor.set_resolving(true);
        self.aggregator.close_all();
        self.emit_ready();
        self.set_aside_earlier_runs();
        loop {
            self.collect(Duration::ZERO);
            self.answer_waiters();
            let own_pending = self.outbox.iter().any(|o| !o.seq.earlier_run);
            if !own_pending || self.ledger.is_closed() || Instant::now() >= deadline {
                break;
            }
            if self.courier.in_flight().is_some() {
                self.collect(deadline.saturating_duration_since(Instant::now()));
                continue;
            }
            if self.not_before.is_some_and(|t| Instant::now() < t) {
                break;
            }
            self.pump(false);
        }
        for _ in std::mem::take(&mut self.overflow) {
            self.ledger.settle(true, Some(&STATS.spooled));
        }
        self.give_up(self.outbox.len(), &STATS.dropped_shutdown, true);
        self.answer_waiters();
    }

    /// Leaves a capture not processed by shutdown's deadline where it is:
    /// in the spool or the journal (counted as spooled), else lost.
    pub(super) fn leave(&mut self, work: Work) {
        let on_disk = match work {
            Work::Capture {
                spool_file,
                journaled,
                ..
            } => spool_file.is_some() || journaled.is_some(),
            Work::Journaled { .. } | Work::Spooled { .. } => true,
            Work::Flush(_) => return,
        };
        let counter = if on_disk {
            &STATS.spooled
        } else {
            &STATS.dropped_shutdown
        };
        self.ledger.settle(on_disk, Some(counter));
    }

    /// Leaves earlier runs' reports that are not on their way in the spool
    /// for the next run.
    pub(super) fn set_aside_earlier_runs(&mut self) {
        let sending = self.courier.in_flight().unwrap_or(0).min(self.outbox.len());
        let mut kept = self.outbox.split_off(sending);
        kept.retain(|o| {
            if o.seq.earlier_run {
                self.ledger.settle(o.on_disk(), Some(&STATS.spooled));
                false
            } else {
                true
            }
        });
        self.outbox.append(&mut kept);
        let ledger = &self.ledger;
        self.overflow.retain(|(seq, _)| {
            let earlier = seq.earlier_run;
            if earlier {
                ledger.settle(true, Some(&STATS.spooled));
            }
            !earlier
        });
    }
}
