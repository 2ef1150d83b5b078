//! Error storms: aggregation of repeats by fingerprint, and the client-side
//! rate limit.
//!
//! Within a window (60 s by default) the first report of a fingerprint is
//! sent at once and its repeats are only counted. When the window ends (or
//! on `flush` or shutdown) one report goes out for them: a copy of the first
//! with a new id, the time the window closed, and `count` = the repeats. Of
//! `n` repeats, that report stands for one and the other `n - 1` are counted
//! in `Stats::aggregated`, so every capture ends in exactly one counter.
//!
//! Repeats are recognised twice over. On the caller's thread, before
//! anything is queued, by raw key (kind, exception types, a message's text,
//! and the stack's addresses: within one process, one raw key always yields
//! one fingerprint): the first capture of a key claims a slot and is queued;
//! later ones add one to the slot with a compare-and-swap and go no further.
//! That keeps a storm's cost on the caller's thread to the stack walk, and
//! off the queue and the worker, even while the worker is still busy with the
//! first report. On the worker, by fingerprint, after processing: repeats
//! that took the normal path (another call site with the same fingerprint, a
//! slot taken by another key) are folded there. The worker adopts a slot
//! when it receives the capture that claimed it, and frees it when the
//! window closes, adding its count to the window's repeats.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fingerprint::Fnv;
use crate::report::{ExceptionInfo, Kind, Report, ReportId};

/// Fingerprints tracked at once (each keeps a copy of its first report);
/// beyond it the oldest window closes early.
pub(crate) const MAX_GROUPS: usize = 256;
/// Raw keys remembered for folding repeats without processing them.
const MAX_RAW_KEYS: usize = 4096;
/// Caller-side slots; a raw key maps to one by its low bits.
const SLOTS: usize = 256;
const COUNT_MASK: u64 = u32::MAX as u64;

/// The raw key of a capture, computed on the caller's thread.
pub(crate) fn raw_key(
    kind: Kind,
    message: &str,
    exceptions: &[ExceptionInfo],
    addresses: &[usize],
) -> u64 {
    let mut h = Fnv::new().bytes(&[kind as u8]);
    if kind == Kind::Message {
        h = h.field(message);
    }
    for e in exceptions {
        h = h.field(&e.ty);
    }
    let mut key = h.finish();
    for &address in addresses {
        key = (key ^ address as u64)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
    key
}

/// The caller-side fast path: per slot, a 32-bit tag of the raw key that
/// claimed it (never zero) and a 32-bit count of the repeats it absorbed.
pub(crate) struct Slots([AtomicU64; SLOTS]);

impl Default for Slots {
    fn default() -> Self {
        Slots(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

/// The slot (from the key's low 8 bits) and the tag (from the other 56).
fn slot_of(key: u64) -> (usize, u64) {
    let tag = ((key >> 32) ^ ((key >> 8) & u64::from(u32::MAX >> 8))) | (1 << 31);
    ((key as usize) % SLOTS, tag)
}

/// What a capture found in its slot.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// Its key's first capture: it claimed the slot, and goes to the worker.
    Claimed,
    /// A repeat: counted in the slot, nothing more to do.
    Absorbed,
    /// Another key holds the slot (or its count is full): the normal path.
    Busy,
}

impl Slots {
    pub(crate) fn enter(&self, key: u64) -> Entry {
        let (index, tag) = slot_of(key);
        let slot = &self.0[index];
        let mut value = slot.load(Ordering::Relaxed);
        loop {
            let next = if value == 0 {
                tag << 32
            } else if value >> 32 == tag && value & COUNT_MASK != COUNT_MASK {
                value + 1
            } else {
                return Entry::Busy;
            };
            match slot.compare_exchange_weak(value, next, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) if value == 0 => return Entry::Claimed,
                Ok(_) => return Entry::Absorbed,
                Err(now) => value = now,
            }
        }
    }

    /// Frees the key's slot, returning the repeats it absorbed.
    pub(crate) fn release(&self, key: u64) -> u64 {
        let (index, tag) = slot_of(key);
        let slot = &self.0[index];
        let mut value = slot.load(Ordering::Acquire);
        loop {
            if value >> 32 != tag {
                return 0;
            }
            match slot.compare_exchange_weak(value, 0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return value & COUNT_MASK,
                Err(now) => value = now,
            }
        }
    }

    /// Frees every slot, returning the repeats they held (at shutdown).
    pub(crate) fn sweep(&self) -> u64 {
        self.0
            .iter()
            .map(|slot| slot.swap(0, Ordering::AcqRel) & COUNT_MASK)
            .sum()
    }
}

struct Group {
    window_end: Instant,
    /// The window's first report, copied for the report that closes it.
    first: Report,
    /// Repeats that reached the worker, still held in the ledger (in memory).
    held: u64,
    /// One repeat's spool file (a panic's), kept so that a repeat survives
    /// the process dying before the window closes; held in the ledger on disk.
    held_file: Option<PathBuf>,
    /// Raw keys whose slots this group adopted.
    slots: Vec<u64>,
}

/// What became of an offered report.
pub(crate) enum Offer {
    /// The first of its window: send it now.
    Send(Box<Report>, Option<PathBuf>),
    /// A repeat, held in its window; `discard`: its spool file, no longer
    /// needed (the repeat is held in memory from now on).
    Folded { discard: Option<PathBuf> },
}

/// A closed window: its report (a copy of the first, carrying the count),
/// and the repeats it stands for.
pub(crate) struct Closed {
    pub report: Report,
    /// Repeats held in the ledger in memory.
    pub held: u64,
    /// A repeat held in the ledger with this spool file.
    pub held_file: Option<PathBuf>,
    /// Repeats counted in slots, never in the ledger.
    pub absorbed: u64,
}

/// The worker's side of aggregation.
pub(crate) struct Aggregator {
    window: Duration,
    groups: HashMap<u64, Group>,
    raw: HashMap<u64, u64>,
    slots: Arc<Slots>,
    ready: Vec<Closed>,
}

impl Aggregator {
    pub(crate) fn new(window: Duration, slots: Arc<Slots>) -> Self {
        Aggregator {
            window,
            groups: HashMap::new(),
            raw: HashMap::new(),
            slots,
            ready: Vec::new(),
        }
    }

    /// Folds a repeat known by its raw key, without processing it; `false`
    /// when it must be processed (unknown key, or its window is over).
    pub(crate) fn fold_raw(&mut self, key: u64, now: Instant) -> bool {
        let Some(group) = self
            .raw
            .get(&key)
            .and_then(|group_key| self.groups.get_mut(group_key))
        else {
            return false;
        };
        if now >= group.window_end {
            return false;
        }
        group.held += 1;
        true
    }

    /// `claimed`: the capture claimed its raw key's slot, which its group adopts.
    pub(crate) fn offer(
        &mut self,
        report: Report,
        spool_file: Option<PathBuf>,
        raw_key: Option<u64>,
        claimed: bool,
        now: Instant,
    ) -> Offer {
        if self.window.is_zero() {
            return Offer::Send(Box::new(report), spool_file);
        }
        let group_key = u64::from_str_radix(&report.group, 16).unwrap_or(0);
        if let Some(key) = raw_key {
            if self.raw.len() >= MAX_RAW_KEYS && !self.raw.contains_key(&key) {
                self.raw.clear();
            }
            self.raw.insert(key, group_key);
        }
        if self
            .groups
            .get(&group_key)
            .is_some_and(|g| now >= g.window_end)
        {
            self.close(group_key);
        }
        let adopted = match raw_key {
            Some(key) if claimed => vec![key],
            _ => Vec::new(),
        };
        match self.groups.get_mut(&group_key) {
            Some(group) => {
                // A slot is claimed by one capture at a time: a group holds
                // each at most once, so at most all 256.
                group.slots.extend(adopted);
                match spool_file {
                    Some(path) if group.held_file.is_none() => {
                        group.held_file = Some(path);
                        Offer::Folded { discard: None }
                    }
                    discard => {
                        group.held += 1;
                        Offer::Folded { discard }
                    }
                }
            }
            None => {
                if self.groups.len() >= MAX_GROUPS {
                    let oldest = self
                        .groups
                        .iter()
                        .min_by_key(|(_, g)| g.window_end)
                        .map(|(k, _)| *k);
                    if let Some(oldest) = oldest {
                        self.close(oldest);
                    }
                }
                self.groups.insert(
                    group_key,
                    Group {
                        window_end: crate::client::deadline_after_from(now, self.window),
                        first: report.clone(),
                        held: 0,
                        held_file: None,
                        slots: adopted,
                    },
                );
                Offer::Send(Box::new(report), spool_file)
            }
        }
    }

    /// Closes a window: its repeats (if any) become one report.
    fn close(&mut self, group_key: u64) {
        let Some(group) = self.groups.remove(&group_key) else {
            return;
        };
        let absorbed = self.release_slots(&group);
        let repeats = group.held + u64::from(group.held_file.is_some()) + absorbed;
        if repeats == 0 {
            return;
        }
        let mut report = group.first;
        report.id = ReportId::random();
        report.count = repeats;
        report.timestamp = crate::time::rfc3339_millis(std::time::SystemTime::now());
        self.ready.push(Closed {
            report,
            held: group.held,
            held_file: group.held_file,
            absorbed,
        });
    }

    /// Drops the window that `group` (a report's `group`) just opened, when
    /// its first report went no further (the rate limit); returns the
    /// repeats its slots absorbed meanwhile (none reached the worker yet).
    pub(crate) fn forget(&mut self, group: &str) -> u64 {
        let group_key = u64::from_str_radix(group, 16).unwrap_or(0);
        let Some(group) = self.groups.remove(&group_key) else {
            return 0;
        };
        self.release_slots(&group)
    }

    /// Frees a group's slots, returning the repeats they absorbed.
    fn release_slots(&self, group: &Group) -> u64 {
        group.slots.iter().map(|&k| self.slots.release(k)).sum()
    }

    /// Closes the windows that have ended.
    pub(crate) fn close_due(&mut self, now: Instant) {
        let due: Vec<u64> = self
            .groups
            .iter()
            .filter(|(_, g)| now >= g.window_end)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            self.close(key);
        }
    }

    /// Closes every window (flush and shutdown).
    pub(crate) fn close_all(&mut self) {
        let all: Vec<u64> = self.groups.keys().copied().collect();
        for key in all {
            self.close(key);
        }
    }

    /// When the next window ends.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.groups.values().map(|g| g.window_end).min()
    }

    /// Frees a slot the worker will not adopt, returning its repeats.
    pub(crate) fn release(&self, key: u64) -> u64 {
        self.slots.release(key)
    }

    /// The windows that closed, oldest first.
    pub(crate) fn take_ready(&mut self) -> Vec<Closed> {
        std::mem::take(&mut self.ready)
    }
}

/// The client-side rate limit: a token bucket holding a minute's worth.
pub(crate) struct RateLimiter {
    per_minute: u32,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// `per_minute == 0`: no limit.
    pub(crate) fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute,
            tokens: f64::from(per_minute),
            last: Instant::now(),
        }
    }

    pub(crate) fn allow(&mut self, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        let cap = f64::from(self.per_minute);
        self.tokens = (self.tokens + elapsed * cap / 60.0).min(cap);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(group: &str) -> Report {
        let mut r = Report::sample("x");
        r.group = group.to_owned();
        r
    }

    #[test]
    fn caller_slots_claim_absorb_and_release() {
        let slots = Slots::default();
        let key = 0x1234_5678_9abc_def0;
        assert_eq!(slots.enter(key), Entry::Claimed);
        assert_eq!(slots.enter(key), Entry::Absorbed);
        assert_eq!(slots.enter(key), Entry::Absorbed);
        // Same slot (low bits), another key: the normal path.
        assert_eq!(slots.enter(key ^ (1 << 40)), Entry::Busy);
        assert_eq!(slots.release(key ^ (1 << 40)), 0, "not its slot");
        assert_eq!(slots.release(key), 2);
        assert_eq!(slots.enter(key), Entry::Claimed);
        assert_eq!(slots.enter(key), Entry::Absorbed);
        assert_eq!(slots.sweep(), 1);
        assert_eq!(slots.enter(key), Entry::Claimed);
    }

    #[test]
    fn first_is_sent_repeats_counted_and_one_report_closes_the_window() {
        let slots = Arc::new(Slots::default());
        let mut agg = Aggregator::new(Duration::from_secs(60), slots.clone());
        let now = Instant::now();
        let key = 0x1234_5678_9abc_def0;
        assert_eq!(slots.enter(key), Entry::Claimed);
        assert_eq!(slots.enter(key), Entry::Absorbed);
        let first = report("00000000000000aa");
        let first_id = first.id;
        assert!(matches!(
            agg.offer(first, None, Some(key), true, now),
            Offer::Send(..)
        ));
        assert_eq!(slots.enter(key), Entry::Absorbed);
        // Another call site with the same fingerprint, folded by raw key.
        let other = 0x0fed_cba9_8765_4321;
        assert!(!agg.fold_raw(other, now), "unknown key: process it");
        assert!(matches!(
            agg.offer(report("00000000000000aa"), None, Some(other), false, now),
            Offer::Folded { discard: None }
        ));
        assert!(agg.fold_raw(other, now));
        assert!(matches!(
            agg.offer(report("00000000000000bb"), None, None, false, now),
            Offer::Send(..)
        ));
        assert_eq!(agg.next_deadline(), Some(now + Duration::from_secs(60)));
        agg.close_due(now + Duration::from_secs(59));
        assert!(agg.take_ready().is_empty());
        let aggregated = crate::stats().aggregated;
        agg.close_due(now + Duration::from_secs(60));
        let ready = agg.take_ready();
        assert_eq!(
            ready.len(),
            1,
            "bb had no repeats: nothing to close it with"
        );
        // two absorbed by the slot + one folded by fingerprint + one by raw key
        assert_eq!(ready[0].report.count, 4);
        assert_ne!(ready[0].report.id, first_id);
        // Two absorbed in the slot, two held (folded on the worker).
        assert_eq!((ready[0].absorbed, ready[0].held), (2, 2));
        let _ = aggregated;
        assert_eq!(slots.enter(key), Entry::Claimed, "closing frees the slot");
        assert!(matches!(
            agg.offer(
                report("00000000000000aa"),
                None,
                Some(key),
                true,
                now + Duration::from_secs(61)
            ),
            Offer::Send(..)
        ));
    }

    #[test]
    fn a_window_keeps_one_repeats_spool_file_and_lets_the_others_go() {
        let mut agg = Aggregator::new(Duration::from_secs(60), Arc::new(Slots::default()));
        let now = Instant::now();
        let file = |n: &str| Some(PathBuf::from(n));
        assert!(matches!(
            agg.offer(report("00000000000000aa"), file("a"), None, false, now),
            Offer::Send(_, Some(_))
        ));
        assert!(matches!(
            agg.offer(report("00000000000000aa"), file("b"), None, false, now),
            Offer::Folded { discard: None }
        ));
        match agg.offer(report("00000000000000aa"), file("c"), None, false, now) {
            Offer::Folded {
                discard: Some(path),
            } => assert_eq!(path, PathBuf::from("c")),
            _ => panic!("a second file is not needed"),
        }
        agg.close_all();
        let closed = agg.take_ready().pop().expect("closed");
        assert_eq!(closed.held_file, file("b"));
        assert_eq!((closed.held, closed.report.count), (1, 2));
    }

    #[test]
    fn a_forgotten_window_returns_what_its_slots_absorbed() {
        let slots = Arc::new(Slots::default());
        let mut agg = Aggregator::new(Duration::from_secs(60), slots.clone());
        let key = 42 << 8;
        assert_eq!(slots.enter(key), Entry::Claimed);
        assert_eq!(slots.enter(key), Entry::Absorbed);
        let first = report("00000000000000cc");
        assert!(matches!(
            agg.offer(first, None, Some(key), true, Instant::now()),
            Offer::Send(..)
        ));
        assert_eq!(agg.forget("00000000000000cc"), 1);
        assert_eq!(agg.next_deadline(), None);
        assert_eq!(slots.enter(key), Entry::Claimed, "the slot is free again");
    }

    #[test]
    fn zero_window_sends_everything() {
        let mut agg = Aggregator::new(Duration::ZERO, Arc::new(Slots::default()));
        for _ in 0..3 {
            assert!(matches!(
                agg.offer(
                    report("00000000000000aa"),
                    None,
                    Some(1),
                    false,
                    Instant::now()
                ),
                Offer::Send(..)
            ));
        }
    }

    #[test]
    fn groups_are_bounded_and_evicted_windows_still_report() {
        let mut agg = Aggregator::new(Duration::from_secs(60), Arc::new(Slots::default()));
        let now = Instant::now();
        for i in 0..(MAX_GROUPS as u64 + 10) {
            let group = format!("{i:016x}");
            let at = now + Duration::from_millis(i);
            let _ = agg.offer(report(&group), None, None, false, at);
            let _ = agg.offer(report(&group), None, None, false, at);
        }
        assert!(agg.groups.len() <= MAX_GROUPS);
        assert_eq!(agg.take_ready().len(), 10);
        agg.close_all();
        assert_eq!(agg.take_ready().len(), MAX_GROUPS);
    }

    #[test]
    fn rate_limiter_allows_a_minute_then_refills() {
        let mut limiter = RateLimiter::new(60);
        let start = limiter.last;
        let allowed = (0..100).filter(|_| limiter.allow(start)).count();
        assert_eq!(allowed, 60);
        assert!(!limiter.allow(start + Duration::from_millis(500)));
        assert!(limiter.allow(start + Duration::from_millis(1100)));
        let mut unlimited = RateLimiter::new(0);
        assert!((0..10_000).all(|_| unlimited.allow(start)));
    }

    #[test]
    fn raw_keys_differ_by_stack_and_type() {
        let io = [ExceptionInfo {
            ty: "io".into(),
            message: "a".into(),
        }];
        let a = raw_key(Kind::Error, "", &io, &[1, 2, 3]);
        assert_eq!(a, raw_key(Kind::Error, "other text", &io, &[1, 2, 3]));
        assert_ne!(a, raw_key(Kind::Error, "", &io, &[1, 2, 4]));
        assert_ne!(a, raw_key(Kind::Error, "", &[], &[1, 2, 3]));
        assert_ne!(
            raw_key(Kind::Message, "a", &[], &[1]),
            raw_key(Kind::Message, "b", &[], &[1])
        );
    }
}
