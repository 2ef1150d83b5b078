//! Unit tests of collector strings: parsing, errors, redaction and
//! descriptions.
use super::*;

#[test]
fn parses_local_collectors() {
    assert_eq!(Collector::parse("stderr").unwrap(), Collector::Stderr);
    assert_eq!(Collector::parse(" memory ").unwrap(), Collector::Memory);
    assert_eq!(
        Collector::parse("file:///tmp/x/reports.jsonl").unwrap(),
        Collector::File(PathBuf::from("/tmp/x/reports.jsonl"))
    );
    assert_eq!(
        Collector::parse("FILE://localhost/tmp/r.jsonl").unwrap(),
        Collector::File(PathBuf::from("/tmp/r.jsonl"))
    );
}

#[test]
fn file_paths_have_their_escapes_decoded() {
    for (input, path) in [
        ("file:///a%20b/c.jsonl", "/a b/c.jsonl"),
        ("file://localhost/r%C3%A9sum%c3%a9.jsonl", "/résumé.jsonl"),
        ("file:///100%25.jsonl", "/100%.jsonl"),
        // Not an escape: kept as written.
        ("file:///a%zz/b%2.jsonl", "/a%zz/b%2.jsonl"),
        ("file:///a/b.jsonl%", "/a/b.jsonl%"),
    ] {
        assert_eq!(
            Collector::parse(input).unwrap(),
            Collector::File(PathBuf::from(path)),
            "{input}"
        );
    }
    for (input, needle) in [
        ("file:///a%00b.jsonl", "NUL"),
        ("file:///tmp/dir%2F", "directory"),
        ("file:///a%ff.jsonl", "UTF-8"),
        ("file://%2Ftmp/r.jsonl", "absolute"),
    ] {
        let err = Collector::parse(input).unwrap_err().to_string();
        assert!(err.contains(needle), "{input:?}: {err}");
    }
}

#[test]
fn parses_sentry_dsns() {
    let Collector::Sentry(dsn) =
        Collector::parse("sentry+https://abc123@o1.ingest.example.com:8443/sub/path/42").unwrap()
    else {
        panic!("not a DSN")
    };
    assert_eq!(dsn.project_id(), 42);
    assert_eq!(
        dsn.envelope_url(),
        "https://o1.ingest.example.com:8443/sub/path/api/42/envelope/"
    );
    assert!(dsn.auth_header().contains("sentry_key=abc123"));
    let debug = format!("{dsn:?}");
    assert!(!debug.contains("abc123"), "{debug}");
    let Collector::Sentry(dsn) =
        Collector::parse("sentry+http://k:secret@127.0.0.1:9000/7").unwrap()
    else {
        panic!("not a DSN")
    };
    assert_eq!(dsn.envelope_url(), "http://127.0.0.1:9000/api/7/envelope/");
    assert_eq!(dsn.to_sentry_string(), "http://k@127.0.0.1:9000/7");
}

#[test]
fn parses_http_and_otlp_endpoints() {
    let Collector::Http(e) = Collector::parse("http://127.0.0.1:8080/ingest?token=x").unwrap()
    else {
        panic!()
    };
    assert_eq!(e.url(), "http://127.0.0.1:8080/ingest?token=x");
    let Collector::Otlp(e) = Collector::parse("otlp+https://[::1]:4318/").unwrap() else {
        panic!()
    };
    assert_eq!(e.url(), "https://[::1]:4318");
    assert_eq!(
        e.url_with_path_suffix("/v1/logs"),
        "https://[::1]:4318/v1/logs"
    );
}

#[test]
fn otlp_endpoints_keep_their_query_after_the_logs_path() {
    let Collector::Otlp(e) =
        Collector::parse("otlp+http://127.0.0.1:4318/prefix/?tenant=a&key=s3cr3t").unwrap()
    else {
        panic!()
    };
    assert_eq!(
        e.url_with_path_suffix("/v1/logs"),
        "http://127.0.0.1:4318/prefix/v1/logs?tenant=a&key=s3cr3t"
    );
    let described = describe(&Collector::Otlp(e));
    assert_eq!(described, "the OTLP endpoint http://127.0.0.1:4318/prefix");
}

#[test]
fn query_strings_are_masked_in_debug_and_redacted_text() {
    let collector = Collector::parse("otlp+https://otlp.example.com/v1/logs?token=s3cr3t").unwrap();
    for text in [
        format!("{collector:?}"),
        format!(
            "{:?}",
            crate::Options::new().collector("otlp+https://h/x?token=s3cr3t")
        ),
        redact("otlp+https://h/x?token=s3cr3t"),
        redact("https://user:s3cr3t@h/x?token=s3cr3t"),
    ] {
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("?***"), "{text}");
    }
}

#[test]
fn descriptions_name_the_place_without_secrets() {
    for (input, expected) in [
        ("stderr", "stderr"),
        ("file:///var/log/a%20b.jsonl", "the file /var/log/a b.jsonl"),
        (
            "sentry+https://s3cr3t@o1.ingest.example.com/42",
            "Sentry at o1.ingest.example.com",
        ),
        (
            "https://collect.example.com/in?token=s3cr3t",
            "the HTTP endpoint https://collect.example.com/in",
        ),
    ] {
        assert_eq!(describe(&Collector::parse(input).unwrap()), expected);
    }
}

#[test]
fn rejects_malformed_collectors_naming_the_problem() {
    for (input, needle) in [
        ("", "empty"),
        ("file://relative.jsonl", "absolute"),
        ("file:///tmp/dir/", "directory"),
        ("gopher://host", "unknown scheme `gopher`"),
        ("stdout", "expected `stderr`"),
        ("sentry+https://example.com/1", "no public key"),
        ("sentry+https://@example.com/1", "key is empty"),
        (
            "sentry+https://k@example.com/abc",
            "project id `abc` is not a number",
        ),
        ("sentry+https://k@example.com/", "no project id"),
        ("http://:8080/x", "host is empty"),
        ("http://exa%ffmple.com/x", "not a plain ASCII"),
        ("http://exämple.com/x", "not a plain ASCII"),
        ("http://example.com:70000/x", "70000 is out of range"),
        ("http://example.com:0/x", "out of range"),
        ("http://example.com:http/x", "not a number"),
        (
            "otlp+http://ex ample.com",
            "characters a host name cannot have",
        ),
    ] {
        let err = Collector::parse(input).unwrap_err().to_string();
        assert!(err.contains(needle), "{input:?}: {err}");
    }
}

#[test]
fn credentials_in_malformed_strings_are_masked_too() {
    for input in [
        "sentry+https:/s3cr3t@host/1",
        "sentry+https//s3cr3t@host/1",
        "sentry+https:s3cr3t@host/1",
        "sentry+https://ab/s3cr3t@host/1",
        "s3cr3t@host",
    ] {
        let err = Collector::parse(input).unwrap_err().to_string();
        assert!(!err.contains("s3cr3t"), "{input}: {err}");
    }
}

#[test]
fn credentials_never_appear_in_errors() {
    let err = Collector::parse("sentry+https://secretkey@example.invalid/notanumber")
        .unwrap_err()
        .to_string();
    assert!(!err.contains("secretkey"), "{err}");
    assert!(err.contains("***@example.invalid"), "{err}");
}

#[test]
fn a_key_before_an_earlier_at_sign_is_hidden_too() {
    // Found by fuzzing: no `://`, and a separator after the first `@`.
    for input in [
        "sentry+https//KEY@host:80/x@y",
        "`KEY@:@\0 99",
        "KEY@a:b@c",
        "sentry+https:/KEY@host/1",
        "$st**KEY@\0:K/C127.0.0.1:8x+https://ampdr.js@onl",
    ] {
        let redacted = redact(input);
        assert!(!redacted.contains("KEY"), "{input} -> {redacted}");
        let err = Collector::parse(input).map(|_| ()).unwrap_err().to_string();
        assert!(!err.contains("KEY"), "{input} -> {err}");
    }
}
