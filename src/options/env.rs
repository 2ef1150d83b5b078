//! [`Options::from_env`]'s reading of the environment, through a lookup
//! function so that it can be tested without touching the process's
//! environment.
use super::*;
use crate::collector::{redact, Collector};

/// The reason of a collector error, without the collector string it repeats.
fn reason(error: ConfigError) -> String {
    match error {
        ConfigError::InvalidCollector { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// `key=value` pairs separated by commas (the W3C Baggage form of
/// `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_RESOURCE_ATTRIBUTES`): keys and
/// values trimmed, values percent-decoded. An entry without `=` or with
/// an empty key is skipped, and `skipped` is told its position (1-based).
fn pairs(list: &str, mut skipped: impl FnMut(usize, &str)) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, entry) in list.split(',').enumerate() {
        if entry.trim().is_empty() {
            continue;
        }
        let Some((key, value)) = entry.split_once('=') else {
            skipped(i + 1, "it has no `=`");
            continue;
        };
        let key = key.trim();
        if key.is_empty() {
            skipped(i + 1, "its key is empty");
            continue;
        }
        let value = percent_encoding::percent_decode_str(value.trim()).decode_utf8_lossy();
        out.push((key.to_owned(), value.into_owned()));
    }
    out
}

impl Options {
    /// Defaults overridden by `CRASHBOX_COLLECTOR`, `CRASHBOX_RELEASE`,
    /// `CRASHBOX_ENVIRONMENT`, `CRASHBOX_SPOOL_DIR`, `CRASHBOX_DEBUG` and
    /// `CRASHBOX_SYMBOLICATE` (see [`symbolicate`](Options::symbolicate))
    /// where they are set and not empty.
    ///
    /// - A `CRASHBOX_COLLECTOR` (or `SENTRY_DSN`) that does not parse is
    ///   ignored, with one line on stderr (`crashbox: ignoring
    ///   CRASHBOX_COLLECTOR="…": <reason>; using the default`), so a typo in
    ///   a user's environment never stops the program; a collector set in code with
    ///   [`collector`](Options::collector) still makes `init` fail.
    /// - Without `CRASHBOX_COLLECTOR`, a `SENTRY_DSN` (`https://KEY@host/ID`)
    ///   selects the Sentry collector; without either,
    ///   `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` (the logs URL, used as is but for
    ///   a trailing `/`) or
    ///   `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL, `/v1/logs` appended)
    ///   selects OTLP, unless `OTEL_SDK_DISABLED=true` or
    ///   `OTEL_EXPORTER_OTLP_(LOGS_)PROTOCOL` names a protocol other than
    ///   `http/…` (`grpc`; crashbox sends OTLP/HTTP JSON).
    /// - With an OTLP collector: `OTEL_EXPORTER_OTLP_HEADERS` and
    ///   `OTEL_EXPORTER_OTLP_LOGS_HEADERS` (`name=value,…`, values
    ///   percent-decoded) become [`header`](Options::header)s,
    ///   `OTEL_SERVICE_NAME` the [`service_name`](Options::service_name), and
    ///   `OTEL_RESOURCE_ATTRIBUTES` (`key=value,…`)
    ///   [`resource_attribute`](Options::resource_attribute)s.
    /// - With a Sentry collector: `SENTRY_RELEASE` and `SENTRY_ENVIRONMENT`,
    ///   unless `CRASHBOX_RELEASE` or `CRASHBOX_ENVIRONMENT` is set.
    ///
    /// Entries of these variables that cannot be used are skipped, each
    /// with one `crashbox: ignoring …` line on stderr; header values are
    /// never printed.
    ///
    /// ```
    /// let options = crashbox::Options::from_env();
    /// # let _ = options;
    /// ```
    pub fn from_env() -> Self {
        let (options, warnings) = Options::from_lookup(|name| std::env::var(name).ok());
        for warning in warnings {
            crate::stats::say(format_args!("{warning}"));
        }
        options
    }

    /// The options [`from_env`](Options::from_env) makes, reading variables
    /// through `lookup`, and the lines it prints on stderr.
    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> (Options, Vec<String>) {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut warnings = Vec::new();
        let mut options = Options::new();
        let mut parsed = None;
        let mut ignored = None;
        if let Some(c) = var("CRASHBOX_COLLECTOR") {
            match Collector::parse(&c) {
                Ok(collector) => {
                    parsed = Some(collector);
                    options.collector = Some(c);
                }
                Err(e) => {
                    ignored = Some(format!(
                        "crashbox: ignoring CRASHBOX_COLLECTOR=\"{}\": {}",
                        redact(c.trim()),
                        reason(e)
                    ))
                }
            }
        }
        if options.collector.is_none() {
            if let Some(dsn) = var("SENTRY_DSN") {
                let dsn = dsn.trim();
                let collector = if dsn.starts_with("http") {
                    format!("sentry+{dsn}")
                } else {
                    dsn.to_owned()
                };
                match Collector::parse(&collector) {
                    Ok(c) => {
                        parsed = Some(c);
                        options.collector = Some(collector);
                        if let Some(line) = ignored.take() {
                            warnings.push(format!("{line}; using SENTRY_DSN"));
                        }
                    }
                    // A typo in the environment never stops the program.
                    Err(e) => warnings.push(format!(
                        "crashbox: ignoring SENTRY_DSN=\"{}\": {}",
                        redact(dsn),
                        reason(e)
                    )),
                }
            }
        }
        let protocol = var("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL")
            .map(|p| ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", p))
            .or_else(|| {
                var("OTEL_EXPORTER_OTLP_PROTOCOL").map(|p| ("OTEL_EXPORTER_OTLP_PROTOCOL", p))
            });
        let otel_disabled =
            var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        if options.collector.is_none() && !otel_disabled {
            for (name, as_given) in [
                ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", true),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", false),
            ] {
                let Some(url) = var(name) else { continue };
                // crashbox speaks OTLP over HTTP (JSON, which an OTLP/HTTP
                // receiver takes beside protobuf); a gRPC endpoint would
                // never answer it.
                if let Some((variable, p)) = &protocol {
                    if !p.trim().starts_with("http/") {
                        warnings.push(format!(
                            "crashbox: ignoring {name}: {variable}={:?} is not an OTLP/HTTP protocol \
                             (crashbox sends OTLP/HTTP JSON)",
                            p.trim()
                        ));
                        break;
                    }
                }
                let collector = format!("otlp+{}", url.trim());
                match Collector::parse(&collector) {
                    Ok(c) => {
                        parsed = Some(c);
                        options.collector = Some(collector);
                        options.otlp_url_as_given = as_given;
                        if let Some(line) = ignored.take() {
                            warnings.push(format!("{line}; using {name}"));
                        }
                        break;
                    }
                    Err(e) => warnings.push(format!(
                        "crashbox: ignoring {name}=\"{}\": {}",
                        redact(url.trim()),
                        reason(e)
                    )),
                }
            }
        }
        if let Some(line) = ignored {
            warnings.push(format!("{line}; using the default"));
        }
        match parsed {
            Some(Collector::Otlp(_)) => options.read_otel(&var, &mut warnings),
            Some(Collector::Sentry(_)) => {
                options.release = var("SENTRY_RELEASE");
                if let Some(e) = var("SENTRY_ENVIRONMENT") {
                    options.environment = e;
                }
            }
            _ => {}
        }
        if let Some(r) = var("CRASHBOX_RELEASE") {
            options.release = Some(r);
        }
        if let Some(e) = var("CRASHBOX_ENVIRONMENT") {
            options.environment = e;
        }
        if let Some(dir) = var("CRASHBOX_SPOOL_DIR") {
            options.spool_dir = Some(PathBuf::from(dir));
        }
        if let Some(value) = var("CRASHBOX_DEBUG") {
            let value = value.trim().to_ascii_lowercase();
            options.debug = matches!(value.as_str(), "1" | "true" | "on" | "yes");
        }
        if let Some(value) = var("CRASHBOX_SYMBOLICATE") {
            let value = value.trim().to_ascii_lowercase();
            options.symbolicate = !matches!(value.as_str(), "0" | "false" | "off" | "no");
        }
        (options, warnings)
    }

    /// The OpenTelemetry SDK variables an OTLP collector takes.
    fn read_otel(&mut self, var: &impl Fn(&str) -> Option<String>, warnings: &mut Vec<String>) {
        for name in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
        ] {
            let Some(list) = var(name) else { continue };
            let headers = pairs(&list, |n, why| {
                warnings.push(format!("crashbox: ignoring entry {n} of {name}: {why}"));
            });
            for (header, value) in headers {
                match derived::check_header(&header, &value) {
                    Ok(()) => {
                        // The logs-specific variable wins for a name both set.
                        self.headers
                            .retain(|(h, _)| !h.eq_ignore_ascii_case(&header));
                        self.headers.push((header, value));
                    }
                    Err(why) => {
                        warnings.push(format!("crashbox: ignoring a header of {name}: {why}"))
                    }
                }
            }
        }
        let mut service_name = var("OTEL_SERVICE_NAME").map(|s| s.trim().to_owned());
        if let Some(list) = var("OTEL_RESOURCE_ATTRIBUTES") {
            let attributes = pairs(&list, |n, why| {
                warnings.push(format!(
                    "crashbox: ignoring entry {n} of OTEL_RESOURCE_ATTRIBUTES: {why}"
                ));
            });
            for (key, value) in attributes {
                if key == "service.name" {
                    // OTEL_SERVICE_NAME wins over the attribute.
                    service_name.get_or_insert(value);
                } else {
                    self.resource_attributes.retain(|(k, _)| *k != key);
                    self.resource_attributes.push((key, value));
                }
            }
        }
        if let Some(name) = service_name.filter(|n| !n.is_empty()) {
            self.service_name = Some(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> (Options, Vec<String>) {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Options::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn an_invalid_crashbox_collector_falls_back_to_the_default_with_one_line() {
        let (options, warnings) = from(&[("CRASHBOX_COLLECTOR", "sentry+https://s3cr3t@host/abc")]);
        assert_eq!(options.collector, None);
        assert_eq!(
            warnings,
            [
                "crashbox: ignoring CRASHBOX_COLLECTOR=\"sentry+https://***@host/abc\": \
              the project id `abc` is not a number; using the default"
            ]
        );
        let (options, warnings) = from(&[
            ("CRASHBOX_COLLECTOR", "stdout"),
            ("SENTRY_DSN", "https://key@sentry.example.com/3"),
        ]);
        assert_eq!(
            options.collector.as_deref(),
            Some("sentry+https://key@sentry.example.com/3")
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].ends_with("; using SENTRY_DSN"), "{warnings:?}");
        let (options, warnings) = from(&[("CRASHBOX_COLLECTOR", "memory")]);
        assert_eq!(options.collector.as_deref(), Some("memory"));
        assert!(warnings.is_empty());
        // OTLP over gRPC, or the SDK turned off: the endpoint is not used.
        for (variable, value) in [
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "grpc"),
            ("OTEL_SDK_DISABLED", "true"),
        ] {
            let (options, warnings) = from(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
                (variable, value),
            ]);
            assert_eq!(options.collector, None, "{variable}");
            assert_eq!(warnings.len(), usize::from(value == "grpc"), "{warnings:?}");
        }
        let (options, _) = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]);
        assert_eq!(
            options.collector.as_deref(),
            Some("otlp+http://collector:4318")
        );
        // A malformed SENTRY_DSN is skipped the same way, for the next
        // variable or the default.
        let (options, warnings) = from(&[
            ("SENTRY_DSN", "https://s3cr3t@sentry.example.com/abc"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        ]);
        assert_eq!(
            options.collector.as_deref(),
            Some("otlp+http://collector:4318")
        );
        assert_eq!(
            warnings,
            [
                "crashbox: ignoring SENTRY_DSN=\"https://***@sentry.example.com/abc\": \
              the project id `abc` is not a number"
            ]
        );
        let (options, _) = from(&[("SENTRY_DSN", "https://s3cr3t@sentry.example.com/abc")]);
        assert_eq!(options.collector, None);
    }

    #[test]
    fn otel_variables_select_and_configure_otlp() {
        let (options, warnings) = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/base"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "api-key=s3cr3t%2Fx , x-tenant = acme,broken",
            ),
            ("OTEL_SERVICE_NAME", "billing"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "service.name=ignored,service.namespace=shop,k8s.pod.name=pod%201",
            ),
        ]);
        assert_eq!(
            options.collector.as_deref(),
            Some("otlp+http://collector:4318/base")
        );
        assert!(!options.otlp_url_as_given);
        assert_eq!(
            options.headers,
            [
                ("api-key".to_owned(), "s3cr3t/x".to_owned()),
                ("x-tenant".to_owned(), "acme".to_owned())
            ]
        );
        assert_eq!(options.service_name.as_deref(), Some("billing"));
        assert_eq!(
            options.resource_attributes,
            [
                ("service.namespace".to_owned(), "shop".to_owned()),
                ("k8s.pod.name".to_owned(), "pod 1".to_owned())
            ]
        );
        assert_eq!(
            warnings,
            ["crashbox: ignoring entry 3 of OTEL_EXPORTER_OTLP_HEADERS: it has no `=`"]
        );

        // The logs endpoint wins and is used as is; the attribute names the
        // service when OTEL_SERVICE_NAME does not.
        let (options, _) = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://base:4318"),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "https://logs.example.com/ingest?k=v",
            ),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes"),
        ]);
        assert_eq!(
            options.collector.as_deref(),
            Some("otlp+https://logs.example.com/ingest?k=v")
        );
        assert!(options.otlp_url_as_given);
        assert_eq!(options.service_name.as_deref(), Some("from-attributes"));
        let info = options.service_info();
        assert!(info.otlp_url_as_given);
        assert_eq!(info.name, "from-attributes");
    }

    #[test]
    fn otel_variables_are_not_read_for_other_collectors() {
        let (options, _) = from(&[
            ("CRASHBOX_COLLECTOR", "memory"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s3cr3t"),
            ("OTEL_SERVICE_NAME", "billing"),
        ]);
        assert_eq!(options.collector.as_deref(), Some("memory"));
        assert!(options.headers.is_empty());
        assert_eq!(options.service_name, None);
        // CRASHBOX_COLLECTOR naming OTLP takes the headers, not the endpoint.
        let (options, _) = from(&[
            ("CRASHBOX_COLLECTOR", "otlp+http://127.0.0.1:4318"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s3cr3t"),
        ]);
        assert_eq!(
            options.collector.as_deref(),
            Some("otlp+http://127.0.0.1:4318")
        );
        assert_eq!(options.headers.len(), 1);
    }

    #[test]
    fn unusable_otel_values_are_skipped_without_showing_header_values() {
        let (options, warnings) = from(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"),
            (
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
                "http://logs:4318/v1/logs",
            ),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "bad name=s3cr3t,ok=v%0Asecond",
            ),
        ]);
        assert_eq!(
            options.collector.as_deref(),
            Some("otlp+http://logs:4318/v1/logs")
        );
        assert!(options.headers.is_empty());
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings
            .iter()
            .all(|w| !w.contains("s3cr3t") && !w.contains("second")));
        let (options, warnings) = from(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]);
        assert_eq!(options.collector, None);
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0]
                .starts_with("crashbox: ignoring OTEL_EXPORTER_OTLP_ENDPOINT=\"collector:4318\": "),
            "{warnings:?}"
        );
    }

    #[test]
    fn sentry_release_and_environment_apply_to_sentry_only_and_lose_to_crashbox_ones() {
        let sentry = [
            ("SENTRY_DSN", "https://key@sentry.example.com/3"),
            ("SENTRY_RELEASE", "app@2.0.0"),
            ("SENTRY_ENVIRONMENT", "canary"),
        ];
        let (options, _) = from(&sentry);
        assert_eq!(options.release.as_deref(), Some("app@2.0.0"));
        assert_eq!(options.environment, "canary");
        let mut overridden = sentry.to_vec();
        overridden.push(("CRASHBOX_RELEASE", "app@3.0.0"));
        overridden.push(("CRASHBOX_ENVIRONMENT", "staging"));
        let (options, _) = from(&overridden);
        assert_eq!(options.release.as_deref(), Some("app@3.0.0"));
        assert_eq!(options.environment, "staging");
        let (options, _) = from(&[
            ("CRASHBOX_COLLECTOR", "memory"),
            ("SENTRY_RELEASE", "app@2.0.0"),
            ("SENTRY_ENVIRONMENT", "canary"),
        ]);
        assert_eq!(options.release, None);
        assert_ne!(options.environment, "canary");
    }
}
