//! Reports bound for a collector that is down or never answers: they wait
//! in the spool, shutdown gives up on the hanging send at its timeout, and
//! the same run or the next delivers every one, once; a report that cannot
//! be spooled is still delivered.
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{
    assert_files_private, assert_spool_file, child_env, delivered, files_ending, id_in_name,
    ids_of, options, report_files, run_ok, run_while_stuck, spooled_ids, stats, wait_for_spooled,
    wait_until_stuck, MAX_REPORTS_ENV, WORK_ENV,
};
use crate::util::http_server::{refused_port, Behavior, Server};
use crate::util::{
    assert_child, child, env_var, http_collector, print_stats, report_value, run_child, wait_for,
    TempDir,
};
use crashbox::Level;

const THOUSAND: usize = 1000;

#[test]
fn a_thousand_reports_captured_while_the_collector_is_down_all_arrive_once_it_is_up() {
    let server = Server::with_behavior(Behavior::status(503));
    let spool = TempDir::new("spool-thousand");
    let work = TempDir::new("work-thousand");
    let envs = {
        let mut envs = child_env(&http_collector(server.port()), spool.path());
        envs.push((WORK_ENV, work.path().into()));
        envs
    };
    let child = std::thread::spawn(move || run_child(&child!(child_capture_a_thousand), &envs));
    wait_for(Duration::from_secs(60), "the child's captures", || {
        work.path().join("captured").exists()
    });
    // The worker kept trying (and failing) while everything was captured.
    server.wait_for_requests(3, Duration::from_secs(10));
    assert!(server.requests().iter().all(|r| r.answered() == Some(503)));
    server.set_behavior(Behavior::ok());
    let out = child.join().unwrap();
    out.assert_success();

    let captured: Vec<String> = std::fs::read_to_string(work.path().join("ids"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let captured_set: BTreeSet<&String> = captured.iter().collect();
    assert_eq!(captured.len(), THOUSAND);
    assert_eq!(captured_set.len(), THOUSAND, "capture ids are distinct");
    let reports = delivered(&server);
    // No report arrived under two ids: one id per message.
    let mut ids_by_message: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in &reports {
        ids_by_message
            .entry(r["message"].as_str().unwrap())
            .or_default()
            .insert(r["id"].as_str().unwrap());
    }
    assert_eq!(ids_by_message.len(), THOUSAND);
    assert!(ids_by_message.values().all(|ids| ids.len() == 1));
    let arrived = ids_of(&reports);
    let arrived_set: BTreeSet<&String> = arrived.iter().collect();
    assert_eq!(
        arrived_set,
        captured_set,
        "the collector got exactly the captured ids ({} reports in {} acknowledged ids)",
        arrived_set.len(),
        arrived.len()
    );
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let stats = stats(&out);
    assert_eq!(stats["sent"], THOUSAND as u64, "{stats:?}");
    assert_eq!(stats["spool_write_errors"], 0, "{stats:?}");
    assert!(stats["retries"] >= 2, "{stats:?}");
    // Each was in the spool until delivered, and removed then.
    assert_eq!(out.value("report_files_after_flush"), "0", "{}", out.dump());
    assert!(report_files(spool.path()).is_empty());
}

/// Run by `a_thousand_reports_captured_while_the_collector_is_down_all_arrive_once_it_is_up`.
#[test]
#[ignore = "child process of `a_thousand_reports_captured_while_the_collector_is_down_all_arrive_once_it_is_up`"]
fn child_capture_a_thousand() {
    assert_child();
    // Retry for as long as the parent keeps the collector down.
    let guard = crashbox::init(options().max_attempts(100_000)).expect("init");
    let ids: Vec<String> = (0..THOUSAND)
        .map(|i| {
            crashbox::capture_message(format!("captured while down #{i}"), Level::Error)
                .expect("queued")
                .to_hex()
        })
        .collect();
    let work = PathBuf::from(env_var(WORK_ENV));
    std::fs::write(work.join("ids"), ids.join("\n")).unwrap();
    std::fs::write(work.join("captured"), b"").unwrap();
    report_value("flushed", crashbox::flush(Duration::from_secs(60)));
    report_value(
        "report_files_after_flush",
        report_files(&crashbox::spool_dir().unwrap()).len(),
    );
    print_stats("stats");
    drop(guard);
}

#[test]
fn reports_whose_retries_ran_out_stay_spooled_and_the_next_run_delivers_them_oldest_first() {
    let spool = TempDir::new("spool-exhausted");
    let work = TempDir::new("work-exhausted");
    let first = run_ok(
        &child!(child_capture_a_thousand_while_refused),
        &http_collector(refused_port()),
        spool.path(),
        &[(WORK_ENV, work.path().into())],
    );
    let stats1 = stats(&first);
    assert_eq!(stats1["spooled"], THOUSAND as u64, "{stats1:?}");
    assert_eq!(stats1["sent"], 0, "{stats1:?}");
    let dropped: u64 = stats1
        .iter()
        .filter(|(k, _)| k.starts_with("dropped"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(dropped, 0, "{stats1:?}");
    let captured: BTreeSet<String> = std::fs::read_to_string(work.path().join("ids"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(captured.len(), THOUSAND);
    let files = report_files(spool.path());
    assert_eq!(files.len(), THOUSAND, "every undelivered report is a file");
    let in_names: BTreeSet<String> = files.iter().map(|p| id_in_name(p)).collect();
    assert_eq!(in_names, captured);
    assert_files_private(spool.path());
    assert_spool_file(&files[0], &first.value("pid"));

    let server = Server::start();
    let second = run_ok(
        &child!(super::child_replay),
        &http_collector(server.port()),
        spool.path(),
        &[(MAX_REPORTS_ENV, THOUSAND.to_string().into())],
    );
    assert_eq!(second.value("flushed"), "true", "{}", second.dump());
    let stats2 = stats(&second);
    assert_eq!(stats2["replayed"], THOUSAND as u64, "{stats2:?}");
    assert_eq!(stats2["sent"], THOUSAND as u64, "{stats2:?}");
    assert_eq!(stats2["spool_discarded"], 0, "{stats2:?}");
    let reports = delivered(&server);
    let arrived = ids_of(&reports);
    assert_eq!(arrived.len(), THOUSAND, "each arrived once");
    assert_eq!(arrived.iter().cloned().collect::<BTreeSet<_>>(), captured);
    let times: Vec<&str> = reports
        .iter()
        .map(|r| r["timestamp"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "replayed oldest first"
    );
    assert!(report_files(spool.path()).is_empty());
}

/// Run by `reports_whose_retries_ran_out_stay_spooled_and_the_next_run_delivers_them_oldest_first`.
#[test]
#[ignore = "child process of `reports_whose_retries_ran_out_stay_spooled_and_the_next_run_delivers_them_oldest_first`"]
fn child_capture_a_thousand_while_refused() {
    assert_child();
    // A limit that holds them all, however retention may treat a live spool.
    let guard =
        crashbox::init(options().max_attempts(2).spool_max_reports(THOUSAND)).expect("init");
    report_value("pid", std::process::id());
    let ids: Vec<String> = (0..THOUSAND)
        .map(|i| {
            crashbox::capture_message(format!("refused #{i}"), Level::Error)
                .expect("queued")
                .to_hex()
        })
        .collect();
    std::fs::write(PathBuf::from(env_var(WORK_ENV)).join("ids"), ids.join("\n")).unwrap();
    // Every batch is tried twice, then left in the spool.
    wait_for(Duration::from_secs(60), "every report spooled", || {
        crashbox::stats().spooled == THOUSAND as u64
    });
    print_stats("stats");
    drop(guard);
}

const SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(500);
const HUNG: usize = 5;

#[test]
fn a_hanging_collector_delays_shutdown_only_to_its_timeout_and_the_next_run_delivers_what_was_left()
{
    let hanging = Server::with_behavior(Behavior::Hang);
    let spool = TempDir::new("spool-hang");
    let work = TempDir::new("work-hang");
    let out = run_while_stuck(
        &child!(child_capture_then_shut_down_while_the_collector_hangs),
        &hanging,
        spool.path(),
        work.path(),
    );
    let drop_ms = out.number("drop_ms");
    assert!(
        drop_ms <= (SHUTDOWN_TIMEOUT + Duration::from_secs(1)).as_millis() as u64,
        "dropping the guard took {drop_ms} ms"
    );
    assert!(
        hanging.request_count() >= 1,
        "the worker reached the collector"
    );
    let captured: BTreeSet<String> = out.values("id").into_iter().collect();
    assert_eq!(captured.len(), HUNG);
    // Still on their way at exit: kept by their captures' journal lines.
    let in_names = spooled_ids(spool.path());
    assert_eq!(
        in_names, captured,
        "the undelivered reports are in the spool"
    );
    assert_files_private(spool.path());
    let stats1 = stats(&out);
    assert_eq!(stats1["spooled"], HUNG as u64, "{stats1:?}");
    assert_eq!(stats1["dropped_shutdown"], 0, "{stats1:?}");
    // The spare files kept ready for a panic: `<pid>_<token>-<n>.spare`, empty.
    let journals = files_ending(spool.path(), ".journal");
    let owner = journals[0]
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let spares = files_ending(spool.path(), ".spare");
    assert!(!spares.is_empty(), "no spare files");
    for spare in &spares {
        let name = spare.file_name().unwrap().to_string_lossy().into_owned();
        let n = name
            .strip_prefix(&format!("{owner}-"))
            .and_then(|rest| rest.strip_suffix(".spare"))
            .unwrap_or_else(|| panic!("{name} is not {owner}-<n>.spare"));
        assert!(n.parse::<u64>().is_ok(), "{name}");
        assert_eq!(std::fs::metadata(spare).unwrap().len(), 0, "{name}");
    }
    drop(hanging);

    // A run whose collector is down replays them, fails, and leaves them again.
    let down = run_ok(
        &child!(super::child_replay),
        &http_collector(refused_port()),
        spool.path(),
        &[],
    );
    let stats2 = stats(&down);
    assert_eq!(stats2["replayed"], HUNG as u64, "{stats2:?}");
    assert_eq!(stats2["spooled"], HUNG as u64, "{stats2:?}");
    let in_names = spooled_ids(spool.path());
    assert_eq!(in_names, captured, "still in the spool, under the same ids");

    let server = Server::start();
    let next = run_ok(
        &child!(super::child_replay),
        &http_collector(server.port()),
        spool.path(),
        &[],
    );
    assert_eq!(next.value("flushed"), "true", "{}", next.dump());
    let arrived = ids_of(&delivered(&server));
    assert_eq!(arrived.len(), HUNG, "{arrived:?}");
    assert_eq!(arrived.into_iter().collect::<BTreeSet<_>>(), captured);
    assert!(report_files(spool.path()).is_empty());
    let old_spares: Vec<PathBuf> = files_ending(spool.path(), ".spare")
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(&owner))
        .collect();
    assert!(
        old_spares.is_empty(),
        "a dead process's empty spares stay: {old_spares:?}"
    );
}

/// Run by `a_hanging_collector_delays_shutdown_only_to_its_timeout_and_the_next_run_delivers_what_was_left`.
#[test]
#[ignore = "child process of `a_hanging_collector_delays_shutdown_only_to_its_timeout_and_the_next_run_delivers_what_was_left`"]
fn child_capture_then_shut_down_while_the_collector_hangs() {
    assert_child();
    let guard = crashbox::init(options().shutdown_timeout(SHUTDOWN_TIMEOUT)).expect("init");
    for i in 0..HUNG {
        let id = crashbox::capture_message(format!("hung #{i}"), Level::Error).expect("queued");
        report_value("id", id);
    }
    // The worker writes what it takes off the queue to disk before it sends.
    wait_for_spooled(HUNG, "the reports in the spool");
    wait_until_stuck();
    let start = Instant::now();
    drop(guard);
    report_value("drop_ms", start.elapsed().as_millis());
    print_stats("stats");
}

#[test]
fn reports_captured_while_the_worker_is_stuck_in_a_send_are_spooled_too() {
    let hanging = Server::with_behavior(Behavior::Hang);
    let spool = TempDir::new("spool-stuck");
    let work = TempDir::new("work-stuck");
    let out = run_while_stuck(
        &child!(child_capture_while_the_worker_is_stuck),
        &hanging,
        spool.path(),
        work.path(),
    );
    assert_eq!(
        hanging.request_count(),
        1,
        "the worker is stuck in one request"
    );
    let captured: BTreeSet<String> = out.values("id").into_iter().collect();
    assert_eq!(captured.len(), HUNG);
    let in_names = spooled_ids(spool.path());
    let stats = stats(&out);
    assert_eq!(
        in_names, captured,
        "reports captured during the hanging send are not in the spool; stats: {stats:?}"
    );
}

/// Run by `reports_captured_while_the_worker_is_stuck_in_a_send_are_spooled_too`.
#[test]
#[ignore = "child process of `reports_captured_while_the_worker_is_stuck_in_a_send_are_spooled_too`"]
fn child_capture_while_the_worker_is_stuck() {
    assert_child();
    let guard = crashbox::init(options().shutdown_timeout(SHUTDOWN_TIMEOUT)).expect("init");
    let first = crashbox::capture_message("before the hang", Level::Error).expect("queued");
    report_value("id", first);
    wait_for_spooled(1, "the first report in the spool");
    std::thread::sleep(Duration::from_millis(300)); // the worker now waits for an answer
    for i in 1..HUNG {
        let id = crashbox::capture_message(format!("during the hang #{i}"), Level::Error)
            .expect("queued");
        report_value("id", id);
    }
    std::thread::sleep(Duration::from_millis(300));
    drop(guard);
    print_stats("stats");
}

#[test]
fn a_report_that_cannot_be_spooled_is_still_delivered_and_counted() {
    let server = Server::start();
    let root = TempDir::new("spool-vanishing");
    let spool = root.path().join("spool");
    let out = run_ok(
        &child!(child_spool_dir_removed),
        &http_collector(server.port()),
        &spool,
        &[],
    );
    let stats = stats(&out);
    // Written to the journal as captured, then as a finished report.
    assert!(stats["spool_write_errors"] >= 1, "{stats:?}");
    assert_eq!(stats["sent"], 1, "{stats:?}");
    assert_eq!(ids_of(&delivered(&server)), vec![out.value("id")]);
}

/// Run by `a_report_that_cannot_be_spooled_is_still_delivered_and_counted`.
#[test]
#[ignore = "child process of `a_report_that_cannot_be_spooled_is_still_delivered_and_counted`"]
fn child_spool_dir_removed() {
    assert_child();
    let guard = crashbox::init(options()).expect("init");
    std::fs::remove_dir_all(crashbox::spool_dir().unwrap()).unwrap();
    let id = crashbox::capture_message("nowhere to spool", Level::Error).expect("queued");
    report_value("id", id);
    assert!(crashbox::flush(Duration::from_secs(20)));
    print_stats("stats");
    drop(guard);
}
