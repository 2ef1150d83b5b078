//! Report errors from a library without choosing how they are reported.
//!
//! `crashbox-api` has no dependencies. Until an application installs an
//! implementation, every function here is a no-op costing one atomic load.
//! The `crashbox` crate installs itself in `crashbox::init` and in
//! `crashbox::testing::capture`; from then on captures go to whichever
//! `crashbox` version the application uses, and the stack walk,
//! symbolication, scrubbing and delivery all happen there. A report's stack
//! starts at the function that called this crate: the facade's own frames
//! are left out by the implementation.
//!
//! ```
//! use crashbox_api::ResultExt;
//!
//! /// A library function: its errors are reported if the application
//! /// installed crashbox, and cost nothing otherwise.
//! pub fn load(path: &str) -> std::io::Result<String> {
//!     crashbox_api::add_breadcrumb(
//!         crashbox_api::Breadcrumb::new("loading the settings").category("config"),
//!     );
//!     std::fs::read_to_string(path).report()
//! }
//!
//! assert!(load("/nonexistent/settings.toml").is_err());
//! assert!(!crashbox_api::is_installed());
//! ```
//!
//! # For implementations
//!
//! An implementation provides a [`Backend`] and installs it once with
//! [`set_backend`]. The first one installed stays for the life of the
//! process; a second is refused with [`SetBackendError`].
//!
//! # Stability
//!
//! The facade is meant to stay semver-stable so that libraries built
//! against it keep working with every later implementation: new
//! capabilities come as new functions and as [`Backend`] methods with
//! default bodies, never as changes to existing ones.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::error::Error;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Where this crate's sources were built from, so an implementation can
/// leave the facade's frames (inlined ones too) out of a report.
#[doc(hidden)]
pub const __SOURCE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/");

/// How severe a report or breadcrumb is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Level {
    /// The program cannot go on.
    Fatal,
    /// An operation failed.
    Error,
    /// Something unexpected that the program handled.
    Warning,
    /// Informational.
    Info,
    /// Diagnostic detail.
    Debug,
}

/// The id of a captured report: 128 bits, shown as 32 lowercase hex digits
/// (the form Sentry-compatible servers use as an event id).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportId(u128);

impl ReportId {
    /// The id with these bits.
    pub const fn from_u128(bits: u128) -> Self {
        ReportId(bits)
    }

    /// The id's bits.
    pub const fn as_u128(self) -> u128 {
        self.0
    }
}

impl fmt::Display for ReportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for ReportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReportId({:032x})", self.0)
    }
}

/// Where a capture was made: the caller's source location, and a mark of
/// the caller's stack frame.
///
/// The mark is the address of a local variable in the frame of the function
/// that called the facade (the facade's entry points are
/// `#[inline(always)]`). The stack grows down, so every frame at or below
/// the mark belongs to the facade or the implementation and is left out of
/// the report's stack.
#[derive(Clone, Copy, Debug)]
pub struct Site {
    location: &'static Location<'static>,
    stack_mark: usize,
}

impl Site {
    /// The source location of the call into the facade.
    pub fn location(&self) -> &'static Location<'static> {
        self.location
    }

    /// The address of a local variable in the caller's frame.
    pub fn stack_mark(&self) -> usize {
        self.stack_mark
    }
}

impl Site {
    /// The site of a call at `location`, marking the frame that holds
    /// `anchor` (a local of the caller's frame).
    #[inline(always)]
    fn here(location: &'static Location<'static>, anchor: &u8) -> Site {
        Site {
            location,
            stack_mark: std::hint::black_box(anchor) as *const u8 as usize,
        }
    }
}

/// Something that happened before a report, kept by the implementation in a
/// bounded ring and attached to the reports that follow.
///
/// ```
/// use crashbox_api::{Breadcrumb, Level};
/// let data = [("rows", "12")];
/// let crumb = Breadcrumb::new("query ran")
///     .category("db")
///     .level(Level::Debug)
///     .data(&data);
/// assert_eq!(crumb.message, "query ran");
/// crashbox_api::add_breadcrumb(crumb);
/// ```
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Breadcrumb<'a> {
    /// What happened.
    pub message: &'a str,
    /// A dotted category such as `http` or `db.query`.
    pub category: Option<&'a str>,
    /// Severity.
    pub level: Level,
    /// Structured detail, as key and value texts.
    pub data: &'a [(&'a str, &'a str)],
}

impl<'a> Breadcrumb<'a> {
    /// A breadcrumb at level `Info`, with no category and no data.
    pub fn new(message: &'a str) -> Self {
        Breadcrumb {
            message,
            category: None,
            level: Level::Info,
            data: &[],
        }
    }

    /// Sets a dotted category such as `http` or `db.query`.
    pub fn category(mut self, category: &'a str) -> Self {
        self.category = Some(category);
        self
    }

    /// Sets the level.
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// Sets the structured detail, as key and value texts.
    pub fn data(mut self, data: &'a [(&'a str, &'a str)]) -> Self {
        self.data = data;
        self
    }
}

/// What an implementation provides. Installed once with [`set_backend`].
///
/// Each method runs on the caller's thread and must not panic or block on
/// I/O. Methods added later will have default bodies.
pub trait Backend: Send + Sync {
    /// Captures `error` (its source chain too). `type_name` is the error's
    /// type as `std::any::type_name` gives it, which a `&dyn Error` no
    /// longer knows.
    fn capture_error(
        &self,
        error: &dyn Error,
        type_name: &'static str,
        site: Site,
    ) -> Option<ReportId>;

    /// Captures a message at `level`.
    fn capture_message(&self, message: &str, level: Level, site: Site) -> Option<ReportId>;

    /// Keeps a breadcrumb for the reports that follow.
    fn add_breadcrumb(&self, breadcrumb: &Breadcrumb<'_>);

    /// Sets a tag on the current scope.
    fn set_tag(&self, key: &str, value: &str);
}

static BACKEND: OnceLock<&'static dyn Backend> = OnceLock::new();

/// Set once `BACKEND` is: the one load the no-backend path pays. The entry
/// points load it inline and leave the rest to a function of its own, so
/// the caller's code stays this load and a branch.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The installed backend, if any.
#[inline(always)]
fn backend() -> Option<&'static dyn Backend> {
    if !INSTALLED.load(Ordering::Relaxed) {
        return None;
    }
    BACKEND.get().copied()
}

/// [`set_backend`] was called when a backend was already installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetBackendError(());

impl fmt::Display for SetBackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a crashbox-api backend is already installed")
    }
}

impl Error for SetBackendError {}

/// Installs the implementation captures go to. Only the first call in a
/// process succeeds; the backend then stays installed.
///
/// ```
/// use crashbox_api::{Backend, Breadcrumb, Level, ReportId, Site};
///
/// struct Counting;
/// impl Backend for Counting {
///     fn capture_error(&self, _: &dyn std::error::Error, _: &'static str, _: Site) -> Option<ReportId> {
///         Some(ReportId::from_u128(1))
///     }
///     fn capture_message(&self, _: &str, _: Level, _: Site) -> Option<ReportId> {
///         Some(ReportId::from_u128(2))
///     }
///     fn add_breadcrumb(&self, _: &Breadcrumb<'_>) {}
///     fn set_tag(&self, _: &str, _: &str) {}
/// }
///
/// static COUNTING: Counting = Counting;
/// crashbox_api::set_backend(&COUNTING).unwrap();
/// assert!(crashbox_api::set_backend(&COUNTING).is_err());
/// let id = crashbox_api::capture_message("hello", Level::Info);
/// assert_eq!(id, Some(ReportId::from_u128(2)));
/// ```
pub fn set_backend(backend: &'static dyn Backend) -> Result<(), SetBackendError> {
    let mut installed = false;
    BACKEND.get_or_init(|| {
        installed = true;
        backend
    });
    INSTALLED.store(true, Ordering::Release);
    if installed {
        Ok(())
    } else {
        Err(SetBackendError(()))
    }
}

/// Whether an implementation is installed.
#[inline]
pub fn is_installed() -> bool {
    backend().is_some()
}

/// An error known by reference, whatever its type: the facade passes any
/// `E: Error + ?Sized` (a `dyn Error` too) on as a `&dyn Error`.
struct ByRef<'a, E: ?Sized>(&'a E);

impl<E: Error + ?Sized> fmt::Debug for ByRef<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl<E: Error + ?Sized> fmt::Display for ByRef<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.0, f)
    }
}

impl<E: Error + ?Sized> Error for ByRef<'_, E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

/// Captures `err` and its source chain with the caller's stack and
/// location. `None` (and no work) when no implementation is installed or it
/// keeps nothing.
///
/// ```
/// let err = std::io::Error::new(std::io::ErrorKind::NotFound, "no config");
/// assert_eq!(crashbox_api::capture_error(&err), None);
/// ```
#[track_caller]
#[inline(always)]
pub fn capture_error<E: Error + ?Sized>(err: &E) -> Option<ReportId> {
    if !INSTALLED.load(Ordering::Relaxed) {
        return None;
    }
    let anchor = 0u8;
    capture_error_at(err, Site::here(Location::caller(), &anchor))
}

#[inline(never)]
fn capture_error_at<E: Error + ?Sized>(err: &E, site: Site) -> Option<ReportId> {
    backend()?.capture_error(&ByRef(err), std::any::type_name::<E>(), site)
}

/// Captures a message at `level` with the caller's stack and location.
///
/// ```
/// crashbox_api::capture_message("cache is cold", crashbox_api::Level::Warning);
/// ```
#[track_caller]
#[inline(always)]
pub fn capture_message(message: &str, level: Level) -> Option<ReportId> {
    if !INSTALLED.load(Ordering::Relaxed) {
        return None;
    }
    let anchor = 0u8;
    capture_message_at(message, level, Site::here(Location::caller(), &anchor))
}

#[inline(never)]
fn capture_message_at(message: &str, level: Level, site: Site) -> Option<ReportId> {
    backend()?.capture_message(message, level, site)
}

/// Keeps a breadcrumb for the reports that follow.
#[inline]
pub fn add_breadcrumb(breadcrumb: Breadcrumb<'_>) {
    if let Some(backend) = backend() {
        backend.add_breadcrumb(&breadcrumb);
    }
}

/// Sets a tag on the current scope: the process-wide one, or the one the
/// application's implementation gives this thread or task.
///
/// ```
/// crashbox_api::set_tag("component", "parser");
/// ```
#[inline]
pub fn set_tag(key: &str, value: &str) {
    if let Some(backend) = backend() {
        backend.set_tag(key, value);
    }
}

/// Reporting for `Result`: `do_it().report()?` captures the error, if any,
/// and returns the result unchanged.
///
/// ```
/// use crashbox_api::ResultExt;
/// let parsed = "300".parse::<u8>().report();
/// assert!(parsed.is_err());
/// ```
///
/// The trait is sealed: the facade implements it for `Result`s of errors.
pub trait ResultExt: sealed::Sealed {
    /// Captures the `Err` (see [`capture_error`]) and returns `self`.
    fn report(self) -> Self;
}

mod sealed {
    pub trait Sealed {}
    impl<T, E: std::error::Error> Sealed for Result<T, E> {}
}

impl<T, E: Error> ResultExt for Result<T, E> {
    #[track_caller]
    #[inline(always)]
    fn report(self) -> Self {
        if let Err(err) = &self {
            if INSTALLED.load(Ordering::Relaxed) {
                let anchor = 0u8;
                capture_error_at(err, Site::here(Location::caller(), &anchor));
            }
        }
        self
    }
}
