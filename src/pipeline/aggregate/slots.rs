//! The caller-side table of slots that counts repeats with one
//! compare-and-swap, before anything is queued.
use std::sync::atomic::{AtomicU64, Ordering};

/// Caller-side slots; a raw key maps to one by its low bits.
const SLOTS: usize = 256;
const COUNT_MASK: u64 = u32::MAX as u64;

/// The caller-side fast path: per slot, a 32-bit tag of the raw key that
/// claimed it (never zero) and a 32-bit count of the captures that came
/// after the claim: the first `passes` of them went to the worker, the rest
/// were absorbed.
pub(crate) struct Slots {
    slots: [AtomicU64; SLOTS],
    pub(super) passes: u64,
}

/// The slot (from the key's low 8 bits) and the tag (from the other 56).
fn slot_of(key: u64) -> (usize, u64) {
    let tag = ((key >> 32) ^ ((key >> 8) & u64::from(u32::MAX >> 8))) | (1 << 31);
    ((key as usize) % SLOTS, tag)
}

/// What a capture found in its slot.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Its key's first capture: it claimed the slot, and goes to the worker.
    Claimed,
    /// One of the burst after the first: counted in the slot as passed, and
    /// goes to the worker on the normal path.
    Passed,
    /// A repeat beyond the burst: counted in the slot, nothing more to do.
    Absorbed,
    /// Another key holds the slot (or its count is full): the normal path.
    Busy,
}

impl Slots {
    /// `burst`: the captures of a key per window that go to the worker
    /// (0 counts as 1: the first always does).
    pub(crate) fn new(burst: u32) -> Self {
        Slots {
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
            passes: u64::from(burst.max(1) - 1),
        }
    }

    pub(crate) fn enter(&self, key: u64) -> Claim {
        let (index, tag) = slot_of(key);
        let slot = &self.slots[index];
        let mut value = slot.load(Ordering::Relaxed);
        loop {
            let next = if value == 0 {
                tag << 32
            } else if value >> 32 == tag && value & COUNT_MASK != COUNT_MASK {
                value + 1
            } else {
                return Claim::Busy;
            };
            match slot.compare_exchange_weak(value, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) if value == 0 => return Claim::Claimed,
                Ok(_) if value & COUNT_MASK < self.passes => return Claim::Passed,
                Ok(_) => return Claim::Absorbed,
                Err(now) => value = now,
            }
        }
    }

    /// The repeats a slot's count stands for: those that did not pass through.
    fn absorbed(&self, value: u64) -> u64 {
        (value & COUNT_MASK).saturating_sub(self.passes)
    }

    /// Frees the key's slot, returning the repeats it absorbed.
    pub(crate) fn release(&self, key: u64) -> u64 {
        let (index, tag) = slot_of(key);
        let slot = &self.slots[index];
        let mut value = slot.load(Ordering::Acquire);
        loop {
            if value >> 32 != tag {
                return 0;
            }
            match slot.compare_exchange_weak(value, 0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return self.absorbed(value),
                Err(now) => value = now,
            }
        }
    }

    /// Frees every slot, returning the repeats they absorbed (at shutdown).
    pub(crate) fn sweep(&self) -> u64 {
        self.slots
            .iter()
            .map(|slot| self.absorbed(slot.swap(0, Ordering::AcqRel)))
            .sum()
    }
}
