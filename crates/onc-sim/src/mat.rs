//! HSD spectrogram MAT-file writer of the simulator: (source [`ArchiveFile`], downsample option,
//! diversion mode) → the ONC data-product file name and the bytes of a MAT Level 5 ("-v7") file
//! holding the 1×1 structs `SpectData` and `Meta`, as ONC's HSD `mat` product does.
//!
//! The file is written by `onc-mat` (the product's MAT reader and writer): a 128-byte header,
//! then one `miCOMPRESSED` (zlib) element per variable; numbers are `double` arrays (`PSD`
//! at 1e-5 dB, so a 5-minute plotRes file at 64 kHz is about the 4 MB ONC estimates), text 1×n
//! `char` rows (0×0 when empty), and the structs 1×1. PSD values come from [`oracle::psd_db_stored`]
//! at each column time and frequency, so they include the `-Inf` DC row and scattered NaNs,
//! like real files.

use onc_format::stamp::stamp_of_ms;
use onc_mat::{MatFile, MatValue, write_mat};

use crate::archive::ArchiveFile;
use crate::oracle::{self, device_seed, hash3};

/// Header text: MATLAB's form (with the comma after "MAT-file"); a fixed date keeps the output
/// deterministic.
const HEADER_TEXT: &str =
    "MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Apr  1 00:00:00 2024";

fn scalar(v: f64) -> MatValue {
    MatValue::double(1, 1, vec![v])
}

/// A 1×1 struct with these fields in order.
fn fields(fields: Vec<(&str, MatValue)>) -> MatValue {
    MatValue::struct_1x1(
        fields
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect(),
    )
}

/// Resolution suffix of a downsample option: 2 → `_plotRes`, 0 → `_fullRes`, 1 → none
/// (other values are named like plotRes; [`hsd_mat_bytes`] rejects them).
fn resolution_suffix(downsample: u8) -> &'static str {
    match downsample {
        0 => "_fullRes",
        1 => "",
        _ => "_plotRes",
    }
}

/// `-LPF`/`-HPF` for diverted data, nothing otherwise (OD or unknown modes).
fn diversion_suffix(diversion: Option<&str>) -> &'static str {
    match diversion {
        Some("LPF") => "-LPF",
        Some("HPF") => "-HPF",
        _ => "",
    }
}

/// `<device>_<start>_<end>` with both stamps in archive form (ms kept).
pub(crate) fn product_stem(file: &ArchiveFile) -> String {
    format!(
        "{}_{}_{}",
        file.device,
        stamp_of_ms(file.start_ms),
        stamp_of_ms(file.end_ms())
    )
}

/// ONC data-product file name for one source file, e.g.
/// `ICLISTENHF6324_20240401T000107.123Z_20240401T000607.456Z-spect_plotRes.mat` (downsample 2 →
/// `_plotRes`, 0 → `_fullRes`, 1 → no suffix; `-LPF`/`-HPF` inserted before `-spect` for those
/// diversion modes).
pub fn hsd_mat_filename(file: &ArchiveFile, downsample: u8, diversion: Option<&str>) -> String {
    format!(
        "{}{}-spect{}.mat",
        product_stem(file),
        diversion_suffix(diversion),
        resolution_suffix(downsample)
    )
}

/// ISO-8601 UTC with ms, e.g. `2024-04-01T01:06:07.456Z` (compact form if chrono can't).
fn iso(t_ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(t_ms) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => stamp_of_ms(t_ms),
    }
}

/// Deterministic value in [lo, hi) for (device, purpose), rounded to 5 decimals.
fn hashed_range(seed: u64, purpose: u64, lo: f64, hi: f64) -> f64 {
    let u = (hash3(seed, 0, purpose) >> 11) as f64 / (1u64 << 53) as f64;
    ((lo + u * (hi - lo)) * 1e5).round() / 1e5
}

/// The `Meta` struct: plausible, per-device deployment metadata.
fn meta(file: &ArchiveFile) -> MatValue {
    let seed = device_seed(&file.device);
    // ONC produces the file some time after the data: a fixed hour after the source file's end.
    let created = iso(file.end_ms().saturating_add(3_600_000));
    let quality = if hash3(seed, file.start_ms as u64, 0x5143).is_multiple_of(10) {
        "Simulated: elevated self-noise during this period."
    } else {
        ""
    };
    fields(vec![
        ("deviceID", scalar((20_000 + seed % 10_000) as f64)),
        ("deviceCode", MatValue::text(&file.device)),
        (
            "deviceName",
            MatValue::text(&format!(
                "Simulated Ocean Sonics icListen HF Hydrophone {}",
                file.device
            )),
        ),
        ("deviceCategory", MatValue::text("Hydrophone")),
        ("deviceCategoryCode", MatValue::text("HYDROPHONE")),
        ("creationDate", MatValue::text(&created)),
        ("lat", scalar(hashed_range(seed, 1, 47.5, 50.5))),
        ("lon", scalar(hashed_range(seed, 2, -129.0, -123.0))),
        ("depth", scalar(hashed_range(seed, 3, 20.0, 2_700.0))),
        ("deviceHeading", scalar(hashed_range(seed, 4, 0.0, 360.0))),
        ("devicePitch", scalar(hashed_range(seed, 5, -5.0, 5.0))),
        ("deviceRoll", scalar(hashed_range(seed, 6, -5.0, 5.0))),
        ("siteName", MatValue::text("Simulated Site")),
        (
            "locationName",
            MatValue::text(&format!("Simulated Location ({})", file.device)),
        ),
        ("dataQualityComments", MatValue::text(quality)),
    ])
}

/// The MAT file (Level 5, compressed) of the HSD spectrogram of `file`: `SpectData` (PSD
/// freq × time from the oracle, frequency nfreq×1, time 1×ntime datenums of the column starts,
/// processingComment, units, sampleRate, params{windowLengthSec, overlap}) and `Meta`.
///
/// `downsample` must be 0, 1 or 2. The PSD values do not depend on `diversion`; it only shows in
/// the processing comment (and the file name).
pub fn hsd_mat_bytes(
    file: &ArchiveFile,
    downsample: u8,
    diversion: Option<&str>,
) -> Result<Vec<u8>, String> {
    let (resolution, window_sec) = match downsample {
        0 => ("full resolution", 0.12),
        1 => ("one-minute averages", 60.0),
        2 => ("plot resolution", 0.6),
        other => return Err(format!("unknown spectral data downsample option {other}")),
    };
    let layout = oracle::spectrogram_layout(file, downsample);
    let (nfreq, ncols) = (layout.frequencies_hz.len(), layout.column_times_ms.len());
    // Column-major freq × time: each column (one time) is a contiguous spectrum.
    let mut psd = Vec::new();
    psd.try_reserve(nfreq * ncols)
        .map_err(|e| format!("PSD too large: {e}"))?;
    for &t in &layout.column_times_ms {
        for &f in &layout.frequencies_hz {
            psd.push(oracle::psd_db_stored(&file.device, t, f));
        }
    }
    let times: Vec<f64> = layout
        .column_times_ms
        .iter()
        .map(|&t| oracle::datenum(t))
        .collect();
    let comment = format!(
        "Simulated spectrogram (onc-pipe ONC simulator): {resolution}, Hann window of {window_sec} s, \
         50% overlap, diversion mode {}. Time marks the start of each bin.",
        diversion.unwrap_or("OD")
    );
    let spect = fields(vec![
        ("PSD", MatValue::double(nfreq, ncols, psd)),
        (
            "frequency",
            MatValue::double(nfreq, 1, layout.frequencies_hz.clone()),
        ),
        ("time", MatValue::double(1, ncols, times)),
        ("processingComment", MatValue::text(&comment)),
        ("units", MatValue::text("dB re 1 uPa^2/Hz")),
        ("sampleRate", scalar(f64::from(file.sample_rate))),
        (
            "params",
            fields(vec![
                ("windowLengthSec", scalar(window_sec)),
                ("overlap", scalar(0.5)),
            ]),
        ),
    ]);
    let mat = MatFile {
        header_text: HEADER_TEXT.to_string(),
        variables: vec![
            ("SpectData".to_string(), spect),
            ("Meta".to_string(), meta(file)),
        ],
    };
    write_mat(&mat).map_err(|e| format!("failed to {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use onc_mat::{NumericData, read_mat};

    /// A variable as the simulator writes it: real double arrays, char arrays, 1×1
    /// structs.
    #[derive(Debug)]
    enum Parsed {
        Double(Vec<u32>, Vec<f64>),
        Char(Vec<u32>, String),
        Struct(Vec<(String, Parsed)>),
    }

    fn dims_u32(dims: &[usize]) -> Vec<u32> {
        dims.iter().map(|&d| u32::try_from(d).unwrap()).collect()
    }

    fn parsed(value: &MatValue) -> Parsed {
        match value {
            MatValue::Numeric(a) => {
                assert!(a.imag.is_none() && !a.logical, "{a:?}");
                assert_eq!(a.real.len(), a.dims.iter().product::<usize>());
                match &a.real {
                    NumericData::F64(data) => Parsed::Double(dims_u32(&a.dims), data.clone()),
                    _ => panic!("class {}", value.class_name()),
                }
            }
            MatValue::Char { dims, units } => {
                assert_eq!(units.len(), dims.iter().product::<usize>());
                Parsed::Char(dims_u32(dims), String::from_utf16(units).unwrap())
            }
            MatValue::Struct(s) => {
                assert_eq!(s.dims, [1, 1]);
                assert!(s.class_name.is_none());
                assert_eq!(s.values.len(), s.field_names.len());
                Parsed::Struct(
                    s.field_names
                        .iter()
                        .zip(&s.values)
                        .map(|(n, v)| (n.clone(), parsed(v)))
                        .collect(),
                )
            }
            other => panic!("class {}", other.class_name()),
        }
    }

    fn field<'a>(s: &'a Parsed, name: &str) -> &'a Parsed {
        match s {
            Parsed::Struct(f) => &f.iter().find(|(n, _)| n == name).unwrap().1,
            _ => panic!("not a struct"),
        }
    }

    /// Header check (MATLAB's text, little-endian, each variable compressed), then the
    /// variables as read by `onc-mat`'s reader.
    fn parse_file(bytes: &[u8]) -> Vec<(String, Parsed)> {
        assert!(bytes[..116].starts_with(b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: "));
        assert!(bytes[HEADER_TEXT.len()..116].iter().all(|&c| c == b' '));
        assert_eq!(&bytes[116..124], &[0u8; 8]);
        assert_eq!(&bytes[124..126], &[0x00, 0x01]);
        assert_eq!(&bytes[126..128], b"IM");
        // The first element is miCOMPRESSED.
        assert_eq!(u32::from_le_bytes(bytes[128..132].try_into().unwrap()), 15);
        let mat = read_mat(bytes).unwrap();
        assert_eq!(mat.header_text, HEADER_TEXT);
        mat.variables
            .iter()
            .map(|(name, value)| (name.clone(), parsed(value)))
            .collect()
    }

    fn file_8k() -> ArchiveFile {
        ArchiveFile {
            device: "ICLISTENHF6324".into(),
            start_ms: 1_711_929_667_123,
            samples: 300_333 * 8,
            sample_rate: 8000,
        }
    }

    #[test]
    fn filenames() {
        let f = file_8k();
        assert_eq!(
            hsd_mat_filename(&f, 2, None),
            "ICLISTENHF6324_20240401T000107.123Z_20240401T000607.456Z-spect_plotRes.mat"
        );
        assert_eq!(
            hsd_mat_filename(&f, 0, Some("LPF")),
            "ICLISTENHF6324_20240401T000107.123Z_20240401T000607.456Z-LPF-spect_fullRes.mat"
        );
        assert_eq!(
            hsd_mat_filename(&f, 1, Some("HPF")),
            "ICLISTENHF6324_20240401T000107.123Z_20240401T000607.456Z-HPF-spect.mat"
        );
        assert_eq!(
            hsd_mat_filename(&f, 1, Some("OD")),
            "ICLISTENHF6324_20240401T000107.123Z_20240401T000607.456Z-spect.mat"
        );
    }

    #[test]
    fn plotres_structure_and_values() {
        let f = file_8k();
        let bytes = hsd_mat_bytes(&f, 2, None).unwrap();
        assert_eq!(bytes, hsd_mat_bytes(&f, 2, None).unwrap(), "deterministic");
        let vars = parse_file(&bytes);
        let names: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["SpectData", "Meta"]);
        let spect = &vars[0].1;
        let layout = oracle::spectrogram_layout(&f, 2);
        let (nf, nc) = (layout.frequencies_hz.len(), layout.column_times_ms.len());
        assert_eq!((nf, nc), (107, 1001));
        let Parsed::Double(dims, psd) = field(spect, "PSD") else {
            panic!("PSD not double")
        };
        assert_eq!(dims, &vec![nf as u32, nc as u32]);
        // Every cell equals the oracle bit for bit (NaN compared by kind).
        let mut nans = 0;
        for (j, &t) in layout.column_times_ms.iter().enumerate() {
            for (i, &fr) in layout.frequencies_hz.iter().enumerate() {
                let got = psd[j * nf + i];
                let want = oracle::psd_db_stored(&f.device, t, fr);
                if want.is_nan() {
                    assert!(got.is_nan());
                    nans += 1;
                } else {
                    assert_eq!(got, want, "cell ({i},{j})");
                }
            }
            assert_eq!(psd[j * nf], f64::NEG_INFINITY);
        }
        assert!(nans > 0);
        let Parsed::Double(dims, freq) = field(spect, "frequency") else {
            panic!()
        };
        assert_eq!((dims, freq), (&vec![nf as u32, 1], &layout.frequencies_hz));
        let Parsed::Double(dims, time) = field(spect, "time") else {
            panic!()
        };
        assert_eq!(dims, &vec![1, nc as u32]);
        assert_eq!(time[1], oracle::datenum(f.start_ms + 300));
        let Parsed::Char(_, units) = field(spect, "units") else {
            panic!()
        };
        assert_eq!(units, "dB re 1 uPa^2/Hz");
        let Parsed::Char(dims, comment) = field(spect, "processingComment") else {
            panic!()
        };
        assert_eq!(dims, &vec![1, comment.len() as u32]);
        let Parsed::Double(_, rate) = field(spect, "sampleRate") else {
            panic!()
        };
        assert_eq!(rate, &vec![8000.0]);
        let params = field(spect, "params");
        assert!(
            matches!(field(params, "windowLengthSec"), Parsed::Double(_, v) if v == &vec![0.6])
        );
        assert!(matches!(field(params, "overlap"), Parsed::Double(_, v) if v == &vec![0.5]));

        let meta = &vars[1].1;
        let Parsed::Struct(fields) = meta else {
            panic!()
        };
        let fnames: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            fnames,
            [
                "deviceID",
                "deviceCode",
                "deviceName",
                "deviceCategory",
                "deviceCategoryCode",
                "creationDate",
                "lat",
                "lon",
                "depth",
                "deviceHeading",
                "devicePitch",
                "deviceRoll",
                "siteName",
                "locationName",
                "dataQualityComments"
            ]
        );
        assert!(
            matches!(field(meta, "deviceCategoryCode"), Parsed::Char(_, s) if s == "HYDROPHONE")
        );
        assert!(matches!(field(meta, "deviceCode"), Parsed::Char(_, s) if s == &f.device));
        assert!(
            matches!(field(meta, "creationDate"), Parsed::Char(_, s) if s == "2024-04-01T01:06:07.456Z")
        );
        match field(meta, "dataQualityComments") {
            Parsed::Char(d, s) if s.is_empty() => assert_eq!(d, &vec![0, 0]),
            Parsed::Char(d, s) => assert_eq!(d, &vec![1, s.len() as u32]),
            _ => panic!(),
        }
    }

    #[test]
    fn other_resolutions() {
        // 65.4 s keeps the debug-build test fast.
        let f = ArchiveFile {
            samples: 65_400 * 8,
            ..file_8k()
        };
        for (ds, nf, nc) in [(0u8, 214, 1090), (1, 107, 1), (2, 107, 218)] {
            let vars = parse_file(&hsd_mat_bytes(&f, ds, Some("LPF")).unwrap());
            let Parsed::Double(dims, _) = field(&vars[0].1, "PSD") else {
                panic!()
            };
            assert_eq!(dims, &vec![nf, nc]);
        }
        assert!(hsd_mat_bytes(&f, 3, None).is_err());
        // Degenerate files do not panic.
        let empty = ArchiveFile {
            samples: 0,
            ..f.clone()
        };
        let vars = parse_file(&hsd_mat_bytes(&empty, 2, None).unwrap());
        assert!(matches!(field(&vars[0].1, "PSD"), Parsed::Double(d, _) if d == &vec![107, 0]));
        let zero_rate = ArchiveFile {
            sample_rate: 0,
            ..f
        };
        assert!(hsd_mat_bytes(&zero_rate, 2, None).is_ok());
    }

    /// ONC estimates 48 MB for 12 plotRes files at 64 kHz (the seed): about 4 MB each. A
    /// fullRes file holds ten times the cells (twice the bins, a column every 60 ms, not 300).
    #[test]
    fn a_five_minute_64_khz_plotres_file_is_about_four_megabytes() {
        let f = ArchiveFile {
            device: "ICLISTENHF6324".into(),
            start_ms: 1_711_929_667_123,
            samples: 300 * 64_000,
            sample_rate: 64_000,
        };
        let size = hsd_mat_bytes(&f, 2, None).unwrap().len();
        // Measured: 2,837,558 bytes (double PSD: ~6.3 MB).
        assert!((2_500_000..4_500_000).contains(&size), "{size} bytes");
        if std::env::var_os("ONC_SIM_MEASURE_FULLRES").is_some() {
            let full = hsd_mat_bytes(&f, 0, None).unwrap().len();
            eprintln!("plotRes {size} bytes, fullRes {full} bytes");
        }
    }
}
