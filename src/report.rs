//! The report data model: what a collector receives, and what tests assert on.
//!
//! Field names and orders are the documented JSON schema (see the README).
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A report's identifier: 128 random bits, written as 32 lowercase hex digits.
///
/// It is assigned when the report is captured and never changes, so a collector
/// can recognise a retried or replayed report as the same event.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReportId(u128);

impl ReportId {
    /// The id's bits.
    pub(crate) fn as_u128(self) -> u128 {
        self.0
    }

    /// A fresh random id (UUID version 4 layout).
    pub(crate) fn random() -> Self {
        let bits = crate::rand::random_u128();
        // Version 4, variant 1: any Sentry-style consumer takes it as a UUID.
        let bits = (bits & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
        ReportId(bits)
    }

    /// The id as 32 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        format!("{:032x}", self.0)
    }

    /// Parses 32 hex digits (either case).
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u128::from_str_radix(s, 16).ok().map(ReportId)
    }
}

/// A string that does not name a [`Level`], a [`Kind`] or a [`ReportId`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    what: &'static str,
    input: String,
}

impl ParseError {
    pub(crate) fn new(what: &'static str, input: &str) -> Self {
        let mut input = input.to_owned();
        crate::limits::truncate(&mut input, 64);
        ParseError { what, input }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not {}", self.input, self.what)
    }
}

impl std::error::Error for ParseError {}

/// ```
/// let id: crashbox::ReportId = "0123456789abcdef0123456789ABCDEF".parse()?;
/// assert_eq!(id.to_string(), "0123456789abcdef0123456789abcdef");
/// assert!("not an id".parse::<crashbox::ReportId>().is_err());
/// # Ok::<(), crashbox::ParseError>(())
/// ```
impl std::str::FromStr for ReportId {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        ReportId::parse(s).ok_or_else(|| ParseError::new("a report id (32 hex digits)", s))
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

impl Serialize for ReportId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ReportId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ReportId::parse(&s).ok_or_else(|| serde::de::Error::custom("expected 32 hex digits"))
    }
}

/// How severe a report is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The program cannot go on (panics).
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

impl Level {
    /// The lowercase name used in the JSON schema.
    pub fn as_str(&self) -> &'static str {
        match self {
            Level::Fatal => "fatal",
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a level's name as the JSON schema writes it, in any case
/// (`warn` is `warning`).
///
/// ```
/// use crashbox::Level;
/// assert_eq!("Warning".parse::<Level>(), Ok(Level::Warning));
/// assert_eq!("warn".parse::<Level>(), Ok(Level::Warning));
/// assert!("loud".parse::<Level>().is_err());
/// ```
impl std::str::FromStr for Level {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "fatal" => Level::Fatal,
            "error" => Level::Error,
            "warning" | "warn" => Level::Warning,
            "info" => Level::Info,
            "debug" => Level::Debug,
            _ => {
                return Err(ParseError::new(
                    "a level (fatal, error, warning, info or debug)",
                    s,
                ))
            }
        })
    }
}

/// What produced a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Kind {
    /// A panic caught by crashbox's panic hook.
    Panic,
    /// An error passed to [`capture_error`](crate::capture_error) or [`ResultExt::report`](crate::ResultExt::report).
    Error,
    /// A message passed to [`capture_message`](crate::capture_message).
    Message,
    /// A fatal signal (a segfault, a stack overflow, an abort) caught by
    /// crashbox's signal handler and reported by the next run (see
    /// [`Options::crash_signals`](crate::Options::crash_signals)).
    Crash,
}

impl Kind {
    /// The lowercase name used in the JSON schema.
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Panic => "panic",
            Kind::Error => "error",
            Kind::Message => "message",
            Kind::Crash => "crash",
        }
    }

    /// Whether the process died of it (a panic or a crash): never sampled
    /// out or rate limited, and its level is not overridden by the scope.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Kind::Panic | Kind::Crash)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ```
/// assert_eq!("panic".parse::<crashbox::Kind>(), Ok(crashbox::Kind::Panic));
/// assert_eq!("crash".parse::<crashbox::Kind>(), Ok(crashbox::Kind::Crash));
/// assert!("boom".parse::<crashbox::Kind>().is_err());
/// ```
impl std::str::FromStr for Kind {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "panic" => Kind::Panic,
            "error" => Kind::Error,
            "message" => Kind::Message,
            "crash" => Kind::Crash,
            _ => {
                return Err(ParseError::new(
                    "a kind (panic, error, message or crash)",
                    s,
                ))
            }
        })
    }
}

/// One link of an error's source chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExceptionInfo {
    /// The error's type name (best effort for sources, see the README).
    #[serde(rename = "type")]
    pub ty: String,
    /// The error's `Display` text.
    pub message: String,
}

/// One stack frame, after symbol resolution.
///
/// Its text is shared (`Arc<str>`): the frames of every report from the
/// same code point to one copy of each name and path, so a report costs no
/// allocation per frame. Read it as `&str` (`frame.function.as_deref()`),
/// set it from a `&str` or a `String` with `.into()`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Frame {
    /// Demangled function name, without the trailing hash.
    pub function: Option<Arc<str>>,
    /// Source file, as recorded in the debug info.
    pub file: Option<Arc<str>>,
    /// Line in `file`.
    pub line: Option<u32>,
    /// Column in `file`.
    pub column: Option<u32>,
    /// Whether the frame belongs to the application rather than std or a dependency.
    pub in_app: bool,
    /// Instruction address, as `0x` hex.
    pub address: Arc<str>,
}

impl ExceptionInfo {
    /// A link of type `ty` saying `message`.
    pub fn new(ty: impl Into<String>, message: impl Into<String>) -> Self {
        ExceptionInfo {
            ty: ty.into(),
            message: message.into(),
        }
    }
}

impl Frame {
    /// A frame known only by its address (`0x` hex), not in-app.
    ///
    /// ```
    /// let mut frame = crashbox::Frame::at_address("0x55d0c0ffee");
    /// frame.function = Some("my_app::main".into());
    /// assert!(!frame.in_app);
    /// ```
    pub fn at_address(address: impl Into<Arc<str>>) -> Self {
        Frame {
            function: None,
            file: None,
            line: None,
            column: None,
            in_app: false,
            address: address.into(),
        }
    }
}

/// A source location.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Location {
    /// Source file path as the compiler saw it.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl Location {
    /// `file:line:column`.
    pub fn new(file: impl Into<String>, line: u32, column: u32) -> Self {
        Location {
            file: file.into(),
            line,
            column,
        }
    }

    pub(crate) fn from_std(loc: &std::panic::Location<'_>) -> Self {
        Location {
            file: loc.file().to_owned(),
            line: loc.line(),
            column: loc.column(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// The thread a report was captured on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ThreadInfo {
    /// The thread's name, if it has one (`main` for the main thread).
    pub name: Option<String>,
    /// The numeric part of the thread's `ThreadId`.
    pub id: u64,
}

/// The user an event concerns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct User {
    /// A stable identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// An email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// An IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
}

impl User {
    /// A user known by its identifier.
    ///
    /// ```
    /// let user = crashbox::User::with_id("42");
    /// assert_eq!(user.id.as_deref(), Some("42"));
    /// ```
    pub fn with_id(id: impl Into<String>) -> Self {
        User {
            id: Some(id.into()),
            ..User::default()
        }
    }

    /// With a display name.
    ///
    /// ```
    /// let user = crashbox::User::with_id("42").username("ada").email("ada@example.com");
    /// assert_eq!(user.username.as_deref(), Some("ada"));
    /// ```
    #[must_use]
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// With an email address.
    #[must_use]
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// With an IP address (`{{auto}}` asks Sentry to fill in the sender's).
    #[must_use]
    pub fn ip_address(mut self, ip_address: impl Into<String>) -> Self {
        self.ip_address = Some(ip_address.into());
        self
    }

    /// The fields that are set.
    pub(crate) fn fields_mut(&mut self) -> impl Iterator<Item = &mut String> {
        [
            &mut self.id,
            &mut self.username,
            &mut self.email,
            &mut self.ip_address,
        ]
        .into_iter()
        .flatten()
    }
}

/// Something that happened before a report, kept in a bounded ring.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Breadcrumb {
    /// When it happened (RFC 3339, UTC, milliseconds).
    pub timestamp: String,
    /// A dotted category such as `http` or `db.query`.
    pub category: Option<String>,
    /// What happened.
    pub message: String,
    /// Severity.
    pub level: Level,
    /// Structured detail.
    #[serde(default)]
    pub data: BTreeMap<String, Value>,
}

impl Breadcrumb {
    /// A breadcrumb at level `info`, stamped now.
    ///
    /// ```
    /// use crashbox::{Breadcrumb, Level};
    /// let crumb = Breadcrumb::new("loaded config")
    ///     .category("config")
    ///     .level(Level::Debug)
    ///     .data("entries", 12);
    /// assert_eq!(crumb.data["entries"], 12);
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        Breadcrumb {
            timestamp: crate::time::rfc3339_millis(std::time::SystemTime::now()),
            category: None,
            message: message.into(),
            level: Level::Info,
            data: BTreeMap::new(),
        }
    }

    /// Sets the category.
    pub fn category(mut self, category: impl Into<String>) -> Self {
        self.category = Some(category.into());
        self
    }

    /// Sets the level.
    pub fn level(mut self, level: Level) -> Self {
        self.level = level;
        self
    }

    /// Adds one structured datum; a value that cannot be serialized is stored as `null`.
    pub fn data(mut self, key: impl Into<String>, value: impl Serialize) -> Self {
        self.data.insert(
            key.into(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }
}

/// Facts about the machine and program, gathered once per process.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Context {
    /// Operating system name (`NAME` from `/etc/os-release`, else the target OS).
    pub os: Option<String>,
    /// Operating system version (`VERSION_ID` from `/etc/os-release`).
    pub os_version: Option<String>,
    /// Kernel release.
    pub kernel: Option<String>,
    /// CPU architecture the program was built for.
    pub arch: String,
    /// Host name.
    pub hostname: Option<String>,
    /// Process id.
    pub pid: u32,
    /// Path of the running executable.
    pub executable: Option<String>,
    /// Version of the compiler that built crashbox.
    pub rustc: String,
    /// Number of CPUs available to the process.
    pub cpu_count: Option<usize>,
}

/// The SDK that produced a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Sdk {
    /// Always `crashbox`.
    pub name: String,
    /// crashbox's version.
    pub version: String,
}

impl Default for Sdk {
    fn default() -> Self {
        Sdk {
            name: "crashbox".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

fn one() -> u64 {
    1
}

/// One fully processed report, as collectors receive it.
///
/// Fields are public for reading in tests and custom transports; see the README
/// for the JSON schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Report {
    /// Stable id, 32 lowercase hex digits.
    pub id: ReportId,
    /// Capture time (RFC 3339, UTC, milliseconds).
    pub timestamp: String,
    /// Severity.
    pub level: Level,
    /// What produced it.
    pub kind: Kind,
    /// The headline: the outer error's text, the message, or the panic payload.
    pub message: String,
    /// The source chain, outer error first.
    pub exceptions: Vec<ExceptionInfo>,
    /// The stack, innermost first (the capture point or panic site at index 0).
    pub frames: Vec<Frame>,
    /// Where the capture was called, or where the panic happened.
    pub location: Option<Location>,
    /// The capturing thread.
    pub thread: ThreadInfo,
    /// Tags from the scopes.
    pub tags: BTreeMap<String, String>,
    /// Arbitrary structured data from the scopes.
    pub extra: BTreeMap<String, Value>,
    /// The user from the scopes.
    pub user: Option<User>,
    /// Breadcrumbs, oldest first.
    pub breadcrumbs: Vec<Breadcrumb>,
    /// Machine and program facts.
    pub context: Context,
    /// The release, such as `myapp@1.2.3`.
    pub release: Option<String>,
    /// The environment, such as `production`.
    pub environment: String,
    /// The SDK.
    pub sdk: Sdk,
    /// A custom grouping key set on a scope with
    /// [`Scope::set_fingerprint`](crate::Scope::set_fingerprint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Vec<String>>,
    /// The report's fingerprint as 16 hex digits: reports with the same
    /// group are occurrences of one problem, and are aggregated. By default a
    /// hash of the kind, the exception types (the text, for a message) and
    /// the in-app frames' function names (all frames' when none is in-app,
    /// plus the capture's file and line when no in-app frame has a name);
    /// from `fingerprint` when one is set.
    #[serde(default)]
    pub group: String,
    /// How many occurrences this report stands for: 1, or for the report
    /// that closes an aggregation window, the repeats of its group in that
    /// window (itself included); a report the spool's retention folded
    /// identical later ones into (a crash loop's first panic) counts them too.
    #[serde(default = "one")]
    pub count: u64,
    /// Names of the fields that were cut to fit crashbox's size limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<String>,
    /// The loaded binaries the frames fall in, in the order frames first
    /// fall in them, so a server (or `crashbox symbolicate`) can resolve
    /// the frames' addresses with the binaries' debug files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
}

impl Report {
    /// The value of tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    /// Frames that belong to the application, innermost first.
    pub fn in_app_frames(&self) -> impl Iterator<Item = &Frame> {
        self.frames.iter().filter(|f| f.in_app)
    }

    /// The exception types, outer error first.
    pub fn exception_types(&self) -> Vec<&str> {
        self.exceptions.iter().map(|e| e.ty.as_str()).collect()
    }

    /// This report as one line of JSON (the schema in the README).
    pub fn to_json(&self) -> String {
        // Every field is a plain string, number, map or vector: serialization cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A short human-readable summary: level, message, chain, location and the
    /// top application frames. This is what the `stderr` collector prints.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "[crashbox] {} {}: {}",
            self.level, self.kind, self.message
        );
        for (i, e) in self.exceptions.iter().enumerate() {
            if i == 0 {
                let _ = writeln!(out, "  {}: {}", e.ty, e.message);
            } else {
                let _ = writeln!(out, "  caused by {}: {}", e.ty, e.message);
            }
        }
        if let Some(loc) = &self.location {
            let _ = writeln!(
                out,
                "  at {loc} on thread '{}'",
                self.thread.name.as_deref().unwrap_or("<unnamed>")
            );
        }
        for frame in self.in_app_frames().take(5) {
            let _ = write!(
                out,
                "    {}",
                frame.function.as_deref().unwrap_or("<unknown>")
            );
            if let (Some(file), Some(line)) = (&frame.file, frame.line) {
                let _ = write!(out, " ({file}:{line})");
            }
            out.push('\n');
        }
        let _ = writeln!(out, "  id {}", self.id);
        out
    }
}

#[cfg(test)]
impl Report {
    /// A minimal message report, for unit tests.
    pub(crate) fn sample(message: &str) -> Report {
        Report {
            id: ReportId::random(),
            timestamp: "2026-01-01T00:00:00.000Z".into(),
            level: Level::Error,
            kind: Kind::Message,
            message: message.into(),
            exceptions: vec![],
            frames: vec![],
            location: None,
            thread: ThreadInfo { name: None, id: 1 },
            tags: BTreeMap::new(),
            extra: BTreeMap::new(),
            user: None,
            breadcrumbs: vec![],
            context: Context::default(),
            release: None,
            environment: "test".into(),
            sdk: Sdk::default(),
            fingerprint: None,
            group: "0000000000000000".into(),
            count: 1,
            truncated: vec![],
            images: vec![],
        }
    }
}

mod image;
#[cfg(test)]
mod tests;

pub(crate) use image::debug_id;
#[cfg(test)]
use image::parse_hex;
pub use image::Image;
