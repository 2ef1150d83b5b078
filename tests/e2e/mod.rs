//! End to end: the fixture application (tests/fixture_app) built as users
//! build it, and what Sentry-side software makes of crashbox's events. The
//! scripts beside these files (`bugsink.sh`, `relay.sh`) start and install
//! that software.
//!
//! - `bugsink`: reports land in a real Bugsink server as sent
//!   (`CRASHBOX_E2E_BUGSINK_DSN`; required when `CRASHBOX_E2E_REQUIRED` is set).
//! - `build_profiles`: reports are right in every release profile, stripped
//!   or not, and with crashbox vendored.
//! - `facade`: a library on crashbox-api reports through the application's
//!   crashbox, and through a semver-incompatible copy of it.
//! - `relay_normalizer`: events pass Sentry Relay's store normaliser
//!   (`CRASHBOX_E2E_RELAY_PYTHON`).
mod bugsink;
mod build_profiles;
mod facade;
mod relay_normalizer;
