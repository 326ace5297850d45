//! How many data product runs to have at ONC at once: found from ONC's own answers instead of a
//! fixed guess.
//!
//! Input: the `max_runs` ceiling, and what jobs report — a run submitted, seen started (its
//! status is no longer `queued`), ended (complete, failed or given up) — plus the client's count
//! of 429/503 answers. Output: [`RunTicket`]s, each the permission for one run at ONC, and a wake
//! signal for the polls of queued runs. No errors (cancellation is the caller's: it drops the
//! wait).
//!
//! The rule, and what it sends to ONC:
//! - **Probe while ONC starts runs at once.** A new run is submitted only when every run of this
//!   process that ONC has seen is running: while one is `queued` (or not polled yet), no
//!   further submission. ONC's capacity for the token is so found one run at a time, and at most
//!   one of our runs waits in ONC's queue: when a slot frees, ONC starts that run itself, and the
//!   next submission follows as soon as its start is seen. Submissions keep the stagger.
//! - **Ceiling.** Never more than `max_runs` runs at once (queued or running), whatever ONC
//!   accepts.
//! - **Back off on 429/503.** When the client has received a 429 or 503 since the last decision,
//!   the window halves (at least 1, from the runs now in flight) and no run is submitted for a
//!   pause (10 s on the server's clock, doubling while throttling goes on, at most 5 minutes);
//!   each run ONC then starts at once widens the window by one again (additive increase,
//!   multiplicative decrease, as TCP).
//! - **Queued runs are polled when the queue moves**: when one of our runs ends (a slot is
//!   free at ONC), [`Admission::slot_freed`] wakes them; otherwise at the time our earliest
//!   running run is expected to end (see `product::PollSchedule`).

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The first pause after a 429/503, on the server's clock; it doubles while throttling goes on.
const THROTTLE_PAUSE: Duration = Duration::from_secs(10);
/// The longest pause after 429/503s.
const THROTTLE_PAUSE_MAX: Duration = Duration::from_secs(300);

/// The admission state shared by every product job of a run.
pub(super) struct Admission {
    ceiling: usize,
    state: Mutex<State>,
    /// Something changed that may let a waiting submission go.
    changed: Notify,
    /// One of our runs ended: ONC has a free slot, queued runs should look.
    freed: Notify,
}

#[derive(Debug)]
struct State {
    /// Additive-increase, multiplicative-decrease window; at most the ceiling.
    window: usize,
    /// Runs holding a ticket.
    in_flight: usize,
    /// Tickets whose run ONC has not yet been seen running.
    unstarted: usize,
    /// The client's 429/503 count when last looked at.
    throttled_seen: u64,
    /// No submission before this instant (after a 429/503).
    paused_until: Option<Instant>,
    /// The current pause length, doubling while throttling goes on.
    pause: Duration,
    /// When each running run is expected to end, by ticket number.
    expected_ends: Vec<(u64, Instant)>,
    next_ticket: u64,
}

/// What [`Admission::decide`] says about one more submission.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Go,
    Wait,
    /// Paused after throttling until then.
    PausedUntil(Instant),
}

impl Admission {
    pub(super) fn new(max_runs: usize) -> Self {
        let ceiling = max_runs.max(1);
        Admission {
            ceiling,
            state: Mutex::new(State {
                window: ceiling,
                in_flight: 0,
                unstarted: 0,
                throttled_seen: 0,
                paused_until: None,
                pause: Duration::ZERO,
                expected_ends: Vec::new(),
                next_ticket: 0,
            }),
            changed: Notify::new(),
            freed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until one more run may be submitted (see the module's rule), then takes a ticket.
    /// `throttled` is the client's 429/503 count; `scale` the server's time scale (pauses are
    /// on its clock).
    pub(super) async fn admit(&self, throttled: impl Fn() -> u64, scale: f64) -> RunTicket<'_> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let decision = self.decide(throttled(), scale, Instant::now());
            match decision {
                Decision::Go => return self.ticket(),
                Decision::Wait => changed.await,
                Decision::PausedUntil(until) => {
                    tokio::select! {
                        () = changed => {}
                        () = tokio::time::sleep_until(until) => {}
                    }
                }
            }
        }
    }

    /// A ticket for a run that is already at ONC (re-attached from the journal): it counts
    /// against the ceiling but does not wait for one.
    pub(super) fn attach(&self) -> RunTicket<'_> {
        self.ticket()
    }

    fn ticket(&self) -> RunTicket<'_> {
        let mut state = self.lock();
        state.in_flight += 1;
        state.unstarted += 1;
        let number = state.next_ticket;
        state.next_ticket += 1;
        drop(state);
        RunTicket {
            admission: self,
            number,
            started: false,
            ended: false,
        }
    }

    fn decide(&self, throttled: u64, scale: f64, now: Instant) -> Decision {
        let mut state = self.lock();
        if throttled > state.throttled_seen {
            state.throttled_seen = throttled;
            state.window = (state.in_flight / 2).max(1);
            state.pause = if state.pause.is_zero() {
                THROTTLE_PAUSE
            } else {
                (state.pause * 2).min(THROTTLE_PAUSE_MAX)
            };
            state.paused_until = Some(now + state.pause.mul_f64(scale));
        }
        if let Some(until) = state.paused_until {
            if now < until {
                return Decision::PausedUntil(until);
            }
            state.paused_until = None;
        }
        if state.unstarted == 0 && state.in_flight < state.window.min(self.ceiling) {
            Decision::Go
        } else {
            Decision::Wait
        }
    }

    /// Resolves when one of our runs ends (ONC has a free slot), for a queued run's poll.
    pub(super) fn slot_freed(&self) -> tokio::sync::futures::Notified<'_> {
        self.freed.notified()
    }

    /// The earliest expected end of our running runs, if any.
    pub(super) fn earliest_expected_end(&self) -> Option<Instant> {
        self.lock().expected_ends.iter().map(|(_, at)| *at).min()
    }

    /// The window now (for tests and the run record).
    #[cfg(test)]
    fn window(&self) -> usize {
        self.lock().window.min(self.ceiling)
    }
}

/// One run's permission to be at ONC. Report its start with [`RunTicket::started`]; dropping
/// it (the run completed, failed or was given up) frees its place.
pub(super) struct RunTicket<'a> {
    admission: &'a Admission,
    number: u64,
    started: bool,
    ended: bool,
}

impl RunTicket<'_> {
    /// ONC reports the run running (or done): it did not queue. `expected_end` is when it
    /// should end, for the polls of queued runs.
    pub(super) fn started(&mut self, expected_end: Option<Instant>) {
        let mut state = self.admission.lock();
        if !self.started {
            self.started = true;
            state.unstarted = state.unstarted.saturating_sub(1);
            // ONC took one more run at once: widen a window that throttling narrowed, and
            // forget the pause length.
            state.window = (state.window + 1).min(self.admission.ceiling);
            state.pause = Duration::ZERO;
        }
        state
            .expected_ends
            .retain(|(number, _)| *number != self.number);
        if let Some(at) = expected_end {
            state.expected_ends.push((self.number, at));
        }
        drop(state);
        self.admission.changed.notify_waiters();
    }

    /// ONC queued the run again (a restart queues): it counts as not started until seen
    /// running.
    pub(super) fn requeued(&mut self) {
        let mut state = self.admission.lock();
        if self.started {
            self.started = false;
            state.unstarted += 1;
        }
        state
            .expected_ends
            .retain(|(number, _)| *number != self.number);
    }

    /// Whether ONC has been seen running this run.
    pub(super) fn is_started(&self) -> bool {
        self.started
    }

    /// The run ended at ONC (complete or failed): its slot there is free. Downloads may go on
    /// without the ticket.
    pub(super) fn end(mut self) {
        self.release();
    }

    fn release(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        let mut state = self.admission.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        if !self.started {
            state.unstarted = state.unstarted.saturating_sub(1);
        }
        state
            .expected_ends
            .retain(|(number, _)| *number != self.number);
        drop(state);
        self.admission.changed.notify_waiters();
        self.admission.freed.notify_waiters();
    }
}

impl Drop for RunTicket<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(admission: &Admission, throttled: u64) -> bool {
        admission.decide(throttled, 1.0, Instant::now()) == Decision::Go
    }

    /// A new run waits while an earlier one is not seen running; ONC starting it lets the next
    /// one go; the ceiling holds whatever ONC starts.
    #[tokio::test(start_paused = true)]
    async fn submissions_follow_what_onc_starts() {
        let admission = Admission::new(3);
        let mut first = admission.admit(|| 0, 1.0).await;
        assert!(!go(&admission, 0), "the first run is not seen running yet");
        first.started(None);
        let mut second = admission.admit(|| 0, 1.0).await;
        second.started(None);
        let mut third = admission.admit(|| 0, 1.0).await;
        third.started(None);
        assert!(!go(&admission, 0), "the ceiling is 3");
        first.end();
        assert!(go(&admission, 0));
        // A queued run holds every further submission until it starts or ends.
        let mut fourth = admission.admit(|| 0, 1.0).await;
        assert!(!go(&admission, 0));
        drop(second);
        assert!(!go(&admission, 0), "still queued");
        fourth.started(None);
        assert!(go(&admission, 0));
    }

    /// A 429/503 halves the window and pauses submissions; runs started at once widen it again.
    #[tokio::test(start_paused = true)]
    async fn throttling_halves_the_window_and_pauses() {
        let admission = Admission::new(16);
        let mut tickets = Vec::new();
        for _ in 0..8 {
            let mut ticket = admission.admit(|| 0, 1.0).await;
            ticket.started(None);
            tickets.push(ticket);
        }
        let before = Instant::now();
        assert_eq!(
            admission.decide(1, 0.5, before),
            Decision::PausedUntil(before + Duration::from_secs(5))
        );
        assert_eq!(admission.window(), 4);
        // After the pause, 8 in flight against a window of 4: wait.
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(!go(&admission, 1));
        for ticket in tickets.drain(..5) {
            ticket.end();
        }
        assert!(go(&admission, 1));
        let mut next = admission.admit(|| 1, 1.0).await;
        next.started(None);
        assert_eq!(admission.window(), 5);
        // A second throttle while the first's pause length stands doubles nothing: the start
        // above reset it.
        let now = Instant::now();
        assert_eq!(
            admission.decide(2, 1.0, now),
            Decision::PausedUntil(now + THROTTLE_PAUSE)
        );
    }

    /// Ending a run wakes queued runs' polls.
    #[tokio::test]
    async fn ending_a_run_wakes_the_queue() {
        let admission = Admission::new(4);
        let ticket = admission.attach();
        let woken = admission.slot_freed();
        tokio::pin!(woken);
        woken.as_mut().enable();
        ticket.end();
        tokio::time::timeout(Duration::from_secs(1), woken)
            .await
            .unwrap();
    }
}
