//! Placeholder scrubber (replaced by the full implementation).
use serde_json::Value;

pub(crate) const REDACTED: &str = "[redacted]";

#[derive(Clone, Debug, Default)]
pub(crate) struct Scrubber {
    extra_keys: Vec<String>,
}

impl Scrubber {
    pub(crate) fn new(extra_keys: &[String]) -> Scrubber {
        Scrubber {
            extra_keys: extra_keys.to_vec(),
        }
    }
    pub(crate) fn is_secret_key(&self, key: &str) -> bool {
        let k = key.to_ascii_lowercase();
        k.contains("password") || self.extra_keys.contains(&k)
    }
    pub(crate) fn scrub_text(&self, _text: &mut String) -> bool {
        false
    }
    pub(crate) fn scrub_value(&self, value: &mut Value) -> bool {
        let _ = REDACTED;
        let _ = value;
        false
    }
    pub(crate) fn scrub_entry(&self, key: &str, value: &mut String) -> bool {
        if self.is_secret_key(key) {
            *value = REDACTED.to_owned();
            return true;
        }
        self.scrub_text(value)
    }
}
