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
use crate::onc::{DownloadOutcome, FileIndex, ProcessingEstimate, parse_processing_estimate};
use onc_format::query::OncQuery;
use onc_format::stamp::onc_date;

use super::admission::RunTicket;
use super::context::Context;
use super::download::{DownloadError, Source, download_run, fill_file_ends};
use super::job::{Job, JobError, blocking};

/// Restarts of a failed run within one `run`, before it is reported failed.
const RESTARTS_PER_RUN: u32 = 3;
/// Restarts of one request over every `run`: past this, the failure is taken to belong to the
/// request, and the next `run` submits it anew instead of restarting it again.
const RESTARTS_IN_ALL: u32 = 9;
/// The pause before the first restart, on the server's clock; it doubles with each restart.
const RESTART_PAUSE: Duration = Duration::from_secs(5);

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
        let journaled = context
            .cache
            .journal_read(&node_key)
            .map_err(|error| ExecError::cache("read the journal", error))?
            .filter(|entry| entry.base_url == context.base_url);
        // A ticket for the whole time ONC works on the run (see `admission`); ended once the
        // run completes, so downloads of this run overlap the processing of later ones.
        let (request_id, estimate, entry, ticket) = match journaled {
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
                (entry.dp_request_id, None, entry, context.admission.attach())
            }
            None => {
                let ticket = admit(context).await?;
                context
                    .limits
                    .submit_turn(context.client.time_scale())
                    .await;
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
                    restarts: 0,
                };
                // Durable before the id is used: a crash from here on re-attaches, never resubmits.
                write_journal(context, &node_key, &entry).await?;
                let estimate = request
                    .estimated_processing_time
                    .as_deref()
                    .and_then(parse_processing_estimate);
                context.emit(Event::Submitted {
                    node: job.key.short(),
                    what: job.what.clone(),
                    dp_request_id: request.dp_request_id,
                    estimate: request.estimated_processing_time.clone(),
                });
                (request.dp_request_id, estimate, entry, ticket)
            }
        };
        let run = Run {
            request_id,
            estimate,
            entry,
        };
        match poll_until_complete(context, job, run, ticket).await {
            Ok((run_id, file_count)) => {
                let source = Source {
                    identity,
                    coverage,
                    shared_edges: context.shared_edges(identity, job.key, &query),
                };
                match download_run(context, job, &source, run_id, file_count).await {
                    Ok(mut files) => {
                        let (run_from, run_to) = (query.from_ms(), query.to_ms());
                        // A file that cannot overlap the window is not this request's: its
                        // extent must not mark hours as covered. Judged on the times its name
                        // gives (before ends are filled in): one starting after the window, or
                        // ending before it. A concatenated (daily, weekly) file may start long
                        // before the window, but then it ends inside or after it.
                        let reach = onc_format::grid::FILE_REACH_MS;
                        if let Some(foreign) = files.iter().find(|f| {
                            f.start_ms
                                .is_some_and(|start| start >= run_to.saturating_add(reach))
                                || f.end_ms
                                    .is_some_and(|end| end <= run_from.saturating_sub(reach))
                        }) {
                            let _ = context.cache.journal_remove(&node_key);
                            return Err(JobError::Failed(ExecError::ForeignFile {
                                request_id,
                                run_id,
                                name: foreign.name.clone(),
                                from: onc_date(query.from),
                                to: onc_date(query.to),
                            }));
                        }
                        fill_file_ends(&mut files);
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

/// Waits for the admission's go (see `admission`), or the run's cancellation.
async fn admit(context: &Context) -> Result<RunTicket<'_>, JobError> {
    let mut cancel = context.cancel.clone();
    let client = &context.client;
    tokio::select! {
        ticket = context.admission.admit(|| client.throttled(), client.time_scale()) => Ok(ticket),
        _ = cancel.wait_for(|stop| *stop) => Err(JobError::Interrupted),
    }
}

#[derive(Debug)]
pub(super) enum PollError {
    UnknownRun,
    Job(JobError),
}

/// A submitted request, as polling needs it.
pub(super) struct Run {
    pub(super) request_id: u64,
    /// ONC's estimate at submission (none when re-attached from the journal).
    pub(super) estimate: Option<ProcessingEstimate>,
    /// Its journal entry, kept current (dpRunId, restarts).
    pub(super) entry: JournalEntry,
}

/// When to poll a running run again: at the earliest ONC's estimate allows (one unit of its
/// last digit early: `6 min` may be 5 min 1 s), then, once the run is late, after a twentieth of
/// the estimate (at least a third of that unit), doubling up to `interval`. Before the estimate, at most ten intervals apart, so
/// an estimate far too long costs a few polls, not hours.
#[derive(Debug, Clone)]
pub(super) struct PollSchedule {
    due: Instant,
    interval: Duration,
    first_late_wait: Duration,
    late_wait: Duration,
}

impl PollSchedule {
    /// The schedule of a run ONC started at `now` and expects to take `estimate` (one second
    /// when ONC gave none).
    pub(super) fn new(
        now: Instant,
        estimate: Option<ProcessingEstimate>,
        interval: Duration,
    ) -> Self {
        // Without an estimate ONC's run is expected within a second.
        let (earliest, expected, resolution) = estimate.map_or(
            (
                Duration::from_secs(1),
                Duration::from_secs(1),
                Duration::ZERO,
            ),
            |estimate| (estimate.earliest(), estimate.expected, estimate.resolution),
        );
        PollSchedule {
            // Not before a second (or the whole estimate, if shorter): a `1 s` figure is not
            // looked at after half a second.
            due: now + earliest.max(Duration::from_secs(1).min(expected)),
            interval,
            // A twentieth of the estimate; but the run ends somewhere in the last unit of a
            // rounded figure (`2 s`: between 1 s and 2 s), so at least a third of that unit.
            first_late_wait: (expected / 20)
                .max(resolution / 3)
                .max(Duration::from_millis(20)),
            late_wait: Duration::ZERO,
        }
    }

    /// When the run is expected to end at the earliest.
    pub(super) fn due(&self) -> Instant {
        self.due
    }

    /// How long to wait after a poll made at `now` found the run unfinished.
    pub(super) fn next_wait(&mut self, now: Instant) -> Duration {
        if now + Duration::from_millis(1) < self.due {
            return (self.due - now).min(self.interval * 10);
        }
        self.late_wait = if self.late_wait.is_zero() {
            self.first_late_wait
        } else {
            (self.late_wait * 2).min(self.interval)
        };
        self.late_wait.min(self.interval)
    }
}

/// Polls `run` until ONC says complete: once at once (it gives the dpRunId to journal, and
/// whether ONC started the run or queued it), then
/// - while queued: when one of our runs ends (ONC has a free slot), or when our earliest
///   running run is expected to end, else after a doubling wait up to `poll_interval`;
/// - while running: as [`PollSchedule`] says, from when ONC was seen starting it;
/// - failed: restarted with ONC's `restart` (same dpRequestId and dpRunId), journaled first,
///   at most three times per `run` with a doubling pause; then reported with ONC's message,
///   the journal kept so that the next `run` restarts it again.
///
/// The ticket is ended as soon as the run is (complete or failed): ONC's slot is free.
pub(super) async fn poll_until_complete(
    context: &Context,
    job: &Job,
    mut run: Run,
    mut ticket: RunTicket<'_>,
) -> Result<(u64, u32), PollError> {
    let node_key = job.key.to_hex();
    let request_id = run.request_id;
    let scale = context.client.time_scale();
    let interval = context.limits.poll_interval.mul_f64(scale);
    let started = Instant::now();
    let mut schedule = PollSchedule::new(started, run.estimate, interval);
    let mut queued_wait = Duration::ZERO;
    let mut restarts_here = 0;
    let mut wait = Duration::ZERO;
    let mut last_status = String::new();
    loop {
        if !wait.is_zero() {
            let woken = if ticket.is_started() {
                context.sleep(wait).await
            } else {
                // Queued: a run of ours ending frees a slot at ONC, which starts this one.
                let freed = context.admission.slot_freed();
                tokio::select! {
                    awake = context.sleep(wait) => awake,
                    () = freed => !context.cancelled(),
                }
            };
            if !woken {
                return Err(PollError::Job(JobError::Interrupted));
            }
        }
        let poll = match context.onc(context.client.run_product(request_id)).await {
            Ok(poll) => poll,
            Err(JobError::Failed(ExecError::Onc(error))) if error.is_unknown_id() => {
                return Err(PollError::UnknownRun);
            }
            Err(error) => return Err(PollError::Job(error)),
        };
        let Some(status) = poll.runs.first() else {
            return Err(PollError::Job(ExecError::NoRun.into()));
        };
        if run.entry.dp_run_id != Some(status.dp_run_id) {
            run.entry.dp_run_id = Some(status.dp_run_id);
            write_journal(context, &node_key, &run.entry)
                .await
                .map_err(|error| PollError::Job(error.into()))?;
        }
        let now = Instant::now();
        match status.status.as_str() {
            "complete" if poll.complete => {
                ticket.end();
                context.emit(Event::RunComplete {
                    node: job.key.short(),
                    dp_run_id: status.dp_run_id,
                    files: status.file_count,
                });
                return Ok((status.dp_run_id, status.file_count));
            }
            "error" | "failed" => {
                let message = last_error_message(context, status.dp_run_id).await;
                if restarts_here >= RESTARTS_PER_RUN || run.entry.restarts >= RESTARTS_IN_ALL {
                    ticket.end();
                    let next = if run.entry.restarts >= RESTARTS_IN_ALL {
                        // The failure belongs to the request: the next `run` submits it anew.
                        let _ = context.cache.journal_remove(&node_key);
                        "the next `run` submits the request anew"
                    } else {
                        "the next `run` restarts it again"
                    };
                    return Err(PollError::Job(
                        ExecError::RunFailedAfterRestarts {
                            run_id: status.dp_run_id,
                            request_id,
                            restarts: run.entry.restarts,
                            message,
                            next,
                        }
                        .into(),
                    ));
                }
                restarts_here += 1;
                run.entry.restarts += 1;
                // Journaled before the call: a kill from here on re-attaches and, finding the
                // run still failed, restarts it again; it never submits a second request.
                write_journal(context, &node_key, &run.entry)
                    .await
                    .map_err(|error| PollError::Job(error.into()))?;
                context.emit(Event::Warning {
                    node: job.key.short(),
                    message: format!(
                        "ONC's run {} failed ({message}): restarting it (dpRequestId {request_id}, restart {restarts_here} of {RESTARTS_PER_RUN})",
                        status.dp_run_id
                    ),
                });
                let pause = RESTART_PAUSE.mul_f64(scale) * 2u32.pow(restarts_here - 1);
                if !context.sleep(pause).await {
                    return Err(PollError::Job(JobError::Interrupted));
                }
                context
                    .onc(context.client.restart(request_id))
                    .await
                    .map_err(PollError::Job)?;
                // The restarted run queues like a new one.
                ticket.requeued();
                last_status.clear();
                queued_wait = Duration::ZERO;
                wait = Duration::ZERO;
                continue;
            }
            "cancelled" => {
                return Err(PollError::Job(
                    ExecError::RunCancelled {
                        run_id: status.dp_run_id,
                        request_id,
                    }
                    .into(),
                ));
            }
            "queued" => {
                if status.status != last_status {
                    context.emit(Event::Progress {
                        node: job.key.short(),
                        status: status.status.clone(),
                        message: String::new(),
                    });
                    last_status.clone_from(&status.status);
                }
            }
            other => {
                if !ticket.is_started() {
                    // ONC started it now (or before our first look): its estimate runs from here.
                    schedule = PollSchedule::new(now, run.estimate, interval);
                    ticket.started(Some(schedule.due()));
                }
                if other != last_status {
                    context.emit(Event::Progress {
                        node: job.key.short(),
                        status: other.to_owned(),
                        message: String::new(),
                    });
                    last_status = other.to_owned();
                }
            }
        }
        if started.elapsed() > context.limits.max_wait {
            return Err(PollError::Job(
                ExecError::MaxWait {
                    run_id: status.dp_run_id,
                    status: status.status.clone(),
                    seconds: context.limits.max_wait.as_secs(),
                }
                .into(),
            ));
        }
        wait = if ticket.is_started() {
            schedule.next_wait(now)
        } else {
            // Queued: look when our earliest running run should end; without one (ONC's queue
            // holds other users' runs), after a wait doubling from a twentieth of the estimate.
            let queue_moves = context
                .admission
                .earliest_expected_end()
                .filter(|at| *at > now + Duration::from_millis(10))
                .map(|at| at - now);
            queued_wait = if queued_wait.is_zero() {
                schedule.first_late_wait
            } else {
                (queued_wait * 2).min(interval)
            };
            queue_moves.unwrap_or(queued_wait).min(interval * 10)
        };
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

    fn estimate(text: &str) -> Option<ProcessingEstimate> {
        parse_processing_estimate(text)
    }

    /// Polls as the executor makes them, in paused tokio time: at the earliest the estimate
    /// allows (`40 s` may end at 39 s), then from a twentieth of the estimate doubling up to
    /// `poll_interval`; before the estimate, at most ten intervals apart.
    #[tokio::test(start_paused = true)]
    async fn polls_follow_the_estimate_then_back_off_to_the_interval() {
        let start = Instant::now();
        let mut schedule = PollSchedule::new(start, estimate("40 s"), Duration::from_secs(30));
        let mut polls = Vec::new();
        let mut wait = Duration::ZERO;
        for _ in 0..8 {
            tokio::time::sleep(wait).await;
            let now = Instant::now();
            polls.push((now - start).as_secs());
            wait = schedule.next_wait(now);
        }
        assert_eq!(polls, [0, 39, 41, 45, 53, 69, 99, 129]);
        // `6 min` may be 5 min and a second: the first poll after submission is at 5 min.
        let mut minutes = PollSchedule::new(start, estimate("6 min"), Duration::from_secs(30));
        assert_eq!(minutes.next_wait(start), Duration::from_secs(300));
        // An estimate far too long is still looked at every ten intervals.
        let mut hours = PollSchedule::new(start, estimate("3 hour"), Duration::from_secs(30));
        assert_eq!(hours.next_wait(start), Duration::from_secs(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_estimate_is_seen_within_a_twentieth_of_it() {
        let start = Instant::now();
        let mut schedule = PollSchedule::new(start, estimate("20 s"), Duration::from_secs(30));
        let mut polls = Vec::new();
        let mut wait = Duration::ZERO;
        for _ in 0..5 {
            tokio::time::sleep(wait).await;
            let now = Instant::now();
            polls.push((now - start).as_millis());
            wait = schedule.next_wait(now);
        }
        // At once, at 19 s, then 1 s, 2 s, 4 s later.
        assert_eq!(polls, [0, 19_000, 20_000, 22_000, 26_000]);
        // `2 s` is rounded up to whole seconds: the run ends between 1 s and 2 s, looked at in
        // thirds of that second, not in twentieths of the figure.
        let mut coarse = PollSchedule::new(start, estimate("2 s"), Duration::from_secs(30));
        assert_eq!(coarse.next_wait(start), Duration::from_secs(1));
        let one = start + Duration::from_secs(1);
        assert_eq!(coarse.next_wait(one).as_millis(), 333);
        // Without an estimate ONC's run is expected within a second.
        let mut unknown = PollSchedule::new(start, None, Duration::from_secs(30));
        assert_eq!(unknown.next_wait(start), Duration::from_secs(1));
    }
}
