//! One set of run statistics, counted from the executor's events in one place (nextest's
//! `RunStats` is the model): the progress bars, the summary line and the run record all read
//! these counters, so they cannot disagree.
//!
//! Input: what the run will touch (set once) and each [`Event`] as it is emitted. Output: a
//! [`RunStats`] snapshot that travels with every event in an [`Update`]. No errors.

use std::collections::HashSet;

use serde::Serialize;

use super::events::Event;
use crate::dag::NodeKind;

/// The run's counters after an event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunStats {
    /// ONC nodes (data product requests and archive listings) in the plan.
    pub onc_nodes: u64,
    /// Data product requests in the plan.
    pub runs_total: u64,
    /// Clip nodes in the plan.
    pub clips_total: u64,
    /// ONC nodes finished: from the cache, downloaded or failed.
    pub onc_finished: u64,
    /// ONC nodes submitted (or re-attached) and not finished: ONC is processing them.
    pub onc_in_flight: u64,
    /// Data product requests whose files this run downloaded.
    pub runs_downloaded: u64,
    /// Data product requests that failed.
    pub runs_errors: u64,
    /// ONC nodes satisfied entirely from the cache.
    pub nodes_cached: u64,
    /// Files the finished runs and listings will transfer.
    pub files_expected: u64,
    pub files_downloaded: u64,
    /// Files needed by this run that were already stored (no transfer).
    pub files_cached: u64,
    pub bytes_downloaded: u64,
    /// Data product submissions (re-attached runs are not submissions).
    pub requests_submitted: u64,
    /// Runs picked up from the journal of an interrupted run.
    pub runs_reattached: u64,
    /// Clip files cut (a split clip counts each piece).
    pub clips_written: u64,
    /// Clip nodes already cut from the same source files.
    pub clips_cached: u64,
    /// Clip nodes skipped at a gap (`gaps = "skip"`).
    pub clips_skipped: u64,
    pub clips_failed: u64,
    /// Clip nodes finished, whatever the outcome.
    pub clips_finished: u64,
}

/// An event and the statistics right after it: what the executor sends its reporter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Update {
    pub event: Event,
    pub stats: RunStats,
}

/// Keeps the statistics of a run: applies each event once, in the order they are sent.
#[derive(Debug, Default)]
pub struct StatsKeeper {
    stats: RunStats,
    /// Nodes in flight, so a node that finishes is taken out only if it was in.
    in_flight: HashSet<String>,
}

impl StatsKeeper {
    /// A keeper for a plan with these many ONC nodes, product requests and clips.
    pub fn new(onc_nodes: u64, runs_total: u64, clips_total: u64) -> Self {
        StatsKeeper {
            stats: RunStats {
                onc_nodes,
                runs_total,
                clips_total,
                ..RunStats::default()
            },
            in_flight: HashSet::new(),
        }
    }

    pub fn stats(&self) -> RunStats {
        self.stats
    }

    /// Counts `event`; the only place a run's numbers change.
    pub fn apply(&mut self, event: &Event) {
        let stats = &mut self.stats;
        match event {
            Event::Submitted { node, .. } => {
                stats.requests_submitted += 1;
                self.in_flight.insert(node.clone());
                stats.onc_in_flight = self.in_flight.len() as u64;
            }
            Event::Reattached { node, .. } => {
                stats.runs_reattached += 1;
                self.in_flight.insert(node.clone());
                stats.onc_in_flight = self.in_flight.len() as u64;
            }
            Event::RunComplete { files, .. } => stats.files_expected += u64::from(*files),
            Event::Listed { to_download, .. } => stats.files_expected += *to_download as u64,
            Event::Downloaded { bytes, .. } => {
                stats.files_downloaded += 1;
                stats.bytes_downloaded += bytes;
            }
            Event::FileReused { .. } => stats.files_cached += 1,
            Event::Cached { node, files, .. } => {
                stats.nodes_cached += 1;
                stats.files_cached += *files as u64;
                self.finish(node);
            }
            Event::Done { node, kind, .. } => {
                if *kind == NodeKind::ProductRequest {
                    self.stats.runs_downloaded += 1;
                }
                self.finish(node);
            }
            Event::Failed { node, kind, .. } => {
                if *kind == NodeKind::ProductRequest {
                    self.stats.runs_errors += 1;
                }
                self.finish(node);
            }
            Event::Clipped { pieces, .. } => {
                stats.clips_written += *pieces as u64;
                stats.clips_finished += 1;
            }
            Event::ClipCached { .. } => {
                stats.clips_cached += 1;
                stats.clips_finished += 1;
            }
            Event::ClipSkipped { .. } => {
                stats.clips_skipped += 1;
                stats.clips_finished += 1;
            }
            Event::ClipFailed { .. } => {
                stats.clips_failed += 1;
                stats.clips_finished += 1;
            }
            Event::Progress { .. } | Event::Warning { .. } => {}
        }
    }

    fn finish(&mut self, node: &str) {
        self.in_flight.remove(node);
        self.stats.onc_in_flight = self.in_flight.len() as u64;
        self.stats.onc_finished += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn what() -> String {
        "ICLISTENHF6324 product HSD.mat".into()
    }

    #[test]
    fn a_run_is_counted_through_its_states() {
        let mut keeper = StatsKeeper::new(3, 2, 2);
        keeper.apply(&Event::Cached {
            node: "a".into(),
            kind: NodeKind::ArchiveList,
            what: what(),
            files: 2,
        });
        keeper.apply(&Event::Submitted {
            node: "b".into(),
            what: what(),
            dp_request_id: 1,
            estimate: None,
        });
        keeper.apply(&Event::RunComplete {
            node: "b".into(),
            dp_run_id: 2,
            files: 3,
        });
        keeper.apply(&Event::Downloaded {
            node: "b".into(),
            file: "x.mat".into(),
            bytes: 10,
        });
        keeper.apply(&Event::FileReused {
            node: "b".into(),
            file: "y.mat".into(),
        });
        let stats = keeper.stats();
        assert_eq!((stats.onc_finished, stats.onc_in_flight), (1, 1));
        assert_eq!(
            (
                stats.files_expected,
                stats.files_downloaded,
                stats.files_cached
            ),
            (3, 1, 3)
        );
        keeper.apply(&Event::Done {
            node: "b".into(),
            kind: NodeKind::ProductRequest,
            what: what(),
            files: 3,
        });
        keeper.apply(&Event::Failed {
            node: "c".into(),
            kind: NodeKind::ProductRequest,
            what: what(),
            reason: "no".into(),
        });
        let stats = keeper.stats();
        assert_eq!((stats.onc_finished, stats.onc_in_flight), (3, 0));
        assert_eq!(
            (stats.runs_downloaded, stats.runs_errors, stats.nodes_cached),
            (1, 1, 1)
        );
        assert_eq!(stats.requests_submitted, 1);
    }

    #[test]
    fn failed_clips_count_as_clips_not_as_onc_nodes() {
        let mut keeper = StatsKeeper::new(1, 1, 2);
        for node in ["c1", "c2"] {
            keeper.apply(&Event::ClipFailed {
                node: node.into(),
                what: what(),
                reason: "its source files could not be fetched".into(),
            });
        }
        let stats = keeper.stats();
        assert_eq!((stats.onc_finished, stats.clips_finished), (0, 2));
        assert_eq!(stats.clips_failed, 2);
    }
}
