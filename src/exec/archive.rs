//! An archive listing's job: list ONC's archived files for a window, download those not stored.
//! Audio, pre-generated spectrograms (`-spect.mat`, `-spect.png`) and any other archived
//! extension alike: no ONC job, only `archivefile/device` and `archivefile/download`.
//!
//! Input: an archive job and the part of its window to fetch. Output: the files stored and a
//! coverage entry. Errors: ONC's answers and the store's, as the job's error.

use chrono::Utc;

use super::error::ExecError;
use super::events::Event;
use crate::cache::{CoverageEntry, StoredFile};
use onc_format::grid::{FILE_MS, FILE_REACH_MS};
use onc_format::stamp::onc_date;

use super::claims::Claim;
use super::context::Context;
use super::download::{DownloadError, SharedEdges, Source, store};
use super::job::{Job, JobError};

/// Lists archived files for the window (from a file-length earlier, since listings select by
/// start time), downloads those not already stored, and records the coverage.
pub(super) async fn archive_job(
    context: &Context,
    job: &Job,
    identity: &str,
    from_ms: i64,
    to_ms: i64,
    coverage: &crate::cache::Coverage,
) -> Result<(), JobError> {
    let list_to = if to_ms > from_ms { to_ms } else { from_ms + 1 };
    let listing = job.query.with_window(from_ms - FILE_REACH_MS, list_to);
    let entries = context
        .onc(context.client.list_archive_files(&listing.params()))
        .await?;
    // Keep files overlapping the window: a file runs from its start to the next file's start
    // (or its own end when ONC says, or a nominal five minutes). Spectrogram MAT listings keep
    // only ONC's `Z-spect.mat` files (see `Source::keeps_listed_file`).
    let mut starts: Vec<(i64, String, Option<i64>)> = entries
        .iter()
        .filter(|entry| job.query.source.keeps_listed_file(&entry.filename))
        .filter_map(|entry| Some((entry.start_ms()?, entry.filename.clone(), entry.end_ms())))
        .collect();
    starts.sort();
    let mut wanted = Vec::new();
    for (i, (start, name, end)) in starts.iter().enumerate() {
        let end = end
            .or_else(|| starts.get(i + 1).map(|next| next.0))
            .unwrap_or(start + FILE_MS);
        let overlaps = if to_ms > from_ms {
            *start < to_ms && end > from_ms
        } else {
            *start <= from_ms && from_ms < end
        };
        if overlaps {
            wanted.push((name.clone(), *start, end));
        }
    }
    let to_download = wanted
        .iter()
        .filter(|(name, _, _)| {
            coverage
                .file_named(name)
                .is_none_or(|f| !context.cache.has_object(&f.blake3, f.size))
        })
        .count();
    context.emit(Event::Listed {
        node: job.key.short(),
        what: job.what.clone(),
        files: wanted.len(),
        to_download,
    });
    let source = Source {
        identity,
        coverage,
        // Archived files are listed by name first: nothing to name at an edge.
        shared_edges: SharedEdges::default(),
    };
    let fetches = wanted.iter().map(|(name, start, end)| {
        let source = &source;
        async move {
            let mut stored = loop {
                if let Some(file) = source.stored(context, name) {
                    context.emit(Event::FileReused {
                        node: job.key.short(),
                        file: name.clone(),
                    });
                    break file;
                }
                let claim = match context.claims.claim(identity, name) {
                    Claim::Mine(claim) => claim,
                    // Another window's job is fetching it: use its file, or retry if it failed.
                    Claim::Theirs(claim) => match claim.wait().await {
                        Some(file) => {
                            context.emit(Event::FileReused {
                                node: job.key.short(),
                                file: name.clone(),
                            });
                            break file;
                        }
                        None => continue,
                    },
                };
                let _permit = context.permit(&context.limits.downloads).await?;
                let tmp = context.cache.tmp_dir();
                let mut cancel = context.cancel.clone();
                // A signal abandons the file mid-transfer, as for products: a 64 kHz FLAC is
                // ~25 MB, and a batch scheduler's SIGKILL follows its SIGTERM within seconds.
                let file = tokio::select! {
                    file = context.onc(context.client.download_archive(name, &tmp)) => file?,
                    // Dropping the download removes its partial file.
                    _ = cancel.wait_for(|stop| *stop) => return Err(JobError::Interrupted),
                };
                let stored = store(context, job, &file.temp_path, name, &file.blake3, file.size)
                    .await
                    .map_err(|error| match error {
                        DownloadError::Job(error) => error,
                        DownloadError::Gone => {
                            ExecError::ArchiveFileGone { name: name.clone() }.into()
                        }
                    })?;
                claim.stored(&stored);
                break stored;
            };
            stored.start_ms = Some(*start);
            stored.end_ms = Some(*end);
            Ok::<StoredFile, JobError>(stored)
        }
    });
    let mut files = Vec::new();
    for result in futures_util::future::join_all(fetches).await {
        files.push(result?);
    }
    // As for products, the listed files' own extents count as covered.
    let to_ms = if to_ms > from_ms { to_ms } else { from_ms + 1 };
    let entry = CoverageEntry {
        key: job.key.to_hex(),
        from_ms: files
            .iter()
            .filter_map(|f| f.start_ms)
            .fold(from_ms, i64::min),
        to_ms: files.iter().filter_map(|f| f.end_ms).fold(to_ms, i64::max),
        files,
        dp_request_id: None,
        dp_run_id: None,
        completed_at: onc_date(Utc::now()),
    };
    context
        .record_coverage(identity, &entry)
        .await
        .map_err(JobError::Failed)
}
