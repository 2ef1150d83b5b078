//! Reports one error, one `.report()`, one message and one panic of the kind
//! named on the command line, to the collector in `CRASHBOX_COLLECTOR`.
//!
//! The `crash-*` modes die of a fatal signal with the spool of
//! `CRASHBOX_SPOOL_DIR`; `replay` is the next start on that spool, which
//! delivers the crash report and prints what `last_run` says.
use std::io;
use std::time::Duration;

use crashbox::Options;

mod store {
    use std::io;

    #[inline(never)]
    pub fn save(path: &str) -> Option<crashbox::ReportId> {
        let err = io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("cannot write {path}"),
        );
        crashbox::capture_error(&err)
    }

    #[inline(never)]
    pub fn load(path: &str) -> io::Result<Vec<u8>> {
        crashbox::ResultExt::report(std::fs::read(std::hint::black_box(path)))
    }

    /// A file header reached through a null pointer.
    #[repr(C)]
    pub struct Header {
        pub magic: u64,
        pub length: u64,
    }

    /// Writes the `length` field of a header at address 0: address 0x8.
    /// (The field's address is computed by hand: a debug build checks a
    /// plain dereference of a null pointer and aborts before the write.)
    #[inline(never)]
    pub fn write_header(header: *mut Header, length: u64) {
        let field = (header as usize + std::mem::offset_of!(Header, length)) as *mut u64;
        // SAFETY: none: this write is the crash the mode asks for.
        unsafe { field.write_volatile(length) };
    }
}

#[inline(never)]
fn lookup(table: &[u32], index: usize) -> u32 {
    table[index]
}

#[inline(never)]
fn parse_port(text: &str) -> u16 {
    text.parse::<u16>().unwrap()
}

#[inline(never)]
fn warn() {
    crashbox::capture_message("cache is cold", crashbox::Level::Warning);
}

#[inline(never)]
fn give_up() {
    std::process::abort();
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 32]);
    recurse(std::hint::black_box(depth + 1)).wrapping_add(frame[(depth % 32) as usize])
}

/// No core file from a crash the caller asked for.
fn no_core_dump() {
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit with a valid struct.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &none) };
}

/// The crash `mode` names: `init` with the spool, then die of it.
fn crash(mode: &str) -> ! {
    no_core_dump();
    let _guard = crashbox::init(Options::from_env().release(crashbox::release!())).expect("init");
    println!("crashing {mode}");
    let _ = io::Write::flush(&mut io::stdout());
    match mode {
        "crash-null" => store::write_header(std::hint::black_box(std::ptr::null_mut()), 1),
        "crash-abort" => give_up(),
        "crash-overflow" => {
            std::hint::black_box(recurse(std::hint::black_box(0)));
        }
        _ => unreachable!(),
    }
    eprintln!("{mode} did not crash");
    std::process::exit(3);
}

/// The next start on the spool of a crashed run: delivers its report.
fn replay() {
    let guard = crashbox::init(Options::from_env().release(crashbox::release!())).expect("init");
    let last = crashbox::last_run().expect("a spool is in use");
    println!(
        "last_run crashed {}",
        last.crashed.map_or("none", crashbox::Signal::name)
    );
    println!("last_run stack_overflow {}", last.stack_overflow);
    let flushed = crashbox::flush(Duration::from_secs(60));
    println!("flushed {flushed}");
    drop(guard);
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    // Where this process has its functions, so a stripped build's frames can
    // be checked by address.
    let functions: [(&str, usize); 9] = [
        ("save", store::save as fn(&str) -> _ as usize),
        ("load", store::load as fn(&str) -> _ as usize),
        ("warn", warn as fn() as usize),
        ("lookup", lookup as fn(&[u32], usize) -> u32 as usize),
        ("parse_port", parse_port as fn(&str) -> u16 as usize),
        (
            "write_header",
            store::write_header as fn(*mut store::Header, u64) as usize,
        ),
        ("give_up", give_up as fn() as usize),
        ("recurse", recurse as fn(u64) -> u64 as usize),
        ("main", main as fn() as usize),
    ];
    for (name, address) in functions {
        println!("function {name} {address:#x}");
    }
    if mode.starts_with("crash-") {
        crash(&mode);
    }
    if mode == "replay" {
        replay();
        return;
    }
    let guard = crashbox::init(
        Options::from_env()
            .release(crashbox::release!())
            .spool(false),
    )
    .expect("init");
    match mode.as_str() {
        "error" => {
            store::save("/etc/app.toml");
        }
        "report" => {
            let _ = store::load("/nonexistent/crashbox-fixture");
        }
        "message" => warn(),
        "thread" => {
            std::thread::spawn(|| store::save("/var/lib/app"))
                .join()
                .expect("thread");
        }
        "panic-index" => {
            let table = std::hint::black_box(vec![1, 2, 3]);
            let _ = std::panic::catch_unwind(|| lookup(&table, std::hint::black_box(7)));
        }
        "panic-unwrap" => {
            let _ = std::panic::catch_unwind(|| parse_port(std::hint::black_box("http")));
        }
        other => {
            eprintln!("unknown mode {other:?}");
            std::process::exit(2);
        }
    }
    let _ = io::Write::flush(&mut io::stderr());
    drop(guard);
}
