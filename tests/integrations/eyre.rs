//! `crashbox::eyre` (feature `eyre`): `capture` and `ResultExt::report`
//! for `eyre::Report`, each `wrap_err` layer an exception (the tests the
//! anyhow integration has too).
use std::fmt;

use crashbox::eyre::ResultExt;
use crashbox::{testing, Kind, Level, Report};
use eyre::WrapErr;

use super::wrapper_tests;
use crate::util::{assert_child, child, run_child, without_client};

wrapper_tests!(eyre, eyre::Report, wrap_err, "eyre::Report");
