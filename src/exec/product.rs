//! A data product request's life at ONC: submit (journaled first), poll until complete, download
//! its files, record what it covered.
//!
//! Input: a product job and the part of its window the cache does not cover. Output: the files
//! stored and a coverage entry. Errors: ONC's answers (a failed or cancelled run, unknown ids,
//! 410 once resubmitted), journal writes, `max_wait`.

use std::time::Duration;

use tokio::time::Instant;

use chrono::Utc;

use super::error::ExecError;
use super::events::Event;
use crate::cache::{CoverageEntry, JournalEntry};
use crate::onc::{DownloadOutcome, FileIndex, parse_processing_time};
use onc_format::query::OncQuery;
use onc_format::stamp::onc_date;

use super::context::Context;
use super::download::{DownloadError, Source, download_run, fill_file_ends};
use super::job::{Job, JobError, blocking};

/// Submits (or re-attaches to) an ONC data product request, polls it, downloads its files and
/// records what it covered.
pub(super) async fn product_job(
    context: &Context,
    job: &Job,
    identity: &str,
    from_ms: i64,
    to_ms: i64,
    coverage: &crate::cache::Coverage,
) -> Result<(), JobError> {
    let node_key = job.key.to_hex();
    let mut query = job.query.with_window(from_ms, to_ms);
    let mut resubmissions = 0;
    loop {
        // A slot for the whole time ONC works on the run; released once it completes, so
        // downloads of this run overlap the processing of later ones.
        let run_slot = context.permit(&context.limits.runs).await?;
        let journaled = context
            .cache
            .journal_read(&node_key)
            .map_err(|error| ExecError::cache("read the journal", error))?
            .filter(|entry| entry.base_url == context.base_url);
        let (request_id, estimate, entry) = match journaled {
            Some(entry) => {
                context.emit(Event::Reattached {
                    node: job.key.short(),
                    what: job.what.clone(),
                    dp_request_id: entry.dp_request_id,
                    dp_run_id: entry.dp_run_id,
                });
                // The query as it was submitted (its window may differ from today's): what
                // its files will be recorded as covering.
                if let Some(submitted) = OncQuery::from_params(&entry.query) {
                    query = submitted;
                }
                (entry.dp_request_id, None, entry)
            }
            None => {
                context.limits.submit_turn().await;
                if context.cancelled() {
                    return Err(JobError::Interrupted);
                }
                let request = context
                    .onc(context.client.request_product(&query.params()))
                    .await?;
                let entry = JournalEntry {
                    query: query.params(),
                    dp_request_id: request.dp_request_id,
                    dp_run_id: None,
                    submitted_at: onc_date(Utc::now()),
                    base_url: context.base_url.clone(),
                };
                // Durable before the id is used: a crash from here on re-attaches, never resubmits.
                write_journal(context, &node_key, &entry).await?;
                let estimate = request
                    .estimated_processing_time
                    .as_deref()
                    .and_then(parse_processing_time);
                context.emit(Event::Submitted {
                    node: job.key.short(),
                    what: job.what.clone(),
                    dp_request_id: request.dp_request_id,
                    estimate: request.estimated_processing_time.clone(),
                });
                (request.dp_request_id, estimate, entry)
            }
        };
        match poll_until_complete(context, job, request_id, estimate, entry).await {
            Ok((run_id, file_count)) => {
                drop(run_slot);
                let source = Source { identity, coverage };
                match download_run(context, job, &source, run_id, file_count).await {
                    Ok(mut files) => {
                        fill_file_ends(&mut files);
                        let (run_from, run_to) = (query.from_ms(), query.to_ms());
                        // The files' own extents count as covered too: ONC returns the file
                        // straddling each edge of a query, so a later query that starts where
                        // this one ended need not fetch that file again.
                        let coverage = CoverageEntry {
                            key: node_key.clone(),
                            from_ms: files
                                .iter()
                                .filter_map(|f| f.start_ms)
                                .fold(run_from, i64::min),
                            to_ms: files.iter().filter_map(|f| f.end_ms).fold(run_to, i64::max),
                            files,
                            dp_request_id: Some(request_id),
                            dp_run_id: Some(run_id),
                            completed_at: onc_date(Utc::now()),
                        };
                        context
                            .record_coverage(identity, &coverage)
                            .await
                            .map_err(JobError::Failed)?;
                        let _ = context.cache.journal_remove(&node_key);
                        return Ok(());
                    }
                    Err(DownloadError::Gone) if resubmissions == 0 => {
                        resubmissions += 1;
                        context.emit(Event::Warning {
                            node: job.key.short(),
                            message:
                                "ONC no longer has the results (410): submitting the request again"
                                    .into(),
                        });
                        let _ = context.cache.journal_remove(&node_key);
                        continue;
                    }
                    Err(DownloadError::Gone) => {
                        return Err(ExecError::GoneTwice.into());
                    }
                    Err(DownloadError::Job(error)) => return Err(error),
                }
            }
            Err(PollError::UnknownRun) if resubmissions == 0 => {
                resubmissions += 1;
                context.emit(Event::Warning {
                    node: job.key.short(),
                    message: format!(
                        "ONC does not know dpRequestId {request_id} any more: submitting again"
                    ),
                });
                let _ = context.cache.journal_remove(&node_key);
            }
            Err(PollError::UnknownRun) => {
                return Err(ExecError::UnknownRequest { request_id }.into());
            }
            Err(PollError::Job(error)) => return Err(error),
        }
    }
}

#[derive(Debug)]
pub(super) enum PollError {
    UnknownRun,
    Job(JobError),
}

/// When to poll a run again: at ONC's estimate of completion (never more than `interval` apart),
/// then, once the run is late, after a twentieth of the estimate, doubling up to `interval`.
#[derive(Debug, Clone)]
pub(super) struct PollSchedule {
    due: Instant,
    interval: Duration,
    first_late_wait: Duration,
    late_wait: Duration,
}

impl PollSchedule {
    /// The schedule of a run submitted at `now` that ONC expects to take `estimate` (one second
    /// when ONC gave none).
    pub(super) fn new(now: Instant, estimate: Option<Duration>, interval: Duration) -> Self {
        let expected = estimate.unwrap_or(Duration::from_secs(1));
        PollSchedule {
            due: now + expected,
            interval,
            first_late_wait: (expected / 20).max(Duration::from_millis(20)),
            late_wait: Duration::ZERO,
        }
    }

    /// How long to wait after a poll made at `now` found the run unfinished.
    pub(super) fn next_wait(&mut self, now: Instant) -> Duration {
        if now + Duration::from_millis(1) < self.due {
            return (self.due - now).min(self.interval);
        }
        self.late_wait = if self.late_wait.is_zero() {
            self.first_late_wait
        } else {
            (self.late_wait * 2).min(self.interval)
        };
        self.late_wait.min(self.interval)
    }
}

/// Polls `run` until ONC says complete: once at once (it gives the dpRunId to journal), then
/// at ONC's estimate of completion (never more than `poll_interval` apart), then, if the run is
/// late, after a twentieth of the estimate, doubling up to `poll_interval`. A run that finishes
/// on time is seen within a twentieth of its estimate; a late one costs a few polls, not one
/// per second.
pub(super) async fn poll_until_complete(
    context: &Context,
    job: &Job,
    request_id: u64,
    estimate: Option<Duration>,
    mut entry: JournalEntry,
) -> Result<(u64, u32), PollError> {
    let node_key = job.key.to_hex();
    let started = Instant::now();
    let mut schedule = PollSchedule::new(started, estimate, context.limits.poll_interval);
    let mut wait = Duration::ZERO;
    let mut last_status = String::new();
    loop {
        if !wait.is_zero() && !context.sleep(wait).await {
            return Err(PollError::Job(JobError::Interrupted));
        }
        let poll = match context.onc(context.client.run_product(request_id)).await {
            Ok(poll) => poll,
            Err(JobError::Failed(ExecError::Onc(error))) if error.is_unknown_id() => {
                return Err(PollError::UnknownRun);
            }
            Err(error) => return Err(PollError::Job(error)),
        };
        let Some(run) = poll.runs.first() else {
            return Err(PollError::Job(ExecError::NoRun.into()));
        };
        if entry.dp_run_id != Some(run.dp_run_id) {
            entry.dp_run_id = Some(run.dp_run_id);
            write_journal(context, &node_key, &entry)
                .await
                .map_err(|error| PollError::Job(error.into()))?;
        }
        match run.status.as_str() {
            "complete" if poll.complete => {
                context.emit(Event::RunComplete {
                    node: job.key.short(),
                    dp_run_id: run.dp_run_id,
                    files: run.file_count,
                });
                return Ok((run.dp_run_id, run.file_count));
            }
            "error" | "failed" => {
                let message = last_error_message(context, run.dp_run_id).await;
                // The run is dead: the next `run` submits the request again instead of
                // re-attaching to a failure.
                let _ = context.cache.journal_remove(&node_key);
                return Err(PollError::Job(
                    ExecError::RunFailed {
                        run_id: run.dp_run_id,
                        message,
                    }
                    .into(),
                ));
            }
            "cancelled" => {
                return Err(PollError::Job(
                    ExecError::RunCancelled {
                        run_id: run.dp_run_id,
                        request_id,
                    }
                    .into(),
                ));
            }
            status => {
                if status != last_status {
                    context.emit(Event::Progress {
                        node: job.key.short(),
                        status: status.to_owned(),
                        message: String::new(),
                    });
                    last_status = status.to_owned();
                }
            }
        }
        if started.elapsed() > context.limits.max_wait {
            return Err(PollError::Job(
                ExecError::MaxWait {
                    run_id: run.dp_run_id,
                    status: run.status.clone(),
                    seconds: context.limits.max_wait.as_secs(),
                }
                .into(),
            ));
        }
        wait = schedule.next_wait(Instant::now());
    }
}

/// ONC's message for a failed run, from a download attempt (202 with status `error`).
pub(super) async fn last_error_message(context: &Context, run_id: u64) -> String {
    let tmp = context.cache.tmp_dir();
    match context
        .onc(
            context
                .client
                .download_product(run_id, FileIndex::Number(1), &tmp),
        )
        .await
    {
        Ok(DownloadOutcome::NotReady { message, .. }) if !message.is_empty() => message,
        Ok(DownloadOutcome::Ready(file)) => {
            let _ = std::fs::remove_file(&file.temp_path);
            "status `error`".into()
        }
        _ => "status `error`".into(),
    }
}

/// Writes a journal entry durably, off the async workers (it fsyncs).
async fn write_journal(
    context: &Context,
    node_key: &str,
    entry: &JournalEntry,
) -> Result<(), ExecError> {
    let (cache, key, entry) = (context.cache.clone(), node_key.to_owned(), entry.clone());
    blocking(move || {
        cache
            .journal_write(&key, &entry)
            .map_err(|error| ExecError::cache("write the journal", error))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls as the executor makes them, in paused tokio time: at once, at ONC's estimate
    /// (never more than `poll_interval` apart), then from a twentieth of the estimate doubling up
    /// to `poll_interval`.
    #[tokio::test(start_paused = true)]
    async fn polls_follow_the_estimate_then_back_off_to_the_interval() {
        let start = Instant::now();
        let mut schedule = PollSchedule::new(
            start,
            Some(Duration::from_secs(40)),
            Duration::from_secs(30),
        );
        let mut polls = Vec::new();
        let mut wait = Duration::ZERO;
        for _ in 0..9 {
            tokio::time::sleep(wait).await;
            let now = Instant::now();
            polls.push((now - start).as_secs());
            wait = schedule.next_wait(now);
        }
        assert_eq!(polls, [0, 30, 40, 42, 46, 54, 70, 100, 130]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_estimate_is_seen_within_a_twentieth_of_it() {
        let start = Instant::now();
        let mut schedule =
            PollSchedule::new(start, Some(Duration::from_secs(2)), Duration::from_secs(30));
        let mut polls = Vec::new();
        let mut wait = Duration::ZERO;
        for _ in 0..5 {
            tokio::time::sleep(wait).await;
            let now = Instant::now();
            polls.push((now - start).as_millis());
            wait = schedule.next_wait(now);
        }
        // At once, at 2 s, then 100 ms, 200 ms, 400 ms later.
        assert_eq!(polls, [0, 2_000, 2_100, 2_300, 2_700]);
        // Without an estimate ONC's run is expected within a second.
        let mut unknown = PollSchedule::new(start, None, Duration::from_secs(30));
        assert_eq!(unknown.next_wait(start), Duration::from_secs(1));
    }
}
