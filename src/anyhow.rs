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
    crate::capture::origin::frames(&backtrace.to_string(), &["anyhow::"])
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
