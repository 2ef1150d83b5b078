//! Nothing captured is lost at exit: a collector that never answers, a
//! program that panics and then calls `std::process::exit`, a `main` that
//! returns right after capturing, a collector file that cannot be written
//! yet, and a spool full of an earlier run's reports.
//!
//! `init` installs per-process state, so every run of the program is a
//! child process: a `child_*` test of this binary (see `util::run_child`).
//! Each scenario repeats its runs `CRASHBOX_SCENARIO_RUNS` times (default
//! 5), prints its figures on stderr and asserts that every run lost nothing.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::http_server::refused_port;
use crate::util::{
    assert_child, child, env_var, file_collector, one_by_one, print_stats, read_reports,
    report_value, run_child, stats_with, ChildOutput, TempDir, COLLECTOR_ENV, REPORTS_ENV,
};
use crashbox::{Kind, Options};

/// How many runs each scenario makes (default [`DEFAULT_RUNS`]).
const RUNS_ENV: &str = "CRASHBOX_SCENARIO_RUNS";
/// Runs per scenario when [`RUNS_ENV`] is not set.
const DEFAULT_RUNS: usize = 5;
/// The child's spool directory.
const SPOOL_ENV: &str = "CRASHBOX_TEST_SPOOL";
/// How a child of the hung-collector scenario drops its guard: [`AT_ONCE`]
/// or [`AFTER_WAIT`].
const VARIANT_ENV: &str = "CRASHBOX_TEST_VARIANT";
/// The guard is dropped right after the captures.
const AT_ONCE: &str = "at-once";
/// The guard is dropped [`WAIT_BEFORE_DROP`] after the captures.
const AFTER_WAIT: &str = "after-wait";
/// How long the [`AFTER_WAIT`] variant lets the worker run before dropping
/// the guard (it shapes the scenario; no result depends on it).
const WAIT_BEFORE_DROP: Duration = Duration::from_millis(300);

/// Captures of one error, from one call site, in each hung-collector run.
const REPEATS: u64 = 10;
/// Reports the first run of the old-reports scenario leaves in the spool.
const OLD_REPORTS: usize = 100;
/// The longest a guard's drop may take while the spool holds old reports.
const MAX_DROP: Duration = Duration::from_millis(1500);
/// How long any wait in a child may take before the test fails.
const WAIT: Duration = Duration::from_secs(60);

/// What a panicking thread is called, and what it says.
const PANIC_THREAD: &str = "nothing-lost-panicker";
const PANIC_MESSAGE: &str = "the panic before the exit";
/// What the captured error says.
const ERROR_MESSAGE: &str = "the error before main returned";

/// The number of runs each scenario makes: [`RUNS_ENV`], else [`DEFAULT_RUNS`].
fn runs() -> usize {
    match std::env::var(RUNS_ENV) {
        Ok(value) => value
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{RUNS_ENV}={value} is not a number: {e}")),
        Err(_) => DEFAULT_RUNS,
    }
}

/// Runs child test `name` with `envs` and asserts it succeeded.
#[track_caller]
fn run_ok(name: &str, envs: &[(&str, OsString)]) -> ChildOutput {
    let out = run_child(name, envs);
    out.assert_success();
    out
}

/// Spawns a thread named [`PANIC_THREAD`] that panics with
/// [`PANIC_MESSAGE`], and waits for it.
fn panic_on_a_thread() {
    let panicker = std::thread::Builder::new()
        .name(PANIC_THREAD.to_owned())
        .spawn(|| panic!("{}", PANIC_MESSAGE))
        .expect("spawn the panicking thread");
    let _ = panicker.join();
}

/// The report ids in the names of the `*.report` files directly in `dir`
/// (`<ms>-<id>.<owner>.report`).
fn spooled_ids(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".report"))
                .filter_map(|name| {
                    let (_, rest) = name.split_once('-')?;
                    Some(rest.split('.').next()?.to_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The paths of the files in `root` and its subdirectories, relative to
/// `root`, for failure messages.
fn spool_listing(root: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path.clone());
            }
            names.push(
                path.strip_prefix(root)
                    .unwrap_or(&path)
                    .display()
                    .to_string(),
            );
        }
    }
    names.sort();
    names
}

/// The `*.lock` files in the spool `dir` that a live owner holds (a shared
/// lock cannot be taken), for failure messages.
fn held_locks(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().ends_with(".lock"))
        .filter(|path| std::fs::File::open(path).is_ok_and(|file| file.try_lock_shared().is_err()))
        .filter_map(|path| Some(path.file_name()?.to_string_lossy().into_owned()))
        .collect()
}

/// Whether `reports` hold exactly one panic, from [`PANIC_THREAD`] with
/// [`PANIC_MESSAGE`].
fn has_the_panic(reports: &[crashbox::Report]) -> bool {
    let panics: Vec<_> = reports.iter().filter(|r| r.kind == Kind::Panic).collect();
    panics.len() == 1
        && panics[0].message == PANIC_MESSAGE
        && panics[0].thread.name.as_deref() == Some(PANIC_THREAD)
}

// ---------------------------------------------------------------------------
// 1. A collector that accepts connections and never answers.

/// A collector that never answers, the guard dropped right after the
/// captures: the next client replays all of them.
#[test]
fn hung_collector_guard_dropped_at_once_every_repeat_is_replayed() {
    hung_collector(AT_ONCE, "guard dropped at once");
}

/// A collector that never answers, the guard dropped 300 ms after the
/// captures: the next client replays all of them.
#[test]
fn hung_collector_guard_dropped_after_300ms_every_repeat_is_replayed() {
    hung_collector(AFTER_WAIT, "guard dropped after 300 ms");
}

/// Runs [`child_hung_collector_runs`] in `variant` and asserts every run
/// delivered all [`REPEATS`] captures, counting `count`s.
fn hung_collector(variant: &str, label: &str) {
    let runs = runs();
    let out = run_ok(
        &child!(child_hung_collector_runs),
        &[
            (VARIANT_ENV, variant.into()),
            (RUNS_ENV, runs.to_string().into()),
        ],
    );
    let sums: Vec<u64> = out
        .values("sum")
        .iter()
        .map(|sum| sum.parse().expect("a number"))
        .collect();
    let drops = out.values("drop_ms").join(", ");
    let complete = sums.iter().filter(|&&sum| sum == REPEATS).count();
    eprintln!(
        "hung collector, {label}: {complete} of {runs} runs delivered all {REPEATS} captures \
         (sums of counts {sums:?}; first guard dropped in {drops} ms)"
    );
    assert_eq!(sums.len(), runs, "{}", out.dump());
    assert!(
        sums.iter().all(|&sum| sum == REPEATS),
        "a run lost captures: sums {sums:?}\n{}",
        out.dump()
    );
}

/// Run by the `hung_collector_*` tests: [`RUNS_ENV`] times, captures one
/// error [`REPEATS`] times towards a listener that never answers, drops the
/// guard as [`VARIANT_ENV`] says, then replays the spool into the `memory`
/// collector and prints the sum of the delivered reports' `count`s.
#[test]
#[ignore = "child process of the callers of `hung_collector`"]
fn child_hung_collector_runs() {
    assert_child();
    let wait_first = env_var(VARIANT_ENV) == AFTER_WAIT;
    for run in 0..runs() {
        let spool = TempDir::new("hung-spool");
        // Connections complete in the kernel's backlog; no request is answered.
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();

        let guard = crashbox::init(
            Options::new()
                .collector(format!("http://127.0.0.1:{port}/"))
                .spool_dir(spool.path())
                .aggregation_burst(1)
                .shutdown_timeout(Duration::from_millis(500)),
        )
        .expect("init towards the hung collector");
        let error = std::io::Error::other("the collector never answers");
        for _ in 0..REPEATS {
            crashbox::capture_error(&error);
        }
        if wait_first {
            std::thread::sleep(WAIT_BEFORE_DROP);
        }
        let start = Instant::now();
        drop(guard);
        report_value("drop_ms", start.elapsed().as_millis());

        let held_locks = held_locks(spool.path());
        // The next run of the program, on the same spool.
        let guard = crashbox::init(Options::new().collector("memory").spool_dir(spool.path()))
            .expect("init on the memory collector");
        let flushed = crashbox::flush(WAIT);
        let mut reports = crashbox::take_memory_reports();
        drop(guard);
        reports.extend(crashbox::take_memory_reports());
        let sum: u64 = reports.iter().map(|r| r.count).sum();
        eprintln!(
            "run {run}: flushed {flushed}, {} report(s), counts {:?}",
            reports.len(),
            reports.iter().map(|r| r.count).collect::<Vec<_>>()
        );
        if sum != REPEATS {
            eprintln!(
                "run {run}: locks held before the second init {held_locks:?}; \
                 the spool holds {:?}; {:?}",
                spool_listing(spool.path()),
                crashbox::stats()
            );
        }
        report_value("sum", sum);
        drop(listener);
    }
}

// ---------------------------------------------------------------------------
// 2. A panic, then `std::process::exit`, with a local collector.

/// A panic on a thread, then `std::process::exit` without dropping the
/// guard: the panic is in the file.
#[test]
fn a_panic_then_process_exit_is_in_the_file() {
    let runs = runs();
    let mut written = 0;
    for run in 0..runs {
        let dir = TempDir::new("panic-exit");
        let path = dir.path().join("reports.jsonl");
        let out = run_ok(
            &child!(child_panic_then_exit),
            &[(REPORTS_ENV, path.clone().into())],
        );
        let reports = read_reports(&path);
        assert_eq!(reports.len(), 1, "run {run}: {reports:#?}\n{}", out.dump());
        assert!(
            has_the_panic(&reports),
            "run {run}: {reports:#?}\n{}",
            out.dump()
        );
        written += 1;
    }
    eprintln!(
        "file collector, panic then std::process::exit: {written} of {runs} runs wrote the panic"
    );
}

/// Run by `a_panic_then_process_exit_is_in_the_file`: panics on a thread,
/// then exits without dropping the guard.
#[test]
#[ignore = "child process of `a_panic_then_process_exit_is_in_the_file`"]
fn child_panic_then_exit() {
    assert_child();
    let path = PathBuf::from(env_var(REPORTS_ENV));
    let guard = crashbox::init(
        Options::new()
            .collector(file_collector(&path))
            .panic_flush_timeout(WAIT),
    )
    .expect("init");
    panic_on_a_thread();
    std::mem::forget(guard);
    std::process::exit(0);
}

// ---------------------------------------------------------------------------
// 3. `main` returns right after a panic and an error, with a local collector.

/// A panic and an error, then the guard dropped at once (default
/// `shutdown_timeout`): both are in the file.
#[test]
fn a_panic_and_an_error_right_before_main_returns_are_in_the_file() {
    let runs = runs();
    let mut written = 0;
    for run in 0..runs {
        let dir = TempDir::new("main-returns");
        let path = dir.path().join("reports.jsonl");
        let out = run_ok(
            &child!(child_panic_and_error_then_return),
            &[(REPORTS_ENV, path.clone().into())],
        );
        let reports = read_reports(&path);
        let error_id = out.value("error_id");
        let errors: Vec<_> = reports.iter().filter(|r| r.kind == Kind::Error).collect();
        assert!(
            errors.len() == 1
                && errors[0].id.to_hex() == error_id
                && errors[0].message == ERROR_MESSAGE,
            "run {run}: the error is not in the file: {reports:#?}\n{}",
            out.dump()
        );
        assert!(
            has_the_panic(&reports),
            "run {run}: the panic is not in the file: {reports:#?}\n{}",
            out.dump()
        );
        assert_eq!(reports.len(), 2, "run {run}: {reports:#?}");
        written += 1;
    }
    eprintln!(
        "file collector, guard dropped right after a panic and an error: \
         {written} of {runs} runs wrote both"
    );
}

/// Run by `a_panic_and_an_error_right_before_main_returns_are_in_the_file`.
#[test]
#[ignore = "child process of `a_panic_and_an_error_right_before_main_returns_are_in_the_file`"]
fn child_panic_and_error_then_return() {
    assert_child();
    let path = PathBuf::from(env_var(REPORTS_ENV));
    let guard = crashbox::init(Options::new().collector(file_collector(&path))).expect("init");
    panic_on_a_thread();
    let id = crashbox::capture_error(&std::io::Error::other(ERROR_MESSAGE)).expect("captured");
    report_value("error_id", id);
    drop(guard);
}

// ---------------------------------------------------------------------------
// 4. The collector file cannot be created in one run, and can in the next.

/// A report the file could not take (its directory is a regular file) is
/// spooled, not dropped, and the next run writes it once the file can be
/// created.
#[test]
fn a_report_the_file_could_not_take_is_written_by_the_next_run() {
    let runs = runs();
    let mut written = 0;
    for run in 0..runs {
        let dir = TempDir::new("unwritable");
        let blocker = dir.path().join("blocker");
        std::fs::write(&blocker, b"a regular file, not a directory").unwrap();
        let path = blocker.join("reports.jsonl");
        let spool = dir.path().join("spool");
        let envs = [
            (REPORTS_ENV, path.clone().into()),
            (SPOOL_ENV, spool.into()),
        ];

        let first = run_ok(&child!(child_capture_into_unwritable_file), &envs);
        let stats = stats_with(&first, "stats", "spooled");
        assert!(
            stats["spooled"] >= 1,
            "run {run}: nothing spooled: {stats:?}\n{}",
            first.dump()
        );
        let dropped: u64 = stats
            .iter()
            .filter(|(name, _)| name.starts_with("dropped_"))
            .map(|(_, n)| n)
            .sum();
        assert_eq!(dropped, 0, "run {run}: {stats:?}\n{}", first.dump());
        let id = first.value("id");

        std::fs::remove_file(&blocker).unwrap();
        let second = run_ok(&child!(child_flush_into_file), &envs);
        assert_eq!(second.value("flushed"), "true", "{}", second.dump());
        let reports = read_reports(&path);
        assert!(
            reports.iter().any(|r| r.id.to_hex() == id),
            "run {run}: report {id} is not in the file: {reports:#?}\n{}",
            second.dump()
        );
        written += 1;
    }
    eprintln!(
        "file collector unwritable, then writable: {written} of {runs} runs delivered \
         the first run's report in the second"
    );
}

/// Options of both runs of the unwritable-file scenario: the parent's file
/// and spool.
fn file_and_spool() -> Options {
    Options::new()
        .collector(file_collector(Path::new(&env_var(REPORTS_ENV))))
        .spool_dir(env_var(SPOOL_ENV))
}

/// Run by `a_report_the_file_could_not_take_is_written_by_the_next_run`:
/// captures an error while the file cannot be created.
#[test]
#[ignore = "child process of `a_report_the_file_could_not_take_is_written_by_the_next_run`"]
fn child_capture_into_unwritable_file() {
    assert_child();
    let guard = crashbox::init(file_and_spool()).expect("init");
    let id = crashbox::capture_error(&std::io::Error::other("the file is not there yet"))
        .expect("captured");
    report_value("id", id);
    drop(guard);
    print_stats("stats");
}

/// Run by `a_report_the_file_could_not_take_is_written_by_the_next_run`:
/// delivers what the spool holds.
#[test]
#[ignore = "child process of `a_report_the_file_could_not_take_is_written_by_the_next_run`"]
fn child_flush_into_file() {
    assert_child();
    let guard = crashbox::init(file_and_spool()).expect("init");
    report_value("flushed", crashbox::flush(WAIT));
    drop(guard);
}

// ---------------------------------------------------------------------------
// 5. A spool full of an earlier run's reports does not slow later runs.

/// With an earlier run's reports in the spool and the collector refusing
/// connections, dropping the guard waits for this run's report only, and the
/// old reports stay in the spool.
#[test]
fn old_reports_in_the_spool_never_slow_a_run() {
    let runs = runs();
    let spool = TempDir::new("old-reports");
    let envs = [
        (
            COLLECTOR_ENV,
            format!("http://127.0.0.1:{}/", refused_port()).into(),
        ),
        (SPOOL_ENV, spool.path().into()),
    ];
    let first = run_ok(&child!(child_leave_old_reports), &envs);
    let old: BTreeSet<String> = first.values("id").into_iter().collect();
    assert_eq!(old.len(), OLD_REPORTS, "{}", first.dump());
    let missing = |when: &str| {
        let spooled = spooled_ids(spool.path());
        let missing: Vec<&String> = old.difference(&spooled).collect();
        assert!(
            missing.is_empty(),
            "{when}: {} old report(s) left the spool: {missing:?}",
            missing.len()
        );
    };
    missing("after the first run");

    let mut drops = Vec::new();
    for run in 0..runs {
        let out = run_ok(&child!(child_timed_drop), &envs);
        drops.push(Duration::from_millis(out.number("drop_ms")));
        missing(&format!("after run {run}"));
    }
    let slow = drops.iter().filter(|&&d| d >= MAX_DROP).count();
    eprintln!(
        "{OLD_REPORTS} old reports in the spool: {} of {runs} runs dropped the guard in under \
         {MAX_DROP:?} (drops took {drops:?})",
        runs - slow
    );
    assert_eq!(slow, 0, "drops took {drops:?}");
}

/// Options of every run of the old-reports scenario: the parent's refused
/// collector and spool, every capture sent on its own, one attempt, room in
/// the spool for every report.
fn refused_with_spool() -> Options {
    one_by_one(Options::new())
        .collector(env_var(COLLECTOR_ENV))
        .spool_dir(env_var(SPOOL_ENV))
        .max_attempts(1)
        .spool_max_reports(10 * OLD_REPORTS)
}

/// Run by `old_reports_in_the_spool_never_slow_a_run`: leaves
/// [`OLD_REPORTS`] distinct reports in the spool.
#[test]
#[ignore = "child process of `old_reports_in_the_spool_never_slow_a_run`"]
fn child_leave_old_reports() {
    assert_child();
    let guard = crashbox::init(refused_with_spool()).expect("init");
    for i in 0..OLD_REPORTS {
        let error = std::io::Error::other(format!("old report {i}"));
        report_value("id", crashbox::capture_error(&error).expect("captured"));
    }
    drop(guard);
}

/// Run by `old_reports_in_the_spool_never_slow_a_run`: captures one error
/// and prints how long dropping the guard took.
#[test]
#[ignore = "child process of `old_reports_in_the_spool_never_slow_a_run`"]
fn child_timed_drop() {
    assert_child();
    let guard = crashbox::init(refused_with_spool()).expect("init");
    crashbox::capture_error(&std::io::Error::other("a new report")).expect("captured");
    let start = Instant::now();
    drop(guard);
    report_value("drop_ms", start.elapsed().as_millis());
}
