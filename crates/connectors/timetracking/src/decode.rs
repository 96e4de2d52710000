//! Turning the bytes of an export into UTF-8 text, whatever encoding the export was saved in.

use std::io::Read;

use encoding_rs_io::DecodeReaderBytesBuilder;

/// The encodings an export can arrive in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceEncoding {
    Utf8,
    Utf8WithBom,
    Utf16Le,
    Utf16Be,
}

impl SourceEncoding {
    pub fn label(self) -> &'static str {
        match self {
            SourceEncoding::Utf8 => "UTF-8",
            SourceEncoding::Utf8WithBom => "UTF-8 with byte-order mark",
            SourceEncoding::Utf16Le => "UTF-16LE",
            SourceEncoding::Utf16Be => "UTF-16BE",
        }
    }
}

/// Detects the encoding from a byte-order mark, or from the zero bytes that UTF-16 puts beside
/// every ASCII character when a file has no mark.
pub fn detect(bytes: &[u8]) -> SourceEncoding {
    match bytes {
        [0xEF, 0xBB, 0xBF, ..] => SourceEncoding::Utf8WithBom,
        [0xFF, 0xFE, ..] => SourceEncoding::Utf16Le,
        [0xFE, 0xFF, ..] => SourceEncoding::Utf16Be,
        // A CSV header starts with an ASCII letter or quote, so UTF-16 shows a zero byte on
        // one side of it.
        [first, 0, ..] if *first != 0 => SourceEncoding::Utf16Le,
        [0, second, ..] if *second != 0 => SourceEncoding::Utf16Be,
        _ => SourceEncoding::Utf8,
    }
}

/// Returns the export as UTF-8 bytes without a byte-order mark.
///
/// UTF-8 input passes through unchanged, so invalid sequences stay invalid and the CSV reader
/// rejects the rows that contain them instead of silently replacing characters.
pub fn to_utf8(bytes: &[u8], encoding: SourceEncoding) -> std::io::Result<Vec<u8>> {
    let explicit = match encoding {
        SourceEncoding::Utf16Le => Some(encoding_rs::UTF_16LE),
        SourceEncoding::Utf16Be => Some(encoding_rs::UTF_16BE),
        SourceEncoding::Utf8 | SourceEncoding::Utf8WithBom => None,
    };
    let mut decoder = DecodeReaderBytesBuilder::new()
        .encoding(explicit)
        .bom_override(true)
        .strip_bom(true)
        .utf8_passthru(true)
        .build(bytes);
    let mut text = Vec::with_capacity(bytes.len());
    decoder.read_to_end(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16le(text: &str, bom: bool) -> Vec<u8> {
        let mut bytes = if bom { vec![0xFF, 0xFE] } else { vec![] };
        for unit in text.encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn utf8_bom_is_stripped() {
        let bytes = b"\xEF\xBB\xBFUser,Email\n";
        let encoding = detect(bytes);
        assert_eq!(encoding, SourceEncoding::Utf8WithBom);
        assert_eq!(to_utf8(bytes, encoding).unwrap(), b"User,Email\n");
    }

    #[test]
    fn utf16_with_and_without_bom() {
        for bom in [true, false] {
            let bytes = utf16le("User,Emaïl\n", bom);
            let encoding = detect(&bytes);
            assert_eq!(encoding, SourceEncoding::Utf16Le, "bom: {bom}");
            let text = to_utf8(&bytes, encoding).unwrap();
            assert_eq!(String::from_utf8(text).unwrap(), "User,Emaïl\n");
        }
    }

    #[test]
    fn invalid_utf8_passes_through() {
        let bytes = b"User\n\xFFname\n";
        assert_eq!(to_utf8(bytes, detect(bytes)).unwrap(), bytes.to_vec());
    }
}
