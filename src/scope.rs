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
use crate::report::{Breadcrumb, Level, User};

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
        let mut key = key.into();
        limits::truncate(&mut key, limits::MAX_TAG_KEY_BYTES);
        let value = match serde_json::to_string(&value) {
            Ok(json) if json.len() <= limits::MAX_EXTRA_BYTES => {
                serde_json::from_str(&json).unwrap_or(Value::Null)
            }
            Ok(mut json) => {
                limits::truncate(&mut json, limits::MAX_EXTRA_BYTES);
                self.note_truncated(format!("extra.{key}"));
                Value::String(json)
            }
            Err(e) => Value::String(format!("<unserializable: {e}>")),
        };
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

/// One breadcrumb in a hub's ring: newest first, sharing older nodes.
pub(crate) struct CrumbNode {
    crumb: Arc<Breadcrumb>,
    older: Option<Arc<CrumbNode>>,
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
#[derive(Default)]
struct Crumbs {
    newest: Option<Arc<CrumbNode>>,
    len: usize,
}

impl Crumbs {
    fn push(&mut self, crumb: Breadcrumb, max: usize) {
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

fn iter_crumbs(
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

/// Where a thread's reports go and what scope they carry.
pub(crate) struct Hub {
    published: RwLock<Arc<Scope>>,
    writer: Mutex<()>,
    crumbs: Mutex<Crumbs>,
    max_breadcrumbs: AtomicUsize,
}

static GLOBAL_HUB: Lazy<Arc<Hub>> = Lazy::new(|| Arc::new(Hub::new()));

thread_local! {
    static BOUND_HUB: RefCell<Option<Arc<Hub>>> = const { RefCell::new(None) };
    static LAYERS: RefCell<Vec<Arc<Scope>>> = const { RefCell::new(Vec::new()) };
    static CONFIGURING: Cell<bool> = const { Cell::new(false) };
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hub {
    pub(crate) fn new() -> Self {
        Hub {
            published: RwLock::new(Arc::new(Scope::default())),
            writer: Mutex::new(()),
            crumbs: Mutex::new(Crumbs::default()),
            max_breadcrumbs: AtomicUsize::new(limits::DEFAULT_MAX_BREADCRUMBS),
        }
    }

    pub(crate) fn global() -> &'static Arc<Hub> {
        &GLOBAL_HUB
    }

    pub(crate) fn set_max_breadcrumbs(&self, max: usize) {
        self.max_breadcrumbs.store(max, Ordering::Relaxed);
    }

    fn current_scope(&self) -> Arc<Scope> {
        self.published
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn publish(&self, scope: Scope) {
        *self
            .published
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(scope);
    }

    pub(crate) fn configure<R>(&self, f: impl FnOnce(&mut Scope) -> R) -> R {
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                let _ = CONFIGURING.try_with(|c| c.set(false));
            }
        }
        let nested = CONFIGURING.try_with(|c| c.replace(true)).unwrap_or(false);
        // A nested call on the same thread must not wait for the writer lock
        // its own outer call holds.
        let _writer = if nested {
            None
        } else {
            Some(lock(&self.writer))
        };
        let _reset = if nested { None } else { Some(Reset) };
        let mut scope = (*self.current_scope()).clone();
        let result = f(&mut scope);
        self.publish(scope);
        result
    }

    pub(crate) fn add_breadcrumb(&self, mut crumb: Breadcrumb) {
        limits::truncate(&mut crumb.message, limits::MAX_BREADCRUMB_MESSAGE_BYTES);
        if let Some(category) = &mut crumb.category {
            limits::truncate(category, limits::MAX_NAME_BYTES);
        }
        while crumb.data.len() > limits::MAX_PARTS {
            crumb.data.pop_last();
        }
        for value in crumb.data.values_mut() {
            let json = value.to_string();
            if json.len() > limits::MAX_EXTRA_BYTES {
                let mut cut = json;
                limits::truncate(&mut cut, limits::MAX_EXTRA_BYTES);
                *value = Value::String(cut);
            }
        }
        let max = self.max_breadcrumbs.load(Ordering::Relaxed);
        lock(&self.crumbs).push(crumb, max);
    }

    pub(crate) fn clear_breadcrumbs(&self) {
        *lock(&self.crumbs) = Crumbs::default();
    }

    fn snapshot(&self, layers: Vec<Arc<Scope>>) -> ScopeSnapshot {
        let newest = lock(&self.crumbs).newest.clone();
        ScopeSnapshot {
            base: self.current_scope(),
            layers,
            newest_crumb: newest,
            max_breadcrumbs: self.max_breadcrumbs.load(Ordering::Relaxed),
        }
    }
}

/// Runs `f` with the hub this thread reports into.
pub(crate) fn with_current_hub<R>(f: impl FnOnce(&Arc<Hub>) -> R) -> R {
    let bound = BOUND_HUB.try_with(|b| b.borrow().clone()).ok().flatten();
    match bound {
        Some(hub) => f(&hub),
        None => f(Hub::global()),
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
                .map(|c| (*c).clone())
                .collect();
        crumbs.reverse();
        merged.breadcrumbs = crumbs;
        merged
    }
}

/// Binds `hub` to the current thread with `layers` until the returned guard drops.
pub(crate) fn bind_hub(hub: Option<Arc<Hub>>, layers: Vec<Arc<Scope>>) -> BindGuard {
    let previous_hub = BOUND_HUB
        .try_with(|b| std::mem::replace(&mut *b.borrow_mut(), hub))
        .ok()
        .flatten();
    let previous_layers = LAYERS
        .try_with(|l| std::mem::replace(&mut *l.borrow_mut(), layers))
        .unwrap_or_default();
    BindGuard {
        previous_hub,
        previous_layers,
    }
}

/// Restores the thread's previous hub and layers on drop.
pub(crate) struct BindGuard {
    previous_hub: Option<Arc<Hub>>,
    previous_layers: Vec<Arc<Scope>>,
}

impl Drop for BindGuard {
    fn drop(&mut self) {
        let hub = self.previous_hub.take();
        let layers = std::mem::take(&mut self.previous_layers);
        let _ = BOUND_HUB.try_with(|b| *b.borrow_mut() = hub);
        let _ = LAYERS.try_with(|l| *l.borrow_mut() = layers);
    }
}

/// The hub bound to this thread (if any) and its layers, for carrying into another thread.
pub(crate) fn current_binding() -> (Option<Arc<Hub>>, Vec<Arc<Scope>>) {
    let hub = BOUND_HUB.try_with(|b| b.borrow().clone()).ok().flatten();
    let layers = LAYERS.try_with(|l| l.borrow().clone()).unwrap_or_default();
    (hub, layers)
}

/// Pushes a layer for the duration of `work`.
pub(crate) fn with_layer<R>(layer: Scope, work: impl FnOnce() -> R) -> R {
    struct Pop(usize);
    impl Drop for Pop {
        fn drop(&mut self) {
            let _ = LAYERS.try_with(|l| l.borrow_mut().truncate(self.0));
        }
    }
    let depth = LAYERS
        .try_with(|l| {
            let mut l = l.borrow_mut();
            l.push(Arc::new(layer));
            l.len() - 1
        })
        .unwrap_or(0);
    let _pop = Pop(depth);
    work()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breadcrumb_ring_keeps_the_newest_in_order_and_bounds_memory() {
        let mut crumbs = Crumbs::default();
        for i in 0..1000 {
            crumbs.push(Breadcrumb::new(format!("c{i}")), 10);
            assert!(crumbs.len < 20);
        }
        let kept: Vec<String> = iter_crumbs(crumbs.newest.as_ref(), 10)
            .map(|c| c.message.clone())
            .collect();
        assert_eq!(kept.len(), 10);
        assert_eq!(kept[0], "c999");
        assert_eq!(kept[9], "c990");
    }

    #[test]
    fn layers_override_base_and_merge_tags() {
        let hub = Hub::new();
        hub.configure(|s| {
            s.set_tag("a", "base");
            s.set_tag("b", "base");
            s.set_level(Some(Level::Warning));
        });
        let mut layer = Scope::default();
        layer.set_tag("b", "layer");
        layer.set_user(Some(User::with_id("7")));
        let snap = hub.snapshot(vec![Arc::new(layer)]);
        let merged = snap.merge();
        assert_eq!(merged.tags["a"], "base");
        assert_eq!(merged.tags["b"], "layer");
        assert_eq!(merged.user.unwrap().id.as_deref(), Some("7"));
        assert_eq!(merged.level, Some(Level::Warning));
    }

    #[test]
    fn oversized_tag_values_are_cut_and_noted() {
        let mut scope = Scope::default();
        scope.set_tag("big", "x".repeat(1 << 20));
        assert!(scope.tags["big"].len() <= limits::MAX_TAG_VALUE_BYTES + 3);
        assert!(scope.tags["big"].ends_with('…'));
        assert_eq!(scope.truncated, vec!["tags.big".to_owned()]);
    }

    #[test]
    fn concurrent_writers_lose_no_update() {
        let hub = Arc::new(Hub::new());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let hub = hub.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        hub.configure(|s| s.set_tag(format!("t{t}-{i}"), "v"));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(hub.current_scope().tags.len(), 8 * 200);
    }
}
