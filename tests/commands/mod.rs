//! The `crashbox` command.
//!
//! - `check`: `crashbox check PATH`, the CI gate.
//! - `spool`: `crashbox spool list|show|send|purge`, the reports waiting in
//!   a spool directory.
//! - `symbolicate`: `crashbox symbolicate`, offline symbolication from a
//!   debug file.
mod check;
mod spool;
mod symbolicate;
