//! Reporting: compiled plans and DAGs → text, JSON. The only module that formats results for
//! people and machines; commands just print what it returns.

pub mod estimate;
pub mod housekeeping;
pub mod progress;
pub mod shards;
pub mod status;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde::Serialize;

use crate::compile::Compiled;
use crate::dag::state::{DirtyReason, FreshReason, InFlight, NodeState};
use crate::dag::{Node, NodeDetail, NodeKey, NodeKind, describe};

#[derive(Serialize)]
struct NodeView<'a> {
    #[serde(flatten)]
    node: &'a Node,
    state: &'static str,
    why: String,
    /// A clip's files, relative to the output root, for a workflow manager to declare (a clip
    /// split at gaps is written as `NAME_part1`, … instead: the catalog lists those).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    outputs: Vec<String>,
}

/// The files a clip node writes (see [`NodeView::outputs`]); none for other nodes.
fn clip_outputs(node: &Node) -> Vec<String> {
    let NodeDetail::Clip(clip) = &node.detail else {
        return Vec::new();
    };
    let media = match clip.media {
        crate::clip::cut::Media::Spectrogram => "spectrograms",
        crate::clip::cut::Media::Audio => "audio",
    };
    let folder = format!("{}/{}/clips/{media}/{}", clip.device, clip.tag, clip.name);
    clip.formats
        .iter()
        .map(|format| format!("{folder}.{}", format.as_str()))
        .chain([format!("{folder}.json")])
        .collect()
}

#[derive(Serialize)]
struct PlanView<'a> {
    manifest: &'a str,
    settings: BTreeMap<&'static str, String>,
    summary: BTreeMap<&'static str, usize>,
    windows: Vec<crate::dag::WindowRow>,
    estimate: &'a crate::estimate::Estimate,
    /// With `plan --shards N`: how the work would be split.
    #[serde(skip_serializing_if = "Option::is_none")]
    shards: Option<&'a shards::ShardsView>,
    nodes: Vec<NodeView<'a>>,
}

fn summary(compiled: &Compiled) -> BTreeMap<&'static str, usize> {
    let dag = &compiled.dag;
    let estimated_files = dag
        .nodes()
        .map(|node| match &node.detail {
            NodeDetail::Request {
                estimated_files, ..
            } => usize::try_from(*estimated_files).unwrap_or(0),
            _ => 0,
        })
        .sum();
    BTreeMap::from([
        ("windows", compiled.plan.windows.len()),
        ("product_requests", dag.count(NodeKind::ProductRequest)),
        ("archive_lists", dag.count(NodeKind::ArchiveList)),
        ("files", dag.count(NodeKind::File)),
        ("estimated_files", estimated_files),
        ("clips", dag.count(NodeKind::Clip)),
        ("nodes", dag.len()),
    ])
}

fn settings(compiled: &Compiled) -> BTreeMap<&'static str, String> {
    let s = &compiled.plan.settings;
    BTreeMap::from([
        ("base_url", s.base_url.clone()),
        ("output_dir", s.output_dir.display().to_string()),
        ("cache_dir", s.cache_dir.display().to_string()),
        ("stagger_ms", s.stagger_ms.to_string()),
        ("poll_interval_ms", s.poll_interval_ms.to_string()),
        ("max_wait_ms", s.max_wait_ms.to_string()),
        ("max_runs", s.max_runs.to_string()),
        ("download_workers", s.download_workers.to_string()),
        ("max_attempts", s.max_attempts.to_string()),
        ("timeout_ms", s.timeout_ms.to_string()),
    ])
}

/// Each node's state and why it runs, by key (from [`crate::exec::node_states`]).
pub type NodeStates = HashMap<NodeKey, NodeState>;

/// A node's state in one word or two, as `plan` and `status` show it.
pub fn state_word(state: &NodeState) -> &'static str {
    match state {
        NodeState::Planned => "planned",
        NodeState::Cached(_) => "cached",
        NodeState::InFlight(_) => "in flight",
        NodeState::ToRun(_) => "to run",
    }
}

/// Why a node is in its state, in words.
pub fn reason_text(state: &NodeState) -> Cow<'static, str> {
    Cow::Borrowed(match state {
        NodeState::Planned => "computed from the manifest",
        NodeState::Cached(FreshReason::AllFilesCached) => "all files in the cache",
        NodeState::Cached(FreshReason::RequestCached) => "its request is cached",
        NodeState::Cached(FreshReason::AlreadyCut) => "already cut",
        NodeState::InFlight(InFlight::Submitted { .. }) => {
            "submitted by an earlier run; the next run re-attaches"
        }
        NodeState::InFlight(InFlight::RequestInFlight) => "its request is in flight",
        NodeState::ToRun(DirtyReason::NoCache) => "new (no cache yet)",
        NodeState::ToRun(DirtyReason::New) => "new",
        NodeState::ToRun(DirtyReason::CacheUnreadable) => "new (cache unreadable)",
        NodeState::ToRun(DirtyReason::OutputDamaged(what)) => {
            return Cow::Owned(format!("output missing or corrupted: {what}"));
        }
        NodeState::ToRun(DirtyReason::PartlyCached { missing_seconds }) => {
            return Cow::Owned(format!(
                "partly cached: {missing_seconds} s of the window not fetched yet"
            ));
        }
        NodeState::ToRun(DirtyReason::RequestMustRun) => "its request must run",
        NodeState::ToRun(DirtyReason::NewClip) => "new (a new window, padding or format)",
    })
}

/// A node's state word and reason; a node without a state is new.
fn state_of(states: &NodeStates, node: &Node) -> (&'static str, String) {
    states.get(&node.key).map_or_else(
        || ("to run", "new".to_owned()),
        |state| (state_word(state), reason_text(state).into_owned()),
    )
}

/// The ONC nodes (requests and listings) of a plan with their states, in plan order.
pub(super) fn onc_rows<'a>(
    compiled: &'a Compiled,
    states: &'a NodeStates,
) -> Vec<(&'a Node, &'a NodeState)> {
    compiled
        .dag
        .nodes()
        .filter(|node| matches!(node.kind, NodeKind::ProductRequest | NodeKind::ArchiveList))
        .filter_map(|node| Some((node, states.get(&node.key)?)))
        .collect()
}

/// `plan --format json`: settings, summary, `windows`, the `estimate` and `nodes` with state
/// and reason.
pub fn plan_json(
    compiled: &Compiled,
    states: &NodeStates,
    estimate: &crate::estimate::Estimate,
) -> String {
    plan_json_with(compiled, states, estimate, None)
}

/// [`plan_json`] with `shards`: the split `plan --shards N` shows.
pub fn plan_json_with(
    compiled: &Compiled,
    states: &NodeStates,
    estimate: &crate::estimate::Estimate,
    shards: Option<&shards::ShardsView>,
) -> String {
    let view = PlanView {
        shards,
        manifest: &compiled.loaded.file,
        settings: settings(compiled),
        summary: summary(compiled),
        windows: crate::dag::window_rows(&compiled.plan),
        estimate,
        nodes: compiled
            .dag
            .nodes()
            .map(|node| {
                let (state, why) = state_of(states, node);
                NodeView {
                    node,
                    state,
                    why,
                    outputs: clip_outputs(node),
                }
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&view).unwrap_or_default();
    text.push('\n');
    text
}

/// `plan --format text`: a summary, the estimate, then every ONC request with its query, then
/// clips.
pub fn plan_text(
    compiled: &Compiled,
    states: &NodeStates,
    estimate: &crate::estimate::Estimate,
) -> String {
    let mut out = String::new();
    let s = summary(compiled);
    let count = |key: &str| s.get(key).copied().unwrap_or(0);
    let _ = writeln!(
        out,
        "plan for {} (base URL {})",
        compiled.loaded.file, compiled.plan.settings.base_url
    );
    let _ = writeln!(
        out,
        "  {} windows -> {} ONC product requests + {} archive listings -> {} five-minute files -> {} clips",
        count("windows"),
        count("product_requests"),
        count("archive_lists"),
        count("files"),
        count("clips"),
    );
    let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
    for node in compiled.dag.nodes().filter(|n| n.kind != NodeKind::Window) {
        *tally.entry(state_of(states, node).0).or_default() += 1;
    }
    let tally: Vec<String> = tally.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let _ = writeln!(out, "  nodes: {}", tally.join(", "));
    out.push_str(&estimate::estimate_text(estimate, &compiled.plan.settings));
    for kind in [
        NodeKind::ProductRequest,
        NodeKind::ArchiveList,
        NodeKind::Clip,
    ] {
        let nodes: Vec<&Node> = compiled.dag.nodes().filter(|n| n.kind == kind).collect();
        if nodes.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n{} ({}):",
            kind.as_str().replace('_', " "),
            nodes.len()
        );
        for node in nodes {
            let (state, why) = state_of(states, node);
            let _ = writeln!(
                out,
                "  {} {:<9} {} ({why})",
                node.key.short(),
                state,
                describe(node)
            );
            if let NodeDetail::Request { query, .. } = &node.detail
                && let crate::plan::Source::Product { options, .. } = &query.source
            {
                let options: Vec<String> = options
                    .iter()
                    .filter(|(k, _)| k.starts_with(onc_format::query::OPTION_PREFIX))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                if !options.is_empty() {
                    let _ = writeln!(out, "               {}", options.join(" "));
                }
            }
        }
    }
    out
}

/// Diagnostics as `validate` shows them to a person.
pub fn diagnostics_text(diagnostics: &[crate::manifest::Diagnostic]) -> String {
    crate::manifest::diagnostic::render_all(diagnostics, crate::manifest::DiagnosticFormat::Human)
}

/// Says that a device's or site's deployments could not be checked (offline, nothing cached).
pub fn not_consulted_text(who: &crate::plan::deployed::Deployed) -> String {
    let what = match who {
        crate::plan::deployed::Deployed::Device(device) => device.clone(),
        crate::plan::deployed::Deployed::Site { location, category } => {
            format!("{category} at {location}")
        }
    };
    format!(
        "the deployments of {what} were not checked (offline, nothing cached): run `onc-pipe plan` online once"
    )
}

/// Tells the user the first interrupting signal was heard, and what a second one does.
pub fn stopping_notice(heard: crate::interrupt::Interrupt) {
    eprintln!("{}", stopping_text(heard));
}

fn stopping_text(heard: crate::interrupt::Interrupt) -> String {
    format!(
        "onc-pipe: {}: stopping: no new work; partial downloads are removed, the journal is kept ({} to quit now)",
        heard.name(),
        heard.again()
    )
}

/// The command that resumes an interrupted run: the same command line, quoted for a POSIX
/// shell where a word needs it.
pub fn resume_line(args: &[String]) -> String {
    let words: Vec<String> = args.iter().map(|arg| shell_word(arg)).collect();
    format!("to resume: {}", words.join(" "))
}

/// `word` as a shell reads it back: as is when it holds only safe characters, else in single
/// quotes (a quote inside written as `'\''`).
fn shell_word(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// One plain line for an executor event (when not on a terminal, or with `--no-progress`).
pub fn event_line(event: &crate::exec::Event) -> String {
    use crate::exec::Event;
    match event {
        Event::Cached {
            node, what, files, ..
        } => {
            format!(
                "cached     {node} {what} ({}, no request)",
                count(*files, "file")
            )
        }
        Event::Submitted {
            node,
            what,
            dp_request_id,
            estimate,
        } => format!(
            "submitted  {node} {what} (dpRequestId {dp_request_id}{})",
            estimate
                .as_ref()
                .map(|e| format!(", ONC estimates {e}"))
                .unwrap_or_default()
        ),
        Event::Reattached {
            node,
            what,
            dp_request_id,
            dp_run_id,
        } => format!(
            "resumed    {node} {what} (dpRequestId {dp_request_id}{})",
            dp_run_id
                .map(|id| format!(", dpRunId {id}"))
                .unwrap_or_default()
        ),
        Event::Progress {
            node,
            status,
            message,
        } if message.is_empty() => format!("status     {node} {status}"),
        Event::Progress {
            node,
            status,
            message,
        } => format!("status     {node} {status}: {message}"),
        Event::RunComplete {
            node,
            dp_run_id,
            files,
        } => format!(
            "processed  {node} dpRunId {dp_run_id}: {} to download",
            count(*files, "file")
        ),
        Event::Listed {
            node,
            what,
            files,
            to_download,
        } => format!(
            "listed     {node} {what}: {}, {to_download} to download",
            count(*files, "file")
        ),
        Event::Downloaded { node, file, bytes } => {
            format!(
                "downloaded {node} {file} ({})",
                estimate::bytes_text(*bytes)
            )
        }
        Event::FileReused { node, file } => format!("reused     {node} {file} (already stored)"),
        Event::Done {
            node, what, files, ..
        } => format!("done       {node} {what} ({})", count(*files, "file")),
        Event::Failed {
            node, what, reason, ..
        }
        | Event::ClipFailed { node, what, reason } => {
            format!(
                "{}     {node} {what}: {reason}",
                crate::style::error("FAILED")
            )
        }
        Event::Clipped { node, what, pieces } if *pieces == 1 => {
            format!("clipped    {node} {what}")
        }
        Event::Clipped { node, what, pieces } => {
            format!("clipped    {node} {what} ({pieces} pieces, split at gaps)")
        }
        Event::ClipCached { node, what } => format!("cached     {node} {what} (already cut)"),
        Event::ClipSkipped { node, what, reason } => {
            format!("skipped    {node} {what}: {reason}")
        }
        Event::Warning { node, message } => format!("warning    {node} {message}"),
    }
}

/// The run's catalog lines: where `catalog.csv` is and how many clips it lists (not with
/// `quiet`), a warning with a count when clips hold filled gaps, and why the catalog could not
/// be written when it could not (always).
pub fn catalog_lines(
    catalog: &Result<crate::catalog::Catalog, crate::catalog::CatalogError>,
    quiet: bool,
) -> String {
    let mut text = String::new();
    match catalog {
        Ok(catalog) => {
            if !quiet {
                let clips = count(catalog.clips, "clip");
                text.push_str(&format!("catalog: {} ({clips})\n", catalog.path.display()));
            }
            if catalog.gap_filled > 0 {
                text.push_str(&format!(
                    "warning: {} filled where ONC had no data ({:.1} s in all): see filled_gap_s and coverage in {}\n",
                    plural(catalog.gap_filled as u64, "clip has gaps", "clips have gaps"),
                    catalog.gap_filled_seconds,
                    crate::catalog::CATALOG_FILE,
                ));
            }
            if catalog.unreadable > 0 {
                text.push_str(&format!(
                    "warning: {} left out of the catalog: its record or sidecar in the cache could not be read\n",
                    count(catalog.unreadable, "clip")
                ));
            }
        }
        Err(error) => text.push_str(&format!("warning: {error}\n")),
    }
    text
}

/// `1 clip`, `2 clips`, for nouns whose plural is not the singular with an `s`
/// (`clip has gaps`, `clips have gaps`); regular ones use [`count`].
fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A count and its noun, plural unless one: `1 file`, `0 files`, `12 HTTP requests`.
pub fn count(n: impl std::fmt::Display, noun: &str) -> String {
    let n = n.to_string();
    if n == "1" {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The end-of-run summary for people.
pub fn summary_text(summary: &crate::exec::RunSummary, record: Option<&std::path::Path>) -> String {
    let mut out = String::new();
    let stats = &summary.stats;
    let _ = writeln!(
        out,
        "{}: {} downloaded, {} failed; {} from the cache; {} downloaded ({}), {} from the cache; {}, {} resumed; {}; {:.1} s",
        count(stats.runs_total, "ONC request"),
        stats.runs_downloaded,
        stats.runs_errors,
        count(stats.nodes_cached, "node"),
        count(stats.files_downloaded, "file"),
        estimate::bytes_text(stats.bytes_downloaded),
        count(stats.files_cached, "file"),
        count(stats.requests_submitted, "submission"),
        stats.runs_reattached,
        count(summary.http_requests, "HTTP request"),
        summary.wall_seconds,
    );
    if stats.clips_written + stats.clips_cached + stats.clips_skipped > 0 {
        let _ = writeln!(
            out,
            "clips: {} cut, {} already cut, {} skipped at gaps",
            stats.clips_written, stats.clips_cached, stats.clips_skipped
        );
    }
    for failure in &summary.failures {
        let _ = writeln!(
            out,
            "failed: {} {}: {}",
            failure.kind, failure.what, failure.reason
        );
    }
    if summary.interrupted {
        let by = summary
            .interrupted_by
            .map(|signal| format!(" by {}", signal.name()))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "interrupted{by}: run the same command again to resume (in-flight ONC runs are picked up from the journal, not submitted again)"
        );
    }
    if let Some(path) = record {
        let _ = writeln!(out, "run record: {}", path.display());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resume_line_quotes_only_what_a_shell_would_split() {
        let args = [
            "onc-pipe",
            "run",
            "my survey.toml",
            "--cache-dir",
            "/scratch/it's",
            "-q",
        ];
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        assert_eq!(
            resume_line(&args),
            "to resume: onc-pipe run 'my survey.toml' --cache-dir '/scratch/it'\\''s' -q"
        );
    }

    #[test]
    fn the_stopping_notice_names_the_signal_and_how_to_quit() {
        use crate::interrupt::Interrupt;
        assert!(stopping_text(Interrupt::Int).contains("SIGINT: stopping"));
        assert!(stopping_text(Interrupt::Int).contains("(Ctrl-C again to quit now)"));
        assert!(stopping_text(Interrupt::Term).contains("(send it again, or Ctrl-C, to quit now)"));
    }

    /// Every state and reason in the words `plan` and `status` print (their goldens show them in
    /// context; this pins the ones a test run does not reach, such as damaged caches).
    #[test]
    fn every_state_has_its_words() {
        let table = [
            (NodeState::Planned, "planned", "computed from the manifest"),
            (
                NodeState::Cached(FreshReason::AllFilesCached),
                "cached",
                "all files in the cache",
            ),
            (
                NodeState::Cached(FreshReason::RequestCached),
                "cached",
                "its request is cached",
            ),
            (
                NodeState::Cached(FreshReason::AlreadyCut),
                "cached",
                "already cut",
            ),
            (
                NodeState::InFlight(InFlight::Submitted {
                    dp_request_id: 7,
                    dp_run_id: None,
                }),
                "in flight",
                "submitted by an earlier run; the next run re-attaches",
            ),
            (
                NodeState::InFlight(InFlight::RequestInFlight),
                "in flight",
                "its request is in flight",
            ),
            (
                NodeState::ToRun(DirtyReason::NoCache),
                "to run",
                "new (no cache yet)",
            ),
            (NodeState::ToRun(DirtyReason::New), "to run", "new"),
            (
                NodeState::ToRun(DirtyReason::CacheUnreadable),
                "to run",
                "new (cache unreadable)",
            ),
            (
                NodeState::ToRun(DirtyReason::OutputDamaged("x.mat".into())),
                "to run",
                "output missing or corrupted: x.mat",
            ),
            (
                NodeState::ToRun(DirtyReason::PartlyCached {
                    missing_seconds: 90,
                }),
                "to run",
                "partly cached: 90 s of the window not fetched yet",
            ),
            (
                NodeState::ToRun(DirtyReason::RequestMustRun),
                "to run",
                "its request must run",
            ),
            (
                NodeState::ToRun(DirtyReason::NewClip),
                "to run",
                "new (a new window, padding or format)",
            ),
        ];
        for (state, word, reason) in table {
            assert_eq!(state_word(&state), word, "{state:?}");
            assert_eq!(reason_text(&state), reason, "{state:?}");
        }
        let submitted = NodeState::InFlight(InFlight::Submitted {
            dp_request_id: 7,
            dp_run_id: Some(9),
        });
        assert_eq!(submitted.onc_ids(), (Some(7), Some(9)));
        assert_eq!(NodeState::Planned.onc_ids(), (None, None));
    }
}
