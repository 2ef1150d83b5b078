//! A library that reports its errors through crashbox-api.
use std::io;

use crashbox_api::{Breadcrumb, Level, ReportId, ResultExt};

#[inline(never)]
pub fn save(path: &str) -> Option<ReportId> {
    crashbox_api::set_tag("component", "store");
    let data = [("path", path)];
    crashbox_api::add_breadcrumb(
        Breadcrumb::new("opening the store")
            .category("store")
            .level(Level::Debug)
            .data(&data),
    );
    let err = io::Error::new(io::ErrorKind::PermissionDenied, format!("cannot write {path}"));
    crashbox_api::capture_error(&err)
}

#[inline(never)]
pub fn load(path: &str) -> io::Result<Vec<u8>> {
    std::fs::read(std::hint::black_box(path)).report()
}

#[inline(never)]
pub fn warn() -> Option<ReportId> {
    crashbox_api::capture_message("cache is cold", Level::Warning)
}

/// Whether an application installed an implementation.
pub fn installed() -> bool {
    crashbox_api::is_installed()
}
