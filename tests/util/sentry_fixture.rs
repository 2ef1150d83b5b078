//! The fixture application of tests/fixture_app, built with crashbox's
//! `http` feature so it can send Sentry envelopes, for the tests that check
//! what Sentry-compatible servers make of its events.
//!
//! tests/fixture_app depends on crashbox without default features, so it
//! has no network collectors, and its lock file holds no HTTP stack. The
//! copy made here differs from it only in its manifest: the `http` feature,
//! an absolute path to crashbox, and its own package name, so its binary
//! never replaces the plain fixture's in the target directory both share
//! with tests/e2e/build_profiles.rs. Its sources stay the fixture's, byte for
//! byte, so the frame each mode must start at is the same.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{self, ChildOutput};

/// The package name of the copy, and so its binary's name.
pub const PACKAGE: &str = "fixture-app-sentry";

/// The release the copy reports (`crashbox::release!()`).
pub const RELEASE: &str = "fixture-app-sentry@0.1.0";

/// The longest one run of the fixture may take.
const RUN_DEADLINE: Duration = Duration::from_secs(60);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture_dir() -> PathBuf {
    repo().join("tests/fixture_app")
}

/// Where the copy lives.
pub fn app_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixture-sentry-app")
}

/// The copy's sources: its in-app frames' files are under here.
pub fn sources() -> PathBuf {
    app_dir().join("src")
}

/// The target directory tests/e2e/build_profiles.rs builds the fixture in:
/// crashbox's dependencies are compiled once for both.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixture-target")
}

/// Writes `contents` to `path` unless it already holds them: a rewrite
/// would make cargo rebuild the copy every time.
fn write_if_changed(path: &Path, contents: &[u8]) {
    if std::fs::read(path).ok().as_deref() != Some(contents) {
        std::fs::write(path, contents)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
}

#[track_caller]
fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "tests/fixture_app/Cargo.toml no longer has `{from}` once: update tests/util/sentry_fixture.rs"
    );
    text.replacen(from, to, 1)
}

/// Lays out the copy of the fixture with crashbox's `http` feature.
fn prepare() -> PathBuf {
    let app = app_dir();
    std::fs::create_dir_all(app.join("src")).unwrap();
    for entry in std::fs::read_dir(fixture_dir().join("src")).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_file() {
            write_if_changed(
                &app.join("src").join(entry.file_name()),
                &std::fs::read(entry.path()).unwrap(),
            );
        }
    }
    let manifest = std::fs::read_to_string(fixture_dir().join("Cargo.toml")).unwrap();
    let manifest = replace_once(
        &manifest,
        "name = \"fixture-app\"",
        &format!("name = \"{PACKAGE}\""),
    );
    let crashbox = repo().to_str().expect("a UTF-8 checkout path");
    let manifest = replace_once(
        &manifest,
        "path = \"../..\"",
        &format!("path = {crashbox:?}"),
    );
    let manifest = replace_once(
        &manifest,
        "features = [\"panic\"]",
        "features = [\"panic\", \"http\"]",
    );
    write_if_changed(&app.join("Cargo.toml"), manifest.as_bytes());
    // crashbox's own lock file pins the HTTP stack's versions: the ones the
    // rest of the tests already built, available offline.
    let lock = app.join("Cargo.lock");
    if !lock.exists() {
        std::fs::copy(repo().join("Cargo.lock"), &lock).unwrap();
    }
    app.join("Cargo.toml")
}

/// Builds the copy in `profile` of tests/fixture_app/Cargo.toml (such as
/// `line-tables`); returns its binary.
pub fn build(profile: &str) -> PathBuf {
    crate::util::fixture_build::build(&prepare(), profile, &target_dir(), PACKAGE)
}

/// Runs `binary MODE` reporting to `collector` (only crashbox's variables
/// given here are set); panics if it runs longer than a minute.
pub fn run(binary: &Path, mode: &str, collector: &str) -> ChildOutput {
    let mut command = Command::new(binary);
    command
        .arg(mode)
        .env("CRASHBOX_COLLECTOR", collector)
        .env_remove("SENTRY_DSN")
        .env_remove("CRASHBOX_SYMBOLICATE")
        .env_remove("CRASHBOX_RELEASE")
        .env_remove("CRASHBOX_ENVIRONMENT")
        .env_remove("CRASHBOX_SPOOL_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{} did not start: {e}", binary.display()));
    util::wait_for_exit(child, start, RUN_DEADLINE, &format!("fixture {mode}"))
}
