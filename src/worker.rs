//! The background thread: processes captures into reports, keeps them in a
//! bounded outbox, and delivers them in batches, retrying with exponential
//! back-off and jitter and honouring rate limits, without ever sleeping
//! through a flush or shutdown request.
use std::cell::Cell;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::capture::{Captured, Pending};
use crate::pipeline::aggregate::{Aggregator, Closed, Offer, RateLimiter, Slots, Window};
use crate::pipeline::{Processor, Settings};
use crate::report::{Kind, Report};
use crate::spool::{Entry, EntryRef, Spool};
use crate::stats::{Counter, STATS};
use crate::transport::{Transport, TransportError};

/// Reports handed to a transport in one call, at most (transports may ask for fewer).
pub const MAX_BATCH: usize = 64;
/// Processed reports held in memory for delivery, at most. Beyond it, a
/// report in the spool waits there for its turn (up to [`MAX_OVERFLOW`] of
/// them, then for the next run), and one without a spool is dropped and
/// counted in [`Stats::dropped_backlog`](crate::Stats::dropped_backlog).
pub const OUTBOX_CAPACITY: usize = 1024;
/// Spooled reports this run still means to deliver once the outbox has room.
pub const MAX_OVERFLOW: usize = 100_000;
/// The shortest wait a rate limit imposes, whatever the collector said.
const MIN_RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);
/// Flush requests remembered at most; older ones (long timed out) are let go.
const MAX_WAITERS: usize = 256;
thread_local! {
    static ON_WORKER: Cell<bool> = const { Cell::new(false) };
}

/// The queue's receiving end, and the messages the worker took off it but
/// has not handled yet. Shared with the client: shutdown moves both to the
/// spool when the worker is stuck.
pub(crate) struct Inbox {
    pub rx: Receiver<Message>,
    pub taken: VecDeque<Message>,
}

impl Inbox {
    pub(crate) fn new(rx: Receiver<Message>) -> Arc<Mutex<Inbox>> {
        Arc::new(Mutex::new(Inbox {
            rx,
            taken: VecDeque::new(),
        }))
    }

    /// The next message to handle, in queue order.
    pub(crate) fn try_next(&mut self) -> Option<Message> {
        self.taken.pop_front().or_else(|| self.rx.try_recv().ok())
    }
}

/// Takes messages off the queue into `inbox.taken`: the first (unless
/// `first` is given) waiting up to `wait` (for ever when `None`), then up to
/// `burst` in all without waiting; a shutdown request also takes everything
/// behind it. `false`: the client is gone.
fn receive(
    inbox: &Mutex<Inbox>,
    first: Option<Message>,
    wait: Option<Duration>,
    burst: usize,
) -> bool {
    let mut inbox = inbox.lock().unwrap_or_else(PoisonError::into_inner);
    if !inbox.taken.is_empty() {
        return true;
    }
    let first = match (first, wait) {
        (Some(message), _) => Ok(message),
        (None, None) => inbox.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        (None, Some(wait)) => inbox.rx.recv_timeout(wait),
    };
    let first = match first {
        Ok(message) => message,
        Err(RecvTimeoutError::Timeout) => return true,
        Err(RecvTimeoutError::Disconnected) => return false,
    };
    let mut stopping = matches!(first, Message::Shutdown { .. });
    inbox.taken.push_back(first);
    while stopping || inbox.taken.len() < burst {
        let Ok(message) = inbox.rx.try_recv() else {
            break;
        };
        stopping |= matches!(message, Message::Shutdown { .. });
        inbox.taken.push_back(message);
    }
    true
}

/// How long the worker waits before its start-up work.
const STARTUP_DELAY: Duration = Duration::from_millis(2);
/// Messages taken from the queue between two delivery attempts.
const RECEIVE_BURST: usize = 256;
/// The debug info loaded to resolve frames is let go once no capture was
/// processed for this long (see `Options::symbolicate`).
pub(crate) const SYMBOLS_IDLE_RELEASE: Duration = Duration::from_secs(10);

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

/// What became of every report the client handed over is counted exactly
/// once: while a report is on its way it is held here (in memory, or in the
/// spool), and it leaves with one counter of [`Stats`](crate::Stats). When
/// shutdown closes the ledger, whatever it still holds is counted at once
/// (lost if only in memory, kept if in the spool) and nothing more comes in.
///
/// One atomic word holds it all (reports in memory in the low 31 bits, in
/// the spool in the next 31, and the closed flag on top), so the caller's
/// thread takes a report in with one compare-and-swap and no lock.
#[derive(Debug, Default)]
pub(crate) struct Ledger(AtomicU64);

const IN_MEMORY: u64 = 1;
const ON_DISK: u64 = 1 << 32;
const COUNT_MASK: u64 = (1 << 31) - 1;
const CLOSED: u64 = 1 << 63;

fn unit(on_disk: bool) -> u64 {
    if on_disk {
        ON_DISK
    } else {
        IN_MEMORY
    }
}

fn held(state: u64, on_disk: bool) -> u64 {
    if on_disk {
        (state >> 32) & COUNT_MASK
    } else {
        state & COUNT_MASK
    }
}

impl Ledger {
    fn update(&self, f: impl FnMut(u64) -> Option<u64>) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, f)
            .is_ok()
    }

    /// Takes a report in; `false` once closed (the caller counts its fate).
    pub(crate) fn admit(&self, on_disk: bool) -> bool {
        self.update(|s| {
            (s & CLOSED == 0 && held(s, on_disk) < COUNT_MASK).then(|| s + unit(on_disk))
        })
    }

    /// Lets a report go under `counter`; nothing happens once closed (it was counted then).
    pub(crate) fn settle(&self, on_disk: bool, counter: Option<&Counter>) {
        let taken = self.update(|s| (held(s, on_disk) > 0).then(|| s - unit(on_disk)));
        if let (true, Some(counter)) = (taken, counter) {
            counter.inc();
        }
    }

    /// A report held in memory was written to the spool.
    fn to_disk(&self) {
        self.update(|s| (held(s, false) > 0).then(|| s - IN_MEMORY + ON_DISK));
    }

    /// A report held in the spool is to be held in memory only (its file
    /// removed); `false` once closed (the file was counted as spooled: keep it).
    fn to_memory(&self) -> bool {
        self.update(|s| (held(s, true) > 0).then(|| s - ON_DISK + IN_MEMORY))
    }

    /// Lets up to `n` reports go under `counter` at once.
    fn settle_many(&self, on_disk: bool, n: u64, counter: &Counter) {
        if n == 0 {
            return;
        }
        let mut taken = 0;
        let _ = self.update(|s| {
            taken = n.min(held(s, on_disk));
            (taken > 0).then(|| s - taken * unit(on_disk))
        });
        counter.add(taken);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.0.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Counts what is still held (dropped if in memory, spooled if on disk)
    /// and takes nothing more.
    pub(crate) fn close(&self) {
        let state = self.0.swap(CLOSED, Ordering::AcqRel);
        if state & CLOSED == 0 {
            STATS.dropped_shutdown.add(held(state, false));
            STATS.spooled.add(held(state, true));
        }
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
    /// Deliver what can be delivered by the deadline, leave the rest, answer, stop.
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

/// What the loop does after a message.
enum Step {
    Continue,
    Stop {
        done: SyncSender<()>,
        deadline: Instant,
    },
}

pub(crate) struct Worker {
    processor: Processor,
    transport: Box<dyn Transport>,
    retry: RetryPolicy,
    outbox: VecDeque<Outgoing>,
    /// Spooled reports (sequence number, file) waiting for room in the outbox.
    overflow: VecDeque<(u64, PathBuf)>,
    /// Reports received so far (each gets the next sequence number).
    received: u64,
    /// Flush requests waiting for everything up to their sequence number.
    waiters: VecDeque<(u64, SyncSender<()>)>,
    /// Failed attempts of the batch at the front of the outbox.
    attempts: u32,
    /// No delivery before this instant (back-off or rate limit).
    not_before: Option<Instant>,
    ledger: Arc<Ledger>,
    spool: Option<Arc<Spool>>,
    aggregator: Aggregator,
    limiter: RateLimiter,
    /// How long without processing before debug info is let go.
    symbols_idle: Duration,
    /// Told each time debug info is let go.
    #[cfg(test)]
    on_release: Option<SyncSender<()>>,
}

impl Worker {
    pub(crate) fn new(
        settings: Arc<Settings>,
        transport: Box<dyn Transport>,
        retry: RetryPolicy,
        ledger: Arc<Ledger>,
        spool: Option<Arc<Spool>>,
        slots: Arc<Slots>,
    ) -> Self {
        Worker {
            aggregator: Aggregator::new(
                settings.aggregation_window,
                settings.aggregation_burst,
                slots,
            ),
            limiter: RateLimiter::new(settings.max_reports_per_minute),
            processor: Processor::new(settings),
            transport,
            retry,
            outbox: VecDeque::new(),
            overflow: VecDeque::new(),
            received: 0,
            waiters: VecDeque::new(),
            attempts: 0,
            not_before: None,
            ledger,
            spool,
            symbols_idle: SYMBOLS_IDLE_RELEASE,
            #[cfg(test)]
            on_release: None,
        }
    }

    /// The worker's loop. The queue's receiving end is shared with the
    /// client (see [`Inbox`]) behind a mutex that the worker holds while it
    /// takes messages in, never while it handles or sends them: a shutdown
    /// that gives up on a stuck worker can still move what is queued to the
    /// spool.
    pub(crate) fn run(mut self, inbox: Arc<Mutex<Inbox>>) {
        // A panic on this thread (a transport's, a before_send's) is caught and
        // counted where it happens; reporting it would feed the worker its own failures.
        let _reentry = crate::capture::Reentry::enter();
        let _ = ON_WORKER.try_with(|w| w.set(true));
        // Let `init` return before the start-up work below (reading files,
        // growing the heap) competes with it for the process's memory map;
        // a message (a capture, or a shutdown right after init) ends the wait.
        let mut early = inbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .rx
            .recv_timeout(STARTUP_DELAY)
            .ok();
        // Gather the machine facts now, off every caller's thread.
        let _ = crate::context::get();
        crate::capture::modules::preload();
        crate::capture::images::preload();
        self.replay();
        loop {
            if self.ledger.is_closed() {
                // Shutdown gave up on us and counted what we hold.
                return;
            }
            let outbox_wait = self.wait_due();
            let deliver_now = outbox_wait == Some(Duration::ZERO);
            // Wake up for the next aggregation window to close, too.
            let wait = match self.aggregator.next_deadline() {
                Some(t) => {
                    let until = t.saturating_duration_since(Instant::now());
                    Some(outbox_wait.map_or(until, |w| w.min(until)))
                }
                None => outbox_wait,
            };
            // And to let go of debug info once idle.
            let wait = match self.symbols_release_in() {
                Some(until) => Some(wait.map_or(until, |w| w.min(until))),
                None => wait,
            };
            // Without a spool, a full outbox pushes back into the queue;
            // with one, the overflow waits in the spool.
            let take_more =
                self.spool.is_some() || !(deliver_now && self.outbox.len() >= OUTBOX_CAPACITY);
            if take_more {
                // Without a spool, take no more than the outbox has room for.
                let burst = match self.spool {
                    Some(_) => RECEIVE_BURST,
                    None => RECEIVE_BURST.min(OUTBOX_CAPACITY.saturating_sub(self.outbox.len())),
                };
                if !receive(&inbox, early.take(), wait, burst) {
                    self.finish(Instant::now());
                    return;
                }
                // One message at a time, the inbox let go while it is
                // handled: handling runs user code (before_send), and a
                // shutdown that gives up on us moves what we have not
                // handled yet to the spool.
                let mut stop = None;
                loop {
                    if self.ledger.is_closed() {
                        // Shutdown gave up on us and counted what we hold.
                        return;
                    }
                    let next = inbox
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .taken
                        .pop_front();
                    let Some(message) = next else { break };
                    if let Step::Stop { done, deadline } = self.handle(message) {
                        stop = Some((done, deadline));
                    }
                }
                if let Some((done, deadline)) = stop {
                    self.finish(deadline);
                    let _ = done.try_send(());
                    return;
                }
            }
            self.aggregator.close_due(Instant::now());
            self.emit_ready();
            self.pump();
            self.answer_waiters();
            self.release_symbols_if_idle();
        }
    }

    /// How long until the debug info held for resolving frames is let go;
    /// `None` when none is held.
    fn symbols_release_in(&self) -> Option<Duration> {
        let last = self.processor.last_resolved()?;
        let due = last.checked_add(self.symbols_idle)?;
        Some(due.saturating_duration_since(Instant::now()))
    }

    /// A long-running process reports rarely: between bursts, the tens of
    /// MiB of parsed debug info are not worth keeping.
    fn release_symbols_if_idle(&mut self) {
        if self.symbols_release_in() != Some(Duration::ZERO) {
            return;
        }
        self.processor.release_symbols();
        #[cfg(test)]
        if let Some(tx) = &self.on_release {
            let _ = tx.try_send(());
        }
    }

    /// Whether the current thread is a worker (where waiting for the worker
    /// would wait for itself).
    pub(crate) fn is_current() -> bool {
        ON_WORKER.try_with(Cell::get).unwrap_or(false)
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

    fn handle(&mut self, message: Message) -> Step {
        match message {
            Message::Report(pending) => {
                self.received += 1;
                // A repeat in an open window is only counted: no processing.
                // (It is settled when its window closes, as one of the count.)
                if !pending.claimed
                    && pending
                        .raw_key
                        .is_some_and(|key| self.aggregator.fold_raw(key, Instant::now()))
                {
                    // Held until its window closes, as one of the count.
                    return Step::Continue;
                }
                self.admit(pending.into_captured(), None, true);
            }
            Message::Durable {
                captured,
                spool_file,
            } => self.admit_durable(*captured, spool_file),
            Message::Flush(done) => {
                // Reports held back for their windows go out now.
                self.aggregator.close_all();
                self.emit_ready();
                if self.waiters.len() >= MAX_WAITERS {
                    self.waiters.pop_front();
                }
                self.waiters.push_back((self.received, done));
            }
            Message::Shutdown { done, deadline } => return Step::Stop { done, deadline },
        }
        Step::Continue
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
        self.admit(captured, spool_file, true);
    }

    /// Reports left by earlier or dead processes, oldest first.
    fn replay(&mut self) {
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
            self.received += 1;
            match entry {
                // A raw capture (a panic, or what a shutdown moved from the
                // queue) was never processed: it is aggregated and rate
                // limited like this run's own.
                Entry::Captured(captured) => self.admit(*captured, Some(path), true),
                Entry::Report(mut report) => {
                    self.processor.recheck(&mut report);
                    self.enqueue(*report, Some(path))
                }
            }
        }
    }

    /// Processes a capture and, unless it is a repeat counted in its window,
    /// puts the report in the outbox. `fresh`: not processed before (a
    /// processed report replayed from the spool was aggregated and rate
    /// limited by the run that wrote it).
    fn admit(&mut self, captured: Captured, spool_file: Option<PathBuf>, fresh: bool) {
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
    fn held(&mut self, discard: Option<PathBuf>) {
        if let Some(path) = discard {
            if self.ledger.to_memory() {
                self.discard_file(Some(path));
            }
        }
    }

    /// Runs `before_send` and, for a report sent on its own (`rate_limited`:
    /// the first of its aggregation `window` or one of its burst), takes a
    /// token; then queues the report for delivery.
    fn send(
        &mut self,
        report: Report,
        spool_file: Option<PathBuf>,
        rate_limited: bool,
        window: Option<Window>,
    ) {
        let Some(report) = self.processor.before_send(report) else {
            return self.drop_report(spool_file, &STATS.filtered);
        };
        let mut spool_file = spool_file;
        if rate_limited && report.kind != Kind::Panic && !self.limiter.allow(Instant::now()) {
            match window {
                Some(Window { key, opened: true }) => {
                    // Its window does not open: repeats counted meanwhile share its fate.
                    STATS.dropped_rate_limited.add(self.aggregator.forget(key));
                }
                Some(Window { key, opened: false }) => {
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
    fn emit_ready(&mut self) {
        for closed in self.aggregator.take_ready() {
            let Closed {
                report,
                mut held,
                held_file,
                mut absorbed,
            } = closed;
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
            self.received += 1;
            self.send(report, None, false, None);
        }
    }

    /// Settles a report that goes no further under `counter`.
    fn drop_report(&mut self, spool_file: Option<PathBuf>, counter: &Counter) {
        self.ledger.settle(spool_file.is_some(), Some(counter));
        self.discard_file(spool_file);
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
                        self.ledger.to_disk();
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
        if self.outbox.len() < OUTBOX_CAPACITY && self.overflow.is_empty() {
            self.outbox.push_back(Outgoing {
                seq: self.received,
                report,
                spool_file,
            });
            return;
        }
        match spool_file {
            Some(path) if self.overflow.len() < MAX_OVERFLOW => {
                self.overflow.push_back((self.received, path));
            }
            Some(_) => self.ledger.settle(true, Some(&STATS.spooled)),
            None => self.ledger.settle(false, Some(&STATS.dropped_backlog)),
        }
    }

    /// Moves spooled reports from the overflow into the outbox while it has room.
    fn refill(&mut self) {
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
                    report,
                    spool_file: Some(path),
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

    fn discard_file(&self, spool_file: Option<PathBuf>) {
        if let (Some(spool), Some(path)) = (&self.spool, spool_file) {
            spool.remove(&path);
        }
    }

    /// Takes the first `n` reports off the outbox for now: each in the spool
    /// stays there for a later run, each without a file is counted under `reason`.
    fn give_up(&mut self, n: usize, reason: &Counter) {
        let gone: Vec<Outgoing> = self.outbox.drain(..n).collect();
        for outgoing in gone {
            let on_disk = outgoing.spool_file.is_some();
            let counter = if on_disk { &STATS.spooled } else { reason };
            self.ledger.settle(on_disk, Some(counter));
        }
        self.refill();
    }

    /// Takes the first `n` reports off the outbox for good (delivered, or
    /// refused for good), counting each under `counter` and removing its file.
    fn settle(&mut self, n: usize, counter: &Counter) {
        let gone: Vec<Outgoing> = self.outbox.drain(..n).collect();
        for outgoing in gone {
            self.ledger
                .settle(outgoing.spool_file.is_some(), Some(counter));
            self.discard_file(outgoing.spool_file);
        }
        self.refill();
    }

    /// Everything received up to here is delivered or dropped.
    fn settled(&self) -> u64 {
        let first_pending = self
            .outbox
            .front()
            .map(|o| o.seq)
            .or_else(|| self.overflow.front().map(|(seq, _)| *seq));
        first_pending.map_or(self.received, |seq| seq - 1)
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
        if self.outbox.is_empty() || self.not_before.is_some_and(|t| Instant::now() < t) {
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

    /// Delivers what it can until `deadline`; the rest stays in the spool
    /// (or, without one, is counted as dropped at shutdown).
    fn finish(&mut self, deadline: Instant) {
        self.aggregator.close_all();
        self.emit_ready();
        loop {
            self.answer_waiters();
            if self.outbox.is_empty() || self.ledger.is_closed() {
                break;
            }
            let due = self.not_before.unwrap_or_else(Instant::now);
            if due >= deadline || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            self.pump();
        }
        for _ in std::mem::take(&mut self.overflow) {
            self.ledger.settle(true, Some(&STATS.spooled));
        }
        self.give_up(self.outbox.len(), &STATS.dropped_shutdown);
        self.answer_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ReportId;

    #[test]
    fn the_ledger_counts_each_report_once() {
        let before = crate::stats();
        let ledger = Ledger::default();
        assert!(ledger.admit(false));
        assert!(ledger.admit(false));
        assert!(ledger.admit(true));
        ledger.to_disk();
        ledger.settle(true, Some(&STATS.sent));
        ledger.settle(false, Some(&STATS.sent));
        ledger.close();
        assert!(ledger.is_closed());
        assert!(!ledger.admit(false), "closed: nothing more comes in");
        ledger.settle(true, Some(&STATS.sent));
        let after = crate::stats();
        // Unit tests share the counters: compare at least what this ledger added.
        assert!(after.sent >= before.sent + 2);
        assert!(after.spooled > before.spooled);
        assert_eq!(held(ledger.0.load(Ordering::Acquire), false), 0);
        assert_eq!(held(ledger.0.load(Ordering::Acquire), true), 0);
    }

    /// A transport that accepts everything and keeps nothing.
    struct Discard;

    impl Transport for Discard {
        fn send(&mut self, _reports: &[Report]) -> Result<(), TransportError> {
            Ok(())
        }
    }

    /// A capture of an error at a real address of this binary, so that
    /// processing it resolves frames (and loads debug info).
    fn capture_here() -> Captured {
        let here = capture_here as *const () as usize;
        let mut captured: Captured = serde_json::from_value(serde_json::json!({
            "id": ReportId::random(),
            "timestamp_ms": 0,
            "level": "error",
            "kind": "error",
            "message": "idle test",
            "exceptions": [],
            "addresses": [here],
            "location": null,
            "thread": {"name": null, "id": 1},
            "tags": {},
            "extra": {},
            "user": null,
            "level_override": null,
            "fingerprint": null,
            "breadcrumbs": [],
            "truncated": [],
        }))
        .expect("a capture");
        captured.live = true;
        captured
    }

    #[test]
    fn debug_info_is_let_go_once_the_worker_is_idle() {
        let idle = Duration::from_millis(100);
        let settings = Arc::new(Settings::from_options(&crate::Options::new()));
        let ledger = Arc::new(Ledger::default());
        let retry = RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(1),
            attempts: 1,
        };
        let mut worker = Worker::new(
            settings,
            Box::new(Discard),
            retry,
            ledger.clone(),
            None,
            Arc::new(Slots::new(1)),
        );
        worker.symbols_idle = idle;
        let (released_tx, released) = std::sync::mpsc::sync_channel(8);
        worker.on_release = Some(released_tx);
        let (tx, rx) = std::sync::mpsc::sync_channel(8);
        let handle = std::thread::spawn(move || worker.run(Inbox::new(rx)));
        // Twice: a capture after a release resolves (and releases) again.
        for round in 0..2 {
            let sent = Instant::now();
            assert!(ledger.admit(false));
            tx.send(Message::Durable {
                captured: Box::new(capture_here()),
                spool_file: None,
            })
            .expect("the worker runs");
            released
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("round {round}: debug info never let go"));
            assert!(
                sent.elapsed() >= idle,
                "round {round}: let go after {:?}, before the idle period",
                sent.elapsed()
            );
        }
        let (done_tx, done) = std::sync::mpsc::sync_channel(1);
        tx.send(Message::Shutdown {
            done: done_tx,
            deadline: Instant::now() + Duration::from_secs(10),
        })
        .expect("the worker runs");
        done.recv_timeout(Duration::from_secs(60))
            .expect("the worker stops");
        handle.join().expect("no panic on the worker");
        assert!(
            released.try_recv().is_err(),
            "nothing is let go that was not loaded"
        );
    }

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
