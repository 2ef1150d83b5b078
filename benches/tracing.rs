//! Cost of a tracing event that becomes a breadcrumb, against the fmt layer
//! writing the same event to `std::io::sink`.
//!
//! `cargo bench --bench tracing --features tracing` prints, in one run:
//! - `breadcrumb_event/crashbox_layer`: an `info!` event with two fields
//!   through `crashbox::tracing::layer()`, kept as a breadcrumb;
//! - `breadcrumb_event/fmt_layer_to_sink`: the same event through
//!   `tracing_subscriber::fmt::layer()` writing to `std::io::sink`;
//! - `ignored_event/crashbox_layer`: a `debug!` event the layer ignores.
//!
//! Each runs on `tracing_subscriber::registry()` with that one layer, with a
//! client installed (the `memory` collector, no spool) so breadcrumbs are kept.
use std::hint::black_box;
use std::time::Duration;

use crashbox::Options;
use criterion::{criterion_group, criterion_main, Criterion};
use tracing_subscriber::layer::SubscriberExt;

fn breadcrumb_event(user_id: u64) {
    tracing::info!(user_id, path = "/checkout", "request handled");
}

fn benches(c: &mut Criterion) {
    let _guard = crashbox::init(
        Options::new()
            .collector("memory")
            .spool(false)
            .panic_hook(false),
    )
    .expect("init");

    let mut group = c.benchmark_group("breadcrumb_event");
    let crashbox_layer = tracing_subscriber::registry().with(crashbox::tracing::layer());
    tracing::subscriber::with_default(crashbox_layer, || {
        group.bench_function("crashbox_layer", |b| {
            b.iter(|| breadcrumb_event(black_box(7)))
        });
    });
    let fmt_layer = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink));
    tracing::subscriber::with_default(fmt_layer, || {
        group.bench_function("fmt_layer_to_sink", |b| {
            b.iter(|| breadcrumb_event(black_box(7)))
        });
    });
    group.finish();

    let crashbox_layer = tracing_subscriber::registry().with(crashbox::tracing::layer());
    tracing::subscriber::with_default(crashbox_layer, || {
        c.bench_function("ignored_event/crashbox_layer", |b| {
            b.iter(|| tracing::debug!(user_id = black_box(7u64), "cache probe"))
        });
    });

    // Nothing was reported: every event above was a breadcrumb or ignored.
    assert!(crashbox::flush(Duration::from_secs(10)));
    assert!(crashbox::memory_reports().is_empty());
}

criterion_group! {
    name = tracing_benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(tracing_benches);
