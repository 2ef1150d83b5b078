//! Integration with `eyre` (feature `eyre`).
//!
//! `eyre::Report` is not itself a `std::error::Error` (it could not be and
//! still convert from every error), so it has its own door:
//! [`capture`] and [`ResultExt::report`]. Each `wrap_err` layer is an
//! exception of the report, outer first, named `eyre::Report`; the errors
//! underneath keep their own type names (std types by their public path,
//! others by the leading identifier of their `Debug` form).
//!
//! When eyre's default handler captured a backtrace where the error was
//! created (`RUST_BACKTRACE=1` or `RUST_LIB_BACKTRACE=1`), the report's
//! frames are that origin (eyre and the backtrace's own frames left out),
//! and its location is where it was reported. Another handler (such as
//! color-eyre's) keeps the stack the error was reported from.
//!
//! ```
//! use eyre::WrapErr;
//! use crashbox::eyre::ResultExt;
//!
//! fn load() -> eyre::Result<String> {
//!     std::fs::read_to_string("/no/such/config.toml")
//!         .wrap_err("loading the configuration")
//!         .report()
//! }
//!
//! let (_, reports) = crashbox::testing::capture(|| load());
//! let report = &reports[0];
//! assert_eq!(report.message, "loading the configuration");
//! assert_eq!(report.exception_types(), ["eyre::Report", "std::io::Error"]);
//! ```
use std::fmt::Write as _;

use crate::limits::BoundedWriter;
use crate::report::{Frame, Level, ReportId};
use crate::Event;

/// The name a layer that eyre made (a `wrap_err` layer, a message) is reported by.
const WRAPPER: &str = "eyre::Report";

/// Captures `err` and its chain as a report of level `error`, like
/// [`capture_error`](crate::capture_error) does for a `std::error::Error`.
#[track_caller]
#[inline(always)]
pub fn capture(err: &::eyre::Report) -> Option<ReportId> {
    let chain: &(dyn std::error::Error + 'static) = err.as_ref();
    let mut event = Event::new(Level::Error).wrapped_error(chain, WRAPPER);
    if let Some(frames) = origin(err) {
        event = event.frames(frames);
    }
    event.capture()
}

/// The bytes of a report's `Debug` form read for its backtrace.
const MAX_DEBUG_BYTES: usize = 256 * 1024;

/// The frames of the backtrace eyre's default handler captured where `err`
/// was created. The handler gives it out only in the report's `Debug` form,
/// after a `Stack backtrace:` line; `None` without one.
fn origin(err: &::eyre::Report) -> Option<Vec<Frame>> {
    err.handler().downcast_ref::<::eyre::DefaultHandler>()?;
    let mut w = BoundedWriter::new(MAX_DEBUG_BYTES);
    let debug = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = write!(w, "{err:?}");
        w.buf
    }))
    .ok()?;
    let (_, backtrace) = debug.split_once("\nStack backtrace:\n")?;
    crate::capture::origin::frames(backtrace, &["eyre::"])
}

/// Reporting for `eyre::Result`: `do_it().report()?` captures the error,
/// if any, and returns the result unchanged. Sealed: implemented for
/// `eyre::Result` only.
pub trait ResultExt: sealed::Sealed {
    /// Captures the `Err` (see [`capture`]) and returns `self`.
    fn report(self) -> Self;
}

mod sealed {
    pub trait Sealed {}
    impl<T> Sealed for ::eyre::Result<T> {}
}

impl<T> ResultExt for ::eyre::Result<T> {
    #[track_caller]
    #[inline(always)]
    fn report(self) -> Self {
        if let Err(err) = &self {
            capture(err);
        }
        self
    }
}
