//! Unit tests of symbolication: trimming, in-app rules, names.
use super::*;

fn sym(function: &str, file: Option<&str>) -> Symbol {
    Symbol {
        function: Some(function.into()),
        file: file.map(Into::into),
        line: Some(1),
        column: None,
    }
}

#[test]
fn in_app_by_source_path() {
    let rules = InAppRules::default();
    let yes = |f: &str, file: &str| rules.is_in_app(Some(f), Some(file));
    // The application's workspace, member crates included.
    assert!(yes("main", "/home/u/app/src/main.rs"));
    assert!(yes("search", "/home/u/ripgrep/crates/core/search.rs"));
    assert!(
        yes("run", "/usr/src/app/src/main.rs"),
        "a container's /usr/src"
    );
    // Dependencies.
    assert!(!yes(
        "from_str",
        "/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/serde_json-1.0.1/src/de.rs"
    ));
    assert!(!yes(
        "from_str",
        "/opt/cargo/registry/src/index.crates.io-1949cf8c6b5b557f/serde_json-1.0.1/src/de.rs"
    ));
    assert!(!yes(
        "poll",
        "/home/u/.cargo/git/checkouts/tokio-3f2a/ab12cd3/tokio/src/runtime/park.rs"
    ));
    assert!(!yes("parse", "/home/u/app/vendor/toml/src/de.rs"));
    // The toolchain.
    assert!(!yes(
        "lang_start_internal",
        "/rustc/4eb161250e340c8f48f66e2b929ef4a5bed7c181/library/std/src/rt.rs"
    ));
    assert!(!yes(
        "index",
        "/home/u/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/lib/rustlib/src/rust/library/core/src/slice/index.rs"
    ));
    // The C library and the loader.
    assert!(!yes("start_thread", "./nptl/pthread_create.c"));
    assert!(!yes(
        "clone3",
        "./misc/../sysdeps/unix/sysv/linux/x86_64/clone3.S"
    ));
    assert!(!rules.is_in_app(Some("__libc_start_main"), None));
    assert!(!rules.is_in_app(Some("clone3"), None));
    // crashbox itself.
    assert!(!yes("capture_error", &format!("{OWN_SOURCES}lib.rs")));
    assert!(!yes(
        "capture_error",
        "/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/crashbox-0.1.0/src/lib.rs"
    ));
    assert!(!yes(
        "capture_error",
        "/home/u/app/vendor/crashbox/src/lib.rs"
    ));
    assert!(yes("main", "/home/u/crashbox-demo/src/main.rs"));
    assert!(!rules.is_in_app(Some("crashbox::capture::stack::walk"), None));
}

#[test]
fn in_app_by_name_only_through_prefixes() {
    let rules = InAppRules {
        include: vec!["myapp::".into(), "mylib::".into()],
        exclude: vec!["myapp::generated::".into()],
    };
    assert!(rules.is_in_app(Some("myapp::main"), None));
    assert!(rules.is_in_app(Some("mylib::load"), None));
    assert!(rules.is_in_app(Some("<myapp::Config as core::fmt::Display>::fmt"), None));
    assert!(rules.is_in_app(
        Some("<core::result::Result<T,E> as myapp::Report>::report"),
        None
    ));
    assert!(!rules.is_in_app(
        Some("<myapp::Config as core::fmt::Display>::fmt"),
        Some(CORE)
    ));
    assert!(!rules.is_in_app(Some("myapp::generated::parse"), Some("src/generated.rs")));
    assert!(!rules.is_in_app(Some("serde_json::de::from_str"), None));
    assert!(!rules.is_in_app(Some("std::rt::lang_start"), None));
    assert!(!rules.is_in_app(Some("core::ops::function::FnOnce::call_once"), None));
    assert!(!rules.is_in_app(None, None));
}

#[test]
fn system_libraries_are_told_by_their_directory() {
    assert!(is_system_library("/usr/lib/x86_64-linux-gnu/libc.so.6"));
    assert!(is_system_library("/lib64/ld-linux-x86-64.so.2"));
    assert!(!is_system_library("/home/u/app/target/release/app"));
    assert!(!is_system_library("/usr/local/bin/app"));
}

#[test]
fn bare_names_agree_across_profiles() {
    // Symbol table (debug = false, debug = true) against line tables.
    let pairs = [
        ("myapp::store::save", "save"),
        ("<myapp::Config as core::fmt::Display>::fmt", "fmt"),
        ("myapp::main::{{closure}}", "{closure#0}"),
        ("myapp::parse", "parse<u32>"),
        (
            "<alloc::vec::Vec<T,A> as core::ops::index::Index<I>>::index",
            "index<u8, usize, alloc::alloc::Global>",
        ),
        ("myapp::run::{{closure}}", "{async_fn#0}"),
        ("<fn() -> u8 as myapp::Call>::call", "call"),
    ];
    for (full, bare) in pairs {
        assert_eq!(bare_name(full), bare_name(bare), "{full} vs {bare}");
    }
    assert_ne!(bare_name("myapp::save"), bare_name("myapp::load"));
}

fn stack(frames: &[&[(&str, &str)]]) -> Vec<(usize, Vec<Symbol>)> {
    frames
        .iter()
        .enumerate()
        .map(|(i, symbols)| {
            (
                0x1000 + i,
                symbols.iter().map(|(f, file)| sym(f, Some(file))).collect(),
            )
        })
        .collect()
}

const CORE: &str = "/rustc/abc/library/core/src/panicking.rs";
const STD: &str = "/rustc/abc/library/std/src/panicking.rs";
const APP: &str = "/home/u/app/src/main.rs";

#[test]
fn a_panic_starts_at_the_code_that_panicked() {
    let raw = stack(&[
        &[("rust_panic_with_hook", STD)],
        &[("panic_fmt", CORE)],
        &[("panic_bounds_check", CORE)],
        &[
            ("index<usize>", "/rustc/abc/library/core/src/slice/index.rs"),
            ("index<u8>", "/rustc/abc/library/alloc/src/vec/mod.rs"),
            ("lookup", APP),
        ],
        &[("main", APP)],
        &[("lang_start_internal", "/rustc/abc/library/std/src/rt.rs")],
    ]);
    let out = build(raw, Top::Machinery, &InAppRules::default());
    let names: Vec<_> = out
        .frames
        .iter()
        .map(|f| f.function.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["lookup", "main", "lang_start_internal"]);
    assert_eq!(
        out.frames.iter().map(|f| f.in_app).collect::<Vec<_>>(),
        [true, true, false]
    );
    assert_eq!(
        out.physical,
        [
            Physical {
                name: Some("lookup".into()),
                in_app: true
            },
            Physical {
                name: Some("main".into()),
                in_app: true
            },
            Physical {
                name: Some("lang_start_internal".into()),
                in_app: false
            },
        ]
    );
}

#[test]
fn errors_keep_std_frames_and_lose_crashbox_ones() {
    let own = format!("{OWN_SOURCES}lib.rs");
    let raw = stack(&[
        &[("capture_error<std::io::Error>", &own), ("save", APP)],
        &[("call_once", CORE)],
        &[("capture<F>", &format!("{OWN_SOURCES}testing.rs"))],
        &[("main", APP)],
    ]);
    let out = build(raw, Top::Capture, &InAppRules::default());
    let names: Vec<_> = out
        .frames
        .iter()
        .map(|f| f.function.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["save", "call_once", "main"]);
}

#[test]
fn unnamed_frames_are_kept_and_null_addresses_dropped() {
    let raw = vec![
        (0x10, Vec::new()),
        (0x20, vec![sym("main", Some(APP))]),
        (0, Vec::new()),
    ];
    let out = build(raw, Top::Machinery, &InAppRules::default());
    assert_eq!(out.frames.len(), 2);
    assert_eq!(out.frames[0].function, None);
    assert_eq!(&*out.frames[0].address, "0x10");
}

#[test]
fn repeated_addresses_are_resolved_once() {
    let mut cache = SymbolCache::new(InAppRules::default());
    let here = repeated_addresses_are_resolved_once as *const () as usize + 1;
    let addresses = [here, here];
    let live: Vec<Option<usize>> = addresses.iter().map(|&a| Some(a)).collect();
    let first = cache.frames(&addresses, &live, Top::Capture);
    let cached = cache.map.len();
    let second = cache.frames(&addresses, &live, Top::Capture);
    assert_eq!(cache.map.len(), cached, "no new entries for the same stack");
    assert_eq!(cached, 1);
    assert_eq!(first.frames, second.frames);
    assert!(first.frames.iter().any(|f| f
        .function
        .as_deref()
        .is_some_and(|n| n.contains("repeated_addresses_are_resolved_once"))));
}

#[test]
fn the_facade_frames_are_crashbox_own_by_path_and_by_name_without_one() {
    let facade = format!("{}lib.rs", crashbox_api::__SOURCE_DIR);
    assert!(is_own(Some("crashbox_api::capture_error"), Some(&facade)));
    // An inlined entry point keeps the caller's frame but is left out.
    assert!(is_own(
        Some("<core::result::Result<T,E> as crashbox_api::ResultExt>::report"),
        Some(&facade)
    ));
    assert!(is_own(
        Some("<core::result::Result<T,E> as crashbox_api::ResultExt>::report"),
        None
    ));
    assert!(is_own(Some("crashbox_api::add_breadcrumb"), None));
    for published in [
        "/home/u/.cargo/registry/src/index.crates.io-1/crashbox-api-0.1.0/src/lib.rs",
        "/work/app/vendor/crashbox-api/src/lib.rs",
    ] {
        assert!(is_own(None, Some(published)), "{published}");
    }
    // A user's crate whose name merely resembles it is not.
    assert!(!is_own(Some("my_crashbox_api::load"), None));
    assert!(!is_own(
        Some("app::load"),
        Some("/work/app/crashbox-api-notes/src/main.rs")
    ));
}
