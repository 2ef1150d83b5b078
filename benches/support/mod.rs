//! What the benches share: a stack of known depth, an error with a source,
//! and a transport that discards.
#![allow(dead_code)]

use std::hint::black_box;

use crashbox::{Report, Transport, TransportError};

/// Frames added under a capture: every bench measures at this depth.
pub const DEPTH: usize = 20;

/// Calls `f` with `depth` more frames on the stack.
#[inline(never)]
pub fn at_depth<R>(depth: usize, f: &mut dyn FnMut() -> R) -> R {
    if depth == 0 {
        f()
    } else {
        black_box(at_depth(black_box(depth - 1), f))
    }
}

/// Times `iters` calls of `f`, each `DEPTH` frames deep, then drains the
/// client outside the timed part, so its queue never fills.
pub fn timed_at_depth<R>(
    guard: &crashbox::Guard,
    iters: u64,
    f: &mut dyn FnMut() -> R,
) -> std::time::Duration {
    let start = std::time::Instant::now();
    for _ in 0..iters {
        black_box(at_depth(DEPTH, f));
    }
    let elapsed = start.elapsed();
    guard.flush(std::time::Duration::from_secs(60));
    elapsed
}

/// An application error whose source is an I/O error: a two-link chain.
#[derive(Debug)]
pub struct Chained {
    what: &'static str,
    source: std::io::Error,
}

impl Chained {
    pub fn new(what: &'static str, kind: std::io::ErrorKind, detail: &'static str) -> Self {
        Chained {
            what,
            source: std::io::Error::new(kind, detail),
        }
    }
}

impl std::fmt::Display for Chained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.what)
    }
}

impl std::error::Error for Chained {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Accepts and discards: a bench measures the caller, not a collector.
pub struct Discard;

impl Transport for Discard {
    fn send(&mut self, reports: &[Report]) -> Result<(), TransportError> {
        black_box(reports);
        Ok(())
    }
}

/// `n` in the letters g to z: messages that stay distinct when crashbox
/// sets numbers aside.
pub fn word(mut n: usize) -> String {
    let mut word = String::new();
    loop {
        word.push((b'g' + (n % 20) as u8) as char);
        n /= 20;
        if n == 0 {
            return word;
        }
    }
}
