//! Keeps a serialized report under [`MAX_REPORT_BYTES`], dropping the least
//! useful parts first: breadcrumbs, then extra, then frames from the middle
//! of the stack, then tags.
use crate::limits::MAX_REPORT_BYTES;
use crate::report::Report;

/// Counts what is written, keeping none of it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The length of `value` as JSON, without building the JSON.
fn json_len<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

fn size(report: &Report) -> usize {
    json_len(report)
}

fn note(report: &mut Report, what: &str) {
    if !report.truncated.iter().any(|t| t == what) {
        report.truncated.push(what.to_owned());
    }
}

/// Serializes the report once, then takes away parts while subtracting
/// their sizes (re-serializing a several-MiB report after every step would
/// cost far more than the report is worth).
pub(crate) fn enforce(report: &mut Report) {
    let mut size = size(report);
    if size <= MAX_REPORT_BYTES {
        return;
    }
    // Breadcrumbs, oldest first.
    let mut dropped = false;
    while size > MAX_REPORT_BYTES && !report.breadcrumbs.is_empty() {
        let crumb = report.breadcrumbs.remove(0);
        size = size.saturating_sub(json_len(&crumb) + 1);
        dropped = true;
    }
    if dropped {
        note(report, "breadcrumbs");
    }
    // Extra, largest first.
    let mut by_size: Vec<(usize, String)> = report
        .extra
        .iter()
        .map(|(k, v)| (json_len(k) + json_len(v) + 2, k.clone()))
        .collect();
    by_size.sort();
    while size > MAX_REPORT_BYTES {
        let Some((bytes, key)) = by_size.pop() else {
            break;
        };
        report.extra.remove(&key);
        size = size.saturating_sub(bytes);
        note(report, "extra");
    }
    // Frames from the middle of the stack: the top and the bottom say the most.
    while size > MAX_REPORT_BYTES && report.frames.len() > 16 {
        let frame = report.frames.remove(report.frames.len() / 2);
        size = size.saturating_sub(json_len(&frame) + 1);
        note(report, "frames");
    }
    while size > MAX_REPORT_BYTES {
        let Some((key, value)) = report.tags.pop_last() else {
            break;
        };
        size = size.saturating_sub(json_len(&key) + json_len(&value) + 2);
        note(report, "tags");
    }
    if size > MAX_REPORT_BYTES || self::size(report) > MAX_REPORT_BYTES {
        // Only the capped message and chain remain; a few links always fit.
        report.breadcrumbs.clear();
        report.extra.clear();
        report.tags.clear();
        report.frames.truncate(16);
        report.exceptions.truncate(4);
        report.fingerprint = None;
        note(report, "exceptions");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Breadcrumb;

    #[test]
    fn oversized_reports_shrink_below_the_limit_and_say_so() {
        let mut r = Report::sample("m");
        for i in 0..200 {
            r.extra.insert(
                format!("k{i}"),
                serde_json::Value::String("x".repeat(16_000)),
            );
        }
        for _ in 0..100 {
            r.breadcrumbs.push(Breadcrumb::new("y".repeat(1000)));
        }
        enforce(&mut r);
        assert!(size(&r) <= MAX_REPORT_BYTES);
        assert!(r.truncated.contains(&"extra".to_owned()));
        assert!(r.truncated.contains(&"breadcrumbs".to_owned()));
        assert_eq!(r.message, "m");
    }

    #[test]
    fn small_reports_are_untouched() {
        let mut r = Report::sample("m");
        r.breadcrumbs.push(Breadcrumb::new("kept"));
        let before = r.clone();
        enforce(&mut r);
        assert_eq!(r, before);
    }
}
