//! Carrying the current scope (and test collector) across `.await` points
//! and into spawned tasks.
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::capture::install::{self, Sink};
use crate::scope::{self, Hub, Scope};

/// Binds a future to the scope it is created in: `.bind_scope()`.
///
/// An executor polls a task on whatever thread it likes, and a thread's
/// scope layers ([`with_scope`](crate::with_scope)) end with the closure
/// that pushed them: without binding, a task's reports lose its tags after
/// the first `.await`, or get another task's. A bound future runs every
/// poll with the layers it was created under, and with a hub of its own
/// that starts as a copy of the current one: a
/// [`configure_scope`](crate::configure_scope) or a breadcrumb inside it
/// changes that task's scope only. Inside
/// [`testing::capture`](crate::testing::capture), its reports go to the
/// test's collector wherever it runs. Any executor.
///
/// ```
/// use std::future::Future;
/// use crashbox::future::FutureExt;
///
/// let (_, reports) = crashbox::testing::capture(|| {
///     let task = crashbox::with_scope(
///         |scope| scope.set_tag("request", "r-7"),
///         || async {
///             crashbox::capture_message("handled", crashbox::Level::Info);
///         }
///         .bind_scope(),
///     );
///     // Polled later, outside `with_scope`, as an executor would.
///     let mut task = std::pin::pin!(task);
///     let waker = std::task::Waker::noop();
///     let _ = task.as_mut().poll(&mut std::task::Context::from_waker(waker));
/// });
/// assert_eq!(reports[0].tag("request"), Some("r-7"));
/// ```
pub trait FutureExt: Future + Sized {
    /// This future, bound to the current scope (see [`FutureExt`]).
    fn bind_scope(self) -> Bound<Self> {
        Bound {
            inner: Box::pin(self),
            hub: scope::with_current_hub(|hub| Arc::new(hub.fork())),
            layers: scope::current_binding().1,
            sink: install::bound(),
        }
    }
}

impl<F: Future> FutureExt for F {}

/// A future bound to a scope (see [`FutureExt::bind_scope`]).
#[must_use = "futures do nothing unless polled"]
pub struct Bound<F> {
    inner: Pin<Box<F>>,
    hub: Arc<Hub>,
    layers: Vec<Arc<Scope>>,
    sink: Option<Arc<dyn Sink>>,
}

impl<F: Future> Future for Bound<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let _scope = scope::bind_hub(Some(this.hub.clone()), this.layers.clone());
        let _sink = install::bind(this.sink.clone());
        this.inner.as_mut().poll(cx)
    }
}

impl<F> std::fmt::Debug for Bound<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound")
            .field("layers", &self.layers.len())
            .finish_non_exhaustive()
    }
}
