//! `crashbox::last_run`: panicking runs in a row, counted in the spool's
//! run state, and the spool's files private to their owner.
use std::time::Duration;

use super::{assert_files_private, mode, run_ok, SPOOL_ENV};
use crate::util::{assert_child, child, env_var, report_value, TempDir, COLLECTOR_ENV};
use crashbox::Options;

/// `panic` or `clean`, for `child_last_run`.
const MODE_ENV: &str = "CRASHBOX_TEST_MODE";

#[test]
fn last_run_counts_panicking_runs_in_a_row_and_resets_after_a_clean_run() {
    let root = TempDir::new("spool-last-run");
    // Not there yet: crashbox creates it.
    let spool = root.path().join("state").join("spool");
    let mut seen = Vec::new();
    for mode in ["panic", "panic", "panic", "clean", "clean"] {
        let out = run_ok(
            &child!(child_last_run),
            "memory",
            &spool,
            &[(MODE_ENV, mode.into())],
        );
        seen.push(out.value("last_run"));
    }
    assert_eq!(
        seen,
        ["false/0", "true/1", "true/2", "true/3", "false/0"],
        "last_run of each run"
    );
    assert_eq!(mode(&spool), 0o700, "the spool directory is private");
    assert_files_private(&spool);
    assert!(spool.join("run-state.json").is_file());
}

/// Run by `last_run_counts_panicking_runs_in_a_row_and_resets_after_a_clean_run`.
#[test]
#[ignore = "child process of `last_run_counts_panicking_runs_in_a_row_and_resets_after_a_clean_run`"]
fn child_last_run() {
    assert_child();
    let guard = crashbox::init(
        Options::new()
            .collector(env_var(COLLECTOR_ENV))
            .spool_dir(env_var(SPOOL_ENV)),
    )
    .expect("init");
    let last = crashbox::last_run().expect("a spool is in use");
    report_value(
        "last_run",
        format!("{}/{}", last.panicked, last.consecutive_panics),
    );
    if env_var(MODE_ENV) == "panic" {
        // Two panics: still one panicking run.
        for _ in 0..2 {
            let caught = std::panic::catch_unwind(|| panic!("crash loop"));
            assert!(caught.is_err());
        }
        assert!(crashbox::flush(Duration::from_secs(10)));
        assert_eq!(crashbox::memory_reports().len(), 2);
    }
    drop(guard);
}
