//! `crashbox::testing`: `capture`, `assert_no_reports` and `forbid_reports`,
//! with scopes and threads.
//!
//! These helpers bind a private collector to the calling thread, so the tests
//! run in parallel in one process without `init` or child processes.

use std::any::Any;
use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;

use crate::util::errors::panic_text;
use crate::util::{errors, without_client};
use crashbox::{testing, Kind, Level};

/// The text of a panic payload.
fn payload_text(payload: &(dyn Any + Send)) -> String {
    panic_text(payload).unwrap_or_else(|| "<non-string payload>".to_owned())
}

errors::test_error! {
    /// An error with a cause.
    FetchError => "could not fetch the manifest", source: io::Error
}

fn fetch_error() -> FetchError {
    FetchError::new(std::io::ErrorKind::TimedOut, "connection timed out")
}

#[inline(never)]
fn report_from_a_named_function() {
    crashbox::capture_error(&fetch_error());
}

#[test]
fn capture_returns_fully_processed_reports_synchronously() {
    let _turn = without_client();
    let (value, reports) = testing::capture(|| {
        report_from_a_named_function();
        "returned"
    });
    assert_eq!(value, "returned");
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert_eq!(report.kind, Kind::Error);
    assert_eq!(report.level, Level::Error);
    assert_eq!(report.message, "could not fetch the manifest");
    assert_eq!(report.exceptions.len(), 2);
    assert_eq!(report.exceptions[1].ty, "std::io::Error");
    assert_eq!(report.context.pid, std::process::id());
    assert!(report.context.rustc.starts_with("rustc "));
    // Symbolicated, trimmed and marked: the capture point comes first.
    let first = report.frames.first().expect("frames");
    assert!(
        first
            .function
            .as_deref()
            .is_some_and(|f| f.contains("report_from_a_named_function")),
        "{:#?}",
        report.frames
    );
    assert!(first.in_app);
    assert!(first.line.is_some() && first.file.is_some());
    let in_app: Vec<_> = report.in_app_frames().collect();
    assert!(
        in_app.iter().any(|f| f
            .function
            .as_deref()
            .is_some_and(|n| n.contains("capture_returns_fully_processed_reports"))),
        "the test function should be an in-app frame: {in_app:#?}"
    );
    assert!(report.frames.iter().all(|f| !f
        .function
        .as_deref()
        .unwrap_or("")
        .starts_with("crashbox::")
        || !f.in_app));
    let location = report.location.as_ref().unwrap();
    assert!(location.file.ends_with("testing_helpers.rs"));
}

#[test]
fn assert_no_reports_passes_through_the_value_when_nothing_is_reported() {
    let _turn = without_client();
    let value = testing::assert_no_reports(|| "7".parse::<u8>().unwrap());
    assert_eq!(value, 7);
}

#[test]
fn assert_no_reports_failure_lists_level_message_chain_and_location() {
    let _turn = without_client();
    let mut expected_line = 0;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        testing::assert_no_reports(|| {
            expected_line = line!() + 1;
            crashbox::capture_error(&fetch_error());
        })
    }));
    let payload = outcome.expect_err("assert_no_reports should panic");
    let text = payload_text(&*payload);
    for needle in [
        "expected no crashbox reports, got 1",
        "[crashbox] error error: could not fetch the manifest",
        "FetchError: could not fetch the manifest",
        "caused by std::io::Error: connection timed out",
        &format!("{}:{expected_line}:", file!()),
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn forbid_reports_guard_panics_on_drop_when_a_report_was_made() {
    let _turn = without_client();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let _guard = testing::forbid_reports();
        crashbox::capture_message("forbidden report", Level::Warning);
    }));
    let payload = outcome.expect_err("dropping the guard should panic");
    let text = payload_text(&*payload);
    assert!(text.contains("expected no crashbox reports"), "{text}");
    assert!(text.contains("warning message: forbidden report"), "{text}");
}

#[test]
fn forbid_reports_guard_is_silent_when_nothing_was_reported() {
    let _turn = without_client();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let _guard = testing::forbid_reports();
        let _ = "1".parse::<i32>();
    }));
    assert!(outcome.is_ok());
}

#[test]
fn a_panic_caught_inside_capture_is_a_report() {
    let _turn = without_client();
    let (caught, reports) = testing::capture(|| {
        catch_unwind(|| {
            panic!("caught inside");
        })
        .is_err()
    });
    assert!(caught);
    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert_eq!(reports[0].kind, Kind::Panic);
    assert_eq!(reports[0].level, Level::Fatal);
    assert_eq!(reports[0].message, "caught inside");
    assert!(reports[0]
        .location
        .as_ref()
        .is_some_and(|l| l.file.ends_with("testing_helpers.rs")));
}

#[test]
fn a_panic_escaping_capture_is_resumed() {
    let _turn = without_client();
    let outcome = catch_unwind(|| testing::capture(|| -> u32 { panic!("escaping panic") }));
    let payload = outcome.expect_err("the panic should propagate out of capture");
    assert_eq!(payload_text(&*payload), "escaping panic");
}

#[test]
fn parallel_captures_see_only_their_own_reports() {
    let _turn = without_client();
    const THREADS: usize = 8;
    const EACH: usize = 25;
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let ((), reports) = testing::capture(|| {
                    barrier.wait();
                    for i in 0..EACH {
                        crashbox::configure_scope(|s| s.set_tag("owner", t.to_string()));
                        crashbox::capture_message(format!("t{t} #{i}"), Level::Info);
                    }
                    barrier.wait();
                });
                (t, reports)
            })
        })
        .collect();
    for handle in handles {
        let (t, reports) = handle.join().unwrap();
        let messages: Vec<String> = reports.iter().map(|r| r.message.clone()).collect();
        let expected: Vec<String> = (0..EACH).map(|i| format!("t{t} #{i}")).collect();
        assert_eq!(messages, expected, "thread {t}");
        let owner = t.to_string();
        assert!(reports
            .iter()
            .all(|r| r.tag("owner") == Some(owner.as_str())));
    }
}

#[test]
fn crashbox_thread_spawn_reports_into_the_enclosing_capture() {
    let _turn = without_client();
    let ((), reports) = testing::capture(|| {
        crashbox::thread::spawn(|| {
            crashbox::capture_message("from crashbox::thread::spawn", Level::Info)
        })
        .join()
        .unwrap()
        .expect("a bound thread's capture is received");
    });
    let messages: Vec<&str> = reports.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages, ["from crashbox::thread::spawn"]);
    assert_ne!(
        reports[0].thread.id,
        thread_number(),
        "the report names the spawned thread"
    );
}

#[test]
fn bind_routes_a_plain_thread_into_the_enclosing_capture() {
    let _turn = without_client();
    let ((), reports) = testing::capture(|| {
        let work =
            crashbox::bind(|| crashbox::capture_message("from a bound closure", Level::Info));
        std::thread::spawn(work).join().unwrap().expect("received");
    });
    let messages: Vec<&str> = reports.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages, ["from a bound closure"]);
    assert_eq!(
        reports[0].thread.name, None,
        "the spawned thread is unnamed"
    );
}

#[test]
fn bound_threads_carry_the_with_scope_layer_they_were_spawned_in() {
    let _turn = without_client();
    let ((), reports) = testing::capture(|| {
        crashbox::with_scope(
            |scope| scope.set_tag("job", "nightly"),
            || {
                crashbox::thread::spawn(|| {
                    crashbox::capture_message("from the job's worker", Level::Info);
                })
                .join()
                .unwrap();
            },
        );
    });
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].tag("job"), Some("nightly"));
}

#[test]
fn a_plain_std_thread_inside_capture_is_not_captured() {
    let _turn = without_client();
    let (returned, reports) = testing::capture(|| {
        let returned =
            std::thread::spawn(|| crashbox::capture_message("from an unbound thread", Level::Info))
                .join()
                .unwrap();
        crashbox::capture_message("from the test thread", Level::Info);
        returned
    });
    assert_eq!(returned, None, "no client is installed in this process");
    let messages: Vec<&str> = reports.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages, ["from the test thread"]);
}

/// This thread's numeric id, as reports write it.
fn thread_number() -> u64 {
    let ((), reports) = testing::capture(|| {
        crashbox::capture_message("which thread", Level::Debug);
    });
    reports[0].thread.id
}

#[test]
fn with_scope_tags_apply_inside_and_not_after() {
    let _turn = without_client();
    let ((), reports) = testing::capture(|| {
        crashbox::with_scope(
            |scope| scope.set_tag("request", "r-1"),
            || {
                crashbox::capture_message("inside", Level::Info);
            },
        );
        crashbox::capture_message("after", Level::Info);
    });
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].message, "inside");
    assert_eq!(reports[0].tag("request"), Some("r-1"));
    assert_eq!(reports[1].message, "after");
    assert_eq!(reports[1].tag("request"), None);
}

#[test]
fn configure_scope_inside_capture_does_not_leak_into_other_captures() {
    let _turn = without_client();
    let barrier = Arc::new(Barrier::new(2));
    let writer = {
        let barrier = barrier.clone();
        std::thread::spawn(move || {
            let ((), reports) = testing::capture(|| {
                crashbox::configure_scope(|s| {
                    s.set_tag("leaky", "yes");
                    s.set_user(Some(crashbox::User::with_id("writer")));
                });
                barrier.wait(); // the tag is set...
                barrier.wait(); // ...while the other thread captures
                crashbox::capture_message("writer", Level::Info);
            });
            // A later capture on the same thread starts clean, too.
            let ((), later) = testing::capture(|| {
                crashbox::capture_message("writer, later", Level::Info);
            });
            (reports, later)
        })
    };
    let ((), reader) = testing::capture(|| {
        barrier.wait();
        crashbox::capture_message("reader", Level::Info);
        barrier.wait();
    });
    let (writer_reports, later) = writer.join().unwrap();
    assert_eq!(writer_reports[0].tag("leaky"), Some("yes"));
    assert_eq!(reader.len(), 1);
    assert_eq!(reader[0].tag("leaky"), None, "{:?}", reader[0].tags);
    assert_eq!(reader[0].user, None);
    assert_eq!(later[0].tag("leaky"), None);
    assert_eq!(later[0].user, None);
}

#[test]
fn capturing_inside_configure_scope_does_not_deadlock() {
    let _turn = without_client();
    // Load debug info first (a one-time cost of about a second in a debug
    // build), so the timeout below only measures the scenario.
    let _ = testing::capture(|| crashbox::capture_message("warm-up", Level::Debug));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (inner, reports) = testing::capture(|| {
            crashbox::configure_scope(|scope| {
                scope.set_tag("while", "configuring");
                crashbox::capture_message("inside configure_scope", Level::Info)
            })
        });
        let _ = tx.send((inner.is_some(), reports));
    });
    let (received, reports) = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("capture inside configure_scope deadlocked");
    assert!(received);
    let messages: BTreeSet<&str> = reports.iter().map(|r| r.message.as_str()).collect();
    assert_eq!(messages, BTreeSet::from(["inside configure_scope"]));
}
