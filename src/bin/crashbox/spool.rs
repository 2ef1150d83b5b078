//! `crashbox spool list|show|send|purge`: the reports waiting in a spool
//! directory, read with the library's own parsers and owner checks.
//!
//! `send` delivers them the way the program's next start would: it starts
//! a client on the spool directory (which claims and replays what owners
//! that are gone left there), flushes, and reads the counters.
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crashbox::__cli::{self, Found, State};
use crashbox::Options;

use crate::failure::{run_subcommand, Failure};

pub(crate) const USAGE: &str = "usage: crashbox spool list [--dir DIR]\n\
    \x20      crashbox spool show ID [--dir DIR] [--json]\n\
    \x20      crashbox spool send --to COLLECTOR [--dir DIR] [--timeout SECS]\n\
    \x20      crashbox spool purge [--yes] [--dir DIR]\n\n\
    The spool directory is DIR, else the default spool directory of the program at EXE with\n\
    --program EXE, else $CRASHBOX_SPOOL_DIR.\n\
    list:  one line per report waiting in the spool (spool files, unsettled journal captures,\n\
    \x20      spare files holding a panic's raw capture, corrupt/) and per report kept in\n\
    \x20      reports.jsonl, oldest first. Exits 0.\n\
    show:  the report whose id starts with ID (at least 8 hex digits) as the stderr collector\n\
    \x20      prints it, or as JSON with --json. Exits 1 when no report has that id, 2 when\n\
    \x20      several do.\n\
    send:  delivers the reports that processes no longer running left in the spool to\n\
    \x20      COLLECTOR (a collector string), waiting up to SECS seconds (default 30). Exits 0\n\
    \x20      when all were delivered, 1 when some are still waiting or were dropped.\n\
    purge: removes the reports waiting in the spool (never a running process's files, nor the\n\
    \x20      lock and run-state files, nor reports.jsonl). Without --yes it only says what it\n\
    \x20      would remove, and exits 2 when that is anything.\n\
    All exit 2 on a usage error, or a spool directory that is missing or cannot be read.";

/// Runs the subcommand with the arguments after `spool`.
pub(crate) fn main(args: &[String]) -> ExitCode {
    run_subcommand("spool", USAGE, args, run)
}

/// The options and operands after `spool <command>`.
#[derive(Default)]
struct Args {
    dir: Option<String>,
    program: Option<String>,
    json: bool,
    yes: bool,
    to: Option<String>,
    timeout: Option<String>,
    operands: Vec<String>,
}

fn parse(args: &[String]) -> Result<Args, Failure> {
    let mut parsed = Args::default();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = |slot: &mut Option<String>| -> Result<(), Failure> {
            let value = match inline.clone() {
                Some(value) => value,
                None => rest
                    .next()
                    .cloned()
                    .ok_or_else(|| Failure::usage(format!("{name} needs a value")))?,
            };
            *slot = Some(value);
            Ok(())
        };
        match name {
            "--dir" => value(&mut parsed.dir)?,
            "--program" => value(&mut parsed.program)?,
            "--to" => value(&mut parsed.to)?,
            "--timeout" => value(&mut parsed.timeout)?,
            "--json" if inline.is_none() => parsed.json = true,
            "--yes" if inline.is_none() => parsed.yes = true,
            _ if name.starts_with("--") => {
                return Err(Failure::usage(format!("unknown option {arg}")))
            }
            _ => parsed.operands.push(arg.clone()),
        }
    }
    Ok(parsed)
}

fn run(args: &[String]) -> Result<ExitCode, Failure> {
    let Some((command, rest)) = args.split_first() else {
        return Err(Failure::usage(
            "a command is needed: list, show, send or purge",
        ));
    };
    let args = parse(rest)?;
    let allowed: &[&str] = match command.as_str() {
        "list" => &["dir"],
        "show" => &["dir", "json"],
        "send" => &["dir", "to", "timeout"],
        "purge" => &["dir", "yes"],
        other => return Err(Failure::usage(format!("unknown command {other}"))),
    };
    for (name, given) in [
        ("json", args.json),
        ("yes", args.yes),
        ("to", args.to.is_some()),
        ("timeout", args.timeout.is_some()),
    ] {
        if given && !allowed.contains(&name) {
            return Err(Failure::usage(format!(
                "--{name} does not go with {command}"
            )));
        }
    }
    let operands = if command == "show" { 1 } else { 0 };
    if args.operands.len() != operands {
        return Err(match (operands, args.operands.get(operands)) {
            (1, None) => Failure::usage("show needs a report ID"),
            (_, Some(extra)) => Failure::usage(format!("unexpected argument {extra}")),
            _ => Failure::usage("missing argument"),
        });
    }
    let dir = spool_dir(&args)?;
    match command.as_str() {
        "list" => list(&dir),
        "show" => show(&dir, &args.operands[0], args.json),
        "send" => send(&dir, &args),
        _ => purge(&dir, args.yes),
    }
}

/// The spool directory: `--dir`, else `--program`'s default, else
/// `CRASHBOX_SPOOL_DIR`, as `Options::from_env` reads it.
fn spool_dir(args: &Args) -> Result<PathBuf, Failure> {
    if let Some(dir) = &args.dir {
        return Ok(PathBuf::from(dir));
    }
    if let Some(program) = &args.program {
        let exe = Path::new(program);
        let exe = exe.canonicalize().unwrap_or_else(|_| exe.to_owned());
        return __cli::default_dir_for(&exe).ok_or_else(|| {
            Failure::fatal("neither XDG_STATE_HOME nor HOME is set: no default spool directory")
        });
    }
    if let Some(dir) = std::env::var_os("CRASHBOX_SPOOL_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    // The library's default depends on the program: this one's would be
    // crashbox's own. Name the ones there are.
    let mut message =
        String::from("which spool? Pass --dir DIR or --program EXE, or set CRASHBOX_SPOOL_DIR");
    if let Some(base) = __cli::default_base() {
        let mut dirs: Vec<String> = std::fs::read_dir(&base)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path().display().to_string())
                    .collect()
            })
            .unwrap_or_default();
        dirs.sort();
        if dirs.is_empty() {
            message.push_str(&format!(" (no spool directories in {})", base.display()));
        } else {
            message.push_str(&format!("; spool directories in {}:", base.display()));
            for dir in dirs {
                message.push_str(&format!("\n  {dir}"));
            }
        }
    }
    Err(Failure::usage(message))
}

/// Everything in `dir`, or why it cannot be read.
fn found_in(dir: &Path) -> Result<Vec<Found>, Failure> {
    __cli::list(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Failure::fatal(format!("no spool directory at {}", dir.display()))
        }
        _ => Failure::fatal(format!(
            "cannot read the spool directory {}: {e}",
            dir.display()
        )),
    })
}

/// The first line of `message`, cut to 80 characters.
fn headline(message: &str) -> String {
    let line = message.lines().next().unwrap_or("");
    let mut cut: String = line.chars().take(80).collect();
    if cut.len() < line.len() || message.lines().nth(1).is_some() {
        cut.push('…');
    }
    cut
}

fn state_of(found: &Found) -> String {
    let mut state = found.state.describe().to_owned();
    if found.live {
        state.push_str(", owner running");
    }
    state
}

fn list(dir: &Path) -> Result<ExitCode, Failure> {
    let found = found_in(dir)?;
    if found.is_empty() {
        println!("no reports in {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    for f in &found {
        println!(
            "{:<32}  {:<24}  {:<7}  {:<7}  {}  [{}]",
            f.id.as_deref().unwrap_or("-"),
            f.time(),
            f.kind,
            f.level,
            headline(&f.message),
            state_of(f)
        );
    }
    let kept = found.iter().filter(|f| f.state == State::Kept).count();
    println!(
        "{} report(s) waiting, {kept} kept, in {}",
        found.len() - kept,
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn show(dir: &Path, query: &str, json: bool) -> Result<ExitCode, Failure> {
    if query.len() < 8 || query.len() > 32 || !query.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Failure::usage(format!(
            "ID must be 8 to 32 hex digits (a report id or its start), not {query:?}"
        )));
    }
    let query = query.to_ascii_lowercase();
    let found = found_in(dir)?;
    let matching: Vec<&Found> = found
        .iter()
        .filter(|f| f.id.as_deref().is_some_and(|id| id.starts_with(&query)))
        .collect();
    let mut ids: Vec<&str> = matching.iter().filter_map(|f| f.id.as_deref()).collect();
    ids.sort_unstable();
    ids.dedup();
    match ids.len() {
        0 => {
            eprintln!(
                "crashbox spool: no report with id {query}… in {}",
                dir.display()
            );
            return Ok(ExitCode::from(1));
        }
        1 => {}
        _ => {
            return Err(Failure::fatal(format!(
                "{} reports have ids starting with {query}: {}",
                ids.len(),
                ids.join(", ")
            )))
        }
    }
    // The same capture may be in two places at once (its journal line and
    // its spool file): the most finished one is shown.
    let rank = |f: &&Found| match f.state {
        State::Waiting | State::Kept => 0,
        State::Raw => 1,
        State::Journal => 2,
        State::Corrupt => 3,
    };
    let Some(best) = matching.iter().copied().min_by_key(rank) else {
        return Ok(ExitCode::from(1));
    };
    if json {
        println!("{}", best.json());
    } else {
        print!("{}", best.summary());
        if best.report.is_some() {
            println!("  {} ({})", state_of(best), best.path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reports `send` should deliver: waiting, of owners that are gone.
fn deliverable(found: &[Found]) -> usize {
    found
        .iter()
        .filter(|f| !f.live && matches!(f.state, State::Waiting | State::Raw | State::Journal))
        .count()
}

fn send(dir: &Path, args: &Args) -> Result<ExitCode, Failure> {
    let Some(collector) = args.to.clone() else {
        return Err(Failure::usage("send needs --to COLLECTOR"));
    };
    let timeout = match &args.timeout {
        None => Duration::from_secs(30),
        Some(secs) => secs
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 86_400.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| Failure::usage(format!("--timeout takes seconds, not {secs:?}")))?,
    };
    let before = found_in(dir)?;
    let waiting = deliverable(&before);
    // Starting a client records a run start in the run-state file, which
    // the program's next start reads (`crashbox::last_run`): keep it as it was.
    let run_state = dir.join("run-state.json");
    let saved = std::fs::read(&run_state).ok();
    let options = Options::new()
        .collector(collector)
        .spool_dir(dir)
        .panic_hook(false)
        // Asked to send what waits: however old it is (retention by count,
        // which folds a crash loop's repeats into one report, still applies).
        .spool_max_age(Duration::from_secs(100 * 365 * 86_400))
        .max_attempts(u32::MAX)
        .aggregation_window(Duration::ZERO)
        .max_reports_per_minute(0);
    let guard = crashbox::init(options).map_err(|e| Failure::fatal(e.to_string()))?;
    if crashbox::spool_dir().is_none() {
        drop(guard);
        restore(&run_state, saved);
        return Err(Failure::fatal(format!(
            "the spool directory {} cannot be used (see above)",
            dir.display()
        )));
    }
    let flushed = crashbox::flush(timeout);
    // Whatever is still on its way goes back to the spool.
    drop(guard);
    restore(&run_state, saved);
    __cli::remove_empty_spares(dir);
    let stats = crashbox::stats();
    let after = found_in(dir)?;
    let left = deliverable(&after);
    let running = after
        .iter()
        .filter(|f| f.live && f.state != State::Kept)
        .count();
    let set_aside = after
        .iter()
        .filter(|f| f.state == State::Corrupt && !f.live)
        .count();
    println!(
        "sent {} of {waiting} report(s) waiting in {}",
        stats.sent,
        dir.display()
    );
    let mut failed = false;
    if stats.dropped() > 0 {
        failed = true;
        println!(
            "{} report(s) dropped: {} refused by the collector, {} after every retry failed, {} other",
            stats.dropped(),
            stats.dropped_rejected,
            stats.dropped_retries_exhausted,
            stats.dropped() - stats.dropped_rejected - stats.dropped_retries_exhausted
        );
    }
    if left > 0 || stats.spooled > 0 {
        failed = true;
        let why = if flushed {
            "the collector did not take them"
        } else {
            "not delivered within the timeout"
        };
        println!(
            "{} report(s) still waiting in the spool ({why})",
            left.max(stats.spooled as usize)
        );
    }
    if stats.spool_corrupt > 0 {
        failed = true;
        println!(
            "{} unreadable spool file(s) moved to corrupt/",
            stats.spool_corrupt
        );
    }
    if stats.spool_discarded > 0 {
        failed = true;
        println!(
            "{} spool file(s) removed by retention (more than the spool keeps); the next report says so",
            stats.spool_discarded
        );
    }
    if stats.filtered > 0 {
        println!("{} report(s) filtered", stats.filtered);
    }
    if running > 0 {
        println!("{running} report(s) belong to running processes, which send them: left alone");
    }
    if set_aside > 0 {
        println!("{set_aside} unreadable file(s) in corrupt/ not sent (crashbox spool purge removes them)");
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Puts the run-state file back as it was before `send` started a client.
fn restore(path: &Path, saved: Option<Vec<u8>>) {
    match saved {
        Some(bytes) => {
            let _ = std::fs::write(path, bytes);
        }
        None => {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn describe(p: &__cli::Purged) -> String {
    format!(
        "{} spool file(s), {} journal(s) holding {} capture(s), {} spare file(s) holding a panic's raw capture, {} file(s) in corrupt/",
        p.spool_files, p.journals, p.journal_captures, p.spares, p.corrupt
    )
}

fn purge(dir: &Path, yes: bool) -> Result<ExitCode, Failure> {
    let cannot = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Failure::fatal(format!("no spool directory at {}", dir.display()))
        }
        _ => Failure::fatal(format!(
            "cannot read the spool directory {}: {e}",
            dir.display()
        )),
    };
    let planned = __cli::purge(dir, true).map_err(cannot)?;
    let total = planned.spool_files + planned.journals + planned.spares + planned.corrupt;
    let live_note = |live: usize| {
        if live > 0 {
            println!("{live} file(s) of running processes left alone");
        }
    };
    if total == 0 {
        println!("nothing to remove in {}", dir.display());
        live_note(planned.live);
        return Ok(ExitCode::SUCCESS);
    }
    if !yes {
        eprintln!(
            "crashbox spool: would remove {total} file(s) from {}: {}; pass --yes to remove them",
            dir.display(),
            describe(&planned)
        );
        return Ok(ExitCode::from(2));
    }
    let done = __cli::purge(dir, false).map_err(cannot)?;
    println!("removed from {}: {}", dir.display(), describe(&done));
    live_note(done.live);
    if done.failed > 0 {
        eprintln!(
            "crashbox spool: {} file(s) could not be removed",
            done.failed
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
