//! The background thread: makes each capture durable (in the spool, when
//! one is in use) as soon as it arrives, processes captures into reports
//! once the debug info their frames need is loaded (loaded on a thread of
//! its own), keeps reports in a bounded outbox, and hands them in batches to
//! the transport's thread, retrying with exponential back-off and jitter and
//! honouring rate limits. Nothing it waits for (a hanging collector, debug
//! info loading, back-off) keeps it from the queue: flushes and shutdown are
//! answered on time.
mod courier;
mod ledger;

use std::cell::Cell;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub(crate) use courier::Waker;
pub(crate) use ledger::Ledger;

use crate::capture::{Captured, Pending};
use crate::pipeline::aggregate::{Aggregator, Closed, Offer, RateLimiter, Slots, Window};
use crate::pipeline::{Processor, Settings};
use crate::report::{Kind, Report};
use crate::spool::{Entry, EntryRef, Journal, Spool};
use crate::stats::{Counter, STATS};
use crate::transport::{Transport, TransportError};
use courier::{Courier, Outcome};

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
/// Captures waiting to be processed that are kept in memory; beyond, one in
/// the spool waits there (only its path is kept).
const UNPROCESSED_IN_MEMORY: usize = 256;
/// Captures waiting to be processed, at most; beyond, the queue pushes back.
const MAX_UNPROCESSED: usize = 8 * 1024;
/// Captures processed between two looks at the queue, so that new captures
/// reach the spool while a backlog is processed.
const PROCESS_BURST: usize = 4;
/// The longest the worker sleeps while something it waits for may end
/// without a wake-up (a full queue drops one).
const MAX_IDLE_WAIT: Duration = Duration::from_millis(250);
thread_local! {
    static ON_WORKER: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as one the worker waits for (see [`Worker::is_current`]).
fn mark_worker_thread() {
    let _ = ON_WORKER.try_with(|w| w.set(true));
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
        (None, Some(wait)) if wait.is_zero() => inbox.rx.try_recv().map_err(|e| match e {
            std::sync::mpsc::TryRecvError::Empty => RecvTimeoutError::Timeout,
            std::sync::mpsc::TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
        }),
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
    /// Something the worker waits for happened on another thread.
    Wake,
}

/// Where a report stands in receipt order, and whether an earlier run left
/// it in the spool (shutdown does not wait for those: they stay there).
#[derive(Clone, Copy, Debug, Default)]
struct Seq {
    n: u64,
    earlier_run: bool,
}

struct Outgoing {
    seq: Seq,
    report: Report,
    /// The report's spool file, removed once the collector has it.
    spool_file: Option<PathBuf>,
}

/// What waits to be processed, in queue order.
enum Work {
    Capture {
        seq: Seq,
        captured: Box<Captured>,
        spool_file: Option<PathBuf>,
        /// In this run's journal until processed.
        journaled: bool,
        /// Not aggregated or rate limited yet (see [`Worker::admit`]).
        fresh: bool,
    },
    /// A capture that waits in the journal: only where its line starts is held.
    Journaled {
        seq: Seq,
        offset: u64,
        id: crate::report::ReportId,
        raw_key: Option<u64>,
        claimed: bool,
    },
    /// A capture that waits in the spool: only its path is held.
    Spooled {
        seq: Seq,
        path: PathBuf,
        raw_key: Option<u64>,
        claimed: bool,
        fresh: bool,
    },
    /// A flush request: answered once what came before it is delivered.
    Flush(SyncSender<()>),
}

impl Work {
    fn seq(&self) -> Option<Seq> {
        match self {
            Work::Capture { seq, .. } | Work::Journaled { seq, .. } | Work::Spooled { seq, .. } => {
                Some(*seq)
            }
            Work::Flush(_) => None,
        }
    }
}

/// Where a capture the worker took in is kept until it is processed.
enum Durable {
    /// In the journal, at this offset.
    Journal(u64),
    /// In a spool file of its own.
    File(PathBuf),
    /// Only in memory (no spool, or it could not be written).
    Memory,
}

/// Whether the debug info resolving frames needs is loaded.
enum Symbols {
    /// Not loaded (or let go since).
    Cold,
    /// Being loaded on a thread of its own.
    Loading(JoinHandle<()>),
    Ready,
}

/// What the loop does after taking messages in.
enum Intake {
    Continue,
    /// A shutdown request.
    Stop {
        done: SyncSender<()>,
        deadline: Instant,
    },
    /// The client is gone.
    Gone,
    /// Shutdown gave up on the worker and counted what it holds.
    Abandoned,
}

pub(crate) struct Worker {
    settings: Arc<Settings>,
    processor: Processor,
    courier: Courier,
    waker: Waker,
    retry: RetryPolicy,
    /// Captures (and flush requests) not processed yet, in order.
    unprocessed: VecDeque<Work>,
    /// Earlier runs' reports claimed from the spool, handled when idle.
    replays: VecDeque<(Seq, PathBuf, Entry)>,
    symbols: Symbols,
    outbox: VecDeque<Outgoing>,
    /// Spooled reports (sequence number, file) waiting for room in the outbox.
    overflow: VecDeque<(Seq, PathBuf)>,
    /// Reports received so far (each gets the next sequence number).
    received: u64,
    /// The sequence number of the report being handled.
    seq: Seq,
    /// Flush requests waiting for everything up to their sequence number.
    waiters: VecDeque<(u64, SyncSender<()>)>,
    /// Failed attempts of the batch at the front of the outbox.
    attempts: u32,
    /// No delivery before this instant (back-off or rate limit).
    not_before: Option<Instant>,
    ledger: Arc<Ledger>,
    spool: Option<Arc<Spool>>,
    /// Where captures are written as they arrive (with a spool).
    journal: Option<Journal>,
    /// The report just handed to `enqueue` could not be written to the spool.
    unspooled: bool,
    aggregator: Aggregator,
    limiter: RateLimiter,
    /// How long without processing before debug info is let go.
    symbols_idle: Duration,
    /// Told each time debug info is let go.
    #[cfg(test)]
    on_release: Option<SyncSender<()>>,
}

impl Worker {
    /// A worker for `transport`, which it starts on a thread of its own.
    pub(crate) fn new(
        settings: Arc<Settings>,
        transport: Box<dyn Transport>,
        retry: RetryPolicy,
        ledger: Arc<Ledger>,
        spool: Option<Arc<Spool>>,
        slots: Arc<Slots>,
        waker: Waker,
    ) -> std::io::Result<Self> {
        Ok(Worker {
            aggregator: Aggregator::new(
                settings.aggregation_window,
                settings.aggregation_burst,
                slots,
            ),
            limiter: RateLimiter::new(settings.max_reports_per_minute),
            processor: Processor::new(settings.clone()),
            settings,
            courier: Courier::start(transport, waker.clone())?,
            waker,
            retry,
            unprocessed: VecDeque::new(),
            replays: VecDeque::new(),
            symbols: Symbols::Cold,
            outbox: VecDeque::new(),
            overflow: VecDeque::new(),
            received: 0,
            seq: Seq::default(),
            waiters: VecDeque::new(),
            attempts: 0,
            not_before: None,
            ledger,
            journal: spool.as_deref().map(Journal::new),
            unspooled: false,
            spool,
            symbols_idle: SYMBOLS_IDLE_RELEASE,
            #[cfg(test)]
            on_release: None,
        })
    }

    /// The worker's loop. The queue's receiving end is shared with the
    /// client (see [`Inbox`]) behind a mutex that the worker holds while it
    /// takes messages in, never while it handles them: a shutdown that
    /// gives up on a stuck worker can still move what is queued to the spool.
    pub(crate) fn run(mut self, inbox: Arc<Mutex<Inbox>>) {
        // A panic on this thread (a transport's, a before_send's) is caught and
        // counted where it happens; reporting it would feed the worker its own failures.
        let _reentry = crate::capture::Reentry::enter();
        mark_worker_thread();
        // Let `init` return before the start-up work below (reading files,
        // growing the heap) competes with it for the process's memory map;
        // a message (a capture, or a shutdown right after init) ends the wait.
        let mut early = inbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .rx
            .recv_timeout(STARTUP_DELAY)
            .ok();
        let mut started = false;
        loop {
            if self.ledger.is_closed() {
                // Shutdown gave up on us and counted what we hold.
                return;
            }
            // A batch delivered while the loop was busy: the next one goes,
            // and flushes it completes are answered.
            self.collect(Duration::ZERO);
            self.pump();
            self.answer_waiters();
            // This run's first captures reach the spool before the start-up work.
            let wait = if started {
                self.next_wait()
            } else {
                Some(Duration::ZERO)
            };
            match self.take_in(&inbox, early.take(), wait) {
                Intake::Continue => {}
                Intake::Stop { done, deadline } => {
                    self.finish(deadline);
                    let _ = done.try_send(());
                    return;
                }
                Intake::Gone => {
                    self.finish(Instant::now());
                    return;
                }
                Intake::Abandoned => return,
            }
            if !started {
                started = true;
                // Gather the machine facts now, off every caller's thread.
                let _ = crate::context::get();
                crate::capture::modules::preload();
                crate::capture::images::preload();
                self.claim_replays();
            }
            self.process_some();
            if self.unprocessed.is_empty() {
                self.replay_one();
            }
            self.aggregator.close_due(Instant::now());
            self.emit_ready();
            self.pump();
            self.answer_waiters();
            self.release_symbols_if_idle();
        }
    }

    /// Messages the worker takes off the queue now: without a spool, only
    /// as many as the outbox has room for (the queue pushes back).
    fn room(&self) -> usize {
        match self.spool {
            Some(_) => RECEIVE_BURST.min(MAX_UNPROCESSED.saturating_sub(self.unprocessed.len())),
            None => RECEIVE_BURST
                .min(OUTBOX_CAPACITY.saturating_sub(self.outbox.len() + self.unprocessed.len())),
        }
    }

    /// Takes messages in (waiting up to `wait` for the first) and handles them.
    fn take_in(
        &mut self,
        inbox: &Mutex<Inbox>,
        first: Option<Message>,
        wait: Option<Duration>,
    ) -> Intake {
        // Without room, one message at a time still comes in, so a flush or
        // shutdown is never stuck behind captures (those beyond the room
        // are counted where the outbox turns them away).
        let room = self.room();
        if !receive(inbox, first, wait, room.max(1)) {
            return Intake::Gone;
        }
        let mut stop = Intake::Continue;
        loop {
            if self.ledger.is_closed() {
                return Intake::Abandoned;
            }
            // One message at a time, the inbox let go while it is handled:
            // a shutdown that gives up on us moves what we have not handled
            // yet to the spool.
            let next = inbox
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .taken
                .pop_front();
            let Some(message) = next else { break };
            if let Some(step) = self.handle(message) {
                stop = step;
            }
        }
        stop
    }

    /// How long the loop may wait for the next message; `None`: until one comes.
    fn next_wait(&mut self) -> Option<Duration> {
        let front = match self.unprocessed.front() {
            Some(Work::Flush(_)) => Some(true),
            Some(_) => Some(false),
            None => None,
        };
        let ready = front.map(|flush| flush || self.symbols_ready());
        let mut wait: Option<Duration> = None;
        let mut upto = |d: Duration| wait = Some(wait.map_or(d, |w| w.min(d)));
        match ready {
            Some(true) => upto(Duration::ZERO),
            // Loading ends with a wake-up.
            Some(false) => upto(MAX_IDLE_WAIT),
            None if !self.replays.is_empty() => upto(Duration::ZERO),
            None => {}
        }
        if self.courier.in_flight().is_some() {
            // Its outcome comes with a wake-up.
            upto(MAX_IDLE_WAIT);
        } else if !self.outbox.is_empty() {
            upto(
                self.not_before
                    .map(|t| t.saturating_duration_since(Instant::now()))
                    .unwrap_or(Duration::ZERO),
            );
        }
        if let Some(t) = self.aggregator.next_deadline() {
            upto(t.saturating_duration_since(Instant::now()));
        }
        if let Some(until) = self.symbols_release_in() {
            upto(until);
        }
        wait
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

    /// Whether the current thread is a worker (where waiting for the worker
    /// would wait for itself).
    pub(crate) fn is_current() -> bool {
        ON_WORKER.try_with(Cell::get).unwrap_or(false)
    }

    /// Whether captures can be processed now without loading debug info on
    /// this thread; starts loading it when nobody has.
    fn symbols_ready(&mut self) -> bool {
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
                        let _reentry = crate::capture::Reentry::enter();
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
    fn handle(&mut self, message: Message) -> Option<Intake> {
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
                let in_memory = self.unprocessed.len() < UNPROCESSED_IN_MEMORY;
                let work = match durable {
                    Durable::Journal(offset) if !in_memory => Work::Journaled {
                        seq,
                        offset,
                        id: captured.id,
                        raw_key: captured.raw_key,
                        claimed: captured.claimed,
                    },
                    Durable::File(path) => {
                        self.wait_for_processing(seq, captured, Some(path), true);
                        return None;
                    }
                    durable => Work::Capture {
                        seq,
                        captured: Box::new(captured),
                        spool_file: None,
                        journaled: matches!(durable, Durable::Journal(_)),
                        fresh: true,
                    },
                };
                self.unprocessed.push_back(work);
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

    /// With a spool, writes a capture to the journal as it is (scrubbed, its
    /// addresses tied to their files), before any processing: from here on
    /// a killed process loses nothing of it. A full journal, or one that
    /// cannot be written, leaves it to a spool file of its own.
    fn make_durable(&mut self, pending: Pending) -> (Captured, Durable) {
        let (Some(journal), Some(spool)) = (self.journal.as_mut(), &self.spool) else {
            return (pending.into_captured(), Durable::Memory);
        };
        let captured = self.settings.raw_capture(pending);
        let durable = match journal.append(&captured) {
            Ok(offset) => Durable::Journal(offset),
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

    /// Queues a capture for processing (by path only when many wait and it
    /// is in the spool).
    fn wait_for_processing(
        &mut self,
        seq: Seq,
        captured: Captured,
        spool_file: Option<PathBuf>,
        fresh: bool,
    ) {
        let work = match spool_file {
            Some(path) if self.unprocessed.len() >= UNPROCESSED_IN_MEMORY => Work::Spooled {
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
                journaled: false,
                fresh,
            },
        };
        self.unprocessed.push_back(work);
    }

    /// Processes what waits, a few at a time, once the debug info is ready.
    fn process_some(&mut self) {
        for _ in 0..PROCESS_BURST {
            let ready = match self.unprocessed.front() {
                None => return,
                Some(Work::Flush(_)) => true,
                Some(_) => self.symbols_ready(),
            };
            if !ready {
                return;
            }
            if let Some(work) = self.unprocessed.pop_front() {
                self.process(work);
            }
        }
    }

    fn process(&mut self, work: Work) {
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
                if journaled && !self.ledger.to_memory() {
                    return;
                }
                self.admit_journaled(*captured, spool_file, fresh, journaled.then_some(id));
            }
            Work::Journaled {
                seq,
                offset,
                id,
                raw_key,
                claimed,
            } => {
                self.seq = seq;
                if !self.ledger.to_memory() {
                    return;
                }
                let read = self.journal.as_ref().and_then(|j| j.read_at(offset));
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
                        if let Some(journal) = self.journal.as_mut() {
                            journal.settle(id);
                        }
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
    fn claim_replays(&mut self) {
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
    fn replay_one(&mut self) {
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
    /// its id) is settled there once its report is in a spool file of its
    /// own or has gone for good (left there if its spool file could not be
    /// written, so that a killed process still has it).
    fn admit_journaled(
        &mut self,
        captured: Captured,
        spool_file: Option<PathBuf>,
        fresh: bool,
        journaled: Option<crate::report::ReportId>,
    ) {
        self.unspooled = false;
        self.admit(captured, spool_file, fresh);
        if let (Some(id), Some(journal), false) = (journaled, self.journal.as_mut(), self.unspooled)
        {
            journal.settle(id);
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

    /// Settles a report that goes no further under `counter`.
    fn drop_report(&mut self, spool_file: Option<PathBuf>, counter: &Counter) {
        self.ledger.settle(spool_file.is_some(), Some(counter));
        self.discard_file(spool_file);
    }

    /// Makes the report durable (when a spool is in use) and queues it for delivery.
    fn enqueue(&mut self, mut report: Report, spool_file: Option<PathBuf>) {
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
                        self.unspooled = true;
                        None
                    }
                }
            }
            (_, file) => file,
        };
        if self.outbox.len() < OUTBOX_CAPACITY && self.overflow.is_empty() {
            self.outbox.push_back(Outgoing {
                seq: self.seq,
                report,
                spool_file,
            });
            return;
        }
        match spool_file {
            Some(path) if self.overflow.len() < MAX_OVERFLOW => {
                self.overflow.push_back((self.seq, path));
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
        if self.ledger.is_closed() {
            // Shutdown gave up on us and counted the file as spooled: keep it.
            return;
        }
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

    /// The next sequence number.
    fn next_seq(&mut self, earlier_run: bool) -> Seq {
        self.received += 1;
        Seq {
            n: self.received,
            earlier_run,
        }
    }

    /// Everything received up to here is delivered or dropped.
    fn settled(&self) -> u64 {
        // Earlier runs' reports join the outbox out of receipt order; the
        // overflow (which can be long) is in order.
        let first_pending = [
            self.unprocessed
                .iter()
                .filter_map(Work::seq)
                .map(|s| s.n)
                .min(),
            self.replays.front().map(|(seq, _, _)| seq.n),
            self.outbox.iter().map(|o| o.seq.n).min(),
            self.overflow.front().map(|(seq, _)| seq.n),
        ]
        .into_iter()
        .flatten()
        .min();
        first_pending.map_or(self.received, |n| n - 1)
    }

    fn answer_waiters(&mut self) {
        if self.waiters.is_empty() {
            return;
        }
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

    /// Hands the batch at the front of the outbox to the transport's thread
    /// when a delivery is due and none is on its way.
    fn pump(&mut self) {
        if self.outbox.is_empty()
            || self.courier.in_flight().is_some()
            || self.not_before.is_some_and(|t| Instant::now() < t)
        {
            return;
        }
        let n = self.courier.max_batch().min(self.outbox.len());
        let batch: Vec<Report> = self
            .outbox
            .iter()
            .take(n)
            .map(|o| o.report.clone())
            .collect();
        if !self.courier.dispatch(batch) {
            let gone = TransportError::Permanent("the transport's thread ended".into());
            self.on_outcome(n, Err(gone));
        }
    }

    /// Takes the outcome of the batch on its way, waiting up to `wait` for it.
    fn collect(&mut self, wait: Duration) {
        if let Some((n, outcome)) = self.courier.outcome(wait) {
            self.on_outcome(n, outcome);
        }
    }

    /// Settles the first `n` reports of the outbox (the batch that was sent)
    /// by what became of them.
    fn on_outcome(&mut self, n: usize, outcome: Outcome) {
        let n = n.min(self.outbox.len());
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

    /// Delivers this run's reports until `deadline`; the rest stays in the
    /// spool (or, without one, is counted as dropped at shutdown). Earlier
    /// runs' reports are left in the spool at once, and a batch that failed
    /// is not tried again: the spool keeps it for the next run.
    fn finish(&mut self, deadline: Instant) {
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
            self.pump();
        }
        for _ in std::mem::take(&mut self.overflow) {
            self.ledger.settle(true, Some(&STATS.spooled));
        }
        self.give_up(self.outbox.len(), &STATS.dropped_shutdown);
        self.answer_waiters();
    }

    /// Leaves a capture not processed by shutdown's deadline where it is:
    /// in the spool or the journal (counted as spooled), else lost.
    fn leave(&mut self, work: Work) {
        let on_disk = match work {
            Work::Capture {
                spool_file,
                journaled,
                ..
            } => spool_file.is_some() || journaled,
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
    fn set_aside_earlier_runs(&mut self) {
        let sending = self.courier.in_flight().unwrap_or(0).min(self.outbox.len());
        let mut kept = self.outbox.split_off(sending);
        kept.retain(|o| {
            if o.seq.earlier_run {
                self.ledger
                    .settle(o.spool_file.is_some(), Some(&STATS.spooled));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ReportId;

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
            Waker::default(),
        )
        .expect("a worker");
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

    /// Keeps what it is sent.
    struct Keep(std::sync::mpsc::SyncSender<Report>);

    impl Transport for Keep {
        fn send(&mut self, reports: &[Report]) -> Result<(), TransportError> {
            for report in reports {
                let _ = self.0.try_send(report.clone());
            }
            Ok(())
        }
    }

    #[test]
    fn at_a_shutdown_deadline_captures_go_out_with_addresses_only_rather_than_not_at_all() {
        let settings = Arc::new(Settings::from_options(&crate::Options::new()));
        let ledger = Arc::new(Ledger::default());
        let retry = RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(1),
            attempts: 1,
        };
        let (kept_tx, kept) = std::sync::mpsc::sync_channel(8);
        let mut worker = Worker::new(
            settings,
            Box::new(Keep(kept_tx)),
            retry,
            ledger.clone(),
            None,
            Arc::new(Slots::new(1)),
            Waker::default(),
        )
        .expect("a worker");
        // Debug info that takes longer to load than shutdown allows.
        let (release_tx, release) = std::sync::mpsc::channel::<()>();
        worker.symbols = Symbols::Loading(std::thread::spawn(move || {
            let _ = release.recv();
        }));
        let (tx, rx) = std::sync::mpsc::sync_channel(8);
        let handle = std::thread::spawn(move || worker.run(Inbox::new(rx)));
        assert!(ledger.admit(false));
        let captured = capture_here();
        let address = captured.addresses[0];
        tx.send(Message::Durable {
            captured: Box::new(captured),
            spool_file: None,
        })
        .expect("the worker runs");
        let (done_tx, done) = std::sync::mpsc::sync_channel(1);
        tx.send(Message::Shutdown {
            done: done_tx,
            deadline: Instant::now() + Duration::from_millis(400),
        })
        .expect("the worker runs");
        done.recv_timeout(Duration::from_secs(60))
            .expect("the worker stops");
        handle.join().expect("no panic on the worker");
        let report = kept.try_recv().expect("delivered, not dropped");
        assert_eq!(report.frames.len(), 1, "{:?}", report.frames);
        assert_eq!(report.frames[0].address, format!("{address:#x}"));
        assert!(report.frames[0].function.is_none(), "{:?}", report.frames);
        drop(release_tx);
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
