//! The re-entry guard: marks a thread as inside crashbox, so a panic raised
//! while crashbox captures (a user's `Display` that panics, say) or a
//! capture made from crashbox's own threads is never captured in turn.
use std::cell::Cell;

thread_local! {
    static IN_CAPTURE: Cell<bool> = const { Cell::new(false) };
}

/// Marks the thread as inside crashbox; `None` when it already is, so a panic
/// raised while capturing is never captured in turn.
pub(crate) struct Reentry(());

impl Reentry {
    pub(crate) fn enter() -> Option<Reentry> {
        let was = IN_CAPTURE.try_with(|c| c.replace(true)).unwrap_or(true);
        // `then`, not `then_some`: a `Reentry` built and dropped would clear the flag.
        (!was).then(|| Reentry(()))
    }

    /// Whether this thread is inside a crashbox capture.
    pub(crate) fn active() -> bool {
        IN_CAPTURE.try_with(Cell::get).unwrap_or(true)
    }
}

impl Drop for Reentry {
    fn drop(&mut self) {
        let _ = IN_CAPTURE.try_with(|c| c.set(false));
    }
}

#[cfg(test)]
mod tests {
    use super::Reentry;

    #[test]
    fn a_refused_nested_entry_keeps_the_thread_marked() {
        assert!(!Reentry::active());
        let outer = Reentry::enter().expect("first entry");
        assert!(Reentry::enter().is_none(), "nested entry refused");
        assert!(
            Reentry::active(),
            "the refused entry must not clear the mark"
        );
        assert!(Reentry::enter().is_none());
        drop(outer);
        assert!(!Reentry::active());
    }
}
