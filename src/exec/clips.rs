//! Clip jobs: a clip node whose ONC inputs are done → clip files and a sidecar in the output
//! tree, recorded in the cache.
//!
//! Input: a clip node of the DAG, the keys of the ONC nodes that fetch its files, and the
//! shared executor [`Context`]. Output: for each piece of the clip (one, or one per stretch with
//! `gaps = "split"`), its files in every requested format plus `NAME.json`, stored by content
//! hash and linked under `DEVICE/TAG/clips/{spectrograms,audio}/`; a node record listing them
//! and the exact source files (names and hashes) they were cut from. A clip whose record matches
//! the current source files is only re-linked: no decoding, no request. Cutting runs on a
//! blocking thread, at most one per CPU, so it overlaps downloads without starving them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use serde_json::{Value, json};

use crate::cache::{NodeRecord, StoredFile, link_output, safe_join};
use crate::clip::Span;
use crate::clip::cut::{CutOutcome, CutRequest, Media, SourceFile, cut};
use crate::dag::{ClipSpec, Node, NodeDetail, NodeKey, describe};
use crate::plan::time::rfc3339;
use onc_format::query::OncQuery;
use onc_format::stamp::onc_date;

use super::context::Context;
use super::error::ExecError;
use super::events::Event;
use super::job::blocking;
use super::job::source_identity;
use crate::cache::Cache;

/// One clip node, ready to run once its inputs are.
#[derive(Debug, Clone)]
pub(super) struct ClipJob {
    pub key: NodeKey,
    pub what: String,
    /// The ONC nodes (requests, listings) whose files it cuts.
    pub upstream: Vec<NodeKey>,
    /// The query of one of them: all share one source identity.
    pub query: OncQuery,
    /// What to cut, as the DAG says.
    pub spec: ClipSpec,
    /// The padded window in ns since 1970, as the cutter takes it.
    pub clip_start_ns: i64,
    pub clip_end_ns: i64,
    /// Output folder relative to the output root: `DEVICE/TAG/clips/{spectrograms,audio}`.
    pub folder: PathBuf,
}

/// How a clip job ended.
#[derive(Debug)]
pub(super) enum ClipEnd {
    Cached,
    Written,
    Skipped,
    Failed(ExecError),
    Interrupted,
}

/// The clip job of `node`, given the ONC nodes upstream of it (through its file nodes); `None`
/// for other nodes, and for windows beyond what nanoseconds since 1970 can hold (year 2262).
pub(super) fn clip_job(node: &Node, upstream: Vec<NodeKey>, query: OncQuery) -> Option<ClipJob> {
    let NodeDetail::Clip(spec) = &node.detail else {
        return None;
    };
    let sub = match spec.media {
        Media::Spectrogram => "spectrograms",
        Media::Audio => "audio",
    };
    Some(ClipJob {
        key: node.key,
        what: describe(node),
        upstream,
        query,
        clip_start_ns: spec.clip_start.timestamp_nanos_opt()?,
        clip_end_ns: spec.clip_end.timestamp_nanos_opt()?,
        folder: Path::new(&*spec.device)
            .join(&*spec.tag)
            .join("clips")
            .join(sub),
        spec: spec.clone(),
    })
}

/// The source files a record was cut from, to tell whether they changed since.
fn input_list(files: &[StoredFile]) -> Value {
    Value::Array(
        files
            .iter()
            .map(|f| json!({"name": f.name, "blake3": f.blake3}))
            .collect(),
    )
}

/// Runs one clip job whose inputs are all fetched.
pub(super) async fn run_clip(context: &Context, job: &ClipJob) -> ClipEnd {
    if context.cancelled() {
        return ClipEnd::Interrupted;
    }
    let identity = source_identity(&context.base_url, &job.query);
    let coverage = match context.coverage(&identity) {
        Ok(coverage) => coverage,
        Err(reason) => return ClipEnd::Failed(reason),
    };
    let from_ms = job.clip_start_ns.div_euclid(1_000_000);
    let to_ms = (job.clip_end_ns + 999_999).div_euclid(1_000_000);
    let files = coverage.files_overlapping(from_ms, to_ms);
    if files.is_empty() {
        return ClipEnd::Failed(ExecError::NoSourceFile {
            start: rfc3339(job.spec.clip_start),
            end: rfc3339(job.spec.clip_end),
        });
    }
    let inputs = input_list(&files);
    let key = job.key.to_hex();

    // Cut before from exactly these files? Then only re-link.
    if let Ok(Some(record)) = context.cache.read_node_record(&key)
        && record.detail.get("inputs") == Some(&inputs)
    {
        // A clip skipped for a gap stays skipped (and is reported so) until its sources change.
        if let Some(reason) = record.detail.get("skipped").and_then(Value::as_str) {
            context.emit(Event::ClipSkipped {
                node: job.key.short(),
                what: job.what.clone(),
                reason: reason.to_owned(),
            });
            return ClipEnd::Skipped;
        }
        let (cache, output_dir, outputs) = (
            context.cache.clone(),
            context.output_dir.clone(),
            record.outputs.clone(),
        );
        return match blocking(move || link_all(&cache, &output_dir, &outputs)).await {
            Ok(()) => {
                context.emit(Event::ClipCached {
                    node: job.key.short(),
                    what: job.what.clone(),
                });
                ClipEnd::Cached
            }
            Err(reason) => ClipEnd::Failed(reason),
        };
    }

    let Ok(_cpu) = context.permit(&context.limits.cpu).await else {
        return ClipEnd::Interrupted;
    };
    let sources: Vec<(String, PathBuf)> = files
        .iter()
        .map(|f| (f.name.clone(), context.cache.object_path(&f.blake3)))
        .collect();
    let work = job.clone();
    let decoded = Arc::clone(&context.decoded);
    let outcome = tokio::task::spawn_blocking(move || {
        let sources: Vec<SourceFile> = sources
            .iter()
            .map(|(name, path)| SourceFile {
                name,
                path: path.as_path(),
            })
            .collect();
        cut(&CutRequest {
            media: work.spec.media,
            formats: &work.spec.formats,
            sources: &sources,
            clip_start_ns: work.clip_start_ns,
            clip_end_ns: work.clip_end_ns,
            gaps: work.spec.gaps,
            device: &work.spec.device,
            description: work.spec.label.as_deref().unwrap_or_default(),
            name: &work.spec.name,
            decoded: Some(&decoded),
        })
    })
    .await;
    let outcome = match outcome {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(error)) => return ClipEnd::Failed(error.into()),
        Err(_) => return ClipEnd::Failed(ExecError::ClipWorkerStopped),
    };

    let padded_s = (job.clip_end_ns - job.clip_start_ns) as f64 / 1e9;
    // The share of the window with data: computed once, for min_coverage and the sidecars.
    let (pieces, skipped, covered) = match outcome {
        CutOutcome::Pieces(pieces) => {
            let covered = data_share(&pieces, padded_s);
            match job.spec.min_coverage {
                Some(least) if covered < least => {
                    let reason = format!(
                        "ONC had data for {:.1} % of its padded window, less than min_coverage {} ({:.1} %)",
                        covered * 100.0,
                        least,
                        least * 100.0
                    );
                    (Vec::new(), Some(reason), covered)
                }
                _ => (pieces, None, covered),
            }
        }
        CutOutcome::Skipped(reason) => (Vec::new(), Some(reason), 0.0),
    };
    // Each piece's files, then its sidecar, by their path under the output root.
    let piece_count = pieces.len();
    let mut blobs: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for (index, piece) in pieces.into_iter().enumerate() {
        let sidecar = sidecar(job, &coverage, &files, &piece, index, piece_count, covered);
        let text = serde_json::to_string_pretty(&sidecar).unwrap_or_default() + "\n";
        for (format, bytes) in piece.files {
            let name = format!("{}.{}", piece.name, format.as_str());
            blobs.push((job.folder.join(name), bytes));
        }
        blobs.push((
            job.folder.join(format!("{}.json", piece.name)),
            text.into_bytes(),
        ));
    }
    let detail = json!({ "inputs": inputs, "skipped": skipped });
    let (cache, output_dir) = (context.cache.clone(), context.output_dir.clone());
    // Stores, links and the record are renames, links and fsyncs: off the async workers.
    let stored = blocking(move || {
        let mut outputs = Vec::with_capacity(blobs.len());
        for (name, bytes) in &blobs {
            outputs.push(store_output(&cache, name, bytes)?);
        }
        link_all(&cache, &output_dir, &outputs)?;
        let record = NodeRecord {
            key,
            kind: "clip".into(),
            outputs,
            completed_at: onc_date(Utc::now()),
            detail,
        };
        cache
            .write_node_record(&record)
            .map_err(|error| ExecError::cache("record the clip", error))
    })
    .await;
    if let Err(error) = stored {
        return ClipEnd::Failed(error);
    }
    match skipped {
        Some(reason) => {
            context.emit(Event::ClipSkipped {
                node: job.key.short(),
                what: job.what.clone(),
                reason,
            });
            ClipEnd::Skipped
        }
        None => {
            context.emit(Event::Clipped {
                node: job.key.short(),
                what: job.what.clone(),
                pieces: piece_count,
            });
            ClipEnd::Written
        }
    }
}

/// Stores one output's bytes; its name is its path under the output root.
fn store_output(cache: &Cache, name: &Path, bytes: &[u8]) -> Result<StoredFile, ExecError> {
    let object = cache
        .store_bytes(bytes)
        .map_err(|error| ExecError::cache(format!("store {}", name.display()), error))?;
    Ok(StoredFile {
        name: name.display().to_string(),
        blake3: object.blake3,
        size: object.size,
        start_ms: None,
        end_ms: None,
    })
}

/// Links every output into the output tree (hard link, or copy).
fn link_all(cache: &Cache, output_dir: &Path, outputs: &[StoredFile]) -> Result<(), ExecError> {
    for output in outputs {
        let dest = safe_join(output_dir, Path::new(&output.name))
            .map_err(|error| ExecError::cache(format!("place {}", output.name), error))?;
        link_output(&cache.object_path(&output.blake3), &dest)
            .map_err(|error| ExecError::cache(format!("link {}", output.name), error))?;
    }
    Ok(())
}

fn span_json(span: &Span) -> Value {
    json!({
        "start": crate::clip::spectrogram::iso_utc(span.start_s),
        "end": crate::clip::spectrogram::iso_utc(span.end_s),
        "seconds": span.end_s - span.start_s,
    })
}

/// The share of a clip's padded window (`padded_s` seconds) that its pieces have data for:
/// the samples or columns taken from source files, over all pieces (filled silence or NaN
/// columns are not taken from a source; overlaps are trimmed, so nothing counts twice).
fn data_share(pieces: &[crate::clip::cut::CutPiece], padded_s: f64) -> f64 {
    if padded_s <= 0.0 {
        return 1.0;
    }
    let data_s: f64 = pieces
        .iter()
        .map(|piece| {
            let facts = &piece.facts;
            let step = facts
                .sample_rate
                .map(|rate| 1.0 / f64::from(rate.max(1)))
                .or(facts.seconds_per_column)
                .unwrap_or(0.0);
            let units: u64 = facts
                .sources
                .iter()
                .map(|used| used.end.saturating_sub(used.first))
                .sum();
            units as f64 * step
        })
        .fold(0.0, |total, seconds| total + seconds);
    (data_s / padded_s).clamp(0.0, 1.0)
}

/// The sidecar of one piece (SPEC §6): what was asked, what was written, from which files.
fn sidecar(
    job: &ClipJob,
    coverage: &crate::cache::Coverage,
    files: &[StoredFile],
    piece: &crate::clip::cut::CutPiece,
    index: usize,
    count: usize,
    covered: f64,
) -> Value {
    let facts = &piece.facts;
    let sources: Vec<Value> = facts
        .sources
        .iter()
        .map(|used| {
            let entry = coverage
                .entries
                .iter()
                .find(|e| e.files.iter().any(|f| f.name == used.file));
            json!({
                "file": used.file,
                "first": used.first,
                "end": used.end,
                "blake3": files.iter().find(|f| f.name == used.file).map(|f| f.blake3.clone()),
                "dp_request_id": entry.and_then(|e| e.dp_request_id),
                "dp_run_id": entry.and_then(|e| e.dp_run_id),
            })
        })
        .collect();
    let mut value = json!({
        "onc_pipe_version": env!("CARGO_PKG_VERSION"),
        "node_key": job.key.to_hex(),
        "stage": job.spec.stage,
        "device": job.spec.device,
        "location": job.spec.location,
        "label": job.spec.label,
        "name": piece.name,
        "media": job.spec.media,
        "formats": job.spec.formats,
        "requested_window": { "start": rfc3339(job.spec.window_start), "end": rfc3339(job.spec.window_end) },
        "padded_window": { "start": rfc3339(job.spec.clip_start), "end": rfc3339(job.spec.clip_end) },
        "gap_policy": job.spec.gaps,
        "coverage": covered,
        "first": facts.first,
        "last": facts.last,
        "length": facts.length,
        "unit": facts.unit,
        "sources": sources,
        "gaps": facts.gaps.iter().map(span_json).collect::<Vec<_>>(),
        "overlaps": facts.overlaps.iter().map(span_json).collect::<Vec<_>>(),
    });
    if let Some(object) = value.as_object_mut() {
        if let Some(rate) = facts.sample_rate {
            object.insert("sample_rate".into(), json!(rate));
        }
        if let Some(bits) = facts.bits_per_sample {
            object.insert("bits_per_sample".into(), json!(bits));
        }
        if let Some(seconds) = facts.seconds_per_column {
            object.insert("seconds_per_column".into(), json!(seconds));
        }
        if let Some(bins) = facts.frequency_bins {
            object.insert("frequency_bins".into(), json!(bins));
        }
        if count > 1 {
            object.insert("part".into(), json!({ "index": index + 1, "of": count }));
        }
    }
    value
}
