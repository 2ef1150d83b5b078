//! Cost of a library's capture through `crashbox-api`, next to the same
//! capture through crashbox itself.
//!
//! `cargo bench --bench facade` prints, in one run:
//! - `no_client/facade` and `no_client/crashbox`: a library's
//!   `capture_error` when no application installed anything;
//! - `installed_no_client/facade`: through the facade after crashbox was
//!   installed once and its client shut down;
//! - `depth20/facade` and `depth20/crashbox`: with a client installed, a
//!   20-frame-deep stack, every capture taking the whole path.
use std::hint::black_box;
use std::time::Duration;

use crashbox::Options;
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

fn options() -> Options {
    Options::new()
        .transport(Discard)
        .spool(false)
        .panic_hook(false)
        .aggregation_window(Duration::ZERO)
        .max_reports_per_minute(0)
        .queue_capacity(crashbox::MAX_QUEUE_CAPACITY)
}

fn benches(c: &mut Criterion) {
    let err = error();
    let mut group = c.benchmark_group("no_client");
    assert!(!crashbox_api::is_installed());
    group.bench_function("facade", |b| {
        b.iter(|| black_box(crashbox_api::capture_error(black_box(&err))))
    });
    group.bench_function("crashbox", |b| {
        b.iter(|| black_box(crashbox::capture_error(black_box(&err))))
    });
    group.finish();

    drop(crashbox::init(options()).expect("init"));
    assert!(crashbox_api::is_installed());
    c.bench_function("installed_no_client/facade", |b| {
        b.iter(|| black_box(crashbox_api::capture_error(black_box(&err))))
    });

    let guard = crashbox::init(options()).expect("init");
    at_depth(DEPTH, &mut || crashbox_api::capture_error(&err));
    guard.flush(Duration::from_secs(30));
    let mut group = c.benchmark_group("depth20");
    group.bench_function("facade", |b| {
        b.iter_custom(|iters| {
            timed_at_depth(&guard, iters, &mut || crashbox_api::capture_error(&err))
        })
    });
    group.bench_function("crashbox", |b| {
        b.iter_custom(|iters| timed_at_depth(&guard, iters, &mut || crashbox::capture_error(&err)))
    });
    group.finish();
    drop(guard);
}

criterion_group! {
    name = facade;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(facade);
