use super::record::parse;
use super::*;
use crate::report::{Kind, Level};

/// A record as the handler writes it, with `frames` and the prologue of
/// this process.
fn record_text(head: &str, frames: &[usize], prologue: &Prologue, end: bool) -> Vec<u8> {
    let mut text = MAGIC.to_vec();
    text.extend_from_slice(head.as_bytes());
    text.extend_from_slice(&prologue.line());
    for f in frames {
        text.extend_from_slice(format!("frame {f:#x}\n").as_bytes());
    }
    if end {
        text.extend_from_slice(b"end\n");
    }
    text
}

#[inline(never)]
fn here() -> usize {
    here as *const () as usize
}

#[test]
fn a_segfault_record_becomes_a_fatal_crash_capture_tied_to_its_files() {
    let prologue = Prologue::now(Some("app@2".into()), Some("production".into()));
    let id = prologue.id;
    let own = here();
    let text = record_text(
        "signal 11\ncode 1\naddress 0x0\npc 0x10\nsp 0x7ffd0000\noverflow 0\npid 7\ntid 9\nsender 0\ntime_ms 1700000000123\nthread worker-1\n",
        &[own + 1, own + 40],
        &prologue,
        true,
    );
    let record = parse(&text).expect("a record");
    assert!(record.complete);
    assert_eq!(record.message(), "SIGSEGV at 0x0 (address not mapped)");
    let captured = record.into_captured(5);
    assert_eq!(captured.id, id, "the id chosen at init");
    assert_eq!(captured.kind, Kind::Crash);
    assert_eq!(captured.level, Level::Fatal);
    assert_eq!(captured.timestamp_ms, 1_700_000_000_123);
    assert_eq!(captured.exceptions[0].ty, "SIGSEGV");
    assert_eq!(captured.thread.name.as_deref(), Some("worker-1"));
    assert_eq!(captured.thread.id, 9);
    assert_eq!(captured.release.as_deref(), Some("app@2"));
    assert_eq!(captured.environment.as_deref(), Some("production"));
    assert!(!captured.live, "addresses of another process");
    assert_eq!(captured.addresses, [own + 1, own + 40]);
    // Both addresses are in this test binary, which is mapped from a file:
    // a later run of it relocates them to where it has them.
    let resolvable = captured.resolvable_addresses();
    assert_eq!(resolvable, [Some(own + 1), Some(own + 40)]);
    assert_eq!(captured.images.len(), 1, "{:?}", captured.images);
    assert!(captured.images[0].contains(own as u64));
    assert_eq!(captured.extra["crash"]["stack_overflow"], false);
    assert!(captured.truncated.is_empty());
}

#[test]
fn messages_say_the_signal_the_address_and_what_the_code_means() {
    let message = |head: &str| parse(&[MAGIC, head.as_bytes()].concat()).unwrap().message();
    assert_eq!(
        message("signal 7\ncode 1\naddress 0x1001\n"),
        "SIGBUS at 0x1001 (invalid address alignment)"
    );
    assert_eq!(
        message("signal 8\ncode 1\naddress 0x55aa\n"),
        "SIGFPE at 0x55aa (integer divide by zero)"
    );
    assert_eq!(
        message("signal 4\ncode 2\naddress 0x55aa\n"),
        "SIGILL at 0x55aa (illegal operand)"
    );
    assert_eq!(
        message("signal 11\ncode 99\naddress 0x10\n"),
        "SIGSEGV at 0x10 (code 99)"
    );
    assert_eq!(
        message("signal 11\ncode 2\naddress 0x7ffc0fe8\noverflow 1\n"),
        "stack overflow (SIGSEGV at 0x7ffc0fe8, the stack's guard page)"
    );
    assert_eq!(
        message("signal 6\ncode -6\npid 10\nsender 10\n"),
        "SIGABRT (abort, raised by the process itself)"
    );
    assert_eq!(
        message("signal 7\ncode 0\npid 10\nsender 4321\n"),
        "SIGBUS (sent by process 4321)"
    );
}

#[test]
fn a_raised_signal_starts_at_the_first_frame_in_the_executable() {
    let prologue = Prologue::now(None, None);
    let own = here();
    let libc_address = libc::getpid as *const () as usize;
    let text = record_text(
        "signal 6\ncode -6\npid 3\nsender 3\n",
        &[libc_address, libc_address + 8, own + 1, own + 9],
        &prologue,
        true,
    );
    let captured = parse(&text).unwrap().into_captured(0);
    assert_eq!(
        captured.addresses,
        [own + 1, own + 9],
        "libc's raise and abort left out"
    );
    // std's `process::abort` (and what it calls) go too, told by the start
    // of their functions, which the handler writes beside each frame.
    let mut text = MAGIC.to_vec();
    text.extend_from_slice(b"signal 6\ncode -6\npid 3\nsender 3\n");
    text.extend_from_slice(&prologue.line());
    for (frame, start) in [
        (libc_address, 0),
        (own + 100, own + 90),
        (own + 200, prologue.abort),
        (own + 1, own),
    ] {
        text.extend_from_slice(format!("frame {frame:#x} {start:#x}\n").as_bytes());
    }
    let captured = parse(&text).unwrap().into_captured(0);
    assert_eq!(captured.addresses, [own + 1], "through std::process::abort");
    assert_ne!(prologue.abort, 0);
    // A fault in libc (not raised) keeps it as frame 0.
    let text = record_text(
        "signal 11\ncode 1\n",
        &[libc_address, own + 1],
        &prologue,
        true,
    );
    let captured = parse(&text).unwrap().into_captured(0);
    assert_eq!(captured.addresses, [libc_address, own + 1]);
}

#[test]
fn a_record_cut_short_is_read_as_far_as_it_goes() {
    let prologue = Prologue::now(None, None);
    let full = record_text(
        "signal 11\ncode 1\naddress 0x8\n",
        &[here() + 1],
        &prologue,
        false,
    );
    // Cut anywhere after the signal line: still a crash at 0x8 (or an
    // unknown address if the cut is inside the address line).
    let signal_end = MAGIC.len() + "signal 11\n".len();
    for cut in signal_end..full.len() {
        let record = parse(&full[..cut]).expect("the signal is enough");
        assert_eq!(record.signal, 11);
        assert!(!record.complete);
        let captured = record.into_captured(42);
        assert_eq!(captured.kind, Kind::Crash);
        assert_eq!(captured.timestamp_ms, 42, "no time: the fallback");
        assert_eq!(captured.truncated, ["frames"]);
    }
    for cut in 0..signal_end {
        assert!(parse(&full[..cut]).is_none(), "cut at {cut}");
    }
    assert!(parse(b"{\"format\":1}").is_none(), "not a record");
}

#[test]
fn junk_in_a_record_is_no_panic_and_frames_are_bounded() {
    let mut text = MAGIC.to_vec();
    text.extend_from_slice(b"signal 11\ncode x\naddress zz\npc 0xzz\nprologue {broken\n");
    for i in 0..10_000 {
        text.extend_from_slice(format!("frame {:#x}\n", 0x1000 + i).as_bytes());
    }
    text.extend_from_slice(&[0xff, 0xfe, b'\n']);
    let record = parse(&text).unwrap();
    assert_eq!(record.frames.len(), MAX_FRAMES + 1);
    assert!(record.prologue.is_none());
    let captured = record.into_captured(1);
    assert!(captured.images.is_empty());
    assert!(captured.located.iter().all(Option::is_none));
}

#[test]
fn a_hostile_prologue_is_no_panic() {
    let mut text = MAGIC.to_vec();
    text.extend_from_slice(b"signal 6\ncode -6\n");
    let max = usize::MAX;
    let prologue = format!(
        "prologue {{\"id\":\"0123456789abcdef0123456789abcdef\",\"release\":null,\
         \"environment\":null,\"mappings\":[[0,{max},{max},0],[0,{max},0,7]],\
         \"modules\":[{{\"path\":\"/bin/x\",\"identity\":\"1:2:3:4\"}}],\
         \"images\":[{{\"type\":\"elf\",\"code_file\":\"/bin/x\",\"image_addr\":\"0x0\",\
         \"image_size\":{max}}}],\"abort\":{max}}}\n"
    );
    text.extend_from_slice(prologue.as_bytes());
    text.extend_from_slice(format!("frame {max:#x} {max:#x}\nframe 0x10 0x0\nend\n").as_bytes());
    let record = parse(&text).expect("a record");
    assert!(record.prologue.is_some(), "the prologue parses");
    let captured = record.into_captured(0);
    assert_eq!(captured.located.len(), captured.addresses.len());
    assert!(
        captured.located.iter().all(Option::is_none),
        "{:?}",
        captured.located
    );
}

#[test]
fn only_synchronous_faults_are_executed_again() {
    use libc::{SIGABRT, SIGBUS, SIGFPE, SIGILL, SIGSEGV};
    for (signal, code) in [
        (SIGSEGV, 1),
        (SIGSEGV, 2),
        (SIGSEGV, 0x80),
        (SIGILL, 1),
        (SIGFPE, 1),
        (SIGBUS, 2),
    ] {
        assert!(is_synchronous_fault(signal, code), "{signal} {code}");
    }
    for (signal, code) in [
        (SIGBUS, 5),  // BUS_MCEERR_AO: detected, not consumed
        (SIGSEGV, 8), // SEGV_MTEAERR: an asynchronous tag-check fault
        (SIGABRT, 1),
        (SIGSEGV, 0), // kill
        (SIGBUS, -6), // tkill, raise
        (SIGILL, -1), // sigqueue
    ] {
        assert!(!is_synchronous_fault(signal, code), "{signal} {code}");
    }
}

#[test]
fn signals_parse_from_their_names() {
    for signal in Signal::ALL {
        assert_eq!(signal.name().parse::<Signal>(), Ok(signal));
        assert_eq!(
            signal.name()[3..].to_lowercase().parse::<Signal>(),
            Ok(signal)
        );
        assert_eq!(Signal::from_number(signal.number()), Some(signal));
        let json = serde_json::to_string(&signal).unwrap();
        assert_eq!(json, format!("\"{}\"", signal.name()));
    }
    assert!("SIGKILL".parse::<Signal>().is_err());
    assert_eq!(Signal::from_number(libc::SIGKILL), None);
}

#[test]
fn the_prologue_is_one_line_of_json_and_small() {
    let prologue = Prologue::now(Some("app@1".into()), None);
    let line = prologue.line();
    assert!(line.starts_with(b"prologue {"));
    assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
    assert!(line.ends_with(b"}\n"));
    let back: Prologue = serde_json::from_slice(&line[b"prologue ".len()..]).unwrap();
    assert_eq!(back.id, prologue.id);
    assert!(!back.mappings.is_empty() && !back.images.is_empty());
    // This test binary, libc and a few more: a few KiB, written by the
    // handler in one `write`.
    println!("prologue: {} bytes", line.len());
    assert!(line.len() < 64 * 1024, "{} bytes", line.len());
}
