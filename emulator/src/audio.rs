//! Recognising uploads by their first bytes, as the service's transcoder
//! would: audio containers for `asset_data`, images for `artwork_data`.

/// How many leading bytes the sniffers look at.
pub const HEAD_LEN: usize = 64;

/// Whether `head` starts like a container the service accepts (AIFF, WAVE,
/// FLAC, Ogg, MP2/MP3, AAC, MP4/M4A, AMR, WMA, CAF).
pub fn is_audio(head: &[u8]) -> bool {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    (at(0, b"RIFF") && at(8, b"WAVE"))
        || (at(0, b"RF64") && at(8, b"WAVE"))
        || (at(0, b"FORM") && (at(8, b"AIFF") || at(8, b"AIFC")))
        || at(0, b"fLaC")
        || at(0, b"OggS")
        || at(0, b"ID3")
        || at(4, b"ftyp")
        || at(0, b"#!AMR")
        || at(0, b"caff")
        || at(0, &[0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11])
        // MPEG audio frame sync (MP1/2/3) and ADTS AAC: eleven set bits.
        || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0)
}

/// Whether `head` starts like a GIF, JPEG or PNG, the artwork formats the
/// spec names.
pub fn is_image(head: &[u8]) -> bool {
    head.starts_with(b"GIF87a")
        || head.starts_with(b"GIF89a")
        || head.starts_with(&[0xFF, 0xD8, 0xFF])
        || head.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A])
}

/// The playing time of a canonical PCM WAVE file, from its header and
/// total size; None for anything else.
pub fn wav_duration_ms(head: &[u8], total_size: u64) -> Option<u64> {
    if !(head.starts_with(b"RIFF") && head.get(8..16) == Some(b"WAVEfmt ")) {
        return None;
    }
    let byte_rate = u32::from_le_bytes(head.get(28..32)?.try_into().ok()?);
    if byte_rate == 0 {
        return None;
    }
    Some(total_size.saturating_sub(44).saturating_mul(1000) / u64::from(byte_rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_containers_are_audio() {
        assert!(is_audio(b"RIFF\x24\x00\x00\x00WAVEfmt "));
        assert!(is_audio(b"FORM\x00\x00\x00\x00AIFF"));
        assert!(is_audio(b"fLaC\x00\x00\x00\x22"));
        assert!(is_audio(b"OggS\x00\x02"));
        assert!(is_audio(b"ID3\x04\x00"));
        assert!(is_audio(&[0xFF, 0xFB, 0x90, 0x64]));
        assert!(is_audio(b"\x00\x00\x00\x20ftypM4A "));
        assert!(!is_audio(b""));
        assert!(!is_audio(b"hello, world"));
        assert!(!is_audio(b"RIFF\x24\x00\x00\x00AVI "));
        assert!(!is_audio(b"\x89PNG\r\n\x1a\n"));
    }

    #[test]
    fn images_are_recognised() {
        assert!(is_image(b"\x89PNG\r\n\x1a\n\x00"));
        assert!(is_image(&[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(is_image(b"GIF89a"));
        assert!(!is_image(b"RIFF"));
    }

    #[test]
    fn wav_duration_from_byte_rate() {
        let mut head = Vec::from(&b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0"[..]);
        head.extend_from_slice(&8000u32.to_le_bytes()); // sample rate
        head.extend_from_slice(&16000u32.to_le_bytes()); // byte rate
        assert_eq!(wav_duration_ms(&head, 44 + 32_000), Some(2000));
        assert_eq!(wav_duration_ms(b"OggS", 100), None);
    }
}
