//! The integrations, each behind its feature, and tasks.
//!
//! - `tasks`: `crashbox::future::FutureExt::bind_scope` under tokio's
//!   multi-threaded runtime.
//! - `anyhow`, `eyre`: `capture` and `ResultExt::report` for their error
//!   types, each context layer an exception.
//! - `log`: `crashbox::log::Logger`, error records as reports, lower ones as
//!   breadcrumbs.
//! - `tracing`: `crashbox::tracing`, the layer that turns tracing events into
//!   reports and breadcrumbs.
#[cfg(feature = "anyhow")]
mod anyhow;
#[cfg(feature = "eyre")]
mod eyre;
#[cfg(feature = "log")]
mod log;
mod tasks;
#[cfg(feature = "tracing")]
mod tracing;
