//! What a command-line program gets: the crash message on stderr after a
//! panic's report, `capture_panic` from a panic hook of its own,
//! `last_report_id`, and a note when a later `set_hook` replaced crashbox's
//! hook.
//!
//! The panic hook is per process, so those scenarios run in child processes
//! that write to a `file://` collector the parent reads.

use std::ffi::OsString;
use std::panic::PanicHookInfo;
use std::time::Duration;

use crate::util::errors::panic_text;
use crate::util::{
    assert_child, child, child_file_collector, env_var, read_reports, report_value, run_child,
    temp_reports_file, without_client, ChildOutput, MemoryClient, REPORTS_ENV,
};
use crashbox::{testing, CrashMessage, Kind, Level, Options, Report};

/// What `child_replace_the_hook` prints on stderr just before it replaces the hook.
const REPLACING: &str = "REPLACING-THE-HOOK";

/// The line crashbox says on stderr once its hook was replaced.
const REPLACED: &str = "crashbox: the panic hook was replaced by a later std::panic::set_hook";

/// The one report whose message is `message`.
#[track_caller]
fn only<'a>(reports: &'a [Report], message: &str, out: &ChildOutput) -> &'a Report {
    let matching: Vec<&Report> = reports.iter().filter(|r| r.message == message).collect();
    assert_eq!(
        matching.len(),
        1,
        "expected one report {message:?}: {reports:#?}\n{}",
        out.dump()
    );
    matching[0]
}

// ---------------------------------------------------------------------------
// The crash message.

#[test]
fn the_crash_message_says_what_where_which_id_and_whom_to_tell_after_std_s_lines() {
    let (_dir, path) = temp_reports_file("crash-message");
    let out = run_child(
        &child!(child_crash_message),
        &[(REPORTS_ENV, path.clone().into())],
    );
    out.assert_success();
    let reports = read_reports(&path);
    let report = only(&reports, "ledger is empty", &out);
    assert_eq!(report.kind, Kind::Panic);
    let location = report.location.as_ref().expect("a location");
    let expected = format!(
        "ledger-tool crashed at {location}: ledger is empty\n\
         A crash report was sent to the file {}.\n\
         Report id: {}\n\
         Please send this id to bugs@example.com.\n",
        path.display(),
        report.id.to_hex()
    );
    assert!(
        out.stderr.contains(&expected),
        "expected the crash message\n{expected}\n{}",
        out.dump()
    );
    assert_eq!(
        out.stderr.matches("crashed at").count(),
        1,
        "{}",
        out.dump()
    );
    // The hook installed before (Rust's default one) printed first.
    let std_line = out
        .stderr
        .find("panicked at")
        .unwrap_or_else(|| panic!("Rust's default message\n{}", out.dump()));
    assert!(
        std_line < out.stderr.find(&expected).unwrap(),
        "{}",
        out.dump()
    );
    // The panic was on another thread: a thread that captured nothing sees
    // it as the process's last report; `main` sees its own error's.
    assert_eq!(out.value("last_id"), report.id.to_hex());
    let error = only(&reports, "a handled error", &out);
    assert_eq!(out.value("own_id"), error.id.to_hex());
}

/// Run by `the_crash_message_says_what_where_which_id_and_whom_to_tell_after_std_s_lines`.
#[test]
#[ignore = "child process of `the_crash_message_says_what_where_which_id_and_whom_to_tell_after_std_s_lines`"]
fn child_crash_message() {
    assert_child();
    let guard = crashbox::init(
        Options::new()
            .collector(child_file_collector())
            // The message says "was sent" once the hook saw the report
            // written: a busy machine gets all the time it needs.
            .panic_flush_timeout(std::time::Duration::from_secs(120))
            .crash_message(
                CrashMessage::new()
                    .app_name("ledger-tool")
                    .contact("bugs@example.com"),
            ),
    )
    .expect("init");
    crashbox::capture_error(&std::io::Error::other("a handled error")).expect("captured");
    let joined = std::thread::Builder::new()
        .name("ledger".into())
        .spawn(|| panic!("ledger is empty"))
        .unwrap()
        .join();
    assert!(joined.is_err());
    let last = crashbox::last_report_id().expect("the last report");
    // This thread's own capture comes first.
    report_value("own_id", last);
    let last_anywhere = std::thread::spawn(crashbox::last_report_id)
        .join()
        .unwrap()
        .expect("the process's last report");
    report_value("last_id", last_anywhere);
    drop(guard);
}

#[test]
fn without_a_crash_message_a_panic_prints_only_what_the_hooks_print() {
    let (_dir, path) = temp_reports_file("no-crash-message");
    let out = run_child(
        &child!(child_capture_panic),
        &[
            (REPORTS_ENV, path.clone().into()),
            (MODE_ENV, OsString::from("before_init")),
        ],
    );
    out.assert_success();
    assert!(!out.stderr.contains("crashed"), "{}", out.dump());
    assert!(!out.stderr.contains("Report id"), "{}", out.dump());
}

// ---------------------------------------------------------------------------
// `capture_panic` from the application's own hook.

/// How `child_capture_panic` sets its hook: `after_init` (replacing
/// crashbox's), `hook_off` (`Options::panic_hook(false)`) or `before_init`
/// (crashbox's hook hands over to it).
const MODE_ENV: &str = "CRASHBOX_TEST_HOOK_MODE";

/// Printed by the application's hook.
const OWN_HOOK: &str = "OWN-HOOK-RAN";

fn run_capture_panic(mode: &str) -> (ChildOutput, Vec<Report>) {
    let (_dir, path) = temp_reports_file("capture-panic");
    let out = run_child(
        &child!(child_capture_panic),
        &[
            (REPORTS_ENV, path.clone().into()),
            (MODE_ENV, OsString::from(mode)),
        ],
    );
    out.assert_success();
    let reports = read_reports(&path);
    (out, reports)
}

/// The report `capture_panic` made: one, with the hook's id, the panic's
/// location and its stack starting in the function that panicked.
#[track_caller]
fn assert_captured_from_own_hook(out: &ChildOutput, reports: &[Report]) {
    let report = only(
        reports,
        "the ledger holds a number: ParseIntError { kind: InvalidDigit }",
        out,
    );
    assert_eq!(report.kind, Kind::Panic);
    assert_eq!(report.level, Level::Fatal);
    assert_eq!(report.id.to_hex(), out.value("hook_id"), "{}", out.dump());
    assert_eq!(report.id.to_hex(), out.value("last_id"), "{}", out.dump());
    let location = report.location.as_ref().expect("a location");
    assert!(
        location.file.ends_with("tests/capture/cli.rs"),
        "{location}"
    );
    assert_eq!(location.line.to_string(), out.value("panic_line"));
    let top = report.frames[0].function.as_deref().unwrap_or("<none>");
    assert!(
        top.ends_with("cli::parse_ledger"),
        "frames[0] should be the function that panicked, got {top}\n{:#?}",
        report.frames
    );
    assert!(out.stderr.contains(OWN_HOOK), "{}", out.dump());
}

#[test]
fn capture_panic_in_a_hook_set_after_init_reports_the_panic_from_the_panicking_function() {
    let (out, reports) = run_capture_panic("after_init");
    assert_captured_from_own_hook(&out, &reports);
    // crashbox's hook was replaced: said once, at shutdown.
    assert_eq!(out.stderr.matches(REPLACED).count(), 1, "{}", out.dump());
}

#[test]
fn capture_panic_with_the_hook_turned_off_reports_the_panic_from_the_panicking_function() {
    let (out, reports) = run_capture_panic("hook_off");
    assert_captured_from_own_hook(&out, &reports);
    assert!(!out.stderr.contains(REPLACED), "{}", out.dump());
}

#[test]
fn capture_panic_in_the_hook_crashbox_hands_over_to_returns_crashbox_s_report() {
    let (out, reports) = run_capture_panic("before_init");
    // One report, though both hooks capture.
    assert_captured_from_own_hook(&out, &reports);
    assert!(!out.stderr.contains(REPLACED), "{}", out.dump());
}

/// The application's panic hook: a function (boxed, so std calls it through
/// a shim) that calls another, which calls `capture_panic`.
fn own_hook(info: &PanicHookInfo<'_>) {
    report_to_crashbox(info);
}

#[inline(never)]
fn report_to_crashbox(info: &PanicHookInfo<'_>) {
    let id = crashbox::capture_panic(info);
    report_value(
        "hook_id",
        id.map_or_else(|| "none".to_owned(), |id| id.to_hex()),
    );
    eprintln!(
        "{OWN_HOOK}: {}",
        panic_text(info.payload()).unwrap_or_default()
    );
}

#[inline(never)]
fn parse_ledger(text: &str) -> u32 {
    report_value("panic_line", line!() + 1);
    text.parse::<u32>().expect("the ledger holds a number")
}

/// Run by the `capture_panic_*` tests and
/// `without_a_crash_message_a_panic_prints_only_what_the_hooks_print`.
#[test]
#[ignore = "child process of the `capture_panic_*` tests"]
fn child_capture_panic() {
    assert_child();
    let mode = env_var(MODE_ENV);
    let options = Options::new().collector(child_file_collector());
    let guard = match mode.as_str() {
        "after_init" => {
            let guard = crashbox::init(options).expect("init");
            std::panic::set_hook(Box::new(own_hook));
            guard
        }
        "hook_off" => {
            let guard = crashbox::init(options.panic_hook(false)).expect("init");
            std::panic::set_hook(Box::new(own_hook));
            guard
        }
        "before_init" => {
            std::panic::set_hook(Box::new(own_hook));
            crashbox::init(options).expect("init")
        }
        other => panic!("unknown mode {other}"),
    };
    let outcome = std::panic::catch_unwind(|| parse_ledger("twelve"));
    assert!(outcome.is_err());
    report_value(
        "last_id",
        crashbox::last_report_id().expect("the panic's report"),
    );
    assert!(crashbox::flush(Duration::from_secs(30)));
    drop(guard);
}

// ---------------------------------------------------------------------------
// A later `set_hook`.

#[test]
fn a_replaced_hook_is_counted_and_said_once_and_a_hook_that_keeps_crashbox_s_is_not() {
    let (_dir, path) = temp_reports_file("replaced");
    let out = run_child(
        &child!(child_replace_the_hook),
        &[(REPORTS_ENV, path.clone().into())],
    );
    out.assert_success();
    assert_eq!(out.value("after_wrapping"), "0", "{}", out.dump());
    assert_eq!(out.value("after_replacing"), "1", "{}", out.dump());
    assert_eq!(out.stderr.matches(REPLACED).count(), 1, "{}", out.dump());
    // Said at the first flush after the replacement, not before.
    let replacing = out.stderr.find(REPLACING).expect("the marker");
    assert!(
        out.stderr.find(REPLACED).unwrap() > replacing,
        "{}",
        out.dump()
    );
    let reports = read_reports(&path);
    only(&reports, "captured through the wrapping hook", &out);
    assert!(
        !reports.iter().any(|r| r.message == "after the replacement"),
        "{reports:#?}"
    );
}

/// Run by `a_replaced_hook_is_counted_and_said_once_and_a_hook_that_keeps_crashbox_s_is_not`.
#[test]
#[ignore = "child process of `a_replaced_hook_is_counted_and_said_once_and_a_hook_that_keeps_crashbox_s_is_not`"]
fn child_replace_the_hook() {
    assert_child();
    let guard = crashbox::init(Options::new().collector(child_file_collector())).expect("init");
    // A hook that keeps crashbox's and calls it.
    let crashbox_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| crashbox_hook(info)));
    report_value("after_wrapping", crashbox::stats().panic_hook_replaced);
    let _ = std::panic::catch_unwind(|| panic!("captured through the wrapping hook"));
    assert!(crashbox::flush(Duration::from_secs(30)));
    eprintln!("{REPLACING}");
    // A hook that drops it (and the wrapper).
    std::panic::set_hook(Box::new(|_| {}));
    report_value("after_replacing", crashbox::stats().panic_hook_replaced);
    let _ = std::panic::catch_unwind(|| panic!("after the replacement"));
    assert!(crashbox::flush(Duration::from_secs(30)));
    assert!(guard.flush(Duration::from_secs(30)));
    drop(guard);
}

// ---------------------------------------------------------------------------
// `last_report_id`, in process.

#[test]
fn last_report_id_is_this_thread_s_last_capture_else_the_process_s() {
    let client = MemoryClient::start(Options::new());
    let err = std::io::Error::other("disk on fire");
    let id = crashbox::capture_error(&err);
    assert!(id.is_some());
    assert_eq!(crashbox::last_report_id(), id);
    let other = std::thread::spawn(|| crashbox::capture_message("from a worker", Level::Info))
        .join()
        .unwrap();
    assert!(other.is_some());
    // This thread's own last capture, not the worker's.
    assert_eq!(crashbox::last_report_id(), id);
    // A thread that captured nothing sees the process's last one.
    let fresh = std::thread::spawn(crashbox::last_report_id).join().unwrap();
    assert_eq!(fresh, other);
    let _ = std::panic::catch_unwind(|| panic!("ledger corrupted"));
    let panic_id = crashbox::last_report_id();
    let reports = client.reports();
    let report = reports
        .iter()
        .find(|r| r.message == "ledger corrupted")
        .unwrap_or_else(|| panic!("the panic's report: {reports:#?}"));
    assert_eq!(Some(report.id), panic_id);
}

#[test]
fn in_a_test_capture_last_report_id_is_the_test_s_and_panics_are_captured() {
    let _turn = without_client();
    let (id, reports) =
        testing::capture(|| crashbox::capture_error(&std::io::Error::other("disk on fire")));
    assert_eq!(crashbox::last_report_id(), id);
    assert_eq!(Some(reports[0].id), id);
    let ((), reports) = testing::capture(|| {
        let _ = std::panic::catch_unwind(|| panic!("disk on fire, again"));
    });
    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert_eq!(reports[0].kind, Kind::Panic);
    assert_eq!(crashbox::last_report_id(), Some(reports[0].id));
}
