//! Privacy: secrets are scrubbed by default, before a report is spooled or
//! sent, and crashbox adds no personal data of its own unless asked.
//!
//! - A corpus of secret shapes (bearer tokens, JWTs, AWS access key ids,
//!   passwords in URLs, PEM private keys, `password=…` pairs, values under
//!   secret-looking keys in any case and separator style) put in every place
//!   a report carries text (message, exception messages, tags, extra at any
//!   depth, user fields, breadcrumb messages and data, fingerprint): none of
//!   them is left anywhere in the report's JSON.
//! - Harmless look-alikes (`token_count`, `author`, `primary_key`, a plain
//!   URL, an email address, a certificate) come through unchanged.
//! - Nothing secret reaches the spool, including a panic's raw capture that
//!   the panic hook writes itself.
//! - `Options::scrub(false)` turns it off; `Options::scrub_keys` adds keys.
//! - `Options::send_default_pii`: off by default (no username, no IP); on, it
//!   fills in the login name (and the Sentry collector asks for the IP);
//!   user fields set explicitly are always kept.
//!
//! The in-process tests take `util::client_turn`: `testing::capture` uses
//! the settings of the installed client, if any, so no test may have one
//! installed (with scrubbing off, say) while another captures. Scenarios that need the
//! process's environment, the panic hook or a collector of their own run in
//! a child process (see `util::run_child`).
#[cfg(feature = "http")]
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::util;
use crate::util::errors;
use crate::util::http_server;
use crate::util::{
    assert_child, child, client_turn, report_value, run_child, MemoryClient, TempDir,
};
use crashbox::{
    testing, Breadcrumb, Kind, Level, Options, Report, Transport, TransportError, User,
};
use serde_json::{json, Value};

/// Long enough for a loaded 2-core machine (the first report loads debug info).
const FLUSH: Duration = Duration::from_secs(30);

const REDACTED: &str = "[redacted]";

// ---------------------------------------------------------------------------
// The corpus.

const BEARER_TOKEN: &str = "abc123def456ghi";
const JWT: &str =
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
const AWS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const DB_URL: &str = "postgres://app:s3cr3t@db:5432/x";
const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\n\
MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n\
KUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ\n\
-----END RSA PRIVATE KEY-----";

/// Substrings of the corpus's secrets that must appear nowhere in a report
/// (each distinctive enough not to occur by chance in ids, addresses or paths).
const SECRET_PARTS: &[&str] = &[
    BEARER_TOKEN,
    "eyJhbGciOiJIUzI1NiJ9",
    "eyJzdWIiOiIxMjM0In0",
    "sflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    AWS_KEY,
    "s3cr3t",
    "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu",
    "KUpRKfFLfRYC9AIKjbJTWit",
    "BEGIN RSA PRIVATE KEY",
    "hunter2",
    "dXNlcjpodW50ZXIy",
    "k-live-51HxQ9",
    "sid=9f8e7d6c5b4a",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "tok_77aa88bb99",
    "pk-zz-1122",
];

errors::test_error! {
    /// An error whose text carries a bearer token; its cause names a
    /// database URL with the password in it.
    LoginError => "login failed: Authorization: Bearer abc123def456ghi", source: io::Error
}

fn login_error() -> LoginError {
    LoginError::new(
        std::io::ErrorKind::ConnectionRefused,
        &format!("connect to {DB_URL} refused"),
    )
}

/// Panics, naming each secret part found in `report`'s JSON.
#[track_caller]
fn assert_no_secrets(report: &Report, parts: &[&str]) {
    let json = report.to_json();
    let found: Vec<&&str> = parts.iter().filter(|p| json.contains(**p)).collect();
    assert!(found.is_empty(), "secrets {found:?} left in {json}");
}

/// Sets every place a report carries text to something secret, on the
/// current hub's scope and breadcrumbs.
fn fill_scope_with_secrets() {
    crashbox::configure_scope(|scope| {
        scope.set_tag("api_key", "k-live-51HxQ9");
        scope.set_tag("X-Auth-Token", "tok_77aa88bb99");
        // Harmless keys, secret values: found by their shape.
        scope.set_tag("upstream", DB_URL);
        scope.set_tag("auth_header", format!("Bearer {BEARER_TOKEN}"));
        scope.set_tag("trace", format!("jwt={JWT}"));
        scope.set_extra(
            "request",
            json!({
                "url": "https://bob:hunter2@example.com/login",
                "headers": {
                    "Authorization": "Basic dXNlcjpodW50ZXIy",
                    "Cookie": "sid=9f8e7d6c5b4a",
                    "Accept": "text/html",
                },
                "items": [{"password": "hunter2"}, {"note": format!("key {AWS_KEY}")}],
            }),
        );
        scope.set_extra("client_secret", 31_415_926);
        scope.set_extra("log_line", "retrying with password=hunter2");
        scope.set_extra("key_file", PEM);
        scope.set_user(Some(
            User::with_id(JWT)
                .username("alice")
                .email("alice@example.com"),
        ));
        scope.set_fingerprint(["login", "password=hunter2"]);
    });
    crashbox::add_breadcrumb(
        Breadcrumb::new("POST /login with api_key=sk_live_4eC39HqLyjWDarjtT1zdp7dc")
            .category("http")
            .data("token", "tok_77aa88bb99")
            .data("params", json!({"private_key": "pk-zz-1122", "page": 2}))
            .data("upstream", DB_URL),
    );
}

#[test]
fn secrets_are_redacted_everywhere_in_a_report() {
    let _turn = client_turn();
    let ((), reports) = testing::capture(|| {
        fill_scope_with_secrets();
        crashbox::capture_error(&login_error());
        crashbox::capture_message(
            format!("token {JWT} for {AWS_KEY} rejected; key:\n{PEM}\nretry with password=hunter2"),
            Level::Warning,
        );
        let panicked = std::panic::catch_unwind(|| {
            panic!("could not log in with password=hunter2 to {DB_URL}");
        });
        assert!(panicked.is_err());
    });
    assert_eq!(reports.len(), 3, "{reports:#?}");
    for report in &reports {
        assert_no_secrets(report, SECRET_PARTS);
        assert!(report.to_json().contains(REDACTED), "{}", report.to_json());

        // Key-based: the whole value.
        assert_eq!(report.tag("api_key"), Some(REDACTED));
        assert_eq!(report.tag("X-Auth-Token"), Some(REDACTED));
        assert_eq!(report.extra["client_secret"], REDACTED);
        assert_eq!(report.extra["request"]["items"][0]["password"], REDACTED);
        assert_eq!(
            report.extra["request"]["headers"]["Authorization"],
            REDACTED
        );
        assert_eq!(report.extra["request"]["headers"]["Cookie"], REDACTED);
        // Around the secrets, the text stays.
        assert_eq!(report.extra["request"]["headers"]["Accept"], "text/html");
        assert_eq!(
            report.tag("upstream"),
            Some("postgres://app:[redacted]@db:5432/x")
        );
        assert_eq!(report.tag("auth_header"), Some("Bearer [redacted]"));
        assert_eq!(
            report.extra["request"]["url"],
            "https://bob:[redacted]@example.com/login"
        );
        assert_eq!(
            report.extra["log_line"],
            "retrying with password=[redacted]"
        );
        // User fields: the JWT id goes, the rest stays.
        let user = report.user.as_ref().expect("user");
        assert_eq!(user.username.as_deref(), Some("alice"));
        assert_eq!(user.email.as_deref(), Some("alice@example.com"));
        assert_ne!(user.id.as_deref(), Some(JWT));
        // Breadcrumbs: message and data.
        let crumb = report
            .breadcrumbs
            .iter()
            .find(|b| b.category.as_deref() == Some("http"))
            .expect("the breadcrumb");
        assert_eq!(crumb.message, "POST /login with api_key=[redacted]");
        assert_eq!(crumb.data["token"], REDACTED);
        assert_eq!(crumb.data["params"]["private_key"], REDACTED);
        assert_eq!(crumb.data["params"]["page"], 2);
        assert_eq!(
            crumb.data["upstream"],
            "postgres://app:[redacted]@db:5432/x"
        );
        let fingerprint = report.fingerprint.as_ref().expect("fingerprint");
        assert_eq!(fingerprint[0], "login");
    }

    let error = reports.iter().find(|r| r.kind == Kind::Error).unwrap();
    assert_eq!(error.exceptions.len(), 2);
    assert_eq!(
        error.message,
        "login failed: Authorization: Bearer [redacted]"
    );
    assert_eq!(error.exceptions[0].message, error.message);
    assert_eq!(
        error.exceptions[1].message,
        "connect to postgres://app:[redacted]@db:5432/x refused"
    );
    let message = reports.iter().find(|r| r.kind == Kind::Message).unwrap();
    assert!(message
        .message
        .starts_with("token [redacted] for [redacted] rejected"));
    assert!(message.message.contains("password=[redacted]"));
    let panic = reports.iter().find(|r| r.kind == Kind::Panic).unwrap();
    assert_eq!(
        panic.message,
        "could not log in with password=[redacted] to postgres://app:[redacted]@db:5432/x"
    );
    assert_eq!(panic.exceptions[0].message, panic.message);
}

/// Keys whose values are secret, in case and separator variants.
const SECRET_KEYS: &[&str] = &[
    "password",
    "Password",
    "PASSWORD",
    "db_password",
    "dbPassword",
    "db-password",
    "DB.PASSWORD",
    "passwd",
    "user_passwd",
    "secret",
    "client_secret",
    "clientSecret",
    "token",
    "access_token",
    "accessToken",
    "X-Auth-Token",
    "api_key",
    "apiKey",
    "API-KEY",
    "apikey",
    "x-api-key",
    "auth",
    "authorization",
    "Authorization",
    "proxy-authorization",
    "cookie",
    "Set-Cookie",
    "session",
    "session_id",
    "sessionId",
    "credential",
    "credentials",
    "aws_credentials",
    "private_key",
    "privateKey",
    "PRIVATE-KEY",
    "ssh_private_key",
];

/// Keys that only look like secret ones.
const HARMLESS_KEYS: &[&str] = &[
    "token_count",
    "tokens_used",
    "max_tokens",
    "author",
    "authority",
    "session_count",
    "keyboard",
    "monkey",
    "primary_key",
    "tokenizer",
    "passenger",
    "secretary",
    "auth_method",
    "cookie_consent",
];

/// A value that no text rule would touch: only its key can get it redacted.
fn plain_value(i: usize) -> String {
    format!("plain value {i}")
}

/// One report with each of `keys` as a tag, an extra (also nested) and a
/// breadcrumb datum, each holding [`plain_value`].
fn report_with_keys(keys: &[&str]) -> Report {
    let ((), mut reports) = testing::capture(|| {
        crashbox::configure_scope(|scope| {
            for (i, key) in keys.iter().enumerate() {
                scope.set_tag(*key, plain_value(i));
                scope.set_extra(*key, plain_value(i));
            }
            let nested: serde_json::Map<String, Value> = keys
                .iter()
                .enumerate()
                .map(|(i, key)| (key.to_string(), json!([{ "v": plain_value(i) }])))
                .collect();
            scope.set_extra("nested", json!({ "deeper": nested }));
        });
        // At most 32 data entries a breadcrumb: one breadcrumb per key.
        for (i, key) in keys.iter().enumerate() {
            crashbox::add_breadcrumb(
                Breadcrumb::new(format!("crumb {i}")).data(*key, plain_value(i)),
            );
        }
        crashbox::capture_message("with keys", Level::Info);
    });
    assert_eq!(reports.len(), 1);
    reports.remove(0)
}

#[test]
fn values_under_secret_keys_are_redacted_in_tags_extra_and_breadcrumbs() {
    let _turn = client_turn();
    let report = report_with_keys(SECRET_KEYS);
    assert_eq!(report.breadcrumbs.len(), SECRET_KEYS.len());
    for (i, key) in SECRET_KEYS.iter().enumerate() {
        assert_eq!(report.tag(key), Some(REDACTED), "tag {key}");
        assert_eq!(report.extra[*key], REDACTED, "extra {key}");
        assert_eq!(
            report.extra["nested"]["deeper"][*key], REDACTED,
            "nested extra {key}"
        );
        assert_eq!(
            report.breadcrumbs[i].data[*key], REDACTED,
            "breadcrumb {key}"
        );
    }
    assert_no_secrets(&report, &["plain value"]);
}

#[test]
fn harmless_look_alike_keys_are_left_alone() {
    let _turn = client_turn();
    let report = report_with_keys(HARMLESS_KEYS);
    for (i, key) in HARMLESS_KEYS.iter().enumerate() {
        let value = plain_value(i);
        assert_eq!(report.tag(key), Some(value.as_str()), "tag {key}");
        assert_eq!(report.extra[*key], value, "extra {key}");
        assert_eq!(
            report.extra["nested"]["deeper"][*key],
            json!([{ "v": value }]),
            "nested extra {key}"
        );
        assert_eq!(report.breadcrumbs[i].data[*key], value, "breadcrumb {key}");
    }
    assert!(!report.to_json().contains(REDACTED), "{}", report.to_json());
}

/// Text that only looks like it holds a credential.
const HARMLESS_TEXTS: &[&str] = &[
    "the author wrote 3 tokens",
    "https://example.com/a?b=1",
    "user@example.com",
    "mail bob@example.com about https://example.com/login?next=/home",
    "-----BEGIN CERTIFICATE-----\nMIIC5zCCAc+gAwIBAgIJAKfHq4xZ\n-----END CERTIFICATE-----",
    "-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZIhvcNAQEBBQADSwAw\n-----END PUBLIC KEY-----",
    "ssh://git@github.com/org/repo.git",
    "token_count=42 max_tokens=4096 session_count=7",
    "primary_key: 17",
    "the bearer of bad news",
    "a basic understanding",
    "std::io::Error: kind NotFound",
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
    "request 3f2c9a1e-7b4d-4c2a-9e1f-0a8b6c5d4e3f took 120ms",
];

#[test]
fn harmless_look_alike_text_is_left_alone() {
    let _turn = client_turn();
    let ((), reports) = testing::capture(|| {
        for (i, text) in HARMLESS_TEXTS.iter().enumerate() {
            crashbox::with_scope(
                |scope| {
                    scope.set_tag("note", *text);
                    scope.set_extra("note", *text);
                },
                || {
                    crashbox::add_breadcrumb(Breadcrumb::new(*text).category(format!("c{i}")));
                    crashbox::capture_message(*text, Level::Info);
                    crashbox::capture_error(&std::io::Error::other(*text));
                },
            );
        }
    });
    assert_eq!(reports.len(), 2 * HARMLESS_TEXTS.len());
    for (i, pair) in reports.chunks(2).enumerate() {
        let text = HARMLESS_TEXTS[i];
        for report in pair {
            assert_eq!(report.message, text);
            assert_eq!(report.tag("note"), Some(text));
            assert_eq!(report.extra["note"], text);
            let crumb = report
                .breadcrumbs
                .iter()
                .find(|b| b.category.as_deref() == Some(&format!("c{i}")))
                .expect("the breadcrumb");
            assert_eq!(crumb.message, text);
            assert!(!report.to_json().contains(REDACTED), "{}", report.to_json());
        }
        assert_eq!(pair[1].exceptions[0].message, text);
    }
}

// ---------------------------------------------------------------------------
// Options, through an installed client and the `memory` collector.

#[test]
fn scrub_false_delivers_values_unchanged() {
    let client = MemoryClient::start(Options::new().scrub(false));
    crashbox::configure_scope(|scope| {
        scope.set_tag("api_key", "k-live-51HxQ9");
        scope.set_extra("password", "hunter2");
    });
    crashbox::add_breadcrumb(Breadcrumb::new("login").data("token", "tok_77aa88bb99"));
    crashbox::capture_error(&login_error()).expect("captured");
    let text = format!("GET https://bob:hunter2@example.com failed with {JWT}");
    crashbox::capture_message(&text, Level::Error).expect("captured");
    let reports = client.reports();
    assert_eq!(reports.len(), 2, "{reports:#?}");
    for report in &reports {
        assert_eq!(report.tag("api_key"), Some("k-live-51HxQ9"));
        assert_eq!(report.extra["password"], "hunter2");
        assert_eq!(report.breadcrumbs[0].data["token"], "tok_77aa88bb99");
        assert!(!report.to_json().contains(REDACTED), "{}", report.to_json());
    }
    let error = reports.iter().find(|r| r.kind == Kind::Error).unwrap();
    assert_eq!(
        error.message,
        format!("login failed: Authorization: Bearer {BEARER_TOKEN}")
    );
    assert_eq!(
        error.exceptions[1].message,
        format!("connect to {DB_URL} refused")
    );
    let message = reports.iter().find(|r| r.kind == Kind::Message).unwrap();
    assert_eq!(message.message, text);
}

#[test]
fn scrubbing_is_on_by_default_with_an_installed_client() {
    let client = MemoryClient::start(Options::new());
    crashbox::configure_scope(|scope| scope.set_tag("api_key", "k-live-51HxQ9"));
    crashbox::add_breadcrumb(Breadcrumb::new("login").data("token", "tok_77aa88bb99"));
    crashbox::capture_error(&login_error()).expect("captured");
    let reports = client.reports();
    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert_no_secrets(&reports[0], SECRET_PARTS);
    assert_eq!(reports[0].tag("api_key"), Some(REDACTED));
    assert_eq!(reports[0].breadcrumbs[0].data["token"], REDACTED);
}

#[test]
fn scrub_keys_adds_keys_to_the_built_in_ones() {
    let client = MemoryClient::start(Options::new().scrub_keys(["ssn"]));
    crashbox::configure_scope(|scope| {
        scope.set_tag("customer_ssn", "123-45-6789");
        scope.set_tag("ssn_count", "3");
        scope.set_tag("api_key", "k-live-51HxQ9");
        scope.set_extra("SSN", "987-65-4321");
        scope.set_extra(
            "patient",
            json!({"patientSsn": "555-12-3456", "name": "Bob"}),
        );
    });
    crashbox::add_breadcrumb(Breadcrumb::new("lookup").data("ssn", "111-22-3333"));
    crashbox::capture_message("lookup failed for ssn=123-45-6789", Level::Error).expect("captured");
    let reports = client.reports();
    assert_eq!(reports.len(), 1, "{reports:#?}");
    let report = &reports[0];
    assert_eq!(report.tag("customer_ssn"), Some(REDACTED));
    assert_eq!(report.extra["SSN"], REDACTED);
    assert_eq!(report.extra["patient"]["patientSsn"], REDACTED);
    assert_eq!(report.extra["patient"]["name"], "Bob");
    assert_eq!(report.breadcrumbs[0].data["ssn"], REDACTED);
    assert_eq!(report.message, "lookup failed for ssn=[redacted]");
    // The built-in keys still apply; other keys are not caught.
    assert_eq!(report.tag("api_key"), Some(REDACTED));
    assert_eq!(report.tag("ssn_count"), Some("3"));
    assert_no_secrets(
        report,
        &["123-45-6789", "987-65-4321", "555-12-3456", "111-22-3333"],
    );
}

// ---------------------------------------------------------------------------
// The spool.

/// Where the parent tells the spool child to put its spool.
const SPOOL_ENV: &str = "CRASHBOX_TEST_PRIVACY_SPOOL";

/// A collector that is always down.
struct Down;

impl Transport for Down {
    fn send(&mut self, _: &[Report]) -> Result<(), TransportError> {
        Err(TransportError::Retryable("collector is down".into()))
    }
}

/// Every regular file under `dir`, at any depth.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read spool dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// The contents of every file under `dir`, with their paths.
fn read_all(dir: &Path) -> Vec<(PathBuf, String)> {
    files_under(dir)
        .into_iter()
        .filter_map(|path| {
            // A file may be renamed away between listing and reading.
            let bytes = std::fs::read(&path).ok()?;
            Some((path, String::from_utf8_lossy(&bytes).into_owned()))
        })
        .collect()
}

/// In the spool child: panics if any file under `dir` holds a secret;
/// returns how many files mention `marker`.
fn check_spool(dir: &Path, what: &str, marker: &str) -> usize {
    let files = read_all(dir);
    for (path, text) in &files {
        let found: Vec<&&str> = SECRET_PARTS.iter().filter(|p| text.contains(**p)).collect();
        assert!(
            found.is_empty(),
            "{what}: secrets {found:?} in {}:\n{text}",
            path.display()
        );
    }
    files
        .iter()
        .filter(|(_, text)| text.contains(marker))
        .count()
}

const ERROR_MARKER: &str = "spool-marker-error";
const PANIC_MARKER: &str = "spool-marker-panic";

errors::test_error! {
    /// The spooled error: a marker to find it by, and a bearer token.
    SpooledError => "spool-marker-error: Authorization: Bearer abc123def456ghi", source: io::Error
}

#[test]
fn nothing_secret_reaches_the_spool() {
    let spool = TempDir::new("privacy-spool");
    let out = run_child(
        &child!(child_spool_secrets),
        &[(SPOOL_ENV, OsString::from(spool.path()))],
    );
    out.assert_success();
    // The reports did reach the disk (so the checks below looked at them).
    assert!(out.number("panic_files_after_panic") >= 1, "{}", out.dump());
    assert!(out.number("error_files_at_end") >= 1, "{}", out.dump());
    assert!(out.number("panic_files_at_end") >= 1, "{}", out.dump());
    assert_eq!(out.number("spooled"), 2, "{}", out.dump());
    // And again from the parent, after the child is gone.
    let files = read_all(spool.path());
    assert!(
        files.iter().any(|(_, text)| text.contains(ERROR_MARKER)),
        "{files:#?}"
    );
    assert!(
        files.iter().any(|(_, text)| text.contains(PANIC_MARKER)),
        "{files:#?}"
    );
    for (path, text) in &files {
        let found: Vec<&&str> = SECRET_PARTS.iter().filter(|p| text.contains(**p)).collect();
        assert!(found.is_empty(), "secrets {found:?} in {}", path.display());
        if text.contains(ERROR_MARKER) || text.contains(PANIC_MARKER) {
            assert!(text.contains(REDACTED), "{}: {text}", path.display());
        }
    }
}

/// Run by `nothing_secret_reaches_the_spool`.
#[test]
#[ignore = "child process of `nothing_secret_reaches_the_spool`"]
fn child_spool_secrets() {
    assert_child();
    let dir = PathBuf::from(util::env_var(SPOOL_ENV));
    let guard = crashbox::init(
        Options::new()
            .transport(Down)
            .spool_dir(&dir)
            .max_attempts(1)
            .aggregation_window(Duration::ZERO),
    )
    .expect("init");
    assert_eq!(crashbox::spool_dir().as_deref(), Some(dir.as_path()));
    fill_scope_with_secrets();
    let err = SpooledError::new(
        std::io::ErrorKind::ConnectionRefused,
        &format!("connect to {DB_URL} refused"),
    );
    crashbox::capture_error(&err).expect("captured");
    let panicked = std::panic::catch_unwind(|| {
        panic!("{PANIC_MARKER}: login with password=hunter2 and token {JWT}");
    });
    assert!(panicked.is_err());
    // The hook wrote the panic's raw capture before it returned.
    report_value(
        "panic_files_after_panic",
        check_spool(&dir, "after the panic", PANIC_MARKER),
    );
    crashbox::flush(FLUSH);
    drop(guard);
    report_value("spooled", crashbox::stats().spooled);
    report_value(
        "error_files_at_end",
        check_spool(&dir, "after shutdown", ERROR_MARKER),
    );
    report_value(
        "panic_files_at_end",
        check_spool(&dir, "after shutdown", PANIC_MARKER),
    );
}

// ---------------------------------------------------------------------------
// send_default_pii.

#[test]
fn by_default_no_user_is_made_up_and_explicit_users_are_kept() {
    let _turn = client_turn();
    let ((), reports) = testing::capture(|| {
        crashbox::capture_message("no user", Level::Info);
        crashbox::configure_scope(|scope| {
            scope.set_user(Some(
                User::with_id("42")
                    .username("bob")
                    .email("bob@example.com")
                    .ip_address("10.1.2.3"),
            ))
        });
        crashbox::capture_message("explicit user", Level::Info);
    });
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].user, None, "{:?}", reports[0].user);
    let json: Value = serde_json::from_str(&reports[0].to_json()).unwrap();
    assert_eq!(json["user"], Value::Null);
    assert_eq!(
        reports[1].user,
        Some(
            User::with_id("42")
                .username("bob")
                .email("bob@example.com")
                .ip_address("10.1.2.3")
        )
    );
}

#[test]
fn send_default_pii_fills_in_the_login_name_only_when_asked() {
    let out = run_child(
        &child!(child_default_pii),
        &[("USER", "alice".into()), ("LOGNAME", "alice".into())],
    );
    out.assert_success();
    let user = |key: &str| -> Value {
        serde_json::from_str(&out.value(key)).unwrap_or_else(|e| panic!("{e}\n{}", out.dump()))
    };
    // Off (the default): nothing added, even with $USER set.
    assert_eq!(user("off_no_user"), Value::Null, "{}", out.dump());
    assert_eq!(user("off_id_only"), json!({"id": "42"}), "{}", out.dump());
    // On: the login name fills a missing username, nothing else.
    assert_eq!(user("on_no_user"), json!({"username": "alice"}));
    assert_eq!(user("on_id_only"), json!({"id": "42", "username": "alice"}));
    // Either way, what was set explicitly is kept.
    let explicit = json!({"id": "7", "username": "bob", "ip_address": "10.1.2.3"});
    assert_eq!(user("off_explicit"), explicit, "{}", out.dump());
    assert_eq!(user("on_explicit"), explicit, "{}", out.dump());
}

/// Run by `send_default_pii_fills_in_the_login_name_only_when_asked`.
#[test]
#[ignore = "child process of `send_default_pii_fills_in_the_login_name_only_when_asked`"]
fn child_default_pii() {
    assert_child();
    for (label, pii) in [("off", false), ("on", true)] {
        let client = MemoryClient::start(Options::new().send_default_pii(pii));
        crashbox::capture_message("no user", Level::Info).expect("captured");
        crashbox::configure_scope(|s| s.set_user(Some(User::with_id("42"))));
        crashbox::capture_message("id only", Level::Info).expect("captured");
        crashbox::configure_scope(|s| {
            s.set_user(Some(
                User::with_id("7").username("bob").ip_address("10.1.2.3"),
            ))
        });
        crashbox::capture_message("explicit", Level::Info).expect("captured");
        let reports = client.reports();
        assert_eq!(reports.len(), 3, "{reports:#?}");
        for (name, report) in ["no_user", "id_only", "explicit"].iter().zip(&reports) {
            let json: Value = serde_json::from_str(&report.to_json()).unwrap();
            report_value(&format!("{label}_{name}"), &json["user"]);
        }
        drop(client);
    }
}

#[cfg(feature = "http")]
#[test]
fn the_sentry_collector_asks_for_the_ip_only_with_send_default_pii() {
    use http_server::Server;

    /// The event of the one envelope `server` got.
    fn event(server: &Server) -> Value {
        let requests = server.requests();
        assert_eq!(requests.len(), 1, "{requests:#?}");
        let text = requests[0].text();
        let payload = text.trim_end().lines().nth(2).expect("an event item");
        serde_json::from_str(payload).expect("the event is JSON")
    }

    for (pii, user) in [
        (false, Value::Null),
        (true, json!({"ip_address": "{{auto}}", "username": "alice"})),
    ] {
        let server = Server::start();
        let out = util::run_against(
            &child!(child_sentry_pii),
            &util::sentry_collector("0123abcdpublickey", server.port(), 42),
            &[
                ("CRASHBOX_TEST_PII", pii.to_string().into()),
                ("USER", "alice".into()),
                ("LOGNAME", "alice".into()),
            ],
        );
        assert_eq!(out.value("flushed"), "true", "{}", out.dump());
        let event = event(&server);
        assert_eq!(event["user"], user, "send_default_pii({pii}): {event}");
    }
}

/// Run by `the_sentry_collector_asks_for_the_ip_only_with_send_default_pii`.
#[cfg(feature = "http")]
#[test]
#[ignore = "child process of `the_sentry_collector_asks_for_the_ip_only_with_send_default_pii`"]
fn child_sentry_pii() {
    assert_child();
    let pii = util::env_var("CRASHBOX_TEST_PII") == "true";
    let guard = crashbox::init(util::fast_options().send_default_pii(pii)).expect("init");
    crashbox::capture_message("who sent this?", Level::Error).expect("captured");
    report_value("flushed", crashbox::flush(FLUSH));
    drop(guard);
}
