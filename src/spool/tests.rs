//! Unit tests of the spool.
use super::retention::*;
use super::run_state::*;
use super::*;

#[test]
fn the_directory_hash_is_stable_across_versions() {
    // A new version must find the spool an older one left behind.
    assert_eq!(short_hash(b""), "811c9dc5");
    assert_eq!(short_hash(b"a"), "e40c292c");
    assert_eq!(short_hash(b"/usr/local/bin/my-app"), "f18a0993");
}

fn temp_spool(label: &str) -> Spool {
    let dir = std::env::temp_dir().join(format!(
        "crashbox-spool-unit-{label}-{}-{}",
        std::process::id(),
        crate::rand::random_u128() as u32
    ));
    Spool::open(dir, 100, Duration::from_secs(30 * 86_400)).unwrap()
}

#[test]
fn files_are_private_and_named_for_their_owner() {
    let spool = temp_spool("private");
    let r = Report::sample("x");
    let path = spool.write(r.id, 5, EntryRef::Report(&r)).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        parse_name(&name).map(|(ms, o)| (ms, o.to_owned())),
        Some((5, spool.owner.clone()))
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // Its owner (this process) is alive: nobody may claim it.
    assert!(spool.claim_orphans().is_empty());
    fs::remove_dir_all(spool.dir()).unwrap();
}

#[test]
fn orphans_are_claimed_oldest_first_and_corrupt_files_set_aside() {
    let spool = temp_spool("orphans");
    let dead = "4194999_1";
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    for (i, message) in ["second", "first"].iter().enumerate() {
        let r = Report::sample(message);
        let bytes = serde_json::to_vec(&SpoolFileRef {
            format: FORMAT,
            entry: EntryRef::Report(&r),
        })
        .unwrap();
        let ms = now_ms - 10 + (1 - i as u64);
        fs::write(
            spool
                .dir()
                .join(format!("{ms:016}-{}.{dead}{SUFFIX}", r.id)),
            bytes,
        )
        .unwrap();
    }
    let junk = spool.dir().join(format!(
        "{:016}-{}.{dead}{SUFFIX}",
        now_ms,
        ReportId::random()
    ));
    fs::write(&junk, b"{not json").unwrap();
    let future = spool.dir().join(format!(
        "{:016}-{}.{dead}{SUFFIX}",
        now_ms,
        ReportId::random()
    ));
    fs::write(&future, br#"{"format": 99, "entry": {}}"#).unwrap();
    let corrupt_before = crate::stats().spool_corrupt;
    let claimed = spool.claim_orphans();
    let messages: Vec<String> = claimed
        .iter()
        .map(|(_, e)| match e {
            Entry::Report(r) => r.message.clone(),
            Entry::Captured(c) => c.message.clone(),
        })
        .collect();
    assert_eq!(messages, vec!["first", "second"]);
    assert!(claimed
        .iter()
        .all(|(p, _)| p.to_string_lossy().contains(&spool.owner)));
    assert!(crate::stats().spool_corrupt >= corrupt_before + 2);
    assert_eq!(
        fs::read_dir(spool.dir().join("corrupt")).unwrap().count(),
        2
    );
    fs::remove_dir_all(spool.dir()).unwrap();
}

#[test]
fn a_live_owners_files_neither_count_against_retention_nor_get_claimed() {
    let dir = temp_spool("retention").dir().to_path_buf();
    let live = Spool::open(dir.clone(), 3, Duration::from_secs(86_400)).unwrap();
    let claimer = Spool::open(dir.clone(), 3, Duration::from_secs(86_400)).unwrap();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    // Five different reports: nothing to fold.
    for (i, word) in ["alpha", "bravo", "charlie", "delta", "echo"]
        .iter()
        .enumerate()
    {
        let r = Report::sample(&format!("live {word}"));
        live.write(r.id, now_ms + i as u64, EntryRef::Report(&r))
            .unwrap();
    }
    for i in 0..2 {
        let r = Report::sample("orphan");
        let bytes = serde_json::to_vec(&SpoolFileRef {
            format: FORMAT,
            entry: EntryRef::Report(&r),
        })
        .unwrap();
        let name = format!("{:016}-{}.4194999_dead{SUFFIX}", now_ms + i, r.id);
        fs::write(dir.join(name), bytes).unwrap();
    }
    let claimed = claimer.claim_orphans();
    assert_eq!(
        claimed.len(),
        2,
        "the live owner's 5 files leave room for both orphans"
    );
    assert!(claimed
        .iter()
        .all(|(_, e)| matches!(e, Entry::Report(r) if r.message == "orphan")));
    assert!(
        claimed.iter().all(|(_, e)| e.carried() == 0),
        "nothing was deleted"
    );
    drop(live);
    // Once its owner is gone (lock released), the files are orphans too.
    let claimed = claimer.claim_orphans();
    assert_eq!(claimed.len(), 3, "retention keeps the newest 3 of 5");
    let messages: Vec<&str> = claimed
        .iter()
        .map(|(_, e)| match e {
            Entry::Report(r) => r.message.as_str(),
            Entry::Captured(c) => c.message.as_str(),
        })
        .collect();
    assert_eq!(messages, ["live charlie", "live delta", "live echo"]);
    assert_eq!(claimed[0].1.carried(), 2, "the first carries the 2 deleted");
    assert_eq!(claimer.take_discarded(), 0, "none left unattached");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_oversized_capture_is_written_smaller_and_an_oversized_file_is_not_read() {
    let spool = temp_spool("oversized");
    let crumb = serde_json::json!({"timestamp": "2026-01-01T00:00:00.000Z",
        "level": "info", "category": null, "message": "b".repeat(1000), "data": {}});
    let captured: Captured = serde_json::from_value(serde_json::json!({
        "id": ReportId::random(), "timestamp_ms": 1, "level": "error", "kind": "error",
        "message": "m".repeat(20_000), "exceptions": [], "addresses": [], "location": null,
        "thread": {"name": null, "id": 1}, "tags": {}, "extra": {"small": 1},
        "user": null, "level_override": null, "fingerprint": null,
        "breadcrumbs": vec![crumb; 3000], "truncated": [], "scrubbed": true,
    }))
    .unwrap();
    let path = spool
        .write(captured.id, 1, EntryRef::Captured(&captured))
        .unwrap();
    assert!(fs::metadata(&path).unwrap().len() <= MAX_FILE_BYTES);
    let Some(Entry::Captured(back)) = spool.read_entry(&path) else {
        panic!("not read back");
    };
    assert!(back.breadcrumbs.is_empty());
    assert_eq!(back.extra.len(), 1, "extra fits once breadcrumbs are gone");
    assert!(back.message.len() <= crate::limits::MAX_MESSAGE_BYTES + 3);
    assert_eq!(back.truncated, ["breadcrumbs", "message"]);
    assert!(!back.scrubbed, "scrubbed again whatever the file says");
    // A file over the cap is refused unread.
    fs::write(&path, vec![b' '; MAX_FILE_BYTES as usize + 1]).unwrap();
    assert!(spool.read_entry(&path).is_none());
    fs::remove_dir_all(spool.dir()).unwrap();
}

/// Writes `entry` as an orphan of a process that is gone, captured at `ms`.
fn write_orphan(dir: &Path, ms: u64, entry: EntryRef<'_>) -> PathBuf {
    let id = match entry {
        EntryRef::Report(r) => r.id,
        EntryRef::Captured(c) => c.id,
    };
    let path = dir.join(format!("{ms:016}-{id}.4194999_gone{SUFFIX}"));
    let bytes = serde_json::to_vec(&SpoolFileRef {
        format: FORMAT,
        entry,
    })
    .unwrap();
    fs::write(&path, bytes).unwrap();
    path
}

/// A panic's raw capture as the panic hook spools it: `base` is where
/// the binary was loaded in the run that captured it (it differs from
/// run to run), `offsets` where the frames are in the binary.
fn panic_capture(message: &str, ms: u64, base: usize, offsets: &[u64]) -> Captured {
    let addresses: Vec<usize> = offsets.iter().map(|&o| base + o as usize).collect();
    let located: Vec<Option<(u32, u64)>> = offsets.iter().map(|&o| Some((0, o))).collect();
    serde_json::from_value(serde_json::json!({
        "id": ReportId::random(), "timestamp_ms": ms, "level": "fatal", "kind": "panic",
        "message": message, "exceptions": [], "addresses": addresses,
        "located": located,
        "modules": [{"path": "/usr/bin/app", "identity": "2049:77:4096:1700000000"}],
        "location": {"file": "src/main.rs", "line": 7, "column": 5},
        "thread": {"name": "main", "id": 1}, "tags": {}, "extra": {},
        "user": null, "level_override": null, "fingerprint": null,
        "breadcrumbs": [], "truncated": [], "scrubbed": true,
    }))
    .unwrap()
}

/// The time now, in ms since the Unix epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The message of a report or capture.
fn message_of(entry: &Entry) -> &str {
    match entry {
        Entry::Report(r) => &r.message,
        Entry::Captured(c) => &c.message,
    }
}

#[test]
fn identical_files_group_by_identity_oldest_first() {
    assert_eq!(
        groups_of(&[7, 8, 7, 9, 7, 8]),
        vec![vec![0, 2, 4], vec![1, 5]]
    );
    assert!(groups_of(&[1, 2, 3]).is_empty());
    assert!(groups_of::<u64>(&[]).is_empty());
}

#[test]
fn deletion_takes_the_oldest_and_spares_first_and_latest_while_it_can() {
    let protected = [true, false, true, false, false];
    let live = [0, 1, 2, 3, 4];
    assert_eq!(doomed(&live, &protected, 5), Vec::<usize>::new());
    assert_eq!(doomed(&live, &protected, 3), vec![1, 3]);
    // Nothing unprotected is left: the protected go, oldest first.
    assert_eq!(doomed(&live, &protected, 1), vec![0, 1, 3, 4]);
    assert_eq!(doomed(&[1, 3, 4], &protected, 1), vec![1, 3]);
    assert_eq!(doomed(&live, &protected, 0), live.to_vec());
}

#[test]
fn a_capture_s_identity_survives_a_new_load_address_but_not_a_new_stack() {
    let identity = |c: Captured| Entry::Captured(Box::new(c)).identity();
    let one = panic_capture("loop 1", 1, 0x5555_0000_0000, &[0x1200, 0x3400]);
    let moved = panic_capture("loop 2", 2, 0x7f00_1000_0000, &[0x1200, 0x3400]);
    assert_eq!(identity(one.clone()), identity(moved));
    let other_site = panic_capture("loop 1", 1, 0x5555_0000_0000, &[0x1208, 0x3400]);
    assert_ne!(identity(one.clone()), identity(other_site));
    let other_text = panic_capture("other failure", 1, 0x5555_0000_0000, &[0x1200, 0x3400]);
    assert_ne!(identity(one.clone()), identity(other_text));
    let mut rebuilt = one.clone();
    rebuilt.modules[0].identity = "2049:77:4096:1700000999".to_owned();
    assert_ne!(identity(one.clone()), identity(rebuilt));
    let mut fingerprinted = one.clone();
    fingerprinted.fingerprint = Some(vec!["custom".to_owned()]);
    assert_ne!(identity(one.clone()), identity(fingerprinted));
    // A report folds by its fold key, apart from any capture.
    let report = |m: &str| Entry::Report(Box::new(Report::sample(m))).identity();
    assert_eq!(report("timeout after 17 ms"), report("timeout after 18 ms"));
    assert_ne!(report("timeout"), report("refused"));
}

#[test]
fn a_crash_loop_is_folded_into_its_first_panic_keeping_the_latest() {
    let dir = temp_spool("fold").dir().to_path_buf();
    let spool = Spool::open(dir, 4, Duration::from_secs(86_400)).unwrap();
    let start = now_ms() - 60_000;
    let folded_before = crate::stats().spool_folded;
    // Two unrelated reports, the oldest files of all.
    for (i, word) in ["alpha", "bravo"].iter().enumerate() {
        let r = Report::sample(&format!("unrelated {word}"));
        write_orphan(spool.dir(), start + i as u64, EntryRef::Report(&r));
    }
    // A crash loop: one panic per run, each run loaded elsewhere; one of
    // them already stands for 5 (folded by an earlier pass) and carries 3
    // deleted reports.
    let mut ids = Vec::new();
    for run in 0..8u64 {
        let mut c = panic_capture(
            &format!("crash loop {run}"),
            start + 10 + run,
            0x5555_0000_0000 + run as usize * 0x10_0000,
            &[0x1200, 0x3400],
        );
        if run == 3 {
            c.count = 5;
            c.extra.insert(DISCARDED_KEY.to_owned(), Value::from(3u64));
        }
        ids.push(c.id);
        write_orphan(spool.dir(), c.timestamp_ms, EntryRef::Captured(&c));
    }
    let claimed = spool.claim_orphans();
    // 8 panics fold into 2 files; of 4 files the limit keeps 4.
    assert_eq!(
        claimed.len(),
        4,
        "{:?}",
        claimed
            .iter()
            .map(|(_, e)| message_of(e))
            .collect::<Vec<_>>()
    );
    assert_eq!(message_of(&claimed[0].1), "unrelated alpha");
    assert_eq!(message_of(&claimed[1].1), "unrelated bravo");
    let Entry::Captured(first) = &claimed[2].1 else {
        panic!("the first panic is a capture still");
    };
    assert_eq!(first.id, ids[0], "the first panic survives");
    assert_eq!(
        first.count,
        1 + 6 + 4,
        "itself, the 6 between, 4 more for the folded one"
    );
    assert_eq!(claimed[2].1.carried(), 3, "what the folded one carried");
    let Entry::Captured(latest) = &claimed[3].1 else {
        panic!("the latest panic is a capture still");
    };
    assert_eq!(
        (latest.id, latest.count),
        (ids[7], 1),
        "the latest survives"
    );
    // The first's file says so too, under the same name, as a capture.
    let Some(Entry::Captured(on_disk)) = spool.read_entry(&claimed[2].0) else {
        panic!("the first's file holds a capture");
    };
    assert_eq!(on_disk.count, 11);
    assert!(claimed[2].0.to_string_lossy().contains(&ids[0].to_string()));
    assert_eq!(report_files(spool.dir()).len(), 4, "the 6 between are gone");
    assert!(crate::stats().spool_folded >= folded_before + 6);
    assert_eq!(claimed[0].1.carried(), 0, "nothing was deleted");
    assert_eq!(spool.take_discarded(), 0);
    fs::remove_dir_all(spool.dir()).unwrap();
}

#[test]
fn past_the_limit_the_oldest_go_but_a_crash_loop_s_first_and_latest_stay() {
    let dir = temp_spool("trim").dir().to_path_buf();
    let spool = Spool::open(dir.clone(), 3, Duration::from_secs(86_400)).unwrap();
    let start = now_ms() - 60_000;
    let mut loop_ids = Vec::new();
    for run in 0..2u64 {
        let c = panic_capture("crash loop", start + run, 0x1000 * run as usize, &[0x42]);
        loop_ids.push(c.id);
        write_orphan(&dir, c.timestamp_ms, EntryRef::Captured(&c));
    }
    for (i, word) in ["alpha", "bravo", "charlie", "delta"].iter().enumerate() {
        let mut r = Report::sample(&format!("unrelated {word}"));
        if i == 0 {
            // Deleted with this one: 4 occurrences and 2 reports it carried.
            r.count = 4;
            r.extra.insert(DISCARDED_KEY.to_owned(), Value::from(2u64));
        }
        write_orphan(&dir, start + 10 + i as u64, EntryRef::Report(&r));
    }
    let claimed = spool.claim_orphans();
    let messages: Vec<&str> = claimed.iter().map(|(_, e)| message_of(e)).collect();
    assert_eq!(messages, ["crash loop", "crash loop", "unrelated delta"]);
    let ids: Vec<ReportId> = claimed
        .iter()
        .filter_map(|(_, e)| match e {
            Entry::Captured(c) => Some(c.id),
            Entry::Report(_) => None,
        })
        .collect();
    assert_eq!(ids, loop_ids);
    // Deleted: alpha (4 + the 2 it carried), bravo, charlie. The first
    // finished report carries the loss, ahead of the older captures.
    assert_eq!(claimed[2].1.carried(), 8);
    let on_disk = spool.read_entry(&claimed[2].0).unwrap();
    assert_eq!(on_disk.carried(), 8, "in its file too");
    assert_eq!(claimed[0].1.carried() + claimed[1].1.carried(), 0);
    assert_eq!(spool.take_discarded(), 0);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn with_nothing_left_to_carry_it_the_loss_waits_for_the_next_report() {
    let dir = temp_spool("unattached").dir().to_path_buf();
    let spool = Spool::open(dir.clone(), 0, Duration::from_secs(86_400)).unwrap();
    let start = now_ms() - 60_000;
    for run in 0..3u64 {
        let c = panic_capture("crash loop", start + run, 0x1000 * run as usize, &[0x42]);
        write_orphan(&dir, c.timestamp_ms, EntryRef::Captured(&c));
    }
    assert!(spool.claim_orphans().is_empty());
    assert!(report_files(&dir).is_empty());
    assert_eq!(
        spool.take_discarded(),
        3,
        "3 panics, one folded, all deleted"
    );
    assert_eq!(spool.take_discarded(), 0, "taken once");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn under_the_limit_nothing_is_folded_or_deleted() {
    let spool = temp_spool("under");
    let start = now_ms() - 60_000;
    for run in 0..5u64 {
        let c = panic_capture("crash loop", start + run, 0x1000 * run as usize, &[0x42]);
        write_orphan(spool.dir(), c.timestamp_ms, EntryRef::Captured(&c));
    }
    let claimed = spool.claim_orphans();
    assert_eq!(claimed.len(), 5);
    assert!(claimed
        .iter()
        .all(|(_, e)| e.count() == 1 && e.carried() == 0));
    fs::remove_dir_all(spool.dir()).unwrap();
}

#[test]
fn beyond_the_read_cap_the_oldest_go_unread_but_the_oldest_of_all_stays() {
    let dir = temp_spool("cap").dir().to_path_buf();
    let spool = Spool::open(dir.clone(), 2, Duration::from_secs(86_400)).unwrap();
    let cap = read_cap(2);
    let start = now_ms() - 600_000;
    let first = panic_capture("crash loop", start, 0, &[0x42]);
    write_orphan(&dir, start, EntryRef::Captured(&first));
    // Unreadable files past the cap: read, they would be set aside.
    for i in 1..=5u64 {
        let name = format!(
            "{:016}-{}.4194999_gone{SUFFIX}",
            start + i,
            ReportId::random()
        );
        fs::write(dir.join(name), b"{not json").unwrap();
    }
    let mut latest = None;
    for i in 0..cap as u64 - 1 {
        let c = panic_capture("crash loop", start + 10 + i, 0x1000, &[0x42]);
        latest = Some(c.id);
        write_orphan(&dir, c.timestamp_ms, EntryRef::Captured(&c));
    }
    let claimed = spool.claim_orphans();
    assert!(
        !dir.join("corrupt").exists(),
        "the 5 past the cap were deleted unread"
    );
    let kept: Vec<(ReportId, u64)> = claimed
        .iter()
        .map(|(_, e)| match e {
            Entry::Captured(c) => (c.id, c.count),
            Entry::Report(r) => (r.id, r.count),
        })
        .collect();
    // The oldest of all was read: the loop folded into it.
    assert_eq!(
        kept,
        [(first.id, cap as u64 - 1), (latest.unwrap(), 1)],
        "the first stands for itself and the {} between",
        cap - 2
    );
    assert_eq!(claimed[0].1.carried(), 5, "the 5 deleted unread");
    fs::remove_dir_all(&dir).unwrap();
}

/// The spool files in `dir`.
fn report_files(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(SUFFIX))
        .collect()
}

#[test]
fn run_state_counts_panics_in_a_row() {
    let spool = temp_spool("runs");
    assert_eq!(spool.start_run(), LastRun::default());
    let last = spool.start_run();
    spool.record_panic(last);
    let last = spool.start_run();
    assert_eq!(
        last,
        LastRun {
            panicked: true,
            consecutive_panics: 1,
            ..LastRun::default()
        }
    );
    spool.record_panic(last);
    let last = spool.start_run();
    assert_eq!(last.consecutive_panics, 2);
    // A run that ends without panicking breaks the loop.
    assert_eq!(spool.start_run(), LastRun::default());
    fs::remove_dir_all(spool.dir()).unwrap();
}
