//! Shared helpers for the integration tests: re-running one test of the
//! test binary in a child process (for anything that touches crashbox's
//! per-process global state) and what parent and child say to each other
//! (collectors, options, counters), collector strings, unique temporary
//! directories, reading and checking what collectors received, and turns for
//! the in-process tests that depend on the process-wide client.
//!
//! Its submodules hold the larger helpers; a feature folder's own helpers
//! live in that folder's `mod.rs`.
pub mod errors;
pub mod fixture_build;
pub mod http_server;
pub mod sentry_fixture;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crashbox::{ConfigError, Options};
use serde_json::Value;

// ---------------------------------------------------------------------------
// Child processes.
//
// A scenario that calls `init` runs in a child process: a `child_*` test,
// marked `#[ignore = "child process of …"]` so a plain `cargo test` skips
// it, which its parent test runs with `--ignored --exact <module::child_x>`
// (see [`child_command`], [`run_child`] and [`child!`]). A child starts with
// [`assert_child`], so running it any other way fails instead of passing
// without doing anything.

/// Set in the environment of a child process; `child_*` tests fail without it.
pub const CHILD_ENV: &str = "CRASHBOX_TEST_CHILD";

/// Environment variables crashbox reads; cleared for every child unless set explicitly.
const CRASHBOX_VARS: &[&str] = &[
    "CRASHBOX_COLLECTOR",
    "CRASHBOX_RELEASE",
    "CRASHBOX_ENVIRONMENT",
    "CRASHBOX_SPOOL_DIR",
    "CRASHBOX_SYMBOLICATE",
    "CRASHBOX_DEBUG",
    "SENTRY_DSN",
    "SENTRY_RELEASE",
    "SENTRY_ENVIRONMENT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
];

/// How long a child may run before it is killed and the parent test fails.
const CHILD_DEADLINE: Duration = Duration::from_secs(120);

/// Whether this process is a child started by [`run_child`] or [`child_command`].
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// The first statement of every `child_*` test: fails it unless it runs as
/// a child process its parent test started.
#[track_caller]
pub fn assert_child() {
    assert!(
        is_child(),
        "a child process of another test: its parent runs it (with {CHILD_ENV} set)"
    );
}

/// libtest's name for the test function at `path` (`child_x`,
/// `super::child_x` or `crate::area::child_x`) as written in the module
/// `module` (as `module_path!()` gives it: the crate's name first, which
/// libtest leaves out).
pub fn test_name(module: &str, path: &str) -> String {
    let path: String = path.chars().filter(|c| !c.is_whitespace()).collect();
    let mut segments: Vec<&str> = module.split("::").skip(1).collect();
    let mut rest = path.as_str();
    if let Some(from_root) = rest.strip_prefix("crate::") {
        segments.clear();
        rest = from_root;
    }
    loop {
        if let Some(up) = rest.strip_prefix("super::") {
            segments.pop();
            rest = up;
        } else if let Some(here) = rest.strip_prefix("self::") {
            rest = here;
        } else {
            break;
        }
    }
    segments.push(rest);
    segments.join("::")
}

/// The full libtest name (`area::module::child_x`) of the child test
/// function at the given path, for [`run_child`] and the helpers built on
/// it. The path must name a `fn()` in scope, or this does not compile.
macro_rules! child {
    ($child:path) => {{
        let _: fn() = $child;
        $crate::util::test_name(module_path!(), stringify!($child))
    }};
}
pub(crate) use child;

/// [`test_name`] and [`child!`] give the names `--exact` matches.
#[test]
fn full_test_names_of_children_are_what_libtest_runs() {
    assert_eq!(
        test_name("tests::spool::outage", "child_x"),
        "spool::outage::child_x"
    );
    assert_eq!(
        test_name("tests::spool::outage", "super :: child_replay"),
        "spool::child_replay"
    );
    assert_eq!(
        test_name("tests::spool::outage", "self::child_x"),
        "spool::outage::child_x"
    );
    assert_eq!(
        test_name("tests::spool::outage", "crate::delivery::child_x"),
        "delivery::child_x"
    );
    // Any `fn()` will do: this test itself.
    assert_eq!(
        child!(full_test_names_of_children_are_what_libtest_runs),
        "util::full_test_names_of_children_are_what_libtest_runs"
    );
    assert_eq!(
        child!(crate::util::full_test_names_of_children_are_what_libtest_runs),
        "util::full_test_names_of_children_are_what_libtest_runs"
    );
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
            // The first line may follow libtest's "test area::child_x ... " prefix.
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

    /// The single value of `CHILD:key=value` as a number; panics if absent
    /// or not one.
    #[track_caller]
    pub fn number(&self, key: &str) -> u64 {
        let value = self.value(key);
        value
            .parse()
            .unwrap_or_else(|e| panic!("CHILD:{key}={value} is not a number: {e}"))
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

/// The command that runs the ignored test `name` (its full name, from
/// [`child!`]) of the current test binary in a child process: [`CHILD_ENV`]
/// set, `envs` set (crashbox's own variables are cleared unless given here),
/// `XDG_STATE_HOME` at `state`, no stdin, stdout and stderr piped.
pub fn child_command(name: &str, envs: &[(&str, OsString)], state: &Path) -> Command {
    let exe = std::env::current_exe().expect("current test binary");
    let mut command = Command::new(exe);
    command
        .args([
            "--ignored",
            "--exact",
            name,
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .env("XDG_STATE_HOME", state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in CRASHBOX_VARS {
        command.env_remove(var);
    }
    for (key, value) in envs {
        command.env(key, value);
    }
    command
}

/// Starts child test `name` (see [`child_command`]) without waiting for it:
/// its stdout lines arrive on the returned channel as it prints them, and
/// its stderr is read to the end by the returned thread.
pub fn spawn_child(
    name: &str,
    envs: &[(&str, OsString)],
    state: &Path,
) -> (
    Child,
    std::sync::mpsc::Receiver<String>,
    std::thread::JoinHandle<String>,
) {
    use std::io::BufRead;
    let mut child = child_command(name, envs, state)
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, lines, stderr)
}

/// Runs the ignored test `name` (its full name, from [`child!`]) of the
/// current test binary in a child process with [`CHILD_ENV`] set, plus
/// `envs` (crashbox's own variables are cleared unless given here), and
/// waits for it. Panics if the child did not run exactly that one test (a
/// misspelt name, or a child not marked `#[ignore]`), or ran longer than
/// two minutes.
///
/// The child's `XDG_STATE_HOME` is a fresh temporary directory, removed
/// afterwards, so nothing crashbox keeps between runs (its spool) lands in
/// the user's home or leaks from one test run into the next.
#[track_caller]
pub fn run_child(name: &str, envs: &[(&str, OsString)]) -> ChildOutput {
    let state = TempDir::new("state");
    let start = Instant::now();
    let child = child_command(name, envs, state.path())
        .spawn()
        .expect("spawn child test process");
    let output = wait_for_exit(child, start, CHILD_DEADLINE, &format!("child test {name}"));
    // A misspelt name would run zero tests and "pass": make sure it ran.
    assert!(
        output.stdout.contains("running 1 test"),
        "child {name} did not run exactly one test\n{}",
        output.dump()
    );
    output
}

/// Waits for `child` (started at `start`, stdout and stderr piped) and
/// collects what it printed. After `deadline` it kills `child` and panics,
/// calling it `what`.
#[track_caller]
pub fn wait_for_exit(
    mut child: Child,
    start: Instant,
    deadline: Duration,
    what: &str,
) -> ChildOutput {
    let readers = [
        Box::new(child.stdout.take().expect("stdout is piped")) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().expect("stderr is piped")),
    ]
    .map(|mut pipe| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} ran for more than {deadline:?}; killed it");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    let [stdout, stderr] = readers.map(|reader| reader.join().unwrap());
    ChildOutput {
        status,
        stdout,
        stderr,
        elapsed,
    }
}

/// Runs `command` to its end; panics, showing its stderr, unless it
/// succeeded. `what` names it in that message.
#[track_caller]
pub fn run_command(command: &mut Command, what: &str) -> Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what} did not start: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

// ---------------------------------------------------------------------------
// What the parent tells a child.

/// The environment variable `name`; panics if it is not set.
#[track_caller]
pub fn env_var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// Where the parent tells a child to send reports (a collector string).
pub const COLLECTOR_ENV: &str = "CRASHBOX_TEST_COLLECTOR";

/// In a child: the collector the parent gave in [`COLLECTOR_ENV`].
pub fn child_collector() -> String {
    env_var(COLLECTOR_ENV)
}

/// Options a child starts from: the parent's collector, without the on-disk
/// spool (reports given up on are then counted as dropped, and children
/// never replay each other's leftovers), and every capture sent on its own
/// (no aggregation of repeats, no rate limit): these tests count deliveries.
pub fn child_options() -> Options {
    one_by_one(Options::new().collector(child_collector()).spool(false))
}

/// `options` with every capture sent on its own: no aggregation of repeats
/// and no client-side rate limit.
pub fn one_by_one(options: Options) -> Options {
    options
        .aggregation_window(Duration::ZERO)
        .max_reports_per_minute(0)
}

/// [`child_options`] with retries fast enough for a test: a back-off of
/// 50 to 200 ms, and 4 attempts.
pub fn fast_options() -> Options {
    child_options()
        .retry_backoff(Duration::from_millis(50), Duration::from_millis(200))
        .max_attempts(4)
}

/// Runs the child test `name` with `collector` in [`COLLECTOR_ENV`] (plus
/// `envs`), and asserts it succeeded.
#[track_caller]
pub fn run_against(name: &str, collector: &str, envs: &[(&str, OsString)]) -> ChildOutput {
    let mut all = vec![(COLLECTOR_ENV, OsString::from(collector))];
    all.extend(envs.iter().cloned());
    let out = run_child(name, &all);
    out.assert_success();
    out
}

/// Where the parent tells a child to write reports (the path of a `file://`
/// collector).
pub const REPORTS_ENV: &str = "CRASHBOX_TEST_REPORTS";

/// In a child: the `file://` collector for the path in [`REPORTS_ENV`].
pub fn child_file_collector() -> String {
    file_collector(Path::new(&env_var(REPORTS_ENV)))
}

/// Runs the child test `name` with `path` in [`REPORTS_ENV`], and asserts it
/// succeeded.
#[track_caller]
pub fn run_writing_to(name: &str, path: &Path) -> ChildOutput {
    let out = run_child(name, &[(REPORTS_ENV, path.into())]);
    out.assert_success();
    out
}

/// In a child: calls `init` with `collector`, and prints the outcome as case
/// `i`: `variant{i}` (`Ok`, `InvalidCollector` or `other`) and, for an
/// error, its `display{i}` and `debug{i}`. Returns the error.
pub fn report_init_outcome(i: usize, collector: String) -> Option<ConfigError> {
    let error = match crashbox::init(Options::new().collector(collector)) {
        Ok(guard) => {
            report_value(&format!("variant{i}"), "Ok");
            drop(guard);
            return None;
        }
        Err(e) => e,
    };
    let variant = match &error {
        ConfigError::InvalidCollector { .. } => "InvalidCollector",
        _ => "other",
    };
    report_value(&format!("variant{i}"), variant);
    report_value(&format!("display{i}"), &error);
    report_value(&format!("debug{i}"), format!("{error:?}"));
    Some(error)
}

// ---------------------------------------------------------------------------
// Counters.

/// In a child: prints `crashbox::stats()` as `CHILD:{key}=Stats { … }` for
/// the parent to read with [`stats`].
pub fn print_stats(key: &str) {
    report_value(key, format!("{:?}", crashbox::stats()));
}

/// Parses the `Debug` text of `crashbox::stats()` (`Stats { sent: 3, … }`),
/// as a child printed it, into counter name → value.
pub fn parse_stats(debug: &str) -> BTreeMap<String, u64> {
    debug
        .split(['{', '}', ','])
        .filter_map(|field| {
            let (name, value) = field.split_once(':')?;
            Some((name.trim().to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The counters a child printed with [`print_stats`] under `key`; panics,
/// showing the child's output, unless they include `counter`.
#[track_caller]
pub fn stats_with(out: &ChildOutput, key: &str, counter: &str) -> BTreeMap<String, u64> {
    let stats = parse_stats(&out.value(key));
    assert!(stats.contains_key(counter), "{}", out.dump());
    stats
}

/// The counters a child printed with [`print_stats`] under `key`.
#[track_caller]
pub fn stats(out: &ChildOutput, key: &str) -> BTreeMap<String, u64> {
    stats_with(out, key, "sent")
}

/// Polls `done` every 5 ms until it holds; after `timeout`, panics with
/// `failure()`.
#[track_caller]
fn poll(timeout: Duration, mut done: impl FnMut() -> bool, failure: impl Fn() -> String) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{}", failure());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls `done` every 5 ms; panics after `timeout`, naming `what`.
#[track_caller]
pub fn wait_for(timeout: Duration, what: &str, done: impl FnMut() -> bool) {
    poll(timeout, done, || format!("timed out waiting for {what}"));
}

/// Polls `stats()` until `pred` holds; panics after `timeout`.
#[track_caller]
pub fn wait_for_stats(timeout: Duration, pred: impl Fn(&crashbox::Stats) -> bool) {
    poll(
        timeout,
        || pred(&crashbox::stats()),
        || format!("stats never matched: {:?}", crashbox::stats()),
    );
}

// ---------------------------------------------------------------------------
// Files and collector strings.

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

/// A fresh temporary directory (removed when the returned `TempDir` is
/// dropped) and the path of a `reports.jsonl` in it, not yet written.
pub fn temp_reports_file(label: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new(label);
    let path = dir.path().join("reports.jsonl");
    (dir, path)
}

/// The collector string for an absolute path.
pub fn file_collector(path: &Path) -> String {
    assert!(path.is_absolute(), "{}", path.display());
    format!("file://{}", path.display())
}

/// The `http://` collector on loopback port `port`, path `/ingest`.
pub fn http_collector(port: u16) -> String {
    format!("http://127.0.0.1:{port}/ingest")
}

/// The `sentry+http://` collector (a DSN) on loopback port `port`.
pub fn sentry_collector(key: &str, port: u16, project: u64) -> String {
    format!("sentry+http://{key}@127.0.0.1:{port}/{project}")
}

/// The `otlp+http://` collector on loopback port `port`.
pub fn otlp_collector(port: u16) -> String {
    format!("otlp+http://127.0.0.1:{port}")
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

// ---------------------------------------------------------------------------
// The report schema.

/// The keys of every report, as a collector receives it.
pub const REPORT_KEYS: &[&str] = &[
    "id",
    "timestamp",
    "level",
    "kind",
    "message",
    "exceptions",
    "frames",
    "location",
    "thread",
    "tags",
    "extra",
    "user",
    "breadcrumbs",
    "context",
    "release",
    "environment",
    "sdk",
    "group",
    "count",
];
/// The keys of each of a report's `frames`.
pub const FRAME_KEYS: &[&str] = &["function", "file", "line", "column", "in_app", "address"];
/// The keys of each of a report's `exceptions`.
pub const EXCEPTION_KEYS: &[&str] = &["type", "message"];
/// The keys of a report's `location`.
pub const LOCATION_KEYS: &[&str] = &["file", "line", "column"];
/// The keys of a report's `thread`.
pub const THREAD_KEYS: &[&str] = &["name", "id"];
/// The keys of each of a report's `breadcrumbs`.
pub const BREADCRUMB_KEYS: &[&str] = &["timestamp", "category", "message", "level", "data"];
/// The keys of a report's `context`.
pub const CONTEXT_KEYS: &[&str] = &[
    "os",
    "os_version",
    "kernel",
    "arch",
    "hostname",
    "pid",
    "executable",
    "rustc",
    "cpu_count",
];

/// Panics unless `object` is a JSON object with every one of `keys`.
#[track_caller]
pub fn assert_keys(object: &Value, keys: &[&str], what: &str) {
    let map = object
        .as_object()
        .unwrap_or_else(|| panic!("{what} is not an object: {object}"));
    for key in keys {
        assert!(map.contains_key(*key), "{what} lacks `{key}`: {object}");
    }
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

/// Turns of the in-process tests that touch crashbox's process-wide state:
/// one that installs a client (one client per process at a time) or reads
/// the process-wide counters runs alone; ones that need no client installed
/// (the `crashbox::testing` helpers take the installed client's settings,
/// and a panic outside them goes to its collector) run together.
static CLIENT_LOCK: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Takes the turn of the in-process tests that install a client (or that
/// depend on the installed client, as `testing::capture` does for settings).
pub fn client_turn() -> std::sync::RwLockWriteGuard<'static, ()> {
    CLIENT_LOCK
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Takes a turn shared by the in-process tests that need no client
/// installed: those that use `crashbox::testing` without one.
pub fn without_client() -> std::sync::RwLockReadGuard<'static, ()> {
    CLIENT_LOCK
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A client on the `memory` collector with every capture sent on its own,
/// installed while this lives (and holding [`client_turn`]), with the global
/// scope, breadcrumbs and the memory collector emptied before and after.
pub struct MemoryClient {
    // Field order: shut the client down before letting the next test in.
    guard: Option<crashbox::Guard>,
    _turn: std::sync::RwLockWriteGuard<'static, ()>,
}

impl MemoryClient {
    pub fn start(options: Options) -> MemoryClient {
        let turn = client_turn();
        reset_global_state();
        let guard = crashbox::init(one_by_one(options.collector("memory"))).expect("init");
        MemoryClient {
            guard: Some(guard),
            _turn: turn,
        }
    }

    /// Flushes (up to 30 s: the first report loads debug info), and returns
    /// the reports the memory collector got.
    pub fn reports(&self) -> Vec<crashbox::Report> {
        assert!(crashbox::flush(Duration::from_secs(30)), "flush timed out");
        crashbox::take_memory_reports()
    }

    /// Drops the guard (delivering what is queued) and returns the reports
    /// the memory collector got.
    pub fn shut_down(&mut self) -> Vec<crashbox::Report> {
        drop(self.guard.take());
        crashbox::take_memory_reports()
    }
}

impl Drop for MemoryClient {
    fn drop(&mut self) {
        drop(self.guard.take());
        reset_global_state();
    }
}

/// Forgets what earlier tests left in the process-wide hub and the memory collector.
pub fn reset_global_state() {
    crashbox::configure_scope(|scope| *scope = crashbox::Scope::default());
    crashbox::clear_breadcrumbs();
    crashbox::take_memory_reports();
}
