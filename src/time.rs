//! RFC 3339 report timestamps (calendar arithmetic by hand) and HTTP dates.
use std::time::{SystemTime, UNIX_EPOCH};

/// Formats `t` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, milliseconds). The
/// date and time of day are formatted once per second per thread (a
/// breadcrumb is stamped on every log line).
pub(crate) fn rfc3339_millis(t: SystemTime) -> String {
    thread_local! {
        static SECOND: std::cell::RefCell<(u64, String)> =
            const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let dur = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = dur.as_secs();
    let millis = dur.subsec_millis();
    let format_second = || {
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        )
    };
    let mut out = String::with_capacity(24);
    let cached = SECOND.try_with(|second| {
        let mut second = second.borrow_mut();
        if second.0 != secs {
            *second = (secs, format_second());
        }
        out.push_str(&second.1);
    });
    if cached.is_err() {
        out.push_str(&format_second());
    }
    let millis = [
        b'0' + (millis / 100) as u8,
        b'0' + (millis / 10 % 10) as u8,
        b'0' + (millis % 10) as u8,
    ];
    out.extend(millis.iter().map(|&b| b as char));
    out.push('Z');
    out
}

/// Days since 1970-01-01 to a (year, month, day) civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date (the inverse of `civil_from_days`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn to_system_time(days: i64, secs_of_day: u64, nanos: u32) -> Option<SystemTime> {
    let secs = u64::try_from(days)
        .ok()?
        .checked_mul(86_400)?
        .checked_add(secs_of_day)?;
    UNIX_EPOCH.checked_add(std::time::Duration::new(secs, nanos))
}

/// Parses the `rfc3339_millis` form (`2026-11-25T12:37:17.438Z`) back.
pub(crate) fn parse_rfc3339_millis(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    if !s.is_ascii() {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    to_system_time(days, u64::from(h * 3600 + mi * 60 + se), ms * 1_000_000)
}

/// Parses an HTTP date in any of the three forms RFC 9110 asks recipients
/// to accept, all in GMT: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`),
/// RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`; a two-digit year below 70 is
/// 20xx) and asctime (`Sun Nov  6 08:49:37 1994`).
///
/// The `httpdate` crate reads the three forms exactly; an IMF-fixdate it
/// refuses is then read field by field (see [`parse_loose_imf_fixdate`]).
pub(crate) fn parse_http_date(s: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(s)
        .ok()
        .or_else(|| parse_loose_imf_fixdate(s))
}

/// Reads an IMF-fixdate field by field, separated by any whitespace: the
/// weekday is not checked, the month's case does not matter, a day may have
/// one digit, a second may be 60 and a day past the month's end runs into
/// the next month (`31 Feb` is 3 March). The year is 1970 to 9999.
fn parse_loose_imf_fixdate(s: &str) -> Option<SystemTime> {
    let mut parts = s.split_whitespace();
    let _weekday = parts.next()?;
    let day: u32 = parts.next()?.parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = parts.next()?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))? as u32 + 1;
    let year: i64 = parts.next()?.parse().ok()?;
    if !(1970..=9999).contains(&year) {
        return None;
    }
    let mut hms = parts.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    to_system_time(
        days_from_civil(year, month, day),
        h * 3600 + m * 60 + sec,
        0,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_123); // leap day 2000
        assert_eq!(rfc3339_millis(t), "2000-02-29T00:00:00.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(rfc3339_millis(t), "2026-11-18T11:06:40.000Z");
    }

    #[test]
    fn the_second_formatted_once_serves_every_millisecond_in_it_and_no_other() {
        let second = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        for (ms, expected) in [
            (7i64, "2026-11-18T11:06:40.007Z"),
            (999, "2026-11-18T11:06:40.999Z"),
            (1_000, "2026-11-18T11:06:41.000Z"),
            (-1_000, "2026-11-18T11:06:39.000Z"),
            (42, "2026-11-18T11:06:40.042Z"),
        ] {
            let t = if ms < 0 {
                second - Duration::from_millis(ms.unsigned_abs())
            } else {
                second + Duration::from_millis(ms as u64)
            };
            assert_eq!(rfc3339_millis(t), expected);
        }
    }

    #[test]
    fn parses_what_it_formats_and_http_dates() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        assert_eq!(parse_rfc3339_millis(&rfc3339_millis(t)), Some(t));
        assert_eq!(parse_rfc3339_millis("2026-13-01T00:00:00.000Z"), None);
        assert_eq!(
            parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(1_445_412_480))
        );
        assert_eq!(parse_http_date("Wed, 21 Foo 2015 07:28:00 GMT"), None);
        assert_eq!(parse_http_date("120"), None);
    }

    #[test]
    fn http_dates_parse_in_all_three_forms() {
        let at = Some(UNIX_EPOCH + Duration::from_secs(784_111_777));
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), at);
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), at);
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), at);
        // RFC 850's two-digit years below 70 are in this century.
        assert_eq!(
            parse_http_date("Tuesday, 31-Dec-69 23:59:59 GMT"),
            parse_http_date("Tue, 31 Dec 2069 23:59:59 GMT")
        );
        assert!(parse_http_date("Tue, 31 Dec 2069 23:59:59 GMT").is_some());
        for wrong in [
            "Sunday, 06-Nov-94 08:49:37 UTC",
            "Sun Nov  6 08:49:37 94",
            "Sun Nov 36 08:49:37 1994",
            "Sunday, 06-Nov-94",
        ] {
            assert_eq!(parse_http_date(wrong), None, "{wrong:?}");
        }
    }

    #[test]
    fn imf_fixdates_are_read_loosely_as_before() {
        let at = Some(UNIX_EPOCH + Duration::from_secs(784_111_777));
        // A wrong weekday, a lowercase month, a one-digit day, extra spaces.
        assert_eq!(parse_http_date("Mon, 06 Nov 1994 08:49:37 GMT"), at);
        assert_eq!(parse_http_date("Sun, 06 nov 1994 08:49:37 GMT"), at);
        assert_eq!(parse_http_date("Sun, 6 Nov 1994 08:49:37 GMT"), at);
        assert_eq!(parse_http_date("Sun,  06 Nov 1994  08:49:37 GMT"), at);
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:60 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(784_111_800))
        );
        assert_eq!(parse_http_date("Sun, 06 Nov 1969 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC"), None);
    }
}
