//! One ONC node's job: a product request or an archive listing, from the DAG to its files in
//! the output tree.
//!
//! Input: a request or listing node and the shared [`Context`]. Output: [`JobEnd`] — satisfied
//! from the cache (no HTTP), downloaded, failed (with why) or interrupted; its files linked into
//! the output tree and its node recorded. Errors: [`JobError`], reported per node.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use chrono::Utc;

use super::error::ExecError;
use super::events::Event;
use crate::cache::sanitise_name;
use crate::cache::{NodeRecord, StoredFile, link_output};
use crate::dag::Dag;
use crate::dag::{NodeDetail, NodeKey, NodeKind, describe, window_key};
use crate::plan::Plan;
use onc_format::query::{self, OncQuery};
use onc_format::stamp::onc_date;

use super::archive::archive_job;
use super::context::Context;
use super::product::product_job;

/// One unit of ONC work: a product request or an archive listing node.
#[derive(Debug, Clone)]
pub(super) struct Job {
    pub(super) key: NodeKey,
    pub(super) kind: NodeKind,
    pub(super) what: String,
    pub(super) query: OncQuery,
    pub(super) from_ms: i64,
    pub(super) to_ms: i64,
    /// Output folders (DEVICE/TAG/SUB) its files are linked into.
    pub(super) destinations: Vec<PathBuf>,
}

/// How a job ended.
#[derive(Debug)]
pub(super) enum JobEnd {
    Cached,
    Downloaded,
    Failed(ExecError),
    Interrupted,
}

/// The identity of a source: every query parameter except the time window. Files fetched under
/// one identity serve every window, stage and manifest that needs the same source.
///
/// `server` is the logical server (`simulator` or ONC's URL), so simulated files never stand in
/// for real ones in a shared cache.
pub fn source_identity(server: &str, query: &OncQuery) -> String {
    // The parameters as sent, minus the window: the same text (and so the same identity, which
    // names coverage files on disk) as when queries travelled as parameter maps.
    let params = query.params();
    let mut canonical: BTreeMap<&str, &str> = params
        .iter()
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                query::DATE_FROM | query::DATE_TO | query::RETURN_OPTIONS
            )
        })
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    canonical.insert(
        "kind",
        if query.is_archive() {
            "archive"
        } else {
            "product"
        },
    );
    canonical.insert("server", server);
    let text = serde_json::to_string(&canonical).unwrap_or_default();
    blake3::derive_key("onc-pipe source identity", text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Which output subfolder a source's files go to.
pub(super) fn subfolder(source: &crate::plan::Source) -> &'static str {
    if let crate::plan::Source::Archive { extension } = source {
        // Archived spectrograms beside the product ones; other archived files by themselves.
        return match (query::ArchivedKind::of(extension), extension.as_str()) {
            (query::ArchivedKind::Audio, _) => "audio",
            (query::ArchivedKind::SpectrogramMat, _) => "mat",
            (query::ArchivedKind::Other, "png") => "png",
            (query::ArchivedKind::Other, _) => "archive",
        };
    }
    match (source.product_code(), source.extension()) {
        (Some(query::SPECTROGRAM_PRODUCT), "mat") => "mat",
        (Some(query::SPECTROGRAM_PRODUCT), "png" | "pdf") => "png",
        (Some(query::SPECTROGRAM_PRODUCT), _) => "spectrograms",
        _ => "audio",
    }
}

pub(super) fn jobs(plan: &Plan, dag: &Dag, output_dir: &Path) -> Vec<Job> {
    let tag_of: HashMap<NodeKey, &str> = plan
        .windows
        .iter()
        .map(|window| (window_key(window), window.tag.as_str()))
        .collect();
    dag.nodes()
        .filter(|node| matches!(node.kind, NodeKind::ProductRequest | NodeKind::ArchiveList))
        .filter_map(|node| {
            let NodeDetail::Request { device, query, .. } = &node.detail else {
                return None;
            };
            let (from_ms, to_ms) = (query.from_ms(), query.to_ms());
            let tags: BTreeSet<&str> = node
                .inputs
                .iter()
                .filter_map(|k| tag_of.get(k).copied())
                .collect();
            let sub = subfolder(&query.source);
            let destinations = tags
                .iter()
                .map(|tag| output_dir.join(device).join(tag).join(sub))
                .collect();
            Some(Job {
                key: node.key,
                kind: node.kind,
                what: describe(node),
                query: query.clone(),
                from_ms,
                to_ms,
                destinations,
            })
        })
        .collect()
}

pub(super) async fn run_job(context: &Context, job: &Job) -> JobEnd {
    if context.cancelled() {
        return JobEnd::Interrupted;
    }
    let identity = source_identity(&context.base_url, &job.query);
    // Cached? A query is covered when earlier queries of the same source covered its window,
    // and every file they returned is still in the store.
    let coverage = match context.coverage(&identity) {
        Ok(coverage) => coverage,
        Err(reason) => return JobEnd::Failed(reason),
    };
    for problem in &coverage.problems {
        context.emit(Event::Warning {
            node: job.key.short(),
            message: format!("ignoring a damaged cache entry: {problem}"),
        });
    }
    if let Some(end) = served_from_cache(context, job, &coverage).await {
        return end;
    }
    // Not covered: claim the node among the runs sharing this cache (two people, several
    // shards). A run that had to wait, or finds the node recorded since it read the coverage,
    // reads the coverage again: the other run's order serves this one, and ONC sees it once.
    let claim = match claim_node(context, job).await {
        Ok(claim) => claim,
        Err(JobError::Interrupted) => return JobEnd::Interrupted,
        Err(JobError::Failed(reason)) => return JobEnd::Failed(reason),
    };
    // With a team store, the node may have been ordered and released by a run on another
    // machine since this run read the store: its coverage is looked up again before ordering
    // (one listing per node ordered, nothing for nodes served from the folder).
    let coverage = if claim.waited
        || context.cache.remote().is_some()
        || context
            .cache
            .read_node_record(&job.key.to_hex())
            .ok()
            .flatten()
            .is_some()
    {
        // With a team store, the other run may be on another machine: its files are there.
        if context.cache.remote().is_some() {
            let (cache, id, from_ms, to_ms) = (
                context.cache.clone(),
                identity.clone(),
                job.from_ms,
                job.to_ms,
            );
            let pulled = blocking(move || {
                let Some(remote) = cache.remote() else {
                    return Ok(0);
                };
                remote
                    .pull_coverage(&cache, &id, from_ms, to_ms, true)
                    .map_err(|error| ExecError::cache("read the team cache", error))
            })
            .await;
            if let Err(reason) = pulled {
                return JobEnd::Failed(reason);
            }
        }
        let coverage = match context.reload_coverage(&identity) {
            Ok(coverage) => coverage,
            Err(reason) => return JobEnd::Failed(reason),
        };
        if let Some(end) = served_from_cache(context, job, &coverage).await {
            return end;
        }
        coverage
    } else {
        coverage
    };
    let uncovered = coverage.uncovered(job.from_ms, job.to_ms);
    let files = coverage.files_overlapping(job.from_ms, job.to_ms);
    let missing: Vec<&StoredFile> = files
        .iter()
        .filter(|f| !context.cache.has_object(&f.blake3, f.size))
        .collect();
    // Fetch only what is not covered; if stored files went missing, fetch their whole window.
    let (from_ms, to_ms) = if missing.is_empty() {
        let first = uncovered.first().map_or(job.from_ms, |u| u.0);
        let last = uncovered.last().map_or(job.to_ms, |u| u.1);
        (first, last)
    } else {
        (job.from_ms, job.to_ms)
    };
    if !missing.is_empty() {
        context.emit(Event::Warning {
            node: job.key.short(),
            message: format!(
                "{} cached file(s) missing or damaged (e.g. {}): fetching again",
                missing.len(),
                missing[0].name
            ),
        });
    }
    let result = match job.kind {
        NodeKind::ArchiveList => {
            archive_job(context, job, &identity, from_ms, to_ms, &coverage).await
        }
        _ => product_job(context, job, &identity, from_ms, to_ms, &coverage).await,
    };
    match result {
        Ok(()) => {
            let coverage = match context.coverage(&identity) {
                Ok(coverage) => coverage,
                Err(reason) => return JobEnd::Failed(reason),
            };
            let files = coverage.files_overlapping(job.from_ms, job.to_ms);
            match finish(context, job, &files, true).await {
                Ok(()) => {
                    context.emit(Event::Done {
                        node: job.key.short(),
                        kind: job.kind,
                        what: job.what.clone(),
                        files: files.len(),
                    });
                    JobEnd::Downloaded
                }
                Err(reason) => JobEnd::Failed(reason),
            }
        }
        Err(JobError::Interrupted) => JobEnd::Interrupted,
        Err(JobError::Failed(reason)) => JobEnd::Failed(reason),
    }
}

/// The job's end when `coverage` covers its window and every file it names is stored: its
/// files linked and the node recorded as cached; `None` when something must be fetched.
async fn served_from_cache(
    context: &Context,
    job: &Job,
    coverage: &crate::cache::Coverage,
) -> Option<JobEnd> {
    if !coverage.uncovered(job.from_ms, job.to_ms).is_empty() {
        return None;
    }
    let files = coverage.files_overlapping(job.from_ms, job.to_ms);
    if files
        .iter()
        .any(|f| !context.cache.has_object(&f.blake3, f.size))
    {
        return None;
    }
    Some(match finish(context, job, &files, false).await {
        Ok(()) => {
            context.emit(Event::Cached {
                node: job.key.short(),
                kind: job.kind,
                what: job.what.clone(),
                files: files.len(),
            });
            JobEnd::Cached
        }
        Err(reason) => JobEnd::Failed(reason),
    })
}

/// A node claimed by this run, and whether another run had it first.
struct HeldClaim {
    _claim: crate::cache::NodeClaim,
    /// Another run held the node when this one asked: it may have fetched it meanwhile.
    waited: bool,
}

/// Claims the job's node in the cache, waiting while another run holds it (saying so once).
/// The wait is a poll of the OS lock, once a second on ONC's clock: the other run's order
/// takes at least that long, and a blocked thread per waiting job would not scale to hundreds.
async fn claim_node(context: &Context, job: &Job) -> Result<HeldClaim, JobError> {
    let key = job.key.to_hex();
    let mut waited = false;
    // A team store's claims live a lease on ONC's clock (a simulator may run it faster).
    if let Some(remote) = context.cache.remote() {
        remote.set_lease(context.client.scaled(crate::cache::remote::DEFAULT_LEASE));
    }
    loop {
        let cache = context.cache.clone();
        let node = key.clone();
        let attempt = blocking(move || {
            cache
                .try_claim_node(&node)
                .map_err(|error| ExecError::cache("claim the node", error))
        })
        .await?;
        match attempt {
            Ok(claim) => {
                return Ok(HeldClaim {
                    _claim: claim,
                    waited,
                });
            }
            Err(holder) => {
                if !waited {
                    context.emit(Event::Warning {
                        node: job.key.short(),
                        message: format!(
                            "another run ({holder}) is ordering {} from ONC on this cache: \
                             waiting for it, then using its files",
                            job.what
                        ),
                    });
                    waited = true;
                }
                let pause = context
                    .client
                    .scaled(std::time::Duration::from_secs(1))
                    .max(std::time::Duration::from_millis(10));
                if !context.sleep(pause).await {
                    return Err(JobError::Interrupted);
                }
            }
        }
    }
}

/// Links a node's files into the output tree and records the node, on a blocking thread (links,
/// renames and fsyncs must not stall the async workers that poll ONC).
pub(super) async fn finish(
    context: &Context,
    job: &Job,
    files: &[StoredFile],
    record: bool,
) -> Result<(), ExecError> {
    let cache = context.cache.clone();
    let destinations = job.destinations.clone();
    let files = files.to_vec();
    let node_record = record.then(|| NodeRecord {
        key: job.key.to_hex(),
        kind: job.kind.as_str().into(),
        outputs: files.clone(),
        completed_at: onc_date(Utc::now()),
        detail: serde_json::json!({ "query": job.query.params() }),
    });
    blocking(move || {
        for destination in &destinations {
            for file in &files {
                let object = cache.object_path(&file.blake3);
                let name = sanitise_name(&file.name).unwrap_or_else(|| file.blake3.clone());
                let target =
                    crate::cache::safe_join(destination, Path::new(&name)).map_err(|error| {
                        ExecError::cache(format!("place {} in the output tree", file.name), error)
                    })?;
                link_output(&object, &target).map_err(|error| {
                    ExecError::cache(format!("link {} into the output tree", file.name), error)
                })?;
            }
        }
        if let Some(node_record) = node_record {
            cache
                .write_node_record(&node_record)
                .map_err(|error| ExecError::cache("record the node", error))?;
        }
        Ok(())
    })
    .await
}

/// Runs filesystem work (renames, links, fsyncs) so it does not stall the async workers: on
/// the multi-threaded runtime `run` uses, in place after handing this worker's other tasks to
/// the others (`block_in_place`: no thread hand-off, which cost a no-op re-run of 834 cached
/// requests a third of its time with `spawn_blocking`); elsewhere on the blocking pool. A panic
/// there becomes the node's failure.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ExecError> + Send + 'static,
) -> Result<T, ExecError> {
    let flavor = tokio::runtime::Handle::current().runtime_flavor();
    if flavor == tokio::runtime::RuntimeFlavor::MultiThread {
        return std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            tokio::task::block_in_place(work)
        }))
        .unwrap_or_else(|_| Err(ExecError::Panicked("a filesystem task panicked".into())));
    }
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|error| Err(ExecError::Panicked(error.to_string())))
}

/// How a job stopped early.
#[derive(Debug)]
pub(super) enum JobError {
    Failed(ExecError),
    Interrupted,
}

impl<E: Into<ExecError>> From<E> for JobError {
    fn from(error: E) -> Self {
        JobError::Failed(error.into())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::DateTime;

    use super::*;

    fn hsd_query() -> OncQuery {
        OncQuery {
            device: "D".into(),
            source: crate::plan::Source::Product {
                code: "HSD".into(),
                extension: "mat".into(),
                options: BTreeMap::new(),
            },
            from: DateTime::from_timestamp_millis(1_711_929_600_000).unwrap(),
            to: DateTime::from_timestamp_millis(1_711_929_900_000).unwrap(),
        }
    }

    #[test]
    fn identity_ignores_the_window_only() {
        let first = source_identity("simulator", &hsd_query());
        let moved = hsd_query().with_window(0, 1_000);
        assert_eq!(source_identity("simulator", &moved), first);
        assert_ne!(
            source_identity("https://data.oceannetworks.ca/", &moved),
            first
        );
        let mut options = hsd_query();
        if let crate::plan::Source::Product { options, .. } = &mut options.source {
            options.insert("dpo_spectralDataDownsample".into(), "2".into());
        }
        assert_ne!(source_identity("simulator", &options), first);
    }

    /// Identities name coverage files in existing caches: they must not change with the types.
    #[test]
    fn identity_is_the_text_of_the_parameters_minus_the_window() {
        let canonical = r#"{"dataProductCode":"HSD","deviceCode":"D","extension":"mat","kind":"product","server":"simulator"}"#;
        let expected: String = blake3::derive_key("onc-pipe source identity", canonical.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(source_identity("simulator", &hsd_query()), expected);
    }
}
