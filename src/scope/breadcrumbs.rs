//! Breadcrumbs: a bounded ring shared by snapshots without copying.
//!
//! A hub keeps each breadcrumb as a [`Crumb`]: what the caller had at hand
//! (a clock reading, static names), so adding one costs a node and the
//! caller's own strings. Formatting the time, owning the names and building
//! the data map happen when a report is built, on the worker.
use std::borrow::Cow;
use std::time::SystemTime;

use super::*;

/// A breadcrumb as a hub keeps it.
#[derive(Clone, Debug)]
pub(crate) struct Crumb {
    pub(crate) at: Stamp,
    pub(crate) category: Option<Cow<'static, str>>,
    pub(crate) message: String,
    pub(crate) level: Level,
    /// In the order given; a later duplicate key wins, as in a map.
    pub(crate) data: Vec<(Cow<'static, str>, Value)>,
}

/// When a breadcrumb happened: the caller's text, or a clock reading
/// formatted later.
#[derive(Clone, Debug)]
pub(crate) enum Stamp {
    Text(String),
    At(SystemTime),
}

impl Crumb {
    /// A breadcrumb stamped now (a static `category` is not copied).
    pub(crate) fn now(message: String, category: Option<Cow<'static, str>>, level: Level) -> Self {
        Crumb {
            at: Stamp::At(SystemTime::now()),
            category,
            message,
            level,
            data: Vec::new(),
        }
    }

    /// Cuts what is over the breadcrumb limits: the message, the category,
    /// the number of data entries and each long value.
    pub(crate) fn bound(&mut self) {
        limits::truncate(&mut self.message, limits::MAX_BREADCRUMB_MESSAGE_BYTES);
        if let Some(category) = &mut self.category {
            if category.len() > limits::MAX_NAME_BYTES {
                limits::truncate(category.to_mut(), limits::MAX_NAME_BYTES);
            }
        }
        self.data.truncate(limits::MAX_PARTS);
        for (_, value) in &mut self.data {
            // Only a string or a nested value can be long: scalars are not
            // written out to be measured.
            let long = match value {
                Value::Null | Value::Bool(_) | Value::Number(_) => false,
                // Escaping at most doubles a short string's text.
                Value::String(s) => 2 * s.len() + 2 > limits::MAX_EXTRA_BYTES,
                Value::Array(_) | Value::Object(_) => true,
            };
            if !long {
                continue;
            }
            let json = value.to_string();
            if json.len() > limits::MAX_EXTRA_BYTES {
                let mut cut = json;
                limits::truncate(&mut cut, limits::MAX_EXTRA_BYTES);
                *value = Value::String(cut);
            }
        }
    }

    /// The breadcrumb as reports carry it.
    pub(crate) fn to_breadcrumb(&self) -> Breadcrumb {
        let timestamp = match &self.at {
            Stamp::Text(text) => text.clone(),
            Stamp::At(at) => crate::time::rfc3339_millis(*at),
        };
        Breadcrumb {
            timestamp,
            category: self.category.as_deref().map(str::to_owned),
            message: self.message.clone(),
            level: self.level,
            data: self
                .data
                .iter()
                .map(|(key, value)| (key.as_ref().to_owned(), value.clone()))
                .collect(),
        }
    }
}

impl From<Breadcrumb> for Crumb {
    fn from(crumb: Breadcrumb) -> Self {
        Crumb {
            at: Stamp::Text(crumb.timestamp),
            category: crumb.category.map(Cow::Owned),
            message: crumb.message,
            level: crumb.level,
            data: crumb
                .data
                .into_iter()
                .map(|(key, value)| (Cow::Owned(key), value))
                .collect(),
        }
    }
}

/// One breadcrumb in a hub's ring: newest first, sharing older nodes.
pub(crate) struct CrumbNode {
    pub(super) crumb: Crumb,
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

/// The breadcrumb ring: pushing is one allocation, a snapshot is one `Arc`
/// clone, and memory stays under twice the configured maximum.
#[derive(Clone, Default)]
pub(super) struct Crumbs {
    pub(super) newest: Option<Arc<CrumbNode>>,
    pub(super) len: usize,
}

impl Crumbs {
    pub(super) fn push(&mut self, crumb: Crumb, max: usize) {
        if max == 0 {
            return;
        }
        self.newest = Some(Arc::new(CrumbNode {
            crumb,
            older: self.newest.take(),
        }));
        self.len += 1;
        if self.len >= 2 * max {
            if !self.cut_in_place(max) {
                self.rebuild(max);
            }
            self.len = max;
        }
    }

    /// Drops all but the newest `max` nodes by unlinking the older ones,
    /// when no snapshot shares those `max` nodes. `false` (and nothing
    /// changed) when one does.
    fn cut_in_place(&mut self, max: usize) -> bool {
        let Some(mut node) = self.newest.as_mut().and_then(Arc::get_mut) else {
            return false;
        };
        for _ in 1..max {
            match node.older.as_mut().and_then(Arc::get_mut) {
                Some(older) => node = older,
                None => return false,
            }
        }
        drop(node.older.take());
        true
    }

    /// Copies the newest `max` breadcrumbs into a chain of their own,
    /// leaving the nodes a snapshot holds to it.
    fn rebuild(&mut self, max: usize) {
        let keep: Vec<Crumb> = iter_crumbs(self.newest.as_ref(), max).cloned().collect();
        self.newest = None;
        for crumb in keep.into_iter().rev() {
            self.newest = Some(Arc::new(CrumbNode {
                crumb,
                older: self.newest.take(),
            }));
        }
    }
}

/// The newest `max` breadcrumbs from `newest`, newest first.
pub(super) fn iter_crumbs(
    newest: Option<&Arc<CrumbNode>>,
    max: usize,
) -> impl Iterator<Item = &Crumb> + '_ {
    let mut node = newest.map(|n| &**n);
    std::iter::from_fn(move || {
        let current = node?;
        node = current.older.as_deref();
        Some(&current.crumb)
    })
    .take(max)
}
