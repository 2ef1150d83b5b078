//! The worker's unit tests.
use super::*;

/// A transport that accepts everything and keeps nothing.
struct Discard;

impl Transport for Discard {
    fn send(&mut self, _reports: &[Report]) -> Result<(), TransportError> {
        Ok(())
    }
}

/// A worker with default settings and no spool, sending through
/// `transport`, and its ledger.
fn worker(transport: impl Transport + 'static) -> (Worker, Arc<InFlight>) {
    let settings = Arc::new(crate::Options::new().settings());
    let ledger = Arc::new(InFlight::default());
    let retry = RetryPolicy {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(1),
        attempts: 1,
    };
    let worker = Worker::new(
        settings,
        Box::new(transport),
        retry,
        ledger.clone(),
        None,
        Arc::new(Slots::new(1)),
        Waker::default(),
    )
    .expect("a worker");
    (worker, ledger)
}

/// A capture of an error at a real address of this binary, so that
/// processing it resolves frames (and loads debug info).
fn capture_here() -> Captured {
    Captured::sample("idle test", 0, vec![capture_here as *const () as usize])
}

#[test]
fn debug_info_is_let_go_once_the_worker_is_idle() {
    let idle = Duration::from_millis(100);
    let (mut worker, ledger) = worker(Discard);
    worker.symbols_idle = idle;
    let (released_tx, released) = std::sync::mpsc::sync_channel(8);
    worker.on_release = Some(released_tx);
    let (tx, rx) = std::sync::mpsc::sync_channel(8);
    let handle = std::thread::spawn(move || worker.run(Inbox::new(rx)));
    // Twice: a capture after a release resolves (and releases) again.
    for round in 0..2 {
        let sent = Instant::now();
        assert!(ledger.admit(false));
        tx.send(Message::Durable {
            captured: Box::new(capture_here()),
            spool_file: None,
        })
        .expect("the worker runs");
        released
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("round {round}: debug info never let go"));
        assert!(
            sent.elapsed() >= idle,
            "round {round}: let go after {:?}, before the idle period",
            sent.elapsed()
        );
    }
    let (done_tx, done) = std::sync::mpsc::sync_channel(1);
    tx.send(Message::Shutdown {
        done: done_tx,
        deadline: Instant::now() + Duration::from_secs(10),
    })
    .expect("the worker runs");
    done.recv_timeout(Duration::from_secs(60))
        .expect("the worker stops");
    handle.join().expect("no panic on the worker");
    assert!(
        released.try_recv().is_err(),
        "nothing is let go that was not loaded"
    );
}

/// Keeps what it is sent.
struct Keep(std::sync::mpsc::SyncSender<Report>);

impl Transport for Keep {
    fn send(&mut self, reports: &[Report]) -> Result<(), TransportError> {
        for report in reports {
            let _ = self.0.try_send(report.clone());
        }
        Ok(())
    }
}

#[test]
fn at_a_shutdown_deadline_captures_go_out_with_addresses_only_rather_than_not_at_all() {
    let (kept_tx, kept) = std::sync::mpsc::sync_channel(8);
    let (mut worker, ledger) = worker(Keep(kept_tx));
    // Debug info that takes longer to load than shutdown allows.
    let (release_tx, release) = std::sync::mpsc::channel::<()>();
    worker.symbols = Symbols::Loading(std::thread::spawn(move || {
        let _ = release.recv();
    }));
    let (tx, rx) = std::sync::mpsc::sync_channel(8);
    let handle = std::thread::spawn(move || worker.run(Inbox::new(rx)));
    assert!(ledger.admit(false));
    let captured = capture_here();
    let address = captured.addresses[0];
    tx.send(Message::Durable {
        captured: Box::new(captured),
        spool_file: None,
    })
    .expect("the worker runs");
    let (done_tx, done) = std::sync::mpsc::sync_channel(1);
    tx.send(Message::Shutdown {
        done: done_tx,
        deadline: Instant::now() + Duration::from_millis(400),
    })
    .expect("the worker runs");
    done.recv_timeout(Duration::from_secs(60))
        .expect("the worker stops");
    handle.join().expect("no panic on the worker");
    let report = kept.try_recv().expect("delivered, not dropped");
    assert_eq!(report.frames.len(), 1, "{:?}", report.frames);
    assert_eq!(&*report.frames[0].address, format!("{address:#x}"));
    assert!(report.frames[0].function.is_none(), "{:?}", report.frames);
    drop(release_tx);
}

/// Puts `n` reports in the worker's outbox.
fn queue_reports(worker: &mut Worker, n: usize) {
    for i in 0..n {
        worker.outbox.push_back(Outgoing {
            seq: Seq::default(),
            report: Some(Report::sample(&format!("report {i}"))),
            spool_file: None,
            journal_line: None,
        });
    }
}

#[test]
fn a_batch_that_is_not_full_waits_a_moment_for_more_unless_a_flush_waits() {
    let (mut worker, _ledger) = worker(Discard);
    queue_reports(&mut worker, 2);
    worker.pump(true);
    assert_eq!(worker.courier.in_flight(), None, "waits for more reports");
    assert!(worker.lingering.is_some());
    // Once the moment has passed, it goes as it is.
    worker.lingering = Some(Instant::now() - BATCH_LINGER);
    worker.pump(true);
    assert_eq!(worker.courier.in_flight(), Some(2));
    worker.collect(Duration::from_secs(60));
    assert!(worker.outbox.is_empty(), "delivered");

    // A flush does not wait for a fuller batch.
    queue_reports(&mut worker, 1);
    let (done, _answer) = std::sync::mpsc::sync_channel(1);
    worker.waiters.push_back((u64::MAX, done));
    worker.pump(true);
    assert_eq!(worker.courier.in_flight(), Some(1));
    worker.collect(Duration::from_secs(60));
    worker.waiters.clear();

    // Nor does a full batch, nor shutdown.
    let full = worker.courier.max_batch();
    queue_reports(&mut worker, full);
    worker.pump(true);
    assert_eq!(worker.courier.in_flight(), Some(full));
    worker.collect(Duration::from_secs(60));
    queue_reports(&mut worker, 1);
    worker.pump(false);
    assert_eq!(worker.courier.in_flight(), Some(1));
    worker.collect(Duration::from_secs(60));
}

#[test]
fn backoff_grows_with_jitter_and_stays_capped() {
    let policy = RetryPolicy {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
        attempts: 10,
    };
    for attempt in 1..=10 {
        let d = policy.delay(attempt);
        let full = Duration::from_millis(100 * (1 << (attempt - 1))).min(Duration::from_secs(1));
        assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
    }
}
