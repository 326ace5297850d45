//! The names ONC's web services use in query strings, and the fixed values onc-pipe sends.
//!
//! Input: a device, a [`Source`] and a time window. Output: the exact, case-sensitive spellings
//! of `shared/onc-api.md` §2–§4 (so a typo is a compile error instead of a 400 from ONC), and an
//! [`OncQuery`] rendered as the parameters ONC receives, in one place. What each service *means*
//! lives in the product's `onc/` client; this module only spells. No errors: reading parameters
//! back answers `None` when they are not a query.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::stamp::{onc_date, parse_onc_date};

/// The API token (never logged: see the product's `onc::redact`).
pub const TOKEN: &str = "token";
/// The response header onc-pipe's simulator adds to every answer: real seconds per simulated
/// second. ONC never sends it; a client talking to loopback scales its own timers by it.
pub const SIM_TIME_SCALE_HEADER: &str = "x-onc-sim-time-scale";
/// `method=request|run|download|status|cancel|restart` on `dataProductDelivery`.
pub const METHOD: &str = "method";
/// A device by its code (`ICLISTENHF6324`).
pub const DEVICE_CODE: &str = "deviceCode";
/// A site by its code (`BACAX`).
pub const LOCATION_CODE: &str = "locationCode";
/// A kind of device at a site (`HYDROPHONE`).
pub const DEVICE_CATEGORY_CODE: &str = "deviceCategoryCode";
/// Inclusive start of a time window, in [`crate::stamp::onc_date`]'s format.
pub const DATE_FROM: &str = "dateFrom";
/// Exclusive end of a time window.
pub const DATE_TO: &str = "dateTo";
/// A data product (`HSD` spectrograms, `AD` audio).
pub const DATA_PRODUCT_CODE: &str = "dataProductCode";
/// A data product's file type (`mat`, `png`, `flac`).
pub const EXTENSION: &str = "extension";
/// An archive listing's file type filter.
pub const FILE_EXTENSION: &str = "fileExtension";
/// What an archive listing returns per file.
pub const RETURN_OPTIONS: &str = "returnOptions";
/// [`RETURN_OPTIONS`] value: every field (file name, size, dates).
pub const RETURN_ALL: &str = "all";
/// A data product request's id.
pub const DP_REQUEST_ID: &str = "dpRequestId";
/// A data product run's id.
pub const DP_RUN_ID: &str = "dpRunId";
/// Which file of a run to download (1-based, or `meta`).
pub const INDEX: &str = "index";
/// An archived file's name.
pub const FILENAME: &str = "filename";
/// Prefix of every data product option (`dpo_spectralDataDownsample`).
pub const OPTION_PREFIX: &str = "dpo_";

/// The parameters that place a query in time; every other parameter says *what* is asked for.
pub const TIME_PARAMETERS: [&str; 2] = [DATE_FROM, DATE_TO];

/// ONC's data product code for hydrophone spectral data (spectrograms as MAT, PNG or PDF).
pub const SPECTROGRAM_PRODUCT: &str = "HSD";

/// ONC's data product code for audio (`AD`); every other product onc-pipe orders is a
/// spectrogram product (`HSD`).
pub const AUDIO_PRODUCT: &str = "AD";

/// What an ONC query asks for, apart from its device and time window.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// A data product ordered through `dataProductDelivery`.
    Product {
        code: String,
        extension: String,
        /// `dpo_*` options, values as sent.
        options: BTreeMap<String, String>,
    },
    /// Archived files listed and downloaded through `archivefile`.
    Archive { extension: String },
}

/// What archived files of one extension hold, as far as cutting clips goes: ONC archives audio
/// (`flac`, `wav`), pre-generated spectrograms (`-spect.mat`, `-spect.png`) and other files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchivedKind {
    /// Audio, cut by samples.
    Audio,
    /// Spectrogram MAT files (`SpectData`/`Meta`, as HSD products), cut by columns.
    SpectrogramMat,
    /// Anything else (PNG pictures, …): downloaded as listed, never cut.
    Other,
}

impl ArchivedKind {
    /// The kind of archived files with this extension (exact, lowercase as ONC spells it).
    pub fn of(extension: &str) -> ArchivedKind {
        match extension {
            "flac" | "wav" => ArchivedKind::Audio,
            ARCHIVED_SPECTROGRAM_EXTENSION => ArchivedKind::SpectrogramMat,
            _ => ArchivedKind::Other,
        }
    }
}

/// The archive extension of ONC's pre-generated spectrogram MAT files.
pub const ARCHIVED_SPECTROGRAM_EXTENSION: &str = "mat";

/// How ONC's pre-generated spectrogram files end before their extension: one start stamp, then
/// `-spect` (`ICLISTENHF1560_20181004T235903.000Z-spect.png`, `…Z-spect.mat`).
pub const ARCHIVED_SPECTROGRAM_SUFFIX: &str = "Z-spect";

/// The longest archive extension accepted: ONC's are short (`flac`, `wav`, `mat`, `png`).
pub const MAX_ARCHIVE_EXTENSION_LEN: usize = 8;

/// Whether `extension` has the shape of an ONC archive file extension: 1 to
/// [`MAX_ARCHIVE_EXTENSION_LEN`] lowercase ASCII letters or digits (no dot, no path).
pub fn is_archive_extension_shaped(extension: &str) -> bool {
    (1..=MAX_ARCHIVE_EXTENSION_LEN).contains(&extension.len())
        && extension
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl Source {
    /// Whether its files are spectrograms (clipped by columns) rather than audio (by samples):
    /// every product but audio (`AD`), and archived spectrogram MAT files.
    pub fn is_spectrogram(&self) -> bool {
        match self {
            Source::Product { code, .. } => code != AUDIO_PRODUCT,
            Source::Archive { extension } => {
                ArchivedKind::of(extension) == ArchivedKind::SpectrogramMat
            }
        }
    }

    /// Whether a file ONC listed for this source is one to fetch. Archived spectrogram MAT
    /// files must have the `Z-spect.mat` form: ONC's listings by extension may hold other
    /// files of that extension (public code filters its PNG listings by `Z-spect.png` for this
    /// reason), and a clip must never stitch something that is not a spectrogram. Every other
    /// source keeps what ONC lists.
    pub fn keeps_listed_file(&self, filename: &str) -> bool {
        match self {
            Source::Archive { extension }
                if ArchivedKind::of(extension) == ArchivedKind::SpectrogramMat =>
            {
                filename
                    .strip_suffix(extension.as_str())
                    .and_then(|stem| stem.strip_suffix('.'))
                    .is_some_and(|stem| stem.ends_with(ARCHIVED_SPECTROGRAM_SUFFIX))
            }
            _ => true,
        }
    }

    /// Whether it is a listing of archived files (else a data product).
    pub fn is_archive(&self) -> bool {
        matches!(self, Source::Archive { .. })
    }

    /// The file type asked for (`mat`, `png`, `flac`).
    pub fn extension(&self) -> &str {
        match self {
            Source::Product { extension, .. } | Source::Archive { extension } => extension,
        }
    }

    /// The data product code, for products.
    pub fn product_code(&self) -> Option<&str> {
        match self {
            Source::Product { code, .. } => Some(code),
            Source::Archive { .. } => None,
        }
    }
}

/// One ONC query as a typed value: a data product request (`dataProductDelivery/request`) or
/// an archive listing (`archivefile/device`) for one device and time window `[from, to)`.
///
/// [`OncQuery::params`] renders the exact query string parameters (token excluded) in one
/// place; [`OncQuery::from_params`] reads them back from a record written earlier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OncQuery {
    pub device: String,
    pub source: Source,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl OncQuery {
    /// Whether it is an archive listing (else a data product request).
    pub fn is_archive(&self) -> bool {
        self.source.is_archive()
    }

    pub fn from_ms(&self) -> i64 {
        self.from.timestamp_millis()
    }

    pub fn to_ms(&self) -> i64 {
        self.to.timestamp_millis()
    }

    /// The same query over another window (milliseconds since 1970; out-of-range instants are
    /// clamped to chrono's limits).
    pub fn with_window(&self, from_ms: i64, to_ms: i64) -> OncQuery {
        OncQuery {
            from: instant(from_ms),
            to: instant(to_ms),
            ..self.clone()
        }
    }

    /// The exact parameters ONC receives, by name (the token is added by the client alone).
    pub fn params(&self) -> BTreeMap<String, String> {
        let mut params = BTreeMap::new();
        params.insert(DEVICE_CODE.to_owned(), self.device.clone());
        params.insert(DATE_FROM.to_owned(), onc_date(self.from));
        params.insert(DATE_TO.to_owned(), onc_date(self.to));
        match &self.source {
            Source::Product {
                code,
                extension,
                options,
            } => {
                params.insert(DATA_PRODUCT_CODE.to_owned(), code.clone());
                params.insert(EXTENSION.to_owned(), extension.clone());
                for (name, value) in options {
                    params.insert(name.clone(), value.clone());
                }
            }
            Source::Archive { extension } => {
                params.insert(FILE_EXTENSION.to_owned(), extension.clone());
                params.insert(RETURN_OPTIONS.to_owned(), RETURN_ALL.to_owned());
            }
        }
        params
    }

    /// Reads back what [`OncQuery::params`] wrote; `None` when a required parameter is missing
    /// or a date does not parse. A product's options are every parameter besides the device,
    /// the dates, the product code and the extension.
    pub fn from_params(params: &BTreeMap<String, String>) -> Option<OncQuery> {
        let device = params.get(DEVICE_CODE)?.clone();
        let from = instant(parse_onc_date(params.get(DATE_FROM)?)?);
        let to = instant(parse_onc_date(params.get(DATE_TO)?)?);
        let source = match params.get(DATA_PRODUCT_CODE) {
            Some(code) => Source::Product {
                code: code.clone(),
                extension: params.get(EXTENSION)?.clone(),
                options: params
                    .iter()
                    .filter(|(name, _)| {
                        ![
                            DEVICE_CODE,
                            DATE_FROM,
                            DATE_TO,
                            DATA_PRODUCT_CODE,
                            EXTENSION,
                        ]
                        .contains(&name.as_str())
                    })
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect(),
            },
            None => Source::Archive {
                extension: params.get(FILE_EXTENSION)?.clone(),
            },
        };
        Some(OncQuery {
            device,
            source,
            from,
            to,
        })
    }
}

/// Milliseconds since 1970 as an instant, clamped to chrono's range.
fn instant(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(if ms < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn product(options: &[(&str, &str)]) -> OncQuery {
        OncQuery {
            device: "ICLISTENHF6324".into(),
            source: Source::Product {
                code: "HSD".into(),
                extension: "mat".into(),
                options: options
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            },
            from: instant(1_711_929_600_000),
            to: instant(1_711_931_400_000),
        }
    }

    #[test]
    fn a_product_query_renders_onc_parameters() {
        let query = product(&[("dpo_spectralDataDownsample", "2")]);
        let params = query.params();
        let pairs: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("dataProductCode", "HSD"),
                ("dateFrom", "2024-04-01T00:00:00.000Z"),
                ("dateTo", "2024-04-01T00:30:00.000Z"),
                ("deviceCode", "ICLISTENHF6324"),
                ("dpo_spectralDataDownsample", "2"),
                ("extension", "mat"),
            ]
        );
        assert_eq!(OncQuery::from_params(&params), Some(query));
    }

    #[test]
    fn an_archive_query_renders_onc_parameters() {
        let query = OncQuery {
            source: Source::Archive {
                extension: "flac".into(),
            },
            ..product(&[])
        };
        let params = query.params();
        assert_eq!(
            params.get("fileExtension").map(String::as_str),
            Some("flac")
        );
        assert_eq!(params.get("returnOptions").map(String::as_str), Some("all"));
        assert!(!params.contains_key("dataProductCode"));
        assert_eq!(OncQuery::from_params(&params), Some(query));
        let narrowed = product(&[]).with_window(1_711_929_700_000, 1_711_929_800_000);
        assert_eq!(narrowed.from_ms(), 1_711_929_700_000);
        assert_eq!(narrowed.to_ms(), 1_711_929_800_000);
    }

    #[test]
    fn archived_spectrogram_mat_files_are_spectrograms_kept_by_their_name() {
        let archive = |extension: &str| Source::Archive {
            extension: extension.into(),
        };
        assert_eq!(ArchivedKind::of("flac"), ArchivedKind::Audio);
        assert_eq!(ArchivedKind::of("wav"), ArchivedKind::Audio);
        assert_eq!(ArchivedKind::of("mat"), ArchivedKind::SpectrogramMat);
        assert_eq!(ArchivedKind::of("png"), ArchivedKind::Other);
        assert!(archive("mat").is_spectrogram());
        assert!(!archive("flac").is_spectrogram() && !archive("png").is_spectrogram());
        assert!(product(&[]).source.is_spectrogram());
        let mat = archive("mat");
        assert!(mat.keeps_listed_file("ICLISTENHF1560_20181004T235903.000Z-spect.mat"));
        for other in [
            "ICLISTENHF1560_20181004T235903.000Z.mat",
            "ICLISTENHF1560_20181004T235903.000Z-spect-LPF.mat",
            "ICLISTENHF1560_20181004T235903.000Z_20181004T240403.000Z-spect_plotRes.mat",
            "ICLISTENHF1560_20181004T235903.000Z-spect.png",
            "-spect.mat",
            "",
        ] {
            assert!(!mat.keeps_listed_file(other), "{other}");
        }
        // Audio and pictures keep what ONC lists.
        assert!(archive("png").keeps_listed_file("anything.png"));
        assert!(archive("flac").keeps_listed_file("X_20240401T000000.000Z.flac"));
        assert!(product(&[]).source.keeps_listed_file("whatever"));
    }

    #[test]
    fn archive_extensions_are_short_lowercase_words() {
        for good in ["flac", "wav", "mat", "png", "mp3", "txt", "a", "abcdefgh"] {
            assert!(is_archive_extension_shaped(good), "{good}");
        }
        for bad in [
            "",
            "FLAC",
            ".mat",
            "spect.mat",
            "a b",
            "abcdefghi",
            "fl-ac",
            "é",
        ] {
            assert!(!is_archive_extension_shaped(bad), "{bad}");
        }
    }

    #[test]
    fn incomplete_parameters_are_not_a_query() {
        let mut params = product(&[]).params();
        params.remove("extension");
        assert_eq!(OncQuery::from_params(&params), None);
        let mut params = product(&[]).params();
        params.insert("dateTo".into(), "soon".into());
        assert_eq!(OncQuery::from_params(&params), None);
        assert_eq!(OncQuery::from_params(&BTreeMap::new()), None);
    }

    proptest! {
        #[test]
        fn queries_round_trip_through_their_parameters(
            from in -62_167_219_200_000_i64..253_402_300_799_000,
            length in 0i64..86_400_000,
            options in proptest::collection::btree_map("dpo_[a-zA-Z]{1,12}", "\\PC{0,8}", 0..4),
            archive in any::<bool>(),
        ) {
            let source = if archive {
                Source::Archive { extension: "flac".into() }
            } else {
                Source::Product { code: "HSD".into(), extension: "png".into(), options }
            };
            let query = OncQuery {
                device: "D".into(),
                source,
                from: instant(from),
                to: instant(from.saturating_add(length)),
            };
            prop_assert_eq!(OncQuery::from_params(&query.params()), Some(query));
        }

        #[test]
        fn any_parameters_read_without_panic(
            params in proptest::collection::btree_map("\\PC{0,12}", "\\PC{0,24}", 0..8),
        ) {
            let _ = OncQuery::from_params(&params);
        }
    }
}
