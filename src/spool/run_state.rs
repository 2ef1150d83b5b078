//! How the previous run ended: the run-state record the panic hook rewrites in place.

use super::*;

pub(super) const RUN_STATE: &str = "run-state.json";

/// The run-state record is rewritten in place at this fixed width.
pub(super) const RUN_STATE_WIDTH: usize = 64;

/// How the previous run of this program ended, as its spool recorded it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LastRun {
    /// The previous run panicked.
    pub panicked: bool,
    /// How many runs in a row, up to and including the previous one, panicked
    /// (0 when the previous run did not): a crash-loop signal.
    pub consecutive_panics: u32,
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
            panicked: previous.panicked,
            consecutive_panics: if previous.panicked {
                previous.consecutive_panics
            } else {
                0
            },
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
            panicked: false,
            consecutive_panics: last.consecutive_panics,
        });
        last
    }

    /// Records that this run panicked, following `last`.
    pub(crate) fn record_panic(&self, last: LastRun) {
        self.write_run_state(LastRun {
            panicked: true,
            consecutive_panics: last.consecutive_panics.saturating_add(1),
        });
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
