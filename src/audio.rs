//! Audio and artwork files on disk: streaming SHA-256 (to notice a changed
//! file without keeping it in memory) and a tiny WAV writer for the demo.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::plan::diff::AudioFile;

/// Hashes a file in fixed-size chunks; memory does not grow with file size.
pub fn digest(path: &Path) -> io::Result<AudioFile> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok(AudioFile {
        sha256: hex(&hasher.finalize()),
        size,
    })
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a mono 8 kHz 16-bit PCM WAV holding a sine tone.
pub fn write_wav(path: &Path, millis: u32, tone_hz: f32) -> io::Result<()> {
    const RATE: u32 = 8000;
    let samples = RATE * millis / 1000;
    let data_len = samples * 2;
    let mut out = BufWriter::new(File::create(path)?);
    out.write_all(b"RIFF")?;
    out.write_all(&(36 + data_len).to_le_bytes())?;
    out.write_all(b"WAVEfmt ")?;
    out.write_all(&16u32.to_le_bytes())?; // fmt chunk size
    out.write_all(&1u16.to_le_bytes())?; // PCM
    out.write_all(&1u16.to_le_bytes())?; // mono
    out.write_all(&RATE.to_le_bytes())?;
    out.write_all(&(RATE * 2).to_le_bytes())?; // byte rate
    out.write_all(&2u16.to_le_bytes())?; // block align
    out.write_all(&16u16.to_le_bytes())?; // bits per sample
    out.write_all(b"data")?;
    out.write_all(&data_len.to_le_bytes())?;
    for i in 0..samples {
        let t = i as f32 / RATE as f32;
        let sample = (t * tone_hz * std::f32::consts::TAU).sin() * 8000.0;
        out.write_all(&(sample as i16).to_le_bytes())?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_is_well_formed_and_digest_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        write_wav(&path, 250, 440.0).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(&bytes[8..12], b"WAVE");
        assert_eq!(bytes.len(), 44 + 2000 * 2);
        let a = digest(&path).unwrap();
        assert_eq!(a.size, bytes.len() as u64);
        assert_eq!(a.sha256, hex(&Sha256::digest(&bytes)));
        write_wav(&path, 250, 880.0).unwrap();
        assert_ne!(digest(&path).unwrap().sha256, a.sha256);
    }
}
