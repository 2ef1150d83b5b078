//! Hostile inputs stay bounded: huge messages and `Display`s, endless and
//! looping source chains, huge tags, oversized scopes and deep stacks.
//!
//! Everything runs through `crashbox::testing::capture`, which is bound to
//! the calling thread, so no child process is needed.
use std::error::Error;
use std::fmt;
use std::hint::black_box;
use std::sync::Once;
use std::time::{Duration, Instant};

use crate::util::without_client;
use crashbox::limits::{
    MAX_CHAIN, MAX_EXCEPTION_MESSAGE_BYTES, MAX_FRAMES, MAX_MESSAGE_BYTES, MAX_REPORT_BYTES,
    MAX_TAG_VALUE_BYTES,
};
use crashbox::{testing, Breadcrumb, Level, Report};

const TEN_MB: usize = 10 * 1024 * 1024;
/// Each case takes milliseconds once symbolication is warm; generous for a
/// debug build on a busy machine.
const BUDGET: Duration = Duration::from_secs(2);
/// `…` is three bytes in UTF-8.
const MARKER_LEN: usize = '…'.len_utf8();

/// Pays the process's one-time cost of loading debug info for symbolication
/// (about a second in a debug build), so the budget measures each case alone.
fn warm_up() {
    static WARM: Once = Once::new();
    WARM.call_once(|| {
        let _ = testing::capture(|| crashbox::capture_message("warm-up", Level::Debug));
    });
}

/// Runs `f` in `testing::capture`, checks it was quick, returns the single report.
#[track_caller]
fn single_report(f: impl FnOnce()) -> Report {
    single_report_within(BUDGET, f)
}

/// [`single_report`] with a budget of its own.
#[track_caller]
fn single_report_within(budget: Duration, f: impl FnOnce()) -> Report {
    warm_up();
    let start = Instant::now();
    let ((), mut reports) = testing::capture(f);
    let elapsed = start.elapsed();
    assert!(elapsed < budget, "took {elapsed:?}");
    assert_eq!(reports.len(), 1, "{reports:#?}");
    reports.remove(0)
}

#[test]
fn a_10_mb_message_is_cut_to_max_message_bytes_and_marked() {
    let _turn = without_client();
    let huge = "m".repeat(TEN_MB);
    let report = single_report(|| {
        crashbox::capture_message(&huge, Level::Error);
    });
    assert_eq!(report.message.len(), MAX_MESSAGE_BYTES + MARKER_LEN);
    assert!(report.message.ends_with('…'));
    assert!(report.message[..MAX_MESSAGE_BYTES]
        .bytes()
        .all(|b| b == b'm'));
    assert!(
        report.truncated.iter().any(|t| t == "message"),
        "{:?}",
        report.truncated
    );
}

#[test]
fn a_huge_multibyte_message_is_cut_on_a_char_boundary() {
    let _turn = without_client();
    let huge = "é".repeat(TEN_MB / 2); // 2 bytes each; MAX_MESSAGE_BYTES + 1 splits one
    let report = single_report(|| {
        crashbox::capture_message(format!("x{huge}"), Level::Error);
    });
    assert!(report.message.len() <= MAX_MESSAGE_BYTES + MARKER_LEN);
    assert!(report.message.starts_with("xé"));
    assert!(report.message.ends_with("é…"), "cut mid-character");
    assert!(report.truncated.iter().any(|t| t == "message"));
}

/// An error whose `Display` writes 10 MB in 1 KiB pieces, ignoring write errors.
#[derive(Debug)]
struct Verbose;

impl fmt::Display for Verbose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let piece = "v".repeat(1024);
        for _ in 0..TEN_MB / 1024 {
            let _ = f.write_str(&piece);
        }
        Ok(())
    }
}

impl Error for Verbose {}

#[test]
fn an_error_whose_display_writes_10_mb_is_cut() {
    let _turn = without_client();
    let report = single_report(|| {
        crashbox::capture_error(&Verbose);
    });
    let exception = &report.exceptions[0].message;
    assert!(
        exception.len() <= MAX_EXCEPTION_MESSAGE_BYTES + MARKER_LEN,
        "{}",
        exception.len()
    );
    assert!(exception.ends_with('…'));
    assert!(report.message.len() <= MAX_MESSAGE_BYTES + MARKER_LEN);
    assert!(report.message.starts_with("vvvv"));
    assert!(report.message.ends_with('…'));
    assert!(
        report.truncated.iter().any(|t| t.contains("message")),
        "{:?}",
        report.truncated
    );
    assert!(report.to_json().len() < 64 * 1024);
}

/// One link of a long chain; links are leaked so `source` can hand out `'static` refs.
#[derive(Debug)]
struct Link {
    depth: usize,
    next: Option<&'static Link>,
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link {}", self.depth)
    }
}

impl Error for Link {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.next.map(|l| l as &(dyn Error + 'static))
    }
}

/// A chain of `len` links, built from the tail (no recursion anywhere).
fn chain(len: usize) -> &'static Link {
    let mut next: Option<&'static Link> = None;
    for depth in (0..len).rev() {
        next = Some(Box::leak(Box::new(Link { depth, next })));
    }
    next.unwrap()
}

#[test]
fn a_10000_long_error_chain_is_capped_at_max_chain() {
    let _turn = without_client();
    let head = chain(10_000);
    let report = single_report(|| {
        crashbox::capture_error(head);
    });
    assert_eq!(report.exceptions.len(), MAX_CHAIN);
    assert_eq!(report.exceptions[0].message, "link 0");
    assert_eq!(
        report.exceptions[MAX_CHAIN - 1].message,
        format!("link {}", MAX_CHAIN - 1)
    );
    assert!(
        report.truncated.iter().any(|t| t == "exceptions"),
        "{:?}",
        report.truncated
    );
}

/// An error whose source is a static that is its own source.
#[derive(Debug)]
struct Ouroboros;

impl fmt::Display for Ouroboros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("I am my own cause")
    }
}

impl Error for Ouroboros {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        static SELF: Ouroboros = Ouroboros;
        Some(&SELF)
    }
}

#[test]
fn a_looping_error_chain_terminates() {
    let _turn = without_client();
    let report = single_report(|| {
        crashbox::capture_error(&Ouroboros);
    });
    assert!(report.exceptions.len() >= 2, "{:?}", report.exceptions);
    assert!(
        report.exceptions.len() < MAX_CHAIN,
        "the repeat should stop the walk before the cap"
    );
    assert!(report
        .exceptions
        .iter()
        .all(|e| e.message == "I am my own cause"));
    assert!(
        report.truncated.iter().any(|t| t.starts_with("exceptions")),
        "{:?}",
        report.truncated
    );
}

#[test]
fn a_1_mb_tag_value_is_cut_to_max_tag_value_bytes() {
    let _turn = without_client();
    let big = "t".repeat(1024 * 1024);
    let report = single_report(|| {
        crashbox::configure_scope(|scope| scope.set_tag("big", big));
        crashbox::capture_message("with a big tag", Level::Info);
    });
    let value = report.tag("big").expect("the tag is kept");
    assert_eq!(value.len(), MAX_TAG_VALUE_BYTES + MARKER_LEN);
    assert!(value.ends_with('…'));
    assert!(
        report.truncated.iter().any(|t| t == "tags.big"),
        "{:?}",
        report.truncated
    );
}

/// Slower than the other cases: shrinking re-serializes the whole ~3.3 MB
/// report after each step, about 2 s in a debug build (milliseconds in release).
#[test]
fn a_report_with_200_large_extras_and_100_large_breadcrumbs_stays_under_max_report_bytes() {
    let _turn = without_client();
    let report = single_report_within(Duration::from_secs(20), || {
        crashbox::configure_scope(|scope| {
            for i in 0..200 {
                scope.set_extra(format!("blob{i}"), "x".repeat(16 * 1024));
            }
        });
        for i in 0..100 {
            crashbox::add_breadcrumb(Breadcrumb::new(format!("{i:04}{}", "b".repeat(1020))));
        }
        crashbox::capture_message("carrying too much", Level::Error);
    });
    let json = report.to_json();
    assert!(
        json.len() <= MAX_REPORT_BYTES,
        "{} bytes > {MAX_REPORT_BYTES}",
        json.len()
    );
    assert_eq!(report.message, "carrying too much", "the headline survives");
    assert!(
        report
            .truncated
            .iter()
            .any(|t| t == "extra" || t == "breadcrumbs"),
        "{:?}",
        report.truncated
    );
    // Whatever breadcrumbs remain are the newest ones, oldest first.
    if let Some(last) = report.breadcrumbs.last() {
        assert!(last.message.starts_with("0099"), "{}", &last.message[..8]);
    }
}

/// Recurses `depth` frames, then captures.
#[inline(never)]
fn recurse(depth: usize) -> usize {
    if depth == 0 {
        crashbox::capture_message("deep down", Level::Warning);
        0
    } else {
        black_box(recurse(black_box(depth - 1))) + 1
    }
}

#[test]
fn a_500_deep_stack_keeps_at_most_max_frames() {
    let _turn = without_client();
    warm_up();
    let (levels, reports) = {
        let start = Instant::now();
        let out = std::thread::Builder::new()
            // Room for 500 debug-build frames whatever RUST_MIN_STACK says.
            .stack_size(16 * 1024 * 1024)
            .spawn(|| testing::capture(|| recurse(500)))
            .unwrap()
            .join()
            .unwrap();
        assert!(start.elapsed() < BUDGET, "took {:?}", start.elapsed());
        out
    };
    assert_eq!(levels, 500);
    assert_eq!(reports.len(), 1);
    let report = &reports[0];
    assert!(report.frames.len() <= MAX_FRAMES, "{}", report.frames.len());
    assert!(
        report.frames.len() >= MAX_FRAMES / 2,
        "expected a full stack, got {} frames",
        report.frames.len()
    );
    assert!(
        report.truncated.iter().any(|t| t == "frames"),
        "{:?}",
        report.truncated
    );
    assert!(report.frames[0]
        .function
        .as_deref()
        .is_some_and(|f| f.contains("recurse")));
}

/// An error whose `Display` panics.
#[derive(Debug)]
struct Exploding;

impl fmt::Display for Exploding {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("boom in Display");
    }
}

impl Error for Exploding {}

#[test]
fn a_panicking_display_is_reported_not_propagated() {
    let _turn = without_client();
    let report = single_report(|| {
        assert!(crashbox::capture_error(&Exploding).is_some());
    });
    assert!(
        report.exceptions[0].message.contains("Display panicked"),
        "{:?}",
        report.exceptions
    );
    assert!(report.exceptions[0].message.contains("boom in Display"));
}
