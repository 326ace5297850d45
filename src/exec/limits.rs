//! Politeness limits (SPEC §7): the resource each protects holds its semaphore, and every job
//! takes its turn through them.
//!
//! Input: the plan's settings. Output: [`Limits`] — the submission stagger, download slots, the
//! poll interval and max wait (how many runs are at ONC at once is `admission`'s), one clip cutter per CPU, and the [`FirstAnswer`] gate
//! (the run's first ONC call goes alone). No errors.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::{Mutex, Semaphore};

/// Politeness limits, owned here and shared by every job so none can bypass them.
pub struct Limits {
    pub(super) stagger: Duration,
    pub(super) last_submit: Mutex<Option<Instant>>,
    pub(super) downloads: Semaphore,
    pub(super) poll_interval: Duration,
    pub(super) max_wait: Duration,
    /// Clip cutting (decoding, encoding): one blocking thread per CPU.
    pub(super) cpu: Semaphore,
    /// Until ONC has answered once with something other than a 401, one call at a time.
    pub(super) first_answer: FirstAnswer,
}

/// The gate in front of every ONC call of a run: closed until ONC has answered one call with
/// something other than 401, one call at a time while closed. A refused token (or ONC refusing
/// us altogether) is so found with one request, whatever `max_runs` and `download_workers`
/// allow, instead of one refused request per job; once open it costs one atomic load per call.
#[derive(Default)]
pub(super) struct FirstAnswer {
    open: AtomicBool,
    /// Held by the one call in flight while the gate is closed.
    pub(super) turn: Mutex<()>,
}

impl FirstAnswer {
    pub(super) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// ONC answered (or failed) with something other than a 401: calls go as the limits allow.
    pub(super) fn open(&self) {
        self.open.store(true, Ordering::Release);
    }
}

impl Limits {
    pub fn new(settings: &crate::plan::Settings) -> Self {
        let ms = |value: i64| Duration::from_millis(u64::try_from(value.max(0)).unwrap_or(0));
        Self {
            stagger: ms(settings.stagger_ms),
            last_submit: Mutex::new(None),
            downloads: Semaphore::new(
                usize::try_from(settings.download_workers.max(1)).unwrap_or(1),
            ),
            poll_interval: ms(settings.poll_interval_ms).max(Duration::from_millis(10)),
            max_wait: ms(settings.max_wait_ms),
            cpu: Semaphore::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            ),
            first_answer: FirstAnswer::default(),
        }
    }

    /// Waits until `stagger` (on the server's clock: times `scale`) has passed since the
    /// previous submission, then claims the moment.
    pub(super) async fn submit_turn(&self, scale: f64) {
        let mut last = self.last_submit.lock().await;
        if let Some(previous) = *last {
            let ready = previous + self.stagger.mul_f64(scale);
            let now = Instant::now();
            if ready > now {
                tokio::time::sleep(ready - now).await;
            }
        }
        *last = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Submissions from concurrent jobs are spaced by the stagger, in paused tokio time.
    #[tokio::test(start_paused = true)]
    async fn submissions_are_spaced_by_the_stagger() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("m.toml");
        std::fs::write(
            &manifest,
            "version = 1\n[onc]\nstagger = \"3s\"\n[plan.p]\ndevice = \"ICLISTENHF6324\"\n\
             range = { start = 2024-04-01T00:00:00Z, end = 2024-04-01T01:00:00Z }\n",
        )
        .unwrap();
        let compiled = crate::compile::compile(&manifest).unwrap();
        let limits = std::sync::Arc::new(Limits::new(&compiled.plan.settings));
        let start = Instant::now();
        let turns: Vec<_> = (0..4)
            .map(|_| {
                let limits = std::sync::Arc::clone(&limits);
                tokio::spawn(async move {
                    limits.submit_turn(1.0).await;
                    (Instant::now() - start).as_millis()
                })
            })
            .collect();
        let mut at = Vec::new();
        for turn in turns {
            at.push(turn.await.unwrap());
        }
        at.sort_unstable();
        assert_eq!(at, [0, 3_000, 6_000, 9_000]);
    }
}
