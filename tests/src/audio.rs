//! Audio the tests play into phones and find again in what phones heard: 16-bit PCM WAV files
//! and the level of one frequency in them (Goertzel), so a test can tell a phone heard the far
//! end's tone, and not only that packets arrived.
use std::path::Path;

pub const RATE: u32 = 8000;

/// Writes `secs` of a sine at `hz` (about -12 dBFS), 8 kHz mono 16-bit PCM.
pub fn write_tone(path: &Path, hz: f64, secs: u32) {
    let samples: Vec<i16> = (0..RATE * secs)
        .map(|n| (8000.0 * (std::f64::consts::TAU * hz * f64::from(n) / f64::from(RATE)).sin()) as i16)
        .collect();
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut wav = Vec::with_capacity(44 + data.len());
    let u32le = |v: u32| v.to_le_bytes();
    let data_len = u32::try_from(data.len()).expect("a short file");
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&u32le(36 + data_len));
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&u32le(16));
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&u32le(RATE));
    wav.extend_from_slice(&u32le(RATE * 2));
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&u32le(data_len));
    wav.extend_from_slice(&data);
    std::fs::write(path, wav).expect("write the tone file");
}

/// The first channel of a 16-bit PCM WAV file and its sample rate; None when it is not one.
/// Chunks are walked, so players that add chunks (LIST, fact) before `data` are read too.
pub fn read(path: &Path) -> Option<(u32, Vec<i16>)> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.get(..4)? != b"RIFF" || bytes.get(8..12)? != b"WAVE" {
        return None;
    }
    let (mut rate, mut channels, mut at) = (0u32, 1usize, 12usize);
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes(head[4..8].try_into().ok()?) as usize;
        let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
        match &head[..4] {
            b"fmt " => {
                channels = usize::from(u16::from_le_bytes(body.get(2..4)?.try_into().ok()?)).max(1);
                rate = u32::from_le_bytes(body.get(4..8)?.try_into().ok()?);
                if u16::from_le_bytes(body.get(14..16)?.try_into().ok()?) != 16 {
                    return None;
                }
            }
            b"data" => {
                let samples = body.chunks_exact(2 * channels).map(|f| i16::from_le_bytes([f[0], f[1]])).collect();
                return (rate > 0).then_some((rate, samples));
            }
            _ => {}
        }
        at += 8 + len + len % 2;
    }
    None
}

/// The amplitude of `hz` in `samples` (Goertzel, per sample: a full-scale sine gives about 16,000).
pub fn level(samples: &[i16], rate: u32, hz: f64) -> f64 {
    let k = 2.0 * (std::f64::consts::TAU * hz / f64::from(rate)).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s0 = f64::from(x) + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - k * s1 * s2).max(0.0).sqrt() / samples.len().max(1) as f64
}

/// How long `hz` is clearly present in the file (100 ms windows whose level passes a tenth of
/// the test tones'), in seconds; 0 for a missing or unreadable file.
pub fn seconds_of(path: &Path, hz: f64) -> f64 {
    let Some((rate, samples)) = read(path) else { return 0.0 };
    let window = (rate / 10) as usize;
    let present = samples.chunks_exact(window).filter(|w| level(w, rate, hz) > 400.0).count();
    present as f64 / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_tone_is_found_at_its_frequency_only() {
        let dir = std::env::temp_dir().join(format!("holdfast-audio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tone.wav");
        write_tone(&path, 600.0, 2);
        assert_eq!(seconds_of(&path, 600.0), 2.0);
        assert_eq!(seconds_of(&path, 1000.0), 0.0);
        assert_eq!(seconds_of(&dir.join("missing.wav"), 600.0), 0.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
