//! Two processes replaying one spool at once deliver each report exactly once.
use std::collections::{BTreeMap, BTreeSet};

use super::{
    child_env, delivered, ids_of, now_ms, report_files, stats, write_orphans, MAX_REPORTS_ENV,
    START_AT_ENV,
};
use crate::util::http_server::Server;
use crate::util::{child, http_collector, run_child, ChildOutput, TempDir};

const SHARED: usize = 200;

#[test]
fn two_processes_replaying_one_spool_deliver_each_report_exactly_once() {
    let spool = TempDir::new("spool-shared");
    let orphans: BTreeSet<String> =
        write_orphans(spool.path(), 0x5b00_0006, SHARED, now_ms() - 60_000)
            .into_iter()
            .collect();
    let server = Server::start();
    let start_at = (now_ms() + 1500).to_string();
    let children: Vec<_> = (0..2)
        .map(|_| {
            let mut envs = child_env(&http_collector(server.port()), spool.path());
            envs.push((MAX_REPORTS_ENV, "1000".into()));
            envs.push((START_AT_ENV, start_at.clone().into()));
            std::thread::spawn(move || run_child(&child!(super::child_replay), &envs))
        })
        .collect();
    let outs: Vec<ChildOutput> = children.into_iter().map(|c| c.join().unwrap()).collect();
    let mut replayed = 0;
    for out in &outs {
        out.assert_success();
        assert_eq!(out.value("flushed"), "true", "{}", out.dump());
        let stats = stats(out);
        assert_eq!(stats["sent"], stats["replayed"], "{stats:?}");
        replayed += stats["replayed"];
    }
    assert_eq!(
        replayed, SHARED as u64,
        "between them, each file replayed once"
    );
    let arrived = ids_of(&delivered(&server));
    let mut counts: BTreeMap<&String, usize> = BTreeMap::new();
    for id in &arrived {
        *counts.entry(id).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(arrived.len(), SHARED);
    assert_eq!(arrived.iter().cloned().collect::<BTreeSet<_>>(), orphans);
    assert!(report_files(spool.path()).is_empty());
}
