//! Every capture reaches the collector.
//!
//! - `early_kill`: SIGKILL at a random moment early in a burst: the next run
//!   delivers every capture made before.
//! - `flush_and_outage`: what `flush` promises, and captures made while the
//!   collector is down delivered once when it is back.
//! - `nothing_lost`: nothing lost at exit: a hung collector, `exit` after a
//!   panic, a `main` that returns at once, an unwritable file, an old spool.
//! - `outbox_overflow`: more reports than the outbox holds wait in the spool
//!   and are delivered in order by the same run.
mod early_kill;
mod flush_and_outage;
mod nothing_lost;
mod outbox_overflow;
