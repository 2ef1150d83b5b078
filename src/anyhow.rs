//! Integration with `anyhow` (feature `anyhow`).
//!
//! `anyhow::Error` is not itself a `std::error::Error` (it could not be and
//! still convert from every error), so it has its own door:
//! [`capture`] and [`ResultExt::report`]. Each context layer is an
//! exception of the report, outer first, named `anyhow::Error`; the errors
//! underneath keep their own type names (std types by their public path,
//! others by the leading identifier of their `Debug` form).
//!
//! When anyhow captured a backtrace where the error was created
//! (`RUST_BACKTRACE=1` or `RUST_LIB_BACKTRACE=1`), the report's frames are
//! that origin, from the code that created the error down (anyhow's and
//! the backtrace's own frames left out), and the report's location is where
//! it was reported. Without one, the frames are the stack it was reported
//! from, as for any capture.
//!
//! ```
//! use anyhow::Context;
//! use crashbox::anyhow::ResultExt;
//!
//! fn load() -> anyhow::Result<String> {
//!     std::fs::read_to_string("/no/such/config.toml")
//!         .context("loading the configuration")
//!         .report()
//! }
//!
//! let (_, reports) = crashbox::testing::capture(|| load());
//! let report = &reports[0];
//! assert_eq!(report.message, "loading the configuration");
//! assert_eq!(report.exception_types(), ["anyhow::Error", "std::io::Error"]);
//! ```
use std::backtrace::{Backtrace, BacktraceStatus};

use crate::report::{Frame, Level, ReportId};
use crate::Event;

/// The name a layer that anyhow made (a context, a message) is reported by.
const WRAPPER: &str = "anyhow::Error";

/// Captures `err` and its chain as a report of level `error`, like
/// [`capture_error`](crate::capture_error) does for a `std::error::Error`.
#[track_caller]
#[inline(always)]
pub fn capture(err: &::anyhow::Error) -> Option<ReportId> {
    let mut event = Event::new(Level::Error).wrapped_error(err.as_ref(), WRAPPER);
    if let Some(frames) = origin(err.backtrace()) {
        event = event.frames(frames);
    }
    event.capture()
}

/// The frames of a backtrace captured where an error was created, without
/// the machinery that recorded it; `None` when none was captured.
fn origin(backtrace: &Backtrace) -> Option<Vec<Frame>> {
    if backtrace.status() != BacktraceStatus::Captured {
        return None;
    }
    let cwd = std::env::current_dir().ok();
    let mut frames = frames_of(&backtrace.to_string(), cwd.as_deref());
    crate::pipeline::symbolicate::trim_origin(&mut frames, &["anyhow::"]);
    (!frames.is_empty()).then_some(frames)
}

/// Frames from a `std::backtrace::Backtrace`'s text, the only form it gives
/// them in: `N: function` lines (an inlined function on a line of its own,
/// without the number), each followed by `at file:line:column` when known.
/// The text shortens paths under the current directory to `./…`: they get
/// `cwd` back.
fn frames_of(text: &str, cwd: Option<&std::path::Path>) -> Vec<Frame> {
    let mut frames: Vec<Frame> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(at) = line.strip_prefix("at ") {
            let Some(frame) = frames.last_mut() else {
                continue;
            };
            let mut parts = at.rsplitn(3, ':');
            let (column, number, file) = (parts.next(), parts.next(), parts.next());
            match (file, number.and_then(|n| n.parse().ok())) {
                (Some(file), Some(number)) => {
                    frame.file = Some(match (file.strip_prefix("./"), cwd) {
                        (Some(relative), Some(cwd)) => cwd.join(relative).to_string_lossy().into(),
                        _ => file.into(),
                    });
                    frame.line = Some(number);
                    frame.column = column.and_then(|c| c.parse().ok());
                }
                _ => frame.file = Some(at.into()),
            }
            continue;
        }
        let function = match line.split_once(": ") {
            Some((n, rest)) if n.bytes().all(|b| b.is_ascii_digit()) => rest,
            _ => line,
        };
        if function.is_empty() || frames.len() >= crate::limits::MAX_FRAMES * 2 {
            continue;
        }
        let mut frame = Frame::at_address("0x0");
        frame.function = Some(function.into());
        frames.push(frame);
    }
    frames
}

/// Reporting for `anyhow::Result`: `do_it().report()?` captures the error,
/// if any, and returns the result unchanged. Sealed: implemented for
/// `anyhow::Result` only.
pub trait ResultExt: sealed::Sealed {
    /// Captures the `Err` (see [`capture`]) and returns `self`.
    fn report(self) -> Self;
}

mod sealed {
    pub trait Sealed {}
    impl<T> Sealed for ::anyhow::Result<T> {}
}

impl<T> ResultExt for ::anyhow::Result<T> {
    #[track_caller]
    #[inline(always)]
    fn report(self) -> Self {
        if let Err(err) = &self {
            capture(err);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::frames_of;

    #[test]
    fn backtrace_text_becomes_frames_inlined_ones_included() {
        let text = "   0: app::load
             at ./src/main.rs:10:5
   1: core::ops::function::FnOnce::call_once
             at /rustc/abc/library/core/src/ops/function.rs:250:5
      std::sys::backtrace::__rust_begin_short_backtrace
             at /rustc/abc/library/std/src/sys/backtrace.rs:158:18
   2: <unknown>
";
        let frames = frames_of(text, Some(std::path::Path::new("/home/u/app")));
        let names: Vec<_> = frames
            .iter()
            .map(|f| f.function.as_deref().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "app::load",
                "core::ops::function::FnOnce::call_once",
                "std::sys::backtrace::__rust_begin_short_backtrace",
                "<unknown>"
            ]
        );
        assert_eq!(frames[0].file.as_deref(), Some("/home/u/app/src/main.rs"));
        assert_eq!(
            frames[1].file.as_deref(),
            Some("/rustc/abc/library/core/src/ops/function.rs")
        );
        assert_eq!((frames[0].line, frames[0].column), (Some(10), Some(5)));
        assert_eq!(frames[2].line, Some(158));
        assert_eq!(frames[3].file, None);
    }
}
