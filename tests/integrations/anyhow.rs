//! `crashbox::anyhow` (feature `anyhow`): `capture` and `ResultExt::report`
//! for `anyhow::Error`, each context layer an exception.
use std::fmt;

use anyhow::Context;
use crashbox::anyhow::ResultExt;
use crashbox::{testing, Kind, Level, Report};

use super::wrapper_tests;
use crate::util::{assert_child, child, run_child, without_client};

wrapper_tests!(anyhow, anyhow::Error, context, "anyhow::Error");

#[test]
fn a_boxed_error_is_named_by_its_debug_form_not_dyn_error() {
    let reports = reports_of(|| {
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(QuotaExceeded { used: 3 });
        crashbox::capture_error(&*boxed)
    });
    assert_eq!(reports[0].exception_types(), ["QuotaExceeded"]);
}
