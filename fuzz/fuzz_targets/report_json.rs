//! Report JSON: any bytes may be offered as a report (a file collector's
//! line, a spool file's entry). Parsing never panics, and a report that
//! parses writes out JSON that parses back to an equal report, and writes
//! the same JSON again.
#![no_main]

use crashbox::Report;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(report) = serde_json::from_slice::<Report>(data) else {
        return;
    };
    let json = report.to_json();
    assert!(!json.contains('\n'), "one report a line: {json}");
    let again: Report = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("to_json wrote what does not parse ({e}): {json}"));
    assert_eq!(again, report, "{json}");
    assert_eq!(again.to_json(), json);
});
