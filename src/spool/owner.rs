//! Who owns a spool file: owner tokens, the lock an owner holds while it
//! runs, and the trust checks on the directory.

use super::*;

/// Checks that only the current user can change `dir`, tightening its mode
/// to 0700 first when it is looser.
pub(super) fn check_private(dir: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(dir)?;
    if meta.file_type().is_symlink() {
        return Err(io::Error::other("it is a symbolic link"));
    }
    if !meta.is_dir() {
        return Err(io::Error::other("it is not a directory"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if meta.uid() != me {
            return Err(io::Error::other(format!(
                "it is owned by uid {}, not by this user (uid {me})",
                meta.uid()
            )));
        }
        if meta.mode() & 0o077 != 0 {
            // Tighten a directory made before (by us, or with a lax umask).
            let chmod = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
            let mode = fs::symlink_metadata(dir)?.mode();
            if mode & 0o022 != 0 {
                let why = chmod.err().map(|e| format!(" ({e})")).unwrap_or_default();
                return Err(io::Error::other(format!(
                    "it stays writable by group or others (mode {:o}) after chmod 700{why}",
                    mode & 0o777
                )));
            }
        }
    }
    Ok(())
}

/// A fresh owner token for one open spool: the pid (for people reading the
/// directory) and 32 random bits, so a recycled pid, a pid namespace or a
/// second `init` in the same process is never mistaken for the writer.
pub(super) fn new_owner() -> String {
    format!(
        "{}_{:08x}",
        std::process::id(),
        crate::rand::random_u128() as u32
    )
}

pub(super) fn lock_path(dir: &Path, owner: &str) -> PathBuf {
    dir.join(format!("{owner}.lock"))
}

/// Whether the process that owns `owner`'s files is still running: it holds
/// an exclusive lock on `<owner>.lock` for as long as its spool is open, and
/// the system releases the lock when the process ends, however it ends.
///
/// Probing takes a shared lock, so two processes probing at once do not
/// mistake each other for the owner; any doubt (an error other than a
/// missing lock file) counts as alive, so a live owner's files are never taken.
///
/// A lock path that is not a regular file (a FIFO, a symbolic link, a
/// device) was never made by crashbox, which only locks regular files: its
/// owner counts as gone.
pub(crate) fn owner_alive(dir: &Path, owner: &str) -> bool {
    let path = lock_path(dir, owner);
    match open_regular(&path, false) {
        Ok(file) => match file.try_lock_shared() {
            Ok(()) => false,
            Err(fs::TryLockError::WouldBlock) => true,
            Err(fs::TryLockError::Error(_)) => true,
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(_) => fs::symlink_metadata(&path).map_or(true, |m| m.is_file()),
    }
}

/// Creates `<owner>.lock`, locked, under a temporary name first, so no other
/// process ever sees it unlocked.
pub(super) fn hold_lock(dir: &Path, owner: &str) -> io::Result<File> {
    let tmp = dir.join(format!(".{owner}.lock.tmp"));
    let file = create_private(&tmp)?;
    file.try_lock().map_err(io::Error::other)?;
    fs::rename(&tmp, lock_path(dir, owner))?;
    Ok(file)
}

/// A short stable hash (FNV-1a), so programs of the same name in different
/// places get different spools.
pub(super) fn short_hash(bytes: &[u8]) -> String {
    format!("{:08x}", crate::hash::fnv1a_32(bytes))
}

/// The default spool directory: `$XDG_STATE_HOME/crashbox/<program>-<hash>`,
/// else `~/.local/state/crashbox/<program>-<hash>`, where the hash is of the
/// executable's full path. `None` without either variable: a shared temp
/// directory would let other users meddle with the spool.
pub(crate) fn default_dir() -> Option<PathBuf> {
    default_dir_for(std::env::current_exe().ok())
}

/// [`default_dir`] for the program at `exe` (as `current_exe` gives it).
pub(crate) fn default_dir_for(exe: Option<PathBuf>) -> Option<PathBuf> {
    let program = exe
        .as_ref()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "program".to_owned());
    let hash = short_hash(
        exe.as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
            .as_bytes(),
    );
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = var("XDG_STATE_HOME").or_else(|| var("HOME").map(|h| h.join(".local/state")))?;
    Some(base.join("crashbox").join(format!("{program}-{hash}")))
}

impl Spool {
    /// Removes the lock files of owners that are gone (locked first, so a
    /// live owner's file is never touched).
    pub(super) fn remove_dead_locks(&self) {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".lock") || name == format!("{}.lock", self.owner) {
                continue;
            }
            match open_regular(&entry.path(), false) {
                Ok(file) => {
                    if file.try_lock().is_ok() {
                        let _ = fs::remove_file(entry.path());
                    }
                }
                // Not a regular file: no crashbox process locks it.
                Err(_) if entry.file_type().is_ok_and(|t| !t.is_file()) => {
                    let _ = fs::remove_file(entry.path());
                }
                Err(_) => {}
            }
        }
    }
}
