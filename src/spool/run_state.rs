//! How the previous run ended: the run-state record the panic hook rewrites in place.

use super::*;

pub(super) const RUN_STATE: &str = "run-state.json";

/// The run-state record is rewritten in place at this fixed width (the
/// crash handler writes it too).
pub(super) use crate::crash::RUN_STATE_WIDTH;

/// How the previous run of this program ended, as its spool recorded it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LastRun {
    /// The previous run panicked.
    pub panicked: bool,
    /// How many runs in a row, up to and including the previous one,
    /// panicked or crashed (0 when the previous run did neither): a
    /// crash-loop signal.
    pub consecutive_panics: u32,
    /// The fatal signal the previous run died of, when crashbox's signal
    /// handler caught one (see [`Options::crash_signals`](crate::Options::crash_signals)).
    #[serde(default)]
    pub crashed: Option<crate::crash::Signal>,
    /// Whether that crash was a stack overflow.
    #[serde(default)]
    pub stack_overflow: bool,
}

impl LastRun {
    /// Whether the previous run panicked or crashed.
    ///
    /// ```
    /// let guard = crashbox::init(crashbox::Options::new().collector("memory"))?;
    /// // `memory` keeps no spool, so nothing is known of a previous run.
    /// assert!(crashbox::last_run().is_none_or(|last| !last.ended_badly()));
    /// # drop(guard);
    /// # Ok::<(), crashbox::ConfigError>(())
    /// ```
    pub fn ended_badly(&self) -> bool {
        self.panicked || self.crashed.is_some()
    }
}

impl Spool {
    /// Reads how the previous run ended and records that this one started.
    pub(crate) fn start_run(&self) -> LastRun {
        let path = self.dir.join(RUN_STATE);
        let previous: LastRun = read_capped(&path, 4096)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let last = LastRun {
            consecutive_panics: if previous.ended_badly() {
                previous.consecutive_panics
            } else {
                0
            },
            ..previous
        };
        // Anything but a regular file there (a link, a FIFO) is replaced.
        let file = open_regular(&path, true).or_else(|_| {
            let _ = fs::remove_file(&path);
            create_private(&path)
        });
        // Another process of the same program may have just created it.
        let file = file.or_else(|_| open_regular(&path, true));
        *lock(&self.run_state) = file.ok();
        self.write_run_state(LastRun {
            consecutive_panics: last.consecutive_panics,
            ..LastRun::default()
        });
        last
    }

    /// The open run-state file's descriptor, for the crash handler (valid
    /// while the spool is open).
    pub(crate) fn run_state_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        lock(&self.run_state).as_ref().map(|f| f.as_raw_fd())
    }

    /// Records that this run panicked, following `last`.
    pub(crate) fn record_panic(&self, last: LastRun) {
        crate::crash::note_panic();
        self.write_run_state(LastRun {
            panicked: true,
            consecutive_panics: last.consecutive_panics.saturating_add(1),
            ..LastRun::default()
        });
    }

    /// Writes the run state this run had before the crash handler said it
    /// crashed: it started after `last`, and panicked or not.
    pub(crate) fn restore_run_state(&self, last: LastRun, panicked: bool) {
        if panicked {
            self.record_panic(last);
        } else {
            self.write_run_state(LastRun {
                consecutive_panics: last.consecutive_panics,
                ..LastRun::default()
            });
        }
    }

    /// Rewrites the open run-state file in place, padded to a fixed width.
    pub(super) fn write_run_state(&self, state: LastRun) {
        let Ok(mut bytes) = serde_json::to_vec(&state) else {
            return;
        };
        bytes.resize(RUN_STATE_WIDTH.max(bytes.len()), b' ');
        if let Some(file) = lock(&self.run_state).as_mut() {
            let _ = file
                .seek(SeekFrom::Start(0))
                .and_then(|_| file.write_all(&bytes))
                .and_then(|()| file.set_len(bytes.len() as u64));
        }
    }
}
