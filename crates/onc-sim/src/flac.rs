//! Audio writers of the simulator: an [`ArchiveFile`] → the bytes of its archived audio, a 24-bit
//! mono FLAC ([`flac_bytes`]) or a 24-bit PCM WAV ([`wav_bytes`]), whose sample `i` is
//! `oracle::audio_sample(device, file.sample_time_ns(i))`.
//!
//! FLAC: encoded by `flacenc` with a fixed block size of 4096, after which the STREAMINFO minimum
//! block size is patched (flacenc sets it to the length of the last, shorter block —
//! yotarok/flacenc-rs#242 — which tells seeking readers the stream has variable block sizes).

use crate::archive::ArchiveFile;
use crate::oracle::AudioOracle;
use flacenc::component::BitRepr;
use flacenc::error::Verify;

/// Fixed FLAC block size (the reference encoder's default and flacenc's).
const BLOCK_SIZE: usize = 4096;
/// FLAC stores the sample rate in 20 bits.
const MAX_FLAC_RATE: u32 = 655_350;
/// FLAC's STREAMINFO holds at most 2^36 − 1 samples; we also refuse anything above ~1 h at
/// 655 kHz (9 GiB of i32s) rather than abort on allocation.
const MAX_SAMPLES: u64 = 1 << 31;

/// The file's oracle samples, in order.
fn samples(file: &ArchiveFile, count: u64) -> Vec<i32> {
    let oracle = AudioOracle::new(&file.device);
    (0..count)
        .map(|i| oracle.sample(file.sample_time_ns(i)))
        .collect()
}

/// A 24-bit mono FLAC of the file's samples (sample i = oracle::audio_sample(device,
/// file.sample_time_ns(i))), block size 4096, STREAMINFO min block size patched to 4096.
///
/// Errors on a sample rate FLAC cannot store (0 or above 655350 Hz), an absurd sample count, or
/// an encoder failure.
pub fn flac_bytes(file: &ArchiveFile) -> Result<Vec<u8>, String> {
    if file.sample_rate == 0 || file.sample_rate > MAX_FLAC_RATE {
        return Err(format!(
            "FLAC cannot store sample rate {} Hz",
            file.sample_rate
        ));
    }
    if file.samples > MAX_SAMPLES {
        return Err(format!("{} samples is too many for one file", file.samples));
    }
    let data = samples(file, file.samples);
    let mut config = flacenc::config::Encoder::default();
    config.block_size = BLOCK_SIZE;
    let config = config
        .into_verified()
        .map_err(|(_, e)| format!("FLAC encoder config: {e}"))?;
    let source = flacenc::source::MemSource::from_samples(&data, 1, 24, file.sample_rate as usize);
    let stream = flacenc::encode_with_fixed_block_size(&config, source, BLOCK_SIZE)
        .map_err(|e| format!("FLAC encoding failed: {e}"))?;
    let mut sink = flacenc::bitsink::ByteSink::new();
    stream
        .write(&mut sink)
        .map_err(|e| format!("FLAC serialisation failed: {e:?}"))?;
    let mut bytes = sink.as_slice().to_vec();
    patch_min_block_size(&mut bytes)?;
    Ok(bytes)
}

/// WAV's RIFF sizes are u32: the data chunk holds at most this many 3-byte samples.
const MAX_WAV_SAMPLES: u64 = (u32::MAX as u64 - 36) / 3;

/// The same samples as a 24-bit mono PCM WAV (44-byte canonical header, little-endian samples).
///
/// Samples beyond WAV's 4 GiB limit are not written (the header stays consistent); a zero sample
/// rate gives a header with rate 0 and the samples all at the file start's instant.
pub fn wav_bytes(file: &ArchiveFile) -> Vec<u8> {
    let n = file.samples.min(MAX_WAV_SAMPLES);
    let data_len = (n * 3) as u32; // <= u32::MAX - 36 by MAX_WAV_SAMPLES
    let mut out = Vec::new();
    // Best effort: pre-size when memory allows; a failure just means the Vec grows as it goes.
    let _ = out.try_reserve(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVE");
    out.extend_from_slice(b"fmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&file.sample_rate.to_le_bytes());
    out.extend_from_slice(&file.sample_rate.wrapping_mul(3).to_le_bytes()); // byte rate
    out.extend_from_slice(&3u16.to_le_bytes()); // block align
    out.extend_from_slice(&24u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    let oracle = AudioOracle::new(&file.device);
    for i in 0..n {
        let le = oracle.sample(file.sample_time_ns(i)).to_le_bytes();
        out.extend_from_slice(le.get(..3).unwrap_or(&[0, 0, 0]));
    }
    out
}

/// Set STREAMINFO's minimum block size to its maximum block size.
///
/// flacenc writes the length of the last, shorter block as the minimum (yotarok/flacenc-rs#242),
/// which tells seeking readers the stream has variable block sizes. With a fixed block size FLAC
/// requires min == max (the last block may be shorter). Layout: "fLaC", a 4-byte metadata block
/// header whose low 7 bits of the first byte are the type (0 = STREAMINFO, always first), then
/// STREAMINFO: min block size (u16 BE, bytes 8..10), max block size (u16 BE, bytes 10..12).
fn patch_min_block_size(bytes: &mut [u8]) -> Result<(), String> {
    let max = match bytes.get(..12) {
        Some([b'f', b'L', b'a', b'C', t, _, _, _, _, _, hi, lo]) if t & 0x7F == 0 => [*hi, *lo],
        _ => return Err("flacenc output does not start with fLaC + STREAMINFO".into()),
    };
    match bytes.get_mut(8..10) {
        Some(min) => {
            min.copy_from_slice(&max);
            Ok(())
        }
        None => Err("flacenc output too short".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::audio_sample;

    fn short_file(samples: u64) -> ArchiveFile {
        ArchiveFile {
            device: "ICLISTENHF6324".into(),
            start_ms: 1_711_929_667_123,
            samples,
            sample_rate: 8000,
        }
    }

    #[test]
    fn flac_decodes_to_oracle_samples() {
        // 5 full blocks and a shorter last one.
        let file = short_file(5 * 4096 + 1234);
        let bytes = flac_bytes(&file).unwrap();
        let mut reader = claxon::FlacReader::new(std::io::Cursor::new(&bytes)).unwrap();
        let info = reader.streaminfo();
        assert_eq!(info.bits_per_sample, 24);
        assert_eq!(info.sample_rate, 8000);
        assert_eq!(info.channels, 1);
        assert_eq!(info.samples, Some(file.samples));
        assert_eq!(info.min_block_size, 4096);
        assert_eq!(info.max_block_size, 4096);
        let decoded: Vec<i32> = reader.samples().map(|s| s.unwrap()).collect();
        assert_eq!(decoded.len() as u64, file.samples);
        for (i, s) in decoded.iter().enumerate() {
            assert_eq!(
                *s,
                audio_sample(&file.device, file.sample_time_ns(i as u64)),
                "sample {i}"
            );
        }
        // Raw header bytes too (the patch itself).
        assert_eq!(bytes.get(8..12), Some(&[0x10, 0x00, 0x10, 0x00][..]));
    }

    #[test]
    fn flac_edge_cases() {
        assert!(
            flac_bytes(&ArchiveFile {
                sample_rate: 0,
                ..short_file(10)
            })
            .is_err()
        );
        assert!(
            flac_bytes(&ArchiveFile {
                samples: u64::MAX,
                ..short_file(10)
            })
            .is_err()
        );
        // A file shorter than one block still decodes; output is deterministic (flacenc may
        // encode on several threads).
        let file = short_file(100);
        let bytes = flac_bytes(&file).unwrap();
        assert_eq!(bytes, flac_bytes(&file).unwrap());
        let mut reader = claxon::FlacReader::new(std::io::Cursor::new(&bytes)).unwrap();
        assert_eq!(reader.samples().count(), 100);
    }

    #[test]
    fn patch_rejects_garbage() {
        assert!(patch_min_block_size(&mut []).is_err());
        assert!(patch_min_block_size(&mut [0u8; 40]).is_err());
    }

    #[test]
    fn wav_header_and_samples() {
        let file = short_file(1000);
        let w = wav_bytes(&file);
        assert_eq!(w.len(), 44 + 3000);
        let u32_at = |o: usize| u32::from_le_bytes(w[o..o + 4].try_into().unwrap());
        let u16_at = |o: usize| u16::from_le_bytes(w[o..o + 2].try_into().unwrap());
        assert_eq!(&w[0..4], b"RIFF");
        assert_eq!(u32_at(4), 36 + 3000);
        assert_eq!(&w[8..16], b"WAVEfmt ");
        assert_eq!(u32_at(16), 16);
        assert_eq!(u16_at(20), 1);
        assert_eq!(u16_at(22), 1);
        assert_eq!(u32_at(24), 8000);
        assert_eq!(u32_at(28), 24_000);
        assert_eq!(u16_at(32), 3);
        assert_eq!(u16_at(34), 24);
        assert_eq!(&w[36..40], b"data");
        assert_eq!(u32_at(40), 3000);
        for i in 0..1000usize {
            let b = &w[44 + 3 * i..47 + 3 * i];
            // Sign-extend 24 → 32 bits.
            let v = i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8;
            assert_eq!(v, audio_sample(&file.device, file.sample_time_ns(i as u64)));
        }
    }
}
