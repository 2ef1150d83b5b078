//! The caller's side of a capture: only what cannot be done later.
//!
//! A capture walks the stack (addresses only), reads the error's text,
//! snapshots the scope and hands a [`Pending`] report to the worker (or to the
//! test sink bound to the thread). Everything else happens in the pipeline.
pub(crate) mod error;
#[cfg(target_os = "linux")]
pub(crate) mod images;
#[cfg(not(target_os = "linux"))]
#[path = "images_fallback.rs"]
pub(crate) mod images;
#[cfg(target_os = "linux")]
pub(crate) mod modules;
#[cfg(not(target_os = "linux"))]
#[path = "modules_fallback.rs"]
pub(crate) mod modules;
pub(crate) mod panic;
pub(crate) mod stack;

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client;
use crate::report::{Breadcrumb, ExceptionInfo, Kind, Level, Location, ReportId, ThreadInfo, User};
use crate::scope::{self, ScopeSnapshot};

/// A captured report before symbolication and enrichment.
pub(crate) struct Pending {
    pub id: ReportId,
    pub timestamp: SystemTime,
    pub level: Level,
    pub kind: Kind,
    pub message: String,
    pub exceptions: Vec<ExceptionInfo>,
    pub addresses: Vec<usize>,
    pub location: Option<Location>,
    pub thread: std::thread::Thread,
    pub scope: ScopeSnapshot,
    /// Fields cut on the caller's thread.
    pub truncated: Vec<String>,
    /// Identifies repeats on the caller's thread (see `pipeline::aggregate`);
    /// `None` when a custom fingerprint decides the grouping.
    pub raw_key: Option<u64>,
    /// Whether this capture claimed its raw key's caller-side slot.
    pub claimed: bool,
}

/// A capture with its scope merged: what the pipeline turns into a report,
/// and what the spool keeps for a panic (its addresses tied to the files
/// they belong to, so a later run of the same binary can resolve them).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Captured {
    pub id: ReportId,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    pub level: Level,
    pub kind: Kind,
    pub message: String,
    pub exceptions: Vec<ExceptionInfo>,
    pub addresses: Vec<usize>,
    /// Per address: module index and file offset, when known.
    #[serde(default)]
    pub located: Vec<Option<(u32, u64)>>,
    #[serde(default)]
    pub modules: Vec<modules::Module>,
    /// The images the addresses fell in when captured, for a replay: the
    /// addresses belong to the process that captured them.
    #[serde(default)]
    pub images: Vec<crate::report::Image>,
    /// Whether `addresses` belong to this process (not a replay from another run).
    #[serde(skip, default)]
    pub live: bool,
    pub location: Option<Location>,
    pub thread: ThreadInfo,
    pub tags: BTreeMap<String, String>,
    pub extra: BTreeMap<String, Value>,
    pub user: Option<User>,
    pub level_override: Option<Level>,
    pub fingerprint: Option<Vec<String>>,
    pub breadcrumbs: Vec<Breadcrumb>,
    pub truncated: Vec<String>,
    /// The release and environment of the run that captured it, for a
    /// replay by a later (perhaps upgraded) run; `None`: the current ones.
    #[serde(default)]
    pub release: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    /// Whether secrets were already scrubbed (in the panic hook, or by the
    /// run that spooled it): the worker does not scrub it again.
    #[serde(default)]
    pub scrubbed: bool,
    #[serde(skip, default)]
    pub raw_key: Option<u64>,
    #[serde(skip, default)]
    pub claimed: bool,
    /// How many occurrences this capture stands for: 1, or more once the
    /// spool's retention folded identical captures into it.
    #[serde(default = "one_occurrence")]
    pub count: u64,
}

/// The `count` of a capture that stands for itself only.
fn one_occurrence() -> u64 {
    1
}

fn thread_info(thread: &std::thread::Thread) -> ThreadInfo {
    // `ThreadId` prints as `ThreadId(N)`; its number is not otherwise exposed on stable.
    let id = format!("{:?}", thread.id())
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0);
    ThreadInfo {
        name: thread.name().map(|name| {
            let mut name = name.to_owned();
            crate::limits::truncate(&mut name, crate::limits::MAX_NAME_BYTES);
            name
        }),
        id,
    }
}

impl Pending {
    /// Merges the scope snapshot and reads the thread's name and id.
    pub(crate) fn into_captured(self) -> Captured {
        let merged = self.scope.merge();
        let mut truncated = self.truncated;
        truncated.extend(merged.truncated);
        Captured {
            id: self.id,
            timestamp_ms: self
                .timestamp
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            level: self.level,
            kind: self.kind,
            message: self.message,
            exceptions: self.exceptions,
            addresses: self.addresses,
            located: Vec::new(),
            modules: Vec::new(),
            images: Vec::new(),
            live: true,
            location: self.location,
            thread: thread_info(&self.thread),
            tags: merged.tags,
            extra: merged.extra,
            user: merged.user,
            level_override: merged.level,
            fingerprint: merged.fingerprint,
            breadcrumbs: merged.breadcrumbs,
            truncated,
            release: None,
            environment: None,
            scrubbed: false,
            raw_key: self.raw_key,
            claimed: self.claimed,
            count: 1,
        }
    }
}

impl Captured {
    /// Ties each address to its file, for resolution in a later run.
    pub(crate) fn locate_addresses(&mut self) {
        let (modules, located) = modules::locate(&self.addresses);
        self.modules = modules;
        self.located = located;
        self.images = images::images_for(&self.addresses);
    }

    /// Addresses to resolve in this process: the captured ones when live,
    /// else relocated from their files (`None` where that is impossible).
    pub(crate) fn resolvable_addresses(&self) -> Vec<Option<usize>> {
        if self.live {
            return self.addresses.iter().map(|&a| Some(a)).collect();
        }
        (0..self.addresses.len())
            .map(|i| {
                let (module, offset) = (*self.located.get(i)?)?;
                modules::relocate(self.modules.get(module as usize)?, offset)
            })
            .collect()
    }
}

thread_local! {
    static IN_CAPTURE: Cell<bool> = const { Cell::new(false) };
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// Marks the thread as inside crashbox; `None` when it already is, so a panic
/// raised while capturing is never captured in turn.
pub(crate) struct Reentry(());

impl Reentry {
    pub(crate) fn enter() -> Option<Reentry> {
        let was = IN_CAPTURE.try_with(|c| c.replace(true)).unwrap_or(true);
        // `then`, not `then_some`: a `Reentry` built and dropped would clear the flag.
        (!was).then(|| Reentry(()))
    }

    /// Whether this thread is inside a crashbox capture.
    pub(crate) fn active() -> bool {
        IN_CAPTURE.try_with(Cell::get).unwrap_or(true)
    }
}

impl Drop for Reentry {
    fn drop(&mut self) {
        let _ = IN_CAPTURE.try_with(|c| c.set(false));
    }
}

/// A per-thread splitmix64 stream, seeded from the OS-randomised hasher keys.
pub(crate) fn random_u128() -> u128 {
    fn next() -> u64 {
        RNG.try_with(|state| {
            let mut s = state.get();
            if s == 0 {
                let mut h = RandomState::new().build_hasher();
                h.write_u128(
                    SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map(|d| d.as_nanos())
                        .unwrap_or(0),
                );
                s = h.finish() | 1;
            }
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            state.set(s);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
        .unwrap_or_else(|_| {
            let mut h = RandomState::new().build_hasher();
            h.write_u8(0);
            h.finish()
        })
    }
    (u128::from(next()) << 64) | u128::from(next())
}

/// Where a capture on this thread goes.
pub(crate) enum Target {
    Client(std::sync::Arc<client::Client>),
    Test(std::sync::Arc<crate::testing::TestSink>),
}

impl Target {
    /// The thread's test sink, else the installed client; `None` when neither exists.
    pub(crate) fn current() -> Option<Target> {
        if let Some(sink) = scope::bound_test_sink() {
            return Some(Target::Test(sink));
        }
        client::current().map(Target::Client)
    }

    /// Whether the sample rate keeps a capture of `kind`; one left out is
    /// counted here.
    pub(crate) fn sampled_in(&self, kind: Kind) -> bool {
        let keep = match self {
            Target::Client(client) => client.settings().sampled_in(kind),
            Target::Test(_) => true,
        };
        if !keep {
            crate::stats::STATS.captured.inc();
            crate::stats::STATS.dropped_sampled.inc();
        }
        keep
    }

    /// Hands the capture over. Only the client's captures are counted in
    /// [`Stats`](crate::Stats): test captures stay out of the application's counters.
    pub(crate) fn submit(self, pending: Pending) -> Option<ReportId> {
        match self {
            Target::Client(client) if pending.kind == Kind::Panic => {
                crate::stats::STATS.captured.inc();
                client.enqueue_panic(pending)
            }
            Target::Client(client) => {
                crate::stats::STATS.captured.inc();
                client.enqueue(pending)
            }
            Target::Test(sink) => Some(sink.accept(pending)),
        }
    }
}

/// The fields every capture shares: id, time, thread, stack and scope. The
/// stack starts where `mark` and `top` say (see [`stack`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn pending(
    level: Level,
    kind: Kind,
    message: String,
    exceptions: Vec<ExceptionInfo>,
    location: Option<Location>,
    truncated: Vec<String>,
    mark: stack::StackMark,
    top: stack::Top,
) -> Pending {
    let (addresses, cut) = stack::walk(mark, top);
    let mut truncated = truncated;
    if cut {
        truncated.push("frames".to_owned());
    }
    let scope = ScopeSnapshot::capture();
    let raw_key = (!scope.has_fingerprint())
        .then(|| crate::pipeline::aggregate::raw_key(kind, &message, &exceptions, &addresses));
    Pending {
        id: ReportId::random(),
        timestamp: SystemTime::now(),
        level,
        kind,
        message,
        exceptions,
        addresses,
        location,
        thread: std::thread::current(),
        scope,
        truncated,
        raw_key,
        claimed: false,
    }
}

/// Runs `f` as a capture: skipped when nothing would receive it, guarded
/// against re-entry, and never unwinding into the caller.
pub(crate) fn run(f: impl FnOnce(Target) -> Option<ReportId>) -> Option<ReportId> {
    let Some(_reentry) = Reentry::enter() else {
        // A capture from inside crashbox (a before_send hook, a transport):
        // taking it could loop, so it is only counted (when it was meant
        // for the client: test captures stay out of the counters).
        if matches!(Target::current(), Some(Target::Client(_))) {
            crate::stats::STATS.captured.inc();
            crate::stats::STATS.dropped_reentrant.inc();
        }
        return None;
    };
    let target = Target::current()?;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(target)))
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::Reentry;

    #[test]
    fn a_refused_nested_entry_keeps_the_thread_marked() {
        assert!(!Reentry::active());
        let outer = Reentry::enter().expect("first entry");
        assert!(Reentry::enter().is_none(), "nested entry refused");
        assert!(
            Reentry::active(),
            "the refused entry must not clear the mark"
        );
        assert!(Reentry::enter().is_none());
        drop(outer);
        assert!(!Reentry::active());
    }
}
