//! A crash loop: the same panic, run after run, while the collector cannot
//! be reached. The spool's retention folds the loop's panics into its first
//! one (with a count) and keeps the latest, deleting other reports instead,
//! so when the collector is back every capture is accounted for: in the
//! delivered reports' counts, or in the number of deleted reports that a
//! delivered report carries.
//!
//! Every run of the program is a child process: an ignored `child_*` test of
//! this binary, which the parent runs with `--ignored --exact` (see
//! `util::child_command`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::util::http_server::{refused_port, Server};
use crate::util::{
    assert_child, child, child_collector, child_command, env_var, http_collector, one_by_one,
    parse_stats, print_stats, report_value, wait_for_exit, ChildOutput, TempDir, COLLECTOR_ENV,
};
use crashbox::{Level, Options};
use serde_json::Value;

/// The child's spool directory.
const SPOOL_ENV: &str = "CRASHBOX_TEST_SPOOL";
/// Which run of the loop a child is (0, 1, …).
const RUN_ENV: &str = "CRASHBOX_TEST_RUN";
/// Set when the parent SIGKILLs the child once it has settled.
const KILLED_ENV: &str = "CRASHBOX_TEST_KILLED";
/// Set when repeats are aggregated as by default (else each is sent on its own).
const AGGREGATE_ENV: &str = "CRASHBOX_TEST_AGGREGATE";

/// Runs of the loop, each panicking [`PANICS_PER_RUN`] times at one site
/// and capturing one message of its own.
const RUNS: usize = 20;
const PANICS_PER_RUN: usize = 10;
/// `Options::spool_max_reports` of every run.
const MAX_REPORTS: usize = 10;
/// Where a report carries how many reports the spool's retention deleted.
const DISCARDED_KEY: &str = "crashbox.spool_discarded";
/// How long a child may take to settle (or to run to its end).
const CHILD_DEADLINE: Duration = Duration::from_secs(60);
const SIGKILL: i32 = 9;

/// What every run starts from: the parent's collector and spool, a small
/// retention limit, every capture sent on its own (unless `AGGREGATE_ENV`
/// is set), and retries that give up fast.
fn options() -> Options {
    let options = if std::env::var_os(AGGREGATE_ENV).is_some() {
        Options::new()
    } else {
        one_by_one(Options::new())
    };
    options
        .collector(child_collector())
        .spool_dir(env_var(SPOOL_ENV))
        .spool_max_reports(MAX_REPORTS)
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(100))
        .max_attempts(2)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Returns once the clock has moved to a new millisecond, so that every
/// capture of the loop has a time of its own (spool files sort by it).
fn next_millisecond() {
    let now = now_ms();
    while now_ms() == now {
        std::hint::spin_loop();
    }
}

/// The loop's one panic site; `i` only changes a number in the message.
#[inline(never)]
fn crash_loop_site(i: usize) {
    panic!("crash loop iteration {i}");
}

/// One run of the loop: panics [`PANICS_PER_RUN`] times at the same site
/// (caught), captures a message that only this run says, waits until all
/// of it is settled (the collector is unreachable: it stays in the spool),
/// says so, and then either waits to be killed or ends.
#[test]
#[ignore = "one run of a crash loop: a child process of the tests in this file"]
fn child_crash_loop_run() {
    assert_child();
    // Crashbox hands each panic over to this hook, which stays quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let guard = crashbox::init(options()).expect("init");
    let run: u8 = env_var(RUN_ENV).parse().unwrap();
    for i in 0..PANICS_PER_RUN {
        next_millisecond();
        assert!(std::panic::catch_unwind(|| crash_loop_site(i)).is_err());
    }
    next_millisecond();
    // A letter, not a digit: a number would make the messages one report.
    let letter = char::from(b'a' + run);
    crashbox::capture_message(format!("run {letter} of the loop"), Level::Warning).expect("queued");
    report_value("flushed", crashbox::flush(CHILD_DEADLINE));
    print_stats("stats");
    report_value("settled", 1);
    if std::env::var_os(KILLED_ENV).is_some() {
        std::thread::sleep(Duration::from_secs(120));
        unreachable!("the parent kills this process");
    }
    drop(guard);
}

/// The run after the loop, with the collector back: replays the spool.
#[test]
#[ignore = "the run after a crash loop: a child process of the tests in this file"]
fn child_crash_loop_deliver() {
    assert_child();
    let guard = crashbox::init(options().max_attempts(5)).expect("init");
    report_value("flushed", crashbox::flush(CHILD_DEADLINE));
    print_stats("stats");
    drop(guard);
}

/// The environment of a child on `spool` sending to `collector`, with
/// repeats aggregated or not.
fn child_env(collector: &str, spool: &Path, aggregate: bool) -> Vec<(&'static str, OsString)> {
    let mut envs = vec![(COLLECTOR_ENV, collector.into()), (SPOOL_ENV, spool.into())];
    if aggregate {
        envs.push((AGGREGATE_ENV, "1".into()));
    }
    envs
}

/// Runs run `run` of the loop on `spool` against `collector` until it has
/// settled, then SIGKILLs it (`kill`) or lets it end; returns its counters.
fn run_loop_once(
    run: usize,
    spool: &Path,
    collector: &str,
    aggregate: bool,
    kill: bool,
) -> BTreeMap<String, u64> {
    let name = &child!(child_crash_loop_run);
    let state = TempDir::new("state-crash-loop");
    let mut envs = child_env(collector, spool, aggregate);
    envs.push((RUN_ENV, run.to_string().into()));
    if kill {
        envs.push((KILLED_ENV, "1".into()));
    }
    let (mut child, lines, stderr) = crate::util::spawn_child(name, &envs, state.path());
    let deadline = Instant::now() + CHILD_DEADLINE;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains("CHILD:settled=") => break,
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = stderr.join().unwrap();
                panic!("run {run} never settled: {seen:#?}\n{stderr}");
            }
        }
    }
    let status = if kill {
        child.kill().unwrap(); // SIGKILL: no destructor, no shutdown
        child.wait().unwrap()
    } else {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("run {run} did not end");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    let stderr = stderr.join().unwrap();
    let dump = format!("run {run}: {status}\n{seen:#?}\n{stderr}");
    if kill {
        assert_eq!(status.signal(), Some(SIGKILL), "{dump}");
    } else {
        assert!(status.success(), "{dump}");
    }
    assert!(seen.iter().any(|l| l.contains("running 1 test")), "{dump}");
    assert!(
        seen.iter().any(|l| l.contains("CHILD:flushed=true")),
        "{dump}"
    );
    let stats = seen
        .iter()
        .find_map(|l| l.split_once("CHILD:stats=").map(|(_, s)| parse_stats(s)))
        .unwrap_or_else(|| panic!("no stats: {dump}"));
    assert!(stats.contains_key("spool_folded"), "{dump}");
    stats
}

/// Runs the delivering child on `spool` against `collector`, to its end.
fn run_delivery(spool: &Path, collector: &str, aggregate: bool) -> ChildOutput {
    let name = &child!(child_crash_loop_deliver);
    let state = TempDir::new("state-crash-loop");
    let start = Instant::now();
    let child = child_command(name, &child_env(collector, spool, aggregate), state.path())
        .spawn()
        .expect("spawn the child");
    let out = wait_for_exit(child, start, CHILD_DEADLINE, name);
    out.assert_success();
    assert!(out.stdout.contains("running 1 test"), "{}", out.dump());
    out
}

/// The panics in the spool (raw captures or finished reports) as (capture
/// ms, id), oldest first.
fn spooled_panics(spool: &Path) -> Vec<(u64, String)> {
    let mut panics: Vec<(u64, String)> = std::fs::read_dir(spool)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            // `<capture ms>-<id>.<owner>.report`
            let name = e.file_name().to_string_lossy().into_owned();
            let (ms, _) = name.strip_suffix(".report")?.split_once('-')?;
            let ms: u64 = ms.parse().ok()?;
            let file: Value = serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
            let entry = &file["entry"];
            (entry["kind"] == "panic").then(|| (ms, entry["id"].as_str().unwrap().to_owned()))
        })
        .collect();
    panics.sort();
    panics
}

/// The `*.report` files in the spool.
fn report_files(spool: &Path) -> usize {
    std::fs::read_dir(spool)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".report"))
        .count()
}

/// Every report the server acknowledged, in arrival order.
fn delivered(server: &Server) -> Vec<Value> {
    server
        .requests()
        .iter()
        .filter(|r| r.acknowledged())
        .flat_map(|r| r.json().as_array().expect("a JSON array").clone())
        .collect()
}

/// What a crash loop and the run after it came to.
struct Outcome {
    /// The reports the collector received.
    reports: Vec<Value>,
    /// Spool files deleted by retention, over every run (`stats()`).
    discarded: u64,
    /// Spool files folded, over every run.
    folded: u64,
    /// The first and the latest panic of the loop: capture ms and id.
    first: (u64, String),
    latest: (u64, String),
}

/// Runs the crash loop (every other run SIGKILLed once settled), then the
/// run that delivers, and checks what holds however repeats are sent: every
/// capture is in a delivered report's count or among the deleted that
/// `stats()` counted, a delivered report carries a number deleted, and the
/// loop's first panic arrived with its id and time.
fn crash_loop(aggregate: bool) -> Outcome {
    let spool = TempDir::new("spool-crash-loop");
    let unreachable = http_collector(refused_port());
    let (mut discarded, mut folded) = (0, 0);
    let mut first = None;
    for run in 0..RUNS {
        let kill = run % 2 == 0;
        let stats = run_loop_once(run, spool.path(), &unreachable, aggregate, kill);
        assert_eq!(stats["sent"], 0, "run {run}: {stats:?}");
        discarded += stats["spool_discarded"];
        folded += stats["spool_folded"];
        if run == 0 {
            first = spooled_panics(spool.path()).first().cloned();
        }
        // What the run found (at most the limit) and what it added.
        let files = report_files(spool.path());
        assert!(
            files <= MAX_REPORTS + PANICS_PER_RUN + 1,
            "run {run} left {files} files"
        );
    }
    let first = first.expect("the first run spooled its panics");
    let latest = spooled_panics(spool.path())
        .last()
        .cloned()
        .expect("panics in the spool");
    assert!(latest.0 > first.0);

    let server = Server::start();
    let out = run_delivery(spool.path(), &http_collector(server.port()), aggregate);
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let stats = parse_stats(&out.value("stats"));
    discarded += stats["spool_discarded"];
    folded += stats["spool_folded"];
    let reports = delivered(&server);
    assert_eq!(stats["sent"], reports.len() as u64, "{stats:?}");
    assert!(reports.len() <= MAX_REPORTS, "{} delivered", reports.len());
    assert_eq!(
        report_files(spool.path()),
        0,
        "the spool is empty: {:?}\n{}",
        std::fs::read_dir(spool.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect::<Vec<_>>(),
        out.dump()
    );

    let captured = (RUNS * (PANICS_PER_RUN + 1)) as u64;
    let counted: u64 = reports.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert!(discarded > 0, "the loop's runs crowded out other reports");
    // Here every deleted file held one report.
    assert_eq!(counted + discarded, captured, "{reports:#?}");
    assert!(
        reports
            .iter()
            .any(|r| r["extra"][DISCARDED_KEY].as_u64() > Some(0)),
        "a report carries the number deleted: {reports:#?}"
    );
    // The loop's first panic arrived, with the time it was captured.
    let first_report = reports
        .iter()
        .find(|r| r["id"] == first.1.as_str())
        .unwrap_or_else(|| panic!("the first panic is lost: {reports:#?}"));
    assert_eq!(first_report["message"], "crash loop iteration 0");
    assert_captured_at(first_report, first.0);
    Outcome {
        reports,
        discarded,
        folded,
        first,
        latest,
    }
}

/// `report`'s timestamp is capture time `ms` (same second and millisecond).
#[track_caller]
fn assert_captured_at(report: &Value, ms: u64) {
    let timestamp = report["timestamp"].as_str().unwrap();
    assert_eq!(
        &timestamp[17..23],
        format!("{:02}.{:03}", (ms / 1000) % 60, ms % 1000),
        "{report:#}"
    );
}

#[test]
fn a_crash_loop_keeps_its_first_and_latest_panic_and_accounts_for_every_capture() {
    let Outcome {
        reports,
        discarded,
        folded,
        first,
        latest,
    } = crash_loop(false);
    // One report carries the number deleted, which is what stats() counted.
    let carriers: Vec<&Value> = reports
        .iter()
        .filter(|r| r["extra"].get(DISCARDED_KEY).is_some())
        .collect();
    assert_eq!(carriers.len(), 1, "{reports:#?}");
    assert_eq!(carriers[0]["extra"][DISCARDED_KEY], discarded);
    let carrier = carriers[0]["id"].as_str().unwrap();
    // All panics but the first and the latest were folded into the first;
    // only messages were deleted.
    assert_eq!(folded, (RUNS * PANICS_PER_RUN - 2) as u64);
    let panics: Vec<&Value> = reports.iter().filter(|r| r["kind"] == "panic").collect();
    assert_eq!(panics.len(), 2, "{panics:#?}");
    let panic_count: u64 = panics.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(panic_count, (RUNS * PANICS_PER_RUN) as u64);
    assert_eq!(panics[0]["id"], first.1.as_str());
    assert_eq!(panics[0]["count"], (RUNS * PANICS_PER_RUN - 1) as u64);
    assert_eq!(panics[1]["id"], latest.1.as_str());
    assert_eq!(
        panics[1]["message"],
        format!("crash loop iteration {}", PANICS_PER_RUN - 1)
    );
    assert_eq!(panics[1]["count"], 1);
    assert_captured_at(panics[1], latest.0);
    // The messages left are the newest runs'.
    let messages: Vec<&Value> = reports.iter().filter(|r| r["kind"] == "message").collect();
    let texts: Vec<&str> = messages
        .iter()
        .map(|r| r["message"].as_str().unwrap())
        .collect();
    let newest: Vec<String> = (RUNS - texts.len()..RUNS)
        .map(|run| format!("run {} of the loop", char::from(b'a' + run as u8)))
        .collect();
    assert_eq!(texts, newest);
    // The number deleted rides on the oldest finished report, else on the
    // oldest entry (the loop's first panic): which of them is one depends
    // on whether a run spooled its messages as raw captures or as reports.
    assert!(
        carrier == first.1 || messages[0]["id"] == carrier,
        "carried by {carrier}"
    );
}

#[test]
fn a_crash_loop_with_repeats_aggregated_still_accounts_for_every_capture() {
    // The worker folds repeats too, into reports closing a window: those are
    // finished reports, which the spool folds apart from the raw captures
    // (and may delete, when one stands alone); what `crash_loop` checks
    // holds all the same.
    let Outcome { reports, .. } = crash_loop(true);
    assert!(
        reports
            .iter()
            .any(|r| r["kind"] == "panic" && r["count"].as_u64() > Some(1)),
        "{reports:#?}"
    );
}
