//! The background thread: makes each capture durable (in the spool, when
//! one is in use) as soon as it arrives, processes captures into reports
//! once the debug info their frames need is loaded (loaded on a thread of
//! its own), keeps reports in a bounded outbox, and hands them in batches to
//! the transport's thread, retrying with exponential back-off and jitter and
//! honouring rate limits. Nothing it waits for (a hanging collector, debug
//! info loading, back-off) keeps it from the queue: flushes and shutdown are
//! answered on time.
mod courier;
mod delivery;
mod in_flight;
mod processing;
mod queue;
mod retry;

use std::cell::Cell;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub(crate) use courier::Waker;
pub(crate) use in_flight::InFlight;
use queue::receive;
pub(crate) use queue::{Inbox, Message};
pub(crate) use retry::RetryPolicy;

use crate::pipeline::aggregate::{Aggregator, Closed, Offer, RateLimiter, Slots, WindowRef};
use crate::pipeline::{Processor, Settings};
use crate::record::{Captured, Pending};
use crate::report::{Report, ReportId};
use crate::spool::{Entry, EntryRef, Journal, Line, Spool};
use crate::stats::{Counter, STATS};
use crate::transport::{Transport, TransportError};
use courier::{Courier, Outcome};

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
/// Captures waiting to be processed that are kept in memory at least;
/// beyond [`Worker::in_memory`], one in the spool waits there (only its path
/// or journal line is kept).
const UNPROCESSED_IN_MEMORY: usize = 256;
/// Captures waiting to be processed, at most; beyond, the queue pushes back.
const MAX_UNPROCESSED: usize = 8 * 1024;
/// Captures processed between two looks at the queue, so that new captures
/// reach the spool while a backlog is processed.
const PROCESS_BURST: usize = 4;
/// How long a report waits in the outbox for others to go with it in one
/// batch (handing each report to the transport's thread on its own costs
/// two thread wake-ups): a full batch, a flush and shutdown do not wait.
const BATCH_LINGER: Duration = Duration::from_millis(1);
/// With a full outbox, processing waits for the batch on its way (captures
/// wait cheaper than reports, which would go to spool files) unless the
/// batch has been on its way this long: then the collector is stuck, and
/// processing goes on into the spool.
const DELIVERY_STUCK: Duration = Duration::from_secs(1);
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

/// How long the worker waits before its start-up work.
const STARTUP_DELAY: Duration = Duration::from_millis(2);
/// Messages taken from the queue between two delivery attempts.
const RECEIVE_BURST: usize = 256;
/// The debug info loaded to resolve frames is let go once no capture was
/// processed for this long (see `Options::symbolicate`).
pub(crate) const SYMBOLS_IDLE_RELEASE: Duration = Duration::from_secs(10);

/// Where a report stands in receipt order, and whether an earlier run left
/// it in the spool (shutdown does not wait for those: they stay there).
#[derive(Clone, Copy, Debug, Default)]
struct Seq {
    n: u64,
    earlier_run: bool,
}

struct Outgoing {
    seq: Seq,
    /// `None` while it is on its way (the courier holds it).
    report: Option<Report>,
    /// The report's spool file, removed once the collector has it.
    spool_file: Option<PathBuf>,
    /// Or its capture's line in this run's journal, settled once the
    /// collector has it: a run that dies first leaves the capture to the
    /// next one.
    journal_line: Option<ReportId>,
}

impl Outgoing {
    /// Whether the report survives the process (in a spool file or the journal).
    fn on_disk(&self) -> bool {
        self.spool_file.is_some() || self.journal_line.is_some()
    }
}

/// What waits to be processed, in queue order.
enum Work {
    Capture {
        seq: Seq,
        captured: Box<Captured>,
        spool_file: Option<PathBuf>,
        /// Its line in this run's journal, kept until its report is delivered.
        journaled: Option<Line>,
        /// Not aggregated or rate limited yet (see [`Worker::admit`]).
        fresh: bool,
    },
    /// A capture that waits in the journal: only where its line starts is held.
    Journaled {
        seq: Seq,
        line: Line,
        id: ReportId,
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
    /// In the journal.
    Journal(Line),
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
    ledger: Arc<InFlight>,
    spool: Option<Arc<Spool>>,
    /// Where captures are written as they arrive (with a spool).
    journal: Option<Journal>,
    /// The journal line of the capture being admitted: its report takes the
    /// line over, instead of a spool file of its own, when it is queued
    /// for delivery (see `enqueue`); otherwise the line is settled.
    journal_line: Option<ReportId>,
    /// Captures waiting to be processed kept in memory: as many as the
    /// queue holds (so at most twice its capacity in all), and at least
    /// [`UNPROCESSED_IN_MEMORY`].
    in_memory: usize,
    /// Since when the outbox's reports wait for a fuller batch (see [`BATCH_LINGER`]).
    lingering: Option<Instant>,
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
        ledger: Arc<InFlight>,
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
            lingering: None,
            in_memory: settings.queue_capacity.max(UNPROCESSED_IN_MEMORY),
            settings,
            courier: Courier::new(transport, waker.clone()),
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
            journal_line: None,
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
        let _reentry = crate::reentry::Reentry::enter();
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
        // The transport's thread, started here rather than in `init`.
        self.courier.start();
        loop {
            if self.ledger.is_closed() {
                // Shutdown gave up on us and counted what we hold.
                return;
            }
            // A batch delivered while the loop was busy: the next one goes,
            // and flushes it completes are answered.
            self.collect(Duration::ZERO);
            self.pump(true);
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
                crate::mapped_files::preload();
                crate::images::preload();
                self.claim_replays();
            }
            self.process_some();
            if self.unprocessed.is_empty() {
                self.replay_one();
            }
            self.aggregator.close_due(Instant::now());
            self.emit_ready();
            self.pump(true);
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
        let from = self.unprocessed.len();
        let mut stop = Intake::Continue;
        loop {
            if self.ledger.is_closed() {
                // Counted as spooled: what was staged must reach the journal.
                stop = Intake::Abandoned;
                break;
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
        // The burst's captures reach the disk together, before any is processed.
        self.commit_journal(from);
        stop
    }

    /// Whether processing waits for delivery (see [`DELIVERY_STUCK`]).
    fn held_back_by_delivery(&self) -> bool {
        self.outbox.len() >= OUTBOX_CAPACITY
            && self
                .courier
                .in_flight_for()
                .is_some_and(|d| d < DELIVERY_STUCK)
    }

    /// How long the loop may wait for the next message; `None`: until one comes.
    fn next_wait(&mut self) -> Option<Duration> {
        let front = match self.unprocessed.front() {
            Some(Work::Flush(_)) => Some(true),
            Some(_) => Some(false),
            None => None,
        };
        let ready =
            front.map(|flush| flush || (!self.held_back_by_delivery() && self.symbols_ready()));
        let mut wait: Option<Duration> = None;
        let mut upto = |d: Duration| wait = Some(wait.map_or(d, |w| w.min(d)));
        match ready {
            Some(true) => upto(Duration::ZERO),
            // Loading ends with a wake-up.
            Some(false) => upto(MAX_IDLE_WAIT),
            None if !self.replays.is_empty() => upto(Duration::ZERO),
            None => {}
        }
        if let Some(sent) = self.courier.in_flight_for() {
            // Its outcome comes with a wake-up; processing held back for it
            // goes on once it is stuck.
            upto(MAX_IDLE_WAIT);
            if self.held_back_by_delivery() {
                upto(DELIVERY_STUCK.saturating_sub(sent));
            }
        } else if !self.outbox.is_empty() {
            let lingering = self
                .lingering
                .map(|since| BATCH_LINGER.saturating_sub(since.elapsed()));
            upto(
                self.not_before
                    .map(|t| t.saturating_duration_since(Instant::now()))
                    .or(lingering)
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

    /// Whether the current thread is a worker (where waiting for the worker
    /// would wait for itself).
    pub(crate) fn is_current() -> bool {
        ON_WORKER.try_with(Cell::get).unwrap_or(false)
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
}

#[cfg(test)]
mod tests;
