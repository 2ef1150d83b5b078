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
//!
//! `crashbox spool list|show|send|purge` works on a spool directory (`--dir
//! DIR`, else the default one of the program at `--program EXE`, else
//! `CRASHBOX_SPOOL_DIR`). `list` prints one line per report waiting there
//! (spool files, unsettled journal captures, spare files holding a panic's
//! raw capture, `corrupt/`) and per report kept in `reports.jsonl`, oldest
//! first, and exits 0. `show ID` prints the report whose id starts with ID
//! (8 hex digits or more) as the `stderr` collector does, or as JSON with
//! `--json`; exits 1 when no report has that id, 2 when several do.
//! `send --to COLLECTOR [--timeout SECS]` delivers what processes no longer
//! running left there, as the program's next start would; exits 0 when all
//! of it was delivered, 1 when some is still waiting or was dropped (said on
//! stdout), 2 for an invalid collector string. `purge --yes` removes the
//! waiting reports, never a running process's files, the lock and run-state
//! files or `reports.jsonl`; without `--yes` it says what it would remove and
//! exits 2 (0 when there is nothing), and it exits 1 when a file could not
//! be removed. All exit 2 on a usage error or a spool directory that is
//! missing or cannot be read.
use std::io::BufRead;
use std::process::ExitCode;

#[path = "crashbox/failure.rs"]
mod failure;
#[path = "crashbox/spool.rs"]
mod spool;
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
        [cmd, rest @ ..] if cmd == "spool" => spool::main(rest),
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{USAGE}{}\n\n{}", symbolicate::USAGE, spool::USAGE);
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}{}\n\n{}", symbolicate::USAGE, spool::USAGE);
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
