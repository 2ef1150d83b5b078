//! Stack capture (addresses only, on the caller's thread) and symbolication
//! with an address cache, in-app marking and trimming (on the worker).
use std::collections::HashMap;
use std::sync::Arc;

use crate::limits;
use crate::report::Frame;

/// Walks the stack and records return addresses, innermost first. Returns
/// whether the walk stopped at [`limits::MAX_RAW_FRAMES`].
#[inline(never)]
pub(crate) fn capture_addresses() -> (Vec<usize>, bool) {
    let mut addresses = Vec::with_capacity(64);
    let mut cut = false;
    let mut visit = |frame: &backtrace::Frame| {
        if addresses.len() == limits::MAX_RAW_FRAMES {
            cut = true;
            return false;
        }
        addresses.push(frame.ip() as usize);
        true
    };
    // `backtrace::trace` takes the crate's global lock, which the worker holds
    // while it loads debug info (tens of milliseconds): a capture must not
    // wait for that. The lock exists for Windows' dbghelp; the unwinder used
    // elsewhere is thread-safe.
    #[cfg(unix)]
    // SAFETY: on unix the walk uses the system unwinder (`_Unwind_Backtrace`),
    // which is safe to call from several threads at once.
    unsafe {
        backtrace::trace_unsynchronized(&mut visit)
    };
    #[cfg(not(unix))]
    backtrace::trace(&mut visit);
    (addresses, cut)
}

/// One symbol at an address (an address yields several when calls were inlined).
#[derive(Clone, Debug)]
pub(crate) struct Symbol {
    function: Option<String>,
    file: Option<String>,
    line: Option<u32>,
    column: Option<u32>,
}

/// Address → symbols, so a repeated error is resolved from memory.
pub(crate) struct SymbolCache {
    map: HashMap<usize, Arc<[Symbol]>>,
}

/// Entries kept before the cache starts over; a long-running process with
/// many distinct stacks must not grow without bound.
const CACHE_CAPACITY: usize = 16 * 1024;

impl SymbolCache {
    pub(crate) fn new() -> Self {
        SymbolCache {
            map: HashMap::new(),
        }
    }

    fn symbols(&mut self, address: usize) -> Arc<[Symbol]> {
        if let Some(hit) = self.map.get(&address) {
            return hit.clone();
        }
        let mut symbols = Vec::new();
        backtrace::resolve(address as *mut std::ffi::c_void, |sym| {
            symbols.push(Symbol {
                function: sym.name().map(|n| format!("{n:#}")),
                file: sym.filename().map(|p| p.to_string_lossy().into_owned()),
                line: sym.lineno(),
                column: sym.colno(),
            });
        });
        crate::stats::STATS.addresses_resolved.inc();
        let symbols: Arc<[Symbol]> = symbols.into();
        if self.map.len() >= CACHE_CAPACITY {
            self.map.clear();
        }
        self.map.insert(address, symbols.clone());
        symbols
    }

    /// Resolves `addresses` into frames, innermost first, drops crashbox's and
    /// the panic machinery's frames from the top, marks in-app frames and caps
    /// the count. Returns the frames and whether the cap cut any.
    ///
    /// `resolvable[i]` is where `addresses[i]` can be looked up in this
    /// process (`None`: it cannot, and the frame keeps only its address).
    pub(crate) fn frames(
        &mut self,
        addresses: &[usize],
        resolvable: &[Option<usize>],
        in_app: &InAppRules,
    ) -> (Vec<Frame>, bool) {
        let mut frames = Vec::with_capacity(addresses.len());
        for (i, &address) in addresses.iter().enumerate() {
            let symbols = match resolvable.get(i).copied().flatten() {
                Some(here) => self.symbols(here),
                None => Arc::from(Vec::new()),
            };
            let address_hex = format!("{address:#x}");
            if symbols.is_empty() {
                frames.push(Frame {
                    function: None,
                    file: None,
                    line: None,
                    column: None,
                    in_app: false,
                    address: address_hex,
                });
                continue;
            }
            for sym in symbols.iter() {
                frames.push(Frame {
                    function: sym.function.clone(),
                    file: sym.file.clone(),
                    line: sym.line,
                    column: sym.column,
                    in_app: in_app.is_in_app(sym.function.as_deref(), sym.file.as_deref()),
                    address: address_hex.clone(),
                });
            }
        }
        frames.drain(..machinery_depth(&frames));
        let cut = frames.len() > limits::MAX_FRAMES;
        frames.truncate(limits::MAX_FRAMES);
        (frames, cut)
    }
}

/// How many frames at the top of the stack belong to the capture itself:
/// everything down to the last crashbox or panic-machinery frame that comes
/// before the first frame of other code. Generic std frames in between
/// (`catch_unwind`, closure calls) go with it.
fn machinery_depth(frames: &[Frame]) -> usize {
    let mut depth = 0;
    for (i, frame) in frames.iter().enumerate() {
        let Some(function) = frame.function.as_deref() else {
            break;
        };
        if is_machinery(function) {
            depth = i + 1;
        } else if !is_std_plumbing(function) {
            break;
        }
    }
    depth
}

/// std frames that can sit between two machinery frames.
fn is_std_plumbing(function: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "std::",
        "core::",
        "alloc::",
        "<std::",
        "<core::",
        "<alloc::",
        "__rust_try",
    ];
    PREFIXES.iter().any(|p| function.starts_with(p))
}

/// Frames between the user's code and the capture: crashbox itself, the stack
/// walker, and std's panic and unwrap machinery.
fn is_machinery(function: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "backtrace::",
        "std::panicking::",
        "core::panicking::",
        "std::panic::",
        "std::sys::backtrace::",
        "std::sys_common::backtrace::",
        "rust_begin_unwind",
        "__rustc::",
        "__rust_",
        "<alloc::boxed::Box<F,A> as core::ops::function::Fn",
        "core::ops::function::Fn",
        "core::result::unwrap_failed",
        "core::option::unwrap_failed",
        "core::option::expect_failed",
        "core::result::Result<T,E>::unwrap",
        "core::result::Result<T,E>::expect",
        "core::option::Option<T>::unwrap",
        "core::option::Option<T>::expect",
    ];
    if PREFIXES.iter().any(|p| function.starts_with(p)) {
        return true;
    }
    let own = function.starts_with("crashbox::") || function.contains(" as crashbox::");
    own && !function.contains("::tests::")
}

/// Decides which frames belong to the application.
#[derive(Clone, Debug, Default)]
pub(crate) struct InAppRules {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl InAppRules {
    /// In order: an exclude prefix says no; std, core, alloc, the stack walker
    /// and crashbox say no; an include prefix says yes; a source file from
    /// the toolchain or the cargo registry says no; any other known source
    /// file (the application's workspace) says yes; otherwise no.
    pub(crate) fn is_in_app(&self, function: Option<&str>, file: Option<&str>) -> bool {
        let name = function.map(|f| f.trim_start_matches('<')).unwrap_or("");
        if self.exclude.iter().any(|p| name.starts_with(p.as_str())) {
            return false;
        }
        const NEVER: &[&str] = &[
            "std::",
            "core::",
            "alloc::",
            "backtrace::",
            "crashbox::",
            "__rust",
            "rust_",
            "_start",
            "__libc",
        ];
        if NEVER.iter().any(|p| name.starts_with(p)) && !name.contains("::tests::") {
            return false;
        }
        if self.include.iter().any(|p| name.starts_with(p.as_str())) {
            return true;
        }
        match file {
            Some(f) => {
                !(f.starts_with("/rustc/")
                    || f.contains("/rustlib/")
                    || f.contains("/.cargo/registry/")
                    || f.contains("/.cargo/git/")
                    || f.starts_with("/usr/")
                    || f.contains("/glibc"))
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_app_rules() {
        let rules = InAppRules {
            include: vec!["myapp::".into()],
            exclude: vec!["myapp::vendored::".into()],
        };
        assert!(rules.is_in_app(Some("myapp::main"), None));
        assert!(!rules.is_in_app(Some("myapp::vendored::x"), Some("src/vendored.rs")));
        assert!(!rules.is_in_app(
            Some("std::rt::lang_start"),
            Some("/rustc/abc/library/std/src/rt.rs")
        ));
        assert!(!rules.is_in_app(Some("crashbox::capture_error"), Some("src/lib.rs")));
        assert!(!rules.is_in_app(
            Some("serde_json::de::from_str"),
            Some("/home/u/.cargo/registry/src/index/serde_json-1.0/src/de.rs")
        ));
        assert!(rules.is_in_app(Some("other::thing"), Some("src/other.rs")));
        assert!(rules.is_in_app(Some("<myapp::Config as core::fmt::Display>::fmt"), None));
        assert!(!rules.is_in_app(Some("unknown"), None));
    }

    #[test]
    fn machinery_is_recognised() {
        assert!(is_machinery("crashbox::capture::run"));
        assert!(is_machinery(
            "<core::result::Result<T,E> as crashbox::ResultExt<T,E>>::report"
        ));
        assert!(is_machinery("std::panicking::rust_panic_with_hook"));
        assert!(is_machinery("core::result::unwrap_failed"));
        assert!(!is_machinery(
            "crashbox::pipeline::tests::frames_start_at_the_caller"
        ));
        assert!(!is_machinery("myapp::main"));
    }

    fn frame(function: &str) -> Frame {
        Frame {
            function: Some(function.into()),
            file: None,
            line: None,
            column: None,
            in_app: false,
            address: "0x1".into(),
        }
    }

    #[test]
    fn trimming_stops_at_the_first_frame_of_other_code() {
        let frames: Vec<Frame> = [
            "backtrace::backtrace::trace",
            "crashbox::capture::backtrace::capture_addresses",
            "<core::panic::unwind_safe::AssertUnwindSafe<F> as core::ops::function::FnOnce<()>>::call_once",
            "std::panicking::catch_unwind",
            "crashbox::capture::run",
            "<core::result::Result<T,E> as crashbox::ResultExt<T,E>>::report",
            "myapp::main",
            "core::ops::function::FnOnce::call_once",
            "crashbox::testing::capture",
        ]
        .into_iter()
        .map(frame)
        .collect();
        assert_eq!(machinery_depth(&frames), 6);
        let panic_frames: Vec<Frame> = [
            "__rustc::rust_begin_unwind",
            "core::panicking::panic_bounds_check",
            "<usize as core::slice::index::SliceIndex<[T]>>::index",
            "myapp::lookup",
        ]
        .into_iter()
        .map(frame)
        .collect();
        assert_eq!(machinery_depth(&panic_frames), 2, "std's own frames stay");
    }

    #[inline(never)]
    fn capture_here() -> Vec<usize> {
        capture_addresses().0
    }

    #[test]
    fn repeated_addresses_are_resolved_once() {
        let mut cache = SymbolCache::new();
        let rules = InAppRules::default();
        let addresses = capture_here();
        let live: Vec<Option<usize>> = addresses.iter().map(|&a| Some(a)).collect();
        let (first, _) = cache.frames(&addresses, &live, &rules);
        let cached = cache.map.len();
        let (second, _) = cache.frames(&addresses, &live, &rules);
        assert_eq!(cache.map.len(), cached, "no new entries for the same stack");
        assert_eq!(first, second);
        assert!(first.iter().any(|f| f
            .function
            .as_deref()
            .is_some_and(|n| n.contains("capture_here"))));
    }
}
