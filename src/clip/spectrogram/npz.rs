//! NPZ writer: a [`SpectrogramClip`] + [`NpzMeta`] → the bytes of a `.npz` file that
//! `numpy.load` reads, with the keys the seed's Python tool writes (SPEC §6):
//!
//! | key | dtype, shape |
//! |---|---|
//! | `spectrogram` | `<f8`, `(nfreq, ncols)`, C order: rows are frequencies, as ONC's PSD |
//! | `frequency` | `<f8`, `(nfreq,)`, Hz |
//! | `time` | `<f8`, `(ncols,)`, each column's UTC seconds since 1970 |
//! | `seconds_per_column` | `<f8`, `()` |
//! | `clip_start`, `clip_end` | `<U..`, `()`, ISO 8601 UTC like `2024-04-01T04:24:40.000Z` |
//! | `device`, `description` | `<U..`, `()` |
//!
//! Errors ([`NpzError`]): a clip whose arrays disagree with its shape, or an entry too large
//! for a ZIP without ZIP64 (4 GiB).
//!
//! Written by hand rather than with `npyz` or `ndarray-npy`: `ndarray-npy` cannot write
//! numpy unicode (`<U`) scalars, and `npyz`'s NPZ support pulls in `zip` 0.6 with its default
//! features (C builds of zstd and bzip2, AES) plus a pest-based literal parser — a lot of
//! build time on a shared machine for ~100 lines of two frozen formats (NPY 1.0, ZIP "stored"
//! entries, exactly what `numpy.savez` writes). The CRC comes from `flate2`, already a
//! dependency. The output is deterministic (fixed 1980-01-01 entry dates), which suits the
//! content-addressed cache.

use super::{SpectrogramClip, iso_utc};

/// What the NPZ says besides the data.
#[derive(Debug, Clone, Copy)]
pub struct NpzMeta<'a> {
    /// The (padded) clip window, UTC seconds since 1970; written as ISO 8601 strings.
    pub clip_start_s: f64,
    pub clip_end_s: f64,
    /// Device code, e.g. `ICLISTENHF6324`.
    pub device: &'a str,
    /// Free text (the row's label or description); may be empty.
    pub description: &'a str,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NpzError {
    #[error(
        "write NPZ: the clip's arrays do not match its shape ({psd} PSD values, {nfreq} frequencies × {ncols} times, {frequencies} frequency values)"
    )]
    Shape {
        psd: usize,
        nfreq: usize,
        ncols: usize,
        frequencies: usize,
    },
    #[error("write NPZ: entry {entry} would be {bytes} bytes, more than a ZIP without ZIP64 holds")]
    TooLarge { entry: String, bytes: usize },
}

/// The `.npz` bytes of `clip` (entries stored uncompressed, like `numpy.savez`).
pub fn write_npz(clip: &SpectrogramClip, meta: &NpzMeta) -> Result<Vec<u8>, NpzError> {
    let (nfreq, ncols) = (clip.nfreq, clip.time_s.len());
    if nfreq.checked_mul(ncols) != Some(clip.psd.len()) || clip.frequency_hz.len() != nfreq {
        return Err(NpzError::Shape {
            psd: clip.psd.len(),
            nfreq,
            ncols,
            frequencies: clip.frequency_hz.len(),
        });
    }
    // numpy's C order for shape (nfreq, ncols) is row by row, i.e. frequency by frequency:
    // the transpose of the column-major PSD.
    let spectrogram =
        (0..nfreq).flat_map(|row| (0..ncols).map(move |col| clip.psd[col * nfreq + row]));
    let entries = [
        ("spectrogram", npy_f64(&[nfreq, ncols], spectrogram)),
        (
            "frequency",
            npy_f64(&[nfreq], clip.frequency_hz.iter().copied()),
        ),
        ("time", npy_f64(&[ncols], clip.time_s.iter().copied())),
        (
            "seconds_per_column",
            npy_f64(&[], std::iter::once(clip.seconds_per_column)),
        ),
        (
            "clip_start",
            npy_unicode_scalar(&iso_utc(meta.clip_start_s)),
        ),
        ("clip_end", npy_unicode_scalar(&iso_utc(meta.clip_end_s))),
        ("device", npy_unicode_scalar(meta.device)),
        ("description", npy_unicode_scalar(meta.description)),
    ];
    let mut zip = StoredZip::default();
    for (key, npy) in &entries {
        zip.add(&format!("{key}.npy"), npy)?;
    }
    zip.finish()
}

/// NPY 1.0 header for `descr` and `shape`: magic, version, length, then the dict padded with
/// spaces and a newline so the data starts on a 64-byte boundary (as numpy writes it).
fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let shape = match shape {
        [] => "()".to_string(),
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // 6 magic + 2 version + 2 length bytes precede the dict; the dict ends with '\n'.
    let unpadded = 10 + dict.len() + 1;
    dict.extend(std::iter::repeat_n(
        ' ',
        unpadded.next_multiple_of(64) - unpadded,
    ));
    dict.push('\n');
    let mut out = Vec::with_capacity(10 + dict.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    // The dict is a few dozen bytes (shape numbers have at most 20 digits): always fits u16.
    out.extend_from_slice(&u16::try_from(dict.len()).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// A little-endian float64 array.
fn npy_f64(shape: &[usize], values: impl Iterator<Item = f64>) -> Vec<u8> {
    let mut out = npy_header("<f8", shape);
    for value in values {
        out.extend_from_slice(&value.to_le_bytes());
    }
    out
}

/// A unicode scalar (`<U{n}`, shape `()`): UTF-32LE, one code point per 4 bytes. numpy has no
/// zero-length unicode dtype, so an empty string is `<U1` holding a NUL (which numpy strips).
fn npy_unicode_scalar(text: &str) -> Vec<u8> {
    let chars = text.chars().count().max(1);
    let mut out = npy_header(&format!("<U{chars}"), &[]);
    for c in text.chars() {
        out.extend_from_slice(&u32::from(c).to_le_bytes());
    }
    if text.is_empty() {
        out.extend_from_slice(&[0; 4]);
    }
    out
}

/// A ZIP archive of uncompressed ("stored") entries, built in memory.
#[derive(Default)]
struct StoredZip {
    out: Vec<u8>,
    central: Vec<u8>,
    entries: u16,
}

/// ZIP 2.0 ("version needed to extract"), as numpy's zipfile writes for stored entries.
const ZIP_VERSION: u16 = 20;
/// MS-DOS date of 1980-01-01 (the earliest ZIP date), time 00:00: deterministic bytes.
const DOS_DATE: u16 = (1 << 5) | 1;
const DOS_TIME: u16 = 0;

impl StoredZip {
    fn add(&mut self, name: &str, data: &[u8]) -> Result<(), NpzError> {
        let too_large = |bytes| NpzError::TooLarge {
            entry: name.to_string(),
            bytes,
        };
        let size = u32::try_from(data.len()).map_err(|_| too_large(data.len()))?;
        let offset = u32::try_from(self.out.len()).map_err(|_| too_large(self.out.len()))?;
        // Entry names are our fixed keys: short.
        let name_len = u16::try_from(name.len()).unwrap_or(u16::MAX);
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let crc = crc.sum();

        let u16le = |v: u16| v.to_le_bytes();
        let u32le = |v: u32| v.to_le_bytes();
        // Local file header.
        for field in [
            &u32le(0x0403_4b50)[..],
            &u16le(ZIP_VERSION),
            &u16le(0), // flags
            &u16le(0), // method: stored
            &u16le(DOS_TIME),
            &u16le(DOS_DATE),
            &u32le(crc),
            &u32le(size), // compressed size
            &u32le(size),
            &u16le(name_len),
            &u16le(0), // extra field length
            name.as_bytes(),
        ] {
            self.out.extend_from_slice(field);
        }
        self.out.extend_from_slice(data);
        // Central directory record.
        for field in [
            &u32le(0x0201_4b50)[..],
            &u16le(ZIP_VERSION), // made by
            &u16le(ZIP_VERSION), // needed
            &u16le(0),
            &u16le(0),
            &u16le(DOS_TIME),
            &u16le(DOS_DATE),
            &u32le(crc),
            &u32le(size),
            &u32le(size),
            &u16le(name_len),
            &u16le(0), // extra
            &u16le(0), // comment
            &u16le(0), // disk number
            &u16le(0), // internal attributes
            &u32le(0), // external attributes
            &u32le(offset),
            name.as_bytes(),
        ] {
            self.central.extend_from_slice(field);
        }
        self.entries += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<u8>, NpzError> {
        let too_large = |bytes| NpzError::TooLarge {
            entry: "central directory".to_string(),
            bytes,
        };
        let offset = u32::try_from(self.out.len()).map_err(|_| too_large(self.out.len()))?;
        let size = u32::try_from(self.central.len()).map_err(|_| too_large(self.central.len()))?;
        self.out.extend_from_slice(&self.central);
        for field in [
            &0x0605_4b50u32.to_le_bytes()[..],
            &0u16.to_le_bytes(), // this disk
            &0u16.to_le_bytes(), // disk with the central directory
            &self.entries.to_le_bytes(),
            &self.entries.to_le_bytes(),
            &size.to_le_bytes(),
            &offset.to_le_bytes(),
            &0u16.to_le_bytes(), // comment length
        ] {
            self.out.extend_from_slice(field);
        }
        Ok(self.out)
    }
}
