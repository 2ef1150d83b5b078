//! The global install: one atomic state (log-crate style), the client with
//! its queue to the worker, and the [`Guard`] that shuts it down.
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError, RwLock, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::capture::install::{self, Listener, Sink};
use crate::capture::panic::crash_message::{CrashNotice, Whereabouts};
use crate::capture::panic::PanicFacts;
use crate::deadline::deadline_after;
use crate::error::ConfigError;
use crate::options::Options;
use crate::pipeline::aggregate::{Claim, Slots};
use crate::pipeline::Settings;
use crate::record::Pending;
use crate::report::{Kind, ReportId};
use crate::scope::Hub;
use crate::spool::{EntryRef, LastRun, Spool};
use crate::stats::STATS;
use crate::worker::{InFlight, Inbox, Message, Waker, Worker};

static LAST_RUN: RwLock<Option<LastRun>> = RwLock::new(None);

/// How the previous run of this program ended, as recorded in its spool:
/// whether it panicked, and how many runs in a row did. `None` before `init`,
/// or when no spool is in use.
///
/// ```
/// if let Some(last) = crashbox::last_run() {
///     if last.consecutive_panics >= 3 {
///         eprintln!("crashed {} times in a row: starting in safe mode", last.consecutive_panics);
///     }
/// }
/// ```
pub fn last_run() -> Option<LastRun> {
    *LAST_RUN.read().unwrap_or_else(PoisonError::into_inner)
}

const UNINITIALIZED: u8 = 0;
const INITIALIZING: u8 = 1;
const INITIALIZED: u8 = 2;
const SHUTTING_DOWN: u8 = 3;

/// How long, past `shutdown_timeout`, shutdown may spend moving queued reports
/// to the spool when the worker is stuck in a send.
const SPOOL_GRACE: Duration = Duration::from_millis(500);
/// How long, of that, shutdown waits for a worker that did not answer in
/// time to end (it may be finishing just then).
const WORKER_GRACE: Duration = Duration::from_millis(100);

static STATE: AtomicU8 = AtomicU8::new(UNINITIALIZED);
static CLIENT: RwLock<Option<Arc<Client>>> = RwLock::new(None);
/// The installed client, if any.
pub(crate) fn current() -> Option<Arc<Client>> {
    // While shutting down the client still takes captures: a panic during
    // shutdown is spooled like any other.
    if !matches!(STATE.load(Ordering::Acquire), INITIALIZED | SHUTTING_DOWN) {
        return None;
    }
    CLIENT
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// The spool directory of the installed client, if it uses one.
///
/// ```
/// let guard = crashbox::init(crashbox::Options::new().collector("memory"))?;
/// assert_eq!(crashbox::spool_dir(), None); // `memory` needs no spool
/// # drop(guard);
/// # Ok::<(), crashbox::ConfigError>(())
/// ```
pub fn spool_dir() -> Option<std::path::PathBuf> {
    current()?.spool.as_ref().map(|s| s.dir().to_path_buf())
}

/// The live client's processing settings, if a client is installed.
pub(crate) fn current_settings() -> Option<Arc<Settings>> {
    current().map(|c| c.settings.clone())
}

pub(crate) struct Client {
    tx: SyncSender<Message>,
    /// The queue's other end, shared with the worker (see `Worker::run`).
    inbox: Arc<Mutex<Inbox>>,
    settings: Arc<Settings>,
    spool: Option<Arc<Spool>>,
    last_run: LastRun,
    panicked: AtomicBool,
    panic_flush_timeout: Duration,
    /// Every report handed to the worker until it is settled (see `InFlight`).
    ledger: Arc<InFlight>,
    /// Repeats counted on the caller's thread (see `pipeline::aggregate`).
    slots: Arc<Slots>,
    /// Lets the worker's helper threads wake it; disarmed at shutdown.
    waker: Waker,
    /// Whether the panic hook waits (up to `panic_flush_timeout`) for a
    /// panic's report to be delivered: with a local collector, where
    /// delivery is a write that takes no time.
    wait_for_panics: bool,
    /// The crash message said after a panic's capture, if asked for.
    crash: Option<CrashNotice>,
    /// Where the reports of panics being captured are, until their crash
    /// message is said (with a crash message only; a few, for panics on
    /// several threads at once).
    panic_places: Mutex<Vec<PanicPlace>>,
    /// Whether `init` installed crashbox's panic hook (`Options::panic_hook`).
    panic_hook: bool,
}

/// How many panics' places the client keeps until their crash message.
const MAX_PANIC_PLACES: usize = 16;

/// Where a panic's report is once the hook has written it and waited.
struct PanicPlace {
    id: ReportId,
    spool_file: Option<std::path::PathBuf>,
    delivered: bool,
    /// Dropped: neither queued nor on disk.
    lost: bool,
}

/// The client is where the caller's side hands its captures while installed.
impl Sink for Client {
    fn sampled_in(&self, kind: Kind) -> bool {
        let keep = self.settings.sampled_in(kind);
        if !keep {
            STATS.captured.inc();
            STATS.dropped_sampled.inc();
        }
        keep
    }

    fn submit(&self, pending: Pending) -> Option<ReportId> {
        STATS.captured.inc();
        let id = if pending.kind == Kind::Panic {
            self.enqueue_panic(pending)
        } else {
            self.enqueue(pending)
        };
        if let Some(id) = id {
            install::record_report(id, true);
        }
        id
    }

    fn refused_reentrant(&self) {
        STATS.captured.inc();
        STATS.dropped_reentrant.inc();
    }

    fn crash_message(&self, panic: &PanicFacts<'_>) -> Option<String> {
        let notice = self.crash.as_ref()?;
        let place = {
            let mut places = self
                .panic_places
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let at = places.iter().position(|place| Some(place.id) == panic.id);
            at.map(|at| places.swap_remove(at))
        };
        let at = Whereabouts {
            delivered: place.as_ref().is_some_and(|p| p.delivered),
            lost: place.as_ref().is_some_and(|p| p.lost),
            spool_file: place.as_ref().and_then(|p| p.spool_file.as_deref()),
        };
        Some(notice.render(panic, &at))
    }
}

impl Client {
    pub(crate) fn enqueue(&self, pending: Pending) -> Option<ReportId> {
        let mut pending = pending;
        let key = pending
            .raw_key
            .filter(|_| !self.settings.aggregation_window.is_zero());
        if let Some(key) = key {
            match self.slots.enter(key) {
                // A repeat: its window's report will carry it (in flight until then).
                Claim::Absorbed => return None,
                Claim::Claimed => pending.claimed = true,
                Claim::Passed | Claim::Busy => {}
            }
        }
        let claimed = key.filter(|_| pending.claimed);
        let id = pending.id;
        // In the ledger before it is sent, so the worker never settles it first.
        let failed = if !self.ledger.admit(false) {
            STATS.dropped_shutdown.inc();
            &STATS.dropped_shutdown
        } else {
            match self.tx.try_send(Message::Report(Box::new(pending))) {
                Ok(()) => return Some(id),
                Err(TrySendError::Full(_)) => {
                    self.ledger.settle(false, Some(&STATS.dropped_queue_full));
                    &STATS.dropped_queue_full
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.ledger.settle(false, Some(&STATS.dropped_shutdown));
                    &STATS.dropped_shutdown
                }
            }
        };
        // The worker will never hear of the slot this capture claimed: free
        // it, and the repeats it absorbed meanwhile share the capture's fate.
        if let Some(key) = claimed {
            failed.add(self.slots.release(key));
        }
        None
    }

    /// A panic's capture: written to the spool before the hook returns, then
    /// queued; under `panic = "abort"` also waited for, since no destructor runs.
    pub(crate) fn enqueue_panic(&self, pending: Pending) -> Option<ReportId> {
        let Some(spool) = &self.spool else {
            let id = self.enqueue(pending);
            let delivered = (cfg!(panic = "abort") || self.wait_for_panics)
                && self.flush(self.panic_flush_timeout);
            self.note_panic(id, None, delivered, false);
            return id;
        };
        let id = pending.id;
        let captured = self.settings.captured_for_spool(pending);
        if !self.panicked.swap(true, Ordering::SeqCst) {
            spool.record_panic(self.last_run);
        }
        let spool_file = match spool.write_panic(&captured) {
            Ok(path) => Some(path),
            Err(_) => {
                STATS.spool_write_errors.inc();
                None
            }
        };
        let on_disk = spool_file.is_some();
        if !self.ledger.admit(on_disk) {
            // Shutdown is over: the spool keeps it for the next run, if it could.
            let counter = if on_disk {
                &STATS.spooled
            } else {
                &STATS.dropped_shutdown
            };
            counter.inc();
            self.note_panic(Some(id), spool_file, false, !on_disk);
            return Some(id);
        }
        let kept_in = self.crash.as_ref().and(spool_file.clone());
        let message = Message::Durable {
            captured: Box::new(captured),
            spool_file,
        };
        let queued = self.tx.try_send(message).is_ok();
        if !queued {
            let counter = if on_disk {
                // The next run sends it.
                &STATS.spooled
            } else {
                &STATS.dropped_queue_full
            };
            self.ledger.settle(on_disk, Some(counter));
        }
        let delivered =
            (cfg!(panic = "abort") || self.wait_for_panics) && self.flush(self.panic_flush_timeout);
        self.note_panic(Some(id), kept_in, delivered, !queued && !on_disk);
        Some(id)
    }

    /// Remembers where a panic's report is, for the crash message.
    fn note_panic(
        &self,
        id: Option<ReportId>,
        spool_file: Option<std::path::PathBuf>,
        delivered: bool,
        lost: bool,
    ) {
        if let (Some(_), Some(id)) = (&self.crash, id) {
            let mut places = self
                .panic_places
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if places.len() >= MAX_PANIC_PLACES {
                places.remove(0);
            }
            places.push(PanicPlace {
                id,
                spool_file,
                delivered,
                lost,
            });
        }
    }

    /// At shutdown: moves what the worker left in the queue (it stopped, or
    /// is stuck in a send) to the spool, in the raw form the next run
    /// resolves, until `deadline`; without a spool it is dropped and counted.
    fn spool_queued(&self, deadline: Instant) {
        let mut inbox = loop {
            match self.inbox.try_lock() {
                Ok(inbox) => break inbox,
                Err(TryLockError::Poisoned(poisoned)) => break poisoned.into_inner(),
                // The worker is taking messages in: it will be done shortly.
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(TryLockError::WouldBlock) => return,
            }
        };
        while Instant::now() < deadline {
            let Some(message) = inbox.try_next() else {
                break;
            };
            match message {
                Message::Report(pending) => {
                    let captured = self.settings.captured_for_spool(*pending);
                    let written = self.spool.as_ref().is_some_and(|spool| {
                        spool
                            .write(
                                captured.id,
                                captured.timestamp_ms,
                                EntryRef::Captured(&captured),
                            )
                            .is_ok()
                    });
                    let counter = if written {
                        &STATS.spooled
                    } else {
                        &STATS.dropped_shutdown
                    };
                    self.ledger.settle(false, Some(counter));
                }
                Message::Durable { spool_file, .. } => {
                    let on_disk = spool_file.is_some();
                    let counter = if on_disk {
                        &STATS.spooled
                    } else {
                        &STATS.dropped_shutdown
                    };
                    self.ledger.settle(on_disk, Some(counter));
                }
                Message::Flush(_) | Message::Shutdown { .. } | Message::Wake => {}
            }
        }
    }

    /// Sends a control message, waiting for room in the queue until `deadline`.
    fn send_control(&self, message: impl Fn() -> Message, deadline: Instant) -> bool {
        loop {
            match self.tx.try_send(message()) {
                Ok(()) => return true,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(_)) if Instant::now() >= deadline => return false,
                Err(TrySendError::Full(_)) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }

    fn request(
        &self,
        make: impl Fn(SyncSender<()>, Instant) -> Message,
        timeout: Duration,
    ) -> bool {
        if Worker::is_current() {
            // From before_send or a transport: the worker would wait for itself.
            return false;
        }
        let deadline = deadline_after(timeout);
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        if !self.send_control(|| make(done_tx.clone(), deadline), deadline) {
            return false;
        }
        done_rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }

    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        self.request(|done, _| Message::Flush(done), timeout)
    }

    /// Puts the run state back as it was before the crash handler rewrote
    /// it, for a signal the process survived.
    fn forget_crash(&self) {
        if let Some(spool) = &self.spool {
            spool.restore_run_state(self.last_run, self.panicked.load(Ordering::SeqCst));
        }
    }

    /// At a flush the application asked for, and at shutdown: says once on
    /// stderr that the panic hook this client installed was replaced.
    pub(crate) fn say_if_hook_replaced(&self) {
        if self.panic_hook {
            crate::capture::panic::say_if_replaced();
        }
    }
}

/// Installs the global client and starts its worker thread.
///
/// Returns a [`Guard`]: keep it alive for as long as reports should be
/// captured; dropping it delivers what is queued (bounded by
/// [`Options::shutdown_timeout`]) and uninstalls the client.
///
/// ```
/// let guard = crashbox::init(crashbox::Options::new().collector("memory"))?;
/// // A second client while the first is live is refused.
/// assert!(matches!(
///     crashbox::init(crashbox::Options::new()),
///     Err(crashbox::ConfigError::AlreadyInitialized)
/// ));
/// drop(guard);
/// # Ok::<(), crashbox::ConfigError>(())
/// ```
///
/// # Errors
/// [`ConfigError`] for a malformed collector string or option, when a
/// client is already installed, or when the worker thread cannot start. A
/// spool directory that cannot be used is not an error: reporting goes on
/// without a spool, and [`Stats::spool_refused`](crate::Stats::spool_refused) says so.
pub fn init(mut options: Options) -> Result<Guard, ConfigError> {
    options.validate()?;
    crate::stats::set_debug(options.debug);
    // Where reports go (`destination.describe()` says it in a few words):
    // the collector configured, or the default for this build. A network
    // collector or a file keeps reports in the spool until they are
    // delivered; stderr and memory do not (see `Destination::spooled`).
    let mut destination: crate::options::Destination = options.destination()?;
    let (mut transport, spool_wanted, local) = match options.transport.take() {
        Some(transport) => (transport.into_boxed(), true, false),
        None => (
            destination.transport(options.service_info())?,
            destination.spooled(),
            destination.local(),
        ),
    };
    let spool_wanted = options
        .spool
        .unwrap_or(spool_wanted || options.spool_dir.is_some());
    if STATE
        .compare_exchange(
            UNINITIALIZED,
            INITIALIZING,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_err()
    {
        return Err(ConfigError::AlreadyInitialized);
    }
    let spool = open_spool(&options, spool_wanted);
    if matches!(destination, crate::options::Destination::Kept(_)) && spool.is_none() {
        // The default file lives in the spool directory, which was refused
        // (not ours, not private) or could not be made: the brief lines
        // instead, never a file in a directory the spool would not trust.
        destination = crate::options::Destination::Brief;
        if let Ok(brief) = destination.transport(options.service_info()) {
            transport = brief;
        }
    }
    if options.debug {
        crate::stats::say(format_args!(
            "[crashbox] reports go to {}",
            destination.describe()
        ));
    }
    let last_run = spool.as_ref().map(|s| s.start_run());
    *LAST_RUN.write().unwrap_or_else(PoisonError::into_inner) = last_run;
    let settings = Arc::new(options.settings());
    let (tx, rx) = mpsc::sync_channel(options.queue_capacity);
    let inbox = Inbox::new(rx);
    let worker_inbox = inbox.clone();
    let ledger = Arc::new(InFlight::default());
    let slots = Arc::new(Slots::new(options.aggregation_burst));
    let waker = Waker::new(tx.clone());
    let started = Worker::new(
        settings.clone(),
        transport,
        options.retry_policy(),
        ledger.clone(),
        spool.clone(),
        slots.clone(),
        waker.clone(),
    )
    .and_then(|worker| {
        std::thread::Builder::new()
            .name("crashbox-worker".to_owned())
            .spawn(move || worker.run(worker_inbox))
    });
    let handle = match started {
        Ok(handle) => handle,
        Err(e) => {
            waker.disarm();
            STATE.store(UNINITIALIZED, Ordering::Release);
            return Err(ConfigError::Spawn(e));
        }
    };
    Hub::global().set_max_breadcrumbs(options.max_breadcrumbs);
    let client = Arc::new(Client {
        tx,
        inbox,
        settings,
        spool,
        last_run: last_run.unwrap_or_default(),
        panicked: AtomicBool::new(false),
        panic_flush_timeout: options.panic_flush_timeout,
        ledger,
        slots,
        waker,
        wait_for_panics: local,
        crash: options.crash_message.take().map(|message| {
            CrashNotice::new(message, options.release.as_deref(), destination.describe())
        }),
        panic_places: Mutex::new(Vec::new()),
        panic_hook: options.panic_hook,
    });
    *CLIENT.write().unwrap_or_else(PoisonError::into_inner) = Some(client.clone());
    // `panic_hook` alone decides (there is no cargo feature for it): the hook
    // is installed, or std's panic machinery is learnt so that an
    // application's own hook can call `capture_panic`.
    if options.panic_hook {
        crate::capture::panic::install();
    } else {
        crate::capture::panic::prepare();
    }
    let crash = arm_crash_handler(&options, client.spool.as_deref(), last_run);
    let listener = Listener::register();
    install::set_global(Some(client));
    // Libraries that report through `crashbox-api` reach this client too.
    crate::capture::facade::install();
    STATE.store(INITIALIZED, Ordering::Release);
    Ok(Guard {
        crash,
        shutdown_timeout: options.shutdown_timeout,
        worker: Some(handle),
        _listener: listener,
    })
}

/// Keeps the client installed; dropping it flushes and shuts down.
///
/// The drop waits at most [`Options::shutdown_timeout`] for the worker to
/// deliver what was queued (plus at most half a second to move what a stuck
/// worker left queued to the spool). Whatever was not delivered by then is
/// in the spool for the next run ([`Stats::spooled`](crate::Stats::spooled)),
/// or, without one, counted in
/// [`Stats::dropped_shutdown`](crate::Stats::dropped_shutdown).
#[must_use = "dropping the Guard shuts crashbox down at once"]
#[derive(Debug)]
pub struct Guard {
    /// The signal handler `init` installed, if any (see `crate::crash`).
    crash: Option<crate::crash::Armed>,
    shutdown_timeout: Duration,
    worker: Option<JoinHandle<()>>,
    _listener: Listener,
}

impl Guard {
    /// Waits up to `timeout` for everything captured so far to be handed to
    /// the transport. Same as [`flush`](crate::flush).
    pub fn flush(&self, timeout: Duration) -> bool {
        current().is_none_or(|client| {
            client.say_if_hook_replaced();
            client.flush(timeout)
        })
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        STATE.store(SHUTTING_DOWN, Ordering::Release);
        let client = CLIENT
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let lost_before = STATS.dropped_shutdown.get();
        if let Some(client) = &client {
            client.say_if_hook_replaced();
            let shutdown = |done, deadline| Message::Shutdown { done, deadline };
            let answered = client.request(shutdown, self.shutdown_timeout);
            let grace = deadline_after(SPOOL_GRACE);
            let finishing = deadline_after(WORKER_GRACE);
            if let Some(worker) = self.worker.take() {
                // A worker that answered, or is finishing just as the time
                // ran out, is waited for: it lets go of the spool (and its
                // lock) as it ends, so a later `init` can take over its files.
                while !answered && !worker.is_finished() && Instant::now() < finishing {
                    std::thread::sleep(Duration::from_millis(1));
                }
                if answered || worker.is_finished() {
                    let _ = worker.join();
                }
            }
            // What the worker did not take in (it stopped, or is stuck in
            // `before_send`) goes to the spool; then whatever is still unsettled is
            // counted, and later captures are refused.
            client.spool_queued(grace);
            client.ledger.close();
            client.waker.disarm();
            // Repeats counted in slots after the worker's last window closed.
            STATS.dropped_shutdown.add(client.slots.sweep());
            // Whatever the debug setting, a loss at exit is said once.
            let lost = STATS.dropped_shutdown.get().saturating_sub(lost_before);
            if lost > 0 {
                crate::stats::say(format_args!(
                    "crashbox: {lost} report(s) neither delivered nor spooled: shutdown_timeout ({:?}) ran out{}",
                    self.shutdown_timeout,
                    if client.spool.is_some() {
                        ""
                    } else {
                        " and there is no spool to keep them (see Options::spool)"
                    }
                ));
            }
        }
        // Before the spool (and its run-state file) can close. A record
        // written in a run that ends here was of a signal the process
        // survived: no crash, and the run state says so again.
        if let Some(crash) = self.crash.take() {
            if crash.survived() {
                if let Some(client) = &client {
                    client.forget_crash();
                }
            }
        }
        install::set_global(None);
        *CLIENT.write().unwrap_or_else(PoisonError::into_inner) = None;
        crate::stats::set_debug(false);
        STATE.store(UNINITIALIZED, Ordering::Release);
    }
}

/// Installs the crash handler for `options.crash_signals`, writing into a
/// crash file made in `spool` now; none without a spool (the handler
/// cannot create files) or when the file cannot be made.
fn arm_crash_handler(
    options: &Options,
    spool: Option<&Spool>,
    last_run: Option<LastRun>,
) -> Option<crate::crash::Armed> {
    if options.crash_signals.is_empty() {
        return None;
    }
    let spool = spool?;
    let (crash, path) = spool.create_crash_file().ok()?;
    let files = crate::crash::Files {
        crash,
        path,
        run_state: spool.run_state_fd(),
        consecutive: last_run
            .unwrap_or_default()
            .consecutive_panics
            .saturating_add(1),
    };
    let prologue =
        crate::crash::Prologue::now(options.release.clone(), Some(options.environment.clone()));
    crate::crash::arm(&options.crash_signals, files, &prologue)
}

/// The spool `options` ask for. Without a default directory (no
/// `$XDG_STATE_HOME` or `$HOME`) there is none; a directory that cannot be
/// used or trusted (see [`Spool::open`]) is refused, said once on stderr and
/// counted, and reporting goes on without a spool: an application is better
/// served by reports that may be lost than by none at all.
fn open_spool(options: &Options, wanted: bool) -> Option<Arc<Spool>> {
    if !wanted {
        return None;
    }
    let dir = options
        .spool_dir
        .clone()
        .or_else(crate::spool::default_dir)?;
    match Spool::open(
        dir.clone(),
        options.spool_max_reports,
        options.spool_max_age,
    ) {
        Ok(spool) => Some(Arc::new(spool)),
        Err(e) => {
            STATS.spool_refused.inc();
            crate::stats::say(format_args!(
                "crashbox: not using spool directory {}: {e}; reports are not kept on disk",
                dir.display()
            ));
            None
        }
    }
}
