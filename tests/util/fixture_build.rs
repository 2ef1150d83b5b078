//! Building tests/fixture_app, or a copy of it, the way its users would:
//! `cargo build --profile PROFILE`, with no flags from the environment;
//! and running what was built, its reports written to a file.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Builds the package of `manifest` in `profile` into `target_dir`;
/// returns the binary named `binary`.
pub fn build(manifest: &Path, profile: &str, target_dir: &Path, binary: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "--profile", profile, "--manifest-path"])
        .arg(manifest)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "building {} in {profile} failed:\n{}",
        manifest.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir.join(profile).join(binary)
}

/// crashbox's manifest as a registry or vendored copy has it: without its
/// `[workspace]` table (which only the repository's checkout needs).
pub fn without_workspace(manifest: &str) -> String {
    let mut out = String::new();
    let mut in_workspace = false;
    for line in manifest.lines() {
        if line.starts_with('[') {
            in_workspace = line.trim() == "[workspace]";
        }
        if !in_workspace {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Copies the directory `from` to `to`, leaving out the benches' result
/// folders (`compare`, `rss`).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n == "compare" || n == "rss")
            {
                continue;
            }
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

/// Runs `binary MODE` with a `file://` collector of its own (tests running
/// at once run the same build); returns what it printed and the reports it
/// wrote. Its exit status is the caller's to check.
pub fn run_reporting(binary: &Path, mode: &str) -> (Output, Vec<crashbox::Report>) {
    run_reporting_with(binary, mode, None)
}

/// [`run_reporting`] with `CRASHBOX_SPOOL_DIR` set to `spool`: the run
/// keeps its spool there, as the next run on that directory will.
pub fn run_reporting_in(
    binary: &Path,
    mode: &str,
    spool: &Path,
) -> (Output, Vec<crashbox::Report>) {
    run_reporting_with(binary, mode, Some(spool))
}

fn run_reporting_with(
    binary: &Path,
    mode: &str,
    spool: Option<&Path>,
) -> (Output, Vec<crashbox::Report>) {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = binary.parent().unwrap().join("reports");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{mode}-{}-{run}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&file);
    let mut command = Command::new(binary);
    command
        .arg(mode)
        .env("CRASHBOX_COLLECTOR", format!("file://{}", file.display()))
        .env_remove("SENTRY_DSN")
        .env_remove("CRASHBOX_SYMBOLICATE");
    if let Some(spool) = spool {
        command.env("CRASHBOX_SPOOL_DIR", spool);
    }
    let out = command.output().expect("the application runs");
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let _ = std::fs::remove_file(&file);
    let reports = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("a report per line"))
        .collect();
    (out, reports)
}

/// A function's bare name: its last path segment, without generics.
pub fn bare(name: &str) -> &str {
    let name = name.split('<').next().unwrap_or(name);
    name.rsplit("::").next().unwrap_or(name)
}
