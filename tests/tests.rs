//! crashbox's integration tests, in one test binary (`cargo test --test
//! tests`; one area: `cargo test --test tests spool::`).
//!
//! - `util`: shared helpers: child processes, collector strings, temporary
//!   directories, reading reports, a loopback HTTP server, test errors, and
//!   building the fixture application.
//! - `capture`: what a capture becomes: hostile inputs, the panic hook,
//!   `before_send`, privacy, error storms and the `crashbox::testing` helpers.
//! - `client`: `init` and the guard, the queue and symbol cache, and what
//!   crashbox says about itself on stderr.
//! - `collectors`: the `file://`, `http(s)://`, `otlp+http(s)://` and
//!   `sentry+http(s)://` collectors against files and loopback servers.
//! - `commands`: the `crashbox check` and `crashbox symbolicate` commands.
//! - `delivery`: `flush`, outages, exits, SIGKILL and outbox overflow: nothing
//!   captured is lost.
//! - `e2e`: the fixture application built in every release profile, and its
//!   reports checked by a real Bugsink server and Sentry Relay's normaliser.
//! - `integrations`: `anyhow`, `eyre`, `log` and `tracing`, each behind its
//!   feature.
//! - `spool`: the on-disk spool: outages, durable panics, `panic = "abort"`,
//!   replay and retention, shared spools, crash loops and untrusted files.
//!
//! A scenario that calls `init` (process-wide state) runs in a child
//! process: an ignored `child_*` test its parent test runs by its full name
//! (see `util::run_child`). In-process tests that install a client, or that
//! need none installed, take turns (`util::client_turn`,
//! `util::without_client`).
mod util;

mod capture;
mod client;
mod collectors;
mod commands;
mod delivery;
mod e2e;
mod integrations;
mod spool;
