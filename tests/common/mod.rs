//! Shared helpers for the integration tests: re-running one test of the
//! current test binary in a child process (for anything that touches
//! crashbox's per-process global state), unique temporary directories, and
//! reading `file://` collector output.
#![allow(dead_code)]

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Set in the environment of a child process; `child_*` tests do nothing without it.
pub const CHILD_ENV: &str = "CRASHBOX_TEST_CHILD";

/// Environment variables crashbox reads; cleared for every child unless set explicitly.
const CRASHBOX_VARS: &[&str] = &[
    "CRASHBOX_COLLECTOR",
    "CRASHBOX_RELEASE",
    "CRASHBOX_ENVIRONMENT",
    "CRASHBOX_SPOOL_DIR",
    "SENTRY_DSN",
];

/// How long a child may run before it is killed and the parent test fails.
const CHILD_DEADLINE: Duration = Duration::from_secs(120);

/// Whether this process is a child started by [`run_child`].
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// What a child process did.
#[derive(Debug)]
pub struct ChildOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
}

impl ChildOutput {
    /// Panics, showing the child's output, unless it exited successfully.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(
            self.status.success(),
            "child failed with {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// The values of `CHILD:key=value` lines the child printed to stdout.
    pub fn values(&self, key: &str) -> Vec<String> {
        let prefix = format!("CHILD:{key}=");
        self.stdout
            .lines()
            // The first line may follow libtest's "test child_x ... " prefix.
            .filter_map(|line| line.find(&prefix).map(|at| &line[at + prefix.len()..]))
            .map(str::to_owned)
            .collect()
    }

    /// The single value of `CHILD:key=value`; panics if absent.
    #[track_caller]
    pub fn value(&self, key: &str) -> String {
        let values = self.values(key);
        assert_eq!(
            values.len(),
            1,
            "expected one CHILD:{key}= line\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout,
            self.stderr
        );
        values.into_iter().next().unwrap()
    }

    /// Both streams, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "status {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Prints a `CHILD:key=value` line for the parent to read (see [`ChildOutput::value`]).
pub fn report_value(key: &str, value: impl std::fmt::Display) {
    println!("CHILD:{key}={value}");
}

/// Re-runs the test `name` of the current test binary in a child process
/// with [`CHILD_ENV`] set, plus `envs` (crashbox's own variables are cleared
/// unless given here), and waits for it. Panics if the child did not run
/// exactly that one test, or ran longer than two minutes.
///
/// The child's `XDG_STATE_HOME` is a fresh temporary directory, removed
/// afterwards, so nothing crashbox keeps between runs (its spool) lands in
/// the user's home or leaks from one test run into the next.
#[track_caller]
pub fn run_child(name: &str, envs: &[(&str, OsString)]) -> ChildOutput {
    let exe = std::env::current_exe().expect("current test binary");
    let state = TempDir::new("state");
    let mut command = Command::new(exe);
    command
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env("XDG_STATE_HOME", state.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in CRASHBOX_VARS {
        command.env_remove(var);
    }
    for (key, value) in envs {
        command.env(key, value);
    }
    let start = Instant::now();
    let mut child = command.spawn().expect("spawn child test process");
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if start.elapsed() > CHILD_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child test {name} ran for more than {CHILD_DEADLINE:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    let output = ChildOutput {
        status,
        stdout: String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned(),
        elapsed,
    };
    // A misspelt name would run zero tests and "pass": make sure it ran.
    assert!(
        output.stdout.contains("running 1 test"),
        "child {name} did not run exactly one test\n{}",
        output.dump()
    );
    output
}

/// A fresh directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("crashbox-test-{}-{n}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The collector string for an absolute path.
pub fn file_collector(path: &Path) -> String {
    assert!(path.is_absolute(), "{}", path.display());
    format!("file://{}", path.display())
}

/// The non-empty lines of a collector file (empty when it does not exist).
pub fn read_lines(path: &Path) -> Vec<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("reading {}: {e}", path.display()),
    }
}

/// Every line of a collector file parsed as a report.
#[track_caller]
pub fn read_reports(path: &Path) -> Vec<crashbox::Report> {
    read_lines(path)
        .iter()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("line is not a report ({e}): {line}"))
        })
        .collect()
}

/// Whether `s` has the shape `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn is_rfc3339_utc_millis(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 24 {
        return false;
    }
    b.iter().enumerate().all(|(i, &c)| match i {
        4 | 7 => c == b'-',
        10 => c == b'T',
        13 | 16 => c == b':',
        19 => c == b'.',
        23 => c == b'Z',
        _ => c.is_ascii_digit(),
    })
}

/// Whether `s` is 32 lowercase hex digits.
pub fn is_lower_hex_32(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
