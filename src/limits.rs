//! Size limits, so one report stays small however large its inputs are.
//! Every cut value ends with `…` and is named in the report's `truncated` list.

/// Bytes kept of a report's `message`.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;
/// Bytes kept of each exception's message.
pub const MAX_EXCEPTION_MESSAGE_BYTES: usize = 4 * 1024;
/// Links of a source chain kept (a looping chain stops at the first repeat).
pub const MAX_CHAIN: usize = 32;
/// Stack frames kept, innermost first.
pub const MAX_FRAMES: usize = 128;
/// Bytes kept of a tag key (also extra keys).
pub const MAX_TAG_KEY_BYTES: usize = 128;
/// Bytes kept of a tag value.
pub const MAX_TAG_VALUE_BYTES: usize = 1024;
/// JSON bytes kept of one extra value.
pub const MAX_EXTRA_BYTES: usize = 16 * 1024;
/// Bytes kept of a breadcrumb message.
pub const MAX_BREADCRUMB_MESSAGE_BYTES: usize = 1024;
/// Bytes kept of a breadcrumb category, a user field, a fingerprint part or a thread name.
pub const MAX_NAME_BYTES: usize = 256;
/// Parts kept of a fingerprint, and data entries kept per breadcrumb.
pub const MAX_PARTS: usize = 32;
/// Breadcrumbs kept unless [`Options::max_breadcrumbs`](crate::Options::max_breadcrumbs) says otherwise.
pub const DEFAULT_MAX_BREADCRUMBS: usize = 100;
/// The largest serialized report; bigger ones lose breadcrumbs, extra, then frames.
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;

/// Raw addresses walked on the caller's thread: room for the trimmed
/// machinery frames on top of [`MAX_FRAMES`].
pub(crate) const MAX_RAW_FRAMES: usize = MAX_FRAMES + 32;

/// Cuts `s` to at most `max` bytes on a character boundary, appending `…`.
/// Returns whether it cut.
pub(crate) fn truncate(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
    true
}

/// A `fmt::Write` sink that keeps at most `limit` bytes and then refuses more,
/// so formatting a huge `Display` costs bounded memory and time.
pub(crate) struct BoundedWriter {
    pub buf: String,
    limit: usize,
    pub truncated: bool,
}

impl BoundedWriter {
    pub(crate) fn new(limit: usize) -> Self {
        BoundedWriter {
            buf: String::new(),
            limit,
            truncated: false,
        }
    }
}

impl std::fmt::Write for BoundedWriter {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.truncated {
            return Err(std::fmt::Error);
        }
        let room = self.limit.saturating_sub(self.buf.len());
        if s.len() <= room {
            self.buf.push_str(s);
            return Ok(());
        }
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.buf.push_str(&s[..end]);
        self.buf.push('…');
        self.truncated = true;
        // Stop the formatter: nothing more will be kept.
        Err(std::fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write;

    #[test]
    fn truncate_respects_char_boundaries() {
        let mut s = "ééé".to_owned(); // 6 bytes
        assert!(truncate(&mut s, 3));
        assert_eq!(s, "é…");
        let mut short = "ok".to_owned();
        assert!(!truncate(&mut short, 3));
        assert_eq!(short, "ok");
    }

    #[test]
    fn bounded_writer_stops_at_limit() {
        let mut w = BoundedWriter::new(5);
        let text = "abcdefgh";
        assert!(write!(w, "{text}").is_err());
        assert_eq!(w.buf, "abcde…");
        assert!(w.truncated);
    }
}
