//! One clip node's work: source files on disk + a padded window → clip files in every format.
//!
//! Input: a [`CutRequest`] (the media, formats, gap policy, window and the stored source files
//! that cover it). Output: [`CutOutcome::Pieces`] — one piece, or one per contiguous stretch with
//! `gaps = "split"` — each with its files' bytes by extension and the facts a sidecar reports;
//! or [`CutOutcome::Skipped`] with `gaps = "skip"`. Errors are one line naming the file and
//! problem (from the decoders and writers in [`super::mat`], [`super::audio`] and
//! [`super::spectrogram`]). Synchronous and CPU-bound: the executor calls it on a blocking
//! thread.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use crate::plan::{ClipFormat, GapPolicy};

use super::audio::{AudioClipError, AudioSource, clip_audio, write_flac, write_wav};
use super::mat::MatError;
use super::mat::{
    MatFile, SpectrogramFile, read_mat, spectrogram_clip_mat, spectrogram_from_mat, write_mat,
};
use super::spectrogram::npz::{NpzError, NpzMeta, write_npz};
use super::spectrogram::picture::{RenderError, render_png};
use super::spectrogram::{SpectrogramClipError, SpectrogramInput, clip_spectrogram, iso_utc};
use super::{SourceUse, Span};

pub use crate::plan::Media;

/// A stored source file: ONC's name (its start time is in it) and where its bytes are.
#[derive(Debug, Clone)]
pub struct SourceFile<'a> {
    pub name: &'a str,
    pub path: &'a Path,
}

/// Everything one clip node needs.
#[derive(Debug, Clone)]
pub struct CutRequest<'a> {
    pub media: Media,
    /// `npz`, `mat`, `png` for spectrograms; `flac` or `wav` for audio.
    pub formats: &'a [ClipFormat],
    pub sources: &'a [SourceFile<'a>],
    /// The padded window `[start, end)`, ns since 1970 UTC.
    pub clip_start_ns: i64,
    pub clip_end_ns: i64,
    pub gaps: GapPolicy,
    pub device: &'a str,
    /// The window's label, written into the NPZ `description` and the PNG title.
    pub description: &'a str,
    /// Clip basename; split pieces get `_part1`, `_part2`, ….
    pub name: &'a str,
    /// Decoded spectrogram files shared by the clips of one run; `None` decodes every source
    /// for this clip alone.
    pub decoded: Option<&'a DecodedFiles>,
}

/// One decoded spectrogram source: the MAT tree (the template of MAT clips) and its data.
pub struct DecodedSpectrogram {
    pub mat: MatFile,
    pub spectrogram: SpectrogramFile,
}

/// A bounded, least-recently-used set of decoded spectrogram files, keyed by their stored path
/// (content-addressed, so a path always holds the same bytes).
///
/// Inflating a MAT file is nearly all the cost of a spectrogram clip, and event clips cluster:
/// 1,000 events over an hour of archive touch 12 files. Decoding each once per run instead of
/// once per clip is what makes the clip stage fast; the byte budget keeps memory bounded
/// whatever the files' size (a file larger than the budget is simply not kept).
pub struct DecodedFiles {
    budget_bytes: usize,
    /// Most recently used last.
    entries: Mutex<Vec<(PathBuf, Arc<DecodedSpectrogram>, usize)>>,
}

impl std::fmt::Debug for DecodedFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.entries.lock().map_or(0, |entries| entries.len());
        f.debug_struct("DecodedFiles")
            .field("budget_bytes", &self.budget_bytes)
            .field("files", &held)
            .finish()
    }
}

impl DecodedFiles {
    pub fn new(budget_bytes: usize) -> Self {
        DecodedFiles {
            budget_bytes,
            entries: Mutex::new(Vec::new()),
        }
    }

    /// The decoded file at `path`, decoding it (outside the lock) on a miss.
    fn get_or_decode(
        &self,
        path: &Path,
        decode: impl FnOnce() -> Result<DecodedSpectrogram, CutError>,
    ) -> Result<Arc<DecodedSpectrogram>, CutError> {
        {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(at) = entries.iter().position(|(p, _, _)| p == path) {
                let entry = entries.remove(at);
                let decoded = Arc::clone(&entry.1);
                entries.push(entry);
                return Ok(decoded);
            }
        }
        let decoded = Arc::new(decode()?);
        // The PSD is held twice (the MAT tree and the f64 copy), 8 bytes a cell at most.
        let size = decoded.spectrogram.psd.len().saturating_mul(16);
        if size <= self.budget_bytes {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            if !entries.iter().any(|(p, _, _)| p == path) {
                entries.push((path.to_path_buf(), Arc::clone(&decoded), size));
            }
            let mut total: usize = entries.iter().map(|e| e.2).sum();
            while total > self.budget_bytes && !entries.is_empty() {
                total -= entries.remove(0).2;
            }
        }
        Ok(decoded)
    }
}

fn decode_spectrogram(source: &SourceFile) -> Result<DecodedSpectrogram, CutError> {
    let bytes = std::fs::read(source.path).map_err(|error| CutError::ReadSource {
        name: source.name.to_owned(),
        path: source.path.to_path_buf(),
        source: error,
    })?;
    let decode_error = |error| CutError::DecodeSource {
        name: source.name.to_owned(),
        source: error,
    };
    let mat = read_mat(&bytes).map_err(decode_error)?;
    let spectrogram = spectrogram_from_mat(&mat).map_err(decode_error)?;
    Ok(DecodedSpectrogram { mat, spectrogram })
}

/// Why a clip could not be cut; every message names the file or format at fault.
#[derive(Debug, thiserror::Error)]
pub enum CutError {
    #[error("read {name} ({}): {source}", .path.display())]
    ReadSource {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("read {name}: {source}")]
    DecodeSource {
        name: String,
        #[source]
        source: MatError,
    },
    #[error(transparent)]
    Spectrogram(#[from] SpectrogramClipError),
    #[error(transparent)]
    Audio(#[from] AudioClipError),
    #[error(transparent)]
    Npz(#[from] NpzError),
    #[error(transparent)]
    Mat(#[from] MatError),
    #[error(transparent)]
    Png(#[from] RenderError),
    #[error("write the MAT clip: no source file")]
    NoMatTemplate,
    /// A format of the other medium (the plan never asks for one; the type allows it).
    #[error("write {} clip as `{}`: not a format of that medium", media_article(*.media), .format.as_str())]
    WrongMedium { media: Media, format: ClipFormat },
}

fn media_article(media: Media) -> &'static str {
    match media {
        Media::Spectrogram => "a spectrogram",
        Media::Audio => "an audio",
    }
}

/// What a sidecar reports about one piece.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClipFacts {
    /// UTC time of the first and last sample or column, ISO 8601.
    pub first: String,
    pub last: String,
    /// Samples or columns written.
    pub length: u64,
    /// `sample` or `column`: the unit of `length` and of the source ranges.
    pub unit: &'static str,
    pub sources: Vec<SourceUse>,
    pub gaps: Vec<Span>,
    pub overlaps: Vec<Span>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bits_per_sample: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds_per_column: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_bins: Option<usize>,
}

/// One written clip (the whole window, or one stretch of it).
#[derive(Debug, Clone)]
pub struct CutPiece {
    /// Basename without extension.
    pub name: String,
    /// `(format, bytes)` per requested format; the format names the extension.
    pub files: Vec<(ClipFormat, Vec<u8>)>,
    pub facts: ClipFacts,
}

/// The result of a cut.
#[derive(Debug, Clone)]
pub enum CutOutcome {
    Pieces(Vec<CutPiece>),
    /// `gaps = "skip"` and the window has a gap: nothing written; the reason says where.
    Skipped(String),
}

/// Cuts one clip (see the module doc).
pub fn cut(request: &CutRequest) -> Result<CutOutcome, CutError> {
    match request.media {
        Media::Spectrogram => cut_spectrogram(request),
        Media::Audio => cut_audio(request),
    }
}

fn piece_name(base: &str, index: usize, count: usize) -> String {
    if count > 1 {
        format!("{base}_part{}", index + 1)
    } else {
        base.to_owned()
    }
}

fn cut_spectrogram(request: &CutRequest) -> Result<CutOutcome, CutError> {
    let mut decoded = Vec::with_capacity(request.sources.len());
    for source in request.sources {
        decoded.push(match request.decoded {
            Some(files) => files.get_or_decode(source.path, || decode_spectrogram(source))?,
            None => Arc::new(decode_spectrogram(source)?),
        });
    }
    let inputs: Vec<SpectrogramInput> = request
        .sources
        .iter()
        .zip(&decoded)
        .map(|(source, d)| (source, &d.spectrogram))
        .map(|(source, s)| SpectrogramInput {
            name: source.name,
            psd: &s.psd,
            nfreq: s.nfreq,
            frequency_hz: &s.frequency_hz,
            time_s: &s.time_s,
        })
        .collect();
    let start_s = request.clip_start_ns as f64 / 1e9;
    let end_s = request.clip_end_ns as f64 / 1e9;
    let clips = match clip_spectrogram(&inputs, start_s, end_s, request.gaps) {
        Ok(clips) => clips,
        Err(error @ SpectrogramClipError::SkippedForGap { .. }) => {
            return Ok(CutOutcome::Skipped(error.to_string()));
        }
        Err(error) => return Err(error.into()),
    };
    let count = clips.len();
    let mut pieces = Vec::with_capacity(count);
    for (index, clip) in clips.iter().enumerate() {
        let name = piece_name(request.name, index, count);
        let mut files = Vec::new();
        for format in request.formats {
            let bytes = match format {
                ClipFormat::Npz => write_npz(
                    clip,
                    &NpzMeta {
                        clip_start_s: start_s,
                        clip_end_s: end_s,
                        device: request.device,
                        description: request.description,
                    },
                )?,
                ClipFormat::Mat => {
                    // The first source's other fields and `Meta` ride along unchanged.
                    let template = &decoded.first().ok_or(CutError::NoMatTemplate)?.mat;
                    let mat = spectrogram_clip_mat(template, &clip.psd, clip.nfreq, &clip.time_s)?;
                    write_mat(&mat)?
                }
                ClipFormat::Png => {
                    let title = if request.description.is_empty() {
                        format!("{} {}", request.device, iso_utc(start_s))
                    } else {
                        format!("{} {}", request.device, request.description)
                    };
                    render_png(clip, &title)?
                }
                ClipFormat::Flac | ClipFormat::Wav => {
                    return Err(CutError::WrongMedium {
                        media: Media::Spectrogram,
                        format: *format,
                    });
                }
            };
            files.push((*format, bytes));
        }
        let facts = ClipFacts {
            first: clip.time_s.first().map(|&t| iso_utc(t)).unwrap_or_default(),
            last: clip.time_s.last().map(|&t| iso_utc(t)).unwrap_or_default(),
            length: clip.time_s.len() as u64,
            unit: "column",
            sources: clip.sources.clone(),
            gaps: clip.gaps.clone(),
            overlaps: clip.overlaps.clone(),
            sample_rate: None,
            bits_per_sample: None,
            seconds_per_column: Some(clip.seconds_per_column),
            frequency_bins: Some(clip.nfreq),
        };
        pieces.push(CutPiece { name, files, facts });
    }
    Ok(CutOutcome::Pieces(pieces))
}

fn cut_audio(request: &CutRequest) -> Result<CutOutcome, CutError> {
    let sources: Vec<AudioSource> = request
        .sources
        .iter()
        .map(|s| AudioSource {
            name: s.name,
            path: s.path,
        })
        .collect();
    let clips = match clip_audio(
        &sources,
        request.clip_start_ns,
        request.clip_end_ns,
        request.gaps,
    ) {
        Ok(clips) => clips,
        Err(error @ AudioClipError::SkippedForGap { .. }) => {
            return Ok(CutOutcome::Skipped(error.to_string()));
        }
        Err(error) => return Err(error.into()),
    };
    let count = clips.len();
    let mut pieces = Vec::with_capacity(count);
    for (index, clip) in clips.iter().enumerate() {
        let name = piece_name(request.name, index, count);
        let mut files = Vec::new();
        for format in request.formats {
            let bytes = match format {
                ClipFormat::Flac => write_flac(clip)?,
                ClipFormat::Wav => write_wav(clip)?,
                ClipFormat::Npz | ClipFormat::Mat | ClipFormat::Png => {
                    return Err(CutError::WrongMedium {
                        media: Media::Audio,
                        format: *format,
                    });
                }
            };
            files.push((*format, bytes));
        }
        let frames = clip.samples.len() as u64 / u64::from(clip.channels.max(1));
        let rate = f64::from(clip.sample_rate.max(1));
        let facts = ClipFacts {
            first: iso_utc(clip.first_sample_s),
            last: iso_utc(clip.first_sample_s + (frames.saturating_sub(1)) as f64 / rate),
            length: frames,
            unit: "sample",
            sources: clip.sources.clone(),
            gaps: clip.gaps.clone(),
            overlaps: clip.overlaps.clone(),
            sample_rate: Some(clip.sample_rate),
            bits_per_sample: Some(clip.bits_per_sample),
            seconds_per_column: None,
            frequency_bins: None,
        };
        pieces.push(CutPiece { name, files, facts });
    }
    Ok(CutOutcome::Pieces(pieces))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn decoded(cells: usize) -> DecodedSpectrogram {
        DecodedSpectrogram {
            mat: MatFile {
                header_text: String::new(),
                variables: Vec::new(),
            },
            spectrogram: SpectrogramFile {
                psd: vec![0.0; cells],
                nfreq: 1,
                ntime: cells,
                frequency_hz: vec![0.0],
                time_s: vec![0.0; cells],
                device: None,
            },
        }
    }

    #[test]
    fn decoded_files_keep_the_most_recent_within_the_budget() {
        // Two files of 10 cells (160 bytes each) fit; a third evicts the least recently used.
        let files = DecodedFiles::new(320);
        let decodes = Cell::new(0);
        let get = |name: &str| {
            files
                .get_or_decode(Path::new(name), || {
                    decodes.set(decodes.get() + 1);
                    Ok(decoded(10))
                })
                .map(|_| ())
        };
        for name in ["a", "b", "a", "c", "a", "b"] {
            get(name).unwrap();
        }
        // a, b decoded; a hit; c evicts b; a hit; b decoded again.
        assert_eq!(decodes.get(), 4);
        // A file larger than the whole budget is decoded but never kept.
        let big = files
            .get_or_decode(Path::new("big"), || Ok(decoded(1_000)))
            .unwrap();
        assert_eq!(big.spectrogram.psd.len(), 1_000);
        assert!(format!("{files:?}").contains("files: 2"));
    }
}
