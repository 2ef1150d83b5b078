//! Unit tests of the report model.
use super::*;

#[test]
fn report_ids_are_32_lowercase_hex_and_round_trip() {
    let id = ReportId::random();
    let hex = id.to_hex();
    assert_eq!(hex.len(), 32);
    assert!(hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert_eq!(ReportId::parse(&hex), Some(id));
    assert_eq!(&hex[12..13], "4", "uuid version nibble");
    assert_ne!(ReportId::random(), id);
    assert_eq!(ReportId::parse("xyz"), None);
}

#[test]
fn debug_ids_are_the_build_id_as_a_little_endian_guid() {
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    // The example in Sentry's documentation of ELF debug identifiers.
    assert_eq!(
        debug_id(&hex("f1c3bcc0279865fe3058404b2831d9e64135386c")),
        "c0bcc3f1-9827-fe65-3058-404b2831d9e6"
    );
    assert_eq!(
        debug_id(&hex("c0ffee0011223344556677889900aabbccddeeff")),
        "00eeffc0-2211-4433-5566-77889900aabb"
    );
    // A short build id is padded with zeros.
    assert_eq!(
        debug_id(&hex("c0ffee01020304")),
        "01eeffc0-0302-0004-0000-000000000000"
    );
    assert_eq!(debug_id(&[]), "00000000-0000-0000-0000-000000000000");
}

#[test]
fn images_contain_their_address_range() {
    let image = Image {
        ty: "elf".into(),
        code_file: "/bin/app".into(),
        code_id: None,
        debug_id: None,
        image_addr: "0x1000".into(),
        image_size: 0x100,
    };
    assert!(image.contains(0x1000));
    assert!(image.contains(0x10ff));
    assert!(!image.contains(0x1100));
    assert!(!image.contains(0xfff));
    assert_eq!(parse_hex("0x1f"), Some(31));
    assert_eq!(parse_hex("1f"), None);
}

#[test]
fn levels_serialize_lowercase() {
    assert_eq!(
        serde_json::to_string(&Level::Warning).unwrap(),
        "\"warning\""
    );
    assert_eq!(serde_json::to_string(&Kind::Panic).unwrap(), "\"panic\"");
}
