//! What collectors say to slow a sender down, read from their answers'
//! headers: `Retry-After` (seconds or an HTTP date) and Sentry's
//! `X-Sentry-Rate-Limits`. Parsing only: what to do about a limit is each
//! transport's business.
use std::time::{Duration, SystemTime};

/// The longest wait a collector can impose: a wild value must not silence it for good.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(86_400);

/// How long a `Retry-After` value asks to wait: seconds, or an HTTP date in
/// any of its three forms (see [`crate::time::parse_http_date`]), at most
/// [`MAX_WAIT`]. A date in the past is no wait; anything else is `None`.
pub(crate) fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_WAIT));
    }
    let at = crate::time::parse_http_date(value)?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .min(MAX_WAIT),
    )
}

/// The limits an `X-Sentry-Rate-Limits` header sets: entries
/// `SECONDS:CAT;CAT:SCOPE[:REASON]` separated by commas, as
/// `(category, wait)` pairs, `""` standing for every category (an entry
/// with no categories). Waits are at most [`MAX_WAIT`]; entries whose
/// seconds are not a finite, non-negative number are skipped.
pub(crate) fn sentry_rate_limits(header: &str) -> Vec<(&str, Duration)> {
    let mut limits = Vec::new();
    for entry in header.split(',') {
        let mut fields = entry.trim().split(':');
        let Some(Ok(secs)) = fields.next().map(|s| s.trim().parse::<f64>()) else {
            continue;
        };
        // `nan`, `inf` and negative values parse as floats: ignore them.
        if !secs.is_finite() {
            continue;
        }
        let Ok(wait) = Duration::try_from_secs_f64(secs.min(MAX_WAIT.as_secs_f64())) else {
            continue;
        };
        let categories = fields.next().unwrap_or("");
        if categories.is_empty() {
            limits.push(("", wait));
        } else {
            for category in categories.split(';') {
                limits.push((category.trim(), wait));
            }
        }
    }
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds() {
        assert_eq!(retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(retry_after("soon"), None);
        assert_eq!(retry_after(""), None);
    }

    #[test]
    fn retry_after_accepts_an_http_date() {
        let at = SystemTime::now() + Duration::from_secs(120);
        let secs = at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
        let days = secs / 86_400;
        let rem = secs % 86_400;
        // Build the date with the formatter's own civil conversion.
        let stamp = crate::time::rfc3339_millis(
            SystemTime::UNIX_EPOCH + Duration::from_secs(days * 86_400),
        );
        let (y, m, d) = (&stamp[0..4], &stamp[5..7], &stamp[8..10]);
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let month = MONTHS[m.parse::<usize>().unwrap() - 1];
        let date = format!(
            "Mon, {d} {month} {y} {:02}:{:02}:{:02} GMT",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        );
        let wait = retry_after(&date).unwrap();
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
    }

    #[test]
    fn retry_after_dates_are_capped_and_wild_ones_ignored() {
        assert_eq!(retry_after("Fri, 31 Dec 9999 23:59:59 GMT"), Some(MAX_WAIT));
        assert_eq!(retry_after("Fri, 31 Dec 300000000000 23:59:59 GMT"), None);
        assert_eq!(
            retry_after("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("99999999999"), Some(MAX_WAIT));
    }

    #[test]
    fn retry_after_accepts_the_obsolete_date_forms() {
        // RFC 850 and asctime dates wait like the IMF-fixdate they name.
        for date in [
            "Tue, 31 Dec 2069 23:59:59 GMT",
            "Tuesday, 31-Dec-69 23:59:59 GMT",
            "Tue Dec 31 23:59:59 2069",
        ] {
            assert_eq!(retry_after(date), Some(MAX_WAIT), "{date}");
        }
        for date in [
            "Sunday, 06-Nov-94 08:49:37 GMT",
            " Sun Nov  6 08:49:37 1994 ",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(retry_after(date), Some(Duration::ZERO), "{date}");
        }
    }

    #[test]
    fn sentry_rate_limits_name_their_categories() {
        assert_eq!(
            sentry_rate_limits("60:transaction:key, 5:error;default:organization, 30:error:key"),
            [
                ("transaction", Duration::from_secs(60)),
                ("error", Duration::from_secs(5)),
                ("default", Duration::from_secs(5)),
                ("error", Duration::from_secs(30)),
            ]
        );
        assert_eq!(
            sentry_rate_limits("3::organization"),
            [("", Duration::from_secs(3))],
            "an empty category list stands for every category"
        );
        assert_eq!(
            sentry_rate_limits("2.5"),
            [("", Duration::from_millis(2500))]
        );
    }

    #[test]
    fn nonsense_rate_limit_values_are_ignored() {
        assert!(sentry_rate_limits(
            "nan:error, inf:error, -5:error, 1e400:error, abc:error, :error"
        )
        .is_empty());
        assert_eq!(sentry_rate_limits("99999999:error"), [("error", MAX_WAIT)]);
        assert!(sentry_rate_limits("").is_empty());
    }
}
