//! Image lookup for platforms without an ELF loader to ask: reports carry
//! no images there.
use crate::report::Image;

pub(crate) fn preload() {}

pub(crate) fn images_for(_addresses: &[usize]) -> Vec<Image> {
    Vec::new()
}

/// Every loaded image: none known here.
pub(crate) fn all() -> Vec<Image> {
    Vec::new()
}
