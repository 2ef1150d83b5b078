//! Builds `cli` once per release debug setting and measures what crashbox
//! costs it: wall time and peak RSS of whole runs (the exit cost a
//! short-lived program pays for having reported), and RSS inside one run
//! after `init`, after the first report, after 100 and after the worker
//! has been idle. Prints Markdown tables on stdout, progress on stderr.
//!
//! ```text
//! cd benches/rss && cargo run --release [-- --runs N] [--profiles a,b] [--no-idle]
//! ```
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The profiles declared in this package's Cargo.toml, with the `debug` each sets.
const PROFILES: [(&str, &str); 4] = [
    ("debug-false", "false"),
    ("line-tables-only", "\"line-tables-only\""),
    ("debug-1", "1"),
    ("debug-true", "true"),
];

/// What each run of `cli` does.
const MODES: [(&str, &[&str]); 6] = [
    ("without crashbox", &[]),
    ("crashbox, 0 errors", &["--crashbox"]),
    ("crashbox, 1 error", &["--crashbox", "--errors", "1"]),
    ("crashbox, 100 errors", &["--crashbox", "--errors", "100"]),
    (
        "`symbolicate(false)`, 1 error",
        &["--crashbox", "--no-symbolicate", "--errors", "1"],
    ),
    (
        "`symbolicate(false)`, 100 errors",
        &["--crashbox", "--no-symbolicate", "--errors", "100"],
    ),
];

/// Seconds the in-process run waits after its last report: past the
/// worker's idle period (10 s), so the debug info has been let go.
const IDLE_WAIT: &str = "12";

struct Config {
    runs: usize,
    profiles: Vec<&'static str>,
    idle: bool,
}

fn parse_args() -> Result<Config, String> {
    let mut config = Config {
        runs: 21,
        profiles: PROFILES.iter().map(|(p, _)| *p).collect(),
        idle: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--runs" => {
                let n = it.next().ok_or("--runs needs a number")?;
                config.runs = n.parse().map_err(|e| format!("--runs {n}: {e}"))?;
                if config.runs == 0 {
                    return Err("--runs must be at least 1".into());
                }
            }
            "--profiles" => {
                let list = it.next().ok_or("--profiles needs a list")?;
                config.profiles = list
                    .split(',')
                    .map(|p| {
                        PROFILES
                            .iter()
                            .map(|(name, _)| *name)
                            .find(|name| *name == p)
                            .ok_or_else(|| format!("unknown profile {p}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--no-idle" => config.idle = false,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(config)
}

fn package_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| package_dir().join("target"))
}

/// Builds `cli` with `profile`; its path.
fn build(profile: &str) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--bin", "cli", "--profile", profile])
        .current_dir(package_dir())
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building cli with profile {profile} failed"));
    }
    Ok(target_dir().join(profile).join("cli"))
}

/// One run: wall time from spawn to exit, and the child's own peak RSS in KiB.
fn run_once(cli: &Path, args: &[&str]) -> Result<(Duration, u64), String> {
    let start = Instant::now();
    let child = Command::new(cli)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("{}: {e}", cli.display()))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero `rusage` is valid; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // wait4 reaps exactly this child and gives its own resource usage
    // (getrusage(RUSAGE_CHILDREN) would give the largest of all children).
    // SAFETY: `pid` is our child, not waited for yet; the pointers are valid.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let elapsed = start.elapsed();
    // The child is reaped; `Child` has no destructor that waits, so letting it
    // go here does not touch the pid again.
    drop(child);
    if waited != pid {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("cli {args:?} failed (status {status:#x})"));
    }
    // ru_maxrss is in KiB on Linux.
    Ok((elapsed, usage.ru_maxrss as u64))
}

fn median<T: Copy + Ord>(values: &mut [T]) -> T {
    values.sort_unstable();
    values[values.len() / 2]
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn signed_mib(kib: i64) -> String {
    format!("{:+.1}", kib as f64 / 1024.0)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `key=value` lines of one in-process run.
fn in_process(cli: &Path, args: &[&str]) -> Result<Vec<(String, u64)>, String> {
    let out = Command::new(cli)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{}: {e}", cli.display()))?;
    if !out.status.success() {
        return Err(format!("cli {args:?} failed ({})", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crashbox-rss: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let config = parse_args()?;
    let mut builds = Vec::new();
    for &profile in &config.profiles {
        eprintln!("building cli ({profile})");
        let cli = build(profile)?;
        let size = std::fs::metadata(&cli).map(|m| m.len()).unwrap_or(0);
        builds.push((profile, cli, size));
    }

    println!(
        "Whole runs of `cli` (about 10 ms of work): wall time and peak RSS, \
         median of {} runs each; with crashbox, the difference to the same \
         build without it.\n",
        config.runs
    );
    let header: Vec<&str> = MODES.iter().map(|(mode, _)| *mode).collect();
    println!("| `debug =` | binary | {} |", header.join(" | "));
    println!("|---|---:|{}", "---:|".repeat(MODES.len()));
    for (profile, cli, size) in &builds {
        eprintln!("running cli ({profile}), {} rounds", config.runs);
        let mut times = vec![Vec::new(); MODES.len()];
        let mut peaks = vec![Vec::new(); MODES.len()];
        // Warm the page cache (the binary, and the debug info the modes
        // that symbolicate read) so the first round is not an outlier.
        run_once(cli, MODES[3].1)?;
        // Round-robin, so drift on the machine spreads over every mode alike.
        for _ in 0..config.runs {
            for (i, (_, args)) in MODES.iter().enumerate() {
                let (time, peak) = run_once(cli, args)?;
                times[i].push(time);
                peaks[i].push(peak);
            }
        }
        let time: Vec<Duration> = times.iter_mut().map(|t| median(t)).collect();
        let peak: Vec<u64> = peaks.iter_mut().map(|p| median(p)).collect();
        let mut cells = vec![format!("{:.1} ms, {:.1} MiB", ms(time[0]), mib(peak[0]))];
        for i in 1..MODES.len() {
            cells.push(format!(
                "{:+.1} ms, {} MiB",
                ms(time[i]) - ms(time[0]),
                signed_mib(peak[i] as i64 - peak[0] as i64)
            ));
        }
        let debug = PROFILES
            .iter()
            .find(|(p, _)| p == profile)
            .map_or("", |p| p.1);
        println!(
            "| `{debug}` | {:.1} MiB | {} |",
            mib(*size / 1024),
            cells.join(" | ")
        );
    }

    println!(
        "\nInside one process: RSS over the process's RSS before `init` \
         (peak so far, `VmHWM`; the last two columns are `VmRSS`), each after \
         `crashbox::flush`{}.\n",
        if config.idle {
            "; \"idle\": 12 s after the last report"
        } else {
            ""
        }
    );
    println!(
        "| `debug =` | symbolicate | before `init` | after `init` | after the 1st report | after 100 reports | RSS then | RSS idle |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for (profile, cli, _) in &builds {
        let debug = PROFILES
            .iter()
            .find(|(p, _)| p == profile)
            .map_or("", |p| p.1);
        for symbolicate in [true, false] {
            eprintln!("in-process run ({profile}, symbolicate {symbolicate})");
            let mut args = vec!["--crashbox", "--errors", "100", "--rss"];
            if !symbolicate {
                args.push("--no-symbolicate");
            }
            if config.idle {
                args.extend(["--idle", IDLE_WAIT]);
            }
            let values = in_process(cli, &args)?;
            let get = |key: &str| values.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
            let base = get("start.rss_kib").unwrap_or(0);
            let over = |key: &str| {
                get(key).map_or("–".to_owned(), |v| {
                    format!("{} MiB", signed_mib(v as i64 - base as i64))
                })
            };
            println!(
                "| `{debug}` | {} | {:.1} MiB | {} | {} | {} | {} | {} |",
                if symbolicate { "on" } else { "`false`" },
                mib(base),
                over("init.hwm_kib"),
                over("first.hwm_kib"),
                over("all.hwm_kib"),
                over("all.rss_kib"),
                over("idle.rss_kib"),
            );
        }
    }
    Ok(())
}
