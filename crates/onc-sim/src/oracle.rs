//! Content oracle of the simulator: (device code, absolute time[, frequency]) → the value the
//! simulated device "recorded" (a 24-bit audio sample, a spectrogram PSD cell in dB), plus the
//! spectrogram layout of a source file and the MATLAB datenum conversion.
//!
//! Every value is a pure function of its arguments, so any two files that cover the same instant
//! (an archived FLAC, a WAV, a MAT clip, a re-download after a crash) agree exactly, and tests can
//! check any byte a writer produced against the oracle without keeping state.
//!
//! Determinism across machines: the only floating-point operations used are `+ - * /` and
//! `round`, which IEEE 754 specifies exactly; sines come from [`sin_turns`] (a polynomial), never
//! from the platform's libm (whose last-ulp results differ between platforms). Phases are reduced
//! with integer arithmetic on absolute time, so they do not lose precision in 2030 either.
//! Pseudo-randomness is a splitmix64 hash of (device seed, index, purpose), never an OS source.

use crate::archive::ArchiveFile;

/// splitmix64 finaliser: a fast, well-mixed 64-bit bijection.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A 64-bit seed for a device code. FNV-1a (not blake3) because the audio path calls it once per
/// file and the PSD path once per cell: it must be cheap for ~14-byte codes.
pub(crate) fn device_seed(device: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in device.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    splitmix64(h)
}

/// Hash of (device seed, index, purpose): distinct purposes give independent streams for the
/// same index (e.g. "is file k missing" vs "jitter of file k").
pub(crate) fn hash3(seed: u64, index: u64, purpose: u64) -> u64 {
    splitmix64(seed ^ splitmix64(index ^ splitmix64(purpose)))
}

/// Uniform f64 in [0, 1) from a hash (53 high bits, exact conversion).
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// sin(2π·p) for p = `num` / `den` turns, with `0 <= num < den <= 2^53`.
///
/// Reduced to a quarter wave by symmetry and evaluated with a degree-15 Taylor polynomial
/// (error below 1e-11 on [0, π/2]); only IEEE-exact operations, so bit-identical everywhere.
pub(crate) fn sin_turns(num: u64, den: u64) -> f64 {
    if den == 0 {
        return 0.0;
    }
    let p = (num % den) as f64 / den as f64; // [0, 1)
    let (sign, q) = if p >= 0.5 { (-1.0, p - 0.5) } else { (1.0, p) };
    let q = if q > 0.25 { 0.5 - q } else { q }; // [0, 0.25]
    let x = 2.0 * std::f64::consts::PI * q; // [0, π/2]
    let x2 = x * x;
    // Horner form of x - x^3/3! + x^5/5! - ... - x^15/15!.
    let mut s = -1.0 / 1_307_674_368_000.0; // -1/15!
    s = s * x2 + 1.0 / 6_227_020_800.0; // 1/13!
    s = s * x2 - 1.0 / 39_916_800.0; // -1/11!
    s = s * x2 + 1.0 / 362_880.0; // 1/9!
    s = s * x2 - 1.0 / 5_040.0; // -1/7!
    s = s * x2 + 1.0 / 120.0; // 1/5!
    s = s * x2 - 1.0 / 6.0; // -1/3!
    s = s * x2 + 1.0;
    sign * x * s
}

/// Purposes for [`hash3`] (arbitrary distinct constants).
const P_TONE: u64 = 0x544F_4E45;
const P_NOISE: u64 = 0x4E4F_4953;
const P_NAN: u64 = 0x4E41_4E21;
const P_PSD_NOISE: u64 = 0x5053_444E;
const P_WEATHER: u64 = 0x5745_4154;
const P_SHIP: u64 = 0x5348_4950;

/// Number of tones per device.
const TONES: usize = 3;

/// Full scale of 24-bit audio.
const MAX_24: i64 = (1 << 23) - 1;
const MIN_24: i64 = -(1 << 23);

/// Per-device audio parameters, derived once from the code so generating a whole file (19.2 M
/// samples at 64 kHz) does not re-hash the device name per sample. [`audio_sample`] uses the very
/// same code path, so writers using this struct produce exactly the oracle's samples.
#[derive(Debug, Clone)]
pub struct AudioOracle {
    seed: u64,
    /// Tone frequencies in millihertz (integers, so phases are exact modular arithmetic).
    tones_mhz: [u64; TONES],
    amplitudes: [f64; TONES],
}

/// 1 s in ns times 1 Hz in mHz: phase in turns = t_ns * f_mHz / 1e12.
const PHASE_DEN: u64 = 1_000_000_000_000;
/// Period of the slow amplitude modulation of the second tone (37 s, in ns).
const AM_PERIOD_NS: u64 = 37_000_000_000;
/// A common multiple of both periods (their LCM): reducing absolute time modulo this once, in
/// i128, lets every later step run in u64 (i128 division costs ~50 ns, and a 64 kHz file has
/// 19.2 M samples) without changing any phase.
const REDUCE_NS: i128 = 37 * PHASE_DEN as i128;

impl AudioOracle {
    pub fn new(device: &str) -> Self {
        let seed = device_seed(device);
        // Bands well below 4 kHz so that 8 kHz test files carry every tone without aliasing.
        let bands: [(u64, u64); TONES] = [(100, 400), (400, 1500), (1500, 3000)];
        let mut tones_mhz = [0u64; TONES];
        for (i, (lo, hi)) in bands.iter().enumerate() {
            let span_mhz = (hi - lo) * 1000;
            let h = hash3(seed, i as u64, P_TONE);
            if let Some(slot) = tones_mhz.get_mut(i) {
                *slot = lo * 1000 + h % span_mhz;
            }
        }
        // Sum of amplitudes + noise stays below 3.5e6, far from 2^23 ≈ 8.39e6: never clips.
        let amplitudes = [1.8e6, 1.0e6, 0.6e6];
        AudioOracle {
            seed,
            tones_mhz,
            amplitudes,
        }
    }

    /// Tone frequencies in Hz (used by the PSD oracle to draw the same tones as spectral lines).
    pub fn tone_frequencies_hz(&self) -> [f64; TONES] {
        self.tones_mhz.map(|m| m as f64 / 1000.0)
    }

    /// The sample at absolute time `t_ns`.
    pub fn sample(&self, t_ns: i128) -> i32 {
        // In [0, 3.7e13): fits u64; t ≡ t_r modulo both periods.
        let t_r = match i64::try_from(t_ns) {
            // Hardware 64-bit division for every realistic time (until 2262).
            Ok(t) => t.rem_euclid(REDUCE_NS as i64) as u64,
            Err(_) => t_ns.rem_euclid(REDUCE_NS) as u64,
        };
        // (t mod 1e12)·f mod 1e12 == t·f mod 1e12; the product is < 1e12 · 3e6 < 2^64 because
        // every tone is below 3 kHz (3e6 mHz) by construction in `new`.
        let t_phase = t_r % PHASE_DEN;
        let mut acc = 0.0;
        for (k, (&f_mhz, &amp)) in self
            .tones_mhz
            .iter()
            .zip(self.amplitudes.iter())
            .enumerate()
        {
            let num = t_phase.wrapping_mul(f_mhz) % PHASE_DEN;
            let mut s = amp * sin_turns(num, PHASE_DEN);
            if k == 1 {
                s *= 0.75 + 0.25 * sin_turns(t_r % AM_PERIOD_NS, AM_PERIOD_NS);
            }
            acc += s;
        }
        let t_bits = (t_ns as u128 as u64) ^ ((t_ns as u128 >> 64) as u64);
        // 14-bit noise: ±8192, about -60 dB below the main tone. Its entropy sets the FLAC size:
        // ~1.95 bytes/sample, so a 5-minute 64 kHz FLAC is ~37 MB, near a real one's ~36 MB.
        let noise = (hash3(self.seed, t_bits, P_NOISE) >> 50) as i64 - 8_192;
        let v = acc.round() as i64 + noise;
        v.clamp(MIN_24, MAX_24) as i32
    }
}

/// The 24-bit audio sample (in [-2^23, 2^23-1]) a device recorded at absolute time `t_ns`
/// (ns since 1970): three device-specific tones (100 Hz–3 kHz, one slowly amplitude-modulated)
/// with phases given by absolute time, plus hashed noise of small amplitude.
pub fn audio_sample(device: &str, t_ns: i128) -> i32 {
    AudioOracle::new(device).sample(t_ns)
}

/// Period of the slow "weather" variation of the background level, per device: 1.5–3.5 h.
fn weather_period_ms(seed: u64) -> u64 {
    5_400_000 + hash3(seed, 0, P_WEATHER) % 7_200_000
}

/// PSD in dB re 1 µPa²/Hz for a spectrogram column at absolute time `t_ms` and `freq_hz`.
///
/// `-Inf` for the DC row (`freq_hz == 0`), NaN for about 1 in 500 cells (hash of device, `t_ms`
/// and the frequency's bit pattern), else a background falling with frequency, a slow
/// per-device "weather" term, an hourly passing "ship", spectral lines at the device's audio
/// tones and ±2 dB hashed noise, clamped to 40..120 dB. Non-finite frequencies give NaN.
pub fn psd_db(device: &str, t_ms: i64, freq_hz: f64) -> f64 {
    if freq_hz == 0.0 {
        return f64::NEG_INFINITY;
    }
    if !freq_hz.is_finite() {
        return f64::NAN;
    }
    let seed = device_seed(device);
    let cell = (t_ms as u64) ^ splitmix64(freq_hz.to_bits());
    if hash3(seed, cell, P_NAN).is_multiple_of(500) {
        return f64::NAN;
    }
    let f = freq_hz.abs();
    let khz = f / 1000.0;
    // Background: ~100 dB near DC falling to ~62 dB at 32 kHz (a rational curve, no log needed).
    let mut db = 60.0 + 40.0 / (1.0 + khz / 2.0);
    // Weather: ±6 dB over a few hours.
    let period = weather_period_ms(seed);
    let phase = (i128::from(t_ms)).rem_euclid(i128::from(period)) as u64;
    db += 6.0 * sin_turns(phase, period);
    // A ship passes every hour at a device-specific minute; its noise is low-frequency heavy.
    let hour_ms: i64 = 3_600_000;
    let cpa = (hash3(seed, 0, P_SHIP) % 3_600_000) as i64;
    let dt = (t_ms.rem_euclid(hour_ms) - cpa) as f64 / 300_000.0;
    db += 15.0 / (1.0 + dt * dt) / (1.0 + khz / 10.0);
    // Spectral lines at the audio tones (Lorentzian, 20 Hz wide, in dB directly).
    for f0 in AudioOracle::new(device).tone_frequencies_hz() {
        let d = (f - f0) / 20.0;
        db += 20.0 / (1.0 + d * d);
    }
    db += 4.0 * unit(hash3(seed, cell, P_PSD_NOISE)) - 2.0;
    db.clamp(40.0, 120.0)
}

/// [`psd_db`] as the simulator's MAT files store it: a double rounded to 1e-5 dB. ONC's PSD are
/// computed values of limited precision; at this one, zlib packs a 5-minute plotRes file at
/// 64 kHz to about the 4 MB ONC estimates (48 MB for 12 files in the seed), where full doubles
/// take ~6.3 MB and singles ~2.8 MB. `-Inf` and NaN are kept.
pub fn psd_db_stored(device: &str, t_ms: i64, freq_hz: f64) -> f64 {
    let db = psd_db(device, t_ms, freq_hz);
    if db.is_finite() {
        (db * 1e5).round() / 1e5
    } else {
        db
    }
}

/// Spectrogram layout of one source file for a downsample option.
#[derive(Debug, Clone, PartialEq)]
pub struct SpectrogramLayout {
    pub frequencies_hz: Vec<f64>,
    pub column_times_ms: Vec<i64>,
}

/// Frequency bins at 64 kHz for plotRes (ONC's typical 854).
const PLOT_BINS_64K: u64 = 854;
/// Bin count limits: at least 16; at most 4096 (plotRes) / 8192 (fullRes) so a bogus sample rate
/// cannot ask for gigabytes.
const MIN_BINS: u64 = 16;
const MAX_PLOT_BINS: u64 = 4096;
/// Column count cap (fullRes of 20 min): bounds memory for hand-made, very long `ArchiveFile`s.
const MAX_COLUMNS: i64 = 20_000;

/// Spectrogram layout of `file` for `downsample` (2 = plotRes, 0 = fullRes, 1 = one-minute
/// averages; any other value is treated as plotRes).
///
/// * plotRes: a column every 300 ms from the file's start, bins = round(854 · rate / 64 kHz)
///   (8 kHz → 107), clamped to 16..=4096, frequencies evenly from 0 (the DC row) to rate/2.
/// * fullRes: a column every 60 ms, twice the bins: ten times plotRes's cells, as ONC's
///   fullRes files are about ten times its plotRes files.
/// * 1: a column per minute (file start + k·60 s), plotRes frequencies.
///
/// Columns are the whole steps that fit in the file (300 s → 1000 plotRes columns; 294.5 s →
/// 981), but at least one for a non-empty file.
pub fn spectrogram_layout(file: &ArchiveFile, downsample: u8) -> SpectrogramLayout {
    let plot_bins = ((PLOT_BINS_64K * u64::from(file.sample_rate) + 32_000) / 64_000)
        .clamp(MIN_BINS, MAX_PLOT_BINS);
    let (bins, step_ms) = match downsample {
        0 => (plot_bins * 2, 60),
        1 => (plot_bins, 60_000),
        _ => (plot_bins, 300),
    };
    let nyquist = f64::from(file.sample_rate) / 2.0;
    let last = (bins - 1) as f64;
    let frequencies_hz = (0..bins).map(|i| i as f64 * nyquist / last).collect();
    let duration = file.duration_ms().max(0);
    let mut ncols = duration / step_ms;
    if ncols == 0 && duration > 0 {
        ncols = 1;
    }
    let ncols = ncols.min(MAX_COLUMNS);
    let column_times_ms = (0..ncols)
        .map(|j| file.start_ms.saturating_add(j * step_ms))
        .collect();
    SpectrogramLayout {
        frequencies_hz,
        column_times_ms,
    }
}

/// Days from year 0 (MATLAB's proleptic calendar) to 1970-01-01.
const DATENUM_UNIX_EPOCH: f64 = 719_529.0;

/// MATLAB datenum for a time: days since year 0 (datenum = unix_days + 719529), f64.
pub fn datenum(t_ms: i64) -> f64 {
    t_ms as f64 / 86_400_000.0 + DATENUM_UNIX_EPOCH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_matches_std_closely() {
        for i in 0..1000u64 {
            let ours = sin_turns(i, 1000);
            let std = (2.0 * std::f64::consts::PI * i as f64 / 1000.0).sin();
            assert!((ours - std).abs() < 1e-10, "i={i}: {ours} vs {std}");
        }
    }

    #[test]
    fn audio_is_deterministic_in_range_and_not_trivial() {
        let mut min = i32::MAX;
        let mut max = i32::MIN;
        let t0: i128 = 1_711_929_667_123_000_000;
        let mut prev = None;
        let mut changes = 0;
        for i in 0..8000i128 {
            let t = t0 + i * 125_000;
            let s = audio_sample("ICLISTENHF6324", t);
            assert_eq!(s, audio_sample("ICLISTENHF6324", t));
            min = min.min(s);
            max = max.max(s);
            if prev != Some(s) {
                changes += 1;
            }
            prev = Some(s);
        }
        assert!(min >= -(1 << 23) && max < (1 << 23));
        assert!(max > 1_000_000 && min < -1_000_000, "{min}..{max}");
        assert!(changes > 7000);
        assert_ne!(
            audio_sample("ICLISTENHF6324", t0),
            audio_sample("ICLISTENHF1251", t0)
        );
        // Extreme times do not panic.
        let _ = audio_sample("X", i128::MIN);
        let _ = audio_sample("X", i128::MAX);
    }

    /// The u64 fast path equals straightforward i128 phase arithmetic.
    #[test]
    fn phase_reduction_is_exact() {
        let o = AudioOracle::new("ICLISTENHF6324");
        let reference = |t: i128| -> i32 {
            let mut acc = 0.0;
            for (k, (&f, &a)) in o.tones_mhz.iter().zip(o.amplitudes.iter()).enumerate() {
                let num = (t * i128::from(f)).rem_euclid(1_000_000_000_000);
                let mut s = a * sin_turns(num as u64, 1_000_000_000_000);
                if k == 1 {
                    let am = t.rem_euclid(37_000_000_000) as u64;
                    s *= 0.75 + 0.25 * sin_turns(am, 37_000_000_000);
                }
                acc += s;
            }
            let t_bits = (t as u128 as u64) ^ ((t as u128 >> 64) as u64);
            let noise = (hash3(o.seed, t_bits, P_NOISE) >> 50) as i64 - 8_192;
            (acc.round() as i64 + noise).clamp(MIN_24, MAX_24) as i32
        };
        let mut t: i128 = -5_000_000_000_000_000_000;
        for i in 0..2000u64 {
            t += i128::from(splitmix64(i) % 10_000_000_000_000_000);
            assert_eq!(o.sample(t), reference(t), "t={t}");
        }
        // Past the i64 fast path too (±1e30 keeps the reference's product in range).
        for t in [
            0,
            -1,
            10i128.pow(30),
            -(10i128.pow(30)),
            i128::from(i64::MAX) + 1,
            i128::from(i64::MIN) - 1,
            1_711_929_667_123_000_000,
        ] {
            assert_eq!(o.sample(t), reference(t), "t={t}");
        }
    }

    #[test]
    fn psd_dc_nan_and_range() {
        let dev = "ICLISTENHF6324";
        assert_eq!(psd_db(dev, 0, 0.0), f64::NEG_INFINITY);
        let mut nans = 0;
        let n = 50_000;
        for i in 0..n {
            let t = 1_711_929_667_123 + (i / 100) * 300;
            let f = 1.0 + (i % 100) as f64 * 37.5;
            let v = psd_db(dev, t, f);
            assert_eq!(v.to_bits(), psd_db(dev, t, f).to_bits());
            if v.is_nan() {
                nans += 1;
            } else {
                assert!((40.0..=120.0).contains(&v), "{v}");
            }
        }
        // About 1 in 500: expect ~100.
        assert!((50..200).contains(&nans), "{nans}");
    }

    #[test]
    fn layouts() {
        let f = ArchiveFile {
            device: "D".into(),
            start_ms: 1_000,
            samples: 300 * 8000,
            sample_rate: 8000,
        };
        let l = spectrogram_layout(&f, 2);
        assert_eq!(l.frequencies_hz.len(), 107);
        assert_eq!(l.column_times_ms.len(), 1000);
        assert_eq!(l.column_times_ms.get(1), Some(&1_300));
        assert_eq!(l.frequencies_hz.first(), Some(&0.0));
        assert_eq!(l.frequencies_hz.last(), Some(&4000.0));
        let l = spectrogram_layout(&f, 0);
        assert_eq!(
            (l.frequencies_hz.len(), l.column_times_ms.len()),
            (214, 5000)
        );
        let l = spectrogram_layout(&f, 1);
        assert_eq!(
            l.column_times_ms,
            vec![1_000, 61_000, 121_000, 181_000, 241_000]
        );
        let f64k = ArchiveFile {
            sample_rate: 64_000,
            samples: 294_500 * 64,
            ..f
        };
        let l = spectrogram_layout(&f64k, 2);
        assert_eq!(
            (l.frequencies_hz.len(), l.column_times_ms.len()),
            (854, 981)
        );
    }

    #[test]
    fn datenum_epoch() {
        assert_eq!(datenum(0), 719_529.0);
        // 2024-04-01T00:00:00Z is datenum 739343.
        assert_eq!(datenum(1_711_929_600_000), 739_343.0);
    }
}
