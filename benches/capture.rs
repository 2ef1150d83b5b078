//! Cost of capturing on the caller's thread, with a 20-frame-deep stack.
//!
//! `cargo bench --bench capture` prints, in one run:
//! - `new_unresolved/depth20`: `backtrace::Backtrace::new_unresolved()`, the floor;
//! - `capture_error/no_client`: a library's call when no application called `init`;
//! - `capture_error/depth20` and `capture_message/depth20`: with a client installed;
//! - `init`: installing a client (the worker thread's start included), with
//!   the crash handler (its file made, the mappings and images serialised,
//!   the signal handlers installed) and, as `init/no_crash_handler`, without.
use std::hint::black_box;
use std::time::{Duration, Instant};

use crashbox::{Level, Options};
use criterion::{criterion_group, criterion_main, Criterion};

mod support;
use support::{at_depth, timed_at_depth, Chained, Discard, DEPTH};

fn error() -> Chained {
    Chained::new(
        "reading the ledger failed",
        std::io::ErrorKind::NotFound,
        "ledger.db",
    )
}

fn benches(c: &mut Criterion) {
    let err = error();
    c.bench_function("new_unresolved/depth20", |b| {
        b.iter(|| {
            at_depth(DEPTH, &mut || {
                black_box(backtrace::Backtrace::new_unresolved())
            })
        })
    });
    c.bench_function("capture_error/no_client", |b| {
        b.iter(|| black_box(crashbox::capture_error(black_box(&err))))
    });

    // A custom transport gets a spool, as a network collector does: `init`
    // opens it (directory, lock file, run state).
    let spool = std::env::temp_dir().join(format!("crashbox-bench-init-{}", std::process::id()));
    for (name, signals) in [
        ("init", &crashbox::Signal::ALL[..]),
        ("init/no_crash_handler", &[][..]),
    ] {
        c.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let options = Options::new()
                        .transport(Discard)
                        .panic_hook(false)
                        .crash_signals(signals.iter().copied())
                        .spool_dir(&spool);
                    let start = Instant::now();
                    let guard = crashbox::init(options).expect("init");
                    total += start.elapsed();
                    drop(guard);
                }
                total
            })
        });
    }

    let _ = std::fs::remove_dir_all(&spool);
    // The caller's cost does not depend on the spool (the worker writes it);
    // without one the worker keeps up and nothing is dropped. Every capture
    // takes the whole path (no aggregation of repeats, no rate limit): the
    // `storm` bench measures repeats.
    let guard = crashbox::init(
        Options::new()
            .transport(Discard)
            .spool(false)
            .aggregation_window(Duration::ZERO)
            .max_reports_per_minute(0)
            .queue_capacity(crashbox::MAX_QUEUE_CAPACITY),
    )
    .expect("init");
    // Load debug info and fill the worker's address cache before measuring.
    at_depth(DEPTH, &mut || crashbox::capture_error(&err));
    guard.flush(Duration::from_secs(30));
    let before = crashbox::stats();

    // Each measurement drains the queue outside its timed part.
    c.bench_function("capture_error/depth20", |b| {
        b.iter_custom(|iters| timed_at_depth(&guard, iters, &mut || crashbox::capture_error(&err)))
    });
    c.bench_function("capture_message/depth20", |b| {
        b.iter_custom(|iters| {
            timed_at_depth(&guard, iters, &mut || {
                crashbox::capture_message("ledger is stale", Level::Warning)
            })
        })
    });
    let after = crashbox::stats();
    eprintln!(
        "captured {} reports while measuring: {} sent, {} dropped, {} addresses resolved",
        after.captured - before.captured,
        after.sent - before.sent,
        after.dropped() - before.dropped(),
        after.addresses_resolved - before.addresses_resolved,
    );
    drop(guard);
}

criterion_group! {
    name = capture;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(capture);
