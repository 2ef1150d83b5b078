//! Reports one error, one `.report()`, one message and one panic of the kind
//! named on the command line, to the collector in `CRASHBOX_COLLECTOR`.
use std::io;

use crashbox::Options;

mod store {
    use std::io;

    #[inline(never)]
    pub fn save(path: &str) -> Option<crashbox::ReportId> {
        let err = io::Error::new(io::ErrorKind::PermissionDenied, format!("cannot write {path}"));
        crashbox::capture_error(&err)
    }

    #[inline(never)]
    pub fn load(path: &str) -> io::Result<Vec<u8>> {
        crashbox::ResultExt::report(std::fs::read(std::hint::black_box(path)))
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

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    // Where this process has its functions, so a stripped build's frames can
    // be checked by address.
    let functions: [(&str, usize); 6] = [
        ("save", store::save as fn(&str) -> _ as usize),
        ("load", store::load as fn(&str) -> _ as usize),
        ("warn", warn as fn() as usize),
        ("lookup", lookup as fn(&[u32], usize) -> u32 as usize),
        ("parse_port", parse_port as fn(&str) -> u16 as usize),
        ("main", main as fn() as usize),
    ];
    for (name, address) in functions {
        println!("function {name} {address:#x}");
    }
    let guard = crashbox::init(Options::from_env().release(crashbox::release!()).spool(false))
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
