//! `status`: what is cached, in flight and still to run, the clips, and the outputs the
//! manifest no longer produces — read from the cache and the output tree, without contacting
//! ONC.
//!
//! Input: the compiled manifest, its nodes' states, the clips' status and the stale outputs.
//! Output: text for people, or one JSON object (`--json`). No errors.

use std::fmt::Write as _;

use super::{NodeStates, onc_rows, reason_text, state_word};
use crate::compile::Compiled;
use crate::dag::describe;
use crate::exec::outputs::StaleOutputs;
use crate::exec::states::ClipStatus;

/// How many stale files the text lists before it says "and N more".
const STALE_SHOWN: usize = 20;

/// `status`: a count line and one line per ONC node (state, ONC ids, reason); the clips'
/// counts, with each failed one; the outputs the manifest no longer produces.
pub fn status_text(
    compiled: &Compiled,
    states: &NodeStates,
    clips: &ClipStatus,
    stale: &StaleOutputs,
) -> String {
    let rows = onc_rows(compiled, states);
    let count = |word: &str| {
        rows.iter()
            .filter(|(_, state)| state_word(state) == word)
            .count()
    };
    let mut text = format!(
        "{}: {} ONC nodes: {} cached, {} in flight, {} to run\n",
        compiled.loaded.file,
        rows.len(),
        count("cached"),
        count("in flight"),
        count("to run")
    );
    for (node, state) in &rows {
        let ids = match state.onc_ids() {
            (Some(request), Some(run)) => format!(" [dpRequestId {request}, dpRunId {run}]"),
            (Some(request), None) => format!(" [dpRequestId {request}]"),
            _ => String::new(),
        };
        let _ = writeln!(
            text,
            "  {:<9} {} {}{ids} ({})",
            state_word(state),
            node.key.short(),
            describe(node),
            reason_text(state)
        );
    }
    if clips.total > 0 {
        let _ = writeln!(
            text,
            "clips: {}: {} cut, {} to cut ({} failed at the last run), {} skipped at gaps",
            clips.total, clips.cut, clips.to_cut, clips.failed, clips.skipped
        );
        for failure in &clips.failures {
            let _ = writeln!(
                text,
                "  failed    {} {}: {}",
                failure.node.get(..12).unwrap_or(&failure.node),
                failure.what,
                failure.reason
            );
        }
    }
    if !stale.files.is_empty() {
        let _ = writeln!(
            text,
            "stale outputs: {} {} ({}) the manifest no longer produces; `onc-pipe clean {}` lists them, `--apply` removes them",
            stale.files.len(),
            if stale.files.len() == 1 {
                "file"
            } else {
                "files"
            },
            super::estimate::bytes_text(stale.bytes),
            compiled.loaded.file
        );
        for file in stale.files.iter().take(STALE_SHOWN) {
            let _ = writeln!(text, "  stale     {}", file.display());
        }
        if stale.files.len() > STALE_SHOWN {
            let _ = writeln!(text, "  … and {} more", stale.files.len() - STALE_SHOWN);
        }
    }
    text
}

/// `status --json`: `{"manifest", "nodes": [{key, kind, what, status}], "clips": {...},
/// "stale_outputs": {"files": [...], "bytes"}}`.
pub fn status_json(
    compiled: &Compiled,
    states: &NodeStates,
    clips: &ClipStatus,
    stale: &StaleOutputs,
) -> String {
    let nodes: Vec<serde_json::Value> = onc_rows(compiled, states)
        .iter()
        .map(|(node, state)| {
            let mut status = serde_json::json!({
                "state": state_word(state),
                "why": reason_text(state),
            });
            let (request, run) = state.onc_ids();
            if let Some(object) = status.as_object_mut() {
                if let Some(id) = request {
                    object.insert("dp_request_id".into(), id.into());
                }
                if let Some(id) = run {
                    object.insert("dp_run_id".into(), id.into());
                }
            }
            serde_json::json!({
                "key": node.key,
                "kind": node.kind,
                "what": describe(node),
                "status": status,
            })
        })
        .collect();
    let value = serde_json::json!({
        "manifest": compiled.loaded.file,
        "nodes": nodes,
        "clips": clips,
        "stale_outputs": {
            "files": stale.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "bytes": stale.bytes,
        },
    });
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}
