//! Where a thread's scope lives: the global hub, a hub bound to a thread
//! (carried into other threads by `crashbox::thread`), and scope layers.
use super::*;

/// Where a thread's reports go and what scope they carry.
pub(crate) struct Hub {
    published: RwLock<Arc<Scope>>,
    writer: Mutex<()>,
    crumbs: Mutex<Crumbs>,
    max_breadcrumbs: AtomicUsize,
}

pub(super) static GLOBAL_HUB: Lazy<Arc<Hub>> = Lazy::new(|| Arc::new(Hub::new()));

thread_local! {
    pub(super) static BOUND_HUB: RefCell<Option<Arc<Hub>>> = const { RefCell::new(None) };
    pub(super) static LAYERS: RefCell<Vec<Arc<Scope>>> = const { RefCell::new(Vec::new()) };
    pub(super) static CONFIGURING: Cell<bool> = const { Cell::new(false) };
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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

    /// A hub of its own that starts as a copy of this one (scope and
    /// breadcrumbs): changes to either are not seen by the other.
    pub(crate) fn fork(&self) -> Hub {
        Hub {
            published: RwLock::new(self.current_scope()),
            writer: Mutex::new(()),
            crumbs: Mutex::new(lock(&self.crumbs).clone()),
            max_breadcrumbs: AtomicUsize::new(self.max_breadcrumbs.load(Ordering::Relaxed)),
        }
    }

    pub(crate) fn global() -> &'static Arc<Hub> {
        &GLOBAL_HUB
    }

    pub(crate) fn set_max_breadcrumbs(&self, max: usize) {
        self.max_breadcrumbs.store(max, Ordering::Relaxed);
    }

    pub(super) fn current_scope(&self) -> Arc<Scope> {
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

    pub(crate) fn add_breadcrumb(&self, mut crumb: Crumb) {
        crumb.bound();
        let max = self.max_breadcrumbs.load(Ordering::Relaxed);
        lock(&self.crumbs).push(crumb, max);
    }

    pub(crate) fn clear_breadcrumbs(&self) {
        *lock(&self.crumbs) = Crumbs::default();
    }

    pub(super) fn snapshot(&self, layers: Vec<Arc<Scope>>) -> ScopeSnapshot {
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
