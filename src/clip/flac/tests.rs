//! Every encoded stream is decoded again with claxon (which checks both CRCs) and compared
//! sample for sample, with STREAMINFO and the MD5 checked against the input.

use std::io::Cursor;

use md5::{Digest, Md5};
use proptest::prelude::*;

use super::*;

/// A small deterministic generator (tests must not depend on a seed source).
fn noise(n: usize, bits: u32, seed: u64) -> Vec<i32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let limit = 1i64 << (bits - 1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ((x % (2 * limit as u64)) as i64 - limit) as i32
        })
        .collect()
}

fn sine(n: usize, bits: u32, channels: usize) -> Vec<i32> {
    let amplitude = ((1i64 << (bits - 1)) - 1) as f64 * 0.8;
    (0..n * channels)
        .map(|i| {
            let t = (i / channels) as f64;
            let f = 0.01 * (1 + i % channels) as f64;
            (amplitude * (t * f).sin()).round() as i32
        })
        .collect()
}

fn md5_of(samples: &[i32], bits: u32) -> [u8; 16] {
    let bytes = bits.div_ceil(8) as usize;
    let mut md5 = Md5::new();
    for &s in samples {
        md5.update(&s.to_le_bytes()[..bytes]);
    }
    md5.finalize().into()
}

/// Encodes, decodes with claxon and checks everything a reader relies on.
fn round_trip(samples: &[i32], channels: u16, bits: u32, rate: u32) -> Vec<u8> {
    let bytes = encode(samples, channels, bits, rate).unwrap();
    let mut reader = claxon::FlacReader::new(Cursor::new(&bytes)).unwrap();
    let info = reader.streaminfo();
    assert_eq!(info.sample_rate, rate);
    assert_eq!(info.channels, u32::from(channels));
    assert_eq!(info.bits_per_sample, bits);
    assert_eq!(
        info.samples,
        Some((samples.len() / usize::from(channels)) as u64)
    );
    assert_eq!(info.min_block_size, BLOCK_SIZE as u16);
    assert_eq!(info.max_block_size, BLOCK_SIZE as u16);
    assert_eq!(info.md5sum, md5_of(samples, bits));
    let decoded: Vec<i32> = reader.samples().map(|s| s.unwrap()).collect();
    assert_eq!(decoded.len(), samples.len());
    assert!(decoded == samples, "decoded samples differ");
    bytes
}

#[test]
fn noise_sines_silence_and_extremes_round_trip_at_every_depth() {
    for bits in BITS {
        let max = (1i32 << (bits - 1)) - 1;
        let min = -(1i32 << (bits - 1));
        round_trip(&noise(10_000, bits, u64::from(bits)), 1, bits, 64_000);
        round_trip(&sine(9_000, bits, 1), 1, bits, 64_000);
        round_trip(&vec![0; 5_000], 1, bits, 64_000);
        // Full-scale square waves: the worst case for every predictor (verbatim wins).
        let square: Vec<i32> = (0..8_192)
            .map(|i| if i % 2 == 0 { max } else { min })
            .collect();
        round_trip(&square, 1, bits, 64_000);
        let steps: Vec<i32> = (0..6_000)
            .map(|i| if i % 300 < 150 { max } else { min })
            .collect();
        round_trip(&steps, 1, bits, 64_000);
    }
}

#[test]
fn every_block_length_edge_round_trips() {
    for n in [
        1,
        2,
        4,
        5,
        31,
        32,
        33,
        255,
        256,
        257,
        4_095,
        4_096,
        4_097,
        8_192 + 17,
    ] {
        round_trip(&sine(n, 24, 1), 1, 24, 64_000);
        round_trip(&noise(n, 16, n as u64), 1, 16, 64_000);
    }
}

#[test]
fn several_channels_are_interleaved_back() {
    for channels in [2u16, 3, 8] {
        let samples = sine(5_000, 24, usize::from(channels));
        round_trip(&samples, channels, 24, 48_000);
    }
}

#[test]
fn every_sample_rate_coding_round_trips() {
    // Listed codes, whole kHz, Hz, tens of Hz, and "see STREAMINFO".
    for rate in [
        8_000, 44_100, 96_000, 64_000, 128_000, 22_051, 256_000, 100_001, 655_350, 1,
    ] {
        round_trip(&sine(5_000, 16, 1), 1, 16, rate);
    }
}

#[test]
fn variable_blocksize_streams_round_trip() {
    let samples = sine(20_000, 24, 1);
    let bytes = encode_blocks(&samples, 1, 24, 64_000, Some(&[1_000, 4_608, 333])).unwrap();
    let mut reader = claxon::FlacReader::new(Cursor::new(&bytes)).unwrap();
    let info = reader.streaminfo();
    // The last, shorter block does not count for the minimum.
    assert_eq!((info.min_block_size, info.max_block_size), (333, 4_608));
    assert_eq!(info.md5sum, md5_of(&samples, 24));
    let decoded: Vec<i32> = reader.samples().map(|s| s.unwrap()).collect();
    assert!(decoded == samples);
    // Frame headers carry sample numbers: the third frame starts at sample 5,608.
    let mut frames = claxon::FlacReader::new(Cursor::new(&bytes)).unwrap();
    let mut blocks = frames.blocks();
    let mut buffer = Vec::new();
    let mut times = Vec::new();
    while let Some(block) = blocks.read_next_or_eof(buffer).unwrap() {
        times.push(block.time());
        buffer = block.into_buffer();
    }
    assert_eq!(&times[..4], &[0, 1_000, 5_608, 5_941]);
    assert_eq!(
        encode_blocks(&samples, 1, 24, 64_000, Some(&[15])).unwrap_err(),
        "block sizes [15] (each 16 to 65535)"
    );
}

#[test]
fn a_tonal_24_bit_clip_compresses() {
    let samples = sine(64_000, 24, 1);
    let bytes = round_trip(&samples, 1, 24, 64_000);
    let pcm = samples.len() * 3;
    assert!(
        bytes.len() * 2 < pcm,
        "{} bytes for {pcm} bytes of PCM",
        bytes.len()
    );
}

#[test]
fn noise_costs_little_more_than_its_pcm() {
    let samples = noise(40_000, 24, 7);
    let bytes = round_trip(&samples, 1, 24, 64_000);
    let pcm = samples.len() * 3;
    assert!(
        bytes.len() < pcm + pcm / 50,
        "{} bytes for {pcm}",
        bytes.len()
    );
}

#[test]
fn frame_numbers_use_flacs_utf8_coding() {
    let cases: [(u64, &[u8]); 7] = [
        (0, &[0x00]),
        (0x7F, &[0x7F]),
        (0x80, &[0xC2, 0x80]),
        (0x7FF, &[0xDF, 0xBF]),
        (0x800, &[0xE0, 0xA0, 0x80]),
        (0x10000, &[0xF0, 0x90, 0x80, 0x80]),
        ((1 << 36) - 1, &[0xFE, 0xBF, 0xBF, 0xBF, 0xBF, 0xBF, 0xBF]),
    ];
    for (value, want) in cases {
        let mut bytes = Vec::new();
        push_utf8_number(&mut bytes, value);
        assert_eq!(bytes, want, "{value:#x}");
    }
}

#[test]
fn crcs_match_the_format_check_values() {
    // The standard check input "123456789": CRC-8 (poly 0x07) = 0xF4, CRC-16/UMTS = 0xFEE8.
    assert_eq!(crc8(b"123456789"), 0xF4);
    assert_eq!(crc16(b"123456789"), 0xFEE8);
    // The 8-byte steps agree with a bit-by-bit CRC at every length and alignment.
    let bytes: Vec<u8> = noise(100, 8, 3).iter().map(|&s| s as u8).collect();
    for start in 0..9 {
        for end in start..bytes.len() {
            let slow = bytes[start..end].iter().fold(0u16, |crc, &b| {
                (0..8).fold(crc ^ (u16::from(b) << 8), |c, _| {
                    if c & 0x8000 != 0 {
                        (c << 1) ^ 0x8005
                    } else {
                        c << 1
                    }
                })
            });
            assert_eq!(crc16(&bytes[start..end]), slow, "{start}..{end}");
        }
    }
}

#[test]
fn bad_parameters_are_errors_that_say_what_is_allowed() {
    let ok = sine(100, 16, 1);
    let cases: [(&[i32], u16, u32, u32, &str); 7] = [
        (
            &ok,
            1,
            17,
            64_000,
            "17-bit audio (FLAC clips are written with 8, 12, 16, 20 or 24 bits)",
        ),
        (&ok, 9, 16, 64_000, "9 channels (FLAC holds 1 to 8)"),
        (
            &ok,
            1,
            16,
            0,
            "a sample rate of 0 Hz (FLAC holds 1 to 655350 Hz)",
        ),
        (
            &ok,
            1,
            16,
            655_351,
            "a sample rate of 655351 Hz (FLAC holds 1 to 655350 Hz)",
        ),
        (
            &[],
            1,
            16,
            8_000,
            "0 samples do not make whole frames of 1 channels",
        ),
        (
            &[1, 2, 3],
            2,
            16,
            8_000,
            "3 samples do not make whole frames of 2 channels",
        ),
        (
            &[0, 40_000],
            1,
            16,
            8_000,
            "sample 1 (40000) does not fit in 16 bits",
        ),
    ];
    for (samples, channels, bits, rate, want) in cases {
        assert_eq!(encode(samples, channels, bits, rate).unwrap_err(), want);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_audio_round_trips(
        bits in proptest::sample::select(BITS.to_vec()),
        channels in 1u16..=3,
        raw in proptest::collection::vec(any::<i32>(), 1..6_000),
        smooth in any::<bool>(),
    ) {
        let shift = 32 - bits;
        let width = usize::from(channels);
        let len = raw.len() / width * width;
        prop_assume!(len > 0);
        let mut samples: Vec<i32> = raw[..len].iter().map(|&s| s >> shift).collect();
        if smooth {
            // A random walk clamped to the range: predictable, like real audio.
            let limit = 1i32 << (bits - 1);
            let mut level = 0i32;
            for s in &mut samples {
                level = (level + (*s >> 3)).clamp(-limit, limit - 1);
                *s = level;
            }
        }
        round_trip(&samples, channels, bits, 64_000);
    }
}
