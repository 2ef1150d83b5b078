//! Carrying the current scope (and test collector) into other threads.
use std::thread::JoinHandle;

use crate::capture::install;
use crate::scope;

/// Wraps `f` so that, wherever it runs, it reports into the hub and scope
/// layers of the thread that called `bind`: the same
/// [`with_scope`](crate::with_scope) tags, and inside
/// [`testing::capture`](crate::testing::capture) the same test collector.
///
/// ```
/// let (_, reports) = crashbox::testing::capture(|| {
///     let work = crashbox::bind(|| {
///         crashbox::capture_message("from a pool thread", crashbox::Level::Info);
///     });
///     std::thread::spawn(work).join().unwrap();
/// });
/// assert_eq!(reports.len(), 1);
/// ```
pub fn bind<F, R>(f: F) -> impl FnOnce() -> R + Send + 'static
where
    F: FnOnce() -> R + Send + 'static,
    R: 'static,
{
    let (hub, layers) = scope::current_binding();
    let sink = install::bound();
    move || {
        let _scope = scope::bind_hub(hub, layers);
        let _sink = install::bind(sink);
        f()
    }
}

/// [`std::thread::spawn`], with the new thread bound to the caller's scope
/// and collector (see [`bind`]).
///
/// ```
/// let handle = crashbox::thread::spawn(|| 1 + 1);
/// assert_eq!(handle.join().unwrap(), 2);
/// ```
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    std::thread::spawn(bind(f))
}
