//! `crashbox symbolicate --debug-file PATH INPUT`: reports captured without
//! local symbolication get function, file and line from the binary's debug
//! file, matched by build id; a wrong debug file or a report without images
//! is a clear error.
//!
//! The report comes from a child run of this test binary with
//! `symbolicate(false)` and a `file://` collector; the debug file is this
//! (unstripped) test binary itself.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use crate::util::{
    assert_child, child, child_file_collector, print_stats, report_value, run_child, stats_with,
    temp_reports_file, TempDir, REPORTS_ENV,
};
use crashbox::{Frame, Image, Options, Report};

/// The GNU build id of the ELF file at `path`, in lowercase hex.
fn build_id_of(path: &Path) -> String {
    use object::Object;
    let data = std::fs::read(path).expect("read the binary");
    let file = object::File::parse(&*data).expect("an object file");
    let id = file
        .build_id()
        .expect("readable notes")
        .expect("the binary has a build id");
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn this_binary() -> std::path::PathBuf {
    std::env::current_exe().expect("current test binary")
}

fn symbolicate(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crashbox"))
        .arg("symbolicate")
        .args(args)
        .output()
        .expect("run the crashbox binary")
}

fn symbolicate_with(debug_file: &Path, input: &Path) -> Output {
    symbolicate(&[
        "--debug-file".as_ref(),
        debug_file.as_os_str(),
        input.as_os_str(),
    ])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn reports_in(stdout: &[u8]) -> Vec<Report> {
    text(stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a report per line"))
        .collect()
}

/// Set by the parent: whether the child symbolicates its reports itself.
const SYMBOLICATE_ENV: &str = "CRASHBOX_TEST_SYMBOLICATE";

/// Run by [`captured`]: one error, with or without local symbolication.
#[test]
#[ignore = "child process of the callers of `run_capture`"]
fn child_capture() {
    assert_child();
    let symbolicate = std::env::var(SYMBOLICATE_ENV).as_deref() == Ok("1");
    let guard = crashbox::init(
        Options::new()
            .collector(child_file_collector())
            .spool(false)
            .symbolicate(symbolicate),
    )
    .expect("init");
    let err = std::io::Error::other("resolve me later");
    let (id, line) = (crashbox::capture_error(&err), line!());
    report_value("id", id.expect("captured"));
    report_value("line", line);
    assert!(crashbox::flush(Duration::from_secs(10)), "flush timed out");
    print_stats("stats");
    drop(guard);
}

/// A child's report line, its capture line and its counters.
struct Captured {
    json: String,
    line: u32,
    addresses_resolved: u64,
}

impl Captured {
    fn report(&self) -> Report {
        serde_json::from_str(&self.json).unwrap()
    }
}

fn run_capture(symbolicate: bool) -> Captured {
    let (_dir, path) = temp_reports_file("symbolicate-source");
    let flag = if symbolicate { "1" } else { "0" };
    let out = run_child(
        &child!(child_capture),
        &[
            (REPORTS_ENV, path.clone().into()),
            (SYMBOLICATE_ENV, flag.into()),
        ],
    );
    out.assert_success();
    let body = std::fs::read_to_string(&path).expect("the child wrote reports");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 1, "{body}\n{}", out.dump());
    let report: Report = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(report.id.to_hex(), out.value("id"));
    Captured {
        json: lines[0].to_owned(),
        line: out.value("line").parse().unwrap(),
        addresses_resolved: stats_with(&out, "stats", "addresses_resolved")["addresses_resolved"],
    }
}

/// The report of a child run with `symbolicate(false)`, made once.
fn unsymbolicated() -> &'static Captured {
    static ONCE: OnceLock<Captured> = OnceLock::new();
    ONCE.get_or_init(|| run_capture(false))
}

/// The report of the same capture symbolicated live, made once.
fn symbolicated_live() -> &'static Captured {
    static ONCE: OnceLock<Captured> = OnceLock::new();
    ONCE.get_or_init(|| run_capture(true))
}

/// The test binary's image in `report`.
fn own_image(report: &Report) -> Image {
    let own = build_id_of(&this_binary());
    report
        .images
        .iter()
        .find(|i| i.code_id.as_deref() == Some(own.as_str()))
        .unwrap_or_else(|| panic!("no image with build id {own}: {:?}", report.images))
        .clone()
}

fn address_of(frame: &Frame) -> u64 {
    u64::from_str_radix(frame.address.trim_start_matches("0x"), 16).expect("0x hex")
}

/// The frames that fall in `image`, grouped by their offset in it (inlined
/// calls share one), as (function, file, line, column).
fn frames_by_offset(report: &Report, image: &Image) -> BTreeMap<u64, Vec<FrameText>> {
    let mut groups: BTreeMap<u64, Vec<FrameText>> = BTreeMap::new();
    for frame in &report.frames {
        let address = address_of(frame);
        if image.contains(address) {
            groups
                .entry(address - image.start().unwrap())
                .or_default()
                .push((
                    frame.function.as_deref().map(str::to_owned),
                    frame.file.as_deref().map(str::to_owned),
                    frame.line,
                    frame.column,
                ));
        }
    }
    groups
}

type FrameText = (Option<String>, Option<String>, Option<u32>, Option<u32>);

/// Writes `body` to a fresh file; the directory goes when the guard drops.
fn input_file(label: &str, body: &str) -> (TempDir, std::path::PathBuf) {
    let (dir, path) = temp_reports_file(label);
    std::fs::write(&path, body).unwrap();
    (dir, path)
}

#[test]
fn a_report_captured_without_symbols_has_addresses_and_images_only() {
    let source = unsymbolicated();
    let report = source.report();
    assert_eq!(source.addresses_resolved, 0, "no debug info was consulted");
    assert!(!report.frames.is_empty());
    for frame in &report.frames {
        assert_eq!(frame.function, None, "{frame:?}");
        assert_eq!(frame.file, None, "{frame:?}");
        assert_eq!(frame.line, None, "{frame:?}");
        assert!(!frame.in_app, "{frame:?}");
        assert!(frame.address.starts_with("0x"), "{frame:?}");
    }
    let exe = this_binary();
    let image = own_image(&report);
    assert_eq!(image.ty, "elf");
    assert_eq!(Path::new(&image.code_file), exe.canonicalize().unwrap());
    assert!(image.image_size > 0);
    assert!(
        image.contains(address_of(&report.frames[0])),
        "the capture site is in the test binary"
    );
    // Every frame's image is listed, each once.
    for frame in &report.frames {
        let address = address_of(frame);
        let holding = report.images.iter().filter(|i| i.contains(address)).count();
        assert!(holding <= 1, "{frame:?} in {:?}", report.images);
    }
    for (i, a) in report.images.iter().enumerate() {
        assert!(!report.images[i + 1..].contains(a), "{:?}", report.images);
    }
}

#[test]
fn symbolicate_gives_the_frames_the_live_symbolication_gives() {
    let source = unsymbolicated();
    let (_dir, input) = input_file("symbolicate-ok", &format!("{}\n", source.json));
    let out = symbolicate_with(&this_binary(), &input);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let reports = reports_in(&out.stdout);
    assert_eq!(reports.len(), 1, "{}", text(&out.stdout));
    let resolved = &reports[0];
    let original = source.report();
    assert_eq!(resolved.id, original.id);
    assert_eq!(resolved.images, original.images);

    // The innermost frame of this file is the capture site (which frames
    // above it the capture keeps is not this command's business).
    let top = resolved
        .frames
        .iter()
        .find(|f| {
            f.function
                .as_deref()
                .is_some_and(|n| n.starts_with("tests::commands::symbolicate::"))
        })
        .unwrap_or_else(|| panic!("no frame of this file: {:#?}", resolved.frames));
    assert_eq!(
        top.function.as_deref(),
        Some("tests::commands::symbolicate::child_capture"),
        "{:#?}",
        resolved.frames
    );
    assert_eq!(top.line, Some(source.line), "{top:?}");
    assert!(
        top.file
            .as_deref()
            .is_some_and(|f| f.ends_with("tests/commands/symbolicate.rs")),
        "{top:?}"
    );

    // Each frame in the test binary got a name; the others (the C library's)
    // kept none.
    let image = own_image(resolved);
    for frame in &resolved.frames {
        assert_eq!(
            frame.function.is_some(),
            image.contains(address_of(frame)),
            "{frame:?}"
        );
    }

    // The same capture symbolicated live (another run of this binary) has
    // the same frames at the same offsets in the binary: the live pipeline
    // may leave some out (crashbox's own), never differ.
    let live = symbolicated_live().report();
    let live_groups = frames_by_offset(&live, &own_image(&live));
    let offline_groups = frames_by_offset(resolved, &image);
    let mut compared = 0;
    for (offset, live_frames) in &live_groups {
        let offline = offline_groups
            .get(offset)
            .unwrap_or_else(|| panic!("no frame at offset {offset:#x}: {offline_groups:#?}"));
        let mut rest = offline.iter();
        for frame in live_frames {
            assert!(
                rest.any(|f| f == frame),
                "live {frame:?} at {offset:#x} not among {offline:?}"
            );
            compared += 1;
        }
    }
    assert!(compared >= 5, "only {compared} frames compared");
}

#[test]
fn a_wrong_debug_file_is_an_error_naming_both_build_ids() {
    let source = unsymbolicated();
    let (_dir, input) = input_file("symbolicate-wrong", &format!("{}\n", source.json));
    let wrong = Path::new(env!("CARGO_BIN_EXE_crashbox"));
    let out = symbolicate_with(wrong, &input);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("build id mismatch"), "{stderr}");
    assert!(stderr.contains(&build_id_of(wrong)), "{stderr}");
    assert!(stderr.contains(&build_id_of(&this_binary())), "{stderr}");
    assert!(stderr.contains(&wrong.display().to_string()), "{stderr}");
    // The report still goes through, unchanged.
    let reports = reports_in(&out.stdout);
    assert_eq!(reports.len(), 1);
    assert!(reports[0].frames.iter().all(|f| f.function.is_none()));
}

#[test]
fn a_report_without_images_is_an_error() {
    let source = unsymbolicated();
    let mut value: serde_json::Value = serde_json::from_str(&source.json).unwrap();
    value.as_object_mut().unwrap().remove("images");
    let (_dir, input) = input_file("symbolicate-no-images", &format!("{value}\n"));
    let out = symbolicate_with(&this_binary(), &input);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("has no images"), "{stderr}");
    let id: Report = serde_json::from_value(value).unwrap();
    assert!(
        stderr.contains(&id.id.to_hex()),
        "the report is named: {stderr}"
    );
}

#[test]
fn a_spool_file_holding_a_report_is_symbolicated() {
    let source = unsymbolicated();
    let mut entry: serde_json::Value = serde_json::from_str(&source.json).unwrap();
    entry["type"] = "report".into();
    let spool = serde_json::json!({ "format": 1, "entry": entry });
    let (_dir, input) = input_file("symbolicate-spool", &spool.to_string());
    let out = symbolicate_with(&this_binary(), &input);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let reports = reports_in(&out.stdout);
    assert_eq!(reports.len(), 1);
    assert!(reports[0].frames.iter().any(|f| f
        .function
        .as_deref()
        .is_some_and(|n| n.starts_with("tests::commands::symbolicate::child_capture"))));
}

#[test]
fn a_spool_file_holding_a_raw_capture_is_reported_as_unsupported() {
    let capture = r#"{"format":1,"entry":{"type":"captured","addresses":[4096]}}"#;
    let (_dir, input) = input_file("symbolicate-captured", capture);
    let out = symbolicate_with(&this_binary(), &input);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("raw capture"), "{stderr}");
}

#[test]
fn usage_and_unreadable_input_exit_2() {
    let out = symbolicate(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--debug-file"),
        "{}",
        text(&out.stderr)
    );

    let dir = TempDir::new("symbolicate-missing");
    let missing = dir.path().join("absent.jsonl");
    let out = symbolicate_with(&this_binary(), &missing);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read"),
        "{}",
        text(&out.stderr)
    );

    let (_dir, garbage) = input_file("symbolicate-garbage", "{\"id\": 1}\n");
    let out = symbolicate_with(&this_binary(), &garbage);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not a crashbox report"),
        "{}",
        text(&out.stderr)
    );

    let (_dir, not_elf) = input_file("symbolicate-not-elf", "plain text\n");
    let source = unsymbolicated();
    let (_dir2, input) = input_file("symbolicate-input", &format!("{}\n", source.json));
    let out = symbolicate_with(&not_elf, &input);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not an object file"),
        "{}",
        text(&out.stderr)
    );
}
