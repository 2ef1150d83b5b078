//! The queue between the client and the worker: what it carries, and the
//! receiving end the two share.
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::record::{Captured, Pending};

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
pub(super) fn receive(
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
