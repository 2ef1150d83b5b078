//! Where reports go: the collector configured, or the default crashbox
//! picks when there is none, and a short phrase naming it for people.
use super::*;
use crate::collector::Collector;

/// Where reports go, as `init` resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Destination {
    /// A transport set with [`Options::transport`].
    Custom,
    /// A collector string, as configured.
    Collector(Collector),
    /// No collector, in a debug build (or with nowhere to keep a file):
    /// one line per report on stderr.
    Brief,
    /// No collector, in a release build: JSON lines appended to this file
    /// in the spool directory, bounded in size.
    Kept(PathBuf),
}

/// The file name of the default file, in the spool directory.
pub(crate) const DEFAULT_FILE_NAME: &str = "reports.jsonl";

impl Options {
    /// Where reports go with these options, in this build.
    pub(crate) fn destination(&self) -> Result<Destination, ConfigError> {
        self.destination_for(cfg!(debug_assertions), crate::spool::default_dir)
    }

    /// Where reports go with these options in a debug build (`debug`) or a
    /// release build, the default spool directory being `default_dir()`.
    pub(crate) fn destination_for(
        &self,
        debug: bool,
        default_dir: impl FnOnce() -> Option<PathBuf>,
    ) -> Result<Destination, ConfigError> {
        if self.transport.is_some() {
            return Ok(Destination::Custom);
        }
        if let Some(collector) = self.collector.as_deref() {
            return Collector::parse(collector).map(Destination::Collector);
        }
        // The file lives in the spool directory: without a spool, nowhere.
        if debug || self.spool == Some(false) {
            return Ok(Destination::Brief);
        }
        Ok(match self.spool_dir.clone().or_else(default_dir) {
            Some(dir) => Destination::Kept(dir.join(DEFAULT_FILE_NAME)),
            None => Destination::Brief,
        })
    }
}

impl Destination {
    /// Where reports go, as a short phrase for a person ("stderr", "the
    /// file /x/reports.jsonl", "Sentry at host"): never a credential.
    pub(crate) fn describe(&self) -> String {
        match self {
            Destination::Custom => "the transport set with Options::transport".to_owned(),
            Destination::Collector(c) => crate::collector::describe(c),
            Destination::Brief => "stderr (one line each)".to_owned(),
            Destination::Kept(path) => format!("the file {}", path.display()),
        }
    }

    /// Whether reports pass through the spool by default: for network
    /// collectors, files and custom transports; not for stderr and memory
    /// (a report printed by a later run, or kept for a test that is gone,
    /// helps nobody).
    pub(crate) fn spooled(&self) -> bool {
        !matches!(
            self,
            Destination::Brief | Destination::Collector(Collector::Stderr | Collector::Memory)
        )
    }

    /// Whether delivery is a local write, which the panic hook waits for.
    pub(crate) fn local(&self) -> bool {
        matches!(
            self,
            Destination::Brief
                | Destination::Kept(_)
                | Destination::Collector(Collector::File(_) | Collector::Stderr)
        )
    }

    /// The transport for a destination other than [`Destination::Custom`]
    /// (which `init` takes from the options).
    pub(crate) fn transport(
        &self,
        service: crate::transport::ServiceInfo,
    ) -> Result<Box<dyn Transport>, ConfigError> {
        Ok(match self {
            Destination::Collector(c) => crate::transport::for_collector(c, service)?,
            Destination::Brief | Destination::Custom => {
                Box::new(crate::transport::BriefStderrTransport::default())
            }
            Destination::Kept(path) => Box::new(
                crate::transport::FileTransport::new(path.clone())
                    .rotate_at(crate::transport::DEFAULT_FILE_MAX_BYTES)
                    .private(),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_collector_debug_builds_print_brief_lines() {
        let o = Options::new();
        let d = o
            .destination_for(true, || Some(PathBuf::from("/spool")))
            .unwrap();
        assert_eq!(d, Destination::Brief);
        assert!(!d.spooled() && d.local());
        assert_eq!(d.describe(), "stderr (one line each)");
    }

    #[test]
    fn without_a_collector_release_builds_keep_reports_in_the_spool_directory() {
        let o = Options::new();
        let d = o
            .destination_for(false, || Some(PathBuf::from("/spool")))
            .unwrap();
        assert_eq!(d, Destination::Kept(PathBuf::from("/spool/reports.jsonl")));
        assert!(d.spooled() && d.local());
        assert_eq!(d.describe(), "the file /spool/reports.jsonl");
        // An explicit spool directory is where the file goes.
        let o = Options::new().spool_dir("/var/lib/app");
        let d = o
            .destination_for(false, || Some(PathBuf::from("/spool")))
            .unwrap();
        assert_eq!(
            d,
            Destination::Kept(PathBuf::from("/var/lib/app/reports.jsonl"))
        );
        // With nowhere to keep them, release builds print the brief lines.
        let d = Options::new().destination_for(false, || None).unwrap();
        assert_eq!(d, Destination::Brief);
        // So they do with the spool turned off: the file is the spool's.
        let d = Options::new()
            .spool(false)
            .destination_for(false, || Some(PathBuf::from("/spool")))
            .unwrap();
        assert_eq!(d, Destination::Brief);
    }

    #[test]
    fn a_configured_collector_is_used_in_any_build() {
        for debug in [true, false] {
            let o = Options::new().collector("stderr");
            let d = o.destination_for(debug, || None).unwrap();
            assert_eq!(d, Destination::Collector(Collector::Stderr));
            assert_eq!(d.describe(), "stderr");
            let o = Options::new().collector("sentry+https://s3cr3t@sentry.example.com/1");
            let d = o.destination_for(debug, || None).unwrap();
            assert_eq!(d.describe(), "Sentry at sentry.example.com");
            assert!(Options::new()
                .collector("bad")
                .destination_for(debug, || None)
                .is_err());
        }
        let o = Options::new().transport(crate::transport::MemoryTransport);
        assert_eq!(
            o.destination_for(false, || None).unwrap(),
            Destination::Custom
        );
    }

    #[test]
    fn the_kept_file_is_bounded_and_written_as_json_lines() {
        let dir = std::env::temp_dir().join(format!("crashbox-kept-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let o = Options::new().spool_dir(&dir);
        let d = o.destination_for(false, || None).unwrap();
        let mut transport = d.transport(o.service_info()).unwrap();
        let report = Report::sample("kept on disk");
        transport.send(std::slice::from_ref(&report)).unwrap();
        let text = std::fs::read_to_string(dir.join(DEFAULT_FILE_NAME)).unwrap();
        let parsed: Report = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(parsed.id, report.id);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
