//! The collector string: which collector reports go to, parsed and checked
//! before anything starts.
use std::fmt;
use std::path::PathBuf;

use crate::error::ConfigError;

/// Where reports go, parsed from a collector string.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Collector {
    /// `file:///abs/path.jsonl`: append one JSON report a line. `%XX`
    /// escapes in the path are decoded (`file:///a%20b/c.jsonl` is
    /// `/a b/c.jsonl`); a `%` without two hex digits after it stays as is.
    File(PathBuf),
    /// `stderr`: a short human-readable report each.
    Stderr,
    /// `memory`: kept in process, read with [`memory_reports`](crate::memory_reports).
    Memory,
    /// `http(s)://host[:port]/path`: crashbox JSON reports, POSTed in batches.
    Http(Endpoint),
    /// `sentry+http(s)://KEY@host[:port][/path]/PROJECT_ID`: Sentry envelopes.
    Sentry(Dsn),
    /// `otlp+http(s)://host[:port][/path]`: OTLP/HTTP JSON log records to `/v1/logs`.
    Otlp(Endpoint),
}

impl fmt::Debug for Collector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Collector::File(p) => write!(f, "file://{}", p.display()),
            Collector::Stderr => f.write_str("stderr"),
            Collector::Memory => f.write_str("memory"),
            Collector::Http(e) => write!(f, "{}", mask_query(&e.url())),
            Collector::Sentry(d) => write!(f, "{d:?}"),
            Collector::Otlp(e) => write!(f, "otlp+{}", mask_query(&e.url())),
        }
    }
}

/// An HTTP(S) endpoint: scheme, host, port and path.
///
/// Its `Debug` form hides the query string, which may hold a token.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    https: bool,
    host: String,
    port: Option<u16>,
    /// Path and query, starting with `/` (or empty).
    path: String,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("https", &self.https)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("path", &mask_query(&self.path))
            .finish()
    }
}

/// `text` with what follows its first `?` (a query string, which may hold
/// a token) replaced by `***`.
fn mask_query(text: &str) -> std::borrow::Cow<'_, str> {
    match text.split_once('?') {
        Some((before, _)) => format!("{before}?***").into(),
        None => text.into(),
    }
}

impl Endpoint {
    /// `http(s)://host[:port]` without the path.
    pub fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        match self.port {
            Some(port) => format!("{scheme}://{}:{port}", self.host),
            None => format!("{scheme}://{}", self.host),
        }
    }

    /// The whole URL.
    pub fn url(&self) -> String {
        format!("{}{}", self.origin(), self.path)
    }

    /// The path (and query), `""` when none was given.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The URL with `suffix` appended to the path, before any query string
    /// (`https://h/p?k=v` with `/v1/logs` is `https://h/p/v1/logs?k=v`).
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn url_with_path_suffix(&self, suffix: &str) -> String {
        let (path, query) = match self.path.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (self.path.as_str(), None),
        };
        let path = path.trim_end_matches('/');
        match query {
            Some(query) => format!("{}{path}{suffix}?{query}", self.origin()),
            None => format!("{}{path}{suffix}", self.origin()),
        }
    }

    /// The URL without its query string, which may hold a token: for text
    /// a person reads.
    pub(crate) fn url_without_query(&self) -> String {
        let path = self.path.split('?').next().unwrap_or("");
        format!("{}{path}", self.origin())
    }
}

/// Where `collector` sends reports, as a short phrase for a person
/// ("the file /var/log/app/reports.jsonl", "Sentry at sentry.example.com"),
/// without credentials or query strings.
pub(crate) fn describe(collector: &Collector) -> String {
    match collector {
        Collector::File(path) => format!("the file {}", path.display()),
        Collector::Stderr => "stderr".to_owned(),
        Collector::Memory => "memory (crashbox::memory_reports)".to_owned(),
        Collector::Http(e) => format!("the HTTP endpoint {}", e.url_without_query()),
        Collector::Sentry(dsn) => format!("Sentry at {}", dsn.endpoint.host),
        Collector::Otlp(e) => format!("the OTLP endpoint {}", e.url_without_query()),
    }
}

/// A Sentry DSN. Its key never appears in `Debug` output or error messages.
#[derive(Clone, PartialEq, Eq)]
pub struct Dsn {
    endpoint: Endpoint,
    public_key: String,
    project_id: u64,
}

impl fmt::Debug for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.endpoint.https { "https" } else { "http" };
        let host = self.endpoint.origin();
        let host = host.split_once("://").map(|(_, h)| h).unwrap_or(&host);
        write!(
            f,
            "sentry+{scheme}://***@{host}{}/{}",
            self.endpoint.path, self.project_id
        )
    }
}

impl Dsn {
    /// `{scheme}://{host}{path}/api/{project_id}/envelope/`.
    pub fn envelope_url(&self) -> String {
        format!(
            "{}{}/api/{}/envelope/",
            self.endpoint.origin(),
            self.endpoint.path,
            self.project_id
        )
    }

    /// The `X-Sentry-Auth` header value.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn auth_header(&self) -> String {
        format!(
            "Sentry sentry_version=7, sentry_key={}, sentry_client=crashbox/{}",
            self.public_key,
            env!("CARGO_PKG_VERSION")
        )
    }

    /// The DSN in Sentry's own form (`https://KEY@host/ID`), for envelope headers.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    pub(crate) fn to_sentry_string(&self) -> String {
        let scheme = if self.endpoint.https { "https" } else { "http" };
        let origin = self.endpoint.origin();
        let host = origin.split_once("://").map(|(_, h)| h).unwrap_or(&origin);
        format!(
            "{scheme}://{}@{host}{}/{}",
            self.public_key, self.endpoint.path, self.project_id
        )
    }

    /// The project id.
    pub fn project_id(&self) -> u64 {
        self.project_id
    }
}

/// Replaces the credentials in `scheme://user@host`, and a query string
/// (`?token=…`), with `***`, so a key never reaches a log.
///
/// A string that is not a well-formed URL (`sentry+https:/KEY@host/1`) is
/// masked too: whatever stands before an `@`, back to the previous `/` or
/// `:` (or the start), is hidden.
pub(crate) fn redact(collector: &str) -> String {
    mask_query(&redact_userinfo(collector)).into_owned()
}

fn redact_userinfo(collector: &str) -> String {
    // A URL, unless what stands before `://` has an `@` (then it is masked
    // as a malformed string is).
    if let Some(scheme_end) = collector
        .find("://")
        .filter(|&end| !collector[..end].contains('@'))
    {
        let rest = &collector[scheme_end + 3..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            return format!("{}***{}", &collector[..scheme_end + 3], &rest[at..]);
        }
    }
    let (Some(first_at), Some(at)) = (collector.find('@'), collector.rfind('@')) else {
        return collector.to_owned();
    };
    // Everything from the end of the scheme (`://`, `:/`, `:`, `//`) to the
    // last `@`; a scheme is only one that ends before the first `@`, so a
    // key before any `@` is always inside the hidden part.
    let head = &collector[..first_at];
    let start = [
        head.find("://").map(|i| i + 3),
        head.find(':').map(|i| i + 1),
        head.find("//").map(|i| i + 2),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(0);
    let start = start + (head[start..].len() - head[start..].trim_start_matches(['/', ':']).len());
    format!("{}***{}", &collector[..start], &collector[at..])
}

/// The parts of `scheme://[userinfo@]host[:port][/path]`.
struct UrlParts<'a> {
    userinfo: Option<&'a str>,
    host: String,
    port: Option<u16>,
    path: &'a str,
}

fn parse_authority(rest: &str) -> Result<UrlParts<'_>, String> {
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    if path.contains('#') {
        return Err("a fragment (`#…`) has no meaning in a collector URL".into());
    }
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((user, hp)) => (Some(user), hp),
        None => (None, authority),
    };
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let Some((v6, after)) = bracketed.split_once(']') else {
            return Err("the IPv6 host has no closing `]`".into());
        };
        if v6.is_empty()
            || !v6
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(format!("`[{v6}]` is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or("unexpected text after the IPv6 host")?,
            ),
        };
        (format!("[{v6}]"), port)
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (host_port.to_owned(), None),
        }
    };
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if host.contains('%') || !host.is_ascii() {
        return Err(format!(
            "the host `{host}` is not a plain ASCII name (percent-encoded or non-ASCII hosts are not accepted; use punycode)"
        ));
    }
    if !host.starts_with('[')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(format!(
            "the host `{host}` contains characters a host name cannot have"
        ));
    }
    let port = match port {
        None => None,
        Some("") => return Err("the port after `:` is empty".into()),
        Some(p) => match p.parse::<u32>() {
            Ok(n) if (1..=65535).contains(&n) => Some(n as u16),
            Ok(n) => return Err(format!("the port {n} is out of range (1-65535)")),
            Err(_) => return Err(format!("the port `{p}` is not a number")),
        },
    };
    Ok(UrlParts {
        userinfo,
        host,
        port,
        path,
    })
}

fn endpoint(https: bool, parts: &UrlParts<'_>, path: &str) -> Endpoint {
    Endpoint {
        https,
        host: parts.host.to_ascii_lowercase(),
        port: parts.port,
        path: path.to_owned(),
    }
}

/// The same as [`Collector::parse`].
///
/// ```
/// let collector: crashbox::Collector = "stderr".parse()?;
/// assert_eq!(collector, crashbox::Collector::Stderr);
/// # Ok::<(), crashbox::ConfigError>(())
/// ```
impl std::str::FromStr for Collector {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Collector::parse(s)
    }
}

/// Parses `https://KEY@HOST/PROJECT` (or `http://`, or with the `sentry+`
/// prefix of a collector string).
///
/// ```
/// let dsn: crashbox::Dsn = "https://key@sentry.example.com/42".parse()?;
/// assert_eq!(dsn.project_id(), 42);
/// assert!(!format!("{dsn:?}").contains("key@"), "the key is masked");
/// # Ok::<(), crashbox::ConfigError>(())
/// ```
impl std::str::FromStr for Dsn {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let s = s.trim();
        let prefixed = if s.starts_with("sentry+") {
            s.to_owned()
        } else {
            format!("sentry+{s}")
        };
        match Collector::parse(&prefixed)? {
            Collector::Sentry(dsn) => Ok(dsn),
            _ => Err(ConfigError::InvalidCollector {
                collector: redact(s),
                reason: "not a Sentry DSN (https://KEY@HOST/PROJECT)".to_owned(),
            }),
        }
    }
}

impl Collector {
    /// Parses a collector string.
    ///
    /// ```
    /// use crashbox::Collector;
    /// assert_eq!(Collector::parse("memory").unwrap(), Collector::Memory);
    /// assert!(Collector::parse("sentry+https://key@sentry.example.com/42").is_ok());
    /// assert!(Collector::parse("file://relative/path").is_err());
    /// assert!(Collector::parse("sentry+https://sentry.example.com/42").is_err()); // no key
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
        let scheme = scheme.to_ascii_lowercase();
        let (kind, https) = match scheme.as_str() {
            "file" => return parse_file(rest).map_err(|r| invalid(&r)),
            "http" => ("http", false),
            "https" => ("http", true),
            "sentry+http" => ("sentry", false),
            "sentry+https" => ("sentry", true),
            "otlp+http" => ("otlp", false),
            "otlp+https" => ("otlp", true),
            // A "scheme" with an `@` in it holds what may be a key: not echoed.
            other if other.contains('@') => {
                return Err(invalid(
                    "unknown scheme (not shown: it contains `@`): expected file, http(s), sentry+http(s), otlp+http(s), stderr or memory",
                ));
            }
            other => {
                return Err(invalid(&format!(
                    "unknown scheme `{other}`: expected file, http(s), sentry+http(s), otlp+http(s), stderr or memory"
                )))
            }
        };
        let parts = parse_authority(rest).map_err(|r| invalid(&r))?;
        match kind {
            "sentry" => parse_dsn(https, &parts)
                .map(Collector::Sentry)
                .map_err(|r| invalid(&r)),
            _ => {
                if parts.userinfo.is_some() {
                    return Err(invalid(
                        "credentials in the URL are not supported for this collector",
                    ));
                }
                Ok(if kind == "otlp" {
                    // The path loses its trailing `/` (`/v1/logs` is
                    // appended to it); a query string stays, after it.
                    let (path, query) = parts
                        .path
                        .split_once('?')
                        .map_or((parts.path, None), |(p, q)| (p, Some(q)));
                    let path = path.trim_end_matches('/');
                    let path = match query {
                        Some(q) => format!("{path}?{q}"),
                        None => path.to_owned(),
                    };
                    Collector::Otlp(endpoint(https, &parts, &path))
                } else {
                    Collector::Http(endpoint(https, &parts, parts.path))
                })
            }
        }
    }
}

/// The path of `file:///abs/path` (empty host) or `file://localhost/abs/path`,
/// with its `%XX` escapes decoded (`%20` is a space); a `%` not followed by
/// two hex digits stays as written.
fn parse_file(rest: &str) -> Result<Collector, String> {
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    if !path.starts_with('/') {
        return Err("a file collector needs an absolute path: `file:///abs/path.jsonl`".into());
    }
    let path = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| "the path's `%` escapes do not decode to UTF-8 text".to_owned())?;
    if path.ends_with('/') {
        return Err("the file collector's path names a directory, not a file".into());
    }
    if path.contains('\0') {
        return Err("the path contains a NUL byte".into());
    }
    Ok(Collector::File(PathBuf::from(path.as_ref())))
}

fn parse_dsn(https: bool, parts: &UrlParts<'_>) -> Result<Dsn, String> {
    let key = match parts.userinfo {
        None => {
            return Err("the DSN has no public key (`sentry+https://KEY@host/PROJECT_ID`)".into())
        }
        // `KEY:SECRET` is an old form; the secret is not needed.
        Some(u) => u.split(':').next().unwrap_or(""),
    };
    if key.is_empty() {
        return Err("the DSN's public key is empty".into());
    }
    if !key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("the DSN's public key contains characters a key cannot have".into());
    }
    if parts.path.contains('?') {
        return Err("a DSN takes no query string".into());
    }
    let path = parts.path.trim_end_matches('/');
    let (prefix, id) = path.rsplit_once('/').unwrap_or(("", ""));
    if id.is_empty() {
        return Err("the DSN has no project id (`…@host/PROJECT_ID`)".into());
    }
    let project_id = id
        .parse::<u64>()
        .map_err(|_| format!("the project id `{id}` is not a number"))?;
    Ok(Dsn {
        endpoint: endpoint(https, parts, prefix),
        public_key: key.to_owned(),
        project_id,
    })
}

#[cfg(test)]
mod tests;
