//! What one five-minute source file of a data source costs: bytes on disk, and how ONC makes it
//! (computed on demand, pre-generated, or archived), with the processing time that implies.
//!
//! Input: a [`Source`] (product, extension, options) and the device's sample rate. Output: a
//! [`FileCost`]. No errors: an unknown product or extension gets a plain guess, said so in its
//! [`FileCost::basis`].
//!
//! Calibrated on ONC's own figures, not on the simulator (README, "Estimates"):
//! * ONC answered `Estimated File Size: 48 MB` and `Estimated Processing Time: 35 s` for a
//!   12-file plotRes request at 64 kHz (the seed): 4 MB per plotRes file, and 35 s = 5 s per
//!   request + 2.5 s per on-demand file of ONC's elapsed time;
//! * fullRes ≈ 10 × plotRes (onc-files.md); the pre-generated one-minute MAT holds 5 columns
//!   instead of ~1000, about 40 kB;
//! * a 5-minute 64 kHz 24-bit mono FLAC ≈ 36 MB (128 kHz ≈ 70 MB); WAV = samples × 3 bytes;
//! * ONC's wiki: on-demand spectral data (downsample 0 and 2) costs its servers about 25 s per
//!   5-minute source file; downsample 1 is pre-generated; archived files need no ONC job.
//!
//! Sizes scale linearly with the sample rate: audio by samples, spectrograms by frequency bins
//! up to Nyquist at a fixed bin width (UNCONFIRMED for ONC's spectrograms; the simulator does so).

use std::collections::BTreeMap;

use onc_format::query::{AUDIO_PRODUCT, SPECTROGRAM_PRODUCT, Source};

/// The sample rate the figures below were given at (ONC's icListen HF).
pub const REFERENCE_RATE_HZ: u32 = 64_000;
/// Seconds of audio in one ONC source file.
pub const FILE_SECONDS: u64 = 300;
/// ONC's elapsed processing time per data product request, before its files (the seed's
/// 35 s for 12 plotRes files = 5 s + 12 × 2.5 s).
pub const REQUEST_OVERHEAD_S: f64 = 5.0;
/// ONC's elapsed processing time per on-demand file, as its own estimates scale.
pub const ON_DEMAND_FILE_S: f64 = 2.5;
/// ONC's elapsed time per pre-generated or archived file a product request gathers.
pub const PRE_GENERATED_FILE_S: f64 = 0.2;
/// Work on ONC's servers per on-demand file (ONC's wiki: about 25 s per 5-minute file); ONC
/// spreads it over its workers, so it is the load a run puts on ONC, not the time it waits.
pub const SERVER_FILE_S: f64 = 25.0;

/// Bytes of one 5-minute file at [`REFERENCE_RATE_HZ`].
const PLOT_RES_BYTES: u64 = 4_000_000; // 48 MB / 12 files (ONC's estimate)
const FULL_RES_BYTES: u64 = 10 * PLOT_RES_BYTES; // fullRes ≈ 10 × plotRes (onc-files.md)
const ONE_MINUTE_MAT_BYTES: u64 = 40_000; // 5 columns × 854 bins of doubles + Meta
const PNG_BYTES: u64 = 150_000; // one rendered spectrogram plot
const PDF_BYTES: u64 = 300_000; // the same plot as a PDF
const FLAC_BYTES: u64 = 36_000_000; // 19.2 M 24-bit samples, FLAC-compressed (onc-files.md)
const MP3_BYTES: u64 = 4_800_000; // 128 kbit/s × 300 s
const WAV_BYTES_PER_SAMPLE: u64 = 3; // 24-bit mono
const WAV_HEADER_BYTES: u64 = 44;

/// How ONC comes by a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Production {
    /// Computed when ordered (HSD MAT downsample 0 or 2, plots, converted audio): a job with a
    /// cost per file.
    OnDemand,
    /// Made by ONC ahead of time (one-minute MAT averages, archived audio as a product): a job
    /// that gathers files.
    PreGenerated,
    /// Archived files listed and downloaded: no ONC job at all.
    Archived,
}

impl Production {
    pub fn as_str(self) -> &'static str {
        match self {
            Production::OnDemand => "computed on demand",
            Production::PreGenerated => "pre-generated",
            Production::Archived => "archived (no ONC job)",
        }
    }
}

/// The cost of one 5-minute source file of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct FileCost {
    pub production: Production,
    pub bytes: u64,
    /// What the figure rests on, for the text (`plotRes, 4 MB at 64 kHz`).
    pub basis: &'static str,
}

impl FileCost {
    /// ONC's elapsed processing time for one of these files in a product request.
    pub fn onc_seconds(&self) -> f64 {
        match self.production {
            Production::OnDemand => ON_DEMAND_FILE_S,
            Production::PreGenerated => PRE_GENERATED_FILE_S,
            Production::Archived => 0.0,
        }
    }

    /// Work on ONC's servers for one of these files.
    pub fn server_seconds(&self) -> f64 {
        match self.production {
            Production::OnDemand => SERVER_FILE_S,
            Production::PreGenerated | Production::Archived => 0.0,
        }
    }
}

/// `bytes` at the reference rate, scaled to `rate_hz`.
fn scaled(bytes: u64, rate_hz: u32) -> u64 {
    let scaled = u128::from(bytes) * u128::from(rate_hz) / u128::from(REFERENCE_RATE_HZ);
    u64::try_from(scaled).unwrap_or(u64::MAX)
}

/// One option's value, if set.
fn option<'a>(options: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    options.get(name).map(String::as_str)
}

/// ONC's default HSD MAT resolution (`dpo_spectralDataDownsample` when not given).
pub const DEFAULT_DOWNSAMPLE: &str = "1";

/// What one 5-minute file of `source` costs from a device sampling at `rate_hz`.
pub fn file_cost(source: &Source, rate_hz: u32) -> FileCost {
    match source {
        Source::Archive { extension } => match extension.as_str() {
            // ONC's archived spectrograms (`-spect.mat`): sized as plotRes MAT files (their
            // resolution is UNCONFIRMED; the simulator writes plotRes), and its pictures.
            "mat" => FileCost {
                production: Production::Archived,
                bytes: scaled(PLOT_RES_BYTES, rate_hz),
                basis: "archived spectrogram MAT, sized as plotRes: 4 MB at 64 kHz",
            },
            "png" => FileCost {
                production: Production::Archived,
                bytes: PNG_BYTES,
                basis: "archived spectrogram PNG, 150 kB",
            },
            _ => FileCost {
                production: Production::Archived,
                bytes: audio_bytes(extension, rate_hz),
                basis: audio_basis(extension),
            },
        },
        Source::Product {
            code,
            extension,
            options,
        } if code == SPECTROGRAM_PRODUCT => spectrogram_cost(extension, options, rate_hz),
        Source::Product {
            code,
            extension,
            options,
        } if code == AUDIO_PRODUCT => {
            // A downsampled file holds fewer samples; converting or downsampling is work.
            let target = option(options, "dpo_audioDownsample")
                .and_then(|v| v.parse::<u32>().ok())
                .filter(|&hz| hz > 0)
                .map_or(rate_hz, |hz| hz.min(rate_hz));
            let converts = option(options, "dpo_audioFormatConversion") == Some("1");
            let production = if target != rate_hz || converts {
                Production::OnDemand
            } else {
                Production::PreGenerated
            };
            FileCost {
                production,
                bytes: audio_bytes(extension, target),
                basis: audio_basis(extension),
            }
        }
        Source::Product { .. } => FileCost {
            // A product onc-pipe has no figures for: guessed like a plotRes file, on demand
            // (the cautious side for ONC's load and for max_wait).
            production: Production::OnDemand,
            bytes: scaled(PLOT_RES_BYTES, rate_hz),
            basis: "unknown product, guessed as 4 MB at 64 kHz",
        },
    }
}

fn spectrogram_cost(extension: &str, options: &BTreeMap<String, String>, rate_hz: u32) -> FileCost {
    let (production, bytes, basis) = match extension {
        "mat" => {
            match option(options, "dpo_spectralDataDownsample").unwrap_or(DEFAULT_DOWNSAMPLE) {
                "2" => (
                    Production::OnDemand,
                    PLOT_RES_BYTES,
                    "plotRes MAT (dpo_spectralDataDownsample 2), 4 MB at 64 kHz",
                ),
                "0" => (
                    Production::OnDemand,
                    FULL_RES_BYTES,
                    "fullRes MAT (dpo_spectralDataDownsample 0), 40 MB at 64 kHz",
                ),
                _ => (
                    Production::PreGenerated,
                    ONE_MINUTE_MAT_BYTES,
                    "one-minute MAT (dpo_spectralDataDownsample 1), 40 kB at 64 kHz",
                ),
            }
        }
        // ONC renders plots per request (the simulator charges them as on-demand too).
        "png" => (Production::OnDemand, PNG_BYTES, "PNG plot, 150 kB"),
        "pdf" => (Production::OnDemand, PDF_BYTES, "PDF plot, 300 kB"),
        _ => (
            Production::PreGenerated,
            PLOT_RES_BYTES,
            "spectral file, guessed as 4 MB at 64 kHz",
        ),
    };
    // Plots have a fixed size in pixels, whatever the rate.
    let bytes = if matches!(extension, "png" | "pdf") {
        bytes
    } else {
        scaled(bytes, rate_hz)
    };
    FileCost {
        production,
        bytes,
        basis,
    }
}

fn audio_bytes(extension: &str, rate_hz: u32) -> u64 {
    match extension {
        "wav" => u64::from(rate_hz) * FILE_SECONDS * WAV_BYTES_PER_SAMPLE + WAV_HEADER_BYTES,
        "mp3" => MP3_BYTES,
        // FLAC, and any other archived type (sized like FLAC).
        _ => scaled(FLAC_BYTES, rate_hz),
    }
}

fn audio_basis(extension: &str) -> &'static str {
    match extension {
        "wav" => "WAV, 3 bytes per sample",
        "mp3" => "MP3 at 128 kbit/s",
        "flac" => "FLAC, 36 MB at 64 kHz",
        _ => "sized like FLAC, 36 MB at 64 kHz",
    }
}

/// ONC's elapsed processing time for one data product request of `files` files.
pub fn request_seconds(cost: &FileCost, files: u64) -> f64 {
    REQUEST_OVERHEAD_S + files as f64 * cost.onc_seconds()
}

/// The most files per request whose processing stays within `max_wait_s` (at least 1).
pub fn files_within(cost: &FileCost, max_wait_s: f64) -> u64 {
    let per_file = cost.onc_seconds();
    if per_file <= 0.0 {
        return u64::MAX;
    }
    let room = ((max_wait_s - REQUEST_OVERHEAD_S) / per_file).floor();
    if room.is_finite() && room >= 1.0 {
        room as u64
    } else {
        1
    }
}

/// What ONC gives a spectrogram or audio stage whose `options` leave a choice to ONC, in words;
/// `None` when every choice that changes the data is made.
pub fn default_product_note(source: &Source) -> Option<&'static str> {
    match source {
        Source::Product {
            code,
            extension,
            options,
        } if code == SPECTROGRAM_PRODUCT
            && extension == "mat"
            && !options.contains_key("dpo_spectralDataDownsample") =>
        {
            Some(
                "ONC's default product: one-minute averages (dpo_spectralDataDownsample 1, 60 s columns, pre-generated)",
            )
        }
        Source::Product { options, .. } if options.is_empty() => {
            Some("ONC's default product options")
        }
        _ => None,
    }
}
