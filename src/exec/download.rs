//! Downloads of a completed run's files: each file fetched once per run (claims), skipped when
//! already stored, verified and moved into the content store.
//!
//! Input: a run id and its file count. Output: the stored files, with times from their names.
//! Errors: [`DownloadError`] — gone (410: resubmit) or the job's error.

use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use super::error::ExecError;
use super::events::Event;
use crate::cache::StoredFile;
use crate::onc::{DownloadOutcome, FileIndex};
use onc_format::grid::FILE_MS;
use onc_format::stamp::times_in_name;

use super::claims::{Claim, MyClaim, TheirClaim};
use super::context::Context;
use super::job::{Job, JobError, blocking};

#[derive(Debug)]
pub(super) enum DownloadError {
    Gone,
    Job(JobError),
}

/// Where a job's files come from: the source identity and what the cache held when it started.
pub(super) struct Source<'a> {
    pub(super) identity: &'a str,
    pub(super) coverage: &'a crate::cache::Coverage,
}

impl Source<'_> {
    /// The file if it is already stored, from an earlier run or from this one.
    pub(super) fn stored(&self, context: &Context, name: &str) -> Option<StoredFile> {
        self.coverage
            .file_named(name)
            .filter(|f| context.cache.has_object(&f.blake3, f.size))
            .or_else(|| context.claims.stored(self.identity, name))
    }
}

/// Gives files without an end time one: the next file's start, else a nominal five minutes
/// (ONC's hydrophone files are five-minute files). Files are sorted by start.
pub(super) fn fill_file_ends(files: &mut [StoredFile]) {
    files.sort_by(|a, b| (a.start_ms, &a.name).cmp(&(b.start_ms, &b.name)));
    let starts: Vec<Option<i64>> = files.iter().map(|f| f.start_ms).collect();
    for (i, file) in files.iter_mut().enumerate() {
        if let (Some(start), None) = (file.start_ms, file.end_ms) {
            let next = starts.get(i + 1).copied().flatten().filter(|&n| n > start);
            file.end_ms = Some(next.unwrap_or(start + FILE_MS).min(start + FILE_MS));
        }
    }
}

/// Downloads files 1..=count of a run; stores each. File 1 goes first and alone: ONC may still
/// be moving the run's files to its FTP area ("waiting on the file system to synchronize",
/// 202), and one file waits for that, not every file of the run. The others then go
/// concurrently within the download limit. A file already stored (ONC names it in its headers)
/// is not transferred again.
pub(super) async fn download_run(
    context: &Context,
    job: &Job,
    source: &Source<'_>,
    run_id: u64,
    count: u32,
) -> Result<Vec<StoredFile>, DownloadError> {
    let mut files = Vec::new();
    if count == 0 {
        return Ok(files);
    }
    if let Some(file) = download_one(context, job, source, run_id, 1).await? {
        files.push(file);
    }
    let rest = (2..=count).map(|index| download_one(context, job, source, run_id, index));
    for result in futures_util::future::join_all(rest).await {
        if let Some(file) = result? {
            files.push(file);
        }
    }
    Ok(files)
}

/// The wait before asking again for a file ONC is still moving to its FTP area: from a second
/// (on the server's clock), doubling up to the poll interval.
fn sync_wait(context: &Context, waits_so_far: u32) -> Duration {
    let interval = context
        .limits
        .poll_interval
        .mul_f64(context.client.time_scale());
    context
        .client
        .scaled(Duration::from_secs(1))
        .saturating_mul(2u32.saturating_pow(waits_so_far.min(16)))
        .min(interval)
}

/// What the `wanted` check of one download decided, for after the answer.
pub(super) enum Known<'a> {
    Stored(StoredFile),
    Claimed(TheirClaim),
    Mine(MyClaim<'a>),
}

pub(super) async fn download_one(
    context: &Context,
    job: &Job,
    source: &Source<'_>,
    run_id: u64,
    index: u32,
) -> Result<Option<StoredFile>, DownloadError> {
    let started = Instant::now();
    let mut sync_waits = 0;
    loop {
        if context.cancelled() {
            return Err(DownloadError::Job(JobError::Interrupted));
        }
        // Decided when ONC's headers name the file: stored already, being fetched by another
        // job, or ours to fetch. Retries of the same request see their own claim.
        let known: std::sync::Mutex<Option<Known<'_>>> = std::sync::Mutex::new(None);
        let wanted = |name: &str| -> bool {
            let mut known = known
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(Known::Mine(claim)) = &*known
                && claim.name() == name
            {
                return true;
            }
            if let Some(file) = source.stored(context, name) {
                *known = Some(Known::Stored(file));
                return false;
            }
            match context.claims.claim(source.identity, name) {
                Claim::Mine(claim) => {
                    *known = Some(Known::Mine(claim));
                    true
                }
                Claim::Theirs(claim) => {
                    *known = Some(Known::Claimed(claim));
                    false
                }
            }
        };
        let outcome = {
            let _permit = context
                .permit(&context.limits.downloads)
                .await
                .map_err(DownloadError::Job)?;
            let mut cancel = context.cancel.clone();
            let tmp = context.cache.tmp_dir();
            tokio::select! {
                outcome = context.onc(context.client.download_product_if(run_id, FileIndex::Number(index), &tmp, &wanted)) => outcome,
                // Dropping the download removes its partial file.
                _ = cancel.wait_for(|stop| *stop) => return Err(DownloadError::Job(JobError::Interrupted)),
            }
        };
        let known = known
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match outcome.map_err(DownloadError::Job)? {
            DownloadOutcome::Ready(file) => {
                let stored = store(
                    context,
                    job,
                    &file.temp_path,
                    &file.filename,
                    &file.blake3,
                    file.size,
                )
                .await?;
                if let Some(Known::Mine(claim)) = known {
                    claim.stored(&stored);
                }
                return Ok(Some(stored));
            }
            DownloadOutcome::Skipped { filename } => {
                let file = match known {
                    Some(Known::Stored(file)) => Some(file),
                    Some(Known::Claimed(claim)) => claim.wait().await,
                    _ => None,
                };
                match file {
                    Some(file) => {
                        context.emit(Event::FileReused {
                            node: job.key.short(),
                            file: filename,
                        });
                        return Ok(Some(file));
                    }
                    // The job fetching it gave up: fetch it ourselves.
                    None => context.emit(Event::Warning {
                        node: job.key.short(),
                        message: format!(
                            "{filename}: another job failed to fetch it; fetching it here"
                        ),
                    }),
                }
            }
            DownloadOutcome::NotReady { .. } => {
                // ONC is still moving the file to its FTP area.
                if started.elapsed() > context.limits.max_wait {
                    return Err(DownloadError::Job(
                        ExecError::NeverReady { index, run_id }.into(),
                    ));
                }
                let wait = sync_wait(context, sync_waits);
                sync_waits += 1;
                if !context.sleep(wait).await {
                    return Err(DownloadError::Job(JobError::Interrupted));
                }
            }
            DownloadOutcome::NoData | DownloadOutcome::PastEnd => return Ok(None),
            DownloadOutcome::Gone => return Err(DownloadError::Gone),
        }
    }
}

/// Moves a downloaded temp file into the store and describes it.
pub(super) async fn store(
    context: &Context,
    job: &Job,
    temp: &Path,
    name: &str,
    blake3: &str,
    size: u64,
) -> Result<StoredFile, DownloadError> {
    // Off the async workers: the store renames and fsyncs.
    let (cache, temp_path, hash, file_name) = (
        context.cache.clone(),
        temp.to_path_buf(),
        blake3.to_owned(),
        name.to_owned(),
    );
    blocking(move || {
        cache
            .store_object(&temp_path, &hash, size, false)
            .map_err(|error| ExecError::cache(format!("store {file_name}"), error))
    })
    .await
    .map_err(|error| DownloadError::Job(error.into()))?;
    context.emit(Event::Downloaded {
        node: job.key.short(),
        file: name.to_owned(),
        bytes: size,
    });
    let (start_ms, end_ms) = times_in_name(name);
    Ok(StoredFile {
        name: name.to_owned(),
        blake3: blake3.to_owned(),
        size,
        start_ms,
        end_ms,
    })
}
