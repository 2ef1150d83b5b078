//! The transport on a thread of its own: a collector that never answers
//! holds up only the batch it was handed, never the worker, so flushes,
//! shutdown and the spool go on while a request hangs.
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
    carrier: Carrier,
    waker: Waker,
    /// How many reports (from the front of the outbox) are on their way.
    in_flight: Option<usize>,
    /// When they were handed over.
    sent_at: Option<Instant>,
    max_batch: usize,
}

/// Where batches go.
enum Carrier {
    /// The transport, its thread not started yet (the worker starts it, so
    /// `init` does not pay for it).
    Waiting(Box<dyn Transport>),
    /// The transport's thread.
    Thread {
        batches: SyncSender<Vec<Report>>,
        outcomes: Receiver<(Vec<Report>, Outcome)>,
        _thread: JoinHandle<()>,
    },
    /// No thread could be started: batches are sent on the worker.
    Inline {
        transport: Box<dyn Transport>,
        done: Option<(Vec<Report>, Outcome)>,
    },
    /// Between two states.
    Gone,
}

/// Sends a batch, a panicking transport caught.
fn send(transport: &mut dyn Transport, batch: &[Report]) -> Outcome {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| transport.send(batch)))
        .unwrap_or_else(|_| Err(TransportError::Permanent("the transport panicked".into())))
}

impl Courier {
    /// A courier for `transport`; its thread starts with [`start`](Self::start).
    pub(super) fn new(transport: Box<dyn Transport>, waker: Waker) -> Self {
        let max_batch =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| transport.max_batch()))
                .unwrap_or(1)
                .clamp(1, MAX_BATCH);
        Courier {
            carrier: Carrier::Waiting(transport),
            waker,
            in_flight: None,
            sent_at: None,
            max_batch,
        }
    }

    /// Starts the transport's thread (on the worker, once); without one,
    /// batches are sent on the worker.
    pub(super) fn start(&mut self) {
        if !matches!(self.carrier, Carrier::Waiting(_)) {
            return;
        }
        let Carrier::Waiting(transport) = std::mem::replace(&mut self.carrier, Carrier::Gone)
        else {
            return;
        };
        let (batches, batch_rx) = mpsc::sync_channel::<Vec<Report>>(1);
        let (outcome_tx, outcomes) = mpsc::sync_channel(1);
        // Taken by the thread once it runs; taken back if it cannot start.
        let handover = Arc::new(Mutex::new(Some(transport)));
        let theirs = handover.clone();
        let waker = self.waker.clone();
        let spawned = std::thread::Builder::new()
            .name("crashbox-sender".to_owned())
            .spawn(move || {
                // Captures and flushes from inside a transport must not
                // wait for the worker, which waits for this thread.
                let _reentry = crate::reentry::Reentry::enter();
                super::mark_worker_thread();
                let taken = theirs.lock().unwrap_or_else(PoisonError::into_inner).take();
                let Some(mut transport) = taken else {
                    return;
                };
                for batch in batch_rx {
                    let outcome = send(transport.as_mut(), &batch);
                    if outcome_tx.send((batch, outcome)).is_err() {
                        return;
                    }
                    waker.wake();
                }
            });
        self.carrier = match spawned {
            Ok(thread) => Carrier::Thread {
                batches,
                outcomes,
                _thread: thread,
            },
            Err(_) => match handover
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
            {
                Some(transport) => Carrier::Inline {
                    transport,
                    done: None,
                },
                None => Carrier::Gone,
            },
        };
    }

    /// The most reports the transport takes at once.
    pub(super) fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// How many reports are on their way, if a batch is.
    pub(super) fn in_flight(&self) -> Option<usize> {
        self.in_flight
    }

    /// How long the batch on its way has been, if one is.
    pub(super) fn in_flight_for(&self) -> Option<Duration> {
        self.sent_at.map(|t| t.elapsed())
    }

    /// Hands a batch over; back when it cannot be sent at all.
    pub(super) fn dispatch(&mut self, batch: Vec<Report>) -> Result<(), Vec<Report>> {
        debug_assert!(self.in_flight.is_none());
        self.start();
        let n = batch.len();
        match &mut self.carrier {
            Carrier::Thread { batches, .. } => match batches.try_send(batch) {
                Ok(()) => {}
                Err(TrySendError::Full(batch) | TrySendError::Disconnected(batch)) => {
                    return Err(batch)
                }
            },
            Carrier::Inline { transport, done } => {
                let outcome = send(transport.as_mut(), &batch);
                *done = Some((batch, outcome));
            }
            Carrier::Waiting(_) | Carrier::Gone => return Err(batch),
        }
        self.in_flight = Some(n);
        self.sent_at = Some(Instant::now());
        Ok(())
    }

    /// How many reports were in flight, the batch back and its outcome,
    /// waiting for it up to `wait` (`None` when nothing is in flight or it
    /// is not done yet). A batch the transport's thread never handed back
    /// comes back empty.
    pub(super) fn outcome(&mut self, wait: Duration) -> Option<(usize, Vec<Report>, Outcome)> {
        let n = self.in_flight?;
        let got = match &mut self.carrier {
            Carrier::Inline { done, .. } => done.take().unwrap_or_else(|| (Vec::new(), lost())),
            Carrier::Thread { outcomes, .. } if wait.is_zero() => match outcomes.try_recv() {
                Ok(got) => got,
                Err(TryRecvError::Empty) => return None,
                Err(TryRecvError::Disconnected) => (Vec::new(), lost()),
            },
            Carrier::Thread { outcomes, .. } => match outcomes.recv_timeout(wait) {
                Ok(got) => got,
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => (Vec::new(), lost()),
            },
            Carrier::Waiting(_) | Carrier::Gone => (Vec::new(), lost()),
        };
        self.in_flight = None;
        self.sent_at = None;
        Some((n, got.0, got.1))
    }
}

/// The transport's thread ended (it cannot, but a batch is never left hanging).
fn lost() -> Outcome {
    Err(TransportError::Permanent(
        "the transport's thread ended".into(),
    ))
}
