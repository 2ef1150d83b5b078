//! Unit tests of the scrubber.
use super::*;
use serde_json::json;

fn scrubber() -> Scrubber {
    Scrubber::default()
}

/// Scrubs a copy of `text`, asserting that a second scrub changes nothing.
fn scrubbed(s: &Scrubber, text: &str) -> (String, bool) {
    let mut out = text.to_owned();
    let changed = s.scrub_text(&mut out);
    let mut again = out.clone();
    assert!(
        !s.scrub_text(&mut again),
        "second scrub changed {out:?} into {again:?}"
    );
    assert_eq!(again, out);
    (out, changed)
}

fn scrub(text: &str) -> String {
    scrubbed(&scrubber(), text).0
}

// --- Keys ---------------------------------------------------------------

const SECRET_KEYS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "auth",
    "authorization",
    "cookie",
    "session",
    "credential",
    "private_key",
    "API-KEY",
    "apiKey",
    "ApiKey",
    "APIKey",
    "api key",
    "x-api-key",
    "X-API-KEY",
    "PRIVATE_KEY",
    "private-key",
    "privateKey",
    "X-Auth-Token",
    "X-CSRF-Token",
    "Set-Cookie",
    "Cookie",
    "Authorization",
    "Proxy-Authorization",
    "db_password",
    "DB.PASSWORD",
    "config/secret",
    "clientSecret",
    "client_secret",
    "accessToken",
    "access_token",
    "csrftoken",
    "accesstoken",
    "userpassword",
    "refreshToken",
    "github_token",
    "oauth2Token",
    "sessionid",
    "session_id",
    "sessionId",
    "sessionID",
    "PHPSESSID",
    "JSESSIONID",
    "credentials",
    "aws_secret_access_key",
    "AWS_ACCESS_KEY",
    "secret_key",
    "secretKey",
    "SECRETS",
    "passphrase",
    "ssh_passphrase",
    "passwords",
    "mysql_pwd",
    "MYSQL_PWD",
    "jwt",
    "id_jwt",
    "bearer",
    "signing_key",
    "encryptionKey",
    "user.password",
    "  password  ",
    "--password",
];

const HARMLESS_KEYS: &[&str] = &[
    "token_count",
    "tokens_used",
    "max_tokens",
    "tokens",
    "session_count",
    "sessions",
    "sessions_active",
    "author",
    "authority",
    "author_id",
    "password_min_length",
    "secretary",
    "secretariat",
    "cookie_consent",
    "token_type",
    "token_expiry",
    "auth_method",
    "credential_type",
    "keyboard",
    "monkey",
    "key",
    "primary_key",
    "foreign_key",
    "access_key_id",
    "passenger",
    "passport",
    "tokenizer",
    "possession",
    "obsession",
    "pwd",
    "PWD",
    "username",
    "user",
    "email",
    "id",
    "path",
    "",
    "___",
    "-",
    "ключ",
    "пароль",
    "🎉",
];

#[test]
fn secret_keys_are_recognized() {
    let s = scrubber();
    for key in SECRET_KEYS {
        assert!(s.is_secret_key(key), "{key:?} should be secret");
    }
}

#[test]
fn harmless_keys_are_not_secret() {
    let s = scrubber();
    for key in HARMLESS_KEYS {
        assert!(!s.is_secret_key(key), "{key:?} should not be secret");
    }
}

#[test]
fn words_split_at_separators_and_camel_case() {
    let words = |k: &str| -> Vec<String> {
        Words::new(k.as_bytes())
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect()
    };
    assert_eq!(words("apiKey"), ["api", "Key"]);
    assert_eq!(words("APIKey"), ["API", "Key"]);
    assert_eq!(words("XAuthToken"), ["X", "Auth", "Token"]);
    assert_eq!(words("oauth2Token"), ["oauth2", "Token"]);
    assert_eq!(
        words("db.pass-word/x y_z"),
        ["db", "pass", "word", "x", "y", "z"]
    );
    assert_eq!(words("sessionID"), ["session", "ID"]);
    assert_eq!(words("клю_чTok"), ["клю", "чTok"]); // ASCII camelCase only
    assert!(words("__--..").is_empty());
}

#[test]
fn extra_keys_match_at_word_boundaries() {
    let s = Scrubber::new(&["ssn".into(), "card_number".into(), "  ".into()]);
    for key in [
        "ssn",
        "SSN",
        "user_ssn",
        "userSsn",
        "card_number",
        "cardNumber",
        "CardNumber",
        "cardnumber",
        "customer_card_number",
        "customer-card-number",
        "customerCardNumber",
        "password", // built-ins still apply
    ] {
        assert!(s.is_secret_key(key), "{key:?} should be secret");
    }
    for key in [
        "card_numbers_count",
        "card_numbers",
        "discardnumber",
        "card",
        "number",
        "lessn",
        "ssn_last_checked",
        "",
        "x",
    ] {
        assert!(!s.is_secret_key(key), "{key:?} should not be secret");
    }
    // Empty extra keys are dropped instead of matching everything.
    assert_eq!(s.extra_keys, ["ssn", "cardnumber"]);
    assert!(!Scrubber::new(&["".into(), "--".into()]).is_secret_key("anything"));
}

#[test]
fn extra_keys_apply_to_text_and_values() {
    let s = Scrubber::new(&["card_number".into()]);
    let (out, changed) = scrubbed(&s, "charge failed: cardNumber=4111111111111111 amount=5");
    assert!(changed);
    assert_eq!(out, "charge failed: cardNumber=[redacted] amount=5");
    let mut v = json!({"customer": {"card-number": 4111111111111111u64, "name": "Bob"}});
    assert!(s.scrub_value(&mut v));
    assert_eq!(
        v,
        json!({"customer": {"card-number": "[redacted]", "name": "Bob"}})
    );
}

// --- Text: corpora ------------------------------------------------------

/// (text, a secret that must be gone)
const SECRET_TEXTS: &[(&str, &str)] = &[
    ("Authorization: Bearer abcdef0123456789", "abcdef0123456789"),
    ("authorization: bearer AbCdEfGhIjKlMnOp", "AbCdEfGhIjKlMnOp"),
    ("BEARER\tabc.def-ghi_jkl~mno+pqr/stu==", "abc.def"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA"),
    ("auth header was basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ("Authorization: Bearer abc", "abc"),
    ("Authorization: Token ghp_16C7e42F292c6912E7710c838347Ae178B4a", "ghp_16C7e42F"),
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c rejected",
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    ),
    ("(eyJhbGci.eyJzdWIi.c2lnbmF0dXJl)", "eyJzdWIi"),
    ("unsigned eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "eyJzdWIiOiIxIn0"),
    ("key AKIAIOSFODNN7EXAMPLE used", "IOSFODNN7EXAMPLE"),
    ("ASIAY34FZKBOKMUTVV7A", "Y34FZKBOKMUTVV7A"),
    ("id=ABIA1234567890ABCDEF,", "1234567890ABCDEF"),
    ("[ACCA1234567890ABCDEF]", "1234567890ABCDEF"),
    ("postgres://admin:s3cr3t@db.example.com:5432/app", "s3cr3t"),
    ("redis://:hunter2@cache:6379", "hunter2"),
    ("GET https://bob:hunter2@example.com failed", "hunter2"),
    ("https://user:p@ss@host/path", "p@ss"),
    ("'amqp://guest:gu3st@rabbit'", "gu3st"),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEA",
    ),
    (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----\n",
        "b3BlbnNzaC1rZXk",
    ),
    ("key: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq (cut)", "MIIEvQIBADANBgkq"),
    (
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----",
        "lQOYBF",
    ),
    ("GET /api?token=abc123&page=2", "abc123"),
    ("GET /api?page=2&access_token=xyz", "xyz"),
    ("password=hunter2 user=bob", "hunter2"),
    ("login with passwd=hunter", "hunter"),
    (r#"{"password": "hunter2", "user": "bob"}"#, "hunter2"),
    (r#"{"password":"hunt er2"}"#, "hunt er2"),
    (r#"{"api_key": 123456}"#, "123456"),
    (r#"body: {\"password\":\"hunter2\",\"x\":1}"#, "hunter2"),
    (r#"{\"token\":98765}"#, "98765"),
    ("login failed: password: hunter2", "hunter2"),
    ("Password = s3cret!", "s3cret"),
    ("password: \"hunter\"", "hunter"),
    ("Config { api_key: \"sk_live_123\", retries: 3 }", "sk_live_123"),
    ("Config { token: Some(\"abcdef\") }", "abcdef"),
    ("--password=hunter2", "hunter2"),
    ("user[password]=hunter2&user[name]=bob", "hunter2"),
    ("Cookie: sessionid=abc; csrftoken=def\nHost: x", "csrftoken=def"),
    ("Set-Cookie: id=a3fWa; Expires=Wed, 21 Oct 2015", "a3fWa"),
    ("X-Api-Key: 9f8e7d6c", "9f8e7d6c"),
    ("client_secret='s3cr3t value'", "s3cr3t value"),
    ("DB.PASSWORD=x", "=x"),
    ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    ("PHPSESSID=298zf09hf012fh2", "298zf09hf012fh2"),
    ("session:abcdef", "abcdef"),
    ("Session: 6f1c2e9a", "6f1c2e9a"),
    ("token: correcthorsebatterystaple", "correcthorsebatterystaple"),
    ("пароль password=ключ end", "ключ"),
    ("ключ=1 token=значение, ok", "значение"),
    ("mysql_pwd=hunter2", "hunter2"),
];

#[test]
fn secret_texts_are_redacted() {
    let s = scrubber();
    for (text, secret) in SECRET_TEXTS {
        let (out, changed) = scrubbed(&s, text);
        assert!(changed, "{text:?} was not changed");
        assert!(!out.contains(secret), "{secret:?} left in {out:?}");
        assert!(out.contains(REDACTED), "no marker in {out:?}");
    }
}

const HARMLESS_TEXTS: &[&str] = &[
    "",
    "token_count=5",
    "max_tokens: 4096",
    "tokens_used=100 session_count: 12 author_id=7 sessions_active=3",
    "the author wrote a secretary's tokenizer",
    "https://example.com/path?q=1",
    "http://localhost:8080/x",
    "https://example.com:443",
    "ssh://git@github.com/org/repo",
    "git@github.com:org/repo.git",
    "user@example.com",
    "mailto:user@example.com",
    "contact bob@example.com: he knows",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
    "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYI\n-----END PUBLIC KEY-----",
    "-----BEGIN PRIVATE-----",
    "-----BEGIN ",
    "AKIAIOSFODNN7EXAMPL",
    "AKIAIOSFODNN7EXAMPLE1",
    "xAKIAIOSFODNN7EXAMPLE",
    "AKIAiosfodnn7example",
    "AKIA",
    "eyJhbGciOiJIUzI1NiJ9",
    "eyJhbGciOiJIUzI1NiJ9.eyJ",
    "xeyJhbGci.eyJzdWIi.c2lnbmF0",
    "eyJ.eyJ.eyJ",
    "Bearer of bad news",
    "the bearer token expired",
    "Use Basic auth.",
    "a basic understanding of basic 101",
    "bearer",
    "Bearer [redacted]",
    "Session: expired",
    "Session: expired.",
    "Token: invalid",
    "password: incorrect!",
    "Error: session: Token expired",
    "crate::auth::session::verify",
    "<auth::Session as Drop>::drop",
    "if token == expected { ok }",
    "password != confirmation",
    "token <= limit, secret >= 2",
    "match auth => x",
    "token_type=bearer auth_method=oauth cookie_consent=true",
    "passenger=1 primary_key=42 keyboard=qwerty",
    "PWD=/home/user",
    r#"{"password": null, "token": None}"#,
    "password=null token=None",
    r#"{"token": {"count": 1}, "secret": [1, 2]}"#,
    "password= user=bob",
    "password=",
    "password=[redacted]",
    r#"{"password": "[redacted]"}"#,
    r#"{"password": ""}"#,
    "Authorization: Bearer [redacted]",
    "https://bob:[redacted]@example.com",
    "time 12:30:45, ratio a=b",
    "🎉 emoji token_count=5 ключ: значение",
    "Ошибка сеанса: истекла",
    "пароль: ключ",
];

#[test]
fn harmless_texts_are_unchanged() {
    let s = scrubber();
    for text in HARMLESS_TEXTS {
        let (out, changed) = scrubbed(&s, text);
        assert_eq!(&out, text);
        assert!(!changed, "{text:?} reported as changed");
    }
}

#[test]
fn unchanged_text_keeps_its_buffer() {
    let s = scrubber();
    let mut text = String::from("nothing to see: token_count=5 https://example.com");
    let before = text.as_ptr();
    assert!(!s.scrub_text(&mut text));
    assert_eq!(text.as_ptr(), before);
}

// --- Text: exact results per rule ---------------------------------------

fn assert_scrubs(pairs: &[(&str, &str)]) {
    for (input, expected) in pairs {
        assert_eq!(&scrub(input), expected, "input: {input:?}");
    }
}

#[test]
fn bearer_and_basic() {
    assert_scrubs(&[
        ("Bearer abcdef0123456789", "Bearer [redacted]"),
        ("bEaReR  abcdef0123456789 next", "bEaReR  [redacted] next"),
        ("(Basic dXNlcjpwYXNz==)", "(Basic [redacted])"),
        ("got Bearer abc.def1.", "got Bearer [redacted]."),
        ("Bearer abc/def", "Bearer [redacted]"),
        ("Bearer abc.def", "Bearer abc.def"),
        (
            "type=bearer auth_method=oauth",
            "type=bearer auth_method=oauth",
        ),
        ("type=bearer next_field", "type=bearer next_field"),
        ("Bearer of bad news", "Bearer of bad news"),
        ("bearer abcdefghijklmnopqrst", "bearer [redacted]"),
        (
            "Authorization: Bearer short",
            "Authorization: Bearer [redacted]",
        ),
        ("Authorization:Bearer x", "Authorization:Bearer [redacted]"),
        (
            r#"{"Authorization": "Bearer abc.def"}"#,
            r#"{"Authorization": "Bearer [redacted]"}"#,
        ),
    ]);
}

#[test]
fn jwts() {
    let jwt =
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    assert_scrubs(&[
        (&format!("t={jwt}&x=1"), "t=[redacted]&x=1"),
        (&format!("{jwt}. Next"), "[redacted]. Next"),
        (&format!("\"{jwt}\""), "\"[redacted]\""),
        (
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. done",
            "[redacted]. done",
        ),
        ("eyJhbGci.eyJzdWIi.abc", "eyJhbGci.eyJzdWIi.abc"),
    ]);
}

#[test]
fn aws_key_ids() {
    assert_scrubs(&[
        ("AKIAIOSFODNN7EXAMPLE", "[redacted]"),
        ("k=AKIAIOSFODNN7EXAMPLE;", "k=[redacted];"),
        ("ключAKIAIOSFODNN7EXAMPLEключ", "ключ[redacted]ключ"),
        ("AKIAIOSFODNN7EXAMPLEX", "AKIAIOSFODNN7EXAMPLEX"),
        ("AKIA IOSFODNN7EXAMPLE", "AKIA IOSFODNN7EXAMPLE"),
    ]);
}

#[test]
fn url_passwords() {
    assert_scrubs(&[
        (
            "GET https://bob:hunter2@example.com failed",
            "GET https://bob:[redacted]@example.com failed",
        ),
        (
            "postgres://admin:s3cr3t@db:5432/app?sslmode=require",
            "postgres://admin:[redacted]@db:5432/app?sslmode=require",
        ),
        ("redis://:pw@cache", "redis://:[redacted]@cache"),
        ("https://u:p@ss:w@rd@host/x", "https://u:[redacted]@host/x"),
        (
            r#"{"url":"mongodb+srv://u:pw@c0.example.net","n":"a@b"}"#,
            r#"{"url":"mongodb+srv://u:[redacted]@c0.example.net","n":"a@b"}"#,
        ),
        ("https://user:@host", "https://user:@host"),
        ("https://user@host", "https://user@host"),
        ("://u:p@h", "://u:p@h"),
        (
            "https://token:ghp_abc@github.com",
            "https://token:[redacted]@github.com",
        ),
        ("s3://bucket/key:with@at", "s3://bucket/key:with@at"),
    ]);
}

#[test]
fn pem_private_keys() {
    let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
    let key = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----";
    assert_scrubs(&[
        (&format!("a {key} b"), "a [redacted] b"),
        (&format!("{cert}\n{key}\n{cert}"), &format!("{cert}\n[redacted]\n{cert}")),
        (
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\\nMIIF\\n-----END ENCRYPTED PRIVATE KEY-----\\n",
            "[redacted]\\n",
        ),
        ("x -----BEGIN PRIVATE KEY-----\nMIIE cut off", "x [redacted]"),
        // A mismatched END does not end the key: redact to the end.
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY----- tail",
            "[redacted]",
        ),
        (
            "-----BEGIN PRIVATE KEY-----a-----END PRIVATE KEY----------BEGIN PRIVATE KEY-----b-----END PRIVATE KEY-----",
            "[redacted][redacted]",
        ),
    ]);
}

#[test]
fn key_value_pairs() {
    assert_scrubs(&[
        ("password=hunter2 user=bob", "password=[redacted] user=bob"),
        ("?token=abc&x=1", "?token=[redacted]&x=1"),
        ("token_count=5", "token_count=5"),
        ("a=1,secret=s;b=2", "a=1,secret=[redacted];b=2"),
        ("(password=x)", "(password=[redacted])"),
        ("{token=x}", "{token=[redacted]}"),
        ("[token=x]", "[token=[redacted]]"),
        (r#""password": "hunter2""#, r#""password": "[redacted]""#),
        (r#"'password' : 'it\'s'"#, r#"'password' : '[redacted]'"#),
        (r#"{"api_key":42,"n":1}"#, r#"{"api_key":[redacted],"n":1}"#),
        (
            r#"{\"password\":\"hunter2\"}"#,
            r#"{\"password\":\"[redacted]\"}"#,
        ),
        (r#"{\"token\":123}"#, r#"{\"token\":[redacted]}"#),
        ("password: hunter2", "password: [redacted]"),
        ("Password: hunter2.", "Password: [redacted]."),
        ("password: hunter", "password: hunter"),
        ("password: \"hunter\"", "password: \"[redacted]\""),
        ("token = abc1", "token = [redacted]"),
        ("token =abc", "token =abc"),
        ("session:abc", "session:[redacted]"),
        ("Session: expired", "Session: expired"),
        (
            "Config { token: Some(\"abc\") }",
            "Config { token: Some(\"[redacted]\") }",
        ),
        ("Config { token: None }", "Config { token: None }"),
        ("user[password]=x", "user[password]=[redacted]"),
        ("'password\"=x", "'password\"=[redacted]"),
        (
            "Cookie: a=1; b=2\nHost: example.com",
            "Cookie: [redacted]\nHost: example.com",
        ),
        ("Set-Cookie: id=a3fWa; HttpOnly", "Set-Cookie: [redacted]"),
        ("cookie=abc;x=1", "cookie=[redacted];x=1"),
        (
            "Authorization: Token ghp_123abc",
            "Authorization: Token [redacted]",
        ),
        ("password: token expired", "password: token expired"),
        ("пароль password=ключ end", "пароль password=[redacted] end"),
        ("password=ключ", "password=[redacted]"),
        ("ключ token=🎉🎉 ключ", "ключ token=[redacted] ключ"),
        ("password=\"unterminated", "password=\"[redacted]"),
        ("password=\"a\nb\"", "password=\"[redacted]\nb\""),
        ("password= user=bob", "password= user=bob"),
    ]);
}

#[test]
fn long_keys_are_not_keys() {
    let key = format!("{}password", "a".repeat(70));
    let text = format!("{key}=hunter2");
    assert_eq!(scrub(&text), text);
}

#[test]
fn rules_see_each_others_output() {
    // Rule 6 redacts `x/y`, after which the URL's authority reaches the
    // `@` and rule 2 redacts its password in the next round.
    let (out, changed) = scrubbed(&scrubber(), "x://u:password:x/y,@host");
    assert!(changed);
    assert_eq!(out, "x://u:[redacted]@host");
    // A bearer token that ran into an AWS key id.
    assert_eq!(
        scrub("Basic abcd1234-ASIAY34FZKBOKMUTVV7A==["),
        "Basic [redacted][redacted]==["
    );
}

#[test]
fn every_rule_at_once() {
    let text = "user bob: password=hunter2 url=https://bob:pw@x.io/ \
                auth Bearer abcdef0123456789 key AKIAIOSFODNN7EXAMPLE \
                jwt eyJhbGci.eyJzdWIi.c2lnbmF0 \
                -----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY----- end";
    assert_eq!(
        scrub(text),
        "user bob: password=[redacted] url=https://bob:[redacted]@x.io/ \
         auth Bearer [redacted] key [redacted] \
         jwt [redacted] \
         [redacted] end"
    );
}

#[test]
fn idempotent_on_all_corpora() {
    let s = scrubber();
    let texts = SECRET_TEXTS
        .iter()
        .map(|(t, _)| *t)
        .chain(HARMLESS_TEXTS.iter().copied());
    for text in texts {
        let mut once = text.to_owned();
        s.scrub_text(&mut once);
        let mut twice = once.clone();
        assert!(!s.scrub_text(&mut twice), "{text:?}: {once:?} -> {twice:?}");
        assert_eq!(once, twice);
    }
}

// --- Robustness ---------------------------------------------------------

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// Fragments that exercise every rule, separators and multibyte text.
const PIECES: &[&str] = &[
    "a",
    "Z",
    "0",
    "7",
    " ",
    "\t",
    "\n",
    "=",
    ":",
    "&",
    ",",
    ";",
    "\"",
    "'",
    "\\",
    "\\\"",
    "/",
    "@",
    "://",
    ".",
    "-",
    "_",
    "?",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    "ключ",
    "🎉",
    "é",
    "eyJ",
    "eyJhbGci",
    "AKIA",
    "ASIAY34FZKBOKMUTVV7A",
    "Bearer ",
    "basic ",
    "-----BEGIN ",
    "PRIVATE KEY-----",
    "-----END ",
    "CERTIFICATE-----",
    "token",
    "password",
    "Password",
    "api_key",
    "Cookie",
    "Some(",
    "None",
    "null",
    "https",
    "user",
    "hunter2",
    "[redacted]",
    "abcdef0123456789",
    "dXNlcjpwYXNz",
    "==",
    "=>",
    "::",
];

fn random_text(rng: &mut Rng, min_len: usize) -> String {
    let mut text = String::new();
    while text.len() < min_len {
        text.push_str(rng.pick(PIECES));
    }
    text
}

#[test]
fn random_texts_do_not_panic_and_are_idempotent() {
    let s = Scrubber::new(&["a".into(), "user".into()]);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let len = (rng.next() % 48) as usize;
        let text = random_text(&mut rng, len);
        let mut once = text.clone();
        s.scrub_text(&mut once);
        let mut twice = once.clone();
        assert!(
            !s.scrub_text(&mut twice),
            "not idempotent: {text:?} -> {once:?} -> {twice:?}"
        );
    }
}

#[test]
fn larger_random_texts_are_idempotent() {
    let s = Scrubber::new(&["a".into()]);
    let mut rng = Rng(7);
    for _ in 0..400 {
        let text = random_text(&mut rng, 16 * 1024);
        let mut once = text.clone();
        s.scrub_text(&mut once);
        let mut twice = once.clone();
        assert!(!s.scrub_text(&mut twice), "not idempotent: {text:?}");
    }
}

#[test]
fn megabyte_of_noise_is_fast() {
    let s = scrubber();
    let mut rng = Rng(42);
    let text = random_text(&mut rng, 1 << 20);
    let started = std::time::Instant::now();
    let mut out = text.clone();
    s.scrub_text(&mut out);
    let mut again = out.clone();
    assert!(!s.scrub_text(&mut again));
    // Linear scanning takes milliseconds even unoptimized; anything
    // quadratic would take hours.
    assert!(
        started.elapsed().as_secs() < 20,
        "took {:?}",
        started.elapsed()
    );
    assert!(out.contains(REDACTED));
}

#[test]
fn adversarial_repetitions_are_fast() {
    let s = scrubber();
    let started = std::time::Instant::now();
    for piece in [
        "a",
        "=",
        ":",
        "a=",
        "token=",
        "token: ",
        "\"token\": \"",
        "://",
        "a://b",
        "@",
        "eyJ",
        "eyJa.",
        "eyJaaaa.eyJaaaa.",
        "Bearer ",
        "bearer bearer",
        "A",
        "AKIA",
        "-----BEGIN ",
        "-----BEGIN PRIVATE KEY-----",
        "-----END ",
        "\\",
        "\\\"",
        "'",
        "Some(",
        "ключ",
    ] {
        let text = piece.repeat((256 * 1024) / piece.len());
        let mut out = text.clone();
        s.scrub_text(&mut out);
        let mut again = out.clone();
        assert!(!s.scrub_text(&mut again), "not idempotent for {piece:?}");
    }
    assert!(
        started.elapsed().as_secs() < 30,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn multibyte_text_around_every_rule() {
    let s = scrubber();
    for secret in [
        "password=x",
        "Bearer abcdef0123456789",
        "eyJhbGci.eyJzdWIi.c2lnbmF0",
        "AKIAIOSFODNN7EXAMPLE",
        "https://u:p@h",
        "-----BEGIN PRIVATE KEY-----k-----END PRIVATE KEY-----",
    ] {
        for around in ["é", "ключ", "🎉", "\u{301}", "日本"] {
            let text = format!("{around}{secret}{around} {around}{secret}");
            let (out, changed) = scrubbed(&s, &text);
            assert!(changed, "{text:?}");
            assert!(out.contains(REDACTED), "{text:?} -> {out:?}");
            assert!(out.starts_with(around) || out.starts_with(REDACTED));
        }
    }
}

// --- JSON values and entries --------------------------------------------

#[test]
fn nested_json() {
    let s = scrubber();
    let mut v = json!({
        "db": {"password": "x", "port": 5432},
        "headers": [{"Authorization": "Bearer abc.def"}],
        "note": "token=abc",
        "token_count": 5,
    });
    assert!(s.scrub_value(&mut v));
    assert_eq!(
        v,
        json!({
            "db": {"password": "[redacted]", "port": 5432},
            "headers": [{"Authorization": "[redacted]"}],
            "note": "token=[redacted]",
            "token_count": 5,
        })
    );
    assert!(!s.scrub_value(&mut v), "second scrub changed something");
}

#[test]
fn values_under_secret_keys_of_any_type() {
    let s = scrubber();
    let mut v = json!({
        "pin": 1234,
        "api_key": 123456,
        "secret": true,
        "token": null,
        "credentials": {"user": "bob", "password": "x"},
        "cookies": ["a=1", "b=2"],
        "session": 1.5,
        "password": "[redacted]",
    });
    assert!(s.scrub_value(&mut v));
    assert_eq!(
        v,
        json!({
            "pin": 1234,
            "api_key": "[redacted]",
            "secret": "[redacted]",
            "token": null,
            "credentials": "[redacted]",
            "cookies": "[redacted]",
            "session": "[redacted]",
            "password": "[redacted]",
        })
    );
}

#[test]
fn scalars_and_unchanged_values() {
    let s = scrubber();
    let mut v = json!("Bearer abcdef0123456789");
    assert!(s.scrub_value(&mut v));
    assert_eq!(v, json!("Bearer [redacted]"));
    for mut v in [
        json!(null),
        json!(1),
        json!(true),
        json!("plain text"),
        json!([1, "two", {"token_count": 3, "author": "me"}]),
        json!({"token": null}),
        json!({}),
    ] {
        let before = v.clone();
        assert!(!s.scrub_value(&mut v));
        assert_eq!(v, before);
    }
}

#[test]
fn very_deep_values_do_not_overflow() {
    let s = scrubber();
    // Built by hand: `json!` would serialize the inner value again.
    let mut v = json!("password=x");
    for _ in 0..50_000 {
        let mut map = serde_json::Map::new();
        map.insert("n".to_owned(), v);
        v = Value::Array(vec![Value::Object(map)]);
    }
    assert!(s.scrub_value(&mut v));
    // Take it apart iteratively too: the default drop would recurse.
    let mut stack = vec![v];
    let mut found = false;
    while let Some(v) = stack.pop() {
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.into_iter().map(|(_, v)| v)),
            Value::String(text) => found |= text == "password=[redacted]",
            _ => {}
        }
    }
    assert!(found);
}

#[test]
fn entries() {
    let s = scrubber();
    let mut value = String::from("k-123");
    assert!(s.scrub_entry("api_key", &mut value));
    assert_eq!(value, REDACTED);
    assert!(!s.scrub_entry("api_key", &mut value));
    let mut value = String::from("url https://u:pw@h");
    assert!(s.scrub_entry("component", &mut value));
    assert_eq!(value, "url https://u:[redacted]@h");
    let mut value = String::from("ingest");
    assert!(!s.scrub_entry("component", &mut value));
    assert_eq!(value, "ingest");
    let mut value = String::from("5");
    assert!(!s.scrub_entry("token_count", &mut value));
    let mut value = String::new();
    assert!(s.scrub_entry("password", &mut value));
    assert_eq!(value, REDACTED);
}
