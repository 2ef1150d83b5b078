//! What a capture becomes.
//!
//! - `bad_input`: hostile inputs (huge or looping errors, huge tags and
//!   scopes, deep stacks) stay bounded.
//! - `cli`: what a command-line program gets: the crash message,
//!   `capture_panic` from a panic hook of its own, `last_report_id`, the
//!   note when a later `set_hook` replaced crashbox's hook.
//! - `event`: `Event`, a capture built from explicit parts.
//! - `facade`: captures through `crashbox-api`, as crashbox's own.
//! - `before_send`: the hook that changes or drops each report, on the
//!   worker thread, panics caught, captures inside it ignored.
//! - `panic_hook`: panics reported with their thread, location and in-app
//!   frames, the previous hook still called.
//! - `privacy`: secrets scrubbed before a report is spooled or sent, and no
//!   personal data unless asked.
//! - `storms`: fingerprints, aggregation of repeats, the rate limit and the
//!   sample rate.
//! - `testing_helpers`: `crashbox::testing::{capture, assert_no_reports,
//!   forbid_reports}`.
mod bad_input;
mod before_send;
mod cli;
mod event;
mod facade;
mod panic_hook;
mod privacy;
mod storms;
mod testing_helpers;
