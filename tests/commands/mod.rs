//! The `crashbox` command.
//!
//! - `check`: `crashbox check PATH`, the CI gate.
//! - `symbolicate`: `crashbox symbolicate`, offline symbolication from a
//!   debug file.
mod check;
mod symbolicate;
