//! Aggregation windows on the worker: the first reports of a fold key go
//! out as they come, later ones are counted, and one report closes the
//! window with the count.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{fold_key, Slots};
use crate::report::{Report, ReportId};

/// Fold keys tracked at once (each keeps a copy of its first report);
/// beyond it the oldest window closes early.
pub(crate) const MAX_WINDOWS: usize = 256;
/// Raw keys remembered for folding repeats without processing them.
const MAX_RAW_KEYS: usize = 4096;

/// An open aggregation window: one fold key's reports since it opened.
pub(super) struct Window {
    window_end: Instant,
    /// The window's first report, copied for the report that closes it.
    first: Report,
    /// Reports of the window offered to be sent on their own (the first included).
    sent: u32,
    /// Repeats that reached the worker, still held in the ledger (in memory).
    held: u64,
    /// One repeat's spool file (a panic's), kept so that a repeat survives
    /// the process dying before the window closes; held in the ledger on disk.
    held_file: Option<PathBuf>,
    /// Raw keys whose slots this window adopted.
    slots: Vec<u64>,
}

impl Window {
    /// Holds a repeat until the window closes; returns its spool file when
    /// the window does not need it (it keeps one repeat's).
    fn hold(&mut self, spool_file: Option<PathBuf>) -> Option<PathBuf> {
        match spool_file {
            Some(path) if self.held_file.is_none() => {
                self.held_file = Some(path);
                None
            }
            discard => {
                self.held += 1;
                discard
            }
        }
    }
}

/// The window a report to be sent on its own belongs to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WindowRef {
    /// Its fold key.
    pub key: u64,
    /// Whether the report opened it (else it is one of its burst).
    pub opened: bool,
}

/// What became of an offered report.
pub(crate) enum Offer {
    /// To be sent now: the first of its window or one of its burst (`None`
    /// when nothing is aggregated).
    Send(Box<Report>, Option<PathBuf>, Option<WindowRef>),
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
    /// Reports of a window sent on their own, at least 1.
    burst: u32,
    pub(super) groups: HashMap<u64, Window>,
    /// Raw key to fold key.
    raw: HashMap<u64, u64>,
    slots: Arc<Slots>,
    ready: Vec<Closed>,
}

impl Aggregator {
    pub(crate) fn new(window: Duration, burst: u32, slots: Arc<Slots>) -> Self {
        Aggregator {
            window,
            burst: burst.max(1),
            groups: HashMap::new(),
            raw: HashMap::new(),
            slots,
            ready: Vec::new(),
        }
    }

    /// Folds a repeat known by its raw key, without processing it; `false`
    /// when it must be processed (unknown key, its window is over, or its
    /// window's burst is not used up yet).
    pub(crate) fn fold_raw(&mut self, key: u64, now: Instant) -> bool {
        let Some(group) = self
            .raw
            .get(&key)
            .and_then(|fold| self.groups.get_mut(fold))
        else {
            return false;
        };
        if now >= group.window_end || group.sent < self.burst {
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
            return Offer::Send(Box::new(report), spool_file, None);
        }
        let fold = fold_key(&report);
        if let Some(key) = raw_key {
            if self.raw.len() >= MAX_RAW_KEYS && !self.raw.contains_key(&key) {
                self.raw.clear();
            }
            self.raw.insert(key, fold);
        }
        if self.groups.get(&fold).is_some_and(|g| now >= g.window_end) {
            self.close(fold);
        }
        let adopted = match raw_key {
            Some(key) if claimed => vec![key],
            _ => Vec::new(),
        };
        match self.groups.get_mut(&fold) {
            Some(group) => {
                // A slot is claimed by one capture at a time: a group holds
                // each at most once, so at most all 256.
                group.slots.extend(adopted);
                if group.sent < self.burst {
                    group.sent += 1;
                    let window = WindowRef {
                        key: fold,
                        opened: false,
                    };
                    return Offer::Send(Box::new(report), spool_file, Some(window));
                }
                Offer::Folded {
                    discard: group.hold(spool_file),
                }
            }
            None => {
                if self.groups.len() >= MAX_WINDOWS {
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
                    fold,
                    Window {
                        window_end: crate::deadline::deadline_after_from(now, self.window),
                        first: report.clone(),
                        sent: 1,
                        held: 0,
                        held_file: None,
                        slots: adopted,
                    },
                );
                let window = WindowRef {
                    key: fold,
                    opened: true,
                };
                Offer::Send(Box::new(report), spool_file, Some(window))
            }
        }
    }

    /// Holds a report of the window `key`'s burst that is not sent after all
    /// (over the rate limit) as one of its repeats: `Ok(discard)` as in
    /// [`Offer::Folded`], or the spool file back when the window is gone.
    pub(crate) fn hold(
        &mut self,
        key: u64,
        spool_file: Option<PathBuf>,
    ) -> Result<Option<PathBuf>, Option<PathBuf>> {
        match self.groups.get_mut(&key) {
            Some(group) => Ok(group.hold(spool_file)),
            None => Err(spool_file),
        }
    }

    /// Closes a window: its repeats (if any) become one report.
    fn close(&mut self, fold: u64) {
        let Some(group) = self.groups.remove(&fold) else {
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

    /// Drops the window `key` that a report just opened, when that report
    /// went no further (the rate limit); returns the repeats its slots
    /// absorbed meanwhile (none reached the worker yet).
    pub(crate) fn forget(&mut self, key: u64) -> u64 {
        let Some(group) = self.groups.remove(&key) else {
            return 0;
        };
        self.release_slots(&group)
    }

    /// Frees a group's slots, returning the repeats they absorbed.
    fn release_slots(&self, group: &Window) -> u64 {
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
