//! The worker's unit tests.
use super::*;

/// A transport that accepts everything and keeps nothing.
struct Discard;

impl Transport for Discard {
    fn send(&mut self, _reports: &[Report]) -> Result<(), TransportError> {
        Ok(())
    }
}

/// A capture of an error at a real address of this binary, so that
/// processing it resolves frames (and loads debug info).
fn capture_here() -> Captured {
    Captured::sample("idle test", 0, vec![capture_here as *const () as usize])
}

#[test]
fn debug_info_is_let_go_once_the_worker_is_idle() {
    let idle = Duration::from_millis(100);
    let settings = Arc::new(crate::Options::new().settings());
    let ledger = Arc::new(InFlight::default());
    let retry = RetryPolicy {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(1),
        attempts: 1,
    };
    let mut worker = Worker::new(
        settings,
        Box::new(Discard),
        retry,
        ledger.clone(),
        None,
        Arc::new(Slots::new(1)),
        Waker::default(),
    )
    .expect("a worker");
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
    let settings = Arc::new(crate::Options::new().settings());
    let ledger = Arc::new(InFlight::default());
    let retry = RetryPolicy {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(1),
        attempts: 1,
    };
    let (kept_tx, kept) = std::sync::mpsc::sync_channel(8);
    let mut worker = Worker::new(
        settings,
        Box::new(Keep(kept_tx)),
        retry,
        ledger.clone(),
        None,
        Arc::new(Slots::new(1)),
        Waker::default(),
    )
    .expect("a worker");
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
