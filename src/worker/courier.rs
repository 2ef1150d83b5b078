//! The transport on a thread of its own: a collector that never answers
//! holds up only the batch it was handed, never the worker, so flushes,
//! shutdown and the spool go on while a request hangs.
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Message;
use crate::report::Report;
use crate::transport::{Transport, TransportError, MAX_BATCH};

/// Wakes the worker up when something it waits for happened off its
/// thread (a batch delivered, debug info loaded): a [`Message::Wake`] on
/// the queue. Disarmed at shutdown, so nothing holds the queue open.
#[derive(Clone, Default)]
pub(crate) struct Waker(Arc<Mutex<Option<SyncSender<Message>>>>);

impl Waker {
    pub(crate) fn new(tx: SyncSender<Message>) -> Self {
        Waker(Arc::new(Mutex::new(Some(tx))))
    }

    /// Wakes the worker (a full queue wakes it anyway).
    pub(crate) fn wake(&self) {
        if let Some(tx) = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            let _ = tx.try_send(Message::Wake);
        }
    }

    /// Lets go of the queue for good.
    pub(crate) fn disarm(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// What became of a batch.
pub(super) type Outcome = Result<(), TransportError>;

/// Hands batches to the transport's thread, one at a time.
pub(super) struct Courier {
    batches: SyncSender<Vec<Report>>,
    outcomes: Receiver<(Vec<Report>, Outcome)>,
    /// How many reports (from the front of the outbox) are on their way.
    in_flight: Option<usize>,
    max_batch: usize,
    _thread: JoinHandle<()>,
}

impl Courier {
    /// Starts the transport's thread.
    pub(super) fn start(mut transport: Box<dyn Transport>, waker: Waker) -> std::io::Result<Self> {
        let max_batch =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| transport.max_batch()))
                .unwrap_or(1)
                .clamp(1, MAX_BATCH);
        let (batches, batch_rx) = mpsc::sync_channel::<Vec<Report>>(1);
        let (outcome_tx, outcomes) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("crashbox-sender".to_owned())
            .spawn(move || {
                // Captures and flushes from inside a transport must not
                // wait for the worker, which waits for this thread.
                let _reentry = crate::reentry::Reentry::enter();
                super::mark_worker_thread();
                for batch in batch_rx {
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        transport.send(&batch)
                    }))
                    .unwrap_or_else(|_| {
                        Err(TransportError::Permanent("the transport panicked".into()))
                    });
                    if outcome_tx.send((batch, outcome)).is_err() {
                        return;
                    }
                    waker.wake();
                }
            })?;
        Ok(Courier {
            batches,
            outcomes,
            in_flight: None,
            max_batch,
            _thread: thread,
        })
    }

    /// The most reports the transport takes at once.
    pub(super) fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// How many reports are on their way, if a batch is.
    pub(super) fn in_flight(&self) -> Option<usize> {
        self.in_flight
    }

    /// Hands a batch over; back when the transport's thread is gone.
    pub(super) fn dispatch(&mut self, batch: Vec<Report>) -> Result<(), Vec<Report>> {
        debug_assert!(self.in_flight.is_none());
        let n = batch.len();
        match self.batches.try_send(batch) {
            Ok(()) => {
                self.in_flight = Some(n);
                Ok(())
            }
            Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) => Err(batch),
        }
    }

    /// How many reports were in flight, the batch back and its outcome,
    /// waiting for it up to `wait`
    /// (`None` when nothing is in flight or it is not done yet). A batch the
    /// transport's thread never handed back comes back empty.
    pub(super) fn outcome(&mut self, wait: Duration) -> Option<(usize, Vec<Report>, Outcome)> {
        let n = self.in_flight?;
        let got = if wait.is_zero() {
            match self.outcomes.try_recv() {
                Ok(got) => got,
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => (Vec::new(), lost()),
            }
        } else {
            match self.outcomes.recv_timeout(wait) {
                Ok(got) => got,
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => (Vec::new(), lost()),
            }
        };
        self.in_flight = None;
        Some((n, got.0, got.1))
    }
}

/// The transport's thread ended (it cannot, but a batch is never left hanging).
fn lost() -> Outcome {
    Err(TransportError::Permanent(
        "the transport's thread ended".into(),
    ))
}
