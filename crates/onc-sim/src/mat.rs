//! HSD spectrogram MAT-file writer of the simulator: (source [`ArchiveFile`], downsample option,
//! diversion mode) → the ONC data-product file name and the bytes of a MAT Level 5 ("-v7") file
//! holding the 1×1 structs `SpectData` and `Meta`, as ONC's HSD `mat` product does.
//!
//! Format (MATLAB "MAT-File Format", Level 5): a 128-byte header, then one `miCOMPRESSED`
//! element per variable, each a zlib stream of one `miMATRIX` element. Inside a matrix every
//! sub-element is padded to 8 bytes; the compressed elements themselves are not padded (their
//! byte count is the exact zlib length), as MATLAB writes them and scipy reads them.
//! Doubles are `miDOUBLE`, chars `miUINT16` (UTF-16 code units), struct field names use a
//! field-name length of 32 so the names block is never ≤ 4 bytes (some readers panic on that).
//! PSD values come from [`oracle::psd_db`] at each column time and frequency, so they include the
//! `-Inf` DC row and scattered NaNs, like real files.

use onc_format::stamp::stamp_of_ms;

use crate::archive::ArchiveFile;
use crate::oracle::{self, device_seed, hash3};
use flate2::Compression;
use flate2::write::ZlibEncoder;
use std::io::Write;

// MAT data types.
const MI_INT8: u32 = 1;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_DOUBLE: u32 = 9;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
// MAT array classes.
const MX_STRUCT: u32 = 2;
const MX_CHAR: u32 = 4;
const MX_DOUBLE: u32 = 6;
/// Field-name slot width (names up to 31 bytes + NUL), as MATLAB writes it.
const FIELD_NAME_LEN: usize = 32;

/// Header text: MATLAB's form (with the comma after "MAT-file"); a fixed date keeps the output
/// deterministic.
const HEADER_TEXT: &str =
    "MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Apr  1 00:00:00 2024";

/// A MATLAB value as written here.
enum Value {
    /// A real double array: dims (rows, cols) and column-major data.
    Double(u32, u32, Vec<f64>),
    /// A char row vector (0×0 when empty).
    Char(String),
    /// A 1×1 struct with ordered fields.
    Struct(Vec<(&'static str, Value)>),
}

impl Value {
    fn scalar(v: f64) -> Value {
        Value::Double(1, 1, vec![v])
    }
    fn text(s: &str) -> Value {
        Value::Char(s.to_string())
    }
}

fn len_u32(n: usize) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| format!("MAT element of {n} bytes exceeds 4 GiB"))
}

/// Append a data element: 8-byte tag (type, byte count), the data, zero padding to 8 bytes.
fn element(out: &mut Vec<u8>, ty: u32, data: &[u8]) -> Result<(), String> {
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&len_u32(data.len())?.to_le_bytes());
    out.extend_from_slice(data);
    out.resize(out.len() + (8 - data.len() % 8) % 8, 0);
    Ok(())
}

/// A complete `miMATRIX` element (tag included) for `value` named `name` ("" for fields).
fn matrix(name: &str, value: &Value) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let (class, rows, cols) = match value {
        Value::Double(r, c, _) => (MX_DOUBLE, *r, *c),
        Value::Char(s) if s.is_empty() => (MX_CHAR, 0, 0),
        Value::Char(s) => (MX_CHAR, 1, len_u32(s.encode_utf16().count())?),
        Value::Struct(_) => (MX_STRUCT, 1, 1),
    };
    // Array flags: class in the low byte, no complex/global/logical bits; nzmax 0.
    let mut flags = Vec::with_capacity(8);
    flags.extend_from_slice(&class.to_le_bytes());
    flags.extend_from_slice(&0u32.to_le_bytes());
    element(&mut body, MI_UINT32, &flags)?;
    let mut dims = Vec::with_capacity(8);
    dims.extend_from_slice(&rows.to_le_bytes());
    dims.extend_from_slice(&cols.to_le_bytes());
    element(&mut body, MI_INT32, &dims)?;
    element(&mut body, MI_INT8, name.as_bytes())?;
    match value {
        Value::Double(r, c, data) => {
            if u64::from(*r) * u64::from(*c) != data.len() as u64 {
                return Err(format!("{r}x{c} array with {} values", data.len()));
            }
            let mut bytes = Vec::with_capacity(data.len() * 8);
            for v in data {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
            element(&mut body, MI_DOUBLE, &bytes)?;
        }
        Value::Char(s) => {
            let bytes: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
            element(&mut body, MI_UINT16, &bytes)?;
        }
        Value::Struct(fields) => {
            // Field-name length as a small data element: type and size in one u32, value after.
            body.extend_from_slice(&(MI_INT32 | (4 << 16)).to_le_bytes());
            body.extend_from_slice(&(FIELD_NAME_LEN as u32).to_le_bytes());
            let mut names = vec![0u8; fields.len() * FIELD_NAME_LEN];
            for (i, (field, _)) in fields.iter().enumerate() {
                if field.len() >= FIELD_NAME_LEN {
                    return Err(format!("field name {field} longer than 31 bytes"));
                }
                let at = i * FIELD_NAME_LEN;
                if let Some(slot) = names.get_mut(at..at + field.len()) {
                    slot.copy_from_slice(field.as_bytes());
                }
            }
            element(&mut body, MI_INT8, &names)?;
            for (_, v) in fields {
                body.extend_from_slice(&matrix("", v)?);
            }
        }
    }
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&MI_MATRIX.to_le_bytes());
    out.extend_from_slice(&len_u32(body.len())?.to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// A `miCOMPRESSED` element (tag + zlib stream, unpadded) holding the variable `name`.
fn compressed_variable(name: &str, value: &Value) -> Result<Vec<u8>, String> {
    let raw = matrix(name, value)?;
    // Fast compression: the PSD is mostly noise-like doubles; level 1 costs a fraction of the
    // time of level 6 for nearly the same size. zlib output is deterministic for a given level.
    let mut z = ZlibEncoder::new(Vec::new(), Compression::fast());
    z.write_all(&raw)
        .map_err(|e| format!("compressing {name}: {e}"))?;
    let zbytes = z.finish().map_err(|e| format!("compressing {name}: {e}"))?;
    let mut out = Vec::with_capacity(zbytes.len() + 8);
    out.extend_from_slice(&MI_COMPRESSED.to_le_bytes());
    out.extend_from_slice(&len_u32(zbytes.len())?.to_le_bytes());
    out.extend_from_slice(&zbytes);
    Ok(out)
}

/// The 128-byte Level 5 header.
fn header() -> Vec<u8> {
    let mut h = HEADER_TEXT.as_bytes().to_vec();
    h.resize(116, b' ');
    h.extend_from_slice(&[0u8; 8]); // subsystem data offset: none
    h.extend_from_slice(&0x0100u16.to_le_bytes()); // version
    h.extend_from_slice(b"IM"); // endian indicator "MI" written little-endian
    h
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
fn meta(file: &ArchiveFile) -> Value {
    let seed = device_seed(&file.device);
    // ONC produces the file some time after the data: a fixed hour after the source file's end.
    let created = iso(file.end_ms().saturating_add(3_600_000));
    let quality = if hash3(seed, file.start_ms as u64, 0x5143).is_multiple_of(10) {
        "Simulated: elevated self-noise during this period."
    } else {
        ""
    };
    Value::Struct(vec![
        ("deviceID", Value::scalar((20_000 + seed % 10_000) as f64)),
        ("deviceCode", Value::text(&file.device)),
        (
            "deviceName",
            Value::Char(format!(
                "Simulated Ocean Sonics icListen HF Hydrophone {}",
                file.device
            )),
        ),
        ("deviceCategory", Value::text("Hydrophone")),
        ("deviceCategoryCode", Value::text("HYDROPHONE")),
        ("creationDate", Value::Char(created)),
        ("lat", Value::scalar(hashed_range(seed, 1, 47.5, 50.5))),
        ("lon", Value::scalar(hashed_range(seed, 2, -129.0, -123.0))),
        ("depth", Value::scalar(hashed_range(seed, 3, 20.0, 2_700.0))),
        (
            "deviceHeading",
            Value::scalar(hashed_range(seed, 4, 0.0, 360.0)),
        ),
        (
            "devicePitch",
            Value::scalar(hashed_range(seed, 5, -5.0, 5.0)),
        ),
        (
            "deviceRoll",
            Value::scalar(hashed_range(seed, 6, -5.0, 5.0)),
        ),
        ("siteName", Value::text("Simulated Site")),
        (
            "locationName",
            Value::Char(format!("Simulated Location ({})", file.device)),
        ),
        ("dataQualityComments", Value::text(quality)),
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
        0 => ("full resolution", 0.2),
        1 => ("one-minute averages", 60.0),
        2 => ("plot resolution", 0.6),
        other => return Err(format!("unknown spectral data downsample option {other}")),
    };
    let layout = oracle::spectrogram_layout(file, downsample);
    let nfreq = len_u32(layout.frequencies_hz.len())?;
    let ncols = len_u32(layout.column_times_ms.len())?;
    // Column-major freq × time: each column (one time) is a contiguous spectrum.
    let mut psd = Vec::new();
    psd.try_reserve(layout.frequencies_hz.len() * layout.column_times_ms.len())
        .map_err(|e| format!("PSD too large: {e}"))?;
    for &t in &layout.column_times_ms {
        for &f in &layout.frequencies_hz {
            psd.push(oracle::psd_db(&file.device, t, f));
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
    let spect = Value::Struct(vec![
        ("PSD", Value::Double(nfreq, ncols, psd)),
        (
            "frequency",
            Value::Double(nfreq, 1, layout.frequencies_hz.clone()),
        ),
        ("time", Value::Double(1, ncols, times)),
        ("processingComment", Value::Char(comment)),
        ("units", Value::text("dB re 1 uPa^2/Hz")),
        ("sampleRate", Value::scalar(f64::from(file.sample_rate))),
        (
            "params",
            Value::Struct(vec![
                ("windowLengthSec", Value::scalar(window_sec)),
                ("overlap", Value::scalar(0.5)),
            ]),
        ),
    ]);
    let mut out = header();
    out.extend_from_slice(&compressed_variable("SpectData", &spect)?);
    out.extend_from_slice(&compressed_variable("Meta", &meta(file))?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::ZlibDecoder;
    use std::io::Read;

    /// A parsed element: type and data (small format handled).
    fn read_element(b: &[u8]) -> (u32, Vec<u8>, usize) {
        let tag = u32::from_le_bytes(b[0..4].try_into().unwrap());
        if tag >> 16 != 0 {
            // Small data element.
            let n = (tag >> 16) as usize;
            return (tag & 0xFFFF, b[4..4 + n].to_vec(), 8);
        }
        let n = u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize;
        let padded = n.div_ceil(8) * 8;
        (tag, b[8..8 + n].to_vec(), 8 + padded)
    }

    #[derive(Debug)]
    enum Parsed {
        Double(Vec<u32>, Vec<f64>),
        Char(Vec<u32>, String),
        Struct(Vec<(String, Parsed)>),
    }

    /// Parse one miMATRIX element (tag included) into (name, value, bytes consumed).
    fn read_matrix(b: &[u8]) -> (String, Parsed, usize) {
        let (ty, body, used) = read_element(b);
        assert_eq!(ty, MI_MATRIX);
        // Matrix data must itself consist of 8-aligned elements.
        assert_eq!(body.len() % 8, 0);
        let mut at = 0;
        let (ty, flags, n) = read_element(&body[at..]);
        at += n;
        assert_eq!(ty, MI_UINT32);
        let class = flags[0] as u32;
        let (ty, dims, n) = read_element(&body[at..]);
        at += n;
        assert_eq!(ty, MI_INT32);
        let dims: Vec<u32> = dims
            .chunks(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let (ty, name, n) = read_element(&body[at..]);
        at += n;
        assert_eq!(ty, MI_INT8);
        let name = String::from_utf8(name).unwrap();
        let value = match class {
            MX_DOUBLE => {
                let (ty, data, n) = read_element(&body[at..]);
                at += n;
                assert_eq!(ty, MI_DOUBLE);
                let v: Vec<f64> = data
                    .chunks(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                assert_eq!(v.len() as u32, dims.iter().product::<u32>());
                Parsed::Double(dims, v)
            }
            MX_CHAR => {
                let (ty, data, n) = read_element(&body[at..]);
                at += n;
                assert_eq!(ty, MI_UINT16);
                let units: Vec<u16> = data
                    .chunks(2)
                    .map(|c| u16::from_le_bytes(c.try_into().unwrap()))
                    .collect();
                assert_eq!(units.len() as u32, dims.iter().product::<u32>());
                Parsed::Char(dims, String::from_utf16(&units).unwrap())
            }
            MX_STRUCT => {
                assert_eq!(dims, vec![1, 1]);
                let (ty, len, n) = read_element(&body[at..]);
                at += n;
                assert_eq!((ty, len), (MI_INT32, 32u32.to_le_bytes().to_vec()));
                let (ty, names, n) = read_element(&body[at..]);
                at += n;
                assert_eq!(ty, MI_INT8);
                let mut fields = Vec::new();
                for chunk in names.chunks(32) {
                    let end = chunk.iter().position(|&c| c == 0).unwrap();
                    let fname = String::from_utf8(chunk[..end].to_vec()).unwrap();
                    let (fieldname, v, n) = read_matrix(&body[at..]);
                    assert_eq!(fieldname, "");
                    at += n;
                    fields.push((fname, v));
                }
                Parsed::Struct(fields)
            }
            other => panic!("class {other}"),
        };
        assert_eq!(at, body.len(), "trailing bytes in {name}");
        (name, value, used)
    }

    fn field<'a>(s: &'a Parsed, name: &str) -> &'a Parsed {
        match s {
            Parsed::Struct(f) => &f.iter().find(|(n, _)| n == name).unwrap().1,
            _ => panic!("not a struct"),
        }
    }

    /// Header check, then the two compressed variables inflated and parsed.
    fn parse_file(bytes: &[u8]) -> Vec<(String, Parsed)> {
        assert!(bytes[..116].starts_with(b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: "));
        assert!(bytes[HEADER_TEXT.len()..116].iter().all(|&c| c == b' '));
        assert_eq!(&bytes[116..124], &[0u8; 8]);
        assert_eq!(&bytes[124..126], &[0x00, 0x01]);
        assert_eq!(&bytes[126..128], b"IM");
        let mut at = 128;
        let mut vars = Vec::new();
        while at < bytes.len() {
            let ty = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
            let n = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            assert_eq!(ty, MI_COMPRESSED);
            let mut raw = Vec::new();
            ZlibDecoder::new(&bytes[at + 8..at + 8 + n])
                .read_to_end(&mut raw)
                .unwrap();
            let (name, value, used) = read_matrix(&raw);
            assert_eq!(used, raw.len());
            vars.push((name, value));
            at += 8 + n;
        }
        assert_eq!(at, bytes.len());
        vars
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
                let want = oracle::psd_db(&f.device, t, fr);
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
        for (ds, nf, nc) in [(0u8, 214, 654), (1, 107, 1), (2, 107, 218)] {
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
}
