//! ONC's spectrogram MAT layout: the 1×1 struct `SpectData` with `PSD` (frequency × time, dB,
//! double or single), `frequency` (Hz) and `time` (MATLAB datenums), and `Meta.deviceCode`.
//! Reading gives a [`SpectrogramFile`]; the clip builders replace `PSD` and `time` in a copy of
//! a source file and pass every other field and variable through unchanged.

use super::{MatError, MatFile, MatValue, NumericArray, NumericData, StructArray};
use std::ops::Range;

/// Days from MATLAB's year 0 to 1970-01-01: `datenum - 719529` = days since the Unix epoch.
const DATENUM_UNIX_EPOCH: f64 = 719_529.0;
const SECONDS_PER_DAY: f64 = 86_400.0;

/// The spectrogram of one ONC MAT file.
#[derive(Debug, Clone, PartialEq)]
pub struct SpectrogramFile {
    /// dB, nfreq × ntime column-major: column `j` is `psd[j * nfreq..(j + 1) * nfreq]`. NaN and
    /// -Inf are kept.
    pub psd: Vec<f64>,
    pub nfreq: usize,
    pub ntime: usize,
    pub frequency_hz: Vec<f64>,
    /// UTC seconds since 1970 of each column, from the datenums: `(datenum - 719529) * 86400`.
    pub time_s: Vec<f64>,
    /// `Meta.deviceCode`, if present.
    pub device: Option<String>,
}

fn spect_error(reason: String) -> MatError {
    MatError::Spectrogram { reason }
}

fn clip_error(reason: String) -> MatError {
    MatError::Clip { reason }
}

/// Read ONC's `SpectData` (and `Meta.deviceCode`) from a MAT file.
pub fn spectrogram_from_mat(file: &MatFile) -> Result<SpectrogramFile, MatError> {
    let parts = SpectParts::find(file)?;
    let device = file
        .get("Meta")
        .and_then(|m| m.field("deviceCode"))
        .and_then(MatValue::as_text);
    Ok(SpectrogramFile {
        psd: parts.psd.real.to_f64(),
        nfreq: parts.nfreq,
        ntime: parts.ntime,
        frequency_hz: parts.frequency.real.to_f64(),
        time_s: parts
            .time
            .real
            .to_f64()
            .iter()
            .map(|d| (d - DATENUM_UNIX_EPOCH) * SECONDS_PER_DAY)
            .collect(),
        device,
    })
}

/// A copy of `file` whose `SpectData.PSD` keeps only `columns` and `SpectData.time` only those
/// entries, each in its original class and orientation; everything else is passed through.
pub fn crop_spectrogram_mat(file: &MatFile, columns: Range<usize>) -> Result<MatFile, MatError> {
    let parts = SpectParts::find(file)?;
    check_columns(&columns, parts.ntime, 0)?;
    let nfreq = parts.nfreq;
    let psd = parts
        .psd
        .real
        .select(columns.clone().flat_map(|j| j * nfreq..(j + 1) * nfreq));
    let time = parts.time.real.select(columns.clone());
    replace_psd_and_time(file, psd, nfreq, time, columns.len())
}

/// A copy of `template` (an ONC spectrogram MAT file) with `SpectData.PSD` replaced by `psd`
/// (nfreq × `time_s.len()`, column-major, dB) and `SpectData.time` by the datenums of `time_s`
/// (UTC seconds since 1970). Both keep the template's numeric class (single stays single) and
/// orientation; `frequency`, the other `SpectData` fields, `Meta` and other variables are passed
/// through, so `nfreq` must equal the template's number of frequencies. This is what the clip
/// stage calls with the stitched columns (NaN columns for gaps included).
pub fn spectrogram_clip_mat(
    template: &MatFile,
    psd: &[f64],
    nfreq: usize,
    time_s: &[f64],
) -> Result<MatFile, MatError> {
    let datenums: Vec<f64> = time_s
        .iter()
        .map(|t| t / SECONDS_PER_DAY + DATENUM_UNIX_EPOCH)
        .collect();
    clip_from_datenums(template, psd, nfreq, &datenums)
}

/// A clip MAT whose PSD and time are the given column ranges of several ONC spectrogram MAT
/// files, in order. The first file is the template (its other fields and `Meta` are kept); all
/// must have the same frequency vector. Times are copied as datenums (no conversion loss).
pub fn concat_spectrogram_mats(parts: &[(MatFile, Range<usize>)]) -> Result<MatFile, MatError> {
    let Some((template, _)) = parts.first() else {
        return Err(clip_error(
            "no source files given to concatenate".to_string(),
        ));
    };
    let first = SpectParts::find(template)?;
    let frequency = first.frequency.real.to_f64();
    let mut psd = Vec::new();
    let mut datenums = Vec::new();
    for (i, (file, columns)) in parts.iter().enumerate() {
        let p = SpectParts::find(file)?;
        let f = p.frequency.real.to_f64();
        let same = f.len() == frequency.len()
            && f.iter()
                .zip(&frequency)
                .all(|(a, b)| a.to_bits() == b.to_bits());
        if !same {
            return Err(clip_error(format!(
                "source file {} has a different SpectData.frequency than file 1 ({} vs {} \
                 frequencies)",
                i + 1,
                f.len(),
                frequency.len()
            )));
        }
        check_columns(columns, p.ntime, i + 1)?;
        let values = p.psd.real.to_f64();
        let nfreq = p.nfreq;
        psd.extend_from_slice(
            values
                .get(columns.start * nfreq..columns.end * nfreq)
                .unwrap_or_default(),
        );
        datenums.extend_from_slice(
            p.time
                .real
                .to_f64()
                .get(columns.clone())
                .unwrap_or_default(),
        );
    }
    clip_from_datenums(template, &psd, first.nfreq, &datenums)
}

fn check_columns(columns: &Range<usize>, ntime: usize, file_number: usize) -> Result<(), MatError> {
    if columns.start > columns.end || columns.end > ntime {
        let which = if file_number == 0 {
            String::new()
        } else {
            format!(" of source file {file_number}")
        };
        return Err(clip_error(format!(
            "columns {}..{}{which} are outside its {ntime} time columns",
            columns.start, columns.end
        )));
    }
    Ok(())
}

fn clip_from_datenums(
    template: &MatFile,
    psd: &[f64],
    nfreq: usize,
    datenums: &[f64],
) -> Result<MatFile, MatError> {
    let parts = SpectParts::find(template)?;
    if nfreq != parts.nfreq {
        return Err(clip_error(format!(
            "the PSD has {nfreq} frequencies but the template's SpectData.frequency has {}",
            parts.nfreq
        )));
    }
    let ntime = datenums.len();
    if nfreq.checked_mul(ntime) != Some(psd.len()) {
        return Err(clip_error(format!(
            "{} PSD values are not {nfreq} frequencies × {ntime} times",
            psd.len()
        )));
    }
    let psd = parts.psd.real.same_class_from_f64(psd);
    let time = parts.time.real.same_class_from_f64(datenums);
    replace_psd_and_time(template, psd, nfreq, time, ntime)
}

/// A copy of `file` with `SpectData.PSD` = `psd` (nfreq × ntime) and `SpectData.time` = `time`
/// (ntime entries, the original orientation).
fn replace_psd_and_time(
    file: &MatFile,
    psd: NumericData,
    nfreq: usize,
    time: NumericData,
    ntime: usize,
) -> Result<MatFile, MatError> {
    let mut out = file.clone();
    let spect = out
        .get_mut("SpectData")
        .ok_or_else(|| spect_error("the MAT file has no SpectData variable".to_string()))?;
    if let Some(MatValue::Numeric(a)) = spect.field_mut("PSD") {
        a.dims = vec![nfreq, ntime];
        a.real = psd;
    }
    if let Some(MatValue::Numeric(a)) = spect.field_mut("time") {
        a.dims = vector_dims(&a.dims, ntime);
        a.real = time;
    }
    Ok(out)
}

/// Dimensions of a vector resized to `n` entries, keeping row/column orientation (a row when it
/// cannot tell).
fn vector_dims(dims: &[usize], n: usize) -> Vec<usize> {
    match dims {
        [rows, 1] if *rows != 1 => vec![n, 1],
        _ => vec![1, n],
    }
}

/// `SpectData`'s PSD, frequency and time, checked to agree: PSD is nfreq × ntime.
struct SpectParts<'a> {
    psd: &'a NumericArray,
    frequency: &'a NumericArray,
    time: &'a NumericArray,
    nfreq: usize,
    ntime: usize,
}

impl<'a> SpectParts<'a> {
    fn find(file: &'a MatFile) -> Result<SpectParts<'a>, MatError> {
        let spect = match file.get("SpectData") {
            Some(MatValue::Struct(s)) => s,
            Some(other) => {
                return Err(spect_error(format!(
                    "SpectData is a {} array, expected a 1×1 struct",
                    other.class_name()
                )));
            }
            None => {
                let names: Vec<&str> = file.variables.iter().map(|(n, _)| n.as_str()).collect();
                return Err(spect_error(format!(
                    "the MAT file has no SpectData variable (it has: {})",
                    names.join(", ")
                )));
            }
        };
        if spect.dims.iter().product::<usize>() != 1 {
            return Err(spect_error(format!(
                "SpectData is a {} struct array, expected 1×1",
                dims_text(&spect.dims)
            )));
        }
        let psd = numeric_field(spect, "PSD")?;
        if !matches!(psd.real, NumericData::F64(_) | NumericData::F32(_)) {
            return Err(spect_error(format!(
                "SpectData.PSD is {}, expected double or single",
                psd.real.class_name()
            )));
        }
        let frequency = vector_field(spect, "frequency")?;
        let time = vector_field(spect, "time")?;
        let (nfreq, ntime) = (frequency.real.len(), time.real.len());
        let [rows, cols] = psd.dims[..] else {
            return Err(spect_error(format!(
                "SpectData.PSD is {}, expected a 2-D frequency × time matrix",
                dims_text(&psd.dims)
            )));
        };
        if rows != nfreq || cols != ntime || rows.checked_mul(cols) != Some(psd.real.len()) {
            return Err(spect_error(format!(
                "SpectData.PSD is {rows}×{cols} but SpectData.frequency has {nfreq} entries and \
                 SpectData.time {ntime}: expected frequency × time"
            )));
        }
        Ok(SpectParts {
            psd,
            frequency,
            time,
            nfreq,
            ntime,
        })
    }
}

fn numeric_field<'a>(spect: &'a StructArray, name: &str) -> Result<&'a NumericArray, MatError> {
    match spect.field(name) {
        Some(MatValue::Numeric(a)) if a.imag.is_none() => Ok(a),
        Some(other) => Err(spect_error(format!(
            "SpectData.{name} is a {}{} array, expected real numbers",
            if matches!(other, MatValue::Numeric(_)) {
                "complex "
            } else {
                ""
            },
            other.class_name()
        ))),
        None => Err(spect_error(format!(
            "SpectData has no {name} field (it has: {})",
            spect.field_names.join(", ")
        ))),
    }
}

/// A numeric row or column vector (any numeric class).
fn vector_field<'a>(spect: &'a StructArray, name: &str) -> Result<&'a NumericArray, MatError> {
    let a = numeric_field(spect, name)?;
    if !a.real.is_empty() && a.dims.iter().filter(|&&d| d != 1).count() > 1 {
        return Err(spect_error(format!(
            "SpectData.{name} is {}, expected a row or column vector",
            dims_text(&a.dims)
        )));
    }
    Ok(a)
}

fn dims_text(dims: &[usize]) -> String {
    dims.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("×")
}
