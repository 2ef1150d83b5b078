//! A crash record read back by the next run, and the capture it becomes.
//!
//! The record is text, one `key value` a line, as the handler wrote it:
//!
//! ```text
//! crashbox crash 1
//! signal 11
//! code 1
//! address 0x0
//! pc 0x55d0c2a4b1f3
//! sp 0x7ffc1b2a3f80
//! overflow 0
//! pid 4242
//! tid 4242
//! sender 0
//! time_ms 1733011200123
//! thread main
//! prologue {"id":"…","release":…,"mappings":[…],"modules":[…],"images":[…]}
//! frame 0x55d0c2a4b1f4
//! frame 0x55d0c2a4b5a0 0x55d0c2a4b580
//! end
//! ```
//!
//! A record cut short (the process died while writing it) is read as far
//! as it goes, whole lines only: the signal line is the one thing it needs.
use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{Prologue, Signal, MAGIC};
use crate::record::Captured;
use crate::report::{ExceptionInfo, Kind, Level, ReportId, ThreadInfo};

/// What a record says.
#[derive(Debug, Default)]
pub(crate) struct Record {
    pub signal: i32,
    pub code: i32,
    pub address: usize,
    pub pc: usize,
    pub overflow: bool,
    pub pid: i64,
    pub tid: u64,
    pub sender: i64,
    pub time_ms: Option<u64>,
    pub thread: Option<String>,
    pub prologue: Option<Prologue>,
    pub frames: Vec<usize>,
    /// Per frame, the start of its function when the handler knew it (0 if not).
    pub starts: Vec<usize>,
    /// Whether the `end` line was reached.
    pub complete: bool,
}

fn hex(text: &str) -> Option<usize> {
    usize::from_str_radix(text.strip_prefix("0x")?, 16).ok()
}

/// Parses a record; `None` when it is not one (no magic line, no signal).
pub(crate) fn parse(bytes: &[u8]) -> Option<Record> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let mut record = Record::default();
    let mut signal = None;
    // Only whole lines: the last one may have been cut as it was written.
    let whole = rest.len() - rest.iter().rev().take_while(|&&b| b != b'\n').count();
    for line in rest[..whole].split(|&b| b == b'\n') {
        let line = String::from_utf8_lossy(line);
        let (key, value) = line.split_once(' ').unwrap_or((&line, ""));
        match key {
            "signal" => signal = value.parse().ok(),
            "code" => record.code = value.parse().unwrap_or(0),
            "address" => record.address = hex(value).unwrap_or(0),
            "pc" => record.pc = hex(value).unwrap_or(0),
            "overflow" => record.overflow = value == "1",
            "pid" => record.pid = value.parse().unwrap_or(0),
            "tid" => record.tid = value.parse().unwrap_or(0),
            "sender" => record.sender = value.parse().unwrap_or(0),
            "time_ms" => record.time_ms = value.parse().ok(),
            "thread" if !value.is_empty() => record.thread = Some(value.to_owned()),
            "prologue" => record.prologue = serde_json::from_str(value).ok(),
            "frame" => {
                let mut words = value.split(' ');
                if let Some(frame) = words.next().and_then(hex) {
                    if record.frames.len() <= super::MAX_FRAMES {
                        record.frames.push(frame);
                        record.starts.push(words.next().and_then(hex).unwrap_or(0));
                    }
                }
            }
            "end" => record.complete = true,
            _ => {}
        }
    }
    record.signal = signal?;
    Some(record)
}

impl Record {
    /// Whether the process sent the signal to itself (`abort`, `raise`,
    /// `kill`), rather than the kernel for a fault.
    pub(crate) fn raised(&self) -> bool {
        self.code <= 0
    }

    /// How many of the innermost frames of a raised signal are the raising
    /// machinery: the C library's (`pthread_kill`, `raise`, `abort`,
    /// outside the executable), then, for `std::process::abort`, std's own
    /// frames up to and including it, told by the function's start address
    /// (the same in a stripped build, where no name says it).
    fn raising_machinery(&self) -> usize {
        let Some(prologue) = &self.prologue else {
            return 0;
        };
        let Some(executable) = prologue.images.first() else {
            return 0;
        };
        let foreign = self
            .frames
            .iter()
            .take_while(|&&a| !executable.contains(a as u64))
            .count();
        // Within a few frames: std's path from `abort` to libc's is short.
        let through_abort = (foreign..self.frames.len().min(foreign + 4))
            .rfind(|&i| prologue.abort != 0 && self.starts.get(i) == Some(&prologue.abort))
            .map(|i| i + 1);
        through_abort.unwrap_or(foreign)
    }

    /// The report's message: `SIGSEGV at 0x0 (address not mapped)`,
    /// `stack overflow (SIGSEGV at 0x7ffc…, the stack's guard page)`,
    /// `SIGABRT (abort, raised by the process itself)`.
    pub(crate) fn message(&self) -> String {
        let name = self.name();
        if self.overflow {
            return format!(
                "stack overflow ({name} at {:#x}, the stack's guard page)",
                self.address
            );
        }
        if self.raised() {
            let how = if self.signal == libc::SIGABRT {
                "abort, "
            } else {
                ""
            };
            return if self.sender == self.pid || self.sender == 0 {
                format!("{name} ({how}raised by the process itself)")
            } else {
                format!("{name} ({how}sent by process {})", self.sender)
            };
        }
        let signal = Signal::from_number(self.signal);
        match signal.and_then(|s| s.code_text(self.code)) {
            Some(text) => format!("{name} at {:#x} ({text})", self.address),
            None => format!("{name} at {:#x} (code {})", self.address, self.code),
        }
    }

    /// `SIGSEGV`, or `signal 42` for one crashbox does not name.
    pub(crate) fn name(&self) -> String {
        Signal::from_number(self.signal)
            .map(|s| s.name().to_owned())
            .unwrap_or_else(|| format!("signal {}", self.signal))
    }

    /// The capture the record becomes, resolved later like a panic's from
    /// another run; `fallback_ms` is its time when the record has none.
    pub(crate) fn into_captured(self, fallback_ms: u64) -> Captured {
        let message = self.message();
        let prologue = self.prologue.as_ref();
        let mut addresses = self.frames.clone();
        if self.raised() {
            let machinery = self.raising_machinery();
            if machinery < addresses.len() {
                addresses.drain(..machinery);
            }
        }
        let (modules, located) = match prologue {
            Some(p) => locate(p, &addresses),
            None => (Vec::new(), vec![None; addresses.len()]),
        };
        let images = match prologue {
            Some(p) => {
                let mut seen: Vec<usize> = Vec::new();
                for &a in &addresses {
                    if let Some(i) = p.images.iter().position(|im| im.contains(a as u64)) {
                        if !seen.contains(&i) {
                            seen.push(i);
                        }
                    }
                }
                seen.into_iter().map(|i| p.images[i].clone()).collect()
            }
            None => Vec::new(),
        };
        let mut extra = BTreeMap::new();
        extra.insert(
            "crash".to_owned(),
            json!({
                "signal": self.name(),
                "number": self.signal,
                "code": self.code,
                "address": format!("{:#x}", self.address),
                "stack_overflow": self.overflow,
                "pid": self.pid,
                "complete": self.complete,
            }),
        );
        let mut truncated = Vec::new();
        if !self.complete {
            truncated.push("frames".to_owned());
        }
        Captured {
            id: prologue.map_or_else(ReportId::random, |p| p.id),
            timestamp_ms: self.time_ms.unwrap_or(fallback_ms),
            level: Level::Fatal,
            kind: Kind::Crash,
            message: message.clone(),
            exceptions: vec![ExceptionInfo {
                ty: self.name(),
                message,
            }],
            addresses,
            frames: None,
            fault: super::is_synchronous_fault(self.signal, self.code),
            located,
            modules,
            images,
            live: false,
            location: None,
            thread: ThreadInfo {
                name: self.thread.clone(),
                id: self.tid,
            },
            tags: BTreeMap::new(),
            extra: extra.into_iter().collect::<BTreeMap<String, Value>>(),
            user: None,
            level_override: None,
            fingerprint: None,
            breadcrumbs: Vec::new(),
            truncated,
            release: prologue.and_then(|p| p.release.clone()),
            environment: prologue.and_then(|p| p.environment.clone()),
            scrubbed: false,
            raw_key: None,
            claimed: false,
            count: 1,
        }
    }
}

/// Each address's module and file offset, from the recorded mappings.
#[allow(clippy::type_complexity)]
fn locate(
    prologue: &Prologue,
    addresses: &[usize],
) -> (Vec<crate::mapped_files::Module>, Vec<Option<(u32, u64)>>) {
    let located = addresses
        .iter()
        .map(|&a| {
            let &(start, _, offset, module) = prologue
                .mappings
                .iter()
                .find(|&&(start, end, _, _)| start <= a && a < end)?;
            prologue.modules.get(module as usize)?;
            // The record's numbers are only as good as the file: no overflow.
            let offset = (a - start).checked_add(offset)?;
            Some((module, offset as u64))
        })
        .collect();
    (prologue.modules.clone(), located)
}
