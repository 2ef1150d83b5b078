//! Unit tests of the options.
use super::*;

#[test]
fn release_crate_name_becomes_an_in_app_prefix() {
    let o = Options::new()
        .release("my-app@1.0.0")
        .in_app_include("other");
    let prefixes = o.in_app_prefixes();
    assert_eq!(prefixes.first().map(String::as_str), Some("other"));
    assert_eq!(prefixes.last().map(String::as_str), Some("my_app::"));
}

#[test]
fn release_names_the_expanding_crate_as_the_application() {
    let release = crate::release!();
    assert!(release.starts_with("crashbox@"));
    assert!(Options::new()
        .in_app_prefixes()
        .contains(&"crashbox::".to_owned()));
}

#[test]
fn validate_rejects_zero_queue() {
    let err = Options::new().queue_capacity(0).validate().unwrap_err();
    assert!(err.to_string().contains("queue_capacity"));
}
