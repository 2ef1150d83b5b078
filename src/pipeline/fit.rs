//! Keeps a serialized report under [`MAX_REPORT_BYTES`], dropping the least
//! useful parts first: breadcrumbs, then extra, then frames from the middle
//! of the stack, then tags.
use crate::limits::MAX_REPORT_BYTES;
use crate::report::Report;

fn size(report: &Report) -> usize {
    serde_json::to_vec(report)
        .map(|v| v.len())
        .unwrap_or(usize::MAX)
}

fn note(report: &mut Report, what: &str) {
    if !report.truncated.iter().any(|t| t == what) {
        report.truncated.push(what.to_owned());
    }
}

pub(crate) fn fit(report: &mut Report) {
    while size(report) > MAX_REPORT_BYTES {
        if !report.breadcrumbs.is_empty() {
            let keep = report.breadcrumbs.len() / 2;
            report.breadcrumbs.drain(..report.breadcrumbs.len() - keep);
            note(report, "breadcrumbs");
        } else if !report.extra.is_empty() {
            report.extra.clear();
            note(report, "extra");
        } else if report.frames.len() > 16 {
            let keep_each_end = report.frames.len() / 4;
            let end = report.frames.len() - keep_each_end;
            report.frames.drain(keep_each_end..end);
            note(report, "frames");
        } else if !report.tags.is_empty() {
            report.tags.clear();
            note(report, "tags");
        } else {
            // Only the capped message and chain remain; they fit by construction.
            report.exceptions.truncate(4);
            note(report, "exceptions");
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Breadcrumb, Context, Kind, Level, ReportId, Sdk, ThreadInfo};
    use std::collections::BTreeMap;

    fn report() -> Report {
        Report {
            id: ReportId::random(),
            timestamp: "2026-01-01T00:00:00.000Z".into(),
            level: Level::Error,
            kind: Kind::Message,
            message: "m".into(),
            exceptions: vec![],
            frames: vec![],
            location: None,
            thread: ThreadInfo { name: None, id: 1 },
            tags: BTreeMap::new(),
            extra: BTreeMap::new(),
            user: None,
            breadcrumbs: vec![],
            context: Context::default(),
            release: None,
            environment: "test".into(),
            sdk: Sdk::default(),
            fingerprint: None,
            truncated: vec![],
        }
    }

    #[test]
    fn oversized_reports_shrink_below_the_limit_and_say_so() {
        let mut r = report();
        for i in 0..200 {
            r.extra.insert(
                format!("k{i}"),
                serde_json::Value::String("x".repeat(16_000)),
            );
        }
        for _ in 0..100 {
            r.breadcrumbs.push(Breadcrumb::new("y".repeat(1000)));
        }
        fit(&mut r);
        assert!(size(&r) <= MAX_REPORT_BYTES);
        assert!(r.truncated.contains(&"extra".to_owned()));
        assert!(r.truncated.contains(&"breadcrumbs".to_owned()));
        assert_eq!(r.message, "m");
    }

    #[test]
    fn small_reports_are_untouched() {
        let mut r = report();
        r.breadcrumbs.push(Breadcrumb::new("kept"));
        let before = r.clone();
        fit(&mut r);
        assert_eq!(r, before);
    }
}
