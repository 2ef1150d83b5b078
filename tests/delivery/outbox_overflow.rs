//! More reports than the in-memory outbox holds, bound for a collector that
//! takes one report per call: the overflow waits in the spool and this run
//! still delivers every report, in order, none twice.

use std::collections::HashSet;
use std::ffi::OsString;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::util::{assert_child, child, one_by_one, report_value, run_child, TempDir};
use crashbox::{Options, Report, Transport, TransportError};

const REPORTS: usize = 1_500;
/// Panics raised while the outbox is full: their spool files hold raw
/// captures, which must be resolved when they move into the outbox.
const PANICS: usize = 20;
const SPOOL_ENV: &str = "CRASHBOX_TEST_SPOOL";

/// Takes one report per call, slowly, like a Sentry server.
struct OneAtATime(Arc<Mutex<Vec<String>>>);

impl Transport for OneAtATime {
    fn send(&mut self, reports: &[Report]) -> Result<(), TransportError> {
        std::thread::sleep(Duration::from_micros(200));
        let mut seen = self.0.lock().unwrap();
        seen.extend(reports.iter().map(|r| match r.kind {
            crashbox::Kind::Panic => format!("panic {}", r.message),
            _ => r.message.clone(),
        }));
        Ok(())
    }

    fn max_batch(&self) -> usize {
        1
    }
}

/// Run by `reports_beyond_the_outbox_wait_in_the_spool_and_are_delivered_this_run`.
#[test]
#[ignore = "child process of `reports_beyond_the_outbox_wait_in_the_spool_and_are_delivered_this_run`"]
fn child_overflow() {
    assert_child();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let guard = crashbox::init(
        one_by_one(Options::new())
            .transport(OneAtATime(seen.clone()))
            .spool_dir(std::env::var_os(SPOOL_ENV).expect("spool dir"))
            .queue_capacity(4 * REPORTS)
            .shutdown_timeout(Duration::from_secs(60)),
    )
    .expect("init");
    for i in 0..REPORTS {
        assert!(
            crashbox::capture_message(format!("report {i:04}"), crashbox::Level::Info).is_some(),
            "capture {i} was refused"
        );
    }
    for i in 0..PANICS {
        let panicked = std::thread::spawn(move || panic!("overflow panic {i:02}")).join();
        assert!(panicked.is_err());
    }
    assert!(guard.flush(Duration::from_secs(60)), "flush timed out");
    drop(guard);
    let seen = seen.lock().unwrap();
    report_value("delivered", seen.len());
    report_value("distinct", seen.iter().collect::<HashSet<_>>().len());
    let messages: Vec<&String> = seen.iter().filter(|m| m.starts_with("report")).collect();
    report_value("in_order", messages.windows(2).all(|w| w[0] < w[1]));
    report_value(
        "panics",
        seen.iter()
            .filter(|m| m.starts_with("panic overflow panic"))
            .count(),
    );
    let stats = crashbox::stats();
    report_value("sent", stats.sent);
    report_value("dropped", stats.dropped());
    report_value("spooled", stats.spooled);
}

#[test]
fn reports_beyond_the_outbox_wait_in_the_spool_and_are_delivered_this_run() {
    let spool = TempDir::new("overflow");
    let out = run_child(
        &child!(child_overflow),
        &[(SPOOL_ENV, OsString::from(spool.path()))],
    );
    out.assert_success();
    let all = (REPORTS + PANICS) as u64;
    assert_eq!(out.number("delivered"), all, "{}", out.dump());
    assert_eq!(out.number("distinct"), all, "{}", out.dump());
    assert_eq!(out.value("in_order"), "true", "{}", out.dump());
    assert_eq!(out.number("panics"), PANICS as u64, "{}", out.dump());
    assert_eq!(out.number("sent"), all, "{}", out.dump());
    assert_eq!(out.number("dropped"), 0, "{}", out.dump());
    assert_eq!(out.number("spooled"), 0, "{}", out.dump());
    let left = std::fs::read_dir(spool.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".report"))
        .count();
    assert_eq!(left, 0, "every delivered report's file is removed");
}
