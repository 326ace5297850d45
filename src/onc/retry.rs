//! The retry policy, as a table.
//!
//! Input: an HTTP status or a `reqwest` error; an attempt number and a jitter seed.
//! Output: [`Transience`] (retry or not) and the [`Backoff`] delay before the next attempt.
//! Pure functions, no errors; the retry loop that uses them lives in `client.rs`.
//!
//! ONC documents no rate limiting and its official client retries nothing; third-party tools
//! retry 5xx. We retry what is plausibly temporary (5xx gateway/overload codes, 408, 429,
//! connection failures, timeouts, bodies cut short) and nothing else: a 4xx carries ONC's own
//! verdict on the request and must reach the user at once.

use std::time::Duration;

/// Whether a failure may go away if the same request is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transience {
    /// Worth another attempt after a backoff delay.
    Transient,
    /// Retrying would give the same answer.
    Permanent,
}

/// Classifies a response status. Success codes are `Permanent` (nothing to retry); callers only
/// ask about failures.
pub fn classify_status(status: u16) -> Transience {
    match status {
        408 | 429 | 500 | 502 | 503 | 504 => Transience::Transient,
        _ => Transience::Permanent,
    }
}

/// Classifies a transport-level error from `reqwest`.
///
/// Connect failures, timeouts, a connection closed before or while the response arrives, and a
/// body that cannot be read to the end (reset, truncated) are transient. Builder errors (a bad
/// URL) and redirect loops are permanent; a status error follows [`classify_status`].
pub fn classify_io(err: &reqwest::Error) -> Transience {
    if let Some(status) = err.status() {
        return classify_status(status.as_u16());
    }
    if err.is_builder() || err.is_redirect() {
        return Transience::Permanent;
    }
    if err.is_connect() || err.is_timeout() || err.is_body() || err.is_decode() || err.is_request()
    {
        return Transience::Transient;
    }
    Transience::Permanent
}

/// Exponential backoff with full jitter, capped.
///
/// The delay before attempt `n + 1` (after `n` failures) is uniform in `[0, min(max, base·2^(n-1))]`
/// ("full jitter": many clients failing together spread out instead of retrying in lockstep).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    max_attempts: u32,
}

impl Default for Backoff {
    /// 1 s doubling to at most 60 s, 5 attempts in all (about 15 s of waiting on average).
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
            max_attempts: 5,
        }
    }
}

impl Backoff {
    /// `max_attempts` counts every attempt including the first; 0 is treated as 1.
    /// A `max` below `base` caps every delay at `max`.
    pub fn new(base: Duration, max: Duration, max_attempts: u32) -> Self {
        Backoff {
            base,
            max,
            max_attempts: max_attempts.max(1),
        }
    }

    pub fn base(&self) -> Duration {
        self.base
    }

    pub fn max(&self) -> Duration {
        self.max
    }

    /// Attempts in all, including the first (at least 1).
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }

    /// The upper bound of the delay after failed attempt number `attempt` (1-based):
    /// `min(max, base·2^(attempt-1))`, saturating instead of overflowing.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(63);
        let factor = 1u64 << exponent;
        let nanos = self.base.as_nanos().saturating_mul(u128::from(factor));
        let max = self.max.as_nanos();
        let capped = nanos.min(max);
        // `capped <= max`, which came from a Duration, so it fits back into one.
        Duration::from_nanos(u64::try_from(capped).unwrap_or(u64::MAX))
    }

    /// The delay to wait after failed attempt number `attempt` (1-based) before the next one,
    /// drawn from `[0, ceiling(attempt)]` by a deterministic function of `jitter_seed`.
    pub fn delay(&self, attempt: u32, jitter_seed: u64) -> Duration {
        let ceiling = self.ceiling(attempt).as_nanos();
        // 53 random bits → a fraction in [0, 1]; the endpoints are both reachable in principle.
        let bits = splitmix64(jitter_seed ^ u64::from(attempt).rotate_left(32)) >> 11;
        let fraction = bits as f64 / ((1u64 << 53) - 1) as f64;
        let nanos = (ceiling as f64 * fraction).clamp(0.0, ceiling as f64);
        Duration::from_nanos(nanos as u64)
    }
}

/// SplitMix64: a tiny, well-mixed hash of the seed, so consecutive seeds give unrelated jitter.
/// Hand-written because the crate has no `rand` dependency and jitter needs no cryptography.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every status from 200 to 599, pinned: this is the policy.
    #[test]
    fn status_table_is_pinned() {
        let transient = [408u16, 429, 500, 502, 503, 504];
        for status in 200u16..=599 {
            let expected = if transient.contains(&status) {
                Transience::Transient
            } else {
                Transience::Permanent
            };
            assert_eq!(classify_status(status), expected, "status {status}");
        }
        // Spot checks that read as documentation.
        assert_eq!(classify_status(400), Transience::Permanent);
        assert_eq!(classify_status(401), Transience::Permanent);
        assert_eq!(classify_status(404), Transience::Permanent);
        assert_eq!(classify_status(410), Transience::Permanent);
        assert_eq!(classify_status(501), Transience::Permanent);
        assert_eq!(classify_status(505), Transience::Permanent);
    }

    #[test]
    fn backoff_ceiling_table() {
        let backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10), 8);
        let expected_ms = [500u64, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000];
        for (attempt, ms) in (1..=8).zip(expected_ms) {
            assert_eq!(
                backoff.ceiling(attempt),
                Duration::from_millis(ms),
                "attempt {attempt}"
            );
        }
        // Attempt 0 behaves like attempt 1; huge attempts saturate at the cap.
        assert_eq!(backoff.ceiling(0), Duration::from_millis(500));
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(10));
        let huge = Backoff::new(Duration::MAX, Duration::MAX, 3);
        assert_eq!(huge.ceiling(40).as_nanos(), u128::from(u64::MAX));
    }

    #[test]
    fn backoff_delays_stay_within_full_jitter_bounds() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2), 8);
        for attempt in 1..=8u32 {
            let ceiling = backoff.ceiling(attempt);
            assert!(ceiling <= Duration::from_secs(2));
            let mut min = Duration::MAX;
            let mut max = Duration::ZERO;
            for seed in 0..2000u64 {
                let d = backoff.delay(attempt, seed);
                assert!(
                    d <= ceiling,
                    "attempt {attempt} seed {seed}: {d:?} > {ceiling:?}"
                );
                min = min.min(d);
                max = max.max(d);
            }
            // Full jitter really spreads over the whole range.
            assert!(min < ceiling / 10, "attempt {attempt}: min {min:?}");
            assert!(max > ceiling * 9 / 10, "attempt {attempt}: max {max:?}");
        }
    }

    #[test]
    fn backoff_delay_is_deterministic_in_the_seed() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay(3, 42), backoff.delay(3, 42));
        assert_ne!(backoff.delay(3, 42), backoff.delay(3, 43));
        assert_eq!(backoff.max_attempts(), 5);
        assert_eq!(
            Backoff::new(Duration::ZERO, Duration::ZERO, 0).max_attempts(),
            1
        );
        assert_eq!(
            Backoff::new(Duration::ZERO, Duration::ZERO, 4).delay(2, 7),
            Duration::ZERO
        );
    }

    #[test]
    fn max_below_base_caps_everything() {
        let backoff = Backoff::new(Duration::from_secs(5), Duration::from_secs(1), 3);
        for attempt in 1..=8 {
            assert_eq!(backoff.ceiling(attempt), Duration::from_secs(1));
            assert!(backoff.delay(attempt, 9) <= Duration::from_secs(1));
        }
    }
}
