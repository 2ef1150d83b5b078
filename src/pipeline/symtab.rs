//! Function names from an ELF file's symbol table, without its debug info.
//!
//! The symbol table names every function of a binary built with any
//! `debug` setting short of `strip = true` (which removes `.symtab`, leaving
//! only the exported names in `.dynsym`), and it is a small fraction of the
//! size of the DWARF sections: loading it costs a few milliseconds and a few
//! MiB where loading debug info costs tens of milliseconds and tens of MiB.
//! Only the ELF header, the program and section headers, the symbol table
//! and its string table are read from the file, never the whole file.
//!
//! Addresses are ELF virtual addresses (the `st_value` space of the file),
//! not addresses in a running process. For an address `a` in a process that
//! mapped the file with its lowest `PT_LOAD` segment at `image_base`, the
//! virtual address is `a - image_base + lowest_load_vaddr()`; for a file
//! offset (what [`crate::mapped_files::locate`] gives), use
//! [`SymbolTable::vaddr_of_offset`].
// Loaded by nothing yet: symbolication by symbol table is the next step.

use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::path::Path;

use object::read::elf::{FileHeader, ProgramHeader, SectionHeader, Sym};
use object::read::{ReadCache, StringTable};
use object::{elf, Endianness, FileKind};

/// A symbol table or string table larger than this is refused rather than
/// read into memory: no real binary comes close, a corrupt one could.
const MAX_TABLE_BYTES: u64 = 256 << 20;

/// One function symbol: `[address, address + size)`, its name in `names`.
#[derive(Clone, Copy, Debug)]
struct Entry {
    address: u64,
    size: u64,
    name_start: u32,
    name_len: u32,
}

/// A loaded segment: file offsets `[offset, offset + size)` hold virtual
/// addresses `[vaddr, vaddr + size)`.
#[derive(Clone, Copy, Debug)]
struct Segment {
    offset: u64,
    size: u64,
    vaddr: u64,
}

/// The function symbols of one ELF file, sorted by address, with their
/// names demangled (Rust names without the `::h…` hash).
#[derive(Debug, Default)]
pub(crate) struct SymbolTable {
    entries: Vec<Entry>,
    /// All names, one after the other: one allocation instead of one per symbol.
    names: String,
    segments: Vec<Segment>,
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

impl SymbolTable {
    /// Reads the function symbols of the ELF file at `path` from `.symtab`,
    /// or from `.dynsym` when the file has no `.symtab` (a stripped binary).
    ///
    /// # Errors
    /// The file cannot be read, is not ELF, or its headers or tables are
    /// malformed (each error names what was wrong).
    pub(crate) fn load(path: &Path) -> io::Result<SymbolTable> {
        let file = File::open(path)?;
        // Reads exactly the ranges asked for and keeps them until it is
        // dropped at the end of this function.
        let data = ReadCache::new(file);
        let context = |e: String| invalid(format!("{}: {e}", path.display()));
        match FileKind::parse(&data).map_err(|e| context(e.to_string()))? {
            FileKind::Elf32 => parse::<elf::FileHeader32<Endianness>>(&data).map_err(context),
            FileKind::Elf64 => parse::<elf::FileHeader64<Endianness>>(&data).map_err(context),
            other => Err(invalid(format!(
                "{}: not an ELF file ({other:?})",
                path.display()
            ))),
        }
    }

    /// The demangled name of the function whose code holds `file_vaddr`
    /// (an ELF virtual address, see the module docs).
    pub(crate) fn lookup(&self, file_vaddr: u64) -> Option<&str> {
        let after = self.entries.partition_point(|e| e.address <= file_vaddr);
        let entry = self.entries.get(after.checked_sub(1)?)?;
        // A symbol without a size (hand-written assembly) is taken to run up
        // to the next one, within its segment.
        let inside = if entry.size == 0 {
            self.segments.iter().any(|s| {
                let end = s.vaddr.saturating_add(s.size);
                (s.vaddr..end).contains(&entry.address) && (s.vaddr..end).contains(&file_vaddr)
            })
        } else {
            file_vaddr - entry.address < entry.size
        };
        if !inside {
            return None;
        }
        let start = entry.name_start as usize;
        self.names.get(start..start + entry.name_len as usize)
    }

    /// The virtual address that file offset `offset` is loaded at, when a
    /// `PT_LOAD` segment holds it.
    pub(crate) fn vaddr_of_offset(&self, offset: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|s| offset >= s.offset && offset - s.offset < s.size)
            .map(|s| s.vaddr + (offset - s.offset))
    }

    #[cfg(test)]
    /// The virtual address of the lowest `PT_LOAD` segment: what an image
    /// base (the address that segment is mapped at) corresponds to.
    pub(crate) fn lowest_load_vaddr(&self) -> Option<u64> {
        self.segments.iter().map(|s| s.vaddr).min()
    }

    #[cfg(test)]
    /// Function symbols held.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    /// Bytes held on the heap, about.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.names.capacity()
            + self.segments.capacity() * std::mem::size_of::<Segment>()
    }
}

fn parse<Elf: FileHeader<Endian = Endianness>>(
    data: &ReadCache<File>,
) -> Result<SymbolTable, String> {
    let header = Elf::parse(data).map_err(|e| e.to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let segments = header
        .program_headers(endian, data)
        .map_err(|e| e.to_string())?
        .iter()
        .filter(|p| p.p_type(endian) == elf::PT_LOAD)
        .map(|p| Segment {
            offset: p.p_offset(endian).into(),
            size: p.p_filesz(endian).into(),
            vaddr: p.p_vaddr(endian).into(),
        })
        .collect();
    let sections = header
        .section_headers(endian, data)
        .map_err(|e| e.to_string())?;
    let table = sections
        .iter()
        .find(|s| s.sh_type(endian) == elf::SHT_SYMTAB)
        .or_else(|| {
            sections
                .iter()
                .find(|s| s.sh_type(endian) == elf::SHT_DYNSYM)
        });
    let mut out = SymbolTable {
        segments,
        ..SymbolTable::default()
    };
    let Some(table) = table else {
        return Ok(out);
    };
    let strings = sections
        .get(table.sh_link(endian) as usize)
        .ok_or("invalid ELF symbol string table index")?;
    for section in [table, strings] {
        if let Some((_, size)) = section.file_range(endian) {
            if size > MAX_TABLE_BYTES {
                return Err(format!("ELF symbol table too large ({size} bytes)"));
            }
        }
    }
    let symbols: &[Elf::Sym] = table
        .data_as_array(endian, data)
        .map_err(|e| e.to_string())?;
    // One read of the whole string table: reading each name on its own
    // would cost a system call per symbol.
    let string_bytes = strings.data(endian, data).map_err(|e| e.to_string())?;
    let string_table = StringTable::new(string_bytes, 0, string_bytes.len() as u64);
    let mut candidates = Vec::new();
    for symbol in symbols {
        let kind = symbol.st_type();
        if (kind != elf::STT_FUNC && kind != elf::STT_GNU_IFUNC)
            || symbol.st_shndx(endian) == elf::SHN_UNDEF
        {
            continue;
        }
        let address: u64 = symbol.st_value(endian).into();
        let Ok(raw) = symbol.name(endian, string_table) else {
            continue;
        };
        if address == 0 || raw.is_empty() {
            continue;
        }
        let Ok(name_start) = u32::try_from(out.names.len()) else {
            break;
        };
        let raw = String::from_utf8_lossy(raw);
        // Straight into the shared buffer: no allocation per name.
        let _ = write!(out.names, "{:#}", rustc_demangle::demangle(&raw));
        let name = &out.names[name_start as usize..];
        let Ok(name_len) = u32::try_from(name.len()) else {
            break;
        };
        // Of several symbols at one address (aliases such as `malloc` and
        // `__libc_malloc`), the one that spans the most code is kept, then
        // a global one, then the one with the fewest leading underscores.
        let binding = match symbol.st_bind() {
            elf::STB_GLOBAL => 0,
            elf::STB_WEAK => 1,
            _ => 2,
        };
        let underscores = name.bytes().take_while(|&b| b == b'_').count().min(15) as u8;
        candidates.push((
            Entry {
                address,
                size: symbol.st_size(endian).into(),
                name_start,
                name_len,
            },
            binding << 4 | underscores,
        ));
    }
    candidates.sort_unstable_by(|(a, a_rank), (b, b_rank)| {
        a.address
            .cmp(&b.address)
            .then(b.size.cmp(&a.size))
            .then(a_rank.cmp(b_rank))
    });
    candidates.dedup_by_key(|(e, _)| e.address);
    out.entries = candidates.into_iter().map(|(e, _)| e).collect();
    out.names.shrink_to_fit();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn a_function_the_symbol_table_names(x: u64) -> u64 {
        std::hint::black_box(x).wrapping_mul(31) ^ 7
    }

    /// This test binary's path and the ELF virtual address of `function`.
    fn vaddr_of(table: &SymbolTable, function: usize) -> (String, u64) {
        let (modules, located) = crate::mapped_files::locate(&[function]);
        let (index, offset) = located[0].expect("the test binary's code is mapped from a file");
        let vaddr = table
            .vaddr_of_offset(offset)
            .expect("a PT_LOAD segment holds the code");
        (modules[index as usize].path.clone(), vaddr)
    }

    #[test]
    fn names_a_function_of_this_binary_by_its_virtual_address() {
        std::hint::black_box(a_function_the_symbol_table_names(3));
        let table = SymbolTable::load(Path::new("/proc/self/exe")).expect("loads");
        assert!(table.len() > 100, "{} function symbols", table.len());
        let function = a_function_the_symbol_table_names as *const () as usize;
        let (path, vaddr) = vaddr_of(&table, function);
        assert_eq!(
            Path::new(&path).canonicalize().ok(),
            Path::new("/proc/self/exe").canonicalize().ok(),
            "the function is in this binary"
        );
        for inside in [vaddr, vaddr + 1] {
            let name = table.lookup(inside).expect("named");
            assert!(
                name.ends_with("symtab::tests::a_function_the_symbol_table_names"),
                "{name}"
            );
            assert!(!name.contains("::h"), "no hash: {name}");
        }
        // Another function at another address gets its own name.
        let other = vaddr_of_offset_roundtrip as *const () as usize;
        let (_, other_vaddr) = vaddr_of(&table, other);
        assert!(table
            .lookup(other_vaddr)
            .expect("named")
            .ends_with("vaddr_of_offset_roundtrip"));
        assert_eq!(table.lookup(0), None, "nothing below the first function");
        assert_eq!(table.lookup(u64::MAX), None, "nothing past the last one");
    }

    #[test]
    fn vaddr_of_offset_roundtrip() {
        let table = SymbolTable::load(Path::new("/proc/self/exe")).expect("loads");
        let lowest = table
            .lowest_load_vaddr()
            .expect("an executable has PT_LOAD");
        assert_eq!(table.vaddr_of_offset(0), Some(lowest));
        assert_eq!(table.vaddr_of_offset(u64::MAX), None);
    }

    #[test]
    fn the_c_library_is_named_from_dynsym_when_stripped() {
        let Some(libc) = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/aarch64-linux-gnu/libc.so.6",
            "/usr/lib64/libc.so.6",
            "/lib64/libc.so.6",
        ]
        .iter()
        .map(Path::new)
        .find(|p| p.exists()) else {
            return;
        };
        let table = SymbolTable::load(libc).expect("loads");
        assert!(table.len() > 100, "{} function symbols", table.len());
        assert!(table.entries.iter().any(|e| {
            let start = e.name_start as usize;
            &table.names[start..start + e.name_len as usize] == "malloc"
        }));
    }

    #[test]
    fn what_is_not_elf_is_a_clear_error() {
        let missing = SymbolTable::load(Path::new("/nonexistent/crashbox-binary")).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        let dir = std::env::temp_dir().join(format!("crashbox-symtab-{}", std::process::id()));
        std::fs::write(&dir, b"#!/bin/sh\necho not elf\n").expect("write");
        let error = SymbolTable::load(&dir).unwrap_err();
        let _ = std::fs::remove_file(&dir);
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("crashbox-symtab"), "{error}");
        let truncated =
            std::env::temp_dir().join(format!("crashbox-symtab-short-{}", std::process::id()));
        std::fs::write(&truncated, b"\x7fELF\x02\x01\x01\0").expect("write");
        let error = SymbolTable::load(&truncated).unwrap_err();
        let _ = std::fs::remove_file(&truncated);
        assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
    }

    /// `VmRSS` and `VmHWM` of this process, in KiB.
    fn rss_kib() -> (u64, u64) {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// What loading costs: `cargo test --release --lib symtab::tests::load_cost
    /// -- --ignored --nocapture`, with `CRASHBOX_SYMTAB_FILES` a `:`-separated
    /// list of files (this test binary when unset).
    #[test]
    #[ignore = "a measurement, not a check"]
    fn load_cost() {
        let files =
            std::env::var("CRASHBOX_SYMTAB_FILES").unwrap_or_else(|_| "/proc/self/exe".into());
        println!("| file | size | functions | load | heap | RSS after | peak RSS during |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for path in files.split(':').filter(|p| !p.is_empty()) {
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            // Resets VmHWM to the current RSS (Linux 4.0 and later).
            let _ = std::fs::write("/proc/self/clear_refs", "5");
            let (before, _) = rss_kib();
            let start = std::time::Instant::now();
            let table = SymbolTable::load(Path::new(path)).expect("loads");
            let elapsed = start.elapsed();
            let (after, peak) = rss_kib();
            println!(
                "| {path} | {:.1} MiB | {} | {:.1} ms | {:.2} MiB | +{:.2} MiB | +{:.2} MiB |",
                size as f64 / (1 << 20) as f64,
                table.len(),
                elapsed.as_secs_f64() * 1e3,
                table.heap_bytes() as f64 / (1 << 20) as f64,
                after.saturating_sub(before) as f64 / 1024.0,
                peak.saturating_sub(before) as f64 / 1024.0,
            );
        }
    }
}
