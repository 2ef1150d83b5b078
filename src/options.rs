//! Configuration: the [`Options`] builder, [`Options::from_env`], and collector string parsing.
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::report::Report;
use crate::transport::Transport;

/// Why [`init`](crate::init) refused to start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A client is already installed; drop its [`Guard`](crate::Guard) first.
    #[error("crashbox is already initialized: drop the existing Guard before calling init again")]
    AlreadyInitialized,
    /// The collector string could not be parsed.
    #[error("invalid collector `{collector}`: {reason}")]
    InvalidCollector {
        /// The collector string, with any credentials masked.
        collector: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An option has a value crashbox cannot work with.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The option's builder method name.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The background worker thread could not be started.
    #[error("could not start the crashbox worker thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// Where reports go, parsed from a collector string.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Collector {
    /// `file:///abs/path.jsonl`: append one JSON report a line.
    File(PathBuf),
    /// `stderr`: a short human-readable report each.
    Stderr,
    /// `memory`: kept in process, read with [`memory_reports`](crate::memory_reports).
    Memory,
}

impl fmt::Debug for Collector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Collector::File(p) => write!(f, "file://{}", p.display()),
            Collector::Stderr => f.write_str("stderr"),
            Collector::Memory => f.write_str("memory"),
        }
    }
}

/// Replaces the credentials in `scheme://user@host` with `***`, so a key never reaches a log.
pub(crate) fn redact(collector: &str) -> String {
    if let Some(scheme_end) = collector.find("://") {
        let rest = &collector[scheme_end + 3..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            return format!("{}***{}", &collector[..scheme_end + 3], &rest[at..]);
        }
    }
    collector.to_owned()
}

impl Collector {
    /// Parses a collector string.
    ///
    /// ```
    /// use crashbox::Collector;
    /// assert_eq!(Collector::parse("memory").unwrap(), Collector::Memory);
    /// assert!(Collector::parse("file://relative/path").is_err());
    /// assert!(Collector::parse("carrier-pigeon://loft").is_err());
    /// ```
    pub fn parse(input: &str) -> Result<Collector, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidCollector {
            collector: redact(input),
            reason: reason.to_owned(),
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(invalid("the collector string is empty"));
        }
        match s {
            "stderr" => return Ok(Collector::Stderr),
            "memory" => return Ok(Collector::Memory),
            _ => {}
        }
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(invalid(
                "expected `stderr`, `memory`, or a URL such as `file:///var/log/app/reports.jsonl`",
            ));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                // file:///abs/path (empty host) or file://localhost/abs/path
                let path = rest.strip_prefix("localhost").unwrap_or(rest);
                if !path.starts_with('/') {
                    return Err(invalid(
                        "a file collector needs an absolute path: `file:///abs/path.jsonl`",
                    ));
                }
                if path.ends_with('/') {
                    return Err(invalid(
                        "the file collector's path names a directory, not a file",
                    ));
                }
                if path.contains('\0') {
                    return Err(invalid("the path contains a NUL byte"));
                }
                Ok(Collector::File(PathBuf::from(path)))
            }
            "http" | "https" | "sentry+http" | "sentry+https" | "otlp+http" | "otlp+https" => {
                Err(invalid(&format!(
                    "the `{scheme}` collector is not available in this version of crashbox; \
                     use `file://`, `stderr`, `memory`, or a custom Transport"
                )))
            }
            other => Err(invalid(&format!(
                "unknown scheme `{other}`: expected `file`, `stderr` or `memory`"
            ))),
        }
    }
}

/// Returns `"<crate name>@<crate version>"` of the crate that expands it.
///
/// ```
/// let release = crashbox::release!();
/// assert!(release.starts_with("crashbox@") || release.contains('@'));
/// ```
#[macro_export]
macro_rules! release {
    () => {
        concat!(env!("CARGO_PKG_NAME"), "@", env!("CARGO_PKG_VERSION"))
    };
}

/// A hook that sees each processed report before it is sent: return `None` to drop it.
pub type BeforeSend = Arc<dyn Fn(Report) -> Option<Report> + Send + Sync>;

/// Configuration for [`init`](crate::init).
///
/// ```
/// use std::time::Duration;
/// let options = crashbox::Options::new()
///     .collector("memory")
///     .release(crashbox::release!())
///     .environment("staging")
///     .shutdown_timeout(Duration::from_secs(1));
/// assert_eq!(options.get_environment(), "staging");
/// ```
pub struct Options {
    pub(crate) collector: Option<String>,
    pub(crate) transport: Option<Box<dyn Transport>>,
    pub(crate) release: Option<String>,
    pub(crate) environment: String,
    pub(crate) in_app_include: Vec<String>,
    pub(crate) in_app_exclude: Vec<String>,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) max_breadcrumbs: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) panic_hook: bool,
    pub(crate) before_send: Option<BeforeSend>,
}

impl Default for Options {
    fn default() -> Self {
        Options::new()
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("collector", &self.collector.as_deref().map(redact))
            .field("custom_transport", &self.transport.is_some())
            .field("release", &self.release)
            .field("environment", &self.environment)
            .field("in_app_include", &self.in_app_include)
            .field("in_app_exclude", &self.in_app_exclude)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("max_breadcrumbs", &self.max_breadcrumbs)
            .field("queue_capacity", &self.queue_capacity)
            .field("panic_hook", &self.panic_hook)
            .field("before_send", &self.before_send.is_some())
            .finish()
    }
}

/// The largest accepted `queue_capacity`; beyond it a storm would only buy memory.
pub const MAX_QUEUE_CAPACITY: usize = 1 << 20;

impl Options {
    /// Defaults: reports go to stderr, environment `development` in debug builds
    /// and `production` otherwise, shutdown timeout 2 s, 100 breadcrumbs,
    /// a queue of 1024 reports, panic hook on.
    pub fn new() -> Self {
        Options {
            collector: None,
            transport: None,
            release: None,
            environment: if cfg!(debug_assertions) {
                "development"
            } else {
                "production"
            }
            .to_owned(),
            in_app_include: Vec::new(),
            in_app_exclude: Vec::new(),
            shutdown_timeout: Duration::from_secs(2),
            max_breadcrumbs: 100,
            queue_capacity: 1024,
            panic_hook: true,
            before_send: None,
        }
    }

    /// Defaults overridden by `CRASHBOX_COLLECTOR`, `CRASHBOX_RELEASE` and
    /// `CRASHBOX_ENVIRONMENT` where they are set and not empty.
    ///
    /// ```
    /// let options = crashbox::Options::from_env();
    /// # let _ = options;
    /// ```
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut options = Options::new();
        if let Some(c) = var("CRASHBOX_COLLECTOR") {
            options.collector = Some(c);
        }
        if let Some(r) = var("CRASHBOX_RELEASE") {
            options.release = Some(r);
        }
        if let Some(e) = var("CRASHBOX_ENVIRONMENT") {
            options.environment = e;
        }
        options
    }

    /// Where reports go: see the README's collector strings. Parsed by `init`,
    /// which returns a [`ConfigError`] for a malformed one.
    pub fn collector(mut self, collector: impl Into<String>) -> Self {
        self.collector = Some(collector.into());
        self
    }

    /// Sends reports through a transport of your own instead of a collector string.
    pub fn transport(mut self, transport: impl Transport + 'static) -> Self {
        self.transport = Some(Box::new(transport));
        self
    }

    /// The release, such as `crashbox::release!()`. Its crate name (before `@`)
    /// also counts as an in-app prefix.
    pub fn release(mut self, release: impl Into<String>) -> Self {
        self.release = Some(release.into());
        self
    }

    /// The environment, such as `production` or `staging`.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = environment.into();
        self
    }

    /// Marks frames whose function path starts with `prefix` (such as `myapp::`
    /// or `myapp`) as in-app.
    pub fn in_app_include(mut self, prefix: impl Into<String>) -> Self {
        self.in_app_include.push(prefix.into());
        self
    }

    /// Marks frames whose function path starts with `prefix` as not in-app,
    /// even where an include rule matches.
    pub fn in_app_exclude(mut self, prefix: impl Into<String>) -> Self {
        self.in_app_exclude.push(prefix.into());
        self
    }

    /// How long dropping the [`Guard`](crate::Guard) may wait for delivery (default 2 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How many breadcrumbs to keep (default 100, at most 1000).
    pub fn max_breadcrumbs(mut self, max: usize) -> Self {
        self.max_breadcrumbs = max;
        self
    }

    /// How many captured reports may wait for the worker (default 1024). When
    /// the queue is full, a capture is dropped and counted in
    /// [`Stats::dropped_queue_full`](crate::Stats::dropped_queue_full).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// Whether `init` installs the panic hook (default `true`).
    pub fn panic_hook(mut self, install: bool) -> Self {
        self.panic_hook = install;
        self
    }

    /// Runs `hook` on the worker thread for each processed report; returning
    /// `None` drops the report (counted as filtered). A panicking hook is caught:
    /// the report is sent unchanged.
    ///
    /// ```
    /// let options = crashbox::Options::new().before_send(|mut report| {
    ///     report.tags.remove("session");
    ///     Some(report)
    /// });
    /// # let _ = options;
    /// ```
    pub fn before_send(
        mut self,
        hook: impl Fn(Report) -> Option<Report> + Send + Sync + 'static,
    ) -> Self {
        self.before_send = Some(Arc::new(hook));
        self
    }

    /// The configured environment.
    pub fn get_environment(&self) -> &str {
        &self.environment
    }

    /// Checks the values `init` depends on.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.queue_capacity == 0 || self.queue_capacity > MAX_QUEUE_CAPACITY {
            return Err(ConfigError::InvalidOption {
                option: "queue_capacity",
                reason: format!(
                    "{} is outside 1..={MAX_QUEUE_CAPACITY}",
                    self.queue_capacity
                ),
            });
        }
        if self.max_breadcrumbs > 1000 {
            return Err(ConfigError::InvalidOption {
                option: "max_breadcrumbs",
                reason: format!("{} is more than 1000", self.max_breadcrumbs),
            });
        }
        if self.environment.trim().is_empty() {
            return Err(ConfigError::InvalidOption {
                option: "environment",
                reason: "the environment is empty".to_owned(),
            });
        }
        Ok(())
    }

    /// In-app prefixes: explicit ones plus the release's crate name.
    pub(crate) fn in_app_prefixes(&self) -> Vec<String> {
        let mut prefixes = self.in_app_include.clone();
        if let Some(name) = self
            .release
            .as_deref()
            .and_then(|r| r.split('@').next())
            .filter(|n| !n.is_empty())
        {
            prefixes.push(format!("{}::", name.replace('-', "_")));
        }
        prefixes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_local_collectors() {
        assert_eq!(Collector::parse("stderr").unwrap(), Collector::Stderr);
        assert_eq!(Collector::parse(" memory ").unwrap(), Collector::Memory);
        assert_eq!(
            Collector::parse("file:///tmp/x/reports.jsonl").unwrap(),
            Collector::File(PathBuf::from("/tmp/x/reports.jsonl"))
        );
        assert_eq!(
            Collector::parse("FILE://localhost/tmp/r.jsonl").unwrap(),
            Collector::File(PathBuf::from("/tmp/r.jsonl"))
        );
    }

    #[test]
    fn rejects_malformed_collectors_naming_the_problem() {
        for (input, needle) in [
            ("", "empty"),
            ("file://relative.jsonl", "absolute"),
            ("file:///tmp/dir/", "directory"),
            ("gopher://host", "unknown scheme `gopher`"),
            ("stdout", "expected `stderr`"),
        ] {
            let err = Collector::parse(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{input:?}: {err}");
        }
    }

    #[test]
    fn credentials_never_appear_in_errors() {
        let err = Collector::parse("sentry+https://secretkey@example.invalid/1")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secretkey"), "{err}");
        assert!(err.contains("***@example.invalid"), "{err}");
    }

    #[test]
    fn release_crate_name_becomes_an_in_app_prefix() {
        let o = Options::new()
            .release("my-app@1.0.0")
            .in_app_include("other");
        assert_eq!(
            o.in_app_prefixes(),
            vec!["other".to_owned(), "my_app::".to_owned()]
        );
    }

    #[test]
    fn validate_rejects_zero_queue() {
        let err = Options::new().queue_capacity(0).validate().unwrap_err();
        assert!(err.to_string().contains("queue_capacity"));
    }
}
