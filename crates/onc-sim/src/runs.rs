//! The simulator's run model: submitted data product requests → runs that queue, process and
//! complete on a clock, per token, with limited capacity.
//!
//! Input: run submissions (work in simulated seconds), cancellations, restarts and "now" readings.
//! Output: each run's state at any instant: queued, running (with progress), complete, failed,
//! cancelled. Pure: no clock of its own (the server passes elapsed seconds), so tests drive it
//! with exact times.
//!
//! Scheduling is first-come first-served list scheduling per token: a run takes the slot that
//! frees first, starting when both it and the slot are ready. Slots are assigned at submission,
//! which makes every run's start and end known at once (ONC's estimates are rough anyway); a
//! cancellation frees its slot for later submissions but does not pull forward runs already
//! assigned.

use std::collections::HashMap;

/// Where a run is at one instant.
#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    Queued,
    /// `progress` in `[0, 1)`.
    Running {
        progress: f64,
    },
    Complete,
    Failed {
        message: String,
    },
    Cancelled,
}

#[derive(Debug, Clone)]
struct Run {
    token: String,
    slot: usize,
    start: f64,
    finish: f64,
    fails: bool,
    cancelled_at: Option<f64>,
}

/// All runs of one simulator, by run index.
#[derive(Debug, Clone)]
pub struct RunModel {
    capacity: usize,
    runs: Vec<Run>,
    /// Per token: when each of its slots is next free.
    slots: HashMap<String, Vec<f64>>,
}

impl RunModel {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            runs: Vec::new(),
            slots: HashMap::new(),
        }
    }

    /// Submits a run at `now` needing `work` seconds; returns its index.
    pub fn submit(&mut self, token: &str, now: f64, work: f64, fails: bool) -> usize {
        let (slot, start) = self.take_slot(token, now, work);
        self.runs.push(Run {
            token: token.to_owned(),
            slot,
            start,
            finish: start + work,
            fails,
            cancelled_at: None,
        });
        self.runs.len() - 1
    }

    fn take_slot(&mut self, token: &str, now: f64, work: f64) -> (usize, f64) {
        let slots = self
            .slots
            .entry(token.to_owned())
            .or_insert_with(|| vec![0.0; self.capacity]);
        let (slot, free_at) = slots
            .iter()
            .copied()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        let start = now.max(free_at);
        if let Some(entry) = slots.get_mut(slot) {
            *entry = start + work;
        }
        (slot, start)
    }

    /// The state of run `index` at `now`.
    pub fn state(&self, index: usize, now: f64) -> Option<RunState> {
        let run = self.runs.get(index)?;
        Some(if run.cancelled_at.is_some() {
            RunState::Cancelled
        } else if now < run.start {
            RunState::Queued
        } else if now < run.finish {
            let span = (run.finish - run.start).max(f64::EPSILON);
            RunState::Running {
                progress: ((now - run.start) / span).clamp(0.0, 0.999),
            }
        } else if run.fails {
            RunState::Failed {
                message: "data product generation failed: the search for data returned an error (simulated failure)".into(),
            }
        } else {
            RunState::Complete
        })
    }

    /// When run `index` completes (or completed), in model seconds.
    pub fn finish_time(&self, index: usize) -> Option<f64> {
        self.runs.get(index).map(|run| run.finish)
    }

    /// Cancels a run that has not finished; frees its slot for later submissions.
    pub fn cancel(&mut self, index: usize, now: f64) -> bool {
        let Some(run) = self.runs.get_mut(index) else {
            return false;
        };
        if run.cancelled_at.is_some() || now >= run.finish {
            return run.cancelled_at.is_some();
        }
        run.cancelled_at = Some(now);
        let (token, slot, finish) = (run.token.clone(), run.slot, run.finish);
        if let Some(free_at) = self.slots.get_mut(&token).and_then(|s| s.get_mut(slot))
            && *free_at == finish
        {
            *free_at = now;
        }
        true
    }

    /// Restarts a cancelled or failed run: it queues again from `now` with the same work;
    /// `fails` says whether this attempt fails too. A run queued, running or complete is left
    /// alone (`false`).
    pub fn restart(&mut self, index: usize, now: f64, fails: bool) -> bool {
        let Some(run) = self.runs.get(index) else {
            return false;
        };
        let failed = run.fails && run.cancelled_at.is_none() && now >= run.finish;
        if run.cancelled_at.is_none() && !failed {
            return false;
        }
        let (token, work) = (run.token.clone(), run.finish - run.start);
        let (slot, start) = self.take_slot(&token, now, work);
        if let Some(run) = self.runs.get_mut(index) {
            run.slot = slot;
            run.start = start;
            run.finish = start + work;
            run.cancelled_at = None;
            run.fails = fails;
        }
        true
    }

    /// Runs of a token that are queued or running at `now`.
    pub fn in_flight(&self, token: &str, now: f64) -> usize {
        self.runs
            .iter()
            .filter(|run| run.token == token && run.cancelled_at.is_none() && now < run.finish)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_beyond_capacity_queue_and_start_when_a_slot_frees() {
        let mut model = RunModel::new(2);
        let a = model.submit("t", 0.0, 10.0, false);
        let b = model.submit("t", 1.0, 10.0, false);
        let c = model.submit("t", 2.0, 10.0, false);
        assert_eq!(model.state(c, 5.0), Some(RunState::Queued));
        assert!(matches!(
            model.state(a, 5.0),
            Some(RunState::Running { .. })
        ));
        assert_eq!(model.state(a, 10.0), Some(RunState::Complete));
        // c takes a's slot when it frees at 10 s.
        assert!(matches!(
            model.state(c, 10.5),
            Some(RunState::Running { .. })
        ));
        assert_eq!(model.state(c, 20.0), Some(RunState::Complete));
        assert_eq!(model.state(b, 11.0), Some(RunState::Complete));
        // Another token has its own capacity.
        let d = model.submit("other", 2.0, 1.0, false);
        assert!(matches!(
            model.state(d, 2.5),
            Some(RunState::Running { .. })
        ));
    }

    #[test]
    fn cancel_and_restart_keep_the_run() {
        let mut model = RunModel::new(1);
        let a = model.submit("t", 0.0, 10.0, false);
        assert!(model.cancel(a, 3.0));
        assert_eq!(model.state(a, 4.0), Some(RunState::Cancelled));
        let b = model.submit("t", 4.0, 1.0, false);
        assert!(matches!(
            model.state(b, 4.5),
            Some(RunState::Running { .. })
        ));
        assert!(model.restart(a, 6.0, false));
        assert_eq!(model.state(a, 16.0), Some(RunState::Complete));
        assert!(matches!(
            model.state(a, 6.5),
            Some(RunState::Running { .. })
        ));
    }

    #[test]
    fn failing_runs_fail_at_their_end() {
        let mut model = RunModel::new(1);
        let a = model.submit("t", 0.0, 2.0, true);
        assert!(matches!(
            model.state(a, 1.0),
            Some(RunState::Running { .. })
        ));
        assert!(matches!(model.state(a, 2.0), Some(RunState::Failed { .. })));
        // A failed run restarts with the same work; a running or complete one does not.
        let b = model.submit("t", 2.0, 2.0, false);
        assert!(!model.restart(b, 3.0, false));
        assert!(model.restart(a, 3.0, false));
        // b holds the one slot until 4 s: a queues behind it.
        assert_eq!(model.state(a, 3.5), Some(RunState::Queued));
        assert_eq!(model.state(a, 6.0), Some(RunState::Complete));
        assert!(!model.restart(a, 7.0, false));
    }
}
