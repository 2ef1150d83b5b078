//! The background thread: processes captures into reports, keeps them in a
//! bounded outbox, and delivers them in batches, retrying with exponential
//! back-off and jitter and honouring rate limits, without ever sleeping
//! through a flush or shutdown request.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
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
/// The shortest wait a rate limit imposes, whatever the collector said.
const MIN_RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);
/// Flush requests remembered at most; older ones (long timed out) are let go.
const MAX_WAITERS: usize = 256;
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
        let jitter = (crate::capture::random_u128() % 1000) as f64 / 1000.0;
        exp.mul_f64(0.5 + jitter / 2.0)
    }
}

/// Reports captured but not yet delivered or dropped, by where they are;
/// shared with the client, so a shutdown that stops waiting for a stuck
/// worker can still say what became of them.
#[derive(Debug, Default)]
pub(crate) struct Unsettled {
    in_memory: AtomicU64,
    on_disk: AtomicU64,
}

impl Unsettled {
    fn counter(&self, on_disk: bool) -> &AtomicU64 {
        if on_disk {
            &self.on_disk
        } else {
            &self.in_memory
        }
    }

    pub(crate) fn add(&self, on_disk: bool) {
        self.counter(on_disk).fetch_add(1, Ordering::SeqCst);
    }

    /// Takes one away; `false` when there was none (shutdown already counted it).
    pub(crate) fn release(&self, on_disk: bool) -> bool {
        self.counter(on_disk)
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Counts what is still unsettled: lost if only in memory, in the spool otherwise.
    pub(crate) fn abandon(&self) {
        STATS
            .dropped_shutdown
            .add(self.in_memory.swap(0, Ordering::SeqCst));
        STATS.spooled.add(self.on_disk.swap(0, Ordering::SeqCst));
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
    unsettled: Arc<Unsettled>,
    spool: Option<Arc<Spool>>,
}

impl Worker {
    pub(crate) fn new(
        settings: Arc<Settings>,
        transport: Box<dyn Transport>,
        retry: RetryPolicy,
        abandoned: Arc<AtomicBool>,
        unsettled: Arc<Unsettled>,
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
            unsettled,
            spool,
        }
    }

    /// The worker's loop. The queue's receiving end is shared with the
    /// client behind a mutex that the worker holds only while it reads the
    /// queue, never while it sends: a shutdown that gives up on a worker stuck
    /// in a send can still move what is queued to the spool.
    pub(crate) fn run(mut self, rx: Arc<Mutex<Receiver<Message>>>) {
        // A panic on this thread (a transport's, a before_send's) is caught and
        // counted where it happens; reporting it would feed the worker its own failures.
        let _reentry = crate::capture::Reentry::enter();
        // Gather the machine facts now, off every caller's thread.
        let _ = crate::context::get();
        crate::capture::modules::preload();
        self.replay();
        loop {
            let wait = self.wait_due();
            let deliver_now = wait == Some(Duration::ZERO);
            // With deliveries due and the outbox full, send before taking more.
            if !(deliver_now && self.outbox.len() >= OUTBOX_CAPACITY) {
                let rx = rx.lock().unwrap_or_else(PoisonError::into_inner);
                let first = match wait {
                    None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                    Some(wait) => rx.recv_timeout(wait),
                };
                match first {
                    Ok(message) => {
                        // Take about as much as one delivery sends, so the
                        // outbox drains while captures keep coming.
                        let burst = if deliver_now {
                            self.transport.max_batch().clamp(1, MAX_BATCH)
                        } else {
                            RECEIVE_BURST
                        };
                        if self.handle(message, &rx) {
                            return;
                        }
                        for _ in 1..burst {
                            let Ok(message) = rx.try_recv() else { break };
                            if self.handle(message, &rx) {
                                return;
                            }
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => {
                        drop(rx);
                        self.finish(Instant::now());
                        return;
                    }
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
            } => self.admit_durable(*captured, spool_file),
            Message::Flush(done) => self.wait_for_flush(done),
            Message::Shutdown { done, deadline } => {
                while let Ok(message) = rx.try_recv() {
                    match message {
                        Message::Report(pending) => self.accept(*pending),
                        Message::Durable {
                            captured,
                            spool_file,
                        } => self.admit_durable(*captured, spool_file),
                        Message::Flush(waiter) => self.wait_for_flush(waiter),
                        Message::Shutdown { done, .. } => drop(done),
                    }
                }
                self.finish(deadline);
                let _ = done.try_send(());
                // Captures that slipped in while finishing: counted, not silently dropped.
                while let Ok(message) = rx.try_recv() {
                    match message {
                        Message::Report(_) => self.leave(false, Some(&STATS.dropped_shutdown)),
                        Message::Durable { spool_file, .. } => {
                            self.leave_for_later(spool_file.is_some(), &STATS.dropped_shutdown)
                        }
                        Message::Flush(_) | Message::Shutdown { .. } => {}
                    }
                }
                return true;
            }
        }
        false
    }

    fn wait_for_flush(&mut self, done: SyncSender<()>) {
        if self.waiters.len() >= MAX_WAITERS {
            self.waiters.remove(0);
        }
        self.waiters.push((self.received, done));
    }

    fn accept(&mut self, pending: Pending) {
        self.received += 1;
        self.admit(pending.into_captured(), None);
    }

    /// A panic's capture, already in the spool (in a spare file, when one was ready).
    fn admit_durable(&mut self, captured: Captured, spool_file: Option<PathBuf>) {
        self.received += 1;
        let spool_file = match (&self.spool, spool_file) {
            (Some(spool), Some(path)) => {
                let named = spool.adopt(path, captured.id, captured.timestamp_ms);
                spool.refill_spares();
                Some(named)
            }
            (_, file) => file,
        };
        self.admit(captured, spool_file);
    }

    /// Reports left by earlier or dead processes, oldest first.
    fn replay(&mut self) {
        let Some(spool) = self.spool.clone() else {
            return;
        };
        spool.refill_spares();
        for (path, entry) in spool.claim_orphans() {
            STATS.replayed.inc();
            self.unsettled.add(true);
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
            Ok(None) => {
                self.leave(spool_file.is_some(), None);
                self.discard_file(spool_file);
            }
            // A bug in processing loses this report only, and says so.
            Err(_) => {
                self.leave(spool_file.is_some(), Some(&STATS.dropped_internal));
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
                    Ok(path) => {
                        if self.unsettled.release(false) {
                            self.unsettled.add(true);
                        }
                        Some(path)
                    }
                    Err(_) => {
                        STATS.spool_write_errors.inc();
                        None
                    }
                }
            }
            (_, file) => file,
        };
        if self.outbox.len() >= OUTBOX_CAPACITY {
            self.leave_for_later(spool_file.is_some(), &STATS.dropped_backlog);
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

    /// A report leaves this run, counted under `counter`. Once shutdown has
    /// stopped waiting, the client has counted everything unsettled already.
    fn leave(&self, had_file: bool, counter: Option<&crate::stats::Counter>) {
        // After `abandon` took the count, `release` finds nothing left to take.
        if self.abandoned.load(Ordering::SeqCst) || !self.unsettled.release(had_file) {
            return;
        }
        if let Some(counter) = counter {
            counter.inc();
        }
    }

    /// A report this run gives up on: in the spool for the next run when it
    /// has a file there, else dropped and counted under `reason`.
    fn leave_for_later(&self, has_file: bool, reason: &crate::stats::Counter) {
        self.leave(
            has_file,
            Some(if has_file { &STATS.spooled } else { reason }),
        );
    }

    /// Takes the first `n` reports off the outbox, leaving each for a later
    /// run if it is in the spool, else counting it under `reason`.
    fn give_up(&mut self, n: usize, reason: &crate::stats::Counter) {
        let gone: Vec<Outgoing> = self.outbox.drain(..n).collect();
        for outgoing in gone {
            self.leave_for_later(outgoing.spool_file.is_some(), reason);
        }
    }

    /// Takes the first `n` reports off the outbox for good (delivered, or
    /// refused for good), counting each under `counter` and removing its file.
    fn settle(&mut self, n: usize, counter: &crate::stats::Counter) {
        let gone: Vec<Outgoing> = self.outbox.drain(..n).collect();
        for outgoing in gone {
            self.leave(outgoing.spool_file.is_some(), Some(counter));
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

    /// Sends one batch if a delivery is due. One at a time, so the queue
    /// (new captures, flush and shutdown requests) is read between batches.
    fn pump(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        if self.abandoned.load(Ordering::SeqCst) {
            self.give_up(self.outbox.len(), &STATS.dropped_shutdown);
            return;
        }
        if self.not_before.is_some_and(|t| Instant::now() < t) {
            return;
        }
        self.attempt();
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
        let (n, error) = match result {
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
                self.not_before = Some(crate::client::deadline_after(wait));
            }
            TransportError::Retryable(_) if self.attempts + 1 < self.retry.attempts => {
                self.attempts += 1;
                STATS.retries.inc();
                let delay = self.retry.delay(self.attempts);
                self.not_before = Some(crate::client::deadline_after(delay));
            }
            TransportError::Retryable(_) => {
                self.give_up(n, &STATS.dropped_retries_exhausted);
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
