//! Facts about the machine and program, gathered once per process, off the
//! caller's thread (the worker reads them when it starts).
use once_cell::sync::Lazy;

use crate::report::Context;

static CONTEXT: Lazy<Context> = Lazy::new(gather);

/// The process's context, gathered on first use.
pub(crate) fn get() -> &'static Context {
    &CONTEXT
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// `KEY=value` or `KEY="value"` from an os-release file.
fn os_release_field(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix('=')?;
        let value = value.trim().trim_matches('"').trim_matches('\'');
        (!value.is_empty()).then(|| value.to_owned())
    })
}

fn gather() -> Context {
    let os_release =
        read_trimmed("/etc/os-release").or_else(|| read_trimmed("/usr/lib/os-release"));
    let os = os_release
        .as_deref()
        .and_then(|t| os_release_field(t, "NAME"))
        .or_else(|| Some(std::env::consts::OS.to_owned()));
    let os_version = os_release
        .as_deref()
        .and_then(|t| os_release_field(t, "VERSION_ID"));
    Context {
        os,
        os_version,
        kernel: read_trimmed("/proc/sys/kernel/osrelease"),
        arch: std::env::consts::ARCH.to_owned(),
        hostname: read_trimmed("/proc/sys/kernel/hostname")
            .or_else(|| read_trimmed("/etc/hostname"))
            .or_else(|| std::env::var("HOSTNAME").ok()),
        pid: std::process::id(),
        executable: std::env::current_exe()
            .ok()
            .map(|p| p.to_string_lossy().into_owned()),
        rustc: env!("CRASHBOX_RUSTC_VERSION").to_owned(),
        cpu_count: std::thread::available_parallelism().ok().map(|n| n.get()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_os_release_fields() {
        let text = "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n";
        assert_eq!(
            os_release_field(text, "NAME").as_deref(),
            Some("Debian GNU/Linux")
        );
        assert_eq!(os_release_field(text, "VERSION_ID").as_deref(), Some("12"));
        assert_eq!(os_release_field(text, "ID").as_deref(), Some("debian"));
        assert_eq!(os_release_field(text, "MISSING"), None);
    }

    #[test]
    fn gathers_this_process() {
        let c = get();
        assert_eq!(c.pid, std::process::id());
        assert!(c.rustc.starts_with("rustc "), "{}", c.rustc);
        assert!(!c.arch.is_empty());
    }
}
