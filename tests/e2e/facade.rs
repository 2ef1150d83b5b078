//! A library that depends only on crashbox-api (tests/facade_app/lib) and an
//! application that installs crashbox (tests/facade_app/app), built as users
//! build them: the library's captures reach the application's collector,
//! with the library's function as frame 0 and no frame of the facade,
//! crashbox or the stack walker. The same library also reports through a
//! copy of crashbox with a semver-incompatible version.
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::fixture_build::{self, bare, copy_dir};
use crashbox::Report;

/// Capture modes of the application and the library function frame 0 must be in.
const MODES: &[(&str, &str)] = &[("error", "save"), ("report", "load"), ("message", "warn")];

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/facade_app")
}

/// Runs `binary MODE`, which must succeed; returns its reports and what
/// it printed.
fn run(binary: &Path, mode: &str) -> (Vec<Report>, String) {
    let (out, reports) = fixture_build::run_reporting(binary, mode);
    assert!(
        out.status.success(),
        "{} {mode}: {}\n{}",
        binary.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (reports, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Problems with `report`, made by the library's `expected` function.
fn check(report: &Report, expected: &str, crashbox_sources: &[PathBuf]) -> Vec<String> {
    let mut problems = Vec::new();
    match report.frames.first().and_then(|f| f.function.as_deref()) {
        Some(f) if bare(f) == expected => {}
        other => problems.push(format!("frame 0 is {other:?}, not {expected}")),
    }
    for (i, frame) in report.frames.iter().enumerate() {
        let function = frame.function.as_deref().unwrap_or("");
        let foreign = [
            "crashbox::",
            "<crashbox::",
            "crashbox_api::",
            "<crashbox_api::",
            "backtrace::",
        ]
        .iter()
        .any(|prefix| function.starts_with(prefix))
            || frame.file.as_deref().is_some_and(|f| {
                crashbox_sources
                    .iter()
                    .any(|own| Path::new(f).starts_with(own))
                    || f.contains("/backtrace-0.")
            });
        if foreign {
            problems.push(format!(
                "frame {i} is the facade's, crashbox's or the walker's: {frame:?}"
            ));
        }
    }
    let lib = fixture_dir().join("lib/src/lib.rs");
    match &report.location {
        Some(location) if Path::new(&location.file).ends_with("lib/src/lib.rs") => {}
        other => problems.push(format!("location {other:?} is not in {}", lib.display())),
    }
    problems
}

fn check_modes(binary: &Path, crashbox_sources: &[PathBuf]) -> Vec<String> {
    let mut problems = Vec::new();
    for &(mode, expected) in MODES {
        let (reports, printed) = run(binary, mode);
        let [report] = &reports[..] else {
            problems.push(format!("{mode}: {} reports, not 1", reports.len()));
            continue;
        };
        problems.extend(
            check(report, expected, crashbox_sources)
                .into_iter()
                .map(|p| format!("{mode}: {p}")),
        );
        // `error` and `message` print the id the facade returned.
        let printed_id = printed.lines().find_map(|l| l.strip_prefix("id "));
        match printed_id {
            Some(id) if id == report.id.to_string() => {}
            None if mode == "report" => {}
            other => problems.push(format!(
                "{mode}: the facade returned id {other:?}, the report has {}",
                report.id
            )),
        }
        if mode == "error" {
            if report.exception_types() != ["std::io::Error"] {
                problems.push(format!("error: exceptions {:?}", report.exception_types()));
            }
            if report.tag("component") != Some("store") {
                problems.push(format!("error: tags {:?}", report.tags));
            }
            match report.breadcrumbs.last() {
                Some(crumb)
                    if crumb.message == "opening the store"
                        && crumb.category.as_deref() == Some("store")
                        && crumb.data["path"] == "/etc/app.toml" => {}
                other => problems.push(format!("error: breadcrumb {other:?}")),
            }
        }
    }
    problems
}

fn own_sources() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    vec![root.join("src"), root.join("api/src")]
}

#[test]
fn a_library_on_the_facade_reports_through_the_application_crashbox() {
    let manifest = fixture_dir().join("Cargo.toml");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("facade-target");
    let mut problems = Vec::new();
    for profile in ["release", "line-tables"] {
        let binary = fixture_build::build(&manifest, profile, &target, "facade-app");
        problems.extend(
            check_modes(&binary, &own_sources())
                .into_iter()
                .map(|p| format!("{profile}: {p}")),
        );
        // Before `init` the facade does nothing (the application asserts
        // it returned no id and had no backend); after it, one report.
        let (reports, _) = run(&binary, "before-init-error");
        if reports.len() != 1 {
            problems.push(format!(
                "{profile}: before-init-error made {} reports",
                reports.len()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_library_on_the_facade_reports_through_another_crashbox_version() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("facade-other-version");
    let _ = std::fs::remove_dir_all(&work);
    // crashbox as a later, semver-incompatible release: 0.x → 0.(x+1), its
    // manifest as a registry copy has it (no workspace table), on the
    // same facade.
    let copy = work.join("crashbox");
    std::fs::create_dir_all(&copy).unwrap();
    for item in ["build.rs", "README.md", "src", "benches", "examples"] {
        let from = root.join(item);
        if from.is_dir() {
            copy_dir(&from, &copy.join(item));
        } else if from.exists() {
            std::fs::copy(&from, copy.join(item)).unwrap();
        }
    }
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .expect("a version line");
    let mut parts = version.split('.');
    let (major, minor) = (parts.next().unwrap(), parts.next().unwrap());
    assert_eq!(major, "0", "with crashbox 1.x, bump the major version here");
    let later = format!("0.{}.0", minor.parse::<u32>().unwrap() + 1);
    let api = root.join("api");
    let mut out = String::new();
    for line in fixture_build::without_workspace(&manifest).lines() {
        if line == format!("version = \"{version}\"") {
            out.push_str(&format!("version = \"{later}\"\n"));
        } else if line.starts_with("crashbox-api = ") {
            out.push_str(&format!(
                "crashbox-api = {{ version = \"0.1\", path = {:?} }}\n",
                api.display().to_string()
            ));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(out.contains(&later) && !out.contains("[workspace]"));
    std::fs::write(copy.join("Cargo.toml"), out).unwrap();

    let app = work.join("app");
    copy_dir(&fixture_dir().join("app/src"), &app.join("app/src"));
    copy_dir(&fixture_dir().join("lib/src"), &app.join("lib/src"));
    std::fs::write(
        app.join("Cargo.toml"),
        std::fs::read_to_string(fixture_dir().join("Cargo.toml")).unwrap(),
    )
    .unwrap();
    let app_manifest = std::fs::read_to_string(fixture_dir().join("app/Cargo.toml"))
        .unwrap()
        .replace(
            "path = \"../../..\"",
            &format!("path = {:?}", copy.display().to_string()),
        );
    assert!(app_manifest.contains("facade-other-version"));
    std::fs::write(app.join("app/Cargo.toml"), app_manifest).unwrap();
    let lib_manifest = std::fs::read_to_string(fixture_dir().join("lib/Cargo.toml"))
        .unwrap()
        .replace(
            "path = \"../../../api\"",
            &format!("path = {:?}", api.display().to_string()),
        );
    std::fs::write(app.join("lib/Cargo.toml"), lib_manifest).unwrap();

    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("facade-other-target");
    let binary = fixture_build::build(
        &app.join("Cargo.toml"),
        "line-tables",
        &target,
        "facade-app",
    );
    // The application really is on the later version.
    let tree = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "tree",
            "--quiet",
            "--offline",
            "--depth",
            "1",
            "--manifest-path",
        ])
        .arg(app.join("app/Cargo.toml"))
        .output()
        .expect("cargo tree runs");
    let tree = String::from_utf8_lossy(&tree.stdout);
    assert!(tree.contains(&format!("crashbox v{later}")), "{tree}");
    let mut sources = own_sources();
    sources.push(copy.join("src"));
    let problems = check_modes(&binary, &sources);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
