//! Error storms: aggregation of repeats, and the client-side rate limit.
//!
//! Repeats of one error fold by their fold key: the fingerprint (`group`)
//! plus the exception types and the messages with their variable parts
//! (numbers, hex, ids) normalised (see [`fold_key`]), so two errors that
//! share a fingerprint but say different things are never folded into one
//! another's count.
//!
//! Within a window (60 s by default) the first `burst` reports of a fold key
//! (10 by default) are sent as they come, `count` 1 each, and later ones are
//! only counted. When the window ends (or on `flush` or shutdown) one report
//! goes out for those: a copy of the window's first with a new id, the time
//! the window closed, and `count` = the repeats. Of `n` repeats, that report
//! stands for one and the other `n - 1` are counted in `Stats::aggregated`,
//! so every capture ends in exactly one counter.
//!
//! Repeats are recognised twice over. On the caller's thread, before
//! anything is queued, by raw key (kind, exception types, messages
//! normalised as above, a message capture's text as it is, and the stack's
//! addresses; within one process, one raw key yields one fold key):
//! the first capture of a key claims a slot and is queued, the next
//! `burst - 1` pass through the slot and are queued as well, and later ones
//! add one to the slot with a compare-and-swap and go no further. That keeps
//! a storm's cost on the caller's thread to the stack walk, and off the queue
//! and the worker, even while the worker is still busy with the first
//! report. On the worker, by fold key, after processing: repeats that took
//! the normal path (another call site with the same fold key, a slot taken
//! by another key) are folded there once the window's burst is used up. The
//! worker adopts a slot when it receives the capture that claimed it, and
//! frees it when the window closes, adding what it absorbed (its count
//! beyond the captures that passed through) to the window's repeats.
mod keys;
mod rate;
mod slots;
mod windows;

#[cfg(test)]
use keys::Mix;
pub(crate) use keys::{fold_key, located_key, raw_key};
pub(crate) use rate::RateLimiter;
pub(crate) use slots::{Claim, Slots};
#[cfg(test)]
use windows::MAX_WINDOWS;
pub(crate) use windows::{Aggregator, Closed, Offer, WindowRef};

#[cfg(test)]
mod tests;
