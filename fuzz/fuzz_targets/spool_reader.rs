//! The spool replay fed arbitrary bytes as a dead owner's file (a report
//! file, or a spare file the panic hook fills), read by the same code a new
//! run uses. Nothing panics; no file is lost or left behind: the bytes are
//! either claimed, byte for byte, or set aside in `corrupt/` (an empty spare
//! is removed); a file larger than the cap is set aside without being
//! parsed; a raw capture read back never counts as already scrubbed.
//!
//! A crash file (what the signal handler writes) is claimed as the raw
//! capture of kind `crash` it becomes, a new file (or discarded and counted
//! when the time it gives is past the spool's age limit), or set aside
//! unchanged.
//!
//! Input: the first byte picks the file (bit 3: a crash file, whose bytes
//! follow the record's first line; else bit 0: a spare, else a report file)
//! and whether to pad it with spaces past the size cap (bits 1 and 2: it
//! stays valid JSON when it was); the rest is the file.
#![no_main]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crashbox::__fuzz::claim_orphans;
use libfuzzer_sys::fuzz_target;

/// The owner of the planted files: no lock file, so it is gone.
const DEAD_OWNER: &str = "4242_0badf00d";
const ID: &str = "0123456789abcdef0123456789abcdef";
/// Past the replay's cap on a spool file (twice the report limit).
const PADDED_LEN: usize = 2 * crashbox::limits::MAX_REPORT_BYTES + 1;

fn base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        std::env::temp_dir().join(format!("crashbox-fuzz-spool-{}", std::process::id()))
    })
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let crash = mode & 8 != 0;
    let spare = mode & 1 != 0 || crash;
    let padded = mode & 6 == 6;
    let mut bytes = if crash {
        [&b"crashbox crash 1\n"[..], body].concat()
    } else {
        body.to_vec()
    };
    if padded {
        bytes.resize(PADDED_LEN, b' ');
    }

    let dir = base().join("spool");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let name = if crash {
        format!("{DEAD_OWNER}-crash.spare")
    } else if spare {
        format!("{DEAD_OWNER}-0.spare")
    } else {
        format!("{now_ms:016}-{ID}.{DEAD_OWNER}.report")
    };
    let planted = dir.join(&name);
    fs::write(&planted, &bytes).unwrap();

    let discarded_before = crashbox::stats().spool_discarded;
    let claimed = claim_orphans(&dir).expect("the spool opens");
    let discarded = crashbox::stats().spool_discarded - discarded_before;

    assert!(!planted.exists(), "a dead owner's file stays unclaimed");
    assert!(claimed.len() <= 1, "{claimed:?}");
    let corrupt = files_in(&dir.join("corrupt"));
    assert!(corrupt.len() <= 1, "{corrupt:?}");
    for entry in &claimed {
        assert!(!entry.scrubbed, "a replayed capture skips scrubbing");
        if crash {
            // Turned into the capture it describes, in a file of its own.
            assert_eq!(entry.kind, Some(crashbox::Kind::Crash), "{entry:?}");
            continue;
        }
        assert_eq!(
            fs::read(&entry.path).unwrap(),
            bytes,
            "claimed bytes changed"
        );
    }
    match (claimed.first(), corrupt.first()) {
        (Some(entry), None) => {
            assert!(!padded, "a file past the cap was parsed: {entry:?}");
            // A spare file holds a raw capture, never a finished report.
            assert!(!(spare && entry.report.is_some()), "{entry:?}");
        }
        (None, Some(aside)) => {
            assert_eq!(fs::read(aside).unwrap(), bytes, "set-aside bytes changed");
        }
        // A crash record's time is its own: past `spool_max_age`, its
        // capture is discarded, and counted.
        (None, None) if crash => assert_eq!(discarded, 1, "the crash record vanished"),
        (None, None) => assert!(spare && bytes.is_empty(), "the file vanished"),
        (Some(entry), Some(aside)) => panic!("claimed {entry:?} and set aside {aside:?}"),
    }
});
