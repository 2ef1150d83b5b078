//! A custom transport as the options keep it, shared by their clones.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};

use crate::report::Report;
use crate::transport::{Transport, TransportError};

/// A custom transport as [`Options`] keep it: one instance, shared by the
/// options' clones and by the clients started from them, which use it one
/// call at a time.
#[derive(Clone)]
pub(crate) struct SharedTransport {
    transport: Arc<Mutex<Box<dyn Transport>>>,
    /// The last [`Transport::max_batch`] read (1 until one is): the answer
    /// while the transport is busy in a send for an earlier client, so that
    /// `init` never waits for it.
    max_batch: Arc<AtomicUsize>,
}

impl SharedTransport {
    pub(super) fn new(transport: Box<dyn Transport>) -> Self {
        SharedTransport {
            transport: Arc::new(Mutex::new(transport)),
            max_batch: Arc::new(AtomicUsize::new(1)),
        }
    }

    /// This shared transport, as the worker takes transports.
    pub(crate) fn into_boxed(self) -> Box<dyn Transport> {
        Box::new(self)
    }

    /// The transport; one that panicked in a call is still used, as an
    /// unshared one would be.
    fn lock(&self) -> MutexGuard<'_, Box<dyn Transport>> {
        self.transport
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Transport for SharedTransport {
    fn send(&mut self, reports: &[Report]) -> Result<(), TransportError> {
        self.lock().send(reports)
    }

    fn max_batch(&self) -> usize {
        let transport = match self.transport.try_lock() {
            Ok(transport) => transport,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return self.max_batch.load(Ordering::Relaxed),
        };
        let max = transport.max_batch();
        self.max_batch.store(max, Ordering::Relaxed);
        max
    }
}
