//! The crash message: a few lines on stderr, after a panic's report is
//! captured, for the person who ran the program (in the spirit of the
//! `human-panic` crate, without its dependencies).
//!
//! It is rendered inside the panic hook, where a second panic would abort
//! the process: from a template, by crashbox's own code, never by a closure
//! of the application's.
use std::path::Path;

use super::PanicFacts;
use crate::report::ReportId;

/// The message printed on stderr after a panic's report is captured, for
/// the people who run a program rather than write it: what happened, where
/// the report went, its id, and what to do. Set it with
/// [`Options::crash_message`](crate::Options::crash_message); it is off by
/// default.
///
/// The default text, for a report sent to Sentry:
///
/// ```text
/// mytool crashed at src/main.rs:12:5: the config file is empty
/// A crash report was sent to Sentry at o1.ingest.sentry.io.
/// Report id: 5f0c6d1a8e2b4c7d9a3f1e0b2c4d6e8f
/// Please send this id to support@example.com.
/// ```
///
/// The second line says where the report is: `was sent to …` once it was
/// delivered (crashbox waits for a `file://` or `stderr` collector),
/// `was saved to <spool file> and will be sent to …` while it waits in the
/// spool, `is being sent to …` otherwise. Without a
/// [`contact`](CrashMessage::contact) the last line is
/// `If you report this problem, please include this id.`
///
/// [`text`](CrashMessage::text) replaces the whole text with a template of
/// your own.
///
/// ```
/// use crashbox::{CrashMessage, Options};
///
/// let options = Options::new().crash_message(
///     CrashMessage::new()
///         .app_name("mytool")
///         .contact("https://github.com/me/mytool/issues"),
/// );
/// # let _ = options;
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrashMessage {
    app_name: Option<String>,
    contact: Option<String>,
    text: Option<String>,
}

/// The longest panic message the default text shows (its first line only).
const MAX_SHOWN_MESSAGE: usize = 200;

impl CrashMessage {
    /// The default text, naming the program by the crate name of
    /// [`Options::release`](crate::Options::release) (`mytool@1.2.0` gives
    /// `mytool`), else by its executable's file name.
    pub fn new() -> CrashMessage {
        CrashMessage::default()
    }

    /// The program's name in the message.
    #[must_use]
    pub fn app_name(mut self, name: impl Into<String>) -> Self {
        self.app_name = Some(name.into());
        self
    }

    /// Whom to send the report id to: an email address or a URL, shown as
    /// given.
    #[must_use]
    pub fn contact(mut self, contact: impl Into<String>) -> Self {
        self.contact = Some(contact.into());
        self
    }

    /// Replaces the text with `template`, in which these placeholders are
    /// replaced (anything else in braces stays as it is):
    ///
    /// | placeholder | what |
    /// |---|---|
    /// | `{app}` | the program's name |
    /// | `{message}` | the panic's message, its first line, at most 200 bytes |
    /// | `{location}` | `file:line:column` of the panic, else `an unknown place` |
    /// | `{where}` | where the report is, such as `was sent to the file /var/log/mytool/crashes.jsonl` |
    /// | `{id}` | the report's id (32 hex digits), else `(none)` |
    /// | `{contact}` | the [`contact`](CrashMessage::contact), else `the program's authors` |
    ///
    /// A line break is added at the end if the template has none.
    ///
    /// ```
    /// let message = crashbox::CrashMessage::new()
    ///     .text("{app} stopped. Crash report {id} {where}; please mail it to {contact}.");
    /// # let _ = message;
    /// ```
    #[must_use]
    pub fn text(mut self, template: impl Into<String>) -> Self {
        self.text = Some(template.into());
        self
    }
}

/// A client's crash message, with what it needs from `init`: the program's
/// name and where its reports go.
pub(crate) struct CrashNotice {
    message: CrashMessage,
    app: String,
    /// Where the client's reports go, as a phrase ("Sentry at …").
    destination: String,
}

/// Where a panic's report is when the crash message is said.
pub(crate) struct Whereabouts<'a> {
    /// Delivered (the hook waited for it).
    pub(crate) delivered: bool,
    /// Dropped (the queue was full or shutdown was over, and no spool
    /// file holds it).
    pub(crate) lost: bool,
    /// The spool file holding it, if any.
    pub(crate) spool_file: Option<&'a Path>,
}

impl CrashNotice {
    /// `release` names the program (its crate name) unless `message` does.
    pub(crate) fn new(
        message: CrashMessage,
        release: Option<&str>,
        destination: String,
    ) -> CrashNotice {
        let app = message
            .app_name
            .clone()
            .or_else(|| {
                release
                    .and_then(|r| r.split('@').next())
                    .filter(|name| !name.is_empty())
                    .map(str::to_owned)
            })
            .or_else(|| {
                std::env::current_exe()
                    .ok()?
                    .file_stem()?
                    .to_str()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "The program".to_owned());
        CrashNotice {
            message,
            app,
            destination,
        }
    }

    /// The text to print for `panic`, whose report is where `at` says.
    pub(crate) fn render(&self, panic: &PanicFacts<'_>, at: &Whereabouts<'_>) -> String {
        let whereabouts = match (panic.id, at.spool_file) {
            (None, _) => "could not be kept".to_owned(),
            (Some(_), _) if at.lost => "could not be kept".to_owned(),
            (Some(_), _) if at.delivered => format!("was sent to {}", self.destination),
            (Some(_), Some(file)) => format!(
                "was saved to {} and will be sent to {}",
                file.display(),
                self.destination
            ),
            (Some(_), None) => format!("is being sent to {}", self.destination),
        };
        let message = first_line(panic.message);
        let id = panic.id.as_ref().map(ReportId::to_hex);
        let location = panic.location.map(ToString::to_string);
        let mut text = match &self.message.text {
            Some(template) => fill(template, |name| match name {
                "app" => Some(self.app.clone()),
                "message" => Some(message.clone()),
                "location" => Some(
                    location
                        .clone()
                        .unwrap_or_else(|| "an unknown place".to_owned()),
                ),
                "where" => Some(whereabouts.clone()),
                "id" => Some(id.clone().unwrap_or_else(|| "(none)".to_owned())),
                "contact" => Some(
                    self.message
                        .contact
                        .clone()
                        .unwrap_or_else(|| "the program's authors".to_owned()),
                ),
                _ => None,
            }),
            None => {
                let mut text = match &location {
                    Some(location) => format!("{} crashed at {location}: {message}\n", self.app),
                    None => format!("{} crashed: {message}\n", self.app),
                };
                text.push_str(&format!("A crash report {whereabouts}.\n"));
                if let Some(id) = &id {
                    text.push_str(&format!("Report id: {id}\n"));
                    match &self.message.contact {
                        Some(contact) => {
                            text.push_str(&format!("Please send this id to {contact}.\n"))
                        }
                        None => {
                            text.push_str("If you report this problem, please include this id.\n")
                        }
                    }
                }
                text
            }
        };
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text
    }
}

/// The first line of `message`, at most [`MAX_SHOWN_MESSAGE`] bytes (cut at
/// a character boundary, `…` added).
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or("");
    let mut end = line.len().min(MAX_SHOWN_MESSAGE);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let mut shown = line[..end].to_owned();
    if end < line.len() || line.len() < message.trim_end().len() {
        shown.push('…');
    }
    shown
}

/// `template` with each `{name}` that `value` knows replaced.
fn fill(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let replaced = after.find('}').and_then(|close| {
            let name = &after[..close];
            value(name).map(|v| (v, close))
        });
        match replaced {
            Some((v, close)) => {
                out.push_str(&v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Location;

    fn facts<'a>(id: Option<ReportId>, location: Option<&'a Location>) -> PanicFacts<'a> {
        PanicFacts {
            id,
            message: "the config file is empty\nsecond line",
            location,
        }
    }

    #[test]
    fn the_default_text_says_what_where_which_id_and_whom_to_tell() {
        let notice = CrashNotice::new(
            CrashMessage::new().contact("support@example.com"),
            Some("mytool@1.2.0"),
            "Sentry at o1.ingest.sentry.io".to_owned(),
        );
        let id = ReportId::parse("5f0c6d1a8e2b4c7d9a3f1e0b2c4d6e8f").unwrap();
        let location = Location::new("src/main.rs", 12, 5);
        let at = Whereabouts {
            delivered: true,
            lost: false,
            spool_file: None,
        };
        assert_eq!(
            notice.render(&facts(Some(id), Some(&location)), &at),
            "mytool crashed at src/main.rs:12:5: the config file is empty…\n\
             A crash report was sent to Sentry at o1.ingest.sentry.io.\n\
             Report id: 5f0c6d1a8e2b4c7d9a3f1e0b2c4d6e8f\n\
             Please send this id to support@example.com.\n"
        );
        let waiting = Whereabouts {
            delivered: false,
            lost: false,
            spool_file: Some(Path::new("/spool/a.json")),
        };
        let text = notice.render(&facts(Some(id), None), &waiting);
        assert!(
            text.starts_with("mytool crashed: the config file is empty…\n"),
            "{text}"
        );
        assert!(
            text.contains("was saved to /spool/a.json and will be sent to Sentry at"),
            "{text}"
        );
        let text = notice.render(&facts(None, None), &waiting);
        assert!(
            text.ends_with("A crash report could not be kept.\n"),
            "{text}"
        );
        // Dropped on its way (a full queue, no spool file): not "being sent".
        let lost = Whereabouts {
            delivered: false,
            lost: true,
            spool_file: None,
        };
        let text = notice.render(&facts(Some(id), None), &lost);
        assert!(
            text.contains("A crash report could not be kept.\n"),
            "{text}"
        );
    }

    #[test]
    fn a_template_fills_known_placeholders_and_keeps_other_braces() {
        let notice = CrashNotice::new(
            CrashMessage::new()
                .app_name("tool")
                .text("{app} {id} {where} {nope} {contact} {"),
            None,
            "stderr".to_owned(),
        );
        let at = Whereabouts {
            delivered: false,
            lost: false,
            spool_file: None,
        };
        assert_eq!(
            notice.render(&facts(None, None), &at),
            "tool (none) could not be kept {nope} the program's authors {\n"
        );
    }

    #[test]
    fn a_long_message_is_cut_at_a_character_boundary() {
        // 1 + 2 × 150 bytes: byte 200 falls inside an `é`.
        let long = format!("a{}", "é".repeat(150));
        assert!(!long.is_char_boundary(MAX_SHOWN_MESSAGE));
        let shown = first_line(&long);
        assert!(shown.len() <= MAX_SHOWN_MESSAGE + '…'.len_utf8());
        assert!(shown.len() > MAX_SHOWN_MESSAGE - 2, "{}", shown.len());
        assert!(shown.ends_with('…'));
        assert_eq!(first_line("short"), "short");
    }
}
