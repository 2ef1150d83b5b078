//! The `crashbox` command.
//!
//! `crashbox check PATH` fails a CI job when a run recorded any report.
//! Exits 0 when PATH is absent or empty, 1 when it holds reports (each printed
//! to stderr in the `stderr` collector's format), 2 on a usage error or an
//! unreadable file.
//!
//! `crashbox symbolicate --debug-file PATH INPUT` writes the reports in INPUT
//! (a `file://` collector's JSON lines, or a spool file holding a report) to
//! stdout as JSON lines, with each frame that falls in the image whose build
//! id is PATH's given its function, file and line (inlined calls become
//! several frames, innermost first). PATH is the unstripped binary or its
//! separate debug file (`objcopy --only-keep-debug`). Exits 0 when every
//! report matched; 1 when a report has no images, or none with PATH's build
//! id (each named on stderr with the build ids involved; the reports are
//! still written); 2 on a usage error, an unreadable INPUT or PATH, a PATH
//! without a build id or with neither debug info nor a symbol table, or a
//! spool file holding a panic's raw capture (not supported: the next run of
//! the program turns it into a report).
use std::io::BufRead;
use std::process::ExitCode;

#[path = "crashbox/symbolicate.rs"]
mod symbolicate;

const USAGE: &str = "usage: crashbox check PATH\n\
    \x20      crashbox symbolicate --debug-file PATH INPUT\n\n\
    check: exits 0 when PATH (a file written by CRASHBOX_COLLECTOR=file://PATH) is absent or empty,\n\
    1 when it holds reports, printing each one; 2 when PATH cannot be read.\n\n";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [cmd, path] if cmd == "check" => check(path),
        [cmd, rest @ ..] if cmd == "symbolicate" => symbolicate::main(rest),
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{USAGE}{}", symbolicate::USAGE);
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}{}", symbolicate::USAGE);
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
