//! The background thread: processes captures, batches them and hands them to
//! the transport, with a bounded retry; answers flush and shutdown requests.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use crate::capture::Pending;
use crate::pipeline::{Processor, Settings};
use crate::report::Report;
use crate::stats::STATS;
use crate::transport::{Transport, TransportError};

/// Reports handed to the transport in one call, at most.
pub const MAX_BATCH: usize = 64;
/// Attempts per batch for a retryable failure.
const ATTEMPTS: u32 = 3;
/// First pause between attempts; doubles after each.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

pub(crate) enum Message {
    Report(Box<Pending>),
    /// Deliver everything queued before this, then answer.
    Flush(SyncSender<()>),
    /// Deliver everything queued, answer, and stop.
    Shutdown(SyncSender<()>),
}

pub(crate) struct Worker {
    processor: Processor,
    transport: Box<dyn Transport>,
    batch: Vec<Report>,
    abandoned: Arc<AtomicBool>,
}

impl Worker {
    pub(crate) fn new(
        settings: Arc<Settings>,
        transport: Box<dyn Transport>,
        abandoned: Arc<AtomicBool>,
    ) -> Self {
        Worker {
            processor: Processor::new(settings),
            transport,
            batch: Vec::with_capacity(MAX_BATCH),
            abandoned,
        }
    }

    pub(crate) fn run(mut self, rx: Receiver<Message>) {
        // A panic on this thread (a transport's, a before_send's) is caught and
        // counted where it happens; reporting it would feed the worker its own failures.
        let _reentry = crate::capture::Reentry::enter();
        // Gather the machine facts now, off every caller's thread.
        let _ = crate::context::get();
        while let Ok(message) = rx.recv() {
            let mut next = Some(message);
            // Take whatever else is already queued, so one transport call carries many reports.
            while let Some(message) = next.take() {
                match message {
                    Message::Report(pending) => {
                        self.process(*pending);
                        if self.batch.len() >= MAX_BATCH {
                            self.deliver();
                        }
                    }
                    Message::Flush(done) => {
                        self.deliver();
                        let _ = done.try_send(());
                    }
                    Message::Shutdown(done) => {
                        while let Ok(message) = rx.try_recv() {
                            if let Message::Report(pending) = message {
                                self.process(*pending);
                                if self.batch.len() >= MAX_BATCH {
                                    self.deliver();
                                }
                            }
                        }
                        self.deliver();
                        let _ = done.try_send(());
                        return;
                    }
                }
                match rx.try_recv() {
                    Ok(message) => next = Some(message),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => {}
                }
            }
            self.deliver();
        }
        self.deliver();
    }

    fn process(&mut self, pending: Pending) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.processor.process(pending)
        }));
        match outcome {
            Ok(Some(report)) if self.abandoned.load(Ordering::SeqCst) => {
                drop(report);
                STATS.dropped_shutdown.inc();
            }
            Ok(Some(report)) => self.batch.push(report),
            Ok(None) => {}
            // A bug in processing loses this report only, and says so.
            Err(_) => STATS.dropped_transport.inc(),
        }
    }

    fn deliver(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let count = self.batch.len() as u64;
        if self.abandoned.load(Ordering::SeqCst) {
            // Shutdown stopped waiting for us: nobody will see these delivered.
            STATS.dropped_shutdown.add(count);
            self.batch.clear();
            return;
        }
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.transport.send(&self.batch)
            }))
            .unwrap_or_else(|_| Err(TransportError::Permanent("the transport panicked".into())));
            match result {
                Ok(()) => {
                    STATS.sent.add(count);
                    self.batch.clear();
                    return;
                }
                Err(e)
                    if e.is_retryable()
                        && attempt < ATTEMPTS
                        && !self.abandoned.load(Ordering::SeqCst) =>
                {
                    STATS.transport_retries.inc();
                    std::thread::sleep(backoff);
                    backoff *= 2;
                }
                Err(_) => break,
            }
        }
        if self.abandoned.load(Ordering::SeqCst) {
            STATS.dropped_shutdown.add(count);
        } else {
            STATS.dropped_transport.add(count);
        }
        self.batch.clear();
    }
}
