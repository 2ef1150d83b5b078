//! `crashbox check PATH`: fails a CI job when a run recorded any report.
//!
//! Exits 0 when PATH is absent or empty, 1 when it holds reports (each printed
//! to stderr in the `stderr` collector's format), 2 on a usage error or an
//! unreadable file.
use std::io::BufRead;
use std::process::ExitCode;

const USAGE: &str = "usage: crashbox check PATH\n\n\
    Exits 0 when PATH (a file written by CRASHBOX_COLLECTOR=file://PATH) is absent or empty,\n\
    1 when it holds reports, printing each one; 2 when PATH cannot be read.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, path] if cmd == "check" => check(path),
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn check(path: &str) -> ExitCode {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("crashbox: no reports ({path} does not exist)");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("crashbox: cannot read {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut count = 0usize;
    for (number, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                eprintln!("crashbox: cannot read {path}: {e}");
                return ExitCode::from(2);
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        count += 1;
        match serde_json::from_str::<crashbox::Report>(&line) {
            Ok(report) => eprint!("{}", report.summary()),
            // Still a report, even if this version cannot read all of it.
            Err(e) => eprintln!(
                "[crashbox] unreadable report on line {} ({e}): {}",
                number + 1,
                line.chars().take(200).collect::<String>()
            ),
        }
    }
    if count == 0 {
        println!("crashbox: no reports ({path} is empty)");
        ExitCode::SUCCESS
    } else {
        eprintln!("crashbox: {count} report(s) recorded in {path}");
        ExitCode::from(1)
    }
}
