//! Scopes: tags, extra data, user, level, fingerprint and breadcrumbs that
//! enrich every report captured while they are in effect.
//!
//! Each thread reports into a *hub*: the process-wide one, or one bound to the
//! thread (by [`testing::capture`](crate::testing::capture) or
//! [`bind`](crate::bind)). A hub publishes its scope as an `Arc`, so a capture
//! takes a snapshot with a few reference-count increments and never waits for
//! a writer. Writers are serialized, so concurrent updates are never lost, and
//! a writer's closure runs without holding the lock that captures take, so a
//! capture inside `configure_scope` cannot deadlock.
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use once_cell::sync::Lazy;
use serde::Serialize;
use serde_json::Value;

use crate::limits;

mod breadcrumbs;
mod hub;
#[cfg(test)]
mod tests;

use crate::report::{Breadcrumb, Level, User};
pub(crate) use breadcrumbs::Crumb;
use breadcrumbs::*;
use hub::*;
pub(crate) use hub::{bind_hub, current_binding, with_current_hub, with_layer, BindGuard, Hub};

/// Data that enriches reports: tags, extra, user, level and fingerprint.
///
/// Obtained through [`configure_scope`](crate::configure_scope) or
/// [`with_scope`](crate::with_scope).
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) extra: BTreeMap<String, Value>,
    pub(crate) user: Option<User>,
    pub(crate) level: Option<Level>,
    pub(crate) fingerprint: Option<Vec<String>>,
    /// Names of values cut to fit the limits, reported with each event.
    pub(crate) truncated: Vec<String>,
}

impl Scope {
    fn note_truncated(&mut self, what: String) {
        if self.truncated.len() < 32 && !self.truncated.contains(&what) {
            self.truncated.push(what);
        }
    }

    /// Sets a tag. Keys are cut to 128 bytes and values to 1 KiB; a cut value
    /// ends with `…` and is listed in the report's `truncated` field.
    ///
    /// ```
    /// crashbox::configure_scope(|scope| scope.set_tag("region", "eu-west-1"));
    /// ```
    pub fn set_tag(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let mut key = key.into();
        let mut value = value.into();
        if limits::truncate(&mut key, limits::MAX_TAG_KEY_BYTES) {
            self.note_truncated(format!("tags.{key}"));
        }
        if limits::truncate(&mut value, limits::MAX_TAG_VALUE_BYTES) {
            self.note_truncated(format!("tags.{key}"));
        }
        self.tags.insert(key, value);
    }

    /// Removes a tag.
    pub fn remove_tag(&mut self, key: &str) {
        self.tags.remove(key);
    }

    /// Sets an extra value: anything serde can serialize. A value whose JSON
    /// is over 16 KiB is replaced by its cut JSON text; a value that fails to
    /// serialize is stored as a string saying why.
    ///
    /// ```
    /// crashbox::configure_scope(|scope| {
    ///     scope.set_extra("retry", serde_json::json!({"attempt": 3, "max": 5}));
    /// });
    /// ```
    pub fn set_extra(&mut self, key: impl Into<String>, value: impl Serialize) {
        let (key, value, cut) = bounded_extra(key.into(), &value);
        if cut {
            self.note_truncated(format!("extra.{key}"));
        }
        self.extra.insert(key, value);
    }

    /// Removes an extra value.
    pub fn remove_extra(&mut self, key: &str) {
        self.extra.remove(key);
    }

    /// Sets (or with `None`, clears) the user.
    pub fn set_user(&mut self, user: Option<User>) {
        self.user = user.map(|mut user| {
            for field in user.fields_mut() {
                if limits::truncate(field, limits::MAX_NAME_BYTES) {
                    self.note_truncated("user".to_owned());
                }
            }
            user
        });
    }

    /// Overrides the level of errors and messages captured in this scope.
    /// Panics stay `fatal`.
    pub fn set_level(&mut self, level: Option<Level>) {
        self.level = level;
    }

    /// Sets a custom grouping key for reports from this scope.
    pub fn set_fingerprint<I, S>(&mut self, parts: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut cut = false;
        let mut fingerprint: Vec<String> = Vec::new();
        for part in parts {
            if fingerprint.len() == limits::MAX_PARTS {
                cut = true;
                break;
            }
            let mut part: String = part.into();
            cut |= limits::truncate(&mut part, limits::MAX_NAME_BYTES);
            fingerprint.push(part);
        }
        if cut {
            self.note_truncated("fingerprint".to_owned());
        }
        self.fingerprint = Some(fingerprint);
    }

    /// The tags set so far.
    pub fn tags(&self) -> &BTreeMap<String, String> {
        &self.tags
    }
}

/// A scope frozen at capture time; merged on the worker.
pub(crate) struct ScopeSnapshot {
    base: Arc<Scope>,
    layers: Vec<Arc<Scope>>,
    newest_crumb: Option<Arc<CrumbNode>>,
    max_breadcrumbs: usize,
}

/// The merged view of a snapshot, ready to go into a report.
pub(crate) struct MergedScope {
    pub tags: BTreeMap<String, String>,
    pub extra: BTreeMap<String, Value>,
    pub user: Option<User>,
    pub level: Option<Level>,
    pub fingerprint: Option<Vec<String>>,
    pub breadcrumbs: Vec<Breadcrumb>,
    pub truncated: Vec<String>,
}

impl ScopeSnapshot {
    /// Snapshot of the current thread's hub and `with_scope` layers.
    pub(crate) fn capture() -> Self {
        let layers = LAYERS.try_with(|l| l.borrow().clone()).unwrap_or_default();
        with_current_hub(|hub| hub.snapshot(layers))
    }

    /// Whether a scope in the snapshot sets a custom fingerprint.
    pub(crate) fn has_fingerprint(&self) -> bool {
        std::iter::once(&self.base)
            .chain(self.layers.iter())
            .any(|s| s.fingerprint.is_some())
    }

    pub(crate) fn merge(&self) -> MergedScope {
        let mut merged = MergedScope {
            tags: BTreeMap::new(),
            extra: BTreeMap::new(),
            user: None,
            level: None,
            fingerprint: None,
            breadcrumbs: Vec::new(),
            truncated: Vec::new(),
        };
        for scope in std::iter::once(&self.base).chain(self.layers.iter()) {
            merged
                .tags
                .extend(scope.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
            merged
                .extra
                .extend(scope.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
            if scope.user.is_some() {
                merged.user = scope.user.clone();
            }
            if scope.level.is_some() {
                merged.level = scope.level;
            }
            if scope.fingerprint.is_some() {
                merged.fingerprint = scope.fingerprint.clone();
            }
            merged.truncated.extend(scope.truncated.iter().cloned());
        }
        let mut crumbs: Vec<Breadcrumb> =
            iter_crumbs(self.newest_crumb.as_ref(), self.max_breadcrumbs)
                .map(Crumb::to_breadcrumb)
                .collect();
        crumbs.reverse();
        merged.breadcrumbs = crumbs;
        merged
    }
}

/// Adds `crumb` to the current thread's hub.
pub(crate) fn add_crumb(crumb: Crumb) {
    with_current_hub(|hub| hub.add_breadcrumb(crumb));
}

/// An extra value as reports keep it: the key cut to 128 bytes, a value
/// whose JSON is over 16 KiB replaced by its cut JSON text (`true`: it was
/// cut), one that fails to serialize by a string saying why.
pub(crate) fn bounded_extra(mut key: String, value: &impl Serialize) -> (String, Value, bool) {
    limits::truncate(&mut key, limits::MAX_TAG_KEY_BYTES);
    match serde_json::to_string(value) {
        Ok(json) if json.len() <= limits::MAX_EXTRA_BYTES => {
            let value = serde_json::from_str(&json).unwrap_or(Value::Null);
            (key, value, false)
        }
        Ok(mut json) => {
            limits::truncate(&mut json, limits::MAX_EXTRA_BYTES);
            (key, Value::String(json), true)
        }
        Err(e) => (key, Value::String(format!("<unserializable: {e}>")), false),
    }
}
