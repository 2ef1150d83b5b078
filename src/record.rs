//! The records that cross from the caller's side to the worker's: a
//! [`Pending`] capture as the caller's thread took it, and the [`Captured`]
//! form it becomes with its scope merged (what the pipeline processes, and
//! what the spool and journal keep).
use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::report::{
    Breadcrumb, ExceptionInfo, Frame, Kind, Level, Location, ReportId, ThreadInfo, User,
};
use crate::scope::ScopeSnapshot;
use crate::{images, mapped_files};

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
    /// Extra values of the capture's own (an [`Event`](crate::Event)'s),
    /// over the scope's.
    pub extra: BTreeMap<String, Value>,
    /// Frames given with the capture (an error's origin, resolved where it
    /// was created), used instead of the walked stack's.
    pub frames: Option<Vec<Frame>>,
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
    /// See [`Pending::frames`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<Vec<Frame>>,
    /// A crash at a faulting instruction (not a signal the process raised):
    /// frame 0 is where it faulted, std's function or not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fault: bool,
    /// Per address: module index and file offset, when known.
    #[serde(default)]
    pub located: Vec<Option<(u32, u64)>>,
    #[serde(default)]
    pub modules: Vec<mapped_files::Module>,
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
        let mut merged = self.scope.merge();
        merged.extra.extend(self.extra);
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
            frames: self.frames,
            fault: false,
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
        let (modules, located) = mapped_files::locate(&self.addresses);
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
                mapped_files::relocate(self.modules.get(module as usize)?, offset)
            })
            .collect()
    }
}

#[cfg(test)]
impl Captured {
    /// An error capture of `message` at `addresses` (of this process), for
    /// unit tests.
    pub(crate) fn sample(message: &str, timestamp_ms: u64, addresses: Vec<usize>) -> Captured {
        let mut captured: Captured = serde_json::from_value(serde_json::json!({
            "id": ReportId::random(),
            "timestamp_ms": timestamp_ms,
            "level": "error",
            "kind": "error",
            "message": message,
            "exceptions": [],
            "addresses": addresses,
            "location": null,
            "thread": {"name": null, "id": 1},
            "tags": {},
            "extra": {},
            "user": null,
            "level_override": null,
            "fingerprint": null,
            "breadcrumbs": [],
            "truncated": [],
        }))
        .expect("a capture");
        captured.live = true;
        captured
    }
}
