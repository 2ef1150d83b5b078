//! Unit tests of aggregation.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::report::{ExceptionInfo, Kind, Report};

fn report(group: &str) -> Report {
    let mut r = Report::sample("x");
    r.group = group.to_owned();
    r
}

fn error(group: &str, message: &str) -> Report {
    let mut r = report(group);
    r.kind = Kind::Error;
    r.message = message.to_owned();
    r.exceptions = vec![ExceptionInfo {
        ty: "std::io::Error".into(),
        message: message.to_owned(),
    }];
    r
}

fn norm(text: &str) -> u64 {
    Mix::new(0).normalized(text).0
}

fn sent(offer: Offer) -> WindowRef {
    match offer {
        Offer::Send(_, _, Some(window)) => window,
        Offer::Send(_, _, None) => panic!("sent outside any window"),
        Offer::Folded { .. } => panic!("folded, not sent"),
    }
}

#[test]
fn variable_parts_of_messages_are_set_aside() {
    let same = [
        ("burst error 17", "burst error 18"),
        ("bad pointer 0x1f", "bad pointer 0xDEADBEEF"),
        (
            "object deadbeefcafebabe missing",
            "object 0123456789abcdef missing",
        ),
        ("user42 denied", "user7 denied"),
        ("took 1.25 s", "took 30.5 s"),
        ("Größe 12 überschritten", "Größe 13 überschritten"),
        (
            "request 550e8400-e29b-41d4-a716-446655440000 failed",
            "request 6fa459ea-ee8a-3ca4-894e-db77e160355e failed",
        ),
        (
            // All-letter groups inside a UUID are part of it.
            "request 550e8400-abcd-41d4-beef-446655440000 failed",
            "request 6fa459ea-ee8a-3ca4-894e-db77e160355e failed",
        ),
    ];
    for (a, b) in same {
        assert_eq!(norm(a), norm(b), "{a:?} and {b:?}");
    }
    let different = [
        (
            "Permission denied (os error 13)",
            "No space left on device (os error 28)",
        ),
        ("disk full", "disk empty"),
        ("facade failed", "decade failed"),
        ("a 1", "a 1 b"),
        ("1 a", "a 1"),
        ("12", ""),
        ("x-1", "x-"),
    ];
    for (a, b) in different {
        assert_ne!(norm(a), norm(b), "{a:?} and {b:?}");
    }
}

#[test]
fn fold_keys_split_what_the_fingerprint_merges() {
    let group = "00000000000000aa";
    let key = |r: Report| fold_key(&r);
    assert_eq!(
        key(error(group, "burst error 17")),
        key(error(group, "burst error 18"))
    );
    assert_ne!(
        key(error(group, "Permission denied (os error 13)")),
        key(error(group, "No space left on device (os error 28)"))
    );
    let mut other_type = error(group, "burst error 17");
    other_type.exceptions[0].ty = "app::Error".into();
    assert_ne!(key(other_type), key(error(group, "burst error 17")));
    assert_ne!(
        key(error(group, "burst error 17")),
        key(error("00000000000000bb", "burst error 17"))
    );
}

#[test]
fn raw_keys_differ_by_stack_type_and_message_but_not_by_its_numbers() {
    let io = |message: &str| {
        vec![ExceptionInfo {
            ty: "io".into(),
            message: message.into(),
        }]
    };
    let key = |message: &str, exceptions: &[ExceptionInfo], addresses: &[usize]| {
        raw_key(Kind::Error, message, exceptions, addresses)
    };
    let a = key("retry 1 failed", &io("retry 1 failed"), &[1, 2, 3]);
    assert_eq!(a, key("retry 2 failed", &io("retry 2 failed"), &[1, 2, 3]));
    assert_ne!(a, key("other text", &io("other text"), &[1, 2, 3]));
    assert_ne!(a, key("retry 1 failed", &io("retry 1 failed"), &[1, 2, 4]));
    assert_ne!(a, key("retry 1 failed", &[], &[1, 2, 3]));
    // A message's text is its fingerprint: kept as it is.
    assert_ne!(
        raw_key(Kind::Message, "disk at 91%", &[], &[1]),
        raw_key(Kind::Message, "disk at 92%", &[], &[1])
    );
    let panic = |message: &str| raw_key(Kind::Panic, message, &io(message), &[1]);
    assert_ne!(
        panic("index 3 out of range"),
        panic("called unwrap on None")
    );
    assert_eq!(panic("index 3 out of range"), panic("index 4 out of range"));
}

#[test]
fn caller_slots_claim_absorb_and_release() {
    let slots = Slots::new(1);
    let key = 0x1234_5678_9abc_def0;
    assert_eq!(slots.enter(key), Claim::Claimed);
    assert_eq!(slots.enter(key), Claim::Absorbed);
    assert_eq!(slots.enter(key), Claim::Absorbed);
    // Same slot (low bits), another key: the normal path.
    assert_eq!(slots.enter(key ^ (1 << 40)), Claim::Busy);
    assert_eq!(slots.release(key ^ (1 << 40)), 0, "not its slot");
    assert_eq!(slots.release(key), 2);
    assert_eq!(slots.enter(key), Claim::Claimed);
    assert_eq!(slots.enter(key), Claim::Absorbed);
    assert_eq!(slots.sweep(), 1);
    assert_eq!(slots.enter(key), Claim::Claimed);
    assert_eq!(Slots::new(0).passes, 0, "0 is 1: only the first");
}

#[test]
fn caller_slots_pass_the_burst_and_count_only_what_they_absorbed() {
    let slots = Slots::new(3);
    let key = 0x1234_5678_9abc_def0;
    assert_eq!(slots.enter(key), Claim::Claimed);
    assert_eq!(slots.enter(key), Claim::Passed);
    assert_eq!(slots.enter(key), Claim::Passed);
    for _ in 0..5 {
        assert_eq!(slots.enter(key), Claim::Absorbed);
    }
    assert_eq!(slots.release(key), 5, "the passed ones went to the worker");
    assert_eq!(slots.enter(key), Claim::Claimed);
    assert_eq!(slots.enter(key), Claim::Passed);
    assert_eq!(slots.release(key), 0, "closed inside the burst");
    assert_eq!(slots.enter(key), Claim::Claimed);
    for _ in 0..4 {
        slots.enter(key);
    }
    assert_eq!(slots.sweep(), 2);
}

/// A storm of one key with a burst of 3: the claim and two passes reach
/// the worker and are sent, the rest is absorbed; another call site's
/// captures are folded once the burst is used up. Every capture is
/// either sent or in the closing report's count.
#[test]
fn a_burst_is_sent_and_only_what_follows_is_counted() {
    let slots = Arc::new(Slots::new(3));
    let mut agg = Aggregator::new(Duration::from_secs(60), 3, slots.clone());
    let now = Instant::now();
    let (key, other) = (0x1234_5678_9abc_def0, 0x0fed_cba9_8765_4321);
    let mut captures = 0;
    let mut queued = Vec::new();
    for _ in 0..10 {
        captures += 1;
        match slots.enter(key) {
            Claim::Claimed => queued.push(true),
            Claim::Passed => queued.push(false),
            Claim::Absorbed => {}
            Claim::Busy => panic!("the slot is free"),
        }
    }
    assert_eq!(queued, [true, false, false]);
    let mut individually = 0;
    let mut window = None;
    for claimed in queued {
        assert!(!agg.fold_raw(key, now), "inside the burst: processed");
        let w = sent(agg.offer(error("aa", "boom 1"), None, Some(key), claimed, now));
        assert_eq!(w.opened, window.is_none());
        window = Some(w.key);
        individually += 1;
    }
    // The burst is used up: another call site's captures are held.
    captures += 2;
    assert!(!agg.fold_raw(other, now), "unknown key: process it");
    assert!(matches!(
        agg.offer(error("aa", "boom 2"), None, Some(other), false, now),
        Offer::Folded { discard: None }
    ));
    assert!(agg.fold_raw(other, now));
    assert!(agg.fold_raw(key, now), "a late pass of a used-up burst");
    captures += 1;
    agg.close_all();
    let closed = agg.take_ready().pop().expect("closed");
    assert_eq!((closed.absorbed, closed.held), (7, 3));
    assert_eq!(individually + closed.report.count, captures);
    assert_eq!(closed.report.message, "boom 1", "a copy of the first");
    assert_eq!(slots.enter(key), Claim::Claimed, "closing frees the slot");
}

#[test]
fn a_burst_report_over_the_rate_limit_is_held_for_the_count() {
    let mut agg = Aggregator::new(Duration::from_secs(60), 2, Arc::new(Slots::new(2)));
    let now = Instant::now();
    let first = sent(agg.offer(error("aa", "e 1"), None, None, false, now));
    let second = sent(agg.offer(error("aa", "e 2"), None, None, false, now));
    assert_eq!((first.opened, second.opened), (true, false));
    assert_eq!(first.key, second.key);
    assert_eq!(agg.hold(second.key, None), Ok(None));
    assert_eq!(agg.hold(12345, Some("f".into())), Err(Some("f".into())));
    agg.close_all();
    assert_eq!(agg.take_ready().pop().expect("closed").report.count, 1);
}

#[test]
fn first_is_sent_repeats_counted_and_one_report_closes_the_window() {
    let slots = Arc::new(Slots::new(1));
    let mut agg = Aggregator::new(Duration::from_secs(60), 1, slots.clone());
    let now = Instant::now();
    let key = 0x1234_5678_9abc_def0;
    assert_eq!(slots.enter(key), Claim::Claimed);
    assert_eq!(slots.enter(key), Claim::Absorbed);
    let first = report("00000000000000aa");
    let first_id = first.id;
    assert!(sent(agg.offer(first, None, Some(key), true, now)).opened);
    assert_eq!(slots.enter(key), Claim::Absorbed);
    // Another call site with the same fingerprint, folded by raw key.
    let other = 0x0fed_cba9_8765_4321;
    assert!(!agg.fold_raw(other, now), "unknown key: process it");
    assert!(matches!(
        agg.offer(report("00000000000000aa"), None, Some(other), false, now),
        Offer::Folded { discard: None }
    ));
    assert!(agg.fold_raw(other, now));
    assert!(sent(agg.offer(report("00000000000000bb"), None, None, false, now)).opened);
    assert_eq!(agg.next_deadline(), Some(now + Duration::from_secs(60)));
    agg.close_due(now + Duration::from_secs(59));
    assert!(agg.take_ready().is_empty());
    agg.close_due(now + Duration::from_secs(60));
    let ready = agg.take_ready();
    assert_eq!(
        ready.len(),
        1,
        "bb had no repeats: nothing to close it with"
    );
    // two absorbed by the slot + one folded by fingerprint + one by raw key
    assert_eq!(ready[0].report.count, 4);
    assert_ne!(ready[0].report.id, first_id);
    // Two absorbed in the slot, two held (folded on the worker).
    assert_eq!((ready[0].absorbed, ready[0].held), (2, 2));
    assert_eq!(slots.enter(key), Claim::Claimed, "closing frees the slot");
    let later = now + Duration::from_secs(61);
    assert!(sent(agg.offer(report("00000000000000aa"), None, Some(key), true, later)).opened);
}

#[test]
fn a_window_keeps_one_repeats_spool_file_and_lets_the_others_go() {
    let mut agg = Aggregator::new(Duration::from_secs(60), 1, Arc::new(Slots::new(1)));
    let now = Instant::now();
    let file = |n: &str| Some(PathBuf::from(n));
    assert!(matches!(
        agg.offer(report("00000000000000aa"), file("a"), None, false, now),
        Offer::Send(_, Some(_), Some(_))
    ));
    assert!(matches!(
        agg.offer(report("00000000000000aa"), file("b"), None, false, now),
        Offer::Folded { discard: None }
    ));
    match agg.offer(report("00000000000000aa"), file("c"), None, false, now) {
        Offer::Folded {
            discard: Some(path),
        } => assert_eq!(path, PathBuf::from("c")),
        _ => panic!("a second file is not needed"),
    }
    agg.close_all();
    let closed = agg.take_ready().pop().expect("closed");
    assert_eq!(closed.held_file, file("b"));
    assert_eq!((closed.held, closed.report.count), (1, 2));
}

#[test]
fn a_forgotten_window_returns_what_its_slots_absorbed() {
    let slots = Arc::new(Slots::new(2));
    let mut agg = Aggregator::new(Duration::from_secs(60), 2, slots.clone());
    let key = 42 << 8;
    assert_eq!(slots.enter(key), Claim::Claimed);
    assert_eq!(slots.enter(key), Claim::Passed);
    assert_eq!(slots.enter(key), Claim::Absorbed);
    let first = report("00000000000000cc");
    let window = sent(agg.offer(first, None, Some(key), true, Instant::now()));
    assert_eq!(agg.forget(window.key), 1, "the passed one is on its way");
    assert_eq!(agg.next_deadline(), None);
    assert_eq!(slots.enter(key), Claim::Claimed, "the slot is free again");
}

#[test]
fn zero_window_sends_everything() {
    let mut agg = Aggregator::new(Duration::ZERO, 10, Arc::new(Slots::new(10)));
    for _ in 0..30 {
        assert!(matches!(
            agg.offer(
                report("00000000000000aa"),
                None,
                Some(1),
                false,
                Instant::now()
            ),
            Offer::Send(_, _, None)
        ));
    }
}

#[test]
fn groups_are_bounded_and_evicted_windows_still_report() {
    let mut agg = Aggregator::new(Duration::from_secs(60), 1, Arc::new(Slots::new(1)));
    let now = Instant::now();
    for i in 0..(MAX_WINDOWS as u64 + 10) {
        let group = format!("{i:016x}");
        let at = now + Duration::from_millis(i);
        let _ = agg.offer(report(&group), None, None, false, at);
        let _ = agg.offer(report(&group), None, None, false, at);
    }
    assert!(agg.groups.len() <= MAX_WINDOWS);
    assert_eq!(agg.take_ready().len(), 10);
    agg.close_all();
    assert_eq!(agg.take_ready().len(), MAX_WINDOWS);
}

#[test]
fn rate_limiter_allows_a_minute_then_refills() {
    let mut limiter = RateLimiter::new(60);
    let start = limiter.last;
    let allowed = (0..100).filter(|_| limiter.allow(start)).count();
    assert_eq!(allowed, 60);
    assert!(!limiter.allow(start + Duration::from_millis(500)));
    assert!(limiter.allow(start + Duration::from_millis(1100)));
    let mut unlimited = RateLimiter::new(0);
    assert!((0..10_000).all(|_| unlimited.allow(start)));
}
