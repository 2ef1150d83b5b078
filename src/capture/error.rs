//! Reading an error: type name and `Display` of each link of its source chain.
use std::error::Error;
use std::fmt::{self, Write};

use crate::limits::{self, BoundedWriter};
use crate::report::ExceptionInfo;

/// Formats `value` into at most `limit` bytes. A `Display` impl that panics
/// yields a placeholder instead of unwinding into the caller.
pub(crate) fn display_bounded<T: fmt::Display + ?Sized>(value: &T, limit: usize) -> (String, bool) {
    let mut w = BoundedWriter::new(limit);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = write!(w, "{value}");
        w
    }));
    match outcome {
        Ok(w) => (w.buf, w.truncated),
        Err(payload) => (
            format!(
                "<Display panicked: {}>",
                crate::capture::panic::payload_text(&*payload)
            ),
            true,
        ),
    }
}

/// Calls `$check` with each std error type crashbox names by its public
/// path (`std::io::Error`, where `type_name` says `std::io::error::Error`).
macro_rules! for_known_types {
    ($check:ident) => {
        $check!(
            std::io::Error,
            std::fmt::Error,
            std::num::ParseIntError,
            std::num::ParseFloatError,
            std::num::TryFromIntError,
            std::str::Utf8Error,
            std::str::ParseBoolError,
            std::string::FromUtf8Error,
            std::net::AddrParseError,
            std::env::VarError,
            std::time::SystemTimeError,
            std::array::TryFromSliceError,
            std::char::ParseCharError,
            std::ffi::NulError,
            std::sync::mpsc::RecvError,
            std::sync::mpsc::RecvTimeoutError,
            serde_json::Error,
        )
    };
}

/// The name of a captured error whose type is `name` (as
/// `std::any::type_name` gives it): its public path for the std types that
/// sources are named by too, so one type has one name either way. A trait
/// object (`capture_error(&*boxed)`) is named by its `Debug` form.
fn named_type<E: fmt::Debug + ?Sized>(name: &str, err: &E) -> String {
    if name.starts_with("dyn ") {
        return debug_type_name(err).unwrap_or_else(|| "dyn Error".to_owned());
    }
    macro_rules! public {
        ($($ty:ty),* $(,)?) => {
            $(if name == std::any::type_name::<$ty>() {
                return stringify!($ty).replace(' ', "");
            })*
        };
    }
    for_known_types!(public);
    name.to_owned()
}

/// Best-effort type name of an error known only as `dyn Error` (a source,
/// or a wrapper's link): common std errors by downcast, else the leading
/// identifier of its `Debug` form, else `fallback`.
fn source_type_name(err: &(dyn Error + 'static), fallback: &str) -> String {
    macro_rules! known {
        ($($ty:ty),* $(,)?) => {
            $(if err.is::<$ty>() { return stringify!($ty).replace(' ', ""); })*
        };
    }
    for_known_types!(known);
    debug_type_name(err).unwrap_or_else(|| fallback.to_owned())
}

/// The leading identifier of `err`'s `Debug` form when it looks like a type
/// (`ConfigError { .. }`, `Timeout(..)`: as Sentry names such errors).
fn debug_type_name<E: fmt::Debug + ?Sized>(err: &E) -> Option<String> {
    let mut w = BoundedWriter::new(96);
    let debug = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = write!(w, "{err:?}");
        w.buf
    }))
    .unwrap_or_default();
    let ident: String = debug
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
        .collect();
    ident
        .starts_with(|c: char| c.is_ascii_uppercase())
        .then_some(ident)
}

/// The chain of `err`: outer error first, capped at [`limits::MAX_CHAIN`]
/// links and stopping at the first link seen twice. Returns the links and
/// the names of fields that were cut.
pub(crate) fn chain<E: Error + ?Sized>(err: &E) -> (Vec<ExceptionInfo>, Vec<String>) {
    chain_named(err, std::any::type_name::<E>())
}

/// [`chain`] of an error whose type is `type_name` (as
/// `std::any::type_name` gave it where the type was still known).
pub(crate) fn chain_named<E: Error + ?Sized>(
    err: &E,
    type_name: &str,
) -> (Vec<ExceptionInfo>, Vec<String>) {
    let mut truncated = Vec::new();
    let (message, cut) = display_bounded(err, limits::MAX_EXCEPTION_MESSAGE_BYTES);
    if cut {
        truncated.push("exceptions[0].message".to_owned());
    }
    let mut links = vec![ExceptionInfo {
        ty: named_type(type_name, err),
        message,
    }];
    // Fat pointers (address and vtable): a newtype shares its inner error's
    // address, so the address alone would mistake wrapping for a cycle.
    let mut seen: Vec<*const dyn Error> = Vec::new();
    let mut next = source_of(err);
    while let Some(source) = next {
        let ptr = source as *const dyn Error;
        if seen.iter().any(|p| std::ptr::eq(*p, ptr)) {
            truncated.push("exceptions (cycle)".to_owned());
            break;
        }
        if links.len() == limits::MAX_CHAIN {
            truncated.push("exceptions".to_owned());
            break;
        }
        let (message, cut) = display_bounded(source, limits::MAX_EXCEPTION_MESSAGE_BYTES);
        if cut {
            truncated.push(format!("exceptions[{}].message", links.len()));
        }
        links.push(ExceptionInfo {
            ty: source_type_name(source, "dyn Error"),
            message,
        });
        seen.push(ptr);
        next = source_of(source);
    }
    (links, truncated)
}

/// The chain of an error that a wrapper holds (`anyhow::Error`,
/// `eyre::Report`: each context layer a link), named like sources, and
/// `wrapper` for a link made by the wrapper itself (a message, a context).
#[cfg(any(feature = "anyhow", feature = "eyre"))]
pub(crate) fn wrapped_chain(
    err: &(dyn Error + 'static),
    wrapper: &str,
) -> (Vec<ExceptionInfo>, Vec<String>) {
    let (mut links, truncated) = chain(err);
    let mut link = Some(err);
    for exception in links.iter_mut() {
        let Some(current) = link else { break };
        exception.ty = if made_by_wrapper(current) {
            wrapper.to_owned()
        } else {
            source_type_name(current, wrapper)
        };
        link = source_of(current);
    }
    (links, truncated)
}

/// Whether a wrapper's link is one it made itself: a context layer (whose
/// `Debug` is `Error { context: .. }` in anyhow, `Error { msg: .. }` in
/// eyre) or a message (whose `Debug` is its text, quoted or not).
#[cfg(any(feature = "anyhow", feature = "eyre"))]
fn made_by_wrapper(err: &(dyn Error + 'static)) -> bool {
    let mut w = BoundedWriter::new(256);
    let debug = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = write!(w, "{err:?}");
        w.buf
    }))
    .unwrap_or_default();
    if debug.starts_with("Error { context: ") || debug.starts_with("Error { msg: ") {
        return true;
    }
    let (display, _) = display_bounded(err, 256);
    debug == display || debug.strip_prefix('"').and_then(|d| d.strip_suffix('"')) == Some(&display)
}

/// `source()` that survives a panicking implementation.
fn source_of<E: Error + ?Sized>(err: &E) -> Option<&(dyn Error + 'static)> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| err.source()))
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("could not load config")
        }
    }
    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn chain_lists_outer_first_with_type_names() {
        let err = Outer(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file",
        ));
        let (links, truncated) = chain(&err);
        assert_eq!(links.len(), 2);
        assert!(links[0].ty.ends_with("Outer"), "{}", links[0].ty);
        assert_eq!(links[0].message, "could not load config");
        assert_eq!(links[1].ty, "std::io::Error");
        assert_eq!(links[1].message, "no such file");
        assert!(truncated.is_empty());
    }

    #[test]
    fn a_std_type_has_one_name_captured_directly_or_as_a_source() {
        let io = std::io::Error::other("disk full");
        assert_eq!(chain(&io).0[0].ty, "std::io::Error");
        let parse = "x".parse::<u8>().unwrap_err();
        assert_eq!(chain(&parse).0[0].ty, "std::num::ParseIntError");
        let wrapped = Outer(std::io::Error::other("disk full"));
        assert_eq!(chain(&wrapped).0[1].ty, chain(&io).0[0].ty);
    }

    #[derive(Debug)]
    struct Looping;
    impl fmt::Display for Looping {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("loop")
        }
    }
    impl Error for Looping {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            static SELF: Looping = Looping;
            Some(&SELF)
        }
    }

    #[test]
    fn a_looping_chain_stops_at_the_repeat() {
        let (links, truncated) = chain(&Looping);
        assert_eq!(links.len(), 2, "the local value, then the static one once");
        assert_eq!(links[1].ty, "Looping");
        assert_eq!(truncated, vec!["exceptions (cycle)".to_owned()]);
    }
}
