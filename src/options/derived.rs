//! What `init` takes from the options: their check, and the settings,
//! retry policy and service description the parts below are built from.
use super::*;

impl Options {
    /// Checks the values `init` depends on.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.queue_capacity == 0 || self.queue_capacity > MAX_QUEUE_CAPACITY {
            return Err(ConfigError::InvalidOption {
                option: "queue_capacity",
                reason: format!(
                    "{} is outside 1..={MAX_QUEUE_CAPACITY}",
                    self.queue_capacity
                ),
            });
        }
        if self.max_breadcrumbs > 1000 {
            return Err(ConfigError::InvalidOption {
                option: "max_breadcrumbs",
                reason: format!("{} is more than 1000", self.max_breadcrumbs),
            });
        }
        if self.max_attempts == 0 {
            return Err(ConfigError::InvalidOption {
                option: "max_attempts",
                reason: "at least one attempt is needed".to_owned(),
            });
        }
        if self.retry_initial.is_zero()
            || self.retry_max < self.retry_initial
            || self.retry_max > Duration::from_secs(86_400)
        {
            return Err(ConfigError::InvalidOption {
                option: "retry_backoff",
                reason: format!(
                    "initial {:?} must be above zero and at most max {:?}, which is at most a day",
                    self.retry_initial, self.retry_max
                ),
            });
        }
        if !(0.0..=1.0).contains(&self.sample_rate) {
            return Err(ConfigError::InvalidOption {
                option: "sample_rate",
                reason: format!("{} is not between 0.0 and 1.0", self.sample_rate),
            });
        }
        if self.aggregation_window > Duration::from_secs(86_400) {
            return Err(ConfigError::InvalidOption {
                option: "aggregation_window",
                reason: format!("{:?} is more than a day", self.aggregation_window),
            });
        }
        if let Some(key) = self
            .scrub_keys
            .iter()
            .find(|k| !k.chars().any(char::is_alphanumeric))
        {
            return Err(ConfigError::InvalidOption {
                option: "scrub_keys",
                reason: format!("{key:?} has no letter or digit to match"),
            });
        }
        for (name, value) in &self.headers {
            if let Err(reason) = check_header(name, value) {
                return Err(ConfigError::InvalidOption {
                    option: "header",
                    reason,
                });
            }
        }
        if self.environment.trim().is_empty() {
            return Err(ConfigError::InvalidOption {
                option: "environment",
                reason: "the environment is empty".to_owned(),
            });
        }
        Ok(())
    }

    /// What processing needs from these options.
    pub(crate) fn settings(&self) -> crate::pipeline::Settings {
        let options = self;
        crate::pipeline::Settings {
            release: options.release.clone(),
            environment: options.environment.clone(),
            in_app: crate::pipeline::symbolicate::InAppRules {
                include: options.in_app_prefixes(),
                exclude: options.in_app_exclude.clone(),
            },
            before_send: options.before_send.clone(),
            aggregation_window: options.aggregation_window,
            aggregation_burst: options.aggregation_burst,
            max_reports_per_minute: options.max_reports_per_minute,
            sample_rate: options.sample_rate,
            scrubber: options
                .scrub
                .then(|| crate::pipeline::scrub::Scrubber::new(&options.scrub_keys)),
            default_username: if options.send_default_pii {
                ["USER", "LOGNAME", "USERNAME"]
                    .iter()
                    .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
            } else {
                None
            },
            symbolicate: options.symbolicate,
            queue_capacity: options.queue_capacity,
        }
    }

    pub(crate) fn retry_policy(&self) -> crate::worker::RetryPolicy {
        crate::worker::RetryPolicy {
            initial: self.retry_initial,
            max: self.retry_max,
            attempts: self.max_attempts,
        }
    }

    /// Name, version and environment for collectors that describe the service.
    pub(crate) fn service_info(&self) -> crate::transport::ServiceInfo {
        let (crate_name, version) = match self.release.as_deref().map(|r| r.split_once('@')) {
            Some(Some((name, version))) => (Some(name.to_owned()), Some(version.to_owned())),
            Some(None) => (None, self.release.clone()),
            None => (None, None),
        };
        let name = self
            .service_name
            .clone()
            .or(crate_name.filter(|n| !n.is_empty()))
            .or_else(|| {
                std::env::current_exe()
                    .ok()
                    .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            })
            .unwrap_or_else(|| "unknown_service".to_owned());
        crate::transport::ServiceInfo {
            name,
            version,
            environment: self.environment.clone(),
            send_default_pii: self.send_default_pii,
            resource_attributes: self.resource_attributes.clone(),
            headers: self.headers.clone(),
            otlp_url_as_given: self.otlp_url_as_given,
        }
    }

    /// In-app prefixes: explicit ones, the crates [`release!`] named, and
    /// the release's package name.
    pub(crate) fn in_app_prefixes(&self) -> Vec<String> {
        let mut prefixes = self.in_app_include.clone();
        for name in APPLICATION_CRATES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            prefixes.push(format!("{name}::"));
        }
        if let Some(name) = self
            .release
            .as_deref()
            .and_then(|r| r.split('@').next())
            .filter(|n| !n.is_empty())
        {
            prefixes.push(format!("{}::", name.replace('-', "_")));
        }
        prefixes
    }
}

/// Headers crashbox sets itself, which a configured header may not replace.
const RESERVED_HEADERS: [&str; 5] = [
    "content-type",
    "content-encoding",
    "content-length",
    "transfer-encoding",
    "host",
];

/// Why a header cannot be sent, naming it but never showing its value.
pub(crate) fn check_header(name: &str, value: &str) -> Result<(), String> {
    // RFC 9110's token characters.
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() {
        return Err("a header name is empty".to_owned());
    }
    if !name.chars().all(token) {
        return Err(format!(
            "the header name {:?} is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)",
            name.escape_default().to_string()
        ));
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!("the header {name} is set by crashbox itself"));
    }
    if let Some(c) = value
        .chars()
        .find(|&c| !(c == '\t' || (' '..='~').contains(&c)))
    {
        let what = if c.is_ascii_control() {
            "a control character (such as a line break)"
        } else {
            "a non-ASCII character"
        };
        return Err(format!(
            "the value of the header {name} (***) contains {what}"
        ));
    }
    Ok(())
}
