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
use onc_format::grid::{FILE_MS, FILE_REACH_MS};
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
    /// Which edges of the request's window another request of the same source comes near.
    pub(super) shared_edges: SharedEdges,
}

/// Which edges of a request's window another request of the same source (in this run, another
/// shard or another person's run) comes within a file's reach of. ONC returns the file
/// straddling each edge of a query, so two neighbouring requests both hold that file; ONC
/// serves a run's files by index and names a file only in its answer's headers. The file at
/// a shared edge is therefore first named with a HEAD and claimed, and only the claim's holder
/// transfers it: one HEAD more per shared edge instead of the same file served twice. An edge
/// nobody else comes near costs nothing more.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct SharedEdges {
    pub(super) start: bool,
    pub(super) end: bool,
}

impl SharedEdges {
    /// The edges of `[from_ms, to_ms)` that one of `others` (windows of other requests of the
    /// same source) comes within a file's reach of: a file straddling the edge lies within
    /// [`FILE_REACH_MS`] of it on either side.
    pub(super) fn of(from_ms: i64, to_ms: i64, others: &[(i64, i64)]) -> Self {
        let near = |edge: i64| {
            others.iter().any(|&(from, to)| {
                from < edge.saturating_add(FILE_REACH_MS) && to > edge.saturating_sub(FILE_REACH_MS)
            })
        };
        Self {
            start: near(from_ms),
            end: near(to_ms),
        }
    }

    /// Whether file `index` of `count` (sorted by start, as ONC lists them) lies at a shared
    /// edge: the first at the start, the last at the end.
    fn holds(self, index: u32, count: u32) -> bool {
        (index == 1 && self.start) || (index == count && self.end)
    }
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
/// is not transferred again; a file at a shared edge is named first (see [`SharedEdges`]).
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
    let edges = source.shared_edges;
    if let Some(file) = download_one(context, job, source, run_id, 1, edges.holds(1, count)).await?
    {
        files.push(file);
    }
    let rest = (2..=count).map(|index| {
        download_one(
            context,
            job,
            source,
            run_id,
            index,
            edges.holds(index, count),
        )
    });
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
    name_first: bool,
) -> Result<Option<StoredFile>, DownloadError> {
    let started = Instant::now();
    let mut sync_waits = 0;
    let shared_edge = name_first;
    let mut name_first = name_first;
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
            let claimed = if shared_edge {
                context.claims.claim_shared(source.identity, name)
            } else {
                context.claims.claim(source.identity, name)
            };
            match claimed {
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
        // At a shared edge, the file is named (HEAD) and claimed before anything is sent.
        let named = if name_first {
            let mut cancel = context.cancel.clone();
            let answer = tokio::select! {
                answer = context.onc(context.client.name_product_file(run_id, FileIndex::Number(index))) => answer,
                _ = cancel.wait_for(|stop| *stop) => return Err(DownloadError::Job(JobError::Interrupted)),
            };
            match answer.map_err(DownloadError::Job)? {
                DownloadOutcome::Named { filename } => {
                    name_first = false;
                    (!wanted(&filename)).then_some(Ok(DownloadOutcome::Skipped { filename }))
                }
                other => Some(Ok(other)),
            }
        } else {
            None
        };
        let outcome = if let Some(named) = named {
            named
        } else {
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
            // Only a HEAD answers this, and a named file is either skipped or fetched above.
            DownloadOutcome::Named { .. } => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn an_edge_is_shared_when_another_request_comes_within_a_files_reach() {
        // Neighbours end to end: the file straddling 15:00 belongs to both.
        let edges = SharedEdges::of(15 * MIN, 30 * MIN, &[(0, 15 * MIN), (30 * MIN, 40 * MIN)]);
        assert_eq!(
            edges,
            SharedEdges {
                start: true,
                end: true
            }
        );
        // A neighbour ending just over a file's reach before the start shares nothing; one
        // just inside it may hold the file straddling the start.
        let far = 15 * MIN - FILE_REACH_MS;
        assert!(!SharedEdges::of(15 * MIN, 30 * MIN, &[(0, far)]).start);
        assert!(SharedEdges::of(15 * MIN, 30 * MIN, &[(0, far + 1)]).start);
        // Alone: nothing is named first, so a lone request costs no request more.
        assert_eq!(
            SharedEdges::of(15 * MIN, 30 * MIN, &[]),
            SharedEdges::default()
        );
        // Far in the future (an event hours later) shares nothing.
        assert_eq!(
            SharedEdges::of(15 * MIN, 30 * MIN, &[(300 * MIN, 301 * MIN)]),
            SharedEdges::default()
        );
    }

    #[test]
    fn the_first_file_lies_at_the_start_and_the_last_at_the_end() {
        let start = SharedEdges {
            start: true,
            end: false,
        };
        let end = SharedEdges {
            start: false,
            end: true,
        };
        assert!(start.holds(1, 3) && !start.holds(2, 3) && !start.holds(3, 3));
        assert!(end.holds(3, 3) && !end.holds(1, 3) && !end.holds(2, 3));
        // A single file straddles both edges.
        assert!(start.holds(1, 1) && end.holds(1, 1));
        assert!(!SharedEdges::default().holds(1, 1));
    }
}
