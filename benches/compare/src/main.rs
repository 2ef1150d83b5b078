//! crashbox against the sentry SDK: the same scenarios, one run, one table.
//!
//! `cargo run --release` (in `benches/compare`) runs every scenario once per
//! SDK, each in a child process of its own (this binary, re-executed as
//! `<scenario> <sdk>`), so neither SDK's panic hook or global client can
//! affect the other's numbers. A child prints `key=value` lines on stdout;
//! the parent collects them and prints a markdown table.
use std::collections::HashMap;
use std::hint::black_box;
use std::panic::catch_unwind;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Captures per thread in crashbox's storm (and in the no-SDK baseline).
const STORM_CRASHBOX: usize = 100_000;
/// Captures per thread in sentry's storm: at ~1 ms a capture, 100,000 would take minutes.
const STORM_SENTRY: usize = 2_000;
const STORM_THREADS: usize = 2;
/// The latency scenarios drain crashbox's queue (default capacity 1024)
/// every this many captures, outside the timed part, so it never fills.
const DRAIN_EVERY: usize = 256;
const RELEASE: &str = "compare@0.1.0";

#[path = "../../support/mod.rs"]
mod support;
use support::{at_depth, DEPTH};

/// A two-level error chain: the outer error and its `source()`.
#[derive(Debug)]
struct LedgerError(std::io::Error);

impl std::fmt::Display for LedgerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("reading the ledger failed")
    }
}

impl std::error::Error for LedgerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn ledger_error() -> LedgerError {
    LedgerError(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "ledger.db",
    ))
}

/// What a scenario needs from an SDK.
trait Sdk {
    type Guard;
    fn init() -> Self::Guard;
    fn capture_error(err: &LedgerError);
    fn capture_message(message: &str);
    /// Waits until everything captured so far reached the transport.
    fn drain();
    /// Reports the transport received.
    fn delivered() -> u64;
    /// Emits the SDK's own accounting, if it keeps any.
    fn counters() {}
}

/// Reports (crashbox) or envelopes (sentry) the discarding transports saw.
static DELIVERED: AtomicU64 = AtomicU64::new(0);

/// The stack of the first report or event delivered: frames, and how many
/// of them have a function name (both SDKs symbolicate).
static FIRST_STACK: OnceLock<(usize, usize)> = OnceLock::new();

/// crashbox's transport: counts and discards.
struct Discard;

impl crashbox::Transport for Discard {
    fn send(&mut self, reports: &[crashbox::Report]) -> Result<(), crashbox::TransportError> {
        if let Some(report) = reports.first() {
            FIRST_STACK.get_or_init(|| {
                let named = report.frames.iter().filter(|f| f.function.is_some());
                (report.frames.len(), named.count())
            });
        }
        black_box(reports);
        DELIVERED.fetch_add(reports.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

struct Crashbox;

impl Sdk for Crashbox {
    type Guard = crashbox::Guard;

    fn init() -> crashbox::Guard {
        crashbox::init(crashbox_options()).expect("crashbox::init")
    }

    #[inline]
    fn capture_error(err: &LedgerError) {
        black_box(crashbox::capture_error(err));
    }

    #[inline]
    fn capture_message(message: &str) {
        black_box(crashbox::capture_message(message, crashbox::Level::Warning));
    }

    fn drain() {
        assert!(crashbox::flush(Duration::from_secs(10)), "flush timed out");
    }

    fn delivered() -> u64 {
        DELIVERED.load(Ordering::Relaxed)
    }

    fn counters() {
        let stats = crashbox::stats();
        emit("captured", stats.captured);
        emit("in_flight", stats.in_flight());
        emit("stats", format!("{stats:?}"));
    }
}

fn crashbox_options() -> crashbox::Options {
    crashbox::Options::new()
        .transport(Discard)
        .spool(false)
        .release(RELEASE)
}

/// crashbox with aggregation off: every capture, repeat or not, is queued
/// to the worker (the path of an error's first occurrence).
struct CrashboxUnaggregated;

impl Sdk for CrashboxUnaggregated {
    type Guard = crashbox::Guard;

    fn init() -> crashbox::Guard {
        crashbox::init(crashbox_options().aggregation_window(Duration::ZERO))
            .expect("crashbox::init")
    }

    #[inline]
    fn capture_error(err: &LedgerError) {
        Crashbox::capture_error(err);
    }

    #[inline]
    fn capture_message(message: &str) {
        Crashbox::capture_message(message);
    }

    fn drain() {
        Crashbox::drain();
    }

    fn delivered() -> u64 {
        Crashbox::delivered()
    }
}

/// sentry's transport: counts and discards envelopes, on the caller's thread.
struct DiscardEnvelopes;

impl sentry::Transport for DiscardEnvelopes {
    fn send_envelope(&self, envelope: sentry::Envelope) {
        if let Some(event) = envelope.event() {
            FIRST_STACK.get_or_init(|| {
                let stacks = event.threads.values.iter().map(|t| &t.stacktrace);
                let stacks = stacks.chain(event.exception.values.iter().map(|e| &e.stacktrace));
                let frames: Vec<_> = stacks.flatten().flat_map(|s| &s.frames).collect();
                let named = frames.iter().filter(|f| f.function.is_some()).count();
                (frames.len(), named)
            });
        }
        black_box(envelope);
        DELIVERED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Makes a [`DiscardEnvelopes`] for each client.
struct DiscardFactory;

impl sentry::TransportFactory for DiscardFactory {
    fn create_transport_with_options(
        &self,
        _: sentry::TransportOptions,
    ) -> Arc<dyn sentry::Transport> {
        Arc::new(DiscardEnvelopes)
    }
}

struct Sentry;

impl Sdk for Sentry {
    type Guard = sentry::ClientInitGuard;

    fn init() -> sentry::ClientInitGuard {
        sentry::init(sentry_options())
    }

    #[inline]
    fn capture_error(err: &LedgerError) {
        black_box(sentry::capture_error(err));
    }

    #[inline]
    fn capture_message(message: &str) {
        black_box(sentry::capture_message(message, sentry::Level::Warning));
    }

    fn drain() {
        // The transport runs on the caller's thread: nothing is ever queued.
    }

    fn delivered() -> u64 {
        DELIVERED.load(Ordering::Relaxed)
    }
}

fn sentry_options() -> sentry::ClientOptions {
    // `ClientOptions` is non-exhaustive: the builder sets the same fields as
    // `ClientOptions { dsn, attach_stacktrace, transport, release, ..Default::default() }`.
    // Without a DSN the client is disabled; the transport never contacts it.
    sentry::ClientOptions::new()
        .dsn("https://public@127.0.0.1/1")
        .attach_stacktrace(true)
        .transport(DiscardFactory)
        .release(RELEASE)
}

/// sentry with the transport it picks itself (ureq, on a thread of its own),
/// for the init scenario's reference row.
struct SentryUreq;

impl Sdk for SentryUreq {
    type Guard = sentry::ClientInitGuard;
    fn init() -> sentry::ClientInitGuard {
        sentry::init(
            sentry::ClientOptions::new()
                .dsn("https://public@127.0.0.1/1")
                .attach_stacktrace(true)
                .release(RELEASE),
        )
    }
    fn capture_error(err: &LedgerError) {
        Sentry::capture_error(err);
    }
    fn capture_message(message: &str) {
        Sentry::capture_message(message);
    }
    fn drain() {}
    fn delivered() -> u64 {
        0
    }
}

/// A bare thread spawn: the floor of an init that starts a worker thread.
struct ThreadSpawn;

/// Joins the thread when dropped (outside the timed part), as crashbox's
/// `Guard` joins its worker.
struct Joined(Option<std::thread::JoinHandle<()>>);

impl Drop for Joined {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            handle.join().expect("join");
        }
    }
}

impl Sdk for ThreadSpawn {
    type Guard = Joined;
    fn init() -> Joined {
        let handle = std::thread::Builder::new()
            .name("spawn-floor".to_owned())
            .spawn(|| {})
            .expect("spawn");
        Joined(Some(handle))
    }
    fn capture_error(_: &LedgerError) {}
    fn capture_message(_: &str) {}
    fn drain() {}
    fn delivered() -> u64 {
        0
    }
}

/// The storm's baseline: the same loop, no SDK.
struct NoSdk;

impl Sdk for NoSdk {
    type Guard = ();
    fn init() {}
    fn capture_error(err: &LedgerError) {
        black_box(err);
    }
    fn capture_message(message: &str) {
        black_box(message);
    }
    fn drain() {}
    fn delivered() -> u64 {
        0
    }
}

/// How long to sample a scenario.
#[derive(Clone, Copy)]
struct Plan {
    warmup: Duration,
    budget: Duration,
    min_samples: usize,
    max_samples: usize,
}

const LATENCY: Plan = Plan {
    warmup: Duration::from_millis(300),
    budget: Duration::from_secs(3),
    min_samples: 200,
    max_samples: 100_000,
};

/// Runs `sample(i)` (which returns one measurement, in ns; `i` counts the
/// calls, warm-up included) for the plan's warm-up, then until its budget or
/// sample cap; returns the median and the number of samples.
fn median_ns(plan: Plan, mut sample: impl FnMut(usize) -> f64) -> (f64, usize) {
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < plan.warmup || i < 10 {
        black_box(sample(i));
        i += 1;
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < plan.max_samples
        && (samples.len() < plan.min_samples || start.elapsed() < plan.budget)
    {
        samples.push(sample(i));
        i += 1;
    }
    samples.sort_by(f64::total_cmp);
    (samples[samples.len() / 2], samples.len())
}

fn nanos(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

/// Prints one `key=value` result line for the parent.
fn emit(key: &str, value: impl std::fmt::Display) {
    println!("{key}={value}");
}

fn emit_median((median, samples): (f64, usize)) {
    emit("median_ns", median);
    emit("samples", samples);
}

/// One capture from depth 20, so the first stack walk (and, for sentry, the
/// loading of debug info) is not in any measurement.
fn warm_up<S: Sdk>(err: &LedgerError) {
    at_depth(DEPTH, &mut || S::capture_error(err));
    S::drain();
}

fn scenario_capture_error<S: Sdk>() {
    let err = ledger_error();
    let _guard = S::init();
    warm_up::<S>(&err);
    emit_median(median_ns(LATENCY, |i| {
        if i % DRAIN_EVERY == 0 {
            S::drain();
        }
        at_depth(DEPTH, &mut || {
            let start = Instant::now();
            S::capture_error(black_box(&err));
            nanos(start.elapsed())
        })
    }));
    S::drain();
    if let Some((frames, named)) = FIRST_STACK.get() {
        emit("frames", frames);
        emit("named_frames", named);
    }
}

fn scenario_capture_message<S: Sdk>() {
    let err = ledger_error();
    let _guard = S::init();
    warm_up::<S>(&err);
    emit_median(median_ns(LATENCY, |i| {
        if i % DRAIN_EVERY == 0 {
            S::drain();
        }
        at_depth(DEPTH, &mut || {
            let start = Instant::now();
            S::capture_message(black_box("ledger is stale"));
            nanos(start.elapsed())
        })
    }));
}

fn scenario_panic<S: Sdk>() {
    // The SDK's hook chains to this one: nothing is printed, on either side.
    std::panic::set_hook(Box::new(|_| {}));
    let err = ledger_error();
    let _guard = S::init();
    warm_up::<S>(&err);
    emit_median(median_ns(LATENCY, |i| {
        if i % DRAIN_EVERY == 0 {
            S::drain();
        }
        let start = Instant::now();
        let result = catch_unwind(|| at_depth(DEPTH, &mut || panic!("boom")));
        let elapsed = start.elapsed();
        assert!(result.is_err());
        nanos(elapsed)
    }));
}

fn scenario_no_client<S: Sdk>() {
    const BATCH: u32 = 10_000;
    let err = ledger_error();
    let plan = Plan {
        budget: Duration::from_secs(1),
        ..LATENCY
    };
    emit_median(median_ns(plan, |_| {
        let start = Instant::now();
        for _ in 0..BATCH {
            S::capture_error(black_box(&err));
        }
        nanos(start.elapsed()) / f64::from(BATCH)
    }));
}

/// The first init of a fresh process: what an application pays.
/// Fresh processes whose first init is timed.
const FIRST_INIT_RUNS: usize = 15;

fn scenario_init_first<S: Sdk>() {
    let start = Instant::now();
    let guard = S::init();
    let first = start.elapsed();
    drop(black_box(guard));
    emit("first_ns", nanos(first));
}

fn scenario_init<S: Sdk>() {
    let plan = Plan {
        budget: Duration::from_secs(2),
        max_samples: 5_000,
        ..LATENCY
    };
    emit_median(median_ns(plan, |_| {
        let start = Instant::now();
        let guard = S::init();
        let elapsed = start.elapsed();
        drop(black_box(guard));
        nanos(elapsed)
    }));
}

fn scenario_storm<S: Sdk>(per_thread: usize) {
    let err = ledger_error();
    let guard = S::init();
    warm_up::<S>(&err);
    let before = S::delivered();
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..STORM_THREADS {
            scope.spawn(|| {
                for _ in 0..per_thread {
                    at_depth(DEPTH, &mut || S::capture_error(black_box(&err)));
                }
            });
        }
    });
    let elapsed = start.elapsed();
    let captures = per_thread * STORM_THREADS;
    emit("captures", captures);
    emit("secs", elapsed.as_secs_f64());
    emit("per_sec", captures as f64 / elapsed.as_secs_f64());
    S::drain();
    emit("delivered", S::delivered() - before);
    S::counters();
    emit("vmhwm_kib", vmhwm_kib());
    drop(guard);
}

/// Peak resident set size of this process, from `/proc/self/status`.
fn vmhwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn child(scenario: &str, sdk: &str) {
    match (scenario, sdk) {
        ("capture_error", "crashbox") => scenario_capture_error::<Crashbox>(),
        ("capture_error", "sentry") => scenario_capture_error::<Sentry>(),
        ("capture_error", "crashbox-unaggregated") => {
            scenario_capture_error::<CrashboxUnaggregated>()
        }
        ("capture_message", "crashbox") => scenario_capture_message::<Crashbox>(),
        ("capture_message", "sentry") => scenario_capture_message::<Sentry>(),
        ("panic", "crashbox") => scenario_panic::<Crashbox>(),
        ("panic", "sentry") => scenario_panic::<Sentry>(),
        ("no_client", "crashbox") => scenario_no_client::<Crashbox>(),
        ("no_client", "sentry") => scenario_no_client::<Sentry>(),
        ("init", "crashbox") => scenario_init::<Crashbox>(),
        ("init", "sentry") => scenario_init::<Sentry>(),
        ("init", "sentry-ureq") => scenario_init::<SentryUreq>(),
        ("init", "thread") => scenario_init::<ThreadSpawn>(),
        ("init_first", "crashbox") => scenario_init_first::<Crashbox>(),
        ("init_first", "sentry") => scenario_init_first::<Sentry>(),
        ("storm", "crashbox") => scenario_storm::<Crashbox>(STORM_CRASHBOX),
        ("storm", "sentry") => scenario_storm::<Sentry>(STORM_SENTRY),
        ("storm", "none") => scenario_storm::<NoSdk>(STORM_CRASHBOX),
        _ => {
            eprintln!("unknown scenario `{scenario} {sdk}`");
            std::process::exit(2);
        }
    }
}

type Results = HashMap<String, String>;

/// Re-executes this binary as `<scenario> <sdk>` and collects its `key=value` lines.
fn run_child(scenario: &str, sdk: &str) -> Results {
    eprintln!("running {scenario} / {sdk} ...");
    let exe = std::env::current_exe().expect("current_exe");
    let output = Command::new(exe)
        .args([scenario, sdk])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("spawn child");
    if !output.status.success() {
        eprintln!("`{scenario} {sdk}` failed: {}", output.status);
        std::process::exit(1);
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn num(results: &Results, key: &str) -> f64 {
    results
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("child result without `{key}`: {results:?}"))
}

fn fmt_time(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

fn fmt_rate(per_sec: f64) -> String {
    if per_sec >= 1e6 {
        format!("{:.2} M/s", per_sec / 1e6)
    } else if per_sec >= 1e3 {
        format!("{:.1} k/s", per_sec / 1e3)
    } else {
        format!("{per_sec:.0} /s")
    }
}

fn fmt_mib(kib: f64) -> String {
    format!("{:.1} MiB", kib / 1024.0)
}

fn fmt_ratio(ratio: f64) -> String {
    if ratio >= 10.0 {
        format!("{ratio:.0}×")
    } else {
        format!("{ratio:.2}×")
    }
}

/// A scenario's target: crashbox at least `times` better than sentry.
struct Target {
    row: &'static str,
    times: f64,
    ratio: f64,
}

fn parent() {
    let started = Instant::now();
    let mut rows: Vec<[String; 4]> = Vec::new();
    let mut targets = Vec::new();
    let mut row = |label: &str, c: f64, s: f64, target: Option<(&'static str, f64)>| {
        rows.push([label.to_owned(), fmt_time(c), fmt_time(s), fmt_ratio(s / c)]);
        if let Some((name, times)) = target {
            targets.push(Target {
                row: name,
                times,
                ratio: s / c,
            });
        }
    };

    let error_c = run_child("capture_error", "crashbox");
    let error_s = run_child("capture_error", "sentry");
    row(
        "capture_error, 2-level chain, depth 20 (caller's thread)",
        num(&error_c, "median_ns"),
        num(&error_s, "median_ns"),
        Some(("capture_error", 50.0)),
    );
    let unaggregated = run_child("capture_error", "crashbox-unaggregated");
    row(
        "capture_error as above, crashbox with aggregation off (every capture queued) ⁴",
        num(&unaggregated, "median_ns"),
        num(&error_s, "median_ns"),
        Some(("capture_error, aggregation off", 50.0)),
    );
    let mut timed = |scenario: &str, label: &str| {
        let c = num(&run_child(scenario, "crashbox"), "median_ns");
        let s = num(&run_child(scenario, "sentry"), "median_ns");
        row(label, c, s, None);
    };
    timed(
        "capture_message",
        "capture_message, Warning, depth 20 (caller's thread)",
    );
    timed(
        "panic",
        "caught panic, depth 20 (`catch_unwind`, hook installed)",
    );
    timed("no_client", "capture_error, no client installed");
    let init_c = num(&run_child("init", "crashbox"), "median_ns");
    let init_s = num(&run_child("init", "sentry"), "median_ns");
    let init_ureq = num(&run_child("init", "sentry-ureq"), "median_ns");
    let spawn = num(&run_child("init", "thread"), "median_ns");
    row(
        "init, discarding transports (guard dropped between runs)",
        init_c,
        init_s,
        Some(("init", 100.0)),
    );
    row(
        "init, sentry with its own ureq transport (for reference) ³",
        init_c,
        init_ureq,
        None,
    );
    let first_init = |sdk: &str| {
        let mut samples: Vec<f64> = (0..FIRST_INIT_RUNS)
            .map(|_| num(&run_child("init_first", sdk), "first_ns"))
            .collect();
        samples.sort_by(f64::total_cmp);
        samples[samples.len() / 2]
    };
    row(
        &format!("init, the first of a fresh process (median of {FIRST_INIT_RUNS} processes) ⁵"),
        first_init("crashbox"),
        first_init("sentry"),
        None,
    );

    let storm_c = run_child("storm", "crashbox");
    let storm_s = run_child("storm", "sentry");
    let storm_none = run_child("storm", "none");
    let (c_rate, s_rate) = (num(&storm_c, "per_sec"), num(&storm_s, "per_sec"));
    rows.push([
        format!(
            "storm: {STORM_THREADS} threads, same error, depth 20 (captures/s; ratio = crashbox / sentry) ¹"
        ),
        fmt_rate(c_rate),
        fmt_rate(s_rate),
        fmt_ratio(c_rate / s_rate),
    ]);
    targets.push(Target {
        row: "storm",
        times: 30.0,
        ratio: c_rate / s_rate,
    });
    let (c_rss, s_rss, base_rss) = (
        num(&storm_c, "vmhwm_kib"),
        num(&storm_s, "vmhwm_kib"),
        num(&storm_none, "vmhwm_kib"),
    );
    rows.push([
        "peak RSS of the storm process (VmHWM) ²".to_owned(),
        fmt_mib(c_rss),
        fmt_mib(s_rss),
        fmt_ratio(s_rss / c_rss),
    ]);
    rows.push([
        format!("peak RSS over the no-SDK baseline ({})", fmt_mib(base_rss)),
        fmt_mib(c_rss - base_rss),
        fmt_mib(s_rss - base_rss),
        fmt_ratio((s_rss - base_rss) / (c_rss - base_rss)),
    ]);

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "crashbox {} vs {} (sentry's user agent); {cpus} CPUs; release build with debug info\n",
        crashbox::Sdk::default().version,
        sentry::ClientOptions::default().user_agent,
    );
    println!("| scenario | crashbox | sentry | ratio (sentry / crashbox) |");
    println!("|---|---:|---:|---:|");
    for [a, b, c, d] in &rows {
        println!("| {a} | {b} | {c} | {d} |");
    }
    println!();
    println!(
        "Times are medians per operation after warm-up; each SDK ran each scenario in a \
         process of its own. The first report of capture_error carried {} frames ({} named) \
         with crashbox, the first event {} frames ({} named) with sentry.",
        error_c.get("frames").map_or("?", String::as_str),
        error_c.get("named_frames").map_or("?", String::as_str),
        error_s.get("frames").map_or("?", String::as_str),
        error_s.get("named_frames").map_or("?", String::as_str),
    );
    println!(
        "¹ crashbox: {} captures in {:.2} s; sentry: {} captures in {:.2} s ({STORM_SENTRY} per \
         thread instead of {STORM_CRASHBOX}: at sentry's cost per capture the full storm would \
         take minutes; its throughput does not depend on the count).",
        storm_c["captures"],
        num(&storm_c, "secs"),
        storm_s["captures"],
        num(&storm_s, "secs"),
    );
    println!(
        "  crashbox, after crashbox::flush ({} captured: the storm's plus 1 warm-up; \
         {} reports reached the transport during the storm; in flight: {}): {}",
        storm_c["captured"], storm_c["delivered"], storm_c["in_flight"], storm_c["stats"]
    );
    println!(
        "  sentry: {} envelopes reached the transport during the storm.",
        storm_s["delivered"]
    );
    println!(
        "² The storm processes of row ¹ (sentry's with fewer captures); the baseline runs \
         the same loop ({STORM_CRASHBOX} per thread) with no SDK."
    );
    println!(
        "³ sentry's default transport starts a sender thread, as crashbox's init starts its \
         worker. A bare std::thread spawn (joined outside the timed part) takes {} here.",
        fmt_time(spawn)
    );
    println!(
        "⁴ With the default 60 s aggregation window, a repeat of an error already reported \
         is counted on the caller's thread (after the stack walk) instead of being queued; \
         the row above mostly measures repeats. Here every capture goes through the queue."
    );
    println!(
        "⁵ Each process times its first init only: code and data touched for the first \
         time, the first thread the process starts. The medians above are of repeated \
         inits in one process."
    );
    println!();
    println!("Targets (crashbox at least N× better):");
    for t in &targets {
        let verdict = if t.ratio >= t.times {
            "met".to_owned()
        } else {
            format!("MISSED by a factor of {:.0}", t.times / t.ratio)
        };
        println!(
            "- {}: ≥ {:.0}×, measured {} — {verdict}",
            t.row,
            t.times,
            fmt_ratio(t.ratio)
        );
    }
    println!();
    println!("Run took {:.1} s.", started.elapsed().as_secs_f64());
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => parent(),
        [scenario, sdk] => child(scenario, sdk),
        _ => {
            eprintln!("usage: crashbox-compare [<scenario> <crashbox|sentry|none>]");
            std::process::exit(2);
        }
    }
}
