//! Fingerprints: which reports are occurrences of the same problem.
//!
//! The default fingerprint hashes what stays the same from one occurrence,
//! one build and one build profile to the next: the kind, the exception
//! types (for a message, its text), and the bare names (last path segment,
//! no generic arguments) of the in-app physical frames (of all physical
//! frames when none is in-app). Inlined frames, addresses, line numbers,
//! module paths and the `::h…` hashes of symbol names are left out: line
//! tables give bare names and inlined frames, the symbol table of a
//! `debug = false` build full paths and no inlined frames, so only what they
//! share keeps one fingerprint when debug info is turned on or off.
//!
//! Where no in-app frame has a function name (a stripped binary keeps only
//! the C library's), the capture's source location (file and line) is added.
//!
//! A fingerprint set with [`Scope::set_fingerprint`](crate::Scope::set_fingerprint)
//! replaces it; a part written `{{ default }}` stands for the default one.
use super::symbolicate::Physical;
use crate::hash::Fnv1a64 as Fnv;
use crate::report::{ExceptionInfo, Kind, Location};

/// The default fingerprint.
pub(crate) fn default_hash(
    kind: Kind,
    message: &str,
    exceptions: &[ExceptionInfo],
    frames: &[Physical],
    location: Option<&Location>,
) -> u64 {
    let mut h = Fnv::new().field(kind.as_str());
    match kind {
        Kind::Message => h = h.field(message),
        Kind::Error | Kind::Panic | Kind::Crash => {
            for e in exceptions {
                h = h.field(&e.ty);
            }
        }
    }
    h = h.bytes(&[0xfe]);
    let any_in_app = frames.iter().any(|f| f.in_app);
    let mut named_in_app = false;
    for frame in frames.iter().filter(|f| f.in_app || !any_in_app) {
        if let Some(name) = &frame.name {
            h = h.field(name);
            named_in_app |= frame.in_app;
        }
    }
    if let (false, Some(location)) = (named_in_app, location) {
        h = h
            .bytes(&[0xfd])
            .field(&location.file)
            .field(&location.line.to_string());
    }
    h.finish()
}

/// The fingerprint of a report: from its custom parts when it has them.
pub(crate) fn hash(default: impl FnOnce() -> u64, custom: Option<&[String]>) -> u64 {
    let Some(parts) = custom.filter(|p| !p.is_empty()) else {
        return default();
    };
    let mut default = Some(default);
    let mut h = Fnv::new().field("custom");
    for part in parts {
        let squeezed: String = part.chars().filter(|c| !c.is_whitespace()).collect();
        if squeezed == "{{default}}" {
            let d = default.take().map_or(0, |f| f());
            h = h.field(&format!("{d:016x}"));
        } else {
            h = h.field(part);
        }
    }
    h.finish()
}

/// A fingerprint as the report carries it.
pub(crate) fn to_hex(hash: u64) -> String {
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str, in_app: bool) -> Physical {
        Physical {
            name: Some(name.into()),
            in_app,
        }
    }

    fn io_error() -> Vec<ExceptionInfo> {
        vec![ExceptionInfo {
            ty: "std::io::Error".to_owned(),
            message: "not found".to_owned(),
        }]
    }

    #[test]
    fn only_in_app_names_and_types_count() {
        let a = [frame("load", true), frame("lang_start", false)];
        let b = [frame("load", true), frame("lang_start_internal", false)];
        let (ea, eb) = (io_error(), io_error());
        assert_eq!(
            default_hash(Kind::Error, "x", &ea, &a, None),
            default_hash(Kind::Error, "y", &eb, &b, None),
            "only in-app names count, and messages of errors do not"
        );
        let c = [frame("save", true)];
        assert_ne!(
            default_hash(Kind::Error, "x", &ea, &a, None),
            default_hash(Kind::Error, "x", &ea, &c, None)
        );
    }

    #[test]
    fn kind_types_and_message_text_split_groups() {
        let frames = [frame("run", true)];
        let other = vec![ExceptionInfo {
            ty: "app::ParseError".to_owned(),
            message: "not found".to_owned(),
        }];
        let io = io_error();
        assert_ne!(
            default_hash(Kind::Error, "", &io, &frames, None),
            default_hash(Kind::Error, "", &other, &frames, None)
        );
        assert_ne!(
            default_hash(Kind::Error, "", &io, &frames, None),
            default_hash(Kind::Panic, "", &io, &frames, None)
        );
        assert_ne!(
            default_hash(Kind::Message, "disk full", &[], &frames, None),
            default_hash(Kind::Message, "disk empty", &[], &frames, None)
        );
    }

    #[test]
    fn without_in_app_frames_all_frames_count() {
        let a = [frame("run", false), frame("block_on", false)];
        let b = [frame("run", false), frame("scope", false)];
        assert_ne!(
            default_hash(Kind::Error, "", &[], &a, None),
            default_hash(Kind::Error, "", &[], &b, None)
        );
    }

    #[test]
    fn the_hash_is_stable_across_builds() {
        // A fixed input must keep its fingerprint in every later version:
        // collectors group by it across releases.
        let frames = [frame("main", true)];
        assert_eq!(
            to_hex(default_hash(Kind::Error, "", &io_error(), &frames, None)),
            to_hex(
                Fnv::new()
                    .field("error")
                    .field("std::io::Error")
                    .bytes(&[0xfe])
                    .field("main")
                    .finish()
            )
        );
        assert_eq!(to_hex(Fnv::new().finish()), "cbf29ce484222325");
        assert_eq!(
            to_hex(default_hash(Kind::Error, "", &io_error(), &frames, None)),
            "e91d6b4caf6d7538"
        );
        assert_eq!(
            to_hex(hash(|| 0, Some(&["checkout".to_owned()]))),
            "9ecd9933d0405da0"
        );
    }

    #[test]
    fn without_function_names_the_location_tells_errors_apart() {
        // Stripped: the app's frames have no names, the C library's do.
        let unnamed = [
            Physical {
                name: None,
                in_app: false,
            },
            frame("__libc_start_main_impl", false),
        ];
        let at = |line| Location {
            file: "src/store.rs".to_owned(),
            line,
            column: 9,
        };
        let io = io_error();
        let (a, b) = (at(10), at(20));
        assert_ne!(
            default_hash(Kind::Error, "", &io, &unnamed, Some(&a)),
            default_hash(Kind::Error, "", &io, &unnamed, Some(&b))
        );
        // With names, lines do not matter.
        let named = [frame("load", true)];
        assert_eq!(
            default_hash(Kind::Error, "", &io, &named, Some(&a)),
            default_hash(Kind::Error, "", &io, &named, Some(&b))
        );
    }

    #[test]
    fn custom_parts_replace_the_default_and_can_include_it() {
        let custom = ["tenant-7".to_owned()];
        let with_default = ["{{ default }}".to_owned(), "tenant-7".to_owned()];
        let d1 = || 1u64;
        let d2 = || 2u64;
        assert_eq!(hash(d1, Some(&custom)), hash(d2, Some(&custom)));
        assert_ne!(hash(d1, Some(&with_default)), hash(d2, Some(&with_default)));
        assert_eq!(hash(d1, None), 1);
        assert_eq!(hash(d1, Some(&[])), 1);
    }
}
