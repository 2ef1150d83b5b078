//! Errors for the tests to capture, and panics: raising one on a thread of
//! its own, and reading the text of one caught.
//!
//! [`test_error!`] defines an error type in the calling test file, so the
//! type's name in a report (its `std::any::type_name`) is the one the test
//! gave it. [`LoadError`] is the chained error the network collector tests
//! share.

use std::any::Any;

/// Defines an error type whose `Display` is a fixed text.
///
/// - `test_error!(Name => "text")`: a unit struct with no source.
/// - `test_error!(Name => "text", source: io::Error)`: an error whose
///   `source()` is an `std::io::Error` (a chain of two), built with
///   `Name::new(kind, "what the I/O error says")`.
///
/// Doc comments and a visibility may come before `Name`.
macro_rules! test_error {
    ($(#[$attr:meta])* $vis:vis $name:ident => $text:literal) => {
        $(#[$attr])*
        #[derive(Debug)]
        $vis struct $name;

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($text)
            }
        }

        impl std::error::Error for $name {}
    };
    ($(#[$attr:meta])* $vis:vis $name:ident => $text:literal, source: io::Error) => {
        $(#[$attr])*
        #[derive(Debug)]
        $vis struct $name {
            source: std::io::Error,
        }

        impl $name {
            /// The error, caused by an I/O error of `kind` that says `message`.
            #[allow(dead_code)]
            $vis fn new(kind: std::io::ErrorKind, message: &str) -> $name {
                $name {
                    source: std::io::Error::new(kind, message.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($text)
            }
        }

        impl std::error::Error for $name {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.source)
            }
        }
    };
}
pub(crate) use test_error;

test_error! {
    /// An application error with an I/O cause.
    pub LoadError => "could not load the ingest configuration", source: io::Error
}

/// "could not load the ingest configuration", caused by "app.toml is missing".
pub fn load_error() -> LoadError {
    LoadError::new(std::io::ErrorKind::NotFound, "app.toml is missing")
}

/// The text of a panic payload: a `String` or a `&str`, `None` for any
/// other payload.
pub fn panic_text(payload: &(dyn Any + Send)) -> Option<String> {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
}

/// Runs `body` on a new thread named `name`, and waits for it; panics
/// unless `body` panicked.
#[track_caller]
pub fn panic_on_thread(name: &str, body: impl FnOnce() + Send + 'static) {
    let panicked = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(body)
        .expect("spawn")
        .join();
    assert!(panicked.is_err(), "the thread should have panicked");
}

/// A ledger entry that C code hands over by pointer.
#[repr(C)]
#[allow(dead_code)]
pub struct Entry {
    next: *mut Entry,
    amount: u64,
}

/// What the crash report of [`write_through_null`] says: the field sits at
/// address 0x8.
pub const NULL_WRITE_MESSAGE: &str = "SIGSEGV at 0x8 (address not mapped)";

/// Writes the `amount` field of an entry at address 0: a segfault at 0x8.
/// (The field's address is computed by hand: a debug build checks a plain
/// dereference of a null pointer and aborts before the write.)
#[inline(never)]
pub fn write_through_null() {
    let entry: *mut Entry = std::hint::black_box(std::ptr::null_mut());
    let field = (entry as usize + std::mem::offset_of!(Entry, amount)) as *mut u64;
    // SAFETY: none: this is the crash under test.
    unsafe { field.write_volatile(1) };
}

/// In a child that crashes on purpose: no core file of it.
pub fn no_core_dump() {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit with a valid struct.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };
}
