//! A loopback HTTP/1.1 server for the network collector tests (std only).
//!
//! It listens on `127.0.0.1:0`, serves each connection on its own thread
//! (keep-alive aware: `Content-Length` and chunked request bodies), records
//! every request it reads in full, and answers from a behaviour the test can
//! change at any time: a one-shot script is consumed first, then the default.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often blocked connection threads look at the stop flag.
const POLL: Duration = Duration::from_millis(50);
/// Largest request head or body the server accepts.
const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// How the server answers a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// A complete answer.
    Respond {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Read the request, then never answer, keeping the socket open.
    Hang,
    /// Send the status line and headers at once, then the body one byte a second.
    SlowBody,
    /// Drop the connection without answering.
    Close,
    /// Wait `by`, then behave as `then`.
    Delay { by: Duration, then: Box<Behavior> },
}

impl Behavior {
    /// `200` with body `{}`.
    pub fn ok() -> Behavior {
        Behavior::status(200)
    }

    /// `status` with body `{}` and no extra headers.
    pub fn status(status: u16) -> Behavior {
        Behavior::respond(status, &[], "{}")
    }

    /// `status` with `headers` and `body`.
    pub fn respond(status: u16, headers: &[(&str, &str)], body: &str) -> Behavior {
        Behavior::Respond {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    /// `then`, after a pause of `by`.
    pub fn delayed(by: Duration, then: Behavior) -> Behavior {
        Behavior::Delay {
            by,
            then: Box::new(then),
        }
    }

    /// The status this behaviour answers with, if it answers at all.
    pub fn answer_status(&self) -> Option<u16> {
        match self {
            Behavior::Respond { status, .. } => Some(*status),
            Behavior::SlowBody => Some(200),
            Behavior::Hang | Behavior::Close => None,
            Behavior::Delay { then, .. } => then.answer_status(),
        }
    }
}

/// One request as the server read it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path and query, as on the request line.
    pub path: String,
    /// Header names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body, gunzipped when it came with `Content-Encoding: gzip`
    /// (and as received when it did not gunzip).
    pub body: Vec<u8>,
    /// The body as received.
    pub raw_body: Vec<u8>,
    /// When the server finished reading it.
    pub at: Instant,
    /// Which connection (0-based, in accept order) carried it (shown in
    /// failure messages, through `Debug`).
    #[allow(dead_code)]
    pub connection: usize,
    /// How the server answered it.
    pub behavior: Behavior,
}

impl Request {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text; panics if it is not.
    #[track_caller]
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("the request body is not UTF-8")
    }

    /// The body parsed as JSON; panics if it is not.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the request body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The status the server answered with (`None` for `Hang` and `Close`).
    pub fn answered(&self) -> Option<u16> {
        self.behavior.answer_status()
    }

    /// Whether the server acknowledged it with a 2xx.
    pub fn acknowledged(&self) -> bool {
        matches!(self.answered(), Some(200..=299))
    }

    /// The report ids in the body, a JSON array of reports (what the
    /// `http(s)://` collector posts); panics if it is not one.
    #[track_caller]
    pub fn report_ids(&self) -> Vec<String> {
        self.json()
            .as_array()
            .expect("the body is a JSON array")
            .iter()
            .map(|r| r["id"].as_str().expect("a string id").to_owned())
            .collect()
    }
}

struct Shared {
    requests: Mutex<Vec<Request>>,
    arrived: Condvar,
    default: Mutex<Behavior>,
    script: Mutex<VecDeque<Behavior>>,
    stop: AtomicBool,
    connections: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn next_behavior(&self) -> Behavior {
        if let Some(b) = lock(&self.script).pop_front() {
            return b;
        }
        lock(&self.default).clone()
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// The server; stops (and releases hanging connections) when dropped.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server answering `200 {}` to everything.
    pub fn start() -> Server {
        Server::with_behavior(Behavior::ok())
    }

    /// Starts a server whose default answer is `behavior`.
    pub fn with_behavior(behavior: Behavior) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            default: Mutex::new(behavior),
            script: Mutex::new(VecDeque::new()),
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
        });
        let accept_shared = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("test-http-accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if accept_shared.stopped() {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let n = accept_shared.connections.fetch_add(1, Ordering::SeqCst);
                    let conn_shared = accept_shared.clone();
                    let _ = std::thread::Builder::new()
                        .name(format!("test-http-conn-{n}"))
                        .spawn(move || serve(stream, n, &conn_shared));
                }
            })
            .expect("spawn the accept thread");
        Server {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Changes the default answer (used once the script is exhausted).
    pub fn set_behavior(&self, behavior: Behavior) {
        *lock(&self.shared.default) = behavior;
    }

    /// Queues one-shot answers, used in order before the default.
    pub fn script(&self, behaviors: impl IntoIterator<Item = Behavior>) {
        lock(&self.shared.script).extend(behaviors);
    }

    /// A copy of every request read so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.requests).clone()
    }

    /// How many requests were read so far.
    pub fn request_count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// Waits until `pred` holds for the recorded requests or `timeout`
    /// passes; returns the requests either way.
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&[Request]) -> bool,
    ) -> Vec<Request> {
        let deadline = Instant::now() + timeout;
        let mut requests = lock(&self.shared.requests);
        loop {
            let now = Instant::now();
            if pred(&requests) || now >= deadline {
                return requests.clone();
            }
            requests = self
                .shared
                .arrived
                .wait_timeout(requests, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits until at least `n` requests arrived or `timeout` passes;
    /// returns the requests either way.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Request> {
        self.wait_until(timeout, |r| r.len() >= n)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn refused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local addr").port();
    drop(listener);
    port
}

/// Reads bytes from a stream, waking up to look at the stop flag.
struct Conn<'a> {
    stream: TcpStream,
    buf: Vec<u8>,
    shared: &'a Shared,
}

/// A request as read off the wire: method, path, headers, body.
struct RawRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

enum ReadError {
    /// The peer closed the connection (or reset it), or the server stops.
    Closed,
    /// The request was malformed.
    Bad(String),
}

impl Conn<'_> {
    /// Reads more bytes into the buffer.
    fn fill(&mut self) -> Result<(), ReadError> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if self.shared.stopped() {
                return Err(ReadError::Closed);
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ReadError::Closed),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    if self.buf.len() > MAX_REQUEST_BYTES {
                        return Err(ReadError::Bad("request too large".into()));
                    }
                    return Ok(());
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(ReadError::Closed),
            }
        }
    }

    /// Takes one line ending in CRLF (without it).
    fn line(&mut self) -> Result<String, ReadError> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..at + 2).take(at).collect();
                return String::from_utf8(line).map_err(|_| ReadError::Bad("non-UTF-8".into()));
            }
            self.fill()?;
        }
    }

    /// Takes exactly `n` bytes.
    fn exact(&mut self, n: usize) -> Result<Vec<u8>, ReadError> {
        while self.buf.len() < n {
            self.fill()?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Reads one whole request; `Ok(None)` when the peer closed between requests.
    fn request(&mut self) -> Result<Option<RawRequest>, ReadError> {
        let request_line = loop {
            match self.line() {
                Ok(l) if l.is_empty() => continue, // stray CRLF between requests
                Ok(l) => break l,
                Err(ReadError::Closed) if self.buf.is_empty() => return Ok(None),
                Err(e) => return Err(e),
            }
        };
        let mut parts = request_line.split(' ');
        let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ReadError::Bad(format!("bad request line {request_line:?}")));
        };
        if !version.starts_with("HTTP/1.") {
            return Err(ReadError::Bad(format!("unsupported version {version:?}")));
        }
        let mut headers = Vec::new();
        loop {
            let line = self.line()?;
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(ReadError::Bad(format!("bad header line {line:?}")));
            };
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let get = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        if get("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            let _ = self.stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let chunked =
            get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let body = if chunked {
            let mut body = Vec::new();
            loop {
                let size_line = self.line()?;
                let size_hex = size_line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size_hex, 16)
                    .map_err(|_| ReadError::Bad(format!("bad chunk size {size_line:?}")))?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    while !self.line()?.is_empty() {}
                    break;
                }
                if body.len() + size > MAX_REQUEST_BYTES {
                    return Err(ReadError::Bad("request too large".into()));
                }
                body.extend(self.exact(size)?);
                if !self.line()?.is_empty() {
                    return Err(ReadError::Bad("chunk not followed by CRLF".into()));
                }
            }
            body
        } else {
            let len = match get("content-length") {
                None => 0,
                Some(v) => v
                    .parse::<usize>()
                    .map_err(|_| ReadError::Bad(format!("bad content-length {v:?}")))?,
            };
            if len > MAX_REQUEST_BYTES {
                return Err(ReadError::Bad("request too large".into()));
            }
            self.exact(len)?
        };
        Ok(Some(RawRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            headers,
            body,
        }))
    }

    /// Sleeps `total`, in short steps; `false` when the server stops meanwhile.
    fn pause(&self, total: Duration) -> bool {
        let end = Instant::now() + total;
        while Instant::now() < end {
            if self.shared.stopped() {
                return false;
            }
            std::thread::sleep(POLL.min(end.saturating_duration_since(Instant::now())));
        }
        !self.shared.stopped()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn serve(stream: TcpStream, connection: usize, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(POLL));
    let _ = stream.set_nodelay(true);
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
        shared,
    };
    loop {
        let RawRequest {
            method,
            path,
            headers,
            body,
        } = match conn.request() {
            Ok(Some(request)) => request,
            Ok(None) | Err(ReadError::Closed) => return,
            Err(ReadError::Bad(why)) => {
                let body = format!("{{\"error\":{why:?}}}");
                let _ = write!(
                    conn.stream,
                    "HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                return;
            }
        };
        let close_after = headers
            .iter()
            .any(|(k, v)| k == "connection" && v.eq_ignore_ascii_case("close"));
        let gzipped = headers
            .iter()
            .any(|(k, v)| k == "content-encoding" && v.eq_ignore_ascii_case("gzip"));
        let raw_body = body;
        let body = match gzipped {
            true => gunzip(&raw_body).unwrap_or_else(|_| raw_body.clone()),
            false => raw_body.clone(),
        };
        let mut behavior = shared.next_behavior();
        {
            let mut requests = lock(&shared.requests);
            requests.push(Request {
                method,
                path,
                headers,
                body,
                raw_body,
                at: Instant::now(),
                connection,
                behavior: behavior.clone(),
            });
            shared.arrived.notify_all();
        }
        while let Behavior::Delay { by, then } = behavior {
            if !conn.pause(by) {
                return;
            }
            behavior = *then;
        }
        match behavior {
            Behavior::Respond {
                status,
                headers,
                body,
            } => {
                let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
                let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
                if !has("content-type") {
                    head.push_str("Content-Type: application/json\r\n");
                }
                for (k, v) in &headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str(&format!("Content-Length: {}\r\n", body.len()));
                if close_after {
                    head.push_str("Connection: close\r\n");
                }
                head.push_str("\r\n");
                let mut out = head.into_bytes();
                out.extend_from_slice(&body);
                if conn.stream.write_all(&out).is_err() || close_after {
                    return;
                }
            }
            Behavior::Hang => {
                // Keep the socket open, answering nothing, until the server stops.
                while conn.pause(Duration::from_secs(3600)) {}
                return;
            }
            Behavior::SlowBody => {
                let body = b"{\"slow\":\"................................................\"}";
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                if conn.stream.write_all(head.as_bytes()).is_err() {
                    return;
                }
                for byte in body {
                    if !conn.pause(Duration::from_secs(1))
                        || conn.stream.write_all(&[*byte]).is_err()
                    {
                        return;
                    }
                }
                if close_after {
                    return;
                }
            }
            Behavior::Close => {
                let _ = conn.stream.shutdown(Shutdown::Both);
                return;
            }
            Behavior::Delay { .. } => unreachable!("delays are unwrapped above"),
        }
    }
}

/// The CRC-32 of a gzip trailer (bit by bit: slow and plainly right).
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The content of a single-member gzip file (RFC 1952) with no optional
/// header fields, its CRC-32 and size checked.
pub fn gunzip(data: &[u8]) -> Result<Vec<u8>, String> {
    if data.len() < 18 || data[..3] != [0x1f, 0x8b, 8] {
        return Err("not gzip with deflate".into());
    }
    if data[3] != 0 {
        return Err(format!("unexpected gzip flags {:#x}", data[3]));
    }
    let trailer = &data[data.len() - 8..];
    let inflated = miniz_oxide::inflate::decompress_to_vec(&data[10..data.len() - 8])
        .map_err(|e| format!("inflate: {e:?}"))?;
    let crc = u32::from_le_bytes(trailer[..4].try_into().unwrap());
    let size = u32::from_le_bytes(trailer[4..].try_into().unwrap());
    if crc != crc32(&inflated) {
        return Err("the CRC-32 does not match".into());
    }
    if size != inflated.len() as u32 {
        return Err("the size does not match".into());
    }
    Ok(inflated)
}
