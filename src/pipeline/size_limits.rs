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

/// What one field may take as JSON besides its strings: its key, quotes,
/// colon and comma, or a number, `null`, `true`, an id.
const FIELD: usize = 64;

/// The most a string takes as JSON: every byte may be escaped as `\u001f`.
fn text(s: &str) -> usize {
    6 * s.len() + 2
}

fn opt_text<S: AsRef<str>>(s: &Option<S>) -> usize {
    s.as_ref().map_or(0, |s| text(s.as_ref()))
}

fn value(v: &serde_json::Value) -> usize {
    use serde_json::Value;
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => FIELD,
        Value::String(s) => text(s),
        Value::Array(items) => FIELD + items.iter().map(value).sum::<usize>(),
        Value::Object(map) => FIELD + map.iter().map(|(k, v)| text(k) + value(v)).sum::<usize>(),
    }
}

fn map<V>(map: &std::collections::BTreeMap<String, V>, each: impl Fn(&V) -> usize) -> usize {
    FIELD
        + map
            .iter()
            .map(|(k, v)| FIELD + text(k) + each(v))
            .sum::<usize>()
}

/// An upper bound of the report's length as JSON, from its strings'
/// lengths and [`FIELD`] for everything else: a walk over the report,
/// without formatting or escaping anything. Every type is taken apart
/// field by field, so a field added later cannot be left out unnoticed.
fn upper_bound(report: &Report) -> usize {
    use crate::report::{
        Breadcrumb, Context, ExceptionInfo, Frame, Image, Location, Sdk, ThreadInfo, User,
    };
    let Report {
        id: _,
        timestamp,
        level: _,
        kind: _,
        message,
        exceptions,
        frames,
        location,
        thread: ThreadInfo { name, id: _ },
        tags,
        extra,
        user,
        breadcrumbs,
        context:
            Context {
                os,
                os_version,
                kernel,
                arch,
                hostname,
                pid: _,
                executable,
                rustc,
                cpu_count: _,
            },
        release,
        environment,
        sdk: Sdk {
            name: sdk_name,
            version,
        },
        fingerprint,
        group,
        count: _,
        truncated,
        images,
    } = report;
    let exceptions: usize = exceptions
        .iter()
        .map(|ExceptionInfo { ty, message }| 3 * FIELD + text(ty) + text(message))
        .sum();
    let frames: usize = frames
        .iter()
        .map(
            |Frame {
                 function,
                 file,
                 line: _,
                 column: _,
                 in_app: _,
                 address,
             }| 7 * FIELD + opt_text(function) + opt_text(file) + text(address),
        )
        .sum();
    let location = location.as_ref().map_or(
        0,
        |Location {
             file,
             line: _,
             column: _,
         }| 4 * FIELD + text(file),
    );
    let user = user.as_ref().map_or(
        0,
        |User {
             id,
             username,
             email,
             ip_address,
         }| {
            5 * FIELD + opt_text(id) + opt_text(username) + opt_text(email) + opt_text(ip_address)
        },
    );
    let breadcrumbs: usize = breadcrumbs
        .iter()
        .map(
            |Breadcrumb {
                 timestamp,
                 category,
                 message,
                 level: _,
                 data,
             }| {
                6 * FIELD + text(timestamp) + opt_text(category) + text(message) + map(data, value)
            },
        )
        .sum();
    let images: usize = images
        .iter()
        .map(
            |Image {
                 ty,
                 code_file,
                 code_id,
                 debug_id,
                 image_addr,
                 image_size: _,
             }| {
                7 * FIELD
                    + text(ty)
                    + text(code_file)
                    + opt_text(code_id)
                    + opt_text(debug_id)
                    + text(image_addr)
            },
        )
        .sum();
    let context = 10 * FIELD
        + opt_text(os)
        + opt_text(os_version)
        + opt_text(kernel)
        + text(arch)
        + opt_text(hostname)
        + opt_text(executable)
        + text(rustc);
    let lists: usize = fingerprint
        .iter()
        .flatten()
        .chain(truncated)
        .map(|s| FIELD + text(s))
        .sum();
    32 * FIELD
        + text(timestamp)
        + text(message)
        + exceptions
        + frames
        + location
        + opt_text(name)
        + map(tags, |v| text(v))
        + map(extra, value)
        + user
        + breadcrumbs
        + context
        + opt_text(release)
        + text(environment)
        + text(sdk_name)
        + text(version)
        + text(group)
        + lists
        + images
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
    if upper_bound(report) <= MAX_REPORT_BYTES {
        return;
    }
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

    /// A report with every field filled, and strings that escape to six
    /// bytes each.
    fn full_report(text: &str, items: usize) -> Report {
        use crate::report::{ExceptionInfo, Frame, Location, User};
        let mut r = Report::sample(text);
        r.exceptions = vec![ExceptionInfo::new(text, text); items];
        r.frames = (0..items)
            .map(|i| {
                let mut f = Frame::at_address(format!("{i:#x}"));
                f.function = Some(text.into());
                f.file = Some(text.into());
                f.line = Some(u32::MAX);
                f.column = Some(u32::MAX);
                f
            })
            .collect();
        r.location = Some(Location::new(text, u32::MAX, u32::MAX));
        r.thread.name = Some(text.to_owned());
        r.user = Some(
            User::with_id(text)
                .username(text)
                .email(text)
                .ip_address(text),
        );
        r.release = Some(text.to_owned());
        r.environment = text.to_owned();
        r.fingerprint = Some(vec![text.to_owned(); items]);
        r.truncated = vec![text.to_owned(); items];
        r.count = u64::MAX;
        for i in 0..items {
            r.tags.insert(format!("{text}{i}"), text.to_owned());
            r.extra.insert(
                format!("{text}{i}"),
                serde_json::json!([text, -1.5e300, u64::MAX, null, {text: [true]}]),
            );
            let mut crumb = Breadcrumb::new(text);
            crumb.category = Some(text.to_owned());
            crumb
                .data
                .insert(text.to_owned(), serde_json::json!({text: i64::MIN}));
            r.breadcrumbs.push(crumb);
        }
        r
    }

    #[test]
    fn the_upper_bound_is_never_below_the_json_length() {
        for text in ["", "a", "\u{1f}\u{1}\"", "é\n", &"\u{7}".repeat(300)] {
            for items in [0, 1, 7, 40] {
                let r = full_report(text, items);
                let (bound, exact) = (upper_bound(&r), size(&r));
                assert!(bound >= exact, "{bound} < {exact} for {text:?} x {items}");
            }
        }
        // Not so loose that ordinary reports are counted every time.
        let r = full_report("plain text", 20);
        assert!(upper_bound(&r) < 40 * size(&r));
    }

    #[test]
    fn a_report_the_bound_cannot_clear_is_measured_exactly() {
        // The bound says "maybe too big"; the exact length decides.
        let mut r = Report::sample("m");
        r.extra
            .insert("big".into(), "a".repeat(MAX_REPORT_BYTES / 3).into());
        assert!(upper_bound(&r) > MAX_REPORT_BYTES);
        let before = r.clone();
        enforce(&mut r);
        assert_eq!(r, before, "under the limit: untouched");
        // Escaped, the same length of text is over the limit.
        r.extra
            .insert("big".into(), "\u{1}".repeat(MAX_REPORT_BYTES / 3).into());
        assert!(size(&r) > MAX_REPORT_BYTES);
        enforce(&mut r);
        assert!(size(&r) <= MAX_REPORT_BYTES);
        assert!(r.truncated.contains(&"extra".to_owned()));
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
