//! Gzip (RFC 1952) request bodies: raw deflate from `miniz_oxide` (already
//! in the tree through `backtrace`) between a gzip header and a CRC-32 and
//! size trailer.

/// Bodies smaller than this are sent as they are: at a few hundred bytes
/// the header and trailer eat most of the gain, and the collector's
/// decompression costs more than the bytes saved.
pub(crate) const MIN_BYTES: usize = 1024;

/// Deflate level: 6 is zlib's default, a good balance of time and size
/// for JSON.
const LEVEL: u8 = 6;

/// `body` compressed as a gzip member.
pub(crate) fn gzip(body: &[u8]) -> Vec<u8> {
    let deflated = miniz_oxide::deflate::compress_to_vec(body, LEVEL);
    let mut out = Vec::with_capacity(deflated.len() + 18);
    // Magic, deflate, no flags, no modification time, no extra flags, OS unknown.
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    out.extend_from_slice(&deflated);
    out.extend_from_slice(&crc32(body).to_le_bytes());
    // ISIZE: the input's length modulo 2^32.
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out
}

/// `body`, gzipped when it is big enough to gain from it, with the
/// `Content-Encoding` to send it with.
pub(crate) fn maybe_gzip(body: Vec<u8>) -> (Vec<u8>, Option<&'static str>) {
    if body.len() < MIN_BYTES {
        (body, None)
    } else {
        (gzip(&body), Some("gzip"))
    }
}

/// The CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) table, built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// The CRC-32 gzip's trailer carries.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc = CRC_TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn gzip_round_trips_with_its_trailer() {
        let body = br#"{"resourceLogs":[{"scopeLogs":[]}]}"#.repeat(100);
        let gz = gzip(&body);
        assert!(gz.len() < body.len() / 4, "{} of {}", gz.len(), body.len());
        assert_eq!(&gz[..3], &[0x1f, 0x8b, 8]);
        let n = gz.len();
        let inflated = miniz_oxide::inflate::decompress_to_vec(&gz[10..n - 8]).unwrap();
        assert_eq!(inflated, body);
        assert_eq!(gz[n - 8..n - 4], crc32(&body).to_le_bytes());
        assert_eq!(gz[n - 4..], (body.len() as u32).to_le_bytes());
    }

    #[test]
    fn small_bodies_stay_as_they_are() {
        let (body, encoding) = maybe_gzip(b"[]".to_vec());
        assert_eq!((body.as_slice(), encoding), (&b"[]"[..], None));
        let (_, encoding) = maybe_gzip(vec![b'x'; MIN_BYTES]);
        assert_eq!(encoding, Some("gzip"));
    }
}
