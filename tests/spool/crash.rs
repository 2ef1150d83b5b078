//! Crashes the panic hook never sees: a write through a null pointer's
//! field, a stack overflow (on the main thread and on a spawned one),
//! `process::abort`, a double panic and `raise(SIGBUS)`. Each runs in a
//! child that dies of it; the parent checks that it died as it does without
//! crashbox's handler (the same signal, the same message from Rust), then
//! runs the program again on the same spool and checks the report that run
//! delivers: kind `crash`, level `fatal`, the signal as the exception type,
//! frame 0 in the function that crashed, and `last_run` saying so.
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{run_ok, SPOOL_ENV};
use crate::util::errors;
use crate::util::{
    assert_child, child, env_var, file_collector, read_reports, report_value, run_child,
    ChildOutput, TempDir, COLLECTOR_ENV,
};
use crashbox::{Kind, Level, Options, Report, Signal};

/// Which crash `child_crash` has (see [`crash`]).
const MODE_ENV: &str = "CRASHBOX_TEST_CRASH";
/// `off`: `child_crash` installs no signal handler (the baseline).
const HANDLER_ENV: &str = "CRASHBOX_TEST_CRASH_HANDLER";
/// Set: `child_crash` installs a SIGSEGV handler of its own before `init`.
const PREVIOUS_ENV: &str = "CRASHBOX_TEST_PREVIOUS_HANDLER";
/// What that handler writes on stderr.
const PREVIOUS_RAN: &str = "PREVIOUS-SIGSEGV-HANDLER-RAN";
/// Set: `child_crash` installs a SIGSEGV handler after `init`, which calls
/// the one it replaced (crashbox's) as handlers that chain do.
const LATER_ENV: &str = "CRASHBOX_TEST_LATER_HANDLER";
/// What that handler writes on stderr.
const LATER_RAN: &str = "LATER-SIGSEGV-HANDLER-RAN";
/// Set: `child_crash` drops its guard and calls `init` again before crashing.
const REINIT_ENV: &str = "CRASHBOX_TEST_REINIT";

/// One crash scenario, as the parent saw it.
struct Crashed {
    /// The run with crashbox's handler.
    run: ChildOutput,
    /// The same crash without it.
    baseline: ChildOutput,
    /// The next run's `last_run` and reports.
    replay: ChildOutput,
    reports: Vec<Report>,
}

impl Crashed {
    /// The one crash report.
    #[track_caller]
    fn report(&self) -> &Report {
        let crashes: Vec<&Report> = self
            .reports
            .iter()
            .filter(|r| r.kind == Kind::Crash)
            .collect();
        assert_eq!(crashes.len(), 1, "one crash report\n{}", self.dump());
        crashes[0]
    }

    fn dump(&self) -> String {
        format!(
            "--- crash run ---\n{}\n--- replay ---\n{}\n--- reports ---\n{:#?}",
            self.run.dump(),
            self.replay.dump(),
            self.reports
        )
    }

    /// Frame 0's function.
    #[track_caller]
    fn frame0(&self) -> String {
        let report = self.report();
        report
            .frames
            .first()
            .and_then(|f| f.function.as_deref())
            .unwrap_or_else(|| panic!("frame 0 has a function\n{}", self.dump()))
            .to_owned()
    }

    /// Asserts the report's kind, level, exception type and message start,
    /// and that both runs died of `signal`.
    #[track_caller]
    fn assert_crash(&self, signal: Signal, message_start: &str) {
        self.assert_crash_dying_of(signal, signal, message_start)
    }

    /// [`assert_crash`](Self::assert_crash) for a crash the process died of
    /// another signal after (`dies_of`).
    #[track_caller]
    fn assert_crash_dying_of(&self, signal: Signal, dies_of: Signal, message_start: &str) {
        self.assert_crash_in(signal, dies_of, message_start);
        assert!(self.report().frames[0].in_app, "{}", self.dump());
    }

    /// The checks of [`assert_crash_dying_of`](Self::assert_crash_dying_of)
    /// but frame 0's being the application's.
    #[track_caller]
    fn assert_crash_in(&self, signal: Signal, dies_of: Signal, message_start: &str) {
        for (what, out) in [("baseline", &self.baseline), ("crash", &self.run)] {
            assert!(
                out.stdout.contains("CHILD:crashing="),
                "the {what} run got to its crash\n{}",
                out.dump()
            );
            assert_eq!(
                out.status.signal(),
                Some(dies_of.number()),
                "the {what} run died of {dies_of}\n{}",
                out.dump()
            );
        }
        let report = self.report();
        assert_eq!(report.level, Level::Fatal, "{}", self.dump());
        assert_eq!(report.exceptions[0].ty, signal.name(), "{}", self.dump());
        assert_eq!(report.exceptions.len(), 1, "{}", self.dump());
        assert!(
            report.message.starts_with(message_start),
            "message {:?} starts with {message_start:?}\n{}",
            report.message,
            self.dump()
        );
        assert_eq!(report.exceptions[0].message, report.message);
        assert_eq!(report.release.as_deref(), Some("crash-test@1"));
        assert!(
            report.frames.iter().all(|f| !f
                .function
                .as_deref()
                .unwrap_or("")
                .contains("crashbox::crash")),
            "crashbox's handler is not in the stack\n{}",
            self.dump()
        );
        assert!(report.frames.len() >= 2, "{}", self.dump());
        assert_eq!(
            self.replay.value("last_run_crashed"),
            signal.name(),
            "{}",
            self.dump()
        );
    }

    /// Asserts that both runs (with and without crashbox's handler) said
    /// `marker` once on stderr: a handler of the application's ran once.
    #[track_caller]
    fn assert_said_once(&self, marker: &str) {
        for out in [&self.baseline, &self.run] {
            assert_eq!(
                out.stderr.matches(marker).count(),
                1,
                "{marker}\n{}",
                out.dump()
            );
        }
    }

    fn exception_type(&self) -> &str {
        &self.report().exceptions[0].ty
    }
}

/// A test's own reports file (a `file://` collector) and spool directory.
struct Scratch {
    root: TempDir,
    reports: PathBuf,
    spool: PathBuf,
}

impl Scratch {
    fn new(label: &str) -> Scratch {
        let root = TempDir::new(label);
        Scratch {
            reports: root.path().join("reports.jsonl"),
            spool: root.path().join("spool"),
            root,
        }
    }

    fn collector(&self) -> String {
        file_collector(&self.reports)
    }

    /// Runs child test `name` on this collector and spool; asserts it succeeded.
    #[track_caller]
    fn ok(&self, name: &str) -> ChildOutput {
        run_ok(name, &self.collector(), &self.spool, &[])
    }

    /// Every report delivered so far (none without a file).
    fn reports(&self) -> Vec<Report> {
        if self.reports.exists() {
            read_reports(&self.reports)
        } else {
            Vec::new()
        }
    }

    /// The crash reports delivered so far.
    fn crashes(&self) -> Vec<Report> {
        let mut reports = self.reports();
        reports.retain(|r| r.kind == Kind::Crash);
        reports
    }
}

/// Runs `mode` without and with crashbox's handler, then the replay run.
fn crash(mode: &str, extra: &[(&'static str, OsString)]) -> Crashed {
    let scratch = Scratch::new(&format!("crash-{mode}"));
    let collector = scratch.collector();
    let run = |spool: &Path, handler: &str| {
        let mut envs = vec![
            (COLLECTOR_ENV, OsString::from(&collector)),
            (SPOOL_ENV, spool.into()),
            (MODE_ENV, mode.into()),
            (HANDLER_ENV, handler.into()),
        ];
        envs.extend(extra.iter().cloned());
        run_child(&child!(child_crash), &envs)
    };
    let baseline = run(&scratch.root.path().join("baseline-spool"), "off");
    let crashed = run(&scratch.spool, "on");
    let replay = scratch.ok(&child!(child_crash_replay));
    Crashed {
        run: crashed,
        baseline,
        replay,
        reports: scratch.reports(),
    }
}

#[test]
fn a_write_through_a_null_pointer_is_reported_by_the_next_run() {
    let crashed = crash("null", &[]);
    crashed.assert_crash(Signal::Segv, errors::NULL_WRITE_MESSAGE);
    assert_eq!(crashed.exception_type(), "SIGSEGV");
    assert!(
        crashed.frame0().contains("write_through_null"),
        "{}",
        crashed.dump()
    );
    assert!(
        crashed.report().frames.iter().any(|f| f
            .function
            .as_deref()
            .unwrap_or("")
            .contains("child_crash")),
        "the caller is in the stack\n{}",
        crashed.dump()
    );
    assert_eq!(crashed.replay.value("last_run_overflow"), "false");
    assert_eq!(crashed.replay.value("last_run_count"), "1");
    assert_eq!(crashed.report().extra["crash"]["address"], "0x8");
}

#[test]
fn a_stack_overflow_is_reported_as_one_and_rust_still_says_so() {
    let crashed = crash("recursion", &[]);
    // Rust's own handler turns a stack overflow into an abort, after its message.
    crashed.assert_crash_dying_of(Signal::Segv, Signal::Abrt, "stack overflow (SIGSEGV at 0x");
    for out in [&crashed.baseline, &crashed.run] {
        assert!(
            out.stderr.contains("has overflowed its stack"),
            "Rust's message\n{}",
            out.dump()
        );
    }
    assert!(crashed.frame0().contains("recurse"), "{}", crashed.dump());
    assert_eq!(crashed.replay.value("last_run_overflow"), "true");
    assert_eq!(crashed.report().extra["crash"]["stack_overflow"], true);
}

#[test]
fn a_stack_overflow_on_a_spawned_thread_names_the_thread() {
    let crashed = crash("recursion_thread", &[]);
    crashed.assert_crash_dying_of(Signal::Segv, Signal::Abrt, "stack overflow (SIGSEGV at 0x");
    assert!(crashed.frame0().contains("recurse"), "{}", crashed.dump());
    assert_eq!(
        crashed.report().thread.name.as_deref(),
        Some("deep-recursion"),
        "{}",
        crashed.dump()
    );
}

#[test]
fn process_abort_is_reported_from_the_function_that_called_it() {
    let crashed = crash("abort", &[]);
    crashed.assert_crash(
        Signal::Abrt,
        "SIGABRT (abort, raised by the process itself)",
    );
    assert!(crashed.frame0().contains("give_up"), "{}", crashed.dump());
}

#[test]
fn a_double_panic_is_reported_as_an_abort_after_the_panics() {
    let crashed = crash("double_panic", &[]);
    crashed.assert_crash(
        Signal::Abrt,
        "SIGABRT (abort, raised by the process itself)",
    );
    let frame0 = crashed.frame0();
    assert!(
        frame0.contains("panic_twice") || frame0.contains("PanicsOnDrop"),
        "{frame0}\n{}",
        crashed.dump()
    );
    // The panic hook saw the first panic (and the one in `drop`).
    let panics = crashed
        .reports
        .iter()
        .filter(|r| r.kind == Kind::Panic)
        .count();
    assert!(panics >= 1, "{}", crashed.dump());
    assert_eq!(crashed.replay.value("last_run_panicked"), "true");
}

#[test]
fn a_raised_sigbus_is_reported_from_the_function_that_raised_it() {
    let crashed = crash("sigbus", &[]);
    crashed.assert_crash(Signal::Bus, "SIGBUS (raised by the process itself)");
    assert!(crashed.frame0().contains("raise_bus"), "{}", crashed.dump());
}

#[test]
fn a_handler_installed_before_init_still_runs() {
    let crashed = crash("null", &[(PREVIOUS_ENV, "1".into())]);
    crashed.assert_crash(Signal::Segv, errors::NULL_WRITE_MESSAGE);
    crashed.assert_said_once(PREVIOUS_RAN);
}

#[test]
fn a_handler_installed_after_init_that_calls_crashbox_s_gets_the_crash_reported() {
    let crashed = crash("null", &[(LATER_ENV, "1".into())]);
    crashed.assert_crash(Signal::Segv, errors::NULL_WRITE_MESSAGE);
    assert!(
        crashed.frame0().contains("write_through_null"),
        "{}",
        crashed.dump()
    );
    crashed.assert_said_once(LATER_RAN);
}

#[test]
fn a_second_init_behind_a_chaining_handler_still_records_the_crash_once() {
    let crashed = crash("null", &[(LATER_ENV, "1".into()), (REINIT_ENV, "1".into())]);
    crashed.assert_crash(Signal::Segv, errors::NULL_WRITE_MESSAGE);
    crashed.assert_said_once(LATER_RAN);
}

#[test]
fn an_illegal_instruction_is_reported_and_a_chaining_handler_still_ends_the_process() {
    for extra in [vec![], vec![(LATER_ENV, OsString::from("1"))]] {
        let crashed = crash("ill", &extra);
        crashed.assert_crash(Signal::Ill, "SIGILL at 0x");
        assert!(
            crashed.frame0().contains("illegal_instruction"),
            "{}",
            crashed.dump()
        );
        if !extra.is_empty() {
            crashed.assert_said_once(LATER_RAN);
        }
    }
}

#[test]
fn a_fault_inside_std_keeps_std_s_function_as_frame_0() {
    let crashed = crash("std_fault", &[]);
    crashed.assert_crash_in(Signal::Segv, Signal::Segv, errors::NULL_WRITE_MESSAGE);
    let report = crashed.report();
    assert!(
        crashed.frame0().contains("utf8"),
        "the std function that faulted\n{}",
        crashed.dump()
    );
    assert!(!report.frames[0].in_app, "{}", crashed.dump());
    assert!(
        report.frames.iter().any(|f| f.in_app
            && f.function
                .as_deref()
                .unwrap_or("")
                .contains("validate_at_null")),
        "{}",
        crashed.dump()
    );
}

#[test]
fn a_signal_the_process_survives_is_not_reported_as_a_crash() {
    let scratch = Scratch::new("crash-survived");
    let out = scratch.ok(&child!(child_survives_a_raised_sigbus));
    assert_eq!(out.value("survived"), "true", "{}", out.dump());
    assert_next_run_finds_no_crash(&scratch);
}

#[test]
fn a_forked_child_s_crash_is_not_recorded_as_its_parent_s() {
    let scratch = Scratch::new("crash-fork");
    let out = scratch.ok(&child!(child_fork_crashes));
    assert_eq!(
        out.value("forked_child_signal"),
        libc::SIGSEGV.to_string(),
        "{}",
        out.dump()
    );
    assert_eq!(out.value("crash_file_bytes"), "0", "{}", out.dump());
    assert_next_run_finds_no_crash(&scratch);
}

/// Runs the next start on `scratch`'s spool: `last_run` says no crash, and
/// no crash report is delivered.
#[track_caller]
fn assert_next_run_finds_no_crash(scratch: &Scratch) {
    let replay = scratch.ok(&child!(child_crash_replay_clean));
    assert_eq!(
        replay.value("last_run_crashed"),
        "none",
        "{}",
        replay.dump()
    );
    assert_eq!(scratch.crashes(), [], "{}", replay.dump());
}

#[test]
fn a_forked_child_s_clean_exit_leaves_its_parent_s_crash_file_alone() {
    let scratch = Scratch::new("crash-fork-exit");
    let out = run_child(
        &child!(child_fork_exits_then_parent_crashes),
        &[
            (COLLECTOR_ENV, scratch.collector().into()),
            (SPOOL_ENV, scratch.spool.clone().into()),
        ],
    );
    assert_eq!(out.value("forked_child_exit"), "0", "{}", out.dump());
    assert_eq!(out.status.signal(), Some(libc::SIGSEGV), "{}", out.dump());
    let replay = scratch.ok(&child!(child_crash_replay));
    assert_eq!(
        replay.value("last_run_crashed"),
        "SIGSEGV",
        "{}",
        replay.dump()
    );
    let crashes = scratch.crashes();
    assert_eq!(crashes.len(), 1, "{}", replay.dump());
    assert_eq!(crashes[0].message, errors::NULL_WRITE_MESSAGE);
}

#[test]
fn dropping_the_guard_puts_back_the_handlers_it_replaced() {
    let out = Scratch::new("crash-guard").ok(&child!(child_guard_restores));
    assert_eq!(out.value("during"), "crashbox", "{}", out.dump());
    assert_eq!(out.value("after"), "before", "{}", out.dump());
    assert_eq!(
        out.value("files_left"),
        "0",
        "the unused crash file is removed\n{}",
        out.dump()
    );
}

/// A child's options: the parent's collector and spool.
fn spool_options() -> Options {
    Options::new()
        .collector(env_var(COLLECTOR_ENV))
        .spool_dir(env_var(SPOOL_ENV))
}

/// Run by the crash tests: `init`, then the crash `MODE_ENV` names.
#[test]
#[ignore = "child process of the crash tests"]
fn child_crash() {
    assert_child();
    errors::no_core_dump();
    if std::env::var_os(PREVIOUS_ENV).is_some() {
        install_previous_handler();
    }
    let options = || {
        let options = spool_options().release("crash-test@1");
        if env_var(HANDLER_ENV) == "off" {
            options.crash_signals([])
        } else {
            options
        }
    };
    let mut guard = crashbox::init(options()).expect("init");
    let mode = env_var(MODE_ENV);
    if std::env::var_os(LATER_ENV).is_some() {
        install_later_handler(if mode == "ill" {
            libc::SIGILL
        } else {
            libc::SIGSEGV
        });
    }
    if std::env::var_os(REINIT_ENV).is_some() {
        // The later handler stays in front of crashbox's, which it calls.
        drop(guard);
        guard = crashbox::init(options()).expect("init again");
    }
    let _guard = guard;
    report_value("crashing", &mode);
    match mode.as_str() {
        "null" => errors::write_through_null(),
        "recursion" => {
            std::hint::black_box(recurse(0));
        }
        "recursion_thread" => {
            let deep = std::thread::Builder::new()
                .name("deep-recursion".into())
                .spawn(|| recurse(0))
                .unwrap();
            let _ = deep.join();
        }
        "abort" => give_up(),
        "double_panic" => panic_twice(),
        "sigbus" => raise_bus(),
        "ill" => illegal_instruction(),
        "std_fault" => validate_at_null(),
        other => panic!("unknown crash {other}"),
    }
    panic!("{mode} did not crash");
}

/// Run by the crash tests: the next start, which delivers the crash.
#[test]
#[ignore = "child process of the crash tests"]
fn child_crash_replay() {
    assert_child();
    let guard = crashbox::init(spool_options()).expect("init");
    let last = crashbox::last_run().expect("a spool is in use");
    report_value(
        "last_run_crashed",
        last.crashed.map_or("none", Signal::name),
    );
    report_value("last_run_overflow", last.stack_overflow);
    report_value("last_run_panicked", last.panicked);
    report_value("last_run_count", last.consecutive_panics);
    assert!(last.ended_badly());
    assert!(crashbox::flush(Duration::from_secs(60)), "flushed");
    drop(guard);
}

/// Run by `a_forked_child_s_clean_exit_leaves_its_parent_s_crash_file_alone`:
/// a child forked after `init` drops its copy of the guard and exits; then
/// this process crashes.
#[test]
#[ignore = "child process of `a_forked_child_s_clean_exit_leaves_its_parent_s_crash_file_alone`"]
fn child_fork_exits_then_parent_crashes() {
    assert_child();
    errors::no_core_dump();
    let guard =
        crashbox::init(spool_options().shutdown_timeout(Duration::from_millis(100))).expect("init");
    // SAFETY: the forked child drops the guard (its worker thread was not
    // forked: the drop waits out the shutdown timeout) and leaves.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        drop(guard);
        // SAFETY: leaving the forked child without running anything else.
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waiting for the child just forked.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    report_value("forked_child_exit", libc::WEXITSTATUS(status));
    errors::write_through_null();
    panic!("the write through a null pointer did not crash");
}

/// Run by `a_signal_the_process_survives_is_not_reported_as_a_crash`: one
/// raised SIGBUS, which std's handler lets go, then a clean shutdown.
#[test]
#[ignore = "child process of `a_signal_the_process_survives_is_not_reported_as_a_crash`"]
fn child_survives_a_raised_sigbus() {
    assert_child();
    let guard = crashbox::init(spool_options()).expect("init");
    // SAFETY: raising a signal.
    unsafe { libc::raise(libc::SIGBUS) };
    report_value("survived", true);
    drop(guard);
}

/// Run by `a_forked_child_s_crash_is_not_recorded_as_its_parent_s`: a
/// child forked after `init` (no exec) crashes; this process goes on.
#[test]
#[ignore = "child process of `a_forked_child_s_crash_is_not_recorded_as_its_parent_s`"]
fn child_fork_crashes() {
    assert_child();
    errors::no_core_dump();
    let guard = crashbox::init(spool_options()).expect("init");
    // SAFETY: the forked child only writes through a bad pointer (and
    // dies of it) or exits; it calls nothing that could need another
    // thread's lock.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        errors::write_through_null();
        // SAFETY: leaving the forked child without running anything else.
        unsafe { libc::_exit(3) };
    }
    let mut status = 0;
    // SAFETY: waiting for the child just forked.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFSIGNALED(status), "status {status:#x}");
    report_value("forked_child_signal", libc::WTERMSIG(status));
    let crash_file = std::fs::read_dir(env_var(SPOOL_ENV))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with("-crash.spare"))
        .expect("this process's crash file");
    report_value("crash_file_bytes", crash_file.metadata().unwrap().len());
    drop(guard);
}

/// Run by `a_forked_child_s_crash_is_not_recorded_as_its_parent_s`: the next
/// start, which must find no crash.
#[test]
#[ignore = "child process of `a_forked_child_s_crash_is_not_recorded_as_its_parent_s`"]
fn child_crash_replay_clean() {
    assert_child();
    let guard = crashbox::init(spool_options()).expect("init");
    let last = crashbox::last_run().expect("a spool is in use");
    report_value(
        "last_run_crashed",
        last.crashed.map_or("none", Signal::name),
    );
    assert!(crashbox::flush(Duration::from_secs(60)), "flushed");
    drop(guard);
}

/// Run by `dropping_the_guard_puts_back_the_handlers_it_replaced`.
#[test]
#[ignore = "child process of `dropping_the_guard_puts_back_the_handlers_it_replaced`"]
fn child_guard_restores() {
    assert_child();
    let before = current_handler(libc::SIGSEGV);
    let guard = crashbox::init(spool_options()).expect("init");
    let during = current_handler(libc::SIGSEGV);
    report_value(
        "during",
        if during != before {
            "crashbox"
        } else {
            "before"
        },
    );
    drop(guard);
    let after = current_handler(libc::SIGSEGV);
    report_value("after", if after == before { "before" } else { "other" });
    let spare = std::fs::read_dir(env_var(SPOOL_ENV))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("-crash"))
        .count();
    report_value("files_left", spare);
}

fn current_handler(signal: libc::c_int) -> usize {
    // SAFETY: reading the current action only.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(signal, std::ptr::null(), &mut action), 0);
        action.sa_sigaction
    }
}

/// A SIGSEGV handler of the application's: says so on stderr, then lets
/// the fault kill the process.
fn install_previous_handler() {
    extern "C" fn previous(_: libc::c_int) {
        let text = format!("{PREVIOUS_RAN}\n");
        // SAFETY: write(2) from a valid buffer; resetting to the default.
        unsafe {
            libc::write(2, text.as_ptr().cast(), text.len());
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
        }
    }
    // SAFETY: installing a plain handler.
    unsafe { libc::signal(libc::SIGSEGV, previous as *const () as libc::sighandler_t) };
}

/// The action `install_later_handler` replaced.
static REPLACED: std::sync::OnceLock<libc::sigaction> = std::sync::OnceLock::new();

/// A handler for `signal` installed after `init`: says so on stderr, then
/// hands on to the action it replaced as chaining handlers do: calls a
/// handler, or puts back the default action and returns.
fn install_later_handler(signal: libc::c_int) {
    extern "C" fn later(
        signal: libc::c_int,
        info: *mut libc::siginfo_t,
        context: *mut libc::c_void,
    ) {
        let text = format!("{LATER_RAN}\n");
        // SAFETY: write(2) from a valid buffer; a replaced handler is
        // called in the form its flags give (crashbox's and std's take
        // three arguments).
        unsafe {
            libc::write(2, text.as_ptr().cast(), text.len());
            let Some(replaced) = REPLACED.get() else {
                return;
            };
            let action = replaced.sa_sigaction;
            if action == libc::SIG_DFL
                || action == libc::SIG_IGN
                || replaced.sa_flags & libc::SA_SIGINFO == 0
            {
                libc::signal(signal, libc::SIG_DFL);
                return;
            }
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(action);
            f(signal, info, context);
        }
    }
    // SAFETY: installing a handler with a valid sigaction.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = later as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        let mut replaced: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(signal, &action, &mut replaced), 0);
        assert!(REPLACED.set(replaced).is_ok(), "installed once");
    }
}

/// Has std's UTF-8 validation read 16 bytes at address 0x8.
#[inline(never)]
fn validate_at_null() {
    let at: *const u8 = std::hint::black_box(8 as *const u8);
    // SAFETY: none: this is the crash under test.
    let bytes = unsafe { std::slice::from_raw_parts(at, 16) };
    let _ = std::hint::black_box(std::str::from_utf8(bytes));
}

/// Executes an instruction defined to be illegal.
#[inline(never)]
fn illegal_instruction() {
    // SAFETY: none: this is the crash under test.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::asm!("ud2")
    };
    #[cfg(target_arch = "aarch64")]
    unsafe {
        std::arch::asm!("udf #0")
    };
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 32]);
    recurse(depth + 1).wrapping_add(frame[(depth % 32) as usize])
}

#[inline(never)]
fn give_up() {
    std::process::abort();
}

struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("a second panic, in drop while unwinding");
    }
}

#[inline(never)]
fn panic_twice() {
    let _guard = PanicsOnDrop;
    panic!("the first panic");
}

/// Raises SIGBUS twice: std's handler (for stack overflows) lets a first
/// raised SIGBUS go, and puts back the default action, which the second meets.
#[inline(never)]
fn raise_bus() {
    for _ in 0..2 {
        // SAFETY: raising a signal.
        unsafe { libc::raise(libc::SIGBUS) };
    }
}
