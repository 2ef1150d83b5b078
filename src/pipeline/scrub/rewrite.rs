//! Rewriting text in place, one rule at a time.
use super::*;

/// Replaces a value under a secret key; `null` and `[redacted]` stay.
pub(super) fn redact_value(value: &mut Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) if s == REDACTED => false,
        _ => {
            *value = Value::String(REDACTED.to_owned());
            true
        }
    }
}

/// Builds the rewritten text lazily: nothing is allocated until the first
/// replacement. Replacements must come in increasing, non-overlapping order;
/// one that does not (or that would cut inside a character) is ignored, so
/// a scanner bug can leave a secret but never panic or garble the text.
pub(super) struct Rewriter<'a> {
    pub(super) src: &'a str,
    pub(super) out: Option<String>,
    /// Bytes of `src` up to here are accounted for in `out`.
    pub(super) done: usize,
}

impl<'a> Rewriter<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        Rewriter {
            src,
            out: None,
            done: 0,
        }
    }

    /// Replaces `src[start..end]` with `with`.
    pub(super) fn replace(&mut self, start: usize, end: usize, with: &str) {
        if start < self.done
            || end < start
            || !self.src.is_char_boundary(start)
            || !self.src.is_char_boundary(end)
        {
            return;
        }
        let (Some(kept), Some(old)) = (self.src.get(self.done..start), self.src.get(start..end))
        else {
            return;
        };
        if old == with {
            return;
        }
        let capacity = self.src.len() + with.len();
        let out = self
            .out
            .get_or_insert_with(|| String::with_capacity(capacity));
        out.push_str(kept);
        out.push_str(with);
        self.done = end;
    }

    /// The rewritten text, or `None` when nothing was replaced.
    pub(super) fn finish(self) -> Option<String> {
        let mut out = self.out?;
        out.push_str(self.src.get(self.done..).unwrap_or_default());
        Some(out)
    }
}

/// Runs one rule over `text`, replacing it when the rule changed something.
pub(super) fn rewrite(text: &mut String, rule: impl FnOnce(&mut Rewriter<'_>)) -> bool {
    let mut rw = Rewriter::new(text);
    rule(&mut rw);
    match rw.finish() {
        Some(new) => {
            *text = new;
            true
        }
        None => false,
    }
}
