//! Which loaded file each code address belongs to, so an address captured in
//! one run can be resolved in the next: a spooled panic stores each frame as
//! (module, file offset), and the next start of the same binary maps it back.
use std::os::unix::fs::MetadataExt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A loaded file, named by path and identified by device, inode, size and
/// modification time, so a rebuilt binary is never mistaken for the old one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Module {
    pub path: String,
    pub identity: String,
}

/// One executable mapping of a file.
#[derive(Clone, Debug)]
struct Mapping {
    start: usize,
    end: usize,
    file_offset: usize,
    module: Module,
}

/// The mapping table and when it was read.
struct Table {
    mappings: Vec<Mapping>,
    read_at: Option<Instant>,
}

static MAPPINGS: Mutex<Table> = Mutex::new(Table {
    mappings: Vec::new(),
    read_at: None,
});

/// The table is read again for an unknown address at most this often: some
/// addresses (the vDSO, generated code) belong to no file and never will.
const REREAD_INTERVAL: Duration = Duration::from_secs(1);

/// The identity of the file at `path`, if it is still the mapped one (`inode`).
fn identity(path: &str, inode: u64) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.ino() != inode {
        return None;
    }
    Some(format!(
        "{}:{}:{}:{}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime()
    ))
}

/// Executable file mappings of this process, from `/proc/self/maps`.
fn read_mappings() -> Vec<Mapping> {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return Vec::new();
    };
    let mut identities: Vec<(String, Option<String>)> = Vec::new();
    let mut out = Vec::new();
    for line in maps.lines() {
        // start-end perms offset dev inode path (the path may hold spaces)
        let mut fields = line.splitn(6, ' ');
        let (Some(range), Some(perms), Some(offset), Some(_dev), Some(inode)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            continue;
        };
        let path = fields.next().unwrap_or("").trim_start();
        // A file replaced since it was mapped is not the file at that path now.
        if !perms.contains('x') || !path.starts_with('/') || path.ends_with(" (deleted)") {
            continue;
        }
        let Ok(inode) = inode.parse::<u64>() else {
            continue;
        };
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end), Ok(file_offset)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
            usize::from_str_radix(offset, 16),
        ) else {
            continue;
        };
        let id = match identities.iter().find(|(p, _)| p == path) {
            Some((_, id)) => id.clone(),
            None => {
                let id = identity(path, inode);
                identities.push((path.to_owned(), id.clone()));
                id
            }
        };
        let Some(identity) = id else { continue };
        out.push(Mapping {
            start,
            end,
            file_offset,
            module: Module {
                path: path.to_owned(),
                identity,
            },
        });
    }
    out
}

/// Loads the mapping table now (the worker does this at start, so a panic
/// rarely pays for it).
pub(crate) fn preload() {
    let mut table = MAPPINGS.lock().unwrap_or_else(PoisonError::into_inner);
    if table.read_at.is_none() {
        table.mappings = read_mappings();
        table.read_at = Some(Instant::now());
    }
}

/// For each address: an index into the returned modules and the file offset,
/// or `None` when no mapped file holds it.
pub(crate) fn locate(addresses: &[usize]) -> (Vec<Module>, Vec<Option<(u32, u64)>>) {
    let mut guard = MAPPINGS.lock().unwrap_or_else(PoisonError::into_inner);
    let find = |table: &[Mapping], a: usize| table.iter().position(|m| m.start <= a && a < m.end);
    let stale = guard
        .read_at
        .is_none_or(|at| at.elapsed() >= REREAD_INTERVAL);
    if stale
        && addresses
            .iter()
            .any(|&a| find(&guard.mappings, a).is_none())
    {
        // Perhaps a library loaded since the table was read: read it again.
        guard.mappings = read_mappings();
        guard.read_at = Some(Instant::now());
    }
    let table = &guard.mappings;
    let mut modules: Vec<Module> = Vec::new();
    let located = addresses
        .iter()
        .map(|&a| {
            let mapping = &table[find(table, a)?];
            let index = match modules.iter().position(|m| *m == mapping.module) {
                Some(i) => i,
                None => {
                    modules.push(mapping.module.clone());
                    modules.len() - 1
                }
            };
            Some((
                index as u32,
                (a - mapping.start + mapping.file_offset) as u64,
            ))
        })
        .collect();
    (modules, located)
}

/// Every executable file mapping of this process, as (start, end, file
/// offset, module): what a crash record carries, since the signal handler
/// cannot read `/proc/self/maps`.
pub(crate) fn snapshot() -> Vec<(usize, usize, usize, Module)> {
    preload();
    let table = MAPPINGS.lock().unwrap_or_else(PoisonError::into_inner);
    table
        .mappings
        .iter()
        .map(|m| (m.start, m.end, m.file_offset, m.module.clone()))
        .collect()
}

/// The address in this process of `offset` in `module`, when this process
/// has the very same file mapped there.
pub(crate) fn relocate(module: &Module, offset: u64) -> Option<usize> {
    preload();
    let table = MAPPINGS.lock().unwrap_or_else(PoisonError::into_inner);
    let offset = usize::try_from(offset).ok()?;
    table.mappings.iter().find_map(|m| {
        let fits = m.module == *module
            && m.file_offset <= offset
            && offset - m.file_offset < m.end - m.start;
        fits.then(|| m.start + (offset - m.file_offset))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_of_this_binary_relocates_to_itself() {
        let here = an_address_of_this_binary_relocates_to_itself as *const () as usize;
        let (modules, located) = locate(&[here]);
        let (index, offset) = located[0].expect("own code is mapped from a file");
        let module = &modules[index as usize];
        assert!(module.path.starts_with('/'));
        assert_eq!(relocate(module, offset), Some(here));
        let other = Module {
            path: module.path.clone(),
            identity: "0:0:0:0".into(),
        };
        assert_eq!(
            relocate(&other, offset),
            None,
            "a different build never matches"
        );
    }
}
