//! FNV-1a: a small hash whose values are stable across runs, platforms and
//! Rust versions, for what is kept or compared between versions (report
//! fingerprints, spool directory names).

/// FNV-1a, 64 bits, fed in pieces.
#[derive(Clone, Copy)]
pub(crate) struct Fnv1a64(u64);

impl Fnv1a64 {
    /// The hash of nothing (the FNV offset basis).
    pub(crate) fn new() -> Self {
        Fnv1a64(0xcbf2_9ce4_8422_2325)
    }

    /// The hash continued over `bytes`.
    pub(crate) fn bytes(mut self, bytes: &[u8]) -> Self {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self
    }

    /// A field: its bytes and a separator no UTF-8 text contains.
    pub(crate) fn field(self, text: &str) -> Self {
        self.bytes(text.as_bytes()).bytes(&[0xff])
    }

    /// The hash so far.
    pub(crate) fn finish(self) -> u64 {
        self.0
    }
}

/// FNV-1a, 32 bits, of `bytes`.
pub(crate) fn fnv1a_32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h: u32, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_test_vectors() {
        assert_eq!(fnv1a_32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a_32(b"foobar"), 0xbf9c_f968);
        assert_eq!(Fnv1a64::new().finish(), 0xcbf2_9ce4_8422_2325);
        assert_eq!(Fnv1a64::new().bytes(b"a").finish(), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            Fnv1a64::new().bytes(b"foo").bytes(b"bar").finish(),
            0x8594_4171_f739_67e8
        );
    }

    #[test]
    fn a_field_ends_with_its_separator() {
        assert_eq!(
            Fnv1a64::new().field("ab").finish(),
            Fnv1a64::new().bytes(b"ab\xff").finish()
        );
    }
}
