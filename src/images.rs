//! The loaded ELF images (executable and shared libraries) that captured
//! addresses fall in, with what a server needs to symbolicate them later:
//! path, GNU build id, load address and size.
//!
//! The table comes from the dynamic loader (`dl_iterate_phdr`) and build ids
//! are read from the images' notes in memory, so a lookup does no file I/O.
use std::ffi::{c_int, c_void, CStr};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::report::{debug_id, Image};

/// One loaded image and the address range it covers.
#[derive(Clone, Debug)]
struct Loaded {
    start: usize,
    end: usize,
    image: Image,
}

struct Table {
    images: Vec<Loaded>,
    read_at: Option<Instant>,
}

static TABLE: Mutex<Table> = Mutex::new(Table {
    images: Vec::new(),
    read_at: None,
});

/// The table is read again for an address it does not cover at most this
/// often: some addresses (generated code) belong to no image and never will.
const REREAD_INTERVAL: Duration = Duration::from_secs(1);

/// Build ids longer than this are cut: real ones are 16 or 20 bytes, and a
/// corrupt note must not make a report huge.
const MAX_BUILD_ID: usize = 64;

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const NT_GNU_BUILD_ID: u32 = 3;

/// The loader names the main program `""`: its path comes from
/// `/proc/self/exe`, read once.
fn executable_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        std::fs::read_link("/proc/self/exe")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    })
}

/// The GNU build id in a note segment's bytes.
fn build_id_in_notes(notes: &[u8], align: usize) -> Option<&[u8]> {
    let pad = |n: usize| n.checked_add(align - 1).map(|n| n & !(align - 1));
    let mut rest = notes;
    while rest.len() >= 12 {
        let word = |i: usize| u32::from_ne_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
        let (name_size, desc_size, kind) = (word(0) as usize, word(4) as usize, word(8));
        let name_end = 12usize.checked_add(pad(name_size)?)?;
        let desc_end = name_end.checked_add(desc_size)?;
        if desc_end > rest.len() {
            return None;
        }
        if kind == NT_GNU_BUILD_ID && rest.get(12..12 + name_size)? == b"GNU\0" {
            let id = &rest[name_end..desc_end];
            return Some(&id[..id.len().min(MAX_BUILD_ID)]);
        }
        rest = rest.get(pad(desc_end)?.min(rest.len())..)?;
    }
    None
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Called by the loader for each loaded object; `data` is the `Vec<Loaded>`
/// being filled. Nothing here may unwind into the loader.
unsafe extern "C" fn visit(
    info: *mut libc::dl_phdr_info,
    _size: usize,
    data: *mut c_void,
) -> c_int {
    // SAFETY: `data` is the `&mut Vec<Loaded>` passed to `dl_iterate_phdr`
    // below, and `info` is valid for the duration of this call.
    let (out, info) = unsafe { (&mut *(data as *mut Vec<Loaded>), &*info) };
    if info.dlpi_phdr.is_null() || info.dlpi_phnum == 0 {
        return 0;
    }
    // SAFETY: the loader hands out `dlpi_phnum` program headers at `dlpi_phdr`.
    let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
    let bias = info.dlpi_addr as usize;
    let loads = || headers.iter().filter(|h| h.p_type == PT_LOAD);
    let (Some(low), Some(high)) = (
        loads().map(|h| h.p_vaddr as usize).min(),
        loads()
            .map(|h| (h.p_vaddr as usize).saturating_add(h.p_memsz as usize))
            .max(),
    ) else {
        return 0;
    };
    let mapped = |from: usize, len: usize| {
        loads().any(|h| {
            let start = h.p_vaddr as usize;
            from >= start
                && from
                    .checked_add(len)
                    .is_some_and(|end| end <= start.saturating_add(h.p_filesz as usize))
        })
    };
    let build_id = headers
        .iter()
        .filter(|h| h.p_type == PT_NOTE && h.p_memsz > 0)
        // Only notes inside a loaded segment's file-backed part are readable.
        .filter(|h| mapped(h.p_vaddr as usize, h.p_memsz as usize))
        .find_map(|h| {
            let align = if h.p_align == 8 { 8 } else { 4 };
            let at = bias.wrapping_add(h.p_vaddr as usize) as *const u8;
            // SAFETY: the note lies inside a loaded segment of this object,
            // mapped readable by the loader for as long as the object is loaded
            // (and it cannot be unloaded while the loader runs this callback).
            let notes = unsafe { std::slice::from_raw_parts(at, h.p_memsz as usize) };
            build_id_in_notes(notes, align).map(|id| id.to_vec())
        });
    let name = if info.dlpi_name.is_null() {
        String::new()
    } else {
        // SAFETY: a non-null `dlpi_name` is a NUL-terminated string.
        unsafe { CStr::from_ptr(info.dlpi_name) }
            .to_string_lossy()
            .into_owned()
    };
    let code_file = if name.is_empty() {
        executable_path().to_owned()
    } else {
        name
    };
    let start = bias.wrapping_add(low);
    let size = high - low;
    out.push(Loaded {
        start,
        end: start.saturating_add(size),
        image: Image {
            ty: "elf".to_owned(),
            code_file,
            code_id: build_id.as_deref().filter(|id| !id.is_empty()).map(hex),
            debug_id: build_id
                .as_deref()
                .filter(|id| !id.is_empty())
                .map(debug_id),
            image_addr: format!("{start:#x}"),
            image_size: size as u64,
        },
    });
    0
}

/// Every loaded image, as the loader lists them.
fn read_images() -> Vec<Loaded> {
    // Resolve the executable's path before entering the loader's lock.
    executable_path();
    let mut out: Vec<Loaded> = Vec::new();
    // SAFETY: `visit` matches the callback type and only uses `data` as the
    // `Vec<Loaded>` it is given here.
    unsafe { libc::dl_iterate_phdr(Some(visit), &mut out as *mut Vec<Loaded> as *mut c_void) };
    out
}

/// Reads the image table now (the worker does this at start, so a panic
/// rarely pays for it).
pub(crate) fn preload() {
    let mut table = TABLE.lock().unwrap_or_else(PoisonError::into_inner);
    if table.read_at.is_none() {
        table.images = read_images();
        table.read_at = Some(Instant::now());
    }
}

/// Every loaded image, the executable first (the loader's order), read
/// afresh: what a crash record carries.
pub(crate) fn all() -> Vec<Image> {
    let mut table = TABLE.lock().unwrap_or_else(PoisonError::into_inner);
    table.images = read_images();
    table.read_at = Some(Instant::now());
    table.images.iter().map(|l| l.image.clone()).collect()
}

/// The images `addresses` fall in, each once, in the order addresses first
/// fall in them.
pub(crate) fn images_for(addresses: &[usize]) -> Vec<Image> {
    let mut table = TABLE.lock().unwrap_or_else(PoisonError::into_inner);
    let find = |images: &[Loaded], a: usize| images.iter().position(|l| l.start <= a && a < l.end);
    let stale = table
        .read_at
        .is_none_or(|at| at.elapsed() >= REREAD_INTERVAL);
    if stale && addresses.iter().any(|&a| find(&table.images, a).is_none()) {
        // Perhaps a library was loaded since the table was read.
        table.images = read_images();
        table.read_at = Some(Instant::now());
    }
    let mut seen: Vec<usize> = Vec::new();
    for &a in addresses {
        if let Some(i) = find(&table.images, a) {
            if !seen.contains(&i) {
                seen.push(i);
            }
        }
    }
    seen.into_iter()
        .map(|i| table.images[i].image.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GNU build id of the ELF file at `path`, read from its section
    /// headers (not through the loader).
    fn build_id_of_file(path: &str) -> Option<String> {
        use object::{Object, ObjectSection};
        let data = std::fs::read(path).ok()?;
        let file = object::File::parse(&*data).ok()?;
        let section = file.section_by_name(".note.gnu.build-id")?;
        let bytes = section.data().ok()?;
        build_id_in_notes(bytes, 4).map(hex)
    }

    #[inline(never)]
    fn here() -> usize {
        here as *const () as usize
    }

    #[test]
    fn the_test_binary_is_found_with_its_build_id() {
        let address = here();
        let images = images_for(&[address, address + 1, 0]);
        assert_eq!(images.len(), 1, "one image, once: {images:?}");
        let image = &images[0];
        assert_eq!(image.ty, "elf");
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(image.code_file, exe.to_string_lossy());
        let from_file = build_id_of_file(&image.code_file).expect("the test binary has a build id");
        assert_eq!(image.code_id.as_deref(), Some(from_file.as_str()));
        assert_eq!(
            image.code_id.as_ref().unwrap().len(),
            40,
            "a SHA-1 build id"
        );
        assert!(image
            .code_id
            .as_ref()
            .unwrap()
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        let id = image.debug_id.as_deref().unwrap();
        let code = image.code_id.as_deref().unwrap();
        assert_eq!(
            &id[..8],
            format!(
                "{}{}{}{}",
                &code[6..8],
                &code[4..6],
                &code[2..4],
                &code[0..2]
            )
        );
        assert!(image.contains(address as u64));
        let start = image.start().unwrap() as usize;
        assert!(start <= address && address < start + image.image_size as usize);
    }

    #[test]
    fn images_come_in_first_seen_order() {
        let libc_address = libc::getpid as *const () as usize;
        let own = here();
        let images = images_for(&[libc_address, own, libc_address]);
        assert_eq!(images.len(), 2, "{images:?}");
        assert!(images[0].code_file.contains("libc"), "{images:?}");
        assert!(images[1].contains(own as u64));
        assert!(images[0].code_id.is_some(), "{images:?}");
        let reversed = images_for(&[own, libc_address]);
        assert_eq!(reversed[0], images[1]);
        assert_eq!(reversed[1], images[0]);
    }

    #[test]
    fn notes_are_parsed_with_their_padding() {
        let mut notes = Vec::new();
        // A note of another kind, with a name that needs padding.
        notes.extend_from_slice(&5u32.to_ne_bytes());
        notes.extend_from_slice(&4u32.to_ne_bytes());
        notes.extend_from_slice(&1u32.to_ne_bytes());
        notes.extend_from_slice(b"Linux\0\0\0");
        notes.extend_from_slice(&[1, 2, 3, 4]);
        notes.extend_from_slice(&4u32.to_ne_bytes());
        notes.extend_from_slice(&3u32.to_ne_bytes());
        notes.extend_from_slice(&NT_GNU_BUILD_ID.to_ne_bytes());
        notes.extend_from_slice(b"GNU\0");
        notes.extend_from_slice(&[0xc0, 0xff, 0xee]);
        assert_eq!(build_id_in_notes(&notes, 4), Some(&[0xc0, 0xff, 0xee][..]));
        // Cut short: no build id, no panic.
        for len in 0..notes.len() - 1 {
            assert_eq!(build_id_in_notes(&notes[..len], 4), None);
        }
    }
}
