//! Replay of what earlier runs left: a spool full of orphans, junk and
//! files of another version keeps only the newest `spool_max_reports`,
//! orphans older than `spool_max_age` are discarded, and a second `init` in
//! the same process replays what the first one left.
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::{
    delivered, ids_of, now_ms, options, orphan_name, report_files, run_ok, spool_bytes, stats,
    template_report, write_orphans, DEAD_OWNER, MAX_REPORTS_ENV,
};
use crate::util::http_server::{refused_port, Server};
use crate::util::{
    assert_child, child, env_var, http_collector, print_stats, report_value, wait_for, TempDir,
};
use crashbox::Level;

const MANY: usize = 10_000;
const KEEP: usize = 50;

#[test]
fn replay_survives_corrupt_and_foreign_files_and_keeps_only_the_newest_max_reports() {
    let spool = TempDir::new("spool-junk");
    let dir = spool.path();
    let first_ms = now_ms() - 3_600_000;
    let valid = write_orphans(dir, 0x5b00_0005, MANY, first_ms);
    let template = template_report();
    let junk_id = |n: u32| format!("{:08x}{n:024x}", 0xbad0_0005u32);
    // Newer than every valid orphan, so retention keeps them and replay reads them.
    let junk_ms = first_ms + MANY as u64 + 1000;
    let named_junk: Vec<(String, Vec<u8>)> = vec![
        (
            orphan_name(junk_ms, &junk_id(1)),
            vec![0xff, 0xfe, 0x00, 0x13, 0x37],
        ),
        (orphan_name(junk_ms + 1, &junk_id(2)), {
            let whole = spool_bytes(&template, &junk_id(2), 1);
            whole[..whole.len() / 2].to_vec()
        }),
        (
            orphan_name(junk_ms + 2, &junk_id(3)),
            spool_bytes(&template, &junk_id(3), 99),
        ),
        (orphan_name(junk_ms + 3, &junk_id(4)), Vec::new()),
    ];
    for (name, bytes) in &named_junk {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    // A report-named directory: it cannot be read as a file.
    std::fs::create_dir(dir.join(orphan_name(junk_ms + 4, &junk_id(5)))).unwrap();
    let claimed_junk = named_junk.len() + 1;
    // Names that are not report names at all.
    std::fs::write(dir.join("garbage.report"), b"{}").unwrap();
    std::fs::write(
        dir.join(format!("12-not-an-id.{DEAD_OWNER}.report")),
        spool_bytes(&template, &junk_id(6), 1),
    )
    .unwrap();
    // A dead process's spare files: one filled with junk, one never used.
    std::fs::write(dir.join(format!("{DEAD_OWNER}-0.spare")), b"{\"format\":1,").unwrap();
    std::fs::write(dir.join(format!("{DEAD_OWNER}-1.spare")), b"").unwrap();
    let corrupt = claimed_junk + 2 + 1;

    let server = Server::start();
    let start = Instant::now();
    let out = run_ok(
        &child!(super::child_replay),
        &http_collector(server.port()),
        dir,
        &[(MAX_REPORTS_ENV, KEEP.to_string().into())],
    );
    let replay_time = start.elapsed();
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let stats = stats(&out);
    let arrived = ids_of(&delivered(&server));
    assert!(arrived.len() <= KEEP, "{} delivered", arrived.len());
    // The junk is set aside before retention counts, so it takes no place
    // of a valid orphan: those are the newest KEEP.
    let _ = claimed_junk;
    assert_eq!(arrived, valid[MANY - KEEP..], "newest, oldest first");
    assert_eq!(stats["replayed"], arrived.len() as u64, "{stats:?}");
    assert_eq!(
        stats["spool_discarded"] + arrived.len() as u64,
        MANY as u64,
        "{stats:?}"
    );
    assert_eq!(stats["spool_corrupt"], corrupt as u64, "{stats:?}");
    let set_aside = std::fs::read_dir(dir.join("corrupt")).unwrap().count();
    assert_eq!(set_aside, corrupt, "every bad file is in corrupt/");
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(DEAD_OWNER) || n.ends_with(".report"))
        .collect();
    assert!(left.is_empty(), "left in the spool: {left:?}");
    assert!(
        replay_time < Duration::from_secs(20),
        "replay took {replay_time:?}"
    );
    let init_ms = out.number("init_ms");
    assert!(
        init_ms < 1000,
        "init waited {init_ms} ms: replay is not in the background"
    );
}

#[test]
fn orphans_older_than_spool_max_age_are_discarded_not_replayed() {
    let spool = TempDir::new("spool-age");
    let day_ms = 86_400_000;
    let stale = write_orphans(spool.path(), 0x5b00_0a6e, 10, now_ms() - 31 * day_ms);
    let fresh = write_orphans(spool.path(), 0x5b01_0a6e, 10, now_ms() - 60_000);
    let server = Server::start();
    let out = run_ok(
        &child!(super::child_replay),
        &http_collector(server.port()),
        spool.path(),
        &[],
    );
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let stats = stats(&out);
    assert_eq!(stats["spool_discarded"], stale.len() as u64, "{stats:?}");
    assert_eq!(stats["replayed"], fresh.len() as u64, "{stats:?}");
    assert_eq!(
        ids_of(&delivered(&server)),
        fresh,
        "only the fresh ones, oldest first"
    );
    assert!(report_files(spool.path()).is_empty());
}

/// The collector for the second `init` of `child_init_twice`.
const SECOND_COLLECTOR_ENV: &str = "CRASHBOX_TEST_SECOND_COLLECTOR";

#[test]
fn a_second_init_in_the_same_process_replays_what_the_first_left_in_the_spool() {
    let server = Server::start();
    let spool = TempDir::new("spool-reinit");
    let out = run_ok(
        &child!(child_init_twice),
        &http_collector(refused_port()),
        spool.path(),
        &[(SECOND_COLLECTOR_ENV, http_collector(server.port()).into())],
    );
    let captured: BTreeSet<String> = out.values("id").into_iter().collect();
    assert_eq!(captured.len(), 3);
    let arrived: BTreeSet<String> = ids_of(&delivered(&server)).into_iter().collect();
    assert_eq!(
        arrived,
        captured,
        "the second init did not deliver the first one's leftovers\n{}",
        out.dump()
    );
}

/// Run by `a_second_init_in_the_same_process_replays_what_the_first_left_in_the_spool`.
#[test]
#[ignore = "child process of `a_second_init_in_the_same_process_replays_what_the_first_left_in_the_spool`"]
fn child_init_twice() {
    assert_child();
    let guard = crashbox::init(options().max_attempts(1)).expect("first init");
    for i in 0..3 {
        let id = crashbox::capture_message(format!("left by the first client #{i}"), Level::Error)
            .expect("queued");
        report_value("id", id);
    }
    wait_for(Duration::from_secs(20), "every report spooled", || {
        crashbox::stats().spooled == 3
    });
    drop(guard);
    let guard =
        crashbox::init(options().collector(env_var(SECOND_COLLECTOR_ENV))).expect("second init");
    report_value("flushed", crashbox::flush(Duration::from_secs(20)));
    print_stats("stats");
    drop(guard);
}
