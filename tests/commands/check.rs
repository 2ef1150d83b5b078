//! `crashbox check PATH`, the CI gate: exit 0 for no reports, 1 (printing
//! them) when there are some, 2 for a usage error.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::{temp_reports_file, without_client, TempDir};
use crashbox::{testing, Level};

fn check(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crashbox"))
        .args(args)
        .output()
        .expect("run the crashbox binary")
}

fn check_path(path: &Path) -> Output {
    check(&["check".as_ref(), path.as_os_str()])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_of_a_missing_file_succeeds() {
    let dir = TempDir::new("check-missing");
    let out = check_path(&dir.path().join("never-written.jsonl"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("no reports"));
}

#[test]
fn check_of_an_empty_file_succeeds() {
    let (_dir, path) = temp_reports_file("check-empty");
    std::fs::write(&path, "").unwrap();
    let out = check_path(&path);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    std::fs::write(&path, "\n  \n").unwrap();
    let out = check_path(&path);
    assert_eq!(out.status.code(), Some(0), "blank lines are not reports");
}

#[test]
fn check_of_a_file_with_two_reports_fails_and_prints_both() {
    let _turn = without_client();
    let ((), reports) = testing::capture(|| {
        crashbox::capture_message("first recorded problem", Level::Error);
        let err = "not-a-number".parse::<u32>().unwrap_err();
        crashbox::capture_error(&err);
    });
    assert_eq!(reports.len(), 2);
    let (_dir, path) = temp_reports_file("check-two");
    let body: String = reports.iter().map(|r| r.to_json() + "\n").collect();
    std::fs::write(&path, body).unwrap();

    let out = check_path(&path);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("first recorded problem"), "{stderr}");
    assert!(stderr.contains("invalid digit found in string"), "{stderr}");
    for report in &reports {
        assert!(stderr.contains(&report.id.to_hex()), "{stderr}");
    }
    assert!(stderr.contains("2 report(s)"), "{stderr}");
}

#[test]
fn check_counts_an_unreadable_line_as_a_report() {
    let (_dir, path) = temp_reports_file("check-garbage");
    std::fs::write(&path, "{\"id\": \"truncated-by-a-crash\n").unwrap();
    let out = check_path(&path);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unreadable report on line 1"), "{stderr}");
    assert!(stderr.contains("truncated-by-a-crash"), "{stderr}");
}

#[test]
fn check_of_a_path_that_cannot_be_read_exits_2() {
    let dir = TempDir::new("check-dir");
    let out = check_path(dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cannot read"));
}

#[test]
fn check_without_arguments_is_a_usage_error() {
    let out = check(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("usage: crashbox check PATH"));
}

#[test]
fn check_with_an_unknown_command_is_a_usage_error() {
    let dir = TempDir::new("check-usage");
    let out = check(&["inspect".as_ref(), dir.path().as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
}
