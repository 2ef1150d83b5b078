//! Dates and back-off headers: HTTP dates, the RFC 3339 report timestamps,
//! `Retry-After` and `X-Sentry-Rate-Limits`. Nothing panics; what is
//! formatted parses back to the same instant; a parsed date agrees field by
//! field with the text; waits never exceed a day.
//!
//! Input: the whole input as text for every parser, and its first 8 bytes
//! as an instant (milliseconds) for the round trips.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crashbox::__fuzz::{
    parse_http_date, parse_rfc3339_millis, retry_after, rfc3339_millis, sentry_rate_limits,
};
use crashbox::{Collector, Dsn};
use libfuzzer_sys::fuzz_target;

/// The longest wait a collector can impose.
const MAX_WAIT: Duration = Duration::from_secs(86_400);
/// 10000-01-01T00:00:00Z: the first instant with a five-digit year.
const YEAR_10000_MS: u64 = 253_402_300_800_000;
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn dsn() -> &'static Dsn {
    static DSN: OnceLock<Dsn> = OnceLock::new();
    DSN.get_or_init(
        || match Collector::parse("sentry+http://fuzzkey@127.0.0.1:9/1") {
            Ok(Collector::Sentry(dsn)) => dsn,
            other => panic!("{other:?}"),
        },
    )
}

/// The canonical text of a valid date's fields, `None` when the fields do
/// not name a real instant one way only (Feb 30, a leap second).
fn canonical(y: u64, mo: u64, d: u64, h: u64, mi: u64, s: u64) -> Option<String> {
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59
    {
        return None;
    }
    Some(format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}"))
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn check_http_date(s: &str) {
    let Some(t) = parse_http_date(s) else {
        return;
    };
    let ms = t
        .duration_since(UNIX_EPOCH)
        .expect("before 1970")
        .as_millis();
    assert!(ms < u128::from(YEAR_10000_MS) + 86_400_000, "{s:?}");
    assert_eq!(ms % 1000, 0, "{s:?}");
    // Field by field, through the other direction of the calendar code
    // (IMF-fixdates only: an RFC 850 date has fewer fields, an asctime date
    // no digits where an IMF-fixdate has its day).
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() < 5 {
        return;
    }
    let (Some(d), Some(y)) = (digits(parts[1]), digits(parts[3])) else {
        return;
    };
    let mo = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(parts[2]))
        .unwrap() as u64
        + 1;
    let hms: Vec<Option<u64>> = parts[4].split(':').map(digits).collect();
    let [Some(h), Some(mi), Some(se)] = hms[..] else {
        return;
    };
    if let Some(expected) = canonical(y, mo, d, h, mi, se) {
        assert_eq!(rfc3339_millis(t), format!("{expected}.000Z"), "{s:?}");
    }
}

fn check_rfc3339(s: &str) {
    let Some(t) = parse_rfc3339_millis(s) else {
        return;
    };
    let text = rfc3339_millis(t);
    assert_eq!(parse_rfc3339_millis(&text), Some(t), "{s:?} -> {text:?}");
    let b = s.as_bytes();
    let n = |r: std::ops::Range<usize>| digits(&s[r]);
    if let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(se), Some(_)) = (
        n(0..4),
        n(5..7),
        n(8..10),
        n(11..13),
        n(14..16),
        n(17..19),
        n(20..23),
    ) {
        if b[13] == b':' && b[16] == b':' && canonical(y, mo, d, h, mi, se).is_some() {
            assert_eq!(text, s, "{s:?}");
        }
    }
}

fn check_retry_after(s: &str) {
    let before = SystemTime::now();
    let wait = retry_after(s);
    let after = SystemTime::now();
    let value = s.trim();
    if let Ok(secs) = value.parse::<u64>() {
        assert_eq!(wait, Some(Duration::from_secs(secs).min(MAX_WAIT)), "{s:?}");
    } else if let Some(at) = parse_http_date(value) {
        let wait = wait.expect("an HTTP date gives a wait");
        let longest = at.duration_since(before).unwrap_or_default().min(MAX_WAIT);
        let shortest = at.duration_since(after).unwrap_or_default().min(MAX_WAIT);
        assert!(shortest <= wait && wait <= longest, "{s:?}: {wait:?}");
    } else {
        assert_eq!(wait, None, "{s:?}");
    }
}

fn check_rate_limits(s: &str, seconds: u64) {
    if let Some(wait) = sentry_rate_limits(dsn(), s) {
        assert!(wait <= MAX_WAIT, "{s:?}: {wait:?}");
    }
    // A window for errors, then anything: the longest window wins.
    let header = format!("{seconds}:error:key,{s}");
    let wait = sentry_rate_limits(dsn(), &header).expect("an error window blocks");
    assert!(wait <= MAX_WAIT, "{header:?}: {wait:?}");
    assert!(
        wait + Duration::from_secs(1) >= Duration::from_secs(seconds),
        "{header:?}: {wait:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let mut head = [0u8; 8];
    let n = data.len().min(8);
    head[..n].copy_from_slice(&data[..n]);
    let raw = u64::from_le_bytes(head);

    // Formatting then parsing gives the same instant back, in both formats.
    let t = UNIX_EPOCH + Duration::from_millis(raw % YEAR_10000_MS);
    let text = rfc3339_millis(t);
    assert_eq!(parse_rfc3339_millis(&text), Some(t), "{text}");
    let (y, mo, d) = (&text[0..4], &text[5..7], &text[8..10]);
    let month = MONTHS[mo.parse::<usize>().unwrap() - 1];
    let http = format!("Thu, {d} {month} {y} {} GMT", &text[11..19]);
    let whole_secs = UNIX_EPOCH + Duration::from_secs((raw % YEAR_10000_MS) / 1000);
    assert_eq!(parse_http_date(&http), Some(whole_secs), "{http}");

    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    check_http_date(s);
    check_rfc3339(s);
    check_retry_after(s);
    check_rate_limits(s, raw % 86_400 + 1);
});
