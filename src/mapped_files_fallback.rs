//! Module lookup for platforms without `/proc/self/maps`: addresses are kept
//! as they are and a spooled panic replayed in a later run is sent with
//! addresses only.
use serde::{Deserialize, Serialize};

/// A loaded file (unused on this platform).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Module {
    pub path: String,
    pub identity: String,
}

pub(crate) fn preload() {}

pub(crate) fn locate(addresses: &[usize]) -> (Vec<Module>, Vec<Option<(u32, u64)>>) {
    (Vec::new(), vec![None; addresses.len()])
}

pub(crate) fn relocate(_module: &Module, _offset: u64) -> Option<usize> {
    None
}

/// Every executable file mapping: none known here.
pub(crate) fn snapshot() -> Vec<(usize, usize, usize, Module)> {
    Vec::new()
}
