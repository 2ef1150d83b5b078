//! [`Options`] from a configuration file: `impl Deserialize for Options`,
//! through a mirror of the settings with every field optional.
use std::collections::BTreeMap;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::*;
use crate::capture::panic::CrashMessage;

/// The settings a configuration file may hold: the builder methods'
/// names, each optional (a missing one keeps its default), and no others.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    collector: Option<String>,
    release: Option<String>,
    environment: Option<String>,
    in_app_include: Option<Vec<String>>,
    in_app_exclude: Option<Vec<String>>,
    shutdown_timeout: Option<Humane>,
    max_breadcrumbs: Option<usize>,
    queue_capacity: Option<usize>,
    panic_hook: Option<bool>,
    crash_signals: Option<Vec<crate::crash::Signal>>,
    service_name: Option<String>,
    retry_initial: Option<Humane>,
    retry_max: Option<Humane>,
    max_attempts: Option<u32>,
    spool: Option<bool>,
    spool_dir: Option<PathBuf>,
    spool_max_reports: Option<usize>,
    spool_max_age: Option<Humane>,
    panic_flush_timeout: Option<Humane>,
    aggregation_window: Option<Humane>,
    aggregation_burst: Option<u32>,
    max_reports_per_minute: Option<u32>,
    sample_rate: Option<f64>,
    scrub: Option<bool>,
    scrub_keys: Option<Vec<String>>,
    send_default_pii: Option<bool>,
    debug: Option<bool>,
    symbolicate: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
    resource_attributes: Option<BTreeMap<String, String>>,
    crash_message: Option<CrashMessageConfig>,
}

/// `crash_message = true` (the default text), `false`, or a table of
/// [`CrashMessage`]'s settings.
#[derive(Deserialize)]
#[serde(
    untagged,
    expecting = "true, false, or a table of app_name, contact and text"
)]
enum CrashMessageConfig {
    On(bool),
    Custom(CrashMessageTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CrashMessageTable {
    app_name: Option<String>,
    contact: Option<String>,
    text: Option<String>,
}

impl CrashMessageConfig {
    fn into_message(self) -> Option<CrashMessage> {
        let table = match self {
            CrashMessageConfig::On(false) => return None,
            CrashMessageConfig::On(true) => return Some(CrashMessage::new()),
            CrashMessageConfig::Custom(table) => table,
        };
        let mut message = CrashMessage::new();
        if let Some(name) = table.app_name {
            message = message.app_name(name);
        }
        if let Some(contact) = table.contact {
            message = message.contact(contact);
        }
        if let Some(text) = table.text {
            message = message.text(text);
        }
        Some(message)
    }
}

/// A duration written for people: a number and a unit (`"500ms"`, `"2s"`,
/// `"1.5s"`, `"10m"`, `"1h"`, `"30d"`), or an integer of milliseconds.
struct Humane(Duration);

impl<'de> Deserialize<'de> for Humane {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HumaneVisitor;

        impl Visitor<'_> for HumaneVisitor {
            type Value = Humane;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a duration such as \"500ms\", \"2s\", \"10m\", \"1h\" or \"30d\", or whole milliseconds",
                )
            }

            fn visit_u64<E: de::Error>(self, ms: u64) -> Result<Humane, E> {
                Ok(Humane(Duration::from_millis(ms)))
            }

            fn visit_i64<E: de::Error>(self, ms: i64) -> Result<Humane, E> {
                u64::try_from(ms)
                    .map(|ms| Humane(Duration::from_millis(ms)))
                    .map_err(|_| E::custom(format!("the duration {ms} ms is negative")))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Humane, E> {
                parse_duration(text).map(Humane).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(HumaneVisitor)
    }
}

/// Parses `"<number><unit>"`, the unit one of `ms`, `s`, `m`, `h`, `d`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let seconds_per_unit = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => {
            return Err(format!(
                "invalid duration {text:?}: expected a number and a unit (ms, s, m, h or d), such as \"2s\" or \"500ms\""
            ))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: `{number}` is not a number"))?;
    Duration::try_from_secs_f64(value * seconds_per_unit)
        .map_err(|_| format!("invalid duration {text:?}: out of range"))
}

/// Options from a configuration file, such as a `[crashbox]` table of an
/// application's TOML or JSON configuration. The keys are the builder
/// methods' names, each optional: `collector`, `release`, `environment`,
/// `in_app_include` and `in_app_exclude` (lists), `shutdown_timeout`,
/// `max_breadcrumbs`, `queue_capacity`, `panic_hook`, `crash_signals`
/// (a list of names: `["SIGSEGV", "SIGABRT"]`), `service_name`,
/// `retry_initial` and `retry_max` (the two halves of
/// [`retry_backoff`](Options::retry_backoff)), `max_attempts`, `spool`,
/// `spool_dir`, `spool_max_reports`, `spool_max_age`,
/// `panic_flush_timeout`, `aggregation_window`, `aggregation_burst`,
/// `max_reports_per_minute`, `sample_rate`, `scrub`, `scrub_keys`,
/// `send_default_pii`, `debug`, `symbolicate`, the tables `headers`
/// and `resource_attributes`, and `crash_message` (`true` for the default
/// text, or a table of `app_name`, `contact` and `text`; see
/// [`CrashMessage`](CrashMessage)). An unknown key is an error. Durations are
/// strings of a number and a unit (`"500ms"`, `"2s"`, `"10m"`, `"1h"`,
/// `"30d"`) or whole milliseconds. Keys left out keep the defaults of
/// [`Options::new`]; the environment is not read.
///
/// A [`transport`](Options::transport) and a
/// [`before_send`](Options::before_send) hook are code: set them on the
/// deserialized options. Values are checked by [`init`](crate::init), as
/// for options built in code.
///
/// ```
/// use std::time::Duration;
///
/// let options: crashbox::Options = serde_json::from_str(r#"{
///     "collector": "memory",
///     "environment": "staging",
///     "shutdown_timeout": "500ms",
///     "spool_max_age": "7d",
///     "headers": {"Authorization": "Bearer s3cr3t"}
/// }"#)?;
/// let options = options.before_send(|report| Some(report));
/// assert_eq!(options.environment_name(), "staging");
/// assert!(!format!("{options:?}").contains("s3cr3t"));
/// # Ok::<(), serde_json::Error>(())
/// ```
impl<'de> Deserialize<'de> for Options {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let c = Config::deserialize(deserializer)?;
        let mut o = Options::new();
        let duration = |value: Option<Humane>, default: Duration| value.map_or(default, |h| h.0);
        o.collector = c.collector;
        o.release = c.release;
        if let Some(environment) = c.environment {
            o.environment = environment;
        }
        o.in_app_include = c.in_app_include.unwrap_or_default();
        o.in_app_exclude = c.in_app_exclude.unwrap_or_default();
        o.shutdown_timeout = duration(c.shutdown_timeout, o.shutdown_timeout);
        o.max_breadcrumbs = c.max_breadcrumbs.unwrap_or(o.max_breadcrumbs);
        o.queue_capacity = c.queue_capacity.unwrap_or(o.queue_capacity);
        o.panic_hook = c.panic_hook.unwrap_or(o.panic_hook);
        if let Some(signals) = c.crash_signals {
            o = o.crash_signals(signals);
        }
        o.service_name = c.service_name;
        o.retry_initial = duration(c.retry_initial, o.retry_initial);
        o.retry_max = duration(c.retry_max, o.retry_max);
        o.max_attempts = c.max_attempts.unwrap_or(o.max_attempts);
        o.spool = c.spool;
        o.spool_dir = c.spool_dir;
        o.spool_max_reports = c.spool_max_reports.unwrap_or(o.spool_max_reports);
        o.spool_max_age = duration(c.spool_max_age, o.spool_max_age);
        o.panic_flush_timeout = duration(c.panic_flush_timeout, o.panic_flush_timeout);
        o.aggregation_window = duration(c.aggregation_window, o.aggregation_window);
        o.aggregation_burst = c.aggregation_burst.unwrap_or(o.aggregation_burst);
        o.max_reports_per_minute = c.max_reports_per_minute.unwrap_or(o.max_reports_per_minute);
        o.sample_rate = c.sample_rate.unwrap_or(o.sample_rate);
        o.scrub = c.scrub.unwrap_or(o.scrub);
        o.scrub_keys = c.scrub_keys.unwrap_or_default();
        o.send_default_pii = c.send_default_pii.unwrap_or(o.send_default_pii);
        o.debug = c.debug.unwrap_or(o.debug);
        o.symbolicate = c.symbolicate.unwrap_or(o.symbolicate);
        o.headers = c.headers.unwrap_or_default().into_iter().collect();
        for (key, value) in c.resource_attributes.unwrap_or_default() {
            o = o.resource_attribute(key, value);
        }
        o.crash_message = c.crash_message.and_then(CrashMessageConfig::into_message);
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_table_sets_what_it_names_and_keeps_the_rest() {
        let o: Options = serde_json::from_str(
            r#"{
                "collector": "file:///tmp/app/reports.jsonl",
                "release": "app@1.0.0",
                "shutdown_timeout": "1.5s",
                "retry_initial": 250,
                "retry_max": "2m",
                "spool_max_age": "30d",
                "aggregation_window": "0s",
                "sample_rate": 0.5,
                "in_app_include": ["app"],
                "scrub_keys": ["card_number"],
                "headers": {"X-Api-Key": "s3cr3t"},
                "resource_attributes": {"service.namespace": "shop"}
            }"#,
        )
        .unwrap();
        assert_eq!(
            o.collector.as_deref(),
            Some("file:///tmp/app/reports.jsonl")
        );
        assert_eq!(o.release.as_deref(), Some("app@1.0.0"));
        assert_eq!(o.shutdown_timeout, Duration::from_millis(1500));
        assert_eq!(o.retry_initial, Duration::from_millis(250));
        assert_eq!(o.retry_max, Duration::from_secs(120));
        assert_eq!(o.spool_max_age, Duration::from_secs(30 * 86_400));
        assert_eq!(o.aggregation_window, Duration::ZERO);
        assert_eq!(o.sample_rate, 0.5);
        assert_eq!(o.in_app_include, ["app"]);
        assert_eq!(o.scrub_keys, ["card_number"]);
        assert_eq!(o.headers, [("X-Api-Key".to_owned(), "s3cr3t".to_owned())]);
        assert_eq!(
            o.resource_attributes,
            [("service.namespace".to_owned(), "shop".to_owned())]
        );
        // Untouched settings keep their defaults.
        let defaults = Options::new();
        assert_eq!(o.environment, defaults.environment);
        assert_eq!(o.queue_capacity, defaults.queue_capacity);
        assert_eq!(o.max_attempts, defaults.max_attempts);
        assert!(o.validate().is_ok());
        let empty: Options = serde_json::from_str("{}").unwrap();
        assert_eq!(format!("{empty:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn a_crash_message_is_on_off_or_a_table() {
        let of = |json: &str| serde_json::from_str::<Options>(json).map(|o| o.crash_message);
        assert_eq!(of(r#"{"crash_message": false}"#).unwrap(), None);
        assert_eq!(
            of(r#"{"crash_message": true}"#).unwrap(),
            Some(CrashMessage::new())
        );
        assert_eq!(
            of(r#"{"crash_message": {"app_name": "ledger", "contact": "bugs@example.com"}}"#)
                .unwrap(),
            Some(
                CrashMessage::new()
                    .app_name("ledger")
                    .contact("bugs@example.com")
            )
        );
        let err = of(r#"{"crash_message": {"contakt": "x"}}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("app_name, contact and text"), "{err}");
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it() {
        let err = serde_json::from_str::<Options>(r#"{"colector": "stderr"}"#)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("unknown field `colector`"), "{err}");
        assert!(err.contains("`collector`"), "{err}");
    }

    #[test]
    fn a_bad_duration_is_an_error_saying_what_is_expected() {
        for (input, needle) in [
            (
                r#"{"shutdown_timeout": "2 parsecs"}"#,
                "expected a number and a unit",
            ),
            (
                r#"{"shutdown_timeout": "fast s"}"#,
                "expected a number and a unit",
            ),
            (r#"{"shutdown_timeout": "1.2.3s"}"#, "is not a number"),
            (r#"{"shutdown_timeout": -5}"#, "negative"),
            (r#"{"shutdown_timeout": true}"#, "a duration such as"),
        ] {
            let err = serde_json::from_str::<Options>(input)
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(needle), "{input}: {err}");
        }
    }

    #[test]
    fn durations_take_the_documented_units() {
        for (text, expected) in [
            ("500ms", Duration::from_millis(500)),
            ("2s", Duration::from_secs(2)),
            (" 10 m ", Duration::from_secs(600)),
            ("1h", Duration::from_secs(3600)),
            ("30d", Duration::from_secs(30 * 86_400)),
        ] {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
        assert!(parse_duration("5").is_err(), "a unit is needed");
    }
}
