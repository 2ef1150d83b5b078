//! The background thread: processes captures into reports, keeps them in a
//! bounded outbox, and delivers them in batches, retrying with exponential
//! back-off and jitter and honouring rate limits, without ever sleeping
//! through a flush or shutdown request.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::path::PathBuf;

use crate::capture::{Captured, Pending};
use crate::pipeline::{Processor, Settings};
use crate::report::Report;
use crate::spool::{Entry, EntryRef, Spool};
use crate::stats::STATS;
use crate::transport::{Transport, TransportError};

/// Reports handed to a transport in one call, at most (transports may ask for fewer).
pub const MAX_BATCH: usize = 64;
/// Processed reports waiting for delivery, at most; beyond it new reports are
/// dropped and counted in [`Stats::dropped_backlog`](crate::Stats::dropped_backlog).
pub const OUTBOX_CAPACITY: usize = 1024;
/// Messages taken from the queue between two delivery attempts.
const RECEIVE_BURST: usize = 256;

/// When to try a failed batch again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RetryPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub attempts: u32,
}

impl RetryPolicy {
    /// Exponential back-off with jitter: after attempt `n` (1-based), wait a
    /// random time between half and all of `initial * 2^(n-1)`, capped at `max`.
    fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .initial
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max);
        let jitter = (crate::capture::random_u128() % 1000) as u32;
        exp / 2 + exp / 2 * jitter / 1000
    }
}

pub(crate) enum Message {
    Report(Box<Pending>),
    /// A capture already in the spool (a panic's, written by the hook).
    Durable {
        captured: Box<Captured>,
        spool_file: Option<PathBuf>,
    },
    /// Answer once everything queued before this is delivered or dropped.
    Flush(SyncSender<()>),
    /// Deliver what can be delivered by the deadline, count the rest, answer, stop.
    Shutdown {
        done: SyncSender<()>,
        deadline: Instant,
    },
}

struct Outgoing {
    seq: u64,
    report: Report,
    /// The report's spool file, removed once the collector has it.
    spool_file: Option<PathBuf>,
}

pub(crate) struct Worker {
    processor: Processor,
    transport: Box<dyn Transport>,
    retry: RetryPolicy,
    outbox: VecDeque<Outgoing>,
    /// Reports received so far (each gets the next sequence number).
    received: u64,
    /// Flush requests waiting for everything up to their sequence number.
    waiters: Vec<(u64, SyncSender<()>)>,
    /// Failed attempts of the batch at the front of the outbox.
    attempts: u32,
    /// No delivery before this instant (back-off or rate limit).
    not_before: Option<Instant>,
    abandoned: Arc<AtomicBool>,
    spool: Option<Arc<Spool>>,
}

impl Worker {
    pub(crate) fn new(
        settings: Arc<Settings>,
        transport: Box<dyn Transport>,
        retry: RetryPolicy,
        abandoned: Arc<AtomicBool>,
        spool: Option<Arc<Spool>>,
    ) -> Self {
        Worker {
            processor: Processor::new(settings),
            transport,
            retry,
            outbox: VecDeque::new(),
            received: 0,
            waiters: Vec::new(),
            attempts: 0,
            not_before: None,
            abandoned,
            spool,
        }
    }

    pub(crate) fn run(mut self, rx: Receiver<Message>) {
        // A panic on this thread (a transport's, a before_send's) is caught and
        // counted where it happens; reporting it would feed the worker its own failures.
        let _reentry = crate::capture::Reentry::enter();
        // Gather the machine facts now, off every caller's thread.
        let _ = crate::context::get();
        crate::capture::modules::preload();
        self.replay();
        loop {
            let first = match self.wait_due() {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(wait) => rx.recv_timeout(wait),
            };
            match first {
                Ok(message) => {
                    if self.handle(message, &rx) {
                        return;
                    }
                    for _ in 1..RECEIVE_BURST {
                        let Ok(message) = rx.try_recv() else { break };
                        if self.handle(message, &rx) {
                            return;
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    let deadline = Instant::now();
                    self.finish(deadline);
                    return;
                }
            }
            self.pump();
            self.answer_waiters();
        }
    }

    /// How long until a delivery is due; `None` when nothing waits for delivery.
    fn wait_due(&self) -> Option<Duration> {
        if self.outbox.is_empty() {
            return None;
        }
        Some(
            self.not_before
                .map(|t| t.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::ZERO),
        )
    }

    /// Handles one message; `true` when the worker must stop.
    fn handle(&mut self, message: Message, rx: &Receiver<Message>) -> bool {
        match message {
            Message::Report(pending) => self.accept(*pending),
            Message::Durable {
                captured,
                spool_file,
            } => {
                self.received += 1;
                self.admit(*captured, spool_file);
            }
            Message::Flush(done) => self.waiters.push((self.received, done)),
            Message::Shutdown { done, deadline } => {
                while let Ok(message) = rx.try_recv() {
                    match message {
                        Message::Report(pending) => self.accept(*pending),
                        Message::Durable {
                            captured,
                            spool_file,
                        } => {
                            self.received += 1;
                            self.admit(*captured, spool_file);
                        }
                        Message::Flush(waiter) => self.waiters.push((self.received, waiter)),
                        Message::Shutdown { done, .. } => drop(done),
                    }
                }
                self.finish(deadline);
                let _ = done.try_send(());
                return true;
            }
        }
        false
    }

    fn accept(&mut self, pending: Pending) {
        self.received += 1;
        self.admit(pending.into_captured(), None);
    }

    /// Reports left by earlier or dead processes, oldest first.
    fn replay(&mut self) {
        let Some(spool) = self.spool.clone() else {
            return;
        };
        for (path, entry) in spool.claim_orphans() {
            STATS.replayed.inc();
            self.received += 1;
            match entry {
                Entry::Captured(captured) => self.admit(*captured, Some(path)),
                Entry::Report(report) => self.enqueue(*report, Some(path)),
            }
        }
    }

    /// Processes a capture and puts the report in the outbox.
    fn admit(&mut self, captured: Captured, spool_file: Option<PathBuf>) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.processor.process(captured)
        }));
        match outcome {
            Ok(Some(report)) => self.enqueue(report, spool_file),
            Ok(None) => self.discard_file(spool_file),
            // A bug in processing loses this report only, and says so.
            Err(_) => {
                STATS.dropped_internal.inc();
                self.discard_file(spool_file);
            }
        }
    }

    /// Makes the report durable (when a spool is in use) and queues it for delivery.
    fn enqueue(&mut self, report: Report, spool_file: Option<PathBuf>) {
        let spool_file = match (&self.spool, spool_file) {
            (Some(spool), None) => {
                let timestamp_ms = crate::time::parse_rfc3339_millis(&report.timestamp)
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                match spool.write(report.id, timestamp_ms, EntryRef::Report(&report)) {
                    Ok(path) => Some(path),
                    Err(_) => {
                        STATS.spool_write_errors.inc();
                        None
                    }
                }
            }
            (_, file) => file,
        };
        if self.outbox.len() >= OUTBOX_CAPACITY {
            self.leave_for_later(spool_file, 1, &STATS.dropped_backlog);
            return;
        }
        self.outbox.push_back(Outgoing {
            seq: self.received,
            report,
            spool_file,
        });
    }

    fn discard_file(&self, spool_file: Option<PathBuf>) {
        if let (Some(spool), Some(path)) = (&self.spool, spool_file) {
            spool.remove(&path);
        }
    }

    /// A report this run gives up on: in the spool for the next run when it
    /// has a file there, else dropped and counted under `reason`.
    fn leave_for_later(
        &self,
        spool_file: Option<PathBuf>,
        count: u64,
        reason: &crate::stats::Counter,
    ) {
        if spool_file.is_some() {
            STATS.spooled.add(count);
        } else {
            reason.add(count);
        }
    }

    /// Takes the first `n` reports off the outbox, leaving each for a later
    /// run if it is in the spool, else counting it under `reason`.
    fn give_up(&mut self, n: usize, reason: &crate::stats::Counter) {
        let gone: Vec<Outgoing> = self.outbox.drain(..n).collect();
        for outgoing in gone {
            self.leave_for_later(outgoing.spool_file, 1, reason);
        }
    }

    /// Takes the first `n` reports off the outbox for good, removing their files.
    fn settle(&mut self, n: usize) {
        let gone: Vec<Outgoing> = self.outbox.drain(..n).collect();
        for outgoing in gone {
            self.discard_file(outgoing.spool_file);
        }
    }

    /// Everything received up to here is delivered or dropped.
    fn settled(&self) -> u64 {
        self.outbox
            .front()
            .map(|o| o.seq - 1)
            .unwrap_or(self.received)
    }

    fn answer_waiters(&mut self) {
        let settled = self.settled();
        self.waiters.retain(|(seq, done)| {
            if *seq <= settled {
                let _ = done.try_send(());
                false
            } else {
                true
            }
        });
    }

    /// Sends batches while deliveries are due.
    fn pump(&mut self) {
        while !self.outbox.is_empty() {
            if self.abandoned.load(Ordering::SeqCst) {
                self.give_up(self.outbox.len(), &STATS.dropped_shutdown);
                return;
            }
            if self.not_before.is_some_and(|t| Instant::now() < t) {
                return;
            }
            self.attempt();
        }
    }

    /// One delivery attempt of the batch at the front of the outbox.
    fn attempt(&mut self) {
        let n = self
            .transport
            .max_batch()
            .clamp(1, MAX_BATCH)
            .min(self.outbox.len());
        let batch: Vec<Report> = self
            .outbox
            .iter()
            .take(n)
            .map(|o| o.report.clone())
            .collect();
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.transport.send(&batch)))
                .unwrap_or_else(|_| {
                    Err(TransportError::Permanent("the transport panicked".into()))
                });
        let count = n as u64;
        match result {
            Ok(()) => {
                STATS.sent.add(count);
                self.settle(n);
                self.attempts = 0;
                self.not_before = None;
            }
            Err(TransportError::RateLimited { retry_after, .. }) => {
                STATS.rate_limited.inc();
                self.not_before = Some(Instant::now() + retry_after);
            }
            Err(TransportError::Retryable(_)) if self.attempts + 1 < self.retry.attempts => {
                self.attempts += 1;
                STATS.retries.inc();
                self.not_before = Some(Instant::now() + self.retry.delay(self.attempts));
            }
            Err(TransportError::Retryable(_)) => {
                self.give_up(n, &STATS.dropped_retries_exhausted);
                self.attempts = 0;
                self.not_before = None;
            }
            Err(TransportError::Permanent(_)) => {
                STATS.dropped_rejected.add(count);
                self.settle(n);
                self.attempts = 0;
                self.not_before = None;
            }
        }
    }

    /// Delivers what it can until `deadline`, then counts the rest as dropped.
    fn finish(&mut self, deadline: Instant) {
        loop {
            self.pump();
            self.answer_waiters();
            if self.outbox.is_empty() {
                return;
            }
            let due = self.not_before.unwrap_or_else(Instant::now);
            if due >= deadline {
                break;
            }
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        self.give_up(self.outbox.len(), &STATS.dropped_shutdown);
        self.answer_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_stays_capped() {
        let policy = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            attempts: 10,
        };
        for attempt in 1..=10 {
            let d = policy.delay(attempt);
            let full =
                Duration::from_millis(100 * (1 << (attempt - 1))).min(Duration::from_secs(1));
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
    }
}
