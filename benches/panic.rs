//! Cost of a panic with crashbox's hook installed: the report is written to
//! the spool before the hook returns. 20 frames deep, release build.
//!
//! `cargo bench --bench panic` prints the first panic of the process (cold:
//! the spool file is the first written) and then, measured by criterion:
//! - `panic/no_client/depth20`: `catch_unwind` of a panic with only a silent hook (the floor);
//! - `panic/spooled/depth20`: the same with crashbox installed, spool on, one panic at a time;
//! - `panic/spooled_storm/depth20`: back-to-back panics, faster than the worker keeps up.
use std::panic::catch_unwind;
use std::time::{Duration, Instant};

use crashbox::Options;
use criterion::{criterion_group, criterion_main, Criterion};

mod support;
use support::{at_depth, Discard, DEPTH};

fn panic_once() -> Duration {
    let start = Instant::now();
    let result = catch_unwind(|| at_depth(DEPTH, &mut || panic!("ledger corrupted")));
    let elapsed = start.elapsed();
    assert!(result.is_err());
    elapsed
}

fn benches(c: &mut Criterion) {
    // Silence the default hook's message: it would dominate both measurements.
    std::panic::set_hook(Box::new(|_| {}));
    c.bench_function("panic/no_client/depth20", |b| b.iter(panic_once));

    let spool = std::env::var_os("CRASHBOX_BENCH_SPOOL")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("crashbox-bench-spool-{}", std::process::id()));
    let guard = crashbox::init(
        Options::new()
            .transport(Discard)
            .spool_dir(&spool)
            .queue_capacity(crashbox::MAX_QUEUE_CAPACITY),
    )
    .expect("init");
    // The worker is up (spare spool files ready) once a flush returns.
    assert!(guard.flush(Duration::from_secs(30)));
    let first = panic_once();
    eprintln!("first panic with crashbox installed (cold): {first:?}");
    assert!(guard.flush(Duration::from_secs(30)));

    // One panic at a time: the worker has delivered the previous report and
    // made a spare spool file ready, as it has in any program that is not
    // panicking thousands of times a second.
    c.bench_function("panic/spooled/depth20", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                guard.flush(Duration::from_secs(10));
                total += panic_once();
            }
            guard.flush(Duration::from_secs(10));
            total
        })
    });
    // Back-to-back panics: the worker falls behind, spare files run out and
    // the hook creates each spool file itself.
    c.bench_function("panic/spooled_storm/depth20", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += panic_once();
            }
            // Let the worker deliver and remove the spool files, outside the timing.
            guard.flush(Duration::from_secs(120));
            total
        })
    });
    drop(guard);
    let stats = crashbox::stats();
    eprintln!(
        "panics captured: {}, delivered: {}, left in the spool: {}, dropped: {}, spool write errors: {}",
        stats.captured,
        stats.sent,
        stats.spooled,
        stats.dropped(),
        stats.spool_write_errors
    );
    eprintln!("{stats:?}");
    let _ = std::fs::remove_dir_all(&spool);
}

criterion_group! {
    name = panic;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(panic);
