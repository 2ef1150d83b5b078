//! A small command-line program of the kind that reports its errors and
//! exits: it does about 10 ms of work (formats, parses and hashes numbers),
//! optionally with crashbox installed, reports some errors, and returns from
//! `main` (the `Guard` is dropped, which delivers what is queued).
//!
//! ```text
//! cli [--crashbox] [--no-symbolicate] [--errors N] [--rss] [--idle SECS]
//! ```
//!
//! - `--crashbox`: `crashbox::init` with a file collector (a temporary file,
//!   removed at exit); without it crashbox is linked but never initialised.
//! - `--no-symbolicate`: `Options::symbolicate(false)`.
//! - `--errors N`: reports N errors, alternating an `std::io::Error` (a file
//!   that does not exist) and a `ParseIntError`, from two different functions.
//! - `--rss`: prints `key=value` lines with `VmRSS` and `VmHWM` (KiB) before
//!   `init`, after `init`, after the first report and after all of them
//!   (each after `crashbox::flush`, so the worker has processed them).
//! - `--idle SECS`: then waits SECS seconds without reporting and prints
//!   `VmRSS` again (the worker lets go of debug info once idle).
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// Iterations of the work loop: about 10 ms on a 2-core x86_64 VM.
const WORK: u64 = 400_000;

struct Args {
    crashbox: bool,
    symbolicate: bool,
    errors: u32,
    rss: bool,
    idle: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        crashbox: false,
        symbolicate: true,
        errors: 0,
        rss: false,
        idle: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--crashbox" => args.crashbox = true,
            "--no-symbolicate" => args.symbolicate = false,
            "--rss" => args.rss = true,
            "--errors" => {
                let n = it.next().ok_or("--errors needs a number")?;
                args.errors = n.parse().map_err(|e| format!("--errors {n}: {e}"))?;
            }
            "--idle" => {
                let n = it.next().ok_or("--idle needs seconds")?;
                args.idle = Some(n.parse().map_err(|e| format!("--idle {n}: {e}"))?);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
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

fn print_rss(enabled: bool, when: &str) {
    if enabled {
        let (rss, hwm) = rss_kib();
        println!("{when}.rss_kib={rss}");
        println!("{when}.hwm_kib={hwm}");
    }
}

/// The program's work: format, parse and hash numbers, without holding memory.
#[inline(never)]
fn work() -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut text = String::with_capacity(32);
    for i in 0..WORK {
        text.clear();
        use std::fmt::Write as _;
        let _ = write!(text, "{}", i.wrapping_mul(2_654_435_761));
        let n: u64 = text.parse().unwrap_or(0);
        n.hash(&mut hasher);
    }
    hasher.finish()
}

#[inline(never)]
fn open_config(i: u32) -> std::io::Result<std::fs::File> {
    std::fs::File::open(format!("/nonexistent/crashbox-rss/config-{i}.toml"))
}

#[inline(never)]
fn parse_count(i: u32) -> Result<u32, std::num::ParseIntError> {
    format!("{i}x").parse()
}

/// Reports `n` errors of two kinds, as a program's error paths would.
#[inline(never)]
fn report_errors(from: u32, to: u32) {
    for i in from..to {
        if i % 2 == 0 {
            if let Err(e) = open_config(i) {
                crashbox::capture_error(&e);
            }
        } else if let Err(e) = parse_count(i) {
            crashbox::capture_error(&e);
        }
    }
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("cli: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    print_rss(args.rss, "start");
    let reports = std::env::temp_dir().join(format!("crashbox-rss-{}.jsonl", std::process::id()));
    let guard = if args.crashbox {
        let options = crashbox::Options::new()
            .collector(format!("file://{}", reports.display()))
            .symbolicate(args.symbolicate);
        match crashbox::init(options) {
            Ok(guard) => Some(guard),
            Err(e) => {
                eprintln!("cli: crashbox: {e}");
                return std::process::ExitCode::from(1);
            }
        }
    } else {
        None
    };
    if args.rss {
        crashbox::flush(Duration::from_secs(30));
        print_rss(true, "init");
    }
    let hash = work();
    std::hint::black_box(hash);
    if args.rss && args.errors > 0 {
        report_errors(0, 1);
        crashbox::flush(Duration::from_secs(30));
        print_rss(true, "first");
        report_errors(1, args.errors);
        crashbox::flush(Duration::from_secs(30));
        print_rss(true, "all");
    } else {
        report_errors(0, args.errors);
    }
    if let Some(secs) = args.idle {
        std::thread::sleep(Duration::from_secs(secs));
        print_rss(true, "idle");
    }
    drop(guard);
    let _ = std::fs::remove_file(&reports);
    std::process::ExitCode::SUCCESS
}
