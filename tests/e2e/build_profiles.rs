//! Reports are right in every build users ship.
//!
//! A small application (tests/fixture_app, depending on crashbox by path) is
//! built in each release profile users ship, run once per kind of capture,
//! and its reports checked: frame 0 is the application's function that
//! captured or panicked, no frame of crashbox or of the stack walker
//! anywhere, `in_app` exactly on the application's frames, no `0x0` frame,
//! one fingerprint across `debug = false`, `"line-tables-only"` and
//! `true`, and the executable among the images with its build id. A stripped
//! build's frame 0 is checked by address: the application prints where its
//! functions are, and frame 0 must fall in the expected one.
//! A copy of the application with crashbox vendored inside its workspace is
//! checked too.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::fixture_build::{self, bare, copy_dir};
use crashbox::Report;

use object::Object;

/// Capture modes of the fixture and the function frame 0 must be in.
const MODES: &[(&str, &str)] = &[
    ("error", "save"),
    ("report", "load"),
    ("message", "warn"),
    ("thread", "save"),
    ("panic-index", "lookup"),
    ("panic-unwrap", "parse_port"),
];

/// Profiles of tests/fixture_app/Cargo.toml: name, whether the binary has
/// function names, whether the fingerprint must match the other unstripped
/// profiles.
const PROFILES: &[(&str, bool, bool)] = &[
    ("release", true, true),
    ("line-tables", true, true),
    ("full-debug", true, true),
    ("strip-debuginfo", true, true),
    ("stripped", false, false),
    ("abort", true, false),
];

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixture_app")
}

fn target_dir(manifest: &Path) -> PathBuf {
    let name = if manifest.starts_with(fixture_dir()) {
        "fixture-target"
    } else {
        "vendored-target"
    };
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// Builds the fixture at `manifest` in `profile`; returns the binary.
fn build(manifest: &Path, profile: &str) -> PathBuf {
    fixture_build::build(manifest, profile, &target_dir(manifest), "fixture-app")
}

/// Runs `binary MODE` and returns its reports.
fn run(binary: &Path, mode: &str) -> Vec<Report> {
    run_with_functions(binary, mode).0
}

/// Runs `binary MODE`; returns its reports and where its functions were.
fn run_with_functions(binary: &Path, mode: &str) -> (Vec<Report>, BTreeMap<String, u64>) {
    let (out, reports) = fixture_build::run_reporting(binary, mode);
    let functions = functions_printed(&out.stdout);
    // Under panic = "abort" a panic ends the process: its report is
    // delivered by the hook before that.
    assert!(
        out.status.success() || mode.starts_with("panic"),
        "{} {mode}: {}",
        binary.display(),
        out.status
    );
    (reports, functions)
}

/// The function of `functions` (name → start address in the process) that
/// holds the return address `address`: the nearest start below it.
fn function_holding(functions: &BTreeMap<String, u64>, address: u64) -> Option<&str> {
    functions
        .iter()
        .filter(|(_, &start)| start < address && address - start < 64 * 1024)
        .max_by_key(|(_, &start)| start)
        .map(|(name, _)| name.as_str())
}

/// Whether a frame is the application's, told from what the build gives.
fn is_application(frame: &crashbox::Frame, sources: &Path) -> bool {
    match (&frame.file, &frame.function) {
        (Some(file), _) => Path::new(&**file).starts_with(sources),
        (None, Some(function)) => function.contains("fixture_app::"),
        (None, None) => false,
    }
}

fn build_id(binary: &Path) -> String {
    let data = std::fs::read(binary).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let id = file
        .build_id()
        .unwrap()
        .expect("the linker wrote a build id");
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks one report of an unstripped build; returns problems found.
fn check_frames(report: &Report, expected: &str, sources: &Path, named: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(top) = report.frames.first() else {
        return vec!["no frames".into()];
    };
    if named {
        match &top.function {
            Some(f) if bare(f) == expected => {}
            other => problems.push(format!("frame 0 is {other:?}, not {expected}")),
        }
    }
    let own = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for (i, frame) in report.frames.iter().enumerate() {
        let function = frame.function.as_deref().unwrap_or("");
        let foreign = function.starts_with("crashbox::")
            || function.starts_with("<crashbox::")
            || function.starts_with("backtrace::")
            || frame.file.as_deref().is_some_and(|f| {
                Path::new(f).starts_with(&own)
                    || f.contains("/backtrace-0.")
                    || f.contains("/vendor/crashbox/")
            });
        if foreign {
            problems.push(format!(
                "frame {i} is crashbox's or the walker's: {frame:?}"
            ));
        }
        if &*frame.address == "0x0" {
            problems.push(format!("frame {i} has address 0x0"));
        }
        if named && frame.in_app != is_application(frame, sources) {
            problems.push(format!("frame {i} in_app is {}: {frame:?}", frame.in_app));
        }
    }
    problems
}

fn exe_image<'a>(report: &'a Report, binary: &Path) -> Option<&'a crashbox::Image> {
    let binary = binary.canonicalize().unwrap();
    report
        .images
        .iter()
        .find(|i| Path::new(&i.code_file).canonicalize().ok().as_deref() == Some(&*binary))
}

#[test]
fn frames_are_right_in_every_release_profile() {
    let manifest = fixture_dir().join("Cargo.toml");
    let sources = fixture_dir().join("src");
    let mut problems = Vec::new();
    // mode → profile → fingerprint
    let mut groups: BTreeMap<&str, BTreeMap<&str, String>> = BTreeMap::new();
    // mode → frame 0's offset in its function, in the `release` build.
    let mut offsets: BTreeMap<&str, u64> = BTreeMap::new();
    let mut table = vec!["| profile | mode | frame 0 | foreign frames | group |".to_owned()];
    for &(profile, named, same_group) in PROFILES {
        let binary = build(&manifest, profile);
        let id = build_id(&binary);
        for &(mode, expected) in MODES {
            let (reports, functions) = run_with_functions(&binary, mode);
            let Some(report) = reports.first() else {
                problems.push(format!("{profile} {mode}: no report"));
                continue;
            };
            let mut found = check_frames(report, expected, &sources, named);
            // Line tables name functions bare; the symbol table adds the path.
            let top = report.frames[0].function.as_deref().unwrap_or("");
            if named && !top.starts_with("fixture_app::") {
                found.push(format!("frame 0 is not named by its full path: {top}"));
            }
            match exe_image(report, &binary) {
                Some(image) if image.code_id.as_deref() == Some(id.as_str()) => {
                    let address = u64::from_str_radix(
                        report.frames[0].address.trim_start_matches("0x"),
                        16,
                    )
                    .unwrap_or(0);
                    let offset = functions.get(expected).map(|start| address.wrapping_sub(*start));
                    if profile == "release" {
                        offsets.extend(offset.map(|o| (mode, o)));
                    }
                    if !named {
                        // No names: frame 0 must lie in the function the
                        // process said it has there, at the same
                        // instruction as in the build with names.
                        let function = function_holding(&functions, address);
                        if function != Some(expected)
                            || !image.contains(address)
                            || offset != offsets.get(mode).copied()
                        {
                            problems.push(format!(
                                "{profile} {mode}: frame 0 at {address:#x} is in {function:?} at offset {offset:x?} (release: {:x?}), functions {functions:x?}", offsets.get(mode)
                            ));
                        }
                    }
                }
                other => problems.push(format!(
                    "{profile} {mode}: the executable is not among the images with build id {id}: {other:?}"
                )),
            }
            table.push(format!(
                "| {profile} | {mode} | {} | {} | {} |",
                report.frames[0]
                    .function
                    .as_deref()
                    .unwrap_or(&report.frames[0].address),
                found.iter().filter(|p| p.contains("crashbox's")).count(),
                report.group
            ));
            problems.extend(found.into_iter().map(|p| format!("{profile} {mode}: {p}")));
            if same_group {
                groups
                    .entry(mode)
                    .or_default()
                    .insert(profile, report.group.clone());
            }
        }
    }
    for (mode, by_profile) in &groups {
        let distinct: std::collections::BTreeSet<_> = by_profile.values().collect();
        if distinct.len() != 1 {
            problems.push(format!(
                "{mode}: fingerprints differ across profiles: {by_profile:?}"
            ));
        }
    }
    println!("{}", table.join("\n"));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn frames_are_right_with_crashbox_vendored_in_the_workspace() {
    let app = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vendored-app");
    let vendored = app.join("vendor/crashbox");
    let _ = std::fs::remove_dir_all(&app);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    copy_dir(&fixture_dir().join("src"), &app.join("src"));
    std::fs::create_dir_all(&vendored).unwrap();
    for item in [
        "Cargo.toml",
        "build.rs",
        "README.md",
        "src",
        "benches",
        "examples",
        "api",
    ] {
        let from = root.join(item);
        if from.is_dir() {
            copy_dir(&from, &vendored.join(item));
        } else {
            std::fs::copy(&from, vendored.join(item)).unwrap();
        }
    }
    // As `cargo vendor` writes it: no workspace table of its own.
    let crashbox_manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    std::fs::write(
        vendored.join("Cargo.toml"),
        fixture_build::without_workspace(&crashbox_manifest),
    )
    .unwrap();
    let manifest = std::fs::read_to_string(fixture_dir().join("Cargo.toml"))
        .unwrap()
        .replace("path = \"../..\"", "path = \"vendor/crashbox\"");
    assert!(manifest.contains("vendor/crashbox"));
    std::fs::write(app.join("Cargo.toml"), manifest).unwrap();
    if let Ok(lock) = std::fs::read(fixture_dir().join("Cargo.lock")) {
        std::fs::write(app.join("Cargo.lock"), lock).unwrap();
    }
    let binary = build(&app.join("Cargo.toml"), "line-tables");
    let mut problems = Vec::new();
    for &(mode, expected) in MODES {
        let reports = run(&binary, mode);
        match reports.first() {
            Some(report) => problems.extend(
                check_frames(report, expected, &app.join("src"), true)
                    .into_iter()
                    .map(|p| format!("{mode}: {p}")),
            ),
            None => problems.push(format!("{mode}: no report")),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Runs `crashbox symbolicate --debug-file DEBUG INPUT`.
fn symbolicate(debug: &Path, input: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_crashbox"))
        .arg("symbolicate")
        .arg("--debug-file")
        .arg(debug)
        .arg(input)
        .output()
        .expect("crashbox runs")
}

fn objcopy(args: &[&str], from: &Path, to: &Path) {
    let status = Command::new("objcopy")
        .args(args)
        .arg(from)
        .arg(to)
        .status()
        .expect("objcopy (binutils) runs");
    assert!(status.success(), "objcopy {args:?} failed");
}

type Shape = Vec<(
    Option<std::sync::Arc<str>>,
    Option<std::sync::Arc<str>>,
    Option<u32>,
    bool,
)>;

fn shape(report: &Report) -> Shape {
    report
        .frames
        .iter()
        .map(|f| (f.function.clone(), f.file.clone(), f.line, f.in_app))
        .collect()
}

#[test]
fn a_stripped_build_symbolicated_later_matches_the_unstripped_build() {
    let unstripped = build(&fixture_dir().join("Cargo.toml"), "full-debug");
    let dir = unstripped.parent().unwrap().join("split");
    std::fs::create_dir_all(&dir).unwrap();
    // The same program stripped (objcopy keeps the build id), and its debug file.
    let stripped = dir.join("fixture-app");
    let debug = dir.join("fixture-app.debug");
    objcopy(&["--only-keep-debug"], &unstripped, &debug);
    objcopy(&["--strip-all"], &unstripped, &stripped);
    assert_eq!(build_id(&stripped), build_id(&unstripped));
    let mut problems = Vec::new();
    for &(mode, expected) in MODES {
        let live = run(&unstripped, mode);
        let raw = run(&stripped, mode);
        let (Some(live), Some(raw_report)) = (live.first(), raw.first()) else {
            problems.push(format!("{mode}: no report"));
            continue;
        };
        assert!(
            raw_report.frames.iter().all(|f| f.function.is_none()),
            "{mode}: a stripped build names no frame"
        );
        let input = dir.join(format!("{mode}.jsonl"));
        std::fs::write(&input, format!("{}\n", raw_report.to_json())).unwrap();
        let out = symbolicate(&debug, &input);
        assert!(
            out.status.success(),
            "{mode}: symbolicate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let resolved: Report = serde_json::from_slice(
            out.stdout
                .split(|&b| b == b'\n')
                .next()
                .expect("one report"),
        )
        .expect("a report");
        if shape(&resolved) != shape(live) {
            problems.push(format!(
                "{mode}: resolved later\n{:#?}\nlive\n{:#?}",
                shape(&resolved),
                shape(live)
            ));
        }
        let top = resolved.frames[0].function.as_deref().unwrap_or("");
        if bare(top) != expected {
            problems.push(format!("{mode}: frame 0 resolved to {top}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Another build's debug file is refused, naming both build ids.
    let other = build(&fixture_dir().join("Cargo.toml"), "release");
    let input = dir.join("error.jsonl");
    let out = symbolicate(&other, &input);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&build_id(&other)) && stderr.contains(&build_id(&stripped)),
        "{stderr}"
    );
}

/// Crash modes of the fixture: the signal the report names, the one the
/// process dies of, how the report's message starts, and the function
/// frame 0 must be in.
const CRASHES: &[(&str, &str, i32, &str, &str)] = &[
    (
        "crash-null",
        "SIGSEGV",
        libc::SIGSEGV,
        "SIGSEGV at 0x8 (address not mapped)",
        "write_header",
    ),
    (
        "crash-abort",
        "SIGABRT",
        libc::SIGABRT,
        "SIGABRT (abort, raised by the process itself)",
        "give_up",
    ),
    // Rust's own handler turns a stack overflow into an abort, after its
    // message; the report names the fault.
    (
        "crash-overflow",
        "SIGSEGV",
        libc::SIGABRT,
        "stack overflow (SIGSEGV at 0x",
        "recurse",
    ),
];

/// Where the fixture said its functions were, from its output.
fn functions_printed(stdout: &[u8]) -> BTreeMap<String, u64> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("function ")?.split(' ');
            let name = words.next()?.to_owned();
            let address = u64::from_str_radix(words.next()?.trim_start_matches("0x"), 16).ok()?;
            Some((name, address))
        })
        .collect()
}

/// Where the crash runs of `binary` from this process keep their spools.
fn spool_root(binary: &Path) -> PathBuf {
    binary
        .parent()
        .unwrap()
        .join(format!("crash-spool-{}", std::process::id()))
}

/// Every profile, `abort` included: `panic = "abort"` changes what a panic
/// does, not a fatal signal, and its binary keeps the unwind tables the
/// handler walks.
#[test]
fn crashes_are_right_in_every_release_profile() {
    use std::os::unix::process::ExitStatusExt;

    let manifest = fixture_dir().join("Cargo.toml");
    let sources = fixture_dir().join("src");
    let mut problems = Vec::new();
    // mode → frame 0's offset in its function, in the `release` build.
    let mut offsets: BTreeMap<&str, u64> = BTreeMap::new();
    let mut table = vec!["| profile | mode | frame 0 |".to_owned()];
    for &(profile, named, _) in PROFILES {
        let binary = build(&manifest, profile);
        let id = build_id(&binary);
        for &(mode, signal, dies_of, message, expected) in CRASHES {
            let spool = spool_root(&binary).join(mode);
            let _ = std::fs::remove_dir_all(&spool);
            std::fs::create_dir_all(&spool).unwrap();
            let (crashed, during) = fixture_build::run_reporting_in(&binary, mode, &spool);
            let crashed_err = String::from_utf8_lossy(&crashed.stderr).into_owned();
            let said = |out: &std::process::Output| {
                format!(
                    "status {}\nstdout:\n{}\nstderr:\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            };
            if !String::from_utf8_lossy(&crashed.stdout).contains(&format!("crashing {mode}"))
                || crashed.status.signal() != Some(dies_of)
            {
                problems.push(format!(
                    "{profile} {mode}: did not die of signal {dies_of}: {}",
                    said(&crashed)
                ));
                continue;
            }
            if mode == "crash-overflow" && !crashed_err.contains("has overflowed its stack") {
                problems.push(format!(
                    "{profile} {mode}: no message from Rust: {crashed_err}"
                ));
            }
            if !during.is_empty() {
                problems.push(format!(
                    "{profile} {mode}: reports before the replay: {during:?}"
                ));
            }
            let functions = functions_printed(&crashed.stdout);
            let (replay, reports) = fixture_build::run_reporting_in(&binary, "replay", &spool);
            let replay_out = String::from_utf8_lossy(&replay.stdout).into_owned();
            let overflow = mode == "crash-overflow";
            if !replay.status.success()
                || !replay_out.contains(&format!("last_run crashed {signal}\n"))
                || !replay_out.contains(&format!("last_run stack_overflow {overflow}\n"))
                || !replay_out.contains("flushed true\n")
            {
                problems.push(format!("{profile} {mode}: replay: {}", said(&replay)));
            }
            let crashes: Vec<&Report> = reports
                .iter()
                .filter(|r| r.kind == crashbox::Kind::Crash)
                .collect();
            let [report] = crashes[..] else {
                problems.push(format!(
                    "{profile} {mode}: {} crash reports: {reports:#?}",
                    crashes.len()
                ));
                continue;
            };
            if reports.len() != 1 {
                problems.push(format!("{profile} {mode}: other reports: {reports:#?}"));
            }
            if report.level != crashbox::Level::Fatal
                || report.exceptions.len() != 1
                || report.exceptions[0].ty != signal
                || !report.message.starts_with(message)
            {
                problems.push(format!(
                    "{profile} {mode}: level {:?}, message {:?}, exceptions {:?}",
                    report.level, report.message, report.exceptions
                ));
            }
            let mut found = check_frames(report, expected, &sources, named);
            let top = report.frames.first();
            let top_name = top.and_then(|f| f.function.as_deref()).unwrap_or("");
            if named && !top_name.starts_with("fixture_app::") {
                found.push(format!("frame 0 is not named by its full path: {top_name}"));
            }
            let address = top
                .and_then(|f| u64::from_str_radix(f.address.trim_start_matches("0x"), 16).ok())
                .unwrap_or(0);
            let holder = function_holding(&functions, address);
            match exe_image(report, &binary) {
                Some(image) if image.code_id.as_deref() == Some(id.as_str()) => {
                    let offset = functions
                        .get(expected)
                        .map(|start| address.wrapping_sub(*start));
                    if profile == "release" {
                        offsets.extend(offset.map(|o| (mode, o)));
                    }
                    // The stack overflow faults wherever the stack ends;
                    // the other crashes at one instruction in every build.
                    let same_place = overflow || offset == offsets.get(mode).copied();
                    if !named
                        && (holder != Some(expected) || !image.contains(address) || !same_place)
                    {
                        found.push(format!(
                            "frame 0 at {address:#x} is in {holder:?} at offset {offset:x?} (release: {:x?}), functions {functions:x?}",
                            offsets.get(mode)
                        ));
                    }
                }
                other => found.push(format!(
                    "the executable is not among the images with build id {id}: {other:?}"
                )),
            }
            if !found.is_empty() {
                found.push(format!(
                    "frames[0..3]: {:#?}",
                    &report.frames[..report.frames.len().min(3)]
                ));
            }
            table.push(format!(
                "| {profile} | {mode} | {} |",
                if named {
                    top_name.to_owned()
                } else {
                    format!("{address:#x} in {}", holder.unwrap_or("?"))
                }
            ));
            problems.extend(found.into_iter().map(|p| format!("{profile} {mode}: {p}")));
            let _ = std::fs::remove_dir_all(&spool);
        }
        let _ = std::fs::remove_dir(spool_root(&binary));
    }
    println!("{}", table.join("\n"));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
