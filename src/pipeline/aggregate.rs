//! Error storms: aggregation of repeats by fingerprint, and the client-side
//! rate limit.
//!
//! Within a window (60 s by default) the first report of a fingerprint is
//! sent at once. The first repeat is held back; every later repeat only adds
//! one to the held report's `count`. When the window ends (or on `flush` or
//! shutdown) the held report goes out carrying the count. So every capture is
//! either sent on its own, or counted in `Stats::aggregated` and in the
//! `count` of exactly one sent report.
//!
//! Repeats are recognised twice over. On the worker, by fingerprint, after
//! processing. On the caller's thread, before anything is queued: a capture
//! whose raw key (kind, exception types, message text of a message, and the
//! stack's addresses: within one process, the same raw key always yields the
//! same fingerprint) matches a slot armed by the worker is counted with one
//! compare-and-swap and goes no further. That keeps a storm's cost on the
//! caller's thread to the stack walk, and off the queue and the worker.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::fingerprint::Fnv;
use crate::report::{ExceptionInfo, Kind, Report};

/// Fingerprints tracked at once; beyond it the oldest window closes early.
pub(crate) const MAX_GROUPS: usize = 1024;
/// Raw keys remembered for folding repeats without processing them.
const MAX_RAW_KEYS: usize = 4096;
/// Caller-side slots; a raw key maps to one by its low bits.
const SLOTS: usize = 256;
/// Slots one fingerprint may arm (captures of it from several call sites).
const SLOTS_PER_GROUP: usize = 4;
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

/// The caller-side fast path: per slot, a 32-bit tag of the armed raw key
/// (never zero) and a 32-bit count of the captures it absorbed.
pub(crate) struct Slots([AtomicU64; SLOTS]);

impl Default for Slots {
    fn default() -> Self {
        Slots(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

fn slot_of(key: u64) -> (usize, u64) {
    ((key as usize) % SLOTS, (key >> 32) | (1 << 31))
}

impl Slots {
    /// Counts a repeat whose fingerprint has a report held back; `false`
    /// when the key is not armed (the capture takes the normal path).
    pub(crate) fn absorb(&self, key: u64) -> bool {
        let (index, tag) = slot_of(key);
        let slot = &self.0[index];
        let mut value = slot.load(Ordering::Relaxed);
        loop {
            if value >> 32 != tag || value & COUNT_MASK == COUNT_MASK {
                return false;
            }
            match slot.compare_exchange_weak(value, value + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => value = now,
            }
        }
    }

    /// Arms the key's slot if it is free.
    fn arm(&self, key: u64) -> bool {
        let (index, tag) = slot_of(key);
        self.0[index]
            .compare_exchange(0, tag << 32, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Frees the key's slot, returning the captures it absorbed.
    fn disarm(&self, key: u64) -> u64 {
        let (index, _) = slot_of(key);
        self.0[index].swap(0, Ordering::AcqRel) & COUNT_MASK
    }
}

/// A report held back to close a window, with its spool file if it has one.
pub(crate) struct Held {
    pub report: Report,
    pub spool_file: Option<PathBuf>,
}

struct Group {
    window_end: Instant,
    template: Option<Held>,
    /// Occurrences the template stands for.
    count: u64,
    /// Raw keys whose slots this group armed.
    armed: Vec<u64>,
}

/// What became of an offered report.
pub(crate) enum Offer {
    /// The first of its window: send it now.
    Send(Report, Option<PathBuf>),
    /// Held back; it goes out when the window closes.
    Held,
    /// A repeat, counted in the held report: settle it as aggregated.
    Folded(Option<PathBuf>),
}

/// The worker's side of aggregation.
pub(crate) struct Aggregator {
    window: Duration,
    groups: HashMap<u64, Group>,
    raw: HashMap<u64, u64>,
    slots: std::sync::Arc<Slots>,
    ready: Vec<Held>,
}

impl Aggregator {
    pub(crate) fn new(window: Duration, slots: std::sync::Arc<Slots>) -> Self {
        Aggregator {
            window,
            groups: HashMap::new(),
            raw: HashMap::new(),
            slots,
            ready: Vec::new(),
        }
    }

    fn enabled(&self) -> bool {
        !self.window.is_zero()
    }

    /// Folds a repeat known by its raw key, without processing it; `false`
    /// when it must be processed (unknown key, or nothing held yet).
    pub(crate) fn fold_raw(&mut self, key: u64, now: Instant) -> bool {
        let Some(&group_key) = self.raw.get(&key) else {
            return false;
        };
        let Some(group) = self.groups.get_mut(&group_key) else {
            return false;
        };
        if group.template.is_none() || now >= group.window_end {
            return false;
        }
        group.count += 1;
        self.arm(group_key, key);
        true
    }

    pub(crate) fn offer(
        &mut self,
        report: Report,
        spool_file: Option<PathBuf>,
        raw_key: Option<u64>,
        now: Instant,
    ) -> Offer {
        if !self.enabled() {
            return Offer::Send(report, spool_file);
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
        let Some(group) = self.groups.get_mut(&group_key) else {
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
                    template: None,
                    count: 0,
                    armed: Vec::new(),
                },
            );
            return Offer::Send(report, spool_file);
        };
        let outcome = if group.template.is_none() {
            group.template = Some(Held { report, spool_file });
            group.count = 1;
            Offer::Held
        } else {
            group.count += 1;
            Offer::Folded(spool_file)
        };
        if let Some(key) = raw_key {
            self.arm(group_key, key);
        }
        outcome
    }

    fn arm(&mut self, group_key: u64, key: u64) {
        let Some(group) = self.groups.get_mut(&group_key) else {
            return;
        };
        if group.armed.len() < SLOTS_PER_GROUP
            && !group.armed.contains(&key)
            && self.slots.arm(key)
        {
            group.armed.push(key);
        }
    }

    fn close(&mut self, group_key: u64) {
        let Some(group) = self.groups.remove(&group_key) else {
            return;
        };
        let absorbed: u64 = group.armed.iter().map(|&k| self.slots.disarm(k)).sum();
        if let Some(mut held) = group.template {
            held.report.count = group.count + absorbed;
            self.ready.push(held);
        }
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

    /// When the next held report is due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.groups
            .values()
            .filter(|g| g.template.is_some())
            .map(|g| g.window_end)
            .min()
    }

    /// Held reports whose windows closed, oldest window first.
    pub(crate) fn take_ready(&mut self) -> Vec<Held> {
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
    use std::sync::Arc;

    fn report(group: &str) -> Report {
        let mut r = Report::sample("x");
        r.group = group.to_owned();
        r
    }

    #[test]
    fn first_is_sent_then_one_held_then_folded_and_closed_with_the_count() {
        let slots = Arc::new(Slots::default());
        let mut agg = Aggregator::new(Duration::from_secs(60), slots.clone());
        let now = Instant::now();
        let key = 0x1234_5678_9abc_def0;
        assert!(matches!(
            agg.offer(report("00000000000000aa"), None, Some(key), now),
            Offer::Send(..)
        ));
        assert!(!slots.absorb(key), "nothing held yet: no fast path");
        assert!(!agg.fold_raw(key, now), "the first repeat must be processed");
        assert!(matches!(
            agg.offer(report("00000000000000aa"), None, Some(key), now),
            Offer::Held
        ));
        assert!(agg.fold_raw(key, now));
        assert!(slots.absorb(key) && slots.absorb(key));
        assert!(matches!(
            agg.offer(report("00000000000000aa"), None, None, now),
            Offer::Folded(None)
        ));
        assert!(matches!(
            agg.offer(report("00000000000000bb"), None, None, now),
            Offer::Send(..)
        ));
        assert_eq!(agg.next_deadline(), Some(now + Duration::from_secs(60)));
        agg.close_due(now + Duration::from_secs(59));
        assert!(agg.take_ready().is_empty());
        agg.close_due(now + Duration::from_secs(60));
        let ready = agg.take_ready();
        assert_eq!(ready.len(), 1);
        // held + one folded by key + two absorbed + one folded by fingerprint
        assert_eq!(ready[0].report.count, 5);
        assert!(!slots.absorb(key), "closing disarms the slot");
        assert!(matches!(
            agg.offer(report("00000000000000aa"), None, Some(key), now + Duration::from_secs(61)),
            Offer::Send(..)
        ));
    }

    #[test]
    fn zero_window_sends_everything() {
        let mut agg = Aggregator::new(Duration::ZERO, Arc::new(Slots::default()));
        for _ in 0..3 {
            assert!(matches!(
                agg.offer(report("00000000000000aa"), None, Some(1), Instant::now()),
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
            let _ = agg.offer(report(&group), None, None, now + Duration::from_millis(i));
            let _ = agg.offer(report(&group), None, None, now + Duration::from_millis(i));
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
