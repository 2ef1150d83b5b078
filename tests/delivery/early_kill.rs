//! A process killed (SIGKILL) in the middle of a burst of distinct errors,
//! at a random moment from 30 ms to 1.5 s after `init`: every capture made
//! at least 100 ms before the kill is delivered by the next run, including
//! those made while the worker was still starting up or loading debug info.
//!
//! Each run is a child process that captures 1,000 distinct errors (300
//! back to back, then one about every 1.5 ms), printing each report id with
//! the wall-clock time
//! `capture_error` returned; the parent kills it, then a second child
//! delivers what the spool holds to a real loopback HTTP server.
//! `CRASHBOX_SCENARIO_RUNS` sets the number of runs (default 5).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::util;
use crate::util::http_server::{refused_port, Server};
use crate::util::{assert_child, child, env_var, print_stats, report_value, TempDir};
use crashbox::Options;

const SPOOL_ENV: &str = "CRASHBOX_TEST_SPOOL";
const BURST: usize = 1_000;
/// A capture made this long before the kill must survive it.
const DURABLE_WITHIN: Duration = Duration::from_millis(100);
const SIGKILL: i32 = 9;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// How many runs (`CRASHBOX_SCENARIO_RUNS`, default 5).
fn runs() -> usize {
    std::env::var("CRASHBOX_SCENARIO_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}

/// A small deterministic generator for the kill offsets (the seed is printed).
fn offsets(seed: u64, n: usize) -> Vec<Duration> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            Duration::from_millis(30 + (state >> 33) % 1_471)
        })
        .collect()
}

fn options(collector: &str, spool: &Path) -> Options {
    Options::new()
        .collector(collector)
        .spool_dir(spool)
        .spool_max_reports(10 * BURST)
        .aggregation_window(Duration::ZERO)
        .max_reports_per_minute(0)
        .max_attempts(1_000)
}

/// One run: the burst, killed `after` init; returns the (id, ms) of each
/// capture the child made, and the kill's wall-clock time.
fn burst_killed_after(spool: &Path, after: Duration) -> (Vec<(String, u64)>, u64) {
    let state = TempDir::new("state-early-kill");
    let envs: Vec<(&str, OsString)> = vec![
        (
            util::COLLECTOR_ENV,
            format!("http://127.0.0.1:{}/", refused_port()).into(),
        ),
        (SPOOL_ENV, spool.into()),
    ];
    let (mut child, lines, stderr) = util::spawn_child(&child!(child_burst), &envs, state.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.contains("CHILD:initialized") => break,
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the burst never started: {seen:#?}\n{}",
                    stderr.join().unwrap_or_default()
                );
            }
        }
    }
    // The sleep only picks the moment of the kill; what is checked is
    // decided by the times the child printed.
    std::thread::sleep(after);
    let killed_at = now_ms();
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("the child's status");
    assert_eq!(
        status.signal(),
        Some(SIGKILL),
        "{status}\n{}",
        stderr.join().unwrap_or_default()
    );
    let captured = lines
        .try_iter()
        .chain(seen)
        .filter_map(|line| {
            let rest = line.split("CHILD:captured=").nth(1)?;
            let (id, ms) = rest.split_once(' ')?;
            Some((id.to_owned(), ms.trim().parse().ok()?))
        })
        .collect();
    (captured, killed_at)
}

/// Delivers what `spool` holds to `server`; returns the ids delivered.
fn replay(spool: &Path, server: &Server) -> BTreeSet<String> {
    let out = util::run_child(
        &child!(child_replay),
        &[
            (
                util::COLLECTOR_ENV,
                format!("http://127.0.0.1:{}/", server.port()).into(),
            ),
            (SPOOL_ENV, spool.into()),
        ],
    );
    out.assert_success();
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    server
        .requests()
        .iter()
        .flat_map(|r| r.report_ids())
        .collect()
}

#[test]
fn every_capture_made_100_ms_before_a_sigkill_is_delivered_by_the_next_run() {
    let seed = now_ms();
    let runs = runs();
    let mut lost_total = 0;
    let mut eligible_total = 0;
    for (run, after) in offsets(seed, runs).into_iter().enumerate() {
        let spool = TempDir::new("spool-early-kill");
        let (captured, killed_at) = burst_killed_after(spool.path(), after);
        let server = Server::start();
        let delivered = replay(spool.path(), &server);
        let eligible: Vec<&String> = captured
            .iter()
            .filter(|(_, ms)| ms + DURABLE_WITHIN.as_millis() as u64 <= killed_at)
            .map(|(id, _)| id)
            .collect();
        let lost: Vec<&&String> = eligible
            .iter()
            .filter(|id| !delivered.contains(id.as_str()))
            .collect();
        eprintln!(
            "run {run}: killed {after:?} after init; {} captured, {} of them at least {DURABLE_WITHIN:?} before the kill, {} delivered in all, {} of those lost",
            captured.len(),
            eligible.len(),
            delivered.len(),
            lost.len()
        );
        lost_total += lost.len();
        eligible_total += eligible.len();
    }
    eprintln!(
        "early kills (seed {seed}, {runs} runs): {lost_total} of {eligible_total} captures made at least {DURABLE_WITHIN:?} before the kill lost"
    );
    assert_eq!(lost_total, 0, "seed {seed}");
}

/// `n` spelt in the letters g to z: distinct messages that stay distinct
/// when crashbox sets aside the variable parts (numbers, hex) of messages.
fn word(mut n: usize) -> String {
    let mut word = String::new();
    loop {
        word.push((b'g' + (n % 20) as u8) as char);
        n /= 20;
        if n == 0 {
            return word;
        }
    }
}

/// Run (and killed) by the test above: 1,000 distinct errors, the first 300
/// back to back, then one about every 1.5 ms, each printed with the time its
/// capture returned.
#[test]
#[ignore = "child process of the callers of `burst_killed_after`"]
fn child_burst() {
    assert_child();
    let spool = env_var(SPOOL_ENV);
    let _guard =
        crashbox::init(options(&util::child_collector(), Path::new(&spool))).expect("init");
    report_value("initialized", true);
    for i in 0..BURST {
        let error = std::io::Error::other(format!("distinct failure {}", word(i)));
        let id = crashbox::capture_error(&error).expect("captured");
        report_value("captured", format!("{id} {}", now_ms()));
        // The first 300 back to back (more than the worker keeps in memory
        // while it loads debug info), then one about every 1.5 ms.
        if i >= 300 {
            std::thread::sleep(Duration::from_micros(1_500));
        }
    }
    std::thread::sleep(Duration::from_secs(120));
    unreachable!("the parent kills this process");
}

/// Run by the test above: delivers what the spool holds.
#[test]
#[ignore = "child process of the callers of `replay`"]
fn child_replay() {
    assert_child();
    let spool = env_var(SPOOL_ENV);
    let guard = crashbox::init(options(&util::child_collector(), Path::new(&spool))).expect("init");
    report_value("flushed", crashbox::flush(Duration::from_secs(60)));
    print_stats("stats");
    drop(guard);
}
