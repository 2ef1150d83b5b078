//! The client as a program installs it.
//!
//! - `diagnostics`: what crashbox says on stderr about itself, with and
//!   without `debug`.
//! - `init`: one client per process, collector parsing, `Options::from_env`,
//!   the default without a collector (a line per report in debug builds),
//!   bounded shutdown.
//! - `queue_and_cache`: the bounded queue to the worker, and its symbol cache.
mod diagnostics;
mod init;
mod queue_and_cache;
