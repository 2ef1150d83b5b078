//! Symbolication on the worker: addresses to frames (cached by address),
//! crashbox's own frames and std's panic machinery left out, in-app marking.
//!
//! Decisions go by source path where the build recorded one (crashbox's own
//! sources are known at build time; the registry, git checkouts, vendor
//! directories, the toolchain's `/rustc/` paths and the C library's relative
//! `./` paths are not the application's), and by name only where no path
//! exists (`debug = false`: full paths from the symbol table). The capture
//! already cut the stack at the caller's frame by address (see
//! `capture::stack`), so nothing here depends on names to find the top.
use std::collections::HashMap;
use std::sync::Arc;

use super::symtab::SymbolTable;
use crate::limits;
use crate::mapped_files;
use crate::record::Captured;
use crate::report::{Frame, Kind};

/// One symbol at an address (an address yields several when calls were inlined).
#[derive(Clone, Debug)]
pub(crate) struct Symbol {
    function: Option<Arc<str>>,
    file: Option<Arc<str>>,
    line: Option<u32>,
    column: Option<u32>,
}

/// What the fingerprint takes from a stack: per physical frame (one return
/// address), its function's bare name and whether it is in-app. Inlined
/// frames are left out: only some profiles have them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Physical {
    pub name: Option<Arc<str>>,
    pub in_app: bool,
}

/// Frames of a report, with what the fingerprint needs.
pub(crate) struct Symbolicated {
    pub frames: Vec<Frame>,
    pub physical: Vec<Physical>,
    /// The frames' addresses, one per physical frame.
    pub addresses: Vec<usize>,
    /// Whether the frame cap cut any.
    pub cut: bool,
}

/// One address's symbols with the decisions its frames need, made once
/// per address: crashbox's own symbols left out, each marked in-app or not
/// and as the toolchain's or not, and the physical frame the fingerprint
/// takes.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// The address, and as the frames write it.
    address: usize,
    hex: Arc<str>,
    symbols: Vec<Marked>,
    /// Whether every symbol the address resolved to is crashbox's own: its
    /// frame is left out.
    own: bool,
    physical: Physical,
}

/// A symbol and its marks.
#[derive(Clone, Debug)]
struct Marked {
    symbol: Symbol,
    in_app: bool,
    toolchain: bool,
}

impl Resolved {
    /// An address nothing is known about: its frame keeps the address only.
    fn unknown(address: usize) -> Resolved {
        Resolved::mark(address, Vec::new(), &InAppRules::default())
    }

    fn mark(address: usize, symbols: Vec<Symbol>, rules: &InAppRules) -> Resolved {
        let resolved = !symbols.is_empty();
        // crashbox's own frames, anywhere (a test's `testing::capture`, an
        // entry point that was not inlined).
        let symbols: Vec<Marked> = symbols
            .into_iter()
            .filter(|s| !is_own(s.function.as_deref(), s.file.as_deref()))
            .map(|symbol| Marked {
                in_app: rules.is_in_app(symbol.function.as_deref(), symbol.file.as_deref()),
                toolchain: is_toolchain(&symbol),
                symbol,
            })
            .collect();
        // The last symbol of an address is the function the code belongs
        // to; the ones before it were inlined into it.
        let physical = match symbols.last() {
            Some(outer) => Physical {
                name: outer
                    .symbol
                    .function
                    .as_deref()
                    .map(|f| bare_name(f).into()),
                in_app: outer.in_app,
            },
            None => Physical {
                name: None,
                in_app: false,
            },
        };
        Resolved {
            address,
            hex: format!("{address:#x}").into(),
            own: resolved && symbols.is_empty(),
            symbols,
            physical,
        }
    }
}

/// Address → marked symbols, so a repeated error is resolved from memory
/// and its frames need no decision made again.
pub(crate) struct SymbolCache {
    map: HashMap<usize, Arc<Resolved>>,
    rules: InAppRules,
    /// The executable's symbol table, loaded the first time line tables
    /// give a bare name (`None` inside: it could not be read).
    exe_symbols: Option<Option<SymbolTable>>,
}

/// Entries kept before the cache starts over; a long-running process with
/// many distinct stacks must not grow without bound.
const CACHE_CAPACITY: usize = 16 * 1024;

/// crashbox's own sources, as this build recorded them.
const OWN_SOURCES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/");

impl SymbolCache {
    /// A cache marking frames in-app by `rules`.
    pub(crate) fn new(rules: InAppRules) -> Self {
        SymbolCache {
            map: HashMap::new(),
            rules,
            exe_symbols: None,
        }
    }

    fn resolved(&mut self, address: usize) -> Arc<Resolved> {
        if let Some(hit) = self.map.get(&address) {
            return hit.clone();
        }
        let mut symbols = Vec::new();
        backtrace::resolve(address as *mut std::ffi::c_void, |sym| {
            symbols.push(Symbol {
                function: sym.name().map(|n| format!("{n:#}").into()),
                file: sym.filename().map(|p| p.to_string_lossy().into()),
                line: sym.lineno(),
                column: sym.colno(),
            });
        });
        crate::stats::STATS.addresses_resolved.inc();
        self.qualify(address, &mut symbols);
        let resolved = Arc::new(Resolved::mark(address, symbols, &self.rules));
        if self.map.len() >= CACHE_CAPACITY {
            self.map.clear();
        }
        self.map.insert(address, resolved.clone());
        resolved
    }
    /// Line tables (`debug = "line-tables-only"`) name functions without
    /// their module path; the executable's symbol table has the full path
    /// of the function an address is in (a few milliseconds and MiB to
    /// load, once). Inlined frames keep their bare names.
    fn qualify(&mut self, address: usize, symbols: &mut [Symbol]) {
        let Some(outer) = symbols.last_mut() else {
            return;
        };
        // Only names from line tables (they come with a file): a name from
        // the symbol table is already the full one (`main`, `_start`).
        let Some(bare) = outer
            .function
            .as_deref()
            .filter(|f| !f.contains("::") && outer.file.is_some())
        else {
            return;
        };
        let (modules, located) = mapped_files::locate(&[address]);
        let Some((module, offset)) = located.first().copied().flatten() else {
            return;
        };
        if !modules
            .get(module as usize)
            .is_some_and(|m| is_executable(&m.path))
        {
            return;
        }
        let table = self.exe_symbols.get_or_insert_with(|| {
            EXECUTABLE
                .as_deref()
                .and_then(|e| SymbolTable::load(e.as_ref()).ok())
        });
        let Some(full) = table.as_ref().and_then(|t| {
            t.vaddr_of_offset(offset)
                .and_then(|vaddr| t.lookup(vaddr.saturating_sub(1)))
        }) else {
            return;
        };
        if bare_name(full) == bare_name(bare) {
            outer.function = Some(full.into());
        }
    }

    /// Resolves `addresses` (innermost first) into frames. `resolvable[i]`
    /// is where `addresses[i]` can be looked up in this process (`None`: it
    /// cannot, and the frame keeps only its address).
    pub(crate) fn frames(
        &mut self,
        addresses: &[usize],
        resolvable: &[Option<usize>],
        top: Top,
    ) -> Symbolicated {
        let stack: Vec<(usize, Arc<Resolved>)> = addresses
            .iter()
            .enumerate()
            .map(|(i, &address)| {
                let resolved = match resolvable.get(i).copied().flatten() {
                    Some(here) => self.resolved(here),
                    None => Arc::new(Resolved::unknown(address)),
                };
                (address, resolved)
            })
            .collect();
        let stack: Vec<(usize, &Resolved)> = stack.iter().map(|(a, r)| (*a, &**r)).collect();
        assemble(&stack, top)
    }
}

/// What a stack's innermost frames are, and so what is left out of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Top {
    /// A capture's call site: the frames as walked.
    Capture,
    /// A panic's, or a signal the process raised (`abort`): std's machinery
    /// on top, left out, then std's helpers inlined into the first frame of
    /// other code, so the top frame is the code that panicked or aborted.
    Machinery,
    /// A fault's: frame 0 is the function whose instruction faulted, kept
    /// whoever's it is (a fault inside std is std's); only std's helpers
    /// inlined into it (`ptr::write`) are left out.
    Fault,
}

impl Top {
    /// The top of a capture of `kind`; `fault` for a crash at a faulting
    /// instruction (not a raised signal).
    pub(crate) fn of(kind: Kind, fault: bool) -> Top {
        match kind {
            Kind::Crash if fault => Top::Fault,
            Kind::Panic | Kind::Crash => Top::Machinery,
            _ => Top::Capture,
        }
    }

    /// The top of a finished report's stack: a crash's signal and code are
    /// in its `extra.crash`.
    pub(crate) fn of_report(report: &crate::report::Report) -> Top {
        let crash = report.extra.get("crash");
        let number = |key: &str| {
            crash
                .and_then(|c| c.get(key))
                .and_then(serde_json::Value::as_i64)
                .and_then(|n| i32::try_from(n).ok())
        };
        let fault = matches!(
            (number("number"), number("code")),
            (Some(signal), Some(code)) if crate::crash::is_synchronous_fault(signal, code)
        );
        Top::of(report.kind, fault)
    }
}

/// Where each captured address can be resolved in this process (see
/// [`SymbolCache::frames`]), except addresses in the system's shared
/// libraries: resolving those loads the C library's separate debug files
/// (tens of MiB and milliseconds) to name frames that are never in-app.
/// They keep their address and image.
pub(crate) fn resolvable(captured: &Captured) -> Vec<Option<usize>> {
    let mut resolvable = captured.resolvable_addresses();
    let located;
    let (modules, located) = if captured.live && captured.located.is_empty() {
        located = mapped_files::locate(&captured.addresses);
        (&located.0, &located.1)
    } else {
        (&captured.modules, &captured.located)
    };
    for (slot, place) in resolvable.iter_mut().zip(located) {
        let Some(module) = place.and_then(|(m, _)| modules.get(m as usize)) else {
            continue;
        };
        if !is_executable(&module.path) && is_system_library(&module.path) {
            *slot = None;
        }
    }
    resolvable
}

/// This process's executable, as the module table names it; read once.
static EXECUTABLE: once_cell::sync::Lazy<Option<String>> = once_cell::sync::Lazy::new(|| {
    std::env::current_exe()
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
});

fn is_executable(path: &str) -> bool {
    EXECUTABLE.as_deref() == Some(path)
}

/// A shared library installed by the system (the C library, the loader).
fn is_system_library(path: &str) -> bool {
    [
        "/lib/",
        "/lib32/",
        "/lib64/",
        "/usr/lib/",
        "/usr/lib32/",
        "/usr/lib64/",
    ]
    .iter()
    .any(|dir| path.starts_with(dir))
}

/// Frames resolved elsewhere (by `crashbox symbolicate`, from a debug
/// file), one entry per captured address with its symbols innermost first
/// (`function`, `file`, `line` and `column` of each are used), turned into a
/// report's frames as a live capture's are: crashbox's own and std's panic
/// machinery left out, in-app marked (by source path, else by the `include`
/// name prefixes).
#[doc(hidden)]
pub fn frames_from_resolved(
    report: &crate::report::Report,
    stack: Vec<(usize, Vec<Frame>)>,
    include: Vec<String>,
) -> Vec<Frame> {
    let stack = stack
        .into_iter()
        .map(|(address, frames)| {
            let symbols = frames
                .into_iter()
                .filter(|f| f.function.is_some() || f.file.is_some())
                .map(|f| Symbol {
                    function: f.function,
                    file: f.file,
                    line: f.line,
                    column: f.column,
                })
                .collect();
            (address, symbols)
        })
        .collect();
    let rules = InAppRules {
        include,
        exclude: Vec::new(),
    };
    build(stack, Top::of_report(report), &rules).frames
}

/// Frames given with a capture (an error's origin, resolved where it was
/// created): crashbox's own left out, in-app marked by `rules`, at most
/// [`limits::MAX_FRAMES`]. They carry no address the images could be
/// found by.
pub(crate) fn given(frames: Vec<Frame>, rules: &InAppRules) -> Symbolicated {
    let mut kept: Vec<Frame> = frames
        .into_iter()
        .filter(|f| !is_own(f.function.as_deref(), f.file.as_deref()))
        .map(|mut f| {
            f.in_app = rules.is_in_app(f.function.as_deref(), f.file.as_deref());
            f
        })
        .collect();
    let cut = kept.len() > limits::MAX_FRAMES;
    kept.truncate(limits::MAX_FRAMES);
    let physical = kept
        .iter()
        .map(|f| Physical {
            name: f.function.as_deref().map(|n| bare_name(n).into()),
            in_app: f.in_app,
        })
        .collect();
    Symbolicated {
        frames: kept,
        physical,
        addresses: Vec::new(),
        cut,
    }
}

/// Drops the machinery that recorded an error's origin from the top of its
/// frames: the toolchain's backtrace code and the wrapper's own functions
/// (names starting with one of `wrapper`'s prefixes), up to the code that
/// created the error.
#[cfg(any(feature = "anyhow", feature = "eyre"))]
pub(crate) fn trim_origin(frames: &mut Vec<Frame>, wrapper: &[&str]) {
    let machinery = frames
        .iter()
        .take_while(|f| {
            let name = f.function.as_deref().unwrap_or("");
            f.file.as_deref().is_some_and(is_toolchain_file)
                || (f.file.is_none() && is_toolchain_name(name))
                || wrapper.iter().any(|p| names_crate(name, p))
        })
        .count();
    if machinery < frames.len() {
        frames.drain(..machinery);
    }
}

/// Turns resolved physical frames into the report's frames.
fn build(stack: Vec<(usize, Vec<Symbol>)>, top: Top, rules: &InAppRules) -> Symbolicated {
    let stack: Vec<(usize, Resolved)> = stack
        .into_iter()
        .map(|(address, symbols)| (address, Resolved::mark(address, symbols, rules)))
        .collect();
    let stack: Vec<(usize, &Resolved)> = stack.iter().map(|(a, r)| (*a, r)).collect();
    assemble(&stack, top)
}

/// The report's frames from marked physical frames (innermost first):
/// null addresses and crashbox's own frames left out, a panic's machinery
/// trimmed from the top, at most [`limits::MAX_FRAMES`].
fn assemble(stack: &[(usize, &Resolved)], top: Top) -> Symbolicated {
    let mut stack: Vec<(usize, &[Marked], &Resolved)> = stack
        .iter()
        .filter(|(address, resolved)| *address != 0 && !resolved.own)
        .map(|(address, resolved)| (*address, &resolved.symbols[..], *resolved))
        .collect();
    match top {
        Top::Machinery => trim_panic_machinery(&mut stack),
        Top::Fault => trim_inlined_toolchain(&mut stack),
        Top::Capture => {}
    }
    let mut frames = Vec::with_capacity(stack.len());
    let mut physical = Vec::with_capacity(stack.len());
    let mut addresses = Vec::with_capacity(stack.len());
    for (address, symbols, resolved) in &stack {
        // A replayed capture's addresses are resolved where this process has them.
        let address_hex: Arc<str> = if resolved.address == *address {
            resolved.hex.clone()
        } else {
            format!("{address:#x}").into()
        };
        if symbols.is_empty() {
            frames.push(Frame {
                function: None,
                file: None,
                line: None,
                column: None,
                in_app: false,
                address: address_hex.clone(),
            });
        }
        for marked in symbols.iter() {
            let sym = &marked.symbol;
            frames.push(Frame {
                function: sym.function.clone(),
                file: sym.file.clone(),
                line: sym.line,
                column: sym.column,
                in_app: marked.in_app,
                address: address_hex.clone(),
            });
        }
        physical.push(resolved.physical.clone());
        addresses.push(*address);
    }
    let cut = frames.len() > limits::MAX_FRAMES;
    frames.truncate(limits::MAX_FRAMES);
    physical.truncate(limits::MAX_FRAMES);
    addresses.truncate(limits::MAX_FRAMES);
    Symbolicated {
        frames,
        physical,
        addresses,
        cut,
    }
}

/// Drops std's panic machinery from the top of a panic's stack: the frames
/// the capture could not tell by address (under `panic = "abort"`, or a
/// panic entry point it did not learn), then std functions inlined into the
/// first frame of other code (`Index::index`, `Option::unwrap`), so the top
/// frame is the code that panicked. Frames with no symbols stop it.
fn trim_panic_machinery(stack: &mut Vec<(usize, &[Marked], &Resolved)>) {
    let machinery = stack
        .iter()
        .take_while(|(_, symbols, _)| !symbols.is_empty() && symbols.iter().all(|s| s.toolchain))
        .count();
    if machinery == stack.len() {
        // All std: a panic raised by std itself on a thread of its own. Keep it.
        return;
    }
    stack.drain(..machinery);
    trim_inlined_toolchain(stack);
}

/// Drops std functions inlined into the first frame of other code
/// (`Index::index`, `Option::unwrap`, `ptr::write`).
fn trim_inlined_toolchain(stack: &mut [(usize, &[Marked], &Resolved)]) {
    if let Some((_, symbols, _)) = stack.first_mut() {
        let inlined = symbols.iter().take_while(|s| s.toolchain).count();
        if inlined < symbols.len() {
            *symbols = &symbols[inlined..];
        }
    }
}

/// A symbol of crashbox itself: by source path, or by name without one.
fn is_own(function: Option<&str>, file: Option<&str>) -> bool {
    let name = function.unwrap_or("");
    // crashbox's unit tests live in its sources but are not crashbox.
    if name.contains("::tests::") {
        return false;
    }
    match file {
        Some(file) => {
            file.starts_with(OWN_SOURCES)
                || file.starts_with(crashbox_api::__SOURCE_DIR)
                || is_published_crashbox(file)
        }
        None => {
            name.starts_with("crashbox::")
                || name.starts_with("<crashbox::")
                // The facade's (`crashbox-api`): its entry points are inlined
                // into the caller, so only a build without debug info, which
                // has no inlined frames, shows them by name.
                || name.starts_with("crashbox_api::")
                || name.starts_with("<crashbox_api::")
                || name.contains(" as crashbox_api::")
        }
    }
}

/// crashbox's or its facade's sources as another build may have recorded
/// them: a registry or vendored copy (`…/crashbox-0.1.0/src/…`,
/// `…/crashbox-api-0.1.0/src/…`, `…/vendor/crashbox/src/…`), for debug
/// files resolved by `crashbox symbolicate`.
fn is_published_crashbox(file: &str) -> bool {
    if file.contains("/vendor/crashbox/src/") || file.contains("/vendor/crashbox-api/src/") {
        return true;
    }
    file.split("/crashbox-").skip(1).any(|rest| {
        let rest = rest.strip_prefix("api-").unwrap_or(rest);
        rest.starts_with(|c: char| c.is_ascii_digit())
            && rest
                .split_once('/')
                .is_some_and(|(_, tail)| tail.starts_with("src/"))
    })
}

/// A symbol of the Rust toolchain's libraries (std, core, alloc).
fn is_toolchain(sym: &Symbol) -> bool {
    match &sym.file {
        Some(file) => is_toolchain_file(file),
        None => sym.function.as_deref().is_some_and(is_toolchain_name),
    }
}

fn is_toolchain_file(file: &str) -> bool {
    file.starts_with("/rustc/")
        || file.contains("/rustlib/src/rust/library/")
        || (file.contains("/rustc-") && file.contains("/library/"))
}

/// A name from the toolchain's libraries, where no source path tells.
fn is_toolchain_name(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "std::",
        "core::",
        "alloc::",
        "__rust",
        "rust_begin_unwind",
        "rust_panic",
        "__rustc::",
    ];
    let name = name
        .trim_start_matches(['<', '&'])
        .trim_start_matches("mut ");
    PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The C library and the dynamic loader: relative source paths (glibc is
/// built from its source tree) or their well-known entry points.
fn is_system(function: &str, file: Option<&str>) -> bool {
    if let Some(f) = file {
        return f.starts_with("./") || f.starts_with("../");
    }
    const NAMES: &[&str] = &[
        "_start",
        "start_thread",
        "clone",
        "clone3",
        "__clone",
        "__clone3",
        "__libc_start_main",
        "__libc_start_call_main",
        "__libc_start_main_impl",
        "__GI___clone3",
        "__GI___clone",
    ];
    NAMES.contains(&function) || function.starts_with("_dl_")
}

/// A dependency's source: the cargo registry, a git checkout, a vendor directory.
fn is_dependency_file(file: &str) -> bool {
    const PARTS: &[&str] = &[
        "/registry/src/",
        "/.cargo/registry/",
        "/.cargo/git/",
        "/git/checkouts/",
        "/vendor/",
    ];
    PARTS.iter().any(|p| file.contains(p))
}

/// The last path segment of a function name, without generic arguments,
/// with closures and async bodies under one name: what every unstripped
/// profile gives alike (`debug = false` names from the symbol table carry
/// full paths, line tables bare names).
pub(crate) fn bare_name(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut depth = 0usize;
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' => depth += 1,
            b'>' if i > 0 && bytes[i - 1] == b'-' => {}
            b'>' => depth = depth.saturating_sub(1),
            b':' if depth == 0 && bytes.get(i + 1) == Some(&b':') => {
                start = i + 2;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    let segment = &name[start..];
    let segment = segment.split('<').next().unwrap_or(segment);
    if segment.starts_with('{') {
        "{closure}".to_owned()
    } else {
        segment.to_owned()
    }
}

/// Whether `name` starts with `prefix`, or is an impl whose self type or
/// trait does (`<app::Config as core::fmt::Display>::fmt`,
/// `<core::result::Result<T,E> as app::Report>::report`: by the orphan
/// rule, the impl is in one of those crates' code).
fn names_crate(name: &str, prefix: &str) -> bool {
    let name = name.trim_start_matches(['<', '&']);
    name.starts_with(prefix)
        || name
            .split(" as ")
            .skip(1)
            .any(|rest| rest.starts_with(prefix))
}

/// Decides which frames belong to the application.
#[derive(Clone, Debug, Default)]
pub(crate) struct InAppRules {
    /// Name prefixes that are in-app (`Options::in_app_include`, the
    /// application's crate names).
    pub include: Vec<String>,
    /// Name prefixes that are not (`Options::in_app_exclude`).
    pub exclude: Vec<String>,
}

impl InAppRules {
    /// In order: crashbox, the toolchain's sources, the C library and the
    /// loader are never in-app; an exclude prefix says no; an include prefix
    /// says yes (matched at the start of the name, or of an impl's trait);
    /// a dependency's source (registry, git, vendor) says no; any other
    /// source file (the application's workspace) says yes; a name without a
    /// source file (`debug = false`) is in-app only by an include prefix.
    pub(crate) fn is_in_app(&self, function: Option<&str>, file: Option<&str>) -> bool {
        let name = function.unwrap_or("");
        if is_own(function, file) || is_system(name, file) {
            return false;
        }
        if file.is_some_and(is_toolchain_file) {
            return false;
        }
        if self.exclude.iter().any(|p| names_crate(name, p)) {
            return false;
        }
        if self.include.iter().any(|p| names_crate(name, p)) {
            return true;
        }
        match file {
            Some(f) => !is_dependency_file(f),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests;
