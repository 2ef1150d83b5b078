//! The loaded binaries a report's frames fall in.
use serde::{Deserialize, Serialize};

/// A loaded binary (the executable or a shared library) that frames fall
/// in: what a server needs to symbolicate the frames' addresses later,
/// against the binary's debug file, found by its build id.
///
/// The fields follow Sentry's `debug_meta.images` entries of type `elf`.
///
/// ```
/// let (_, reports) = crashbox::testing::capture(|| {
///     crashbox::capture_message("where am I", crashbox::Level::Info);
/// });
/// # #[cfg(target_os = "linux")]
/// # {
/// let image = &reports[0].images[0];
/// assert_eq!(image.ty, "elf");
/// assert!(image.image_addr.starts_with("0x"));
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Image {
    /// The image format: `elf`.
    #[serde(rename = "type")]
    pub ty: String,
    /// The binary's path when it was loaded.
    pub code_file: String,
    /// The GNU build id in lowercase hex; `None` when the binary has none.
    #[serde(default)]
    pub code_id: Option<String>,
    /// The build id's first 16 bytes as a GUID (the first three fields
    /// byte-swapped), `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`: the identifier
    /// Sentry files debug information under.
    #[serde(default)]
    pub debug_id: Option<String>,
    /// Where the image's lowest segment was loaded, as `0x` hex.
    pub image_addr: String,
    /// Bytes from `image_addr` to the end of its highest loaded segment.
    pub image_size: u64,
}

impl Image {
    /// The load address as a number (`None` if `image_addr` is not `0x` hex).
    pub fn start(&self) -> Option<u64> {
        parse_hex(&self.image_addr)
    }

    /// Whether `address` falls in the image.
    pub fn contains(&self, address: u64) -> bool {
        self.start()
            .is_some_and(|start| address >= start && address - start < self.image_size)
    }
}

/// Parses `0x`-prefixed hex, as in [`Frame::address`] and [`Image::image_addr`].
pub(crate) fn parse_hex(text: &str) -> Option<u64> {
    let digits = text.strip_prefix("0x")?;
    u64::from_str_radix(digits, 16).ok()
}

/// The debug id Sentry derives from an ELF build id: the first 16 bytes
/// (zero-padded) read as a little-endian GUID.
pub(crate) fn debug_id(build_id: &[u8]) -> String {
    let mut b = [0u8; 16];
    let n = build_id.len().min(16);
    b[..n].copy_from_slice(&build_id[..n]);
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
