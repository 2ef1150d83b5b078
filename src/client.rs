//! The global install: one atomic state (log-crate style), the client with
//! its queue to the worker, and the [`Guard`] that shuts it down.
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::capture::Pending;
use crate::collector::Collector;
use crate::options::{ConfigError, Options};
use crate::pipeline::Settings;
use crate::report::ReportId;
use crate::scope::Hub;
use crate::stats::STATS;
use crate::worker::{Message, Worker};

const UNINITIALIZED: u8 = 0;
const INITIALIZING: u8 = 1;
const INITIALIZED: u8 = 2;
const SHUTTING_DOWN: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(UNINITIALIZED);
static CLIENT: RwLock<Option<Arc<Client>>> = RwLock::new(None);
/// How many things would receive a capture: the installed client plus live
/// test captures. Zero makes every capture a single load and a return.
static RECEIVERS: AtomicUsize = AtomicUsize::new(0);

/// Whether any capture could be received. The no-client fast path.
#[inline(always)]
pub(crate) fn is_active() -> bool {
    RECEIVERS.load(Ordering::Relaxed) != 0
}

/// Counts a receiver for as long as the value lives.
pub(crate) struct Receiver(());

impl Receiver {
    pub(crate) fn register() -> Receiver {
        RECEIVERS.fetch_add(1, Ordering::SeqCst);
        Receiver(())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        RECEIVERS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The installed client, if any.
pub(crate) fn current() -> Option<Arc<Client>> {
    if STATE.load(Ordering::Acquire) != INITIALIZED {
        return None;
    }
    CLIENT
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// The live client's processing settings, if a client is installed.
pub(crate) fn current_settings() -> Option<Arc<Settings>> {
    current().map(|c| c.settings.clone())
}

pub(crate) struct Client {
    tx: SyncSender<Message>,
    settings: Arc<Settings>,
    /// Set when shutdown stopped waiting: the worker counts what it still holds as dropped.
    abandoned: Arc<AtomicBool>,
}

impl Client {
    pub(crate) fn enqueue(&self, pending: Pending) -> Option<ReportId> {
        let id = pending.id;
        match self.tx.try_send(Message::Report(Box::new(pending))) {
            Ok(()) => Some(id),
            Err(TrySendError::Full(_)) => {
                STATS.dropped_queue_full.inc();
                None
            }
            Err(TrySendError::Disconnected(_)) => {
                STATS.dropped_shutdown.inc();
                None
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
        let deadline = Instant::now() + timeout;
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
/// client is already installed, or when the worker thread cannot start.
pub fn init(mut options: Options) -> Result<Guard, ConfigError> {
    options.validate()?;
    let transport = match options.transport.take() {
        Some(transport) => transport,
        None => {
            let collector = match options.collector.as_deref() {
                Some(s) => Collector::parse(s)?,
                None => Collector::Stderr,
            };
            crate::transport::for_collector(&collector, options.service_info())?
        }
    };
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
    let settings = Arc::new(Settings::from_options(&options));
    let (tx, rx) = mpsc::sync_channel(options.queue_capacity);
    let abandoned = Arc::new(AtomicBool::new(false));
    let worker = Worker::new(
        settings.clone(),
        transport,
        options.retry_policy(),
        abandoned.clone(),
    );
    let handle = match std::thread::Builder::new()
        .name("crashbox-worker".to_owned())
        .spawn(move || worker.run(rx))
    {
        Ok(handle) => handle,
        Err(e) => {
            STATE.store(UNINITIALIZED, Ordering::Release);
            return Err(ConfigError::Spawn(e));
        }
    };
    Hub::global().set_max_breadcrumbs(options.max_breadcrumbs);
    *CLIENT.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(Client {
        tx,
        settings,
        abandoned,
    }));
    #[cfg(feature = "panic")]
    if options.panic_hook {
        crate::capture::panic::install();
    }
    let receiver = Receiver::register();
    STATE.store(INITIALIZED, Ordering::Release);
    Ok(Guard {
        shutdown_timeout: options.shutdown_timeout,
        worker: Some(handle),
        _receiver: receiver,
    })
}

/// Keeps the client installed; dropping it flushes and shuts down.
///
/// The drop waits at most [`Options::shutdown_timeout`] for the worker to
/// deliver what was queued; whatever it could not deliver by then is counted
/// in [`Stats::dropped_shutdown`](crate::Stats::dropped_shutdown).
#[must_use = "dropping the Guard shuts crashbox down at once"]
#[derive(Debug)]
pub struct Guard {
    shutdown_timeout: Duration,
    worker: Option<JoinHandle<()>>,
    _receiver: Receiver,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Receiver")
    }
}

impl Guard {
    /// Waits up to `timeout` for everything captured so far to be handed to
    /// the transport. Same as [`flush`](crate::flush).
    pub fn flush(&self, timeout: Duration) -> bool {
        crate::flush(timeout)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        STATE.store(SHUTTING_DOWN, Ordering::Release);
        let client = CLIENT
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(client) = client {
            let shutdown = |done, deadline| Message::Shutdown { done, deadline };
            if client.request(shutdown, self.shutdown_timeout) {
                if let Some(worker) = self.worker.take() {
                    let _ = worker.join();
                }
            } else {
                client.abandoned.store(true, Ordering::SeqCst);
            }
        }
        STATE.store(UNINITIALIZED, Ordering::Release);
    }
}
