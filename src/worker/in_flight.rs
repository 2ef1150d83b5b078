//! What became of every report the client handed to the worker.
use std::sync::atomic::{AtomicU64, Ordering};

use crate::stats::{Counter, STATS};

/// What became of every report the client handed over is counted exactly
/// once: while a report is on its way it is held here (in memory, or in the
/// spool), and it leaves with one counter of [`Stats`](crate::Stats). When
/// shutdown closes the ledger, whatever it still holds is counted at once
/// (lost if only in memory, kept if in the spool) and nothing more comes in.
///
/// One atomic word holds it all (reports in memory in the low 31 bits, in
/// the spool in the next 31, and the closed flag on top), so the caller's
/// thread takes a report in with one compare-and-swap and no lock.
#[derive(Debug, Default)]
pub(crate) struct InFlight(AtomicU64);

const IN_MEMORY: u64 = 1;
const ON_DISK: u64 = 1 << 32;
const COUNT_MASK: u64 = (1 << 31) - 1;
const CLOSED: u64 = 1 << 63;

fn unit(on_disk: bool) -> u64 {
    if on_disk {
        ON_DISK
    } else {
        IN_MEMORY
    }
}

fn held(state: u64, on_disk: bool) -> u64 {
    if on_disk {
        (state >> 32) & COUNT_MASK
    } else {
        state & COUNT_MASK
    }
}

impl InFlight {
    fn update(&self, f: impl FnMut(u64) -> Option<u64>) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, f)
            .is_ok()
    }

    /// Takes a report in; `false` once closed (the caller counts its fate).
    pub(crate) fn admit(&self, on_disk: bool) -> bool {
        self.update(|s| {
            (s & CLOSED == 0 && held(s, on_disk) < COUNT_MASK).then(|| s + unit(on_disk))
        })
    }

    /// Lets a report go under `counter`; nothing happens once closed (it was counted then).
    pub(crate) fn settle(&self, on_disk: bool, counter: Option<&Counter>) {
        let taken = self.update(|s| (held(s, on_disk) > 0).then(|| s - unit(on_disk)));
        if let (true, Some(counter)) = (taken, counter) {
            counter.inc();
        }
    }

    /// A report held in memory was written to the spool.
    pub(super) fn to_disk(&self) {
        self.update(|s| (held(s, false) > 0).then(|| s - IN_MEMORY + ON_DISK));
    }

    /// A report held in the spool is to be held in memory only (its file
    /// removed); `false` once closed (the file was counted as spooled: keep it).
    pub(super) fn to_memory(&self) -> bool {
        self.update(|s| (held(s, true) > 0).then(|| s - ON_DISK + IN_MEMORY))
    }

    /// Lets up to `n` reports go under `counter` at once.
    pub(super) fn settle_many(&self, on_disk: bool, n: u64, counter: &Counter) {
        if n == 0 {
            return;
        }
        let mut taken = 0;
        let _ = self.update(|s| {
            taken = n.min(held(s, on_disk));
            (taken > 0).then(|| s - taken * unit(on_disk))
        });
        counter.add(taken);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.0.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Counts what is still held (dropped if in memory, spooled if on disk)
    /// and takes nothing more.
    pub(crate) fn close(&self) {
        let state = self.0.swap(CLOSED, Ordering::AcqRel);
        if state & CLOSED == 0 {
            STATS.dropped_shutdown.add(held(state, false));
            STATS.spooled.add(held(state, true));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_counts_each_report_once() {
        let before = crate::stats();
        let ledger = InFlight::default();
        assert!(ledger.admit(false));
        assert!(ledger.admit(false));
        assert!(ledger.admit(true));
        ledger.to_disk();
        ledger.settle(true, Some(&STATS.sent));
        ledger.settle(false, Some(&STATS.sent));
        ledger.close();
        assert!(ledger.is_closed());
        assert!(!ledger.admit(false), "closed: nothing more comes in");
        ledger.settle(true, Some(&STATS.sent));
        let after = crate::stats();
        // Unit tests share the counters: compare at least what this ledger added.
        assert!(after.sent >= before.sent + 2);
        assert!(after.spooled > before.spooled);
        assert_eq!(held(ledger.0.load(Ordering::Acquire), false), 0);
        assert_eq!(held(ledger.0.load(Ordering::Acquire), true), 0);
    }
}
