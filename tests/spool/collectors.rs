//! Which collectors go through the spool: network and file collectors and
//! custom transports do; `memory` and `stderr` do not, unless given a
//! `spool_dir`; where the spool is by default and from `CRASHBOX_SPOOL_DIR`.
use std::path::PathBuf;
use std::time::Duration;

use super::{id_in_name, report_files, run_ok, SPOOL_ENV};
use crate::util;
use crate::util::http_server::refused_port;
use crate::util::{
    assert_child, child, env_var, http_collector, otlp_collector, report_value, sentry_collector,
    wait_for, TempDir,
};
use crashbox::{Level, Options};

/// A custom transport whose collector is always down.
struct Down;

impl crashbox::Transport for Down {
    fn send(&mut self, _: &[crashbox::Report]) -> Result<(), crashbox::TransportError> {
        Err(crashbox::TransportError::Retryable("down".into()))
    }
}

/// The collectors `child_collectors` tries, by label: `down:` ones are
/// network collectors (or a custom transport) that cannot deliver.
fn spooling_collectors() -> Vec<(&'static str, String)> {
    let port = refused_port();
    vec![
        ("http", http_collector(port)),
        ("sentry", sentry_collector("key", port, 1)),
        ("otlp", otlp_collector(port)),
        ("transport", String::new()),
    ]
}

#[test]
fn network_and_file_collectors_and_custom_transports_spool_and_memory_and_stderr_do_not() {
    let root = TempDir::new("spool-collectors");
    let from_env = root.path().join("from-env");
    let out = run_ok(
        &child!(child_collectors),
        "memory",
        root.path(),
        &[("CRASHBOX_SPOOL_DIR", from_env.clone().into())],
    );
    assert_eq!(out.value("from_env_dir"), from_env.display().to_string());
    // The default spool directory is named after the program: this test binary.
    let program = std::env::current_exe().unwrap();
    let program_dir = format!(
        "/crashbox/{}-",
        program.file_name().unwrap().to_string_lossy()
    );
    for (label, _) in spooling_collectors() {
        let dir = root.path().join(label);
        let files = report_files(&dir);
        assert_eq!(files.len(), 1, "{label}: {files:?}\n{}", out.dump());
        assert_eq!(id_in_name(&files[0]), out.value(label), "{label}");
    }
    // Memory and stderr use no spool unless a spool_dir is given; a file
    // keeps its reports in one until they are written.
    assert_eq!(out.value("memory"), "None");
    assert_eq!(out.value("stderr"), "None");
    assert!(
        out.value("file").contains(&program_dir),
        "{}",
        out.value("file")
    );
    assert_eq!(
        out.value("memory_with_dir"),
        format!("{:?}", Some(root.path().join("memory")))
    );
    // A network collector without spool_dir uses `$XDG_STATE_HOME/crashbox/<program>`.
    let default = out.value("default_dir");
    assert!(
        default.contains("crashbox-test-") && default.contains(&program_dir),
        "{default}"
    );
}

/// Run by `network_and_file_collectors_and_custom_transports_spool_and_memory_and_stderr_do_not`.
#[test]
#[ignore = "child process of `network_and_file_collectors_and_custom_transports_spool_and_memory_and_stderr_do_not`"]
fn child_collectors() {
    assert_child();
    let root = PathBuf::from(env_var(SPOOL_ENV));
    let fast = |options: Options| {
        options
            .retry_backoff(Duration::from_millis(20), Duration::from_millis(100))
            .max_attempts(1)
            .shutdown_timeout(Duration::from_millis(500))
    };
    for (n, (label, collector)) in spooling_collectors().into_iter().enumerate() {
        let options = match label {
            "transport" => Options::new().transport(Down),
            _ => Options::new().collector(collector),
        };
        let guard = crashbox::init(fast(options).spool_dir(root.join(label))).expect(label);
        let id = crashbox::capture_message(format!("via {label}"), Level::Error).expect(label);
        report_value(label, id);
        wait_for(Duration::from_secs(20), label, || {
            crashbox::stats().spooled == n as u64 + 1
        });
        drop(guard);
    }
    let jsonl = root.join("reports.jsonl");
    for (label, collector) in [
        ("memory", "memory".to_owned()),
        ("stderr", "stderr".to_owned()),
        ("file", util::file_collector(&jsonl)),
    ] {
        let guard = crashbox::init(Options::new().collector(collector)).expect(label);
        report_value(label, format!("{:?}", crashbox::spool_dir()));
        drop(guard);
    }
    let guard = crashbox::init(
        Options::new()
            .collector("memory")
            .spool_dir(root.join("memory")),
    )
    .expect("memory with a spool_dir");
    report_value("memory_with_dir", format!("{:?}", crashbox::spool_dir()));
    drop(guard);
    let guard = crashbox::init(fast(
        Options::new().collector(spooling_collectors()[0].1.clone()),
    ))
    .expect("default spool");
    report_value("default_dir", crashbox::spool_dir().unwrap().display());
    drop(guard);
    let guard = crashbox::init(fast(
        Options::from_env().collector(spooling_collectors()[0].1.clone()),
    ))
    .expect("CRASHBOX_SPOOL_DIR");
    report_value("from_env_dir", crashbox::spool_dir().unwrap().display());
    drop(guard);
}
