//! The scheduler: every ONC and clip job of a plan spawned at once, each waiting on the limits
//! and on its inputs, and their ends gathered into the run's summary.
//!
//! Input: the compiled plan, a client, the cache, the output folder, an event channel and a
//! cancellation signal. Output: a [`RunSummary`]. Errors never abort the run: a failed node is
//! reported and the others go on; the clips of a failed node fail with it. The one exception is a
//! refused token (401): the run stops scheduling as on Ctrl-C, and the summary carries ONC's
//! refusal ([`RunSummary::token_rejected`]) for the caller to report once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tokio::sync::{mpsc, watch};

use super::error::ExecError;
use super::events::Event;
use crate::cache::Cache;
use crate::clip::cut::Media;
use crate::dag::Dag;
use crate::dag::{Node, NodeDetail, NodeKey, NodeKind};
use crate::onc::OncClient;
use crate::plan::Plan;
use onc_format::stamp::onc_date;

use super::admission::Admission;
use super::claims::FileClaims;
use super::context::Context;
use super::job::{Job, JobEnd, jobs, run_job, source_identity};
use super::limits::Limits;
use super::stats::{StatsKeeper, Update};
use super::{Failure, RunSummary};

/// Memory for decoded spectrogram files kept between clips: about seven 5-minute plotRes files.
pub(super) const DECODED_BUDGET_BYTES: usize = 96 << 20;

/// What a run works on: the plan, its DAG, the manifest's name for the record, and which of
/// the DAG's ONC and clip nodes to run (`None`: all of them).
#[derive(Debug, Clone, Copy)]
pub struct Work<'a> {
    pub plan: &'a Plan,
    pub dag: &'a Dag,
    pub manifest: &'a str,
    /// The nodes of one shard or phase ([`crate::shard`]). A clip whose ONC inputs are not
    /// selected does not wait for them: its files are taken from the cache as they are.
    pub only: Option<&'a std::collections::BTreeSet<NodeKey>>,
    /// Whether the run had the cache to itself when it started: only then are hidden temporary
    /// names in the output folders debris of a dead run (another run may be placing them).
    pub alone_on_cache: bool,
}

/// Runs every ONC and clip node of a plan.
pub async fn execute(
    work: Work<'_>,
    client: OncClient,
    cache: Cache,
    output_dir: &Path,
    base_url: &str,
    events: mpsc::UnboundedSender<Update>,
    cancel: watch::Receiver<bool>,
) -> RunSummary {
    let started = Instant::now();
    let started_at = onc_date(Utc::now());
    let mut all_jobs = jobs(work.plan, work.dag, output_dir);
    let mut clip_jobs = clip_jobs(work.dag);
    // Every shard's requests, before this shard keeps its own: a neighbour in another shard
    // (or machine) shares the files at its edges as much as one in this shard.
    let mut product_windows: HashMap<String, Vec<(NodeKey, i64, i64)>> = HashMap::new();
    for job in all_jobs
        .iter()
        .filter(|job| job.kind == NodeKind::ProductRequest)
    {
        product_windows
            .entry(source_identity(base_url, &job.query))
            .or_default()
            .push((job.key, job.from_ms, job.to_ms));
    }
    if let Some(only) = work.only {
        all_jobs.retain(|job| only.contains(&job.key));
        clip_jobs.retain(|job| only.contains(&job.key));
    }
    if work.alone_on_cache {
        sweep_output_folders(output_dir, &all_jobs, &clip_jobs).await;
    }
    let runs_total = all_jobs
        .iter()
        .filter(|j| j.kind == NodeKind::ProductRequest)
        .count();
    let stats = StatsKeeper::new(
        all_jobs.len() as u64,
        runs_total as u64,
        clip_jobs.len() as u64,
    );
    // The run's own stop signal: the caller's (Ctrl-C) forwarded into it, and raised by a job
    // when ONC refuses the token.
    let (stop, stopped) = watch::channel(*cancel.borrow());
    let forward = {
        let (stop, mut cancel) = (stop.clone(), cancel);
        tokio::spawn(async move {
            if cancel.wait_for(|stop| *stop).await.is_ok() {
                stop.send_replace(true);
            }
        })
    };
    let claims = FileClaims::across_runs(cache.clone());
    let context = Arc::new(Context {
        client,
        cache,
        limits: Limits::new(&work.plan.settings),
        admission: Admission::new(usize::try_from(work.plan.settings.max_runs).unwrap_or(1)),
        output_dir: output_dir.to_path_buf(),
        events,
        cancel: stopped,
        stop,
        rejected: std::sync::OnceLock::new(),
        stats: std::sync::Mutex::new(stats),
        base_url: base_url.to_owned(),
        claims,
        coverages: std::sync::Mutex::default(),
        decoded: Arc::new(crate::clip::cut::DecodedFiles::new(DECODED_BUDGET_BYTES)),
        product_windows,
    });
    // Each ONC job announces its end (true: its files are stored) to the clips that need it.
    let mut finished: HashMap<NodeKey, watch::Sender<Option<bool>>> = HashMap::new();
    for job in &all_jobs {
        finished.insert(job.key, watch::channel(None).0);
    }
    let mut tasks = tokio::task::JoinSet::new();
    // Which node each task works for, so a task that panics is reported against its node.
    let mut task_nodes: HashMap<tokio::task::Id, (NodeKey, NodeKind, String)> = HashMap::new();
    for job in all_jobs.clone() {
        let context = context.clone();
        let done = finished.get(&job.key).cloned();
        let node = (job.key, job.kind, job.what.clone());
        let handle = tasks.spawn(async move {
            let end = run_job(&context, &job).await;
            if let Some(done) = done {
                done.send_replace(Some(matches!(end, JobEnd::Cached | JobEnd::Downloaded)));
            }
            Task::Onc(Box::new(job), end)
        });
        task_nodes.insert(handle.id(), node);
    }
    for job in clip_jobs {
        let context = context.clone();
        let upstream: Vec<watch::Receiver<Option<bool>>> = job
            .upstream
            .iter()
            .filter_map(|key| finished.get(key).map(watch::Sender::subscribe))
            .collect();
        let node = (job.key, NodeKind::Clip, job.what.clone());
        let handle = tasks.spawn(async move {
            for mut receiver in upstream {
                match receiver.wait_for(Option::is_some).await.map(|v| *v) {
                    Ok(Some(true)) => {}
                    _ if context.cancelled() => {
                        return Task::Clip(Box::new(job), super::clips::ClipEnd::Interrupted);
                    }
                    _ => {
                        return Task::Clip(
                            Box::new(job),
                            super::clips::ClipEnd::Failed(ExecError::SourcesNotFetched),
                        );
                    }
                }
            }
            let end = super::clips::run_clip(&context, &job).await;
            Task::Clip(Box::new(job), end)
        });
        task_nodes.insert(handle.id(), node);
    }
    // Every clip has subscribed: from here on only the ONC tasks hold senders, so a task that
    // panics closes its channel and its clips fail instead of waiting forever.
    drop(finished);
    let mut summary = RunSummary {
        manifest: work.manifest.to_owned(),
        started_at,
        ..RunSummary::default()
    };
    while let Some(joined) = tasks.join_next_with_id().await {
        let (job, end) = match joined {
            Ok((_, Task::Onc(job, end))) => (job, end),
            Ok((_, Task::Clip(job, end))) => {
                // Written, cached and skipped clips were counted from their events.
                match end {
                    super::clips::ClipEnd::Interrupted => summary.interrupted = true,
                    super::clips::ClipEnd::Failed(reason) => {
                        report_failure(
                            &context,
                            &mut summary,
                            job.key,
                            NodeKind::Clip,
                            &job.what,
                            &reason,
                        );
                    }
                    _ => {}
                }
                continue;
            }
            Err(error) => {
                let reason = ExecError::Panicked(error.to_string());
                match task_nodes.get(&error.id()) {
                    Some((key, kind, what)) => {
                        report_failure(&context, &mut summary, *key, *kind, what, &reason);
                    }
                    None => summary.failures.push(Failure {
                        node: String::new(),
                        kind: "internal".into(),
                        what: String::new(),
                        reason: reason.to_string(),
                    }),
                }
                continue;
            }
        };
        // Cached and downloaded nodes were counted from their events.
        match end {
            JobEnd::Failed(reason) => {
                report_failure(
                    &context,
                    &mut summary,
                    job.key,
                    job.kind,
                    &job.what,
                    &reason,
                );
            }
            JobEnd::Interrupted => summary.interrupted = true,
            JobEnd::Cached | JobEnd::Downloaded => {}
        }
    }
    summary.stats = context.stats();
    summary.http_requests = context.client.requests_sent();
    summary.interrupted |= context.cancelled();
    summary.token_rejected = context.rejected.get().cloned();
    summary.wall_seconds = started.elapsed().as_secs_f64();
    forward.abort();
    summary
}

/// Shows a failed node and adds it to the run record.
pub(super) fn report_failure(
    context: &Context,
    summary: &mut RunSummary,
    key: NodeKey,
    kind: NodeKind,
    what: &str,
    reason: &ExecError,
) {
    let reason = reason.to_string();
    let (node, what_text, reason_text) = (key.short(), what.to_owned(), reason.clone());
    // Clips have their own event so progress counts them as clips, not as ONC requests.
    context.emit(if kind == NodeKind::Clip {
        Event::ClipFailed {
            node,
            what: what_text,
            reason: reason_text,
        }
    } else {
        Event::Failed {
            node,
            kind,
            what: what_text,
            reason: reason_text,
        }
    });
    summary.failures.push(Failure {
        node: key.to_hex(),
        kind: kind.as_str().to_owned(),
        what: what.to_owned(),
        reason,
    });
}

/// What a spawned task returns.
pub(super) enum Task {
    Onc(Box<Job>, JobEnd),
    Clip(Box<super::clips::ClipJob>, super::clips::ClipEnd),
}

/// Removes the temporary names a killed run left in the folders this run places outputs in
/// (and the probe in the output root), before anything is placed: a SIGKILL between a temp link
/// and its rename, or during the writability probe, would otherwise leave them in the user's
/// tree for good. One listing per folder.
async fn sweep_output_folders(output_dir: &Path, jobs: &[Job], clips: &[super::clips::ClipJob]) {
    let mut folders: std::collections::BTreeSet<std::path::PathBuf> = jobs
        .iter()
        .flat_map(|job| job.destinations.iter().cloned())
        .collect();
    folders.extend(clips.iter().map(|clip| output_dir.join(&clip.folder)));
    folders.insert(output_dir.to_path_buf());
    let _ = tokio::task::spawn_blocking(move || {
        for folder in &folders {
            crate::temp::sweep_leftovers(folder);
        }
    })
    .await;
}

/// The clip jobs of the DAG, each with the ONC nodes that fetch its files (through its file
/// nodes) and one of their queries (they share a source identity), in the order they are cut:
/// by device, media and time, whatever the order of the events in the request file, so clips
/// that share source files run one after the other and the decoded-file cache keeps them.
pub(super) fn clip_jobs(dag: &Dag) -> Vec<super::clips::ClipJob> {
    let mut jobs: Vec<super::clips::ClipJob> = dag
        .nodes()
        .filter(|node| node.kind == NodeKind::Clip)
        .filter_map(|node| {
            let mut upstream: Vec<NodeKey> = node
                .inputs
                .iter()
                .filter_map(|file| dag.node(file))
                .flat_map(|file| file.inputs.iter().copied())
                .collect();
            upstream.sort();
            upstream.dedup();
            let query = upstream.iter().find_map(|key| match dag.node(key) {
                Some(Node {
                    detail: NodeDetail::Request { query, .. },
                    ..
                }) => Some(query.clone()),
                _ => None,
            })?;
            super::clips::clip_job(node, upstream, query)
        })
        .collect();
    // Stable: clips of one window keep the DAG's order.
    jobs.sort_by(|a, b| {
        (
            &a.spec.device,
            a.spec.media == Media::Audio,
            a.clip_start_ns,
        )
            .cmp(&(
                &b.spec.device,
                b.spec.media == Media::Audio,
                b.clip_start_ns,
            ))
    });
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clips_are_cut_in_time_order_per_device_and_media() {
        let dir = tempfile::tempdir().unwrap();
        // Events deliberately out of time order, on two devices.
        let csv = "deviceCode,timestamp,label,download_audio,clip\n\
                   ICLISTENHF6324,2024-04-01T03:00:00Z,c,true,true\n\
                   ICLISTENHF6406,2024-04-01T02:00:00Z,x,true,true\n\
                   ICLISTENHF6324,2024-04-01T01:00:00Z,a,true,true\n\
                   ICLISTENHF6324,2024-04-01T02:00:00Z,b,true,true\n";
        std::fs::write(dir.path().join("events.csv"), csv).unwrap();
        let manifest = r#"version = 1
[plan.events]
requests = "events.csv"
[fetch.plotres]
plan = "events"
product = "HSD"
extension = "mat"
[fetch.audio]
plan = "events"
archive = "flac"
[clip.events]
plan = "events"
fetch = ["plotres", "audio"]
pad = "5s"
"#;
        let path = dir.path().join("m.toml");
        std::fs::write(&path, manifest).unwrap();
        let compiled = crate::compile::compile(&path).unwrap();
        let order: Vec<(String, bool, String)> = clip_jobs(&compiled.dag)
            .iter()
            .map(|job| {
                let label = job.spec.label.as_deref().unwrap_or_default().to_owned();
                (
                    job.spec.device.to_string(),
                    job.spec.media == Media::Audio,
                    label,
                )
            })
            .collect();
        let mut want = Vec::new();
        for (device, labels) in [("ICLISTENHF6324", "abc"), ("ICLISTENHF6406", "x")] {
            for audio in [false, true] {
                for label in labels.chars() {
                    want.push((device.to_owned(), audio, label.to_string()));
                }
            }
        }
        assert_eq!(order, want);
    }
}
