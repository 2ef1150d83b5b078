//! Breadcrumbs: a bounded ring shared by snapshots without copying.
use super::*;

/// One breadcrumb in a hub's ring: newest first, sharing older nodes.
pub(crate) struct CrumbNode {
    pub(super) crumb: Arc<Breadcrumb>,
    pub(super) older: Option<Arc<CrumbNode>>,
}

impl Drop for CrumbNode {
    // Unlink iteratively so a long chain never recurses deeply.
    fn drop(&mut self) {
        let mut next = self.older.take();
        while let Some(node) = next {
            match Arc::try_unwrap(node) {
                Ok(mut node) => next = node.older.take(),
                Err(_) => break,
            }
        }
    }
}

/// The breadcrumb ring: pushing is O(1), a snapshot is one `Arc` clone, and
/// memory stays under twice the configured maximum.
#[derive(Clone, Default)]
pub(super) struct Crumbs {
    pub(super) newest: Option<Arc<CrumbNode>>,
    pub(super) len: usize,
}

impl Crumbs {
    pub(super) fn push(&mut self, crumb: Breadcrumb, max: usize) {
        if max == 0 {
            return;
        }
        self.newest = Some(Arc::new(CrumbNode {
            crumb: Arc::new(crumb),
            older: self.newest.take(),
        }));
        self.len += 1;
        if self.len >= 2 * max {
            let keep: Vec<Arc<Breadcrumb>> = iter_crumbs(self.newest.as_ref(), max).collect();
            self.newest = None;
            for crumb in keep.into_iter().rev() {
                self.newest = Some(Arc::new(CrumbNode {
                    crumb,
                    older: self.newest.take(),
                }));
            }
            self.len = max;
        }
    }
}

pub(super) fn iter_crumbs(
    newest: Option<&Arc<CrumbNode>>,
    max: usize,
) -> impl Iterator<Item = Arc<Breadcrumb>> + '_ {
    let mut node = newest.map(|n| &**n);
    std::iter::from_fn(move || {
        let current = node?;
        node = current.older.as_deref();
        Some(current.crumb.clone())
    })
    .take(max)
}
