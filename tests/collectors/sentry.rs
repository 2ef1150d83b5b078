//! The `sentry+http(s)://` collector against a loopback server: envelopes,
//! the event payload, Sentry's rate limits, `SENTRY_DSN`, and DSN errors
//! that never show the key.
//!
//! `init` installs per-process state, so every scenario runs in a child
//! process (see `util::run_child`); the server lives in the parent.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::errors::{load_error, panic_on_thread};
use crate::util::http_server::{Behavior, Request, Server};
use crate::util::{
    assert_child, child, fast_options, is_lower_hex_32, is_rfc3339_utc_millis, print_stats,
    report_init_outcome, report_value, run_against, run_child, sentry_collector, stats, stats_with,
    wait_for_stats, ChildOutput,
};
use crashbox::{Level, Options, User};
use serde_json::Value;

/// The DSN's public key.
const KEY: &str = "0123abcdpublickey";
/// The DSN's project id.
const PROJECT: u64 = 42;

fn dsn(server: &Server) -> String {
    sentry_collector(KEY, server.port(), PROJECT)
}

/// One envelope as the server received it.
#[derive(Debug)]
struct Envelope {
    header: Value,
    item: Value,
    /// The payload line's bytes, exactly as sent.
    payload_bytes: Vec<u8>,
    event: Value,
}

/// Parses a request body as an envelope of exactly one event item.
#[track_caller]
fn envelope(request: &Request) -> Envelope {
    let body = &request.body;
    let lines: Vec<&[u8]> = body
        .strip_suffix(b"\n")
        .unwrap_or(body)
        .split(|b| *b == b'\n')
        .collect();
    assert_eq!(
        lines.len(),
        3,
        "an envelope of one event is three lines: {}",
        String::from_utf8_lossy(body)
    );
    let parse = |line: &[u8]| -> Value {
        serde_json::from_slice(line).unwrap_or_else(|e| {
            panic!(
                "envelope line is not JSON ({e}): {}",
                String::from_utf8_lossy(line)
            )
        })
    };
    Envelope {
        header: parse(lines[0]),
        item: parse(lines[1]),
        payload_bytes: lines[2].to_vec(),
        event: parse(lines[2]),
    }
}

/// The envelopes the server received, by event id.
fn events(server: &Server) -> BTreeMap<String, Envelope> {
    server
        .requests()
        .iter()
        .map(envelope)
        .map(|e| (e.event["event_id"].as_str().unwrap_or("").to_owned(), e))
        .collect()
}

#[track_caller]
fn event_for<'a>(events: &'a BTreeMap<String, Envelope>, id: &str) -> &'a Value {
    &events
        .get(id)
        .unwrap_or_else(|| panic!("no event {id} among {:?}", events.keys()))
        .event
}

const PANIC_PAYLOAD: &str = "ingest batch is empty";

// ---------------------------------------------------------------------------
// Envelopes and events.

/// Run by the event-shape tests: an error, a message and a panic, with scope.
#[test]
#[ignore = "child process of the callers of `run_three_events` and `each_report_is_one_envelope_posted_with_the_sentry_auth_header`"]
fn child_three_events() {
    assert_child();
    let guard =
        crashbox::init(fast_options().release("myapp@1.2.3").environment("staging")).expect("init");
    crashbox::configure_scope(|scope| {
        scope.set_tag("tenant", "acme");
        scope.set_user(Some(User::with_id("user-42")));
        scope.set_extra("attempt", 3);
    });
    let err = load_error();
    let (error_id, error_line) = (crashbox::capture_error(&err), line!());
    let message_id = crashbox::capture_message("cache is cold", Level::Warning);
    let (line_tx, line_rx) = mpsc::channel();
    panic_on_thread("ingest-worker", move || {
        line_tx.send(line!() + 1).unwrap();
        panic!("{PANIC_PAYLOAD}");
    });
    assert!(crashbox::flush(Duration::from_secs(10)), "flush timed out");
    report_value("error_id", error_id.expect("captured"));
    report_value("error_line", error_line);
    report_value("message_id", message_id.expect("captured"));
    report_value("panic_line", line_rx.recv().unwrap());
    print_stats("stats");
    drop(guard);
}

/// Runs `child_three_events` against a fresh server; returns the child's
/// output and the envelopes the server received, by event id.
fn run_three_events() -> (ChildOutput, BTreeMap<String, Envelope>) {
    let server = Server::start();
    let out = run_against(&child!(child_three_events), &dsn(&server), &[]);
    (out, events(&server))
}

#[test]
fn each_report_is_one_envelope_posted_with_the_sentry_auth_header() {
    let server = Server::start();
    let out = run_against(&child!(child_three_events), &dsn(&server), &[]);
    let requests = server.requests();
    assert_eq!(
        requests.len(),
        3,
        "one envelope per event\n{requests:#?}\n{}",
        out.dump()
    );
    let auth = format!(
        "Sentry sentry_version=7, sentry_key={KEY}, sentry_client=crashbox/{}",
        env!("CARGO_PKG_VERSION")
    );
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, format!("/api/{PROJECT}/envelope/"));
        assert_eq!(request.header("x-sentry-auth"), Some(auth.as_str()));
        assert_eq!(
            request.header("content-type"),
            Some("application/x-sentry-envelope")
        );
        let envelope = envelope(request);
        let event_id = envelope.header["event_id"].as_str().expect("event_id");
        assert!(is_lower_hex_32(event_id), "event_id {event_id:?}");
        assert_eq!(envelope.event["event_id"], event_id);
        let sent_at = envelope.header["sent_at"].as_str().expect("sent_at");
        assert!(is_rfc3339_utc_millis(sent_at), "sent_at {sent_at:?}");
        assert_eq!(envelope.item["type"], "event");
        assert_eq!(
            envelope.item["length"].as_u64(),
            Some(envelope.payload_bytes.len() as u64),
            "the item length is the payload's byte length"
        );
    }
    let events = events(&server);
    for key in ["error_id", "message_id"] {
        assert!(events.contains_key(&out.value(key)), "{key} missing");
    }
    assert_eq!(stats(&out, "stats")["sent"], 3);
}

#[test]
fn error_events_list_causes_oldest_first_with_the_stack_on_the_outer_error() {
    let (out, events) = run_three_events();
    let event = event_for(&events, &out.value("error_id"));
    assert_eq!(event["level"], "error");
    assert!(event.get("message").is_none(), "{event}");
    let values = event["exception"]["values"]
        .as_array()
        .expect("exception.values");
    assert_eq!(values.len(), 2, "{event}");
    assert_eq!(
        values[0]["value"], "app.toml is missing",
        "oldest cause first"
    );
    assert_eq!(
        values[1]["value"],
        "could not load the ingest configuration"
    );
    assert!(
        values[1]["type"].as_str().unwrap().ends_with("LoadError"),
        "{values:?}"
    );
    for value in values {
        assert_eq!(value["mechanism"]["type"], "generic");
        assert_eq!(value["mechanism"]["handled"], true);
    }
    assert!(
        values[0].get("stacktrace").is_none(),
        "only the outer error carries the stack"
    );
    let frames = values[1]["stacktrace"]["frames"]
        .as_array()
        .expect("a stacktrace on the last value");
    assert!(frames.len() > 1, "{frames:?}");
    let last = frames.last().unwrap();
    assert_eq!(last["in_app"], true, "the capture site is in-app: {last}");
    assert!(
        last["function"]
            .as_str()
            .unwrap_or("")
            .contains("child_three_events"),
        "the last frame is the capture site: {last}"
    );
    assert_eq!(
        last["lineno"].as_u64(),
        Some(out.value("error_line").parse().unwrap()),
        "{last}"
    );
    assert!(
        last["filename"]
            .as_str()
            .unwrap_or("")
            .ends_with("tests/collectors/sentry.rs"),
        "{last}"
    );
    // Oldest first: the thread's start (std) comes first.
    assert_eq!(frames[0]["in_app"], false, "{frames:?}");
}

/// The GNU build id of the ELF file at `path`, in lowercase hex.
fn build_id_of(path: &std::path::Path) -> String {
    use object::Object;
    let data = std::fs::read(path).expect("read the binary");
    let file = object::File::parse(&*data).expect("an object file");
    let id = file.build_id().expect("notes").expect("a build id");
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `debug_meta.images` entry of the test binary (the child is a run of
/// it), after checking every entry's shape.
#[track_caller]
fn executable_image(event: &Value) -> Value {
    let images = event["debug_meta"]["images"]
        .as_array()
        .unwrap_or_else(|| panic!("no debug_meta.images: {event}"));
    for image in images {
        assert_eq!(image["type"], "elf", "{image}");
        assert!(
            image["code_file"].as_str().is_some_and(|f| !f.is_empty()),
            "{image}"
        );
        assert!(
            image["image_addr"]
                .as_str()
                .is_some_and(|a| a.starts_with("0x")),
            "{image}"
        );
        assert!(
            image["image_size"].as_u64().is_some_and(|s| s > 0),
            "{image}"
        );
    }
    let code_id = build_id_of(&std::env::current_exe().unwrap());
    let image = images
        .iter()
        .find(|i| i["code_id"] == code_id.as_str())
        .unwrap_or_else(|| panic!("no image with code_id {code_id}: {images:?}"))
        .clone();
    // Sentry's debug id for ELF: the build id's first 16 bytes as a GUID.
    let c = &code_id;
    let debug_id = format!(
        "{}{}{}{}-{}{}-{}{}-{}-{}",
        &c[6..8],
        &c[4..6],
        &c[2..4],
        &c[0..2],
        &c[10..12],
        &c[8..10],
        &c[14..16],
        &c[12..14],
        &c[16..20],
        &c[20..32]
    );
    assert_eq!(image["debug_id"], debug_id.as_str(), "{image}");
    let exe = std::env::current_exe().unwrap().canonicalize().unwrap();
    assert_eq!(image["code_file"], exe.to_str().unwrap(), "{image}");
    image
}

fn hex_value(value: &Value) -> u64 {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    u64::from_str_radix(text.strip_prefix("0x").expect("0x hex"), 16).expect("hex")
}

#[test]
fn events_carry_debug_meta_images_and_each_frame_an_instruction_addr() {
    let (out, events) = run_three_events();
    let event = event_for(&events, &out.value("error_id"));
    let image = executable_image(event);
    let start = hex_value(&image["image_addr"]);
    let end = start + image["image_size"].as_u64().unwrap();
    let values = event["exception"]["values"].as_array().unwrap();
    let frames = values[values.len() - 1]["stacktrace"]["frames"]
        .as_array()
        .expect("frames");
    let site = hex_value(&frames.last().unwrap()["instruction_addr"]);
    assert!(
        (start..end).contains(&site),
        "the capture site {site:#x} lies in the executable's image {image}"
    );
    // Every frame has an absolute address, in one of the listed images (a
    // null address, the end of some stacks, belongs to none).
    let images = event["debug_meta"]["images"].as_array().unwrap();
    for frame in frames {
        let address = hex_value(&frame["instruction_addr"]);
        assert!(
            address == 0
                || images.iter().any(|i| {
                    let start = hex_value(&i["image_addr"]);
                    (start..start + i["image_size"].as_u64().unwrap()).contains(&address)
                }),
            "{frame} is in no image of {images:?}"
        );
    }
}

/// Run by `without_local_symbolication_events_carry_addresses_and_images`:
/// options from the environment, where `CRASHBOX_SYMBOLICATE=0`.
#[test]
#[ignore = "child process of `without_local_symbolication_events_carry_addresses_and_images`"]
fn child_unsymbolicated() {
    assert_child();
    let guard = crashbox::init(Options::from_env().spool(false)).expect("init");
    let err = load_error();
    let id = crashbox::capture_error(&err).expect("captured");
    assert!(crashbox::flush(Duration::from_secs(10)), "flush timed out");
    report_value("id", id);
    print_stats("stats");
    drop(guard);
}

#[test]
fn without_local_symbolication_events_carry_addresses_and_images() {
    let server = Server::start();
    let out = run_child(
        &child!(child_unsymbolicated),
        &[
            ("CRASHBOX_COLLECTOR", dsn(&server).into()),
            ("CRASHBOX_SYMBOLICATE", "0".into()),
        ],
    );
    out.assert_success();
    let events = events(&server);
    let event = event_for(&events, &out.value("id"));
    executable_image(event);
    let values = event["exception"]["values"].as_array().unwrap();
    let frames = values[values.len() - 1]["stacktrace"]["frames"]
        .as_array()
        .expect("frames");
    assert!(!frames.is_empty());
    for frame in frames {
        assert!(frame.get("function").is_none(), "{frame}");
        assert!(frame.get("lineno").is_none(), "{frame}");
        assert_eq!(frame["in_app"], false, "{frame}");
        hex_value(&frame["instruction_addr"]);
    }
    let stats = stats_with(&out, "stats", "addresses_resolved");
    assert_eq!(stats["addresses_resolved"], 0, "no debug info was loaded");
    assert_eq!(stats["sent"], 1, "{stats:?}");
}

#[test]
fn panic_events_are_fatal_with_an_unhandled_panic_mechanism() {
    let (out, events) = run_three_events();
    let panics: Vec<&Value> = events
        .values()
        .map(|e| &e.event)
        .filter(|e| e["level"] == "fatal")
        .collect();
    assert_eq!(panics.len(), 1, "{events:#?}");
    let event = panics[0];
    let values = event["exception"]["values"].as_array().expect("exception");
    assert_eq!(values.len(), 1, "{event}");
    let value = &values[0];
    assert_eq!(value["value"], PANIC_PAYLOAD);
    assert_eq!(value["mechanism"]["type"], "panic");
    assert_eq!(value["mechanism"]["handled"], false);
    let frames = value["stacktrace"]["frames"].as_array().expect("frames");
    let last = frames.last().expect("a frame");
    assert_eq!(last["in_app"], true, "{last}");
    assert_eq!(
        last["lineno"].as_u64(),
        Some(out.value("panic_line").parse().unwrap()),
        "the last frame is the panic site: {last}"
    );
    let thread = &event["threads"]["values"][0];
    assert_eq!(thread["name"], "ingest-worker");
    assert_eq!(thread["crashed"], true);
}

#[test]
fn message_events_use_logentry_and_no_top_level_message() {
    let (out, events) = run_three_events();
    let event = event_for(&events, &out.value("message_id"));
    assert_eq!(event["logentry"]["formatted"], "cache is cold");
    assert!(event.get("message").is_none(), "{event}");
    assert!(event.get("exception").is_none(), "{event}");
    assert_eq!(event["level"], "warning");
}

#[test]
fn events_carry_tags_user_release_environment_and_contexts() {
    let (out, events) = run_three_events();
    assert_eq!(events.len(), 3);
    for envelope in events.values() {
        let event = &envelope.event;
        assert_eq!(event["tags"]["tenant"], "acme", "{event}");
        assert_eq!(event["user"]["id"], "user-42", "{event}");
        assert_eq!(event["extra"]["attempt"], 3, "{event}");
        assert_eq!(event["release"], "myapp@1.2.3");
        assert_eq!(event["environment"], "staging");
        assert!(is_rfc3339_utc_millis(
            event["timestamp"].as_str().unwrap_or("")
        ));
        let contexts = &event["contexts"];
        assert_eq!(contexts["os"]["type"], "os", "{contexts}");
        assert!(contexts["os"]["name"].is_string(), "{contexts}");
        assert_eq!(contexts["runtime"]["type"], "runtime", "{contexts}");
        assert_eq!(contexts["runtime"]["name"], "rustc");
        assert!(contexts["runtime"]["version"].is_string(), "{contexts}");
        assert_eq!(contexts["device"]["type"], "device", "{contexts}");
        assert_eq!(contexts["device"]["arch"], std::env::consts::ARCH);
        assert_eq!(event["sdk"]["name"], "crashbox");
        assert_eq!(event["sdk"]["version"], env!("CARGO_PKG_VERSION"));
    }
    assert!(
        events.contains_key(&out.value("error_id")),
        "{}",
        out.dump()
    );
}

// ---------------------------------------------------------------------------
// Rate limits.

/// Run by the rate-limit tests: captures, flushes, captures again, flushes.
#[test]
#[ignore = "child process of the callers of `run_two_sends`"]
fn child_two_sends() {
    assert_child();
    let guard = crashbox::init(fast_options()).expect("init");
    let first = crashbox::capture_message("first", Level::Error).expect("captured");
    if std::env::var_os("WAIT_FOR_RATE_LIMIT").is_some() {
        wait_for_stats(Duration::from_secs(5), |s| s.rate_limited >= 1);
    } else {
        assert!(crashbox::flush(Duration::from_secs(5)), "first flush");
    }
    let second = crashbox::capture_message("second", Level::Error).expect("captured");
    let start = Instant::now();
    report_value("flushed", crashbox::flush(Duration::from_secs(8)));
    report_value("second_flush_ms", start.elapsed().as_millis());
    report_value("first", first);
    report_value("second", second);
    print_stats("stats");
    drop(guard);
}

/// Runs `child_two_sends` against a server that answers the first envelope
/// with `status` and `X-Sentry-Rate-Limits: rate_limits`, and `200 {}` after;
/// returns the child's output and the requests the server read.
fn run_two_sends(
    status: u16,
    rate_limits: &str,
    wait_for_rate_limit: bool,
) -> (ChildOutput, Vec<Request>) {
    let server = Server::start();
    server.script([Behavior::respond(
        status,
        &[("X-Sentry-Rate-Limits", rate_limits)],
        "{}",
    )]);
    let mut envs = Vec::new();
    if wait_for_rate_limit {
        envs.push(("WAIT_FOR_RATE_LIMIT", "1".into()));
    }
    let out = run_against(&child!(child_two_sends), &dsn(&server), &envs);
    assert_eq!(out.value("flushed"), "true", "{}", out.dump());
    (out, server.requests())
}

/// The event ids of acknowledged envelopes, in arrival order.
fn delivered(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.acknowledged())
        .map(|r| envelope(r).header["event_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Two requests, one for each event, in the order they were captured.
#[track_caller]
fn assert_each_delivered_in_its_own_request(out: &ChildOutput, requests: &[Request]) {
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(
        delivered(requests),
        vec![out.value("first"), out.value("second")]
    );
}

#[test]
fn a_429_with_an_error_rate_limit_holds_further_sends_for_its_window() {
    let (out, requests) = run_two_sends(429, "2:error:organization", true);
    assert!(requests.len() >= 2, "{requests:#?}");
    assert_eq!(requests[0].answered(), Some(429));
    let gap = requests[1].at - requests[0].at;
    assert!(
        gap >= Duration::from_millis(1900),
        "an event was sent {gap:?} into a 2 s error rate limit"
    );
    let mut got = delivered(&requests);
    got.sort();
    let mut expected = vec![out.value("first"), out.value("second")];
    expected.sort();
    assert_eq!(
        got, expected,
        "both events delivered once, after the window"
    );
    let stats = stats(&out, "stats");
    assert!(stats["rate_limited"] >= 1, "{stats:?}");
    assert_eq!(stats["sent"], 2);
}

#[test]
fn a_rate_limit_header_on_a_200_holds_the_next_send() {
    let (out, requests) = run_two_sends(200, "2::organization", false);
    assert_each_delivered_in_its_own_request(&out, &requests);
    let gap = requests[1].at - requests[0].at;
    assert!(
        gap >= Duration::from_millis(1900),
        "the next event was sent {gap:?} after a 200 that set a 2 s limit for all categories"
    );
    assert!(stats(&out, "stats")["rate_limited"] >= 1);
}

#[test]
fn a_rate_limit_for_another_category_does_not_hold_error_events() {
    let (out, requests) = run_two_sends(200, "60:transaction:key", false);
    assert_each_delivered_in_its_own_request(&out, &requests);
    let flush_ms = out.number("second_flush_ms");
    assert!(
        flush_ms < 1500,
        "a transaction rate limit held an error event for {flush_ms} ms"
    );
    let stats = stats(&out, "stats");
    assert_eq!(stats["rate_limited"], 0, "{stats:?}");
    assert_eq!(stats["sent"], 2);
}

// ---------------------------------------------------------------------------
// SENTRY_DSN.

#[test]
fn sentry_dsn_selects_the_sentry_collector_when_crashbox_collector_is_unset() {
    let server = Server::start();
    let out = run_child(
        &child!(child_from_env),
        &[(
            "SENTRY_DSN",
            format!("http://{KEY}@127.0.0.1:{}/7", server.port()).into(),
        )],
    );
    out.assert_success();
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{}", out.dump());
    let request = &requests[0];
    assert_eq!(request.path, "/api/7/envelope/");
    assert!(
        request
            .header("x-sentry-auth")
            .unwrap_or("")
            .contains(&format!("sentry_key={KEY},")),
        "{request:?}"
    );
    assert_eq!(
        envelope(request).header["event_id"].as_str(),
        Some(out.value("id").as_str())
    );
}

/// Run by `sentry_dsn_selects_the_sentry_collector_when_crashbox_collector_is_unset`.
#[test]
#[ignore = "child process of `sentry_dsn_selects_the_sentry_collector_when_crashbox_collector_is_unset`"]
fn child_from_env() {
    assert_child();
    assert!(std::env::var_os("CRASHBOX_COLLECTOR").is_none());
    // No spool: this child must not replay other children's leftovers.
    let guard = crashbox::init(Options::from_env().spool(false)).expect("init");
    let id = crashbox::capture_message("from the environment", Level::Error).expect("captured");
    assert!(crashbox::flush(Duration::from_secs(10)), "flush timed out");
    report_value("id", id);
    drop(guard);
}

// ---------------------------------------------------------------------------
// Malformed DSNs.

/// A key (and an old-style secret) that must never appear in an error.
const SECRET: &str = "topsecretkey99";

/// Malformed DSNs and a phrase their error must contain.
fn malformed_dsns() -> Vec<(String, &'static str)> {
    vec![
        ("sentry+http://127.0.0.1:9/7".to_owned(), "no public key"),
        (
            format!("sentry+http://{SECRET}@127.0.0.1:9/project"),
            "project id `project` is not a number",
        ),
        (
            format!("sentry+ftp://{SECRET}@127.0.0.1:9/7"),
            "unknown scheme `sentry+ftp`",
        ),
        (format!("sentry+http://{SECRET}@/7"), "the host is empty"),
        (
            format!("sentry+http://{SECRET}@127.0.0.1:70000/7"),
            "70000 is out of range",
        ),
        (
            format!("sentry+http://{SECRET}@127.0.0.%31:9/7"),
            "not a plain ASCII name",
        ),
        (
            format!("sentry+http://pub:{SECRET}@127.0.0.1:70000/7"),
            "out of range",
        ),
    ]
}

#[test]
fn malformed_dsns_are_invalid_collector_errors_that_never_show_the_key() {
    let out = run_child(&child!(child_malformed_dsns), &[]);
    out.assert_success();
    for (i, (input, needle)) in malformed_dsns().iter().enumerate() {
        assert_eq!(
            out.value(&format!("variant{i}")),
            "InvalidCollector",
            "{input}\n{}",
            out.dump()
        );
        let display = out.value(&format!("display{i}"));
        assert!(
            display.contains(needle),
            "{input}: {display:?} should say {needle:?}"
        );
        let debug = out.value(&format!("debug{i}"));
        assert!(
            !display.contains(SECRET),
            "{input}: Display leaks: {display}"
        );
        assert!(!debug.contains(SECRET), "{input}: Debug leaks: {debug}");
    }
    // The child never prints the inputs: any occurrence comes from crashbox.
    assert!(!out.stdout.contains(SECRET) && !out.stderr.contains(SECRET));
}

/// Run by `malformed_dsns_are_invalid_collector_errors_that_never_show_the_key`.
#[test]
#[ignore = "child process of `malformed_dsns_are_invalid_collector_errors_that_never_show_the_key`"]
fn child_malformed_dsns() {
    assert_child();
    for (i, (input, _)) in malformed_dsns().into_iter().enumerate() {
        report_init_outcome(i, input);
    }
}
