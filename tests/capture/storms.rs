//! Error storms: fingerprints, aggregation of repeats, the client-side rate
//! limit and the sample rate, through an installed client and the `memory`
//! collector.
//!
//! A client is process-wide, so the in-process scenarios take turns
//! (`util::client_turn`) and compare counters before and after; the
//! fingerprint's stability across runs is checked in child processes.

use std::ffi::OsString;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::util;
use crate::util::{assert_child, child, client_turn, report_value, run_child, TempDir};
use crashbox::{
    ConfigError, Level, Options, Report, Stats, Transport, TransportError,
    DEFAULT_AGGREGATION_BURST,
};

#[derive(Debug)]
struct Timeout;
impl std::fmt::Display for Timeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("upstream timed out")
    }
}
impl std::error::Error for Timeout {}

#[derive(Debug)]
struct Refused;
impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection refused")
    }
}
impl std::error::Error for Refused {}

#[inline(never)]
fn fetch_quotes() {
    crashbox::capture_error(&Timeout);
}

#[inline(never)]
fn fetch_prices() {
    crashbox::capture_error(&Timeout);
}

/// Two call sites in one function: same in-app function names, other addresses.
#[inline(never)]
fn retry_twice() {
    crashbox::capture_error(&Refused);
    crashbox::capture_error(&Refused);
}

/// An error whose text carries a number that changes from one occurrence to the next.
#[derive(Debug)]
struct Burst(u32);
impl std::fmt::Display for Burst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "burst error {}", self.0)
    }
}
impl std::error::Error for Burst {}

#[inline(never)]
fn burst(i: u32) {
    crashbox::capture_error(&Burst(i));
}

/// Two distinct failures from one function, as a file-writing command
/// meets them: the output is not writable, then the disk fills up.
#[inline(never)]
fn save_results() {
    crashbox::capture_error(&std::io::Error::from_raw_os_error(13));
    crashbox::capture_error(&std::io::Error::from_raw_os_error(28));
}

/// A job that panics, with a message that depends on the job.
#[inline(never)]
fn run_job(job: u32) {
    let _ = std::panic::catch_unwind(move || {
        if job == 0 {
            panic!("job {job}: cache is corrupt");
        }
        panic!("job {job}: queue was closed");
    });
}

fn memory(options: Options) -> crashbox::Guard {
    let _ = crashbox::take_memory_reports();
    crashbox::init(options.collector("memory").panic_hook(false)).expect("init")
}

/// Counter growth between two snapshots.
fn delta(before: &Stats, after: &Stats) -> Stats {
    let mut d = *after;
    d.captured -= before.captured;
    d.sent -= before.sent;
    d.aggregated -= before.aggregated;
    d.filtered -= before.filtered;
    d.dropped_sampled -= before.dropped_sampled;
    d.dropped_rate_limited -= before.dropped_rate_limited;
    d.dropped_queue_full -= before.dropped_queue_full;
    d
}

fn by_group(reports: &[Report]) -> std::collections::BTreeMap<String, Vec<&Report>> {
    let mut groups = std::collections::BTreeMap::<String, Vec<&Report>>::new();
    for r in reports {
        groups.entry(r.group.clone()).or_default().push(r);
    }
    groups
}

#[test]
fn repeats_are_counted_and_sent_as_one_report_that_carries_the_count() {
    let _turn = client_turn();
    let guard = memory(Options::new());
    let before = crashbox::stats();
    // Two threads and the main thread hammer one call site.
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..2_000 {
                    fetch_quotes();
                }
            });
        }
    });
    for _ in 0..1_000 {
        fetch_quotes();
    }
    assert!(crashbox::flush(Duration::from_secs(10)));
    let after = crashbox::stats();
    drop(guard);
    let reports = crashbox::take_memory_reports();
    let d = delta(&before, &after);
    assert_eq!(d.captured, 5_000);
    assert_eq!(after.in_flight(), 0, "{after:?}");
    // The threads' stacks differ (thread start vs. main), so up to two
    // groups: each sends its burst one by one, then one report with the
    // count of the rest.
    let burst = DEFAULT_AGGREGATION_BURST as usize;
    let groups = by_group(&reports);
    assert!(groups.len() <= 2, "{:?}", groups.keys());
    for (group, reports) in &groups {
        let counts: Vec<u64> = reports.iter().map(|r| r.count).collect();
        assert_eq!(counts.len(), burst + 1, "group {group}: {counts:?}");
        assert!(
            counts[..burst].iter().all(|&c| c == 1),
            "the burst of group {group} is sent one by one: {counts:?}"
        );
        assert!(counts[burst] > 1, "{counts:?}");
    }
    let carried: u64 = reports.iter().map(|r| r.count).sum();
    assert_eq!(carried, 5_000, "the counts add up to the captures");
    assert_eq!(d.sent, reports.len() as u64);
    assert_eq!(d.sent + d.aggregated, d.captured, "{d:?}");
    let ids: std::collections::BTreeSet<_> = reports.iter().map(|r| r.id).collect();
    assert_eq!(
        ids.len(),
        reports.len(),
        "the counting report has its own id"
    );
}

#[test]
fn a_burst_is_sent_one_by_one_and_only_the_rest_is_counted() {
    let _turn = client_turn();
    let guard = memory(Options::new());
    let before = crashbox::stats();
    for _ in 0..25 {
        fetch_quotes();
    }
    assert!(crashbox::flush(Duration::from_secs(10)));
    let after = crashbox::stats();
    drop(guard);
    let reports = crashbox::take_memory_reports();
    let counts: Vec<u64> = reports.iter().map(|r| r.count).collect();
    assert_eq!(counts, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 15]);
    assert!(reports.iter().all(|r| r.group == reports[0].group));
    let d = delta(&before, &after);
    assert_eq!(after.in_flight(), 0, "{after:?}");
    // The closing report stands for one of the 15; the other 14 are aggregated.
    assert_eq!((d.captured, d.sent, d.aggregated), (25, 11, 14), "{d:?}");
}

#[test]
fn errors_that_differ_only_in_numbers_fold_with_their_burst() {
    let _turn = client_turn();
    let guard = memory(Options::new());
    let before = crashbox::stats();
    for i in 0..30 {
        burst(i);
    }
    assert!(crashbox::flush(Duration::from_secs(10)));
    let after = crashbox::stats();
    drop(guard);
    let reports = crashbox::take_memory_reports();
    let seen: Vec<(&str, u64)> = reports
        .iter()
        .map(|r| (r.message.as_str(), r.count))
        .collect();
    let mut expected: Vec<(String, u64)> =
        (0..10).map(|i| (format!("burst error {i}"), 1)).collect();
    // The window's report is a copy of its first, carrying the count.
    expected.push(("burst error 0".to_owned(), 20));
    let expected: Vec<(&str, u64)> = expected.iter().map(|(m, c)| (m.as_str(), *c)).collect();
    assert_eq!(seen, expected);
    let d = delta(&before, &after);
    assert_eq!((d.captured, d.sent, d.aggregated), (30, 11, 19), "{d:?}");
}

#[test]
fn distinct_errors_from_one_function_are_never_folded_into_each_other() {
    let _turn = client_turn();
    let guard = memory(Options::new());
    let before = crashbox::stats();
    for _ in 0..12 {
        save_results();
    }
    assert!(crashbox::flush(Duration::from_secs(10)));
    let after = crashbox::stats();
    drop(guard);
    let reports = crashbox::take_memory_reports();
    for message in [
        "Permission denied (os error 13)",
        "No space left on device (os error 28)",
    ] {
        let counts: Vec<u64> = reports
            .iter()
            .filter(|r| r.message == message)
            .map(|r| r.count)
            .collect();
        assert_eq!(counts, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2], "{message}");
    }
    assert_eq!(reports.len(), 22);
    let d = delta(&before, &after);
    assert_eq!(after.in_flight(), 0, "{after:?}");
    assert_eq!((d.captured, d.sent, d.aggregated), (24, 22, 2), "{d:?}");
}

#[test]
fn two_panics_with_different_messages_are_two_reports() {
    let _turn = client_turn();
    let _ = crashbox::take_memory_reports();
    let guard = crashbox::init(Options::new().collector("memory").panic_hook(true)).expect("init");
    let before = crashbox::stats();
    run_job(0);
    run_job(1);
    assert!(crashbox::flush(Duration::from_secs(10)));
    let after = crashbox::stats();
    drop(guard);
    let reports = crashbox::take_memory_reports();
    let messages: Vec<&str> = reports.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(
        messages,
        ["job 0: cache is corrupt", "job 1: queue was closed"]
    );
    assert!(reports
        .iter()
        .all(|r| r.kind == crashbox::Kind::Panic && r.count == 1));
    let d = delta(&before, &after);
    assert_eq!((d.captured, d.sent, d.aggregated), (2, 2, 0), "{d:?}");
}

#[test]
fn fingerprints_split_by_type_and_function_but_not_by_call_site() {
    let _turn = client_turn();
    let guard = memory(Options::new().aggregation_window(Duration::ZERO));
    fetch_quotes();
    fetch_prices();
    retry_twice();
    crashbox::capture_message("disk at 91%", Level::Warning);
    crashbox::capture_message("disk at 92%", Level::Warning);
    assert!(crashbox::flush(Duration::from_secs(10)));
    drop(guard);
    let reports = crashbox::take_memory_reports();
    assert_eq!(reports.len(), 6);
    let group = |i: usize| reports[i].group.as_str();
    for r in &reports {
        assert_eq!(r.group.len(), 16, "16 hex digits: {}", r.group);
        assert!(r.group.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    assert_ne!(group(0), group(1), "other in-app function");
    assert_ne!(group(0), group(2), "other error type");
    assert_eq!(group(2), group(3), "two call sites in one function");
    assert_ne!(group(4), group(5), "messages group by their text");
}

#[test]
fn set_fingerprint_overrides_the_grouping() {
    let _turn = client_turn();
    let guard = memory(Options::new().aggregation_burst(1));
    for tenant in ["a", "b", "a", "a"] {
        crashbox::with_scope(
            |s| s.set_fingerprint(["{{ default }}", tenant]),
            fetch_quotes,
        );
    }
    crashbox::with_scope(|s| s.set_fingerprint(["checkout"]), fetch_prices);
    crashbox::with_scope(|s| s.set_fingerprint(["checkout"]), fetch_quotes);
    assert!(crashbox::flush(Duration::from_secs(10)));
    drop(guard);
    let reports = crashbox::take_memory_reports();
    let groups = by_group(&reports);
    // tenant a (first + 2 repeats), tenant b, and "checkout" for both functions.
    assert_eq!(groups.len(), 3, "{groups:#?}");
    let counts: Vec<Vec<u64>> = groups
        .values()
        .map(|rs| rs.iter().map(|r| r.count).collect())
        .collect();
    let mut counts = counts;
    counts.sort();
    assert_eq!(counts, vec![vec![1], vec![1, 1], vec![1, 2]]);
}

#[test]
fn a_window_closes_on_its_own_and_the_next_repeat_opens_another() {
    let _turn = client_turn();
    let window = Duration::from_millis(400);
    let guard = memory(Options::new().aggregation_window(window));
    for _ in 0..50 {
        fetch_quotes();
    }
    // No flush: the worker sends the count when the window ends.
    let start = Instant::now();
    let mut reports = Vec::new();
    let carried = |reports: &[Report]| reports.iter().map(|r| r.count).sum::<u64>();
    while carried(&reports) < 50 && start.elapsed() < Duration::from_secs(10) {
        reports.extend(crashbox::take_memory_reports());
        std::thread::sleep(Duration::from_millis(20));
    }
    let counts: Vec<u64> = reports.iter().map(|r| r.count).collect();
    let burst = DEFAULT_AGGREGATION_BURST as usize;
    let mut expected = vec![1; burst];
    expected.push(50 - burst as u64);
    assert_eq!(counts, expected, "{reports:?}");
    // A new window: the next repeat is sent at once.
    fetch_quotes();
    assert!(crashbox::flush(Duration::from_secs(10)));
    let next = crashbox::take_memory_reports();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].count, 1);
    assert_eq!(next[0].group, reports[0].group);
    drop(guard);
}

#[test]
fn the_rate_limit_drops_and_counts_what_is_over_it() {
    let _turn = client_turn();
    let guard = memory(
        Options::new()
            .aggregation_window(Duration::ZERO)
            .max_reports_per_minute(10),
    );
    let before = crashbox::stats();
    for i in 0..25 {
        crashbox::capture_message(format!("distinct problem #{i}"), Level::Error);
    }
    assert!(crashbox::flush(Duration::from_secs(10)));
    let d = delta(&before, &crashbox::stats());
    drop(guard);
    let reports = crashbox::take_memory_reports();
    assert_eq!(reports.len(), 10);
    assert_eq!(reports[0].message, "distinct problem #0");
    assert_eq!(d.sent, 10);
    assert_eq!(d.dropped_rate_limited, 15);
}

#[test]
fn the_sample_rate_keeps_a_share_and_counts_the_rest() {
    let _turn = client_turn();
    let one_by_one = || {
        Options::new()
            .aggregation_window(Duration::ZERO)
            .max_reports_per_minute(0)
            .queue_capacity(4096)
    };
    let guard = memory(one_by_one().sample_rate(0.0));
    let before = crashbox::stats();
    for _ in 0..100 {
        assert_eq!(crashbox::capture_error(&Timeout), None);
    }
    assert!(crashbox::flush(Duration::from_secs(10)));
    let d = delta(&before, &crashbox::stats());
    drop(guard);
    assert!(crashbox::take_memory_reports().is_empty());
    assert_eq!((d.captured, d.dropped_sampled), (100, 100));

    let guard = memory(one_by_one().sample_rate(0.5));
    let before = crashbox::stats();
    for _ in 0..2_000 {
        fetch_quotes();
    }
    assert!(crashbox::flush(Duration::from_secs(30)));
    let d = delta(&before, &crashbox::stats());
    drop(guard);
    let kept = crashbox::take_memory_reports().len() as u64;
    assert!((800..=1200).contains(&kept), "kept {kept} of 2000 at 0.5");
    assert_eq!(kept + d.dropped_sampled, 2_000);
}

#[test]
fn out_of_range_options_are_config_errors() {
    let _turn = client_turn();
    for rate in [f64::NAN, -0.1, 1.5] {
        match crashbox::init(Options::new().collector("memory").sample_rate(rate)) {
            Err(ConfigError::InvalidOption { option, reason }) => {
                assert_eq!(option, "sample_rate");
                assert!(!reason.is_empty());
            }
            other => panic!("sample_rate {rate}: {other:?}"),
        }
    }
    let err = crashbox::init(
        Options::new()
            .collector("memory")
            .aggregation_window(Duration::from_secs(2 * 86_400)),
    )
    .expect_err("two days");
    assert!(err.to_string().contains("aggregation_window"), "{err}");
    let err = crashbox::init(Options::new().collector("memory").scrub_keys(["--"]))
        .expect_err("a key with nothing to match");
    assert!(err.to_string().contains("scrub_keys"), "{err}");
}

// ---------------------------------------------------------------------------
// The fingerprint is the same in every run of the binary.

#[test]
fn fingerprints_are_stable_across_runs() {
    let first = run_child(&child!(child_fingerprint), &[]);
    let second = run_child(&child!(child_fingerprint), &[]);
    let (a, b) = (first.value("group"), second.value("group"));
    assert_eq!(a.len(), 16, "{}", first.dump());
    assert_eq!(a, b, "the same error at the same place, in two runs");
    assert_ne!(
        first.value("address"),
        "",
        "frames keep their addresses, which the fingerprint leaves out"
    );
}

/// Run by `fingerprints_are_stable_across_runs`.
#[test]
#[ignore = "child process of `fingerprints_are_stable_across_runs`"]
fn child_fingerprint() {
    assert_child();
    let (_, reports) = crashbox::testing::capture(fetch_quotes);
    report_value("group", &reports[0].group);
    report_value(
        "address",
        reports[0].frames.first().map(|f| &*f.address).unwrap_or(""),
    );
}

// ---------------------------------------------------------------------------
// Repeats are counted even when shutdown gives up, and survive the process.

/// Never returns from `send`: a collector that accepted and never answers.
struct Stuck;
impl Transport for Stuck {
    fn send(&mut self, _: &[Report]) -> Result<(), TransportError> {
        loop {
            std::thread::park();
        }
    }
}

#[test]
fn a_shutdown_that_gives_up_still_counts_every_repeat() {
    let out = run_child(&child!(child_stuck_shutdown), &[]);
    assert_eq!(out.value("in_flight"), "0", "{}", out.dump());
    assert_eq!(out.number("captured"), 21, "{}", out.dump());
    assert!(
        out.number("drop_ms") < 2_000,
        "shutdown waited for the stuck send\n{}",
        out.dump()
    );
}

/// Run by `a_shutdown_that_gives_up_still_counts_every_repeat`.
#[test]
#[ignore = "child process of `a_shutdown_that_gives_up_still_counts_every_repeat`"]
fn child_stuck_shutdown() {
    assert_child();
    let guard = crashbox::init(
        Options::new()
            .transport(Stuck)
            .spool(false)
            .panic_hook(false)
            .shutdown_timeout(Duration::from_millis(300)),
    )
    .expect("init");
    // Queued before the worker starts: it takes them in one burst, sends the
    // first, folds the repeats of the other call site, and gets stuck.
    fetch_quotes();
    for _ in 0..10 {
        retry_twice();
    }
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    drop(guard);
    report_value("drop_ms", start.elapsed().as_millis());
    let stats = crashbox::stats();
    report_value("captured", stats.captured);
    report_value("in_flight", stats.in_flight());
    println!("{stats:?}");
}

const SPOOL_ENV: &str = "CRASHBOX_TEST_STORM_SPOOL";

/// Refuses every delivery: reports stay in the spool.
struct Down;
impl Transport for Down {
    fn send(&mut self, _: &[Report]) -> Result<(), TransportError> {
        Err(TransportError::Retryable("collector down".into()))
    }
}

/// Keeps what it receives.
struct Keep(Arc<Mutex<Vec<Report>>>);
impl Transport for Keep {
    fn send(&mut self, reports: &[Report]) -> Result<(), TransportError> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(reports);
        Ok(())
    }
}

#[inline(never)]
fn panic_in_handler() {
    let _ = std::panic::catch_unwind(|| -> () { panic!("handler failed: slot 7 is gone") });
}

#[test]
fn a_repeated_panic_survives_the_process_dying_inside_its_window() {
    let spool = TempDir::new("storm-spool");
    let env = [(SPOOL_ENV, OsString::from(spool.path()))];
    let first = run_child(&child!(child_panic_twice_then_exit), &env);
    assert_eq!(first.value("exiting"), "true", "{}", first.dump());
    assert_eq!(first.value("files"), "2", "{}", first.dump());
    let second = run_child(&child!(child_replay_panics), &env);
    // The first panic (sent at once, refused) and one repeat held by its
    // window: both were on disk when the process died.
    assert_eq!(second.value("panics"), "2", "{}", second.dump());
    assert_eq!(second.value("replayed"), "2", "{}", second.dump());
}

/// Run by `a_repeated_panic_survives_the_process_dying_inside_its_window`.
#[test]
#[ignore = "child process of `a_repeated_panic_survives_the_process_dying_inside_its_window`"]
fn child_panic_twice_then_exit() {
    assert_child();
    std::panic::set_hook(Box::new(|_| {}));
    let _guard = crashbox::init(
        Options::new()
            .transport(Down)
            .spool_dir(std::env::var_os(SPOOL_ENV).expect("spool dir"))
            .max_attempts(1)
            .aggregation_burst(1),
    )
    .expect("init");
    for _ in 0..3 {
        panic_in_handler();
    }
    // Let the worker take them in: the hook wrote three spool files; the
    // worker keeps the first's (refused: it stays for the next run) and one
    // repeat's, and removes the other repeat's.
    let spool = std::path::PathBuf::from(std::env::var_os(SPOOL_ENV).expect("spool dir"));
    // A panic the hook wrote into a spare file is a report the worker has
    // not taken in yet: it counts until the worker names or removes it.
    let reports = || {
        std::fs::read_dir(&spool)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        name.ends_with(".report")
                            || (name.ends_with(".spare") && e.metadata().is_ok_and(|m| m.len() > 0))
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    // Twice in a row: a directory listing taken during a rename may miss
    // the file being renamed.
    let start = Instant::now();
    let mut settled = 0;
    while settled < 2 && start.elapsed() < Duration::from_secs(30) {
        if reports() <= 2 && crashbox::stats().spooled > 0 {
            settled += 1;
        } else {
            settled = 0;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    report_value("files", reports());
    report_value("exiting", true);
    // Dies without shutting down: the window never closes.
    std::process::exit(0);
}

/// Run by `a_repeated_panic_survives_the_process_dying_inside_its_window`.
#[test]
#[ignore = "child process of `a_repeated_panic_survives_the_process_dying_inside_its_window`"]
fn child_replay_panics() {
    assert_child();
    let kept = Arc::new(Mutex::new(Vec::new()));
    let guard = crashbox::init(
        Options::new()
            .transport(Keep(kept.clone()))
            .spool_dir(std::env::var_os(SPOOL_ENV).expect("spool dir"))
            .panic_hook(false),
    )
    .expect("init");
    assert!(crashbox::flush(Duration::from_secs(10)));
    drop(guard);
    let reports = kept.lock().unwrap_or_else(PoisonError::into_inner);
    let panics: u64 = reports
        .iter()
        .filter(|r| r.kind == crashbox::Kind::Panic)
        .map(|r| r.count)
        .sum();
    report_value("panics", panics);
    report_value("replayed", crashbox::stats().replayed);
}

#[test]
fn the_rate_limit_bounds_reports_including_the_ones_that_close_windows() {
    let _turn = client_turn();
    let guard = memory(Options::new().max_reports_per_minute(10));
    let before = crashbox::stats();
    for round in 0..2 {
        for i in 0..200 {
            crashbox::capture_message(format!("problem #{i}"), Level::Error);
        }
        let _ = round;
    }
    assert!(crashbox::flush(Duration::from_secs(10)));
    let after = crashbox::stats();
    drop(guard);
    let reports = crashbox::take_memory_reports();
    // 10 first reports, and at most one report closing each of their
    // windows: the second round's repeats of those 10 are over the limit,
    // and counted in the reports that close the windows.
    assert!(reports.len() <= 20, "{} reports", reports.len());
    assert!(reports.len() >= 10);
    assert_eq!(after.in_flight(), 0, "{after:?}");
    let d = delta(&before, &after);
    assert_eq!(d.captured, 400);
    assert_eq!(d.sent + d.aggregated + d.dropped_rate_limited, 400, "{d:?}");
    // The repeats of the 10 sent are part of their windows' bursts: over
    // the limit, they are counted, not dropped.
    assert!(d.dropped_rate_limited <= 380, "{d:?}");
    let carried: u64 = reports.iter().map(|r| r.count).sum();
    assert_eq!(carried, d.sent + d.aggregated, "{d:?}");
}

#[test]
fn flush_from_before_send_returns_false_at_once() {
    let _turn = client_turn();
    let waited = Arc::new(Mutex::new(Vec::new()));
    let seen = waited.clone();
    let guard = memory(Options::new().before_send(move |report| {
        let start = Instant::now();
        let flushed = crashbox::flush(Duration::from_secs(5));
        seen.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((flushed, start.elapsed()));
        Some(report)
    }));
    crashbox::capture_message("flush from inside", Level::Info);
    let start = Instant::now();
    assert!(crashbox::flush(Duration::from_secs(10)));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    drop(guard);
    let waited = waited.lock().unwrap_or_else(PoisonError::into_inner);
    assert_eq!(waited.len(), 1);
    assert!(!waited[0].0, "the worker cannot wait for itself");
    assert!(
        waited[0].1 < Duration::from_millis(100),
        "{:?}",
        waited[0].1
    );
}

#[test]
fn a_slow_before_send_does_not_keep_shutdown_from_spooling_what_is_queued() {
    let spool = TempDir::new("slow-hook-spool");
    let out = run_child(
        &child!(child_slow_before_send),
        &[(SPOOL_ENV, OsString::from(spool.path()))],
    );
    assert_eq!(out.value("in_flight"), "0", "{}", out.dump());
    // One report is in the hook when shutdown gives up; the other 49 are
    // in the spool: moved there if still queued, in the journal (one line
    // each) if already taken in.
    assert!(out.number("spooled") >= 49, "{}", out.dump());
    let mut kept = 0;
    for entry in std::fs::read_dir(spool.path())
        .expect("spool dir")
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".report") {
            kept += 1;
        } else if name.ends_with(".journal") {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            kept += text.lines().filter(|l| l.contains("\"captured\"")).count();
        }
    }
    assert!(kept >= 49, "{kept} reports kept\n{}", out.dump());
}

/// Run by `a_slow_before_send_does_not_keep_shutdown_from_spooling_what_is_queued`.
#[test]
#[ignore = "child process of `a_slow_before_send_does_not_keep_shutdown_from_spooling_what_is_queued`"]
fn child_slow_before_send() {
    assert_child();
    let guard = crashbox::init(
        util::one_by_one(Options::new())
            .transport(Down)
            .spool_dir(std::env::var_os(SPOOL_ENV).expect("spool dir"))
            .panic_hook(false)
            .shutdown_timeout(Duration::from_millis(300))
            .before_send(|report| {
                std::thread::sleep(Duration::from_secs(3));
                Some(report)
            }),
    )
    .expect("init");
    for i in 0..50 {
        crashbox::capture_message(format!("queued behind a slow hook #{i}"), Level::Error);
    }
    std::thread::sleep(Duration::from_millis(200));
    drop(guard);
    let stats = crashbox::stats();
    report_value("spooled", stats.spooled);
    report_value("in_flight", stats.in_flight());
    println!("{stats:?}");
}
