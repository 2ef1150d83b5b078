//! A panic is on disk before the panic hook returns: SIGKILL right after
//! it, even while the worker is stuck in a send, loses nothing, and the
//! next run delivers it with its frames resolved (or, spooled by another
//! build, with its addresses only).
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Child;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{
    assert_files_private, child_env, delivered, files_ending, has_in_app_frame, mark_when_stuck,
    options, pending_files, run_ok, spooled_ids, stats, wait_for_spooled, wait_until_stuck,
    SPOOL_ENV, WORK_ENV,
};
use crate::util::http_server::{refused_port, Behavior, Server};
use crate::util::{assert_child, child, env_var, http_collector, report_value, TempDir};
use crashbox::Level;
use serde_json::Value;

/// SIGKILL on Linux.
const SIGKILL: i32 = 9;

/// The thread that panics in the SIGKILL test, and what it says.
const PANIC_THREAD: &str = "spool-panicker";
const PANIC_MESSAGE: &str = "the spool keeps this panic";

/// The panic site the test looks for among the delivered frames.
#[inline(never)]
fn panics_on_the_named_thread(message: &str) {
    panic!("{message}");
}

/// Starts child test `name` (see [`util::spawn_child`]).
fn spawn_child(
    name: &str,
    envs: &[(&'static str, OsString)],
    state: &TempDir,
) -> (Child, mpsc::Receiver<String>, JoinHandle<String>) {
    crate::util::spawn_child(name, envs, state.path())
}

/// Runs child test `name` until it prints `CHILD:joined=`, then SIGKILLs
/// it; returns the lines it printed before.
fn run_until_joined_then_kill(name: &str, envs: &[(&'static str, OsString)]) -> Vec<String> {
    let state = TempDir::new("state-kill");
    let (mut child, lines, stderr) = spawn_child(name, envs, &state);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains("CHILD:joined=") => break,
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = stderr.join().unwrap();
                panic!("child {name} never reported its panic: {seen:#?}\n{stderr}");
            }
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no shutdown, nothing flushed
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert_eq!(status.signal(), Some(SIGKILL), "{status}\n{stderr}");
    seen
}

/// Installs a panic hook for crashbox to hand over to, which prints how many
/// raw panic captures with the panic's message the spool holds by then.
///
/// The worker may be renaming the hook's spare file meanwhile, so one
/// directory scan can miss it: the hook scans a few times. That proves no
/// less, since only the panic hook writes `captured` entries (the worker
/// writes `report` entries and renames), and crashbox's hook is blocked in
/// this call for as long as it runs.
fn install_previous_hook() {
    let spool = PathBuf::from(env_var(SPOOL_ENV));
    std::panic::set_hook(Box::new(move |_| {
        let mut ids = BTreeSet::new();
        for _ in 0..50 {
            for path in pending_files(&spool) {
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                let Ok(file) = serde_json::from_slice::<Value>(&bytes) else {
                    continue;
                };
                let entry = &file["entry"];
                if entry["type"] == "captured" && entry["message"] == PANIC_MESSAGE {
                    ids.insert(entry["id"].as_str().unwrap_or_default().to_owned());
                }
            }
            if !ids.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        report_value("durable_in_previous_hook", ids.len());
    }));
}

/// Panics on [`PANIC_THREAD`], joins it, and says so.
fn panic_on_the_named_thread() {
    let joined = std::thread::Builder::new()
        .name(PANIC_THREAD.to_owned())
        .spawn(|| panics_on_the_named_thread(PANIC_MESSAGE))
        .unwrap()
        .join();
    assert!(joined.is_err());
    report_value("joined", 1);
}

#[track_caller]
fn assert_is_the_named_thread_panic(report: &Value) {
    assert_eq!(report["level"], "fatal", "{report:#}");
    assert_eq!(report["kind"], "panic", "{report:#}");
    assert_eq!(report["message"], PANIC_MESSAGE, "{report:#}");
    assert_eq!(report["thread"]["name"], PANIC_THREAD, "{report:#}");
    assert!(
        has_in_app_frame(report, "panics_on_the_named_thread"),
        "no resolved in-app frame for the panicking function: {:#}",
        report["frames"]
    );
}

#[test]
fn a_panic_survives_sigkill_and_the_next_run_delivers_it_with_resolved_frames() {
    let spool = TempDir::new("spool-sigkill");
    let seen = run_until_joined_then_kill(
        &child!(child_panic_then_wait_to_be_killed),
        &child_env(&http_collector(refused_port()), spool.path()),
    );
    assert!(
        seen.iter()
            .any(|l| l.contains("CHILD:durable_in_previous_hook=1")),
        "the panic was not in the spool when the previous hook ran: {seen:#?}"
    );

    // The panic is on disk as a raw capture: addresses tied to their files.
    let files = pending_files(spool.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let file: Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(file["format"], 1, "{file}");
    let entry = &file["entry"];
    assert_eq!(entry["type"], "captured", "{file}");
    assert_eq!(entry["message"], PANIC_MESSAGE);
    let modules = entry["modules"].as_array().expect("modules");
    assert!(!modules.is_empty(), "{file}");
    assert!(modules
        .iter()
        .all(|m| m["path"].as_str().is_some_and(|p| p.starts_with('/'))
            && m["identity"].as_str().is_some_and(|i| !i.is_empty())));
    let exe = std::env::current_exe().unwrap();
    assert!(
        modules.iter().any(|m| m["path"].as_str() == exe.to_str()),
        "this binary is not among the modules: {modules:#?}"
    );
    assert!(entry["located"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| !l.is_null()));
    let id = entry["id"].as_str().unwrap().to_owned();
    assert_files_private(spool.path());

    let server = Server::start();
    let out = run_ok(
        &child!(super::child_replay),
        &http_collector(server.port()),
        spool.path(),
        &[],
    );
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    assert_eq!(out.value("last_run"), "true/1", "the killed run panicked");
    let stats = stats(&out);
    assert_eq!(stats["replayed"], 1, "{stats:?}");
    assert_eq!(stats["sent"], 1, "{stats:?}");
    let reports = delivered(&server);
    assert_eq!(reports.len(), 1, "{reports:#?}");
    let report = &reports[0];
    assert_eq!(report["id"], id.as_str());
    assert_is_the_named_thread_panic(report);
    assert!(pending_files(spool.path()).is_empty());
}

#[test]
fn a_panic_spooled_by_another_build_is_delivered_with_its_addresses_only() {
    let spool = TempDir::new("spool-rebuilt");
    run_until_joined_then_kill(
        &child!(child_panic_then_wait_to_be_killed),
        &child_env(&http_collector(refused_port()), spool.path()),
    );
    let files = pending_files(spool.path());
    assert_eq!(files.len(), 1, "{files:?}");
    // Pretend every file it ran from was rebuilt since (another identity).
    let mut file: Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    let entry = &mut file["entry"];
    let addresses = entry["addresses"].as_array().unwrap().len();
    assert!(addresses > 0);
    for module in entry["modules"].as_array_mut().unwrap() {
        module["identity"] = "1:2:3:4".into();
    }
    std::fs::write(&files[0], serde_json::to_vec(&file).unwrap()).unwrap();

    let server = Server::start();
    let out = run_ok(
        &child!(super::child_replay),
        &http_collector(server.port()),
        spool.path(),
        &[],
    );
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    let reports = delivered(&server);
    assert_eq!(reports.len(), 1, "{reports:#?}");
    let report = &reports[0];
    assert_eq!(report["message"], PANIC_MESSAGE);
    assert_eq!(report["level"], "fatal");
    let frames = report["frames"].as_array().unwrap();
    assert_eq!(frames.len(), addresses, "one frame an address");
    for frame in frames {
        assert!(
            frame["function"].is_null(),
            "resolved against the wrong build: {frame}"
        );
        assert_eq!(frame["in_app"], false, "{frame}");
        assert!(
            frame["address"].as_str().unwrap().starts_with("0x"),
            "{frame}"
        );
    }
}

/// Run (and killed) by `a_panic_survives_sigkill_and_the_next_run_delivers_it_with_resolved_frames`
/// and `a_panic_spooled_by_another_build_is_delivered_with_its_addresses_only`.
#[test]
#[ignore = "child process of `a_panic_survives_sigkill_and_the_next_run_delivers_it_with_resolved_frames` and `a_panic_spooled_by_another_build_is_delivered_with_its_addresses_only`"]
fn child_panic_then_wait_to_be_killed() {
    assert_child();
    install_previous_hook();
    let _guard = crashbox::init(options().max_attempts(100_000)).expect("init");
    panic_on_the_named_thread();
    std::thread::sleep(Duration::from_secs(120));
    unreachable!("the parent kills this process");
}

#[test]
fn a_panic_while_the_worker_is_stuck_in_a_send_survives_sigkill_in_its_spare_file() {
    let hanging = Server::with_behavior(Behavior::Hang);
    let spool = TempDir::new("spool-stuck-panic");
    let work = TempDir::new("work-stuck-panic");
    let mut envs = child_env(&http_collector(hanging.port()), spool.path());
    envs.push((WORK_ENV, work.path().into()));
    let seen = std::thread::scope(|scope| {
        mark_when_stuck(scope, &hanging, work.path());
        run_until_joined_then_kill(&child!(child_panic_while_the_worker_is_stuck), &envs)
    });
    assert!(
        seen.iter()
            .any(|l| l.contains("CHILD:durable_in_previous_hook=1")),
        "the panic was not in the spool when the previous hook ran: {seen:#?}"
    );
    assert_eq!(
        hanging.request_count(),
        1,
        "the worker never got past its first send"
    );
    // The hanging send holds up the transport's thread only: the panic is
    // on disk, in the hook's spare file or (once the worker took it in)
    // under its report name, beside the message sent before (kept by its
    // capture's journal line while it is on its way).
    let filled: Vec<PathBuf> = files_ending(spool.path(), ".spare")
        .into_iter()
        .filter(|p| std::fs::metadata(p).unwrap().len() > 0)
        .collect();
    let spooled = spooled_ids(spool.path());
    assert_eq!(
        filled.len() + spooled.len(),
        2,
        "the message and the panic: {filled:?} {spooled:?}"
    );
    drop(hanging);

    let server = Server::start();
    let out = run_ok(
        &child!(super::child_replay),
        &http_collector(server.port()),
        spool.path(),
        &[],
    );
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    assert_eq!(out.value("last_run"), "true/1");
    let reports = delivered(&server);
    assert_eq!(reports.len(), 2, "{reports:#?}");
    assert_eq!(reports[0]["message"], "sent before the panic");
    assert_is_the_named_thread_panic(&reports[1]);
    assert!(pending_files(spool.path()).is_empty());
}

/// Run (and killed) by `a_panic_while_the_worker_is_stuck_in_a_send_survives_sigkill_in_its_spare_file`.
#[test]
#[ignore = "child process of `a_panic_while_the_worker_is_stuck_in_a_send_survives_sigkill_in_its_spare_file`"]
fn child_panic_while_the_worker_is_stuck() {
    assert_child();
    install_previous_hook();
    let _guard = crashbox::init(options()).expect("init");
    crashbox::capture_message("sent before the panic", Level::Error).expect("queued");
    wait_for_spooled(1, "the message in the spool");
    wait_until_stuck();
    panic_on_the_named_thread();
    std::thread::sleep(Duration::from_secs(120));
    unreachable!("the parent kills this process");
}
