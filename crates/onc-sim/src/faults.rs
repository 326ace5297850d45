//! Fault injection: a seeded, reproducible decision per request about what goes wrong.
//!
//! Input: [`FaultConfig`] rates (each a probability in `[0, 1]`) and a request counter. Output: a
//! [`Fault`] for that request. The same seed and the same request order give the same faults, so
//! a flaky-server test fails the same way every time.

/// What to break, and how often.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultConfig {
    /// HTTP 500/502/503 answers.
    pub server_error_rate: f64,
    /// HTTP 429 answers (ONC documents none, but proxies send them).
    pub rate_limit_rate: f64,
    /// File downloads whose connection is reset after a few bytes.
    pub reset_rate: f64,
    /// File downloads cut short (the body ends before Content-Length).
    pub truncate_rate: f64,
    /// Data product runs that end in failure (each attempt drawn afresh: a restart may succeed).
    pub failed_run_rate: f64,
    /// Completed runs whose files ONC has already removed (410 Gone), drawn once per run at its
    /// first file download.
    pub expiry_rate: f64,
    /// Extra latency added to every answer, in milliseconds.
    pub slow_ms: u64,
    /// File bodies are sent at most this many bytes per second (0: unthrottled), so a test can
    /// catch a client in the middle of a download.
    pub throttle_bytes_per_s: u64,
    /// Seed of the decisions.
    pub seed: u64,
}

impl FaultConfig {
    /// Parses `--faults` text: comma-separated `name=value` pairs, names `5xx`, `429`, `reset`,
    /// `truncate`, `failed-run`, `expire`, `slow-ms`, `throttle` (bytes per second), `seed`; e.g.
    /// `5xx=0.1,reset=0.05,seed=7`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut config = FaultConfig::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("invalid fault `{part}`: expected name=value"))?;
            let rate = || -> Result<f64, String> {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| {
                        format!(
                            "invalid rate `{value}` for `{name}`: expected a number from 0 to 1"
                        )
                    })
            };
            let whole = || -> Result<u64, String> {
                value.parse::<u64>().map_err(|_| {
                    format!("invalid value `{value}` for `{name}`: expected a whole number")
                })
            };
            match name {
                "5xx" => config.server_error_rate = rate()?,
                "429" => config.rate_limit_rate = rate()?,
                "reset" => config.reset_rate = rate()?,
                "truncate" => config.truncate_rate = rate()?,
                "failed-run" => config.failed_run_rate = rate()?,
                "expire" => config.expiry_rate = rate()?,
                "slow-ms" => config.slow_ms = whole()?,
                "throttle" => config.throttle_bytes_per_s = whole()?,
                "seed" => config.seed = whole()?,
                other => {
                    return Err(format!(
                        "unknown fault `{other}`: use 5xx, 429, reset, truncate, failed-run, expire, slow-ms, throttle or seed"
                    ));
                }
            }
        }
        Ok(config)
    }
}

/// What happens to one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    ServerError(u16),
    RateLimited,
    /// For file downloads: reset the connection after this many bytes.
    Reset,
    /// For file downloads: end the body early.
    Truncate,
}

/// A uniform number in `[0, 1)` from a seed and a counter (splitmix64: tiny, and its quality is
/// ample for picking faults; a crate would add nothing here).
pub fn unit(seed: u64, counter: u64, purpose: u64) -> f64 {
    let mut z = seed
        .wrapping_add(counter.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(purpose.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

impl FaultConfig {
    /// The fault for request number `counter`; `is_file` says whether it serves file bytes.
    pub fn decide(&self, counter: u64, is_file: bool) -> Fault {
        if unit(self.seed, counter, 1) < self.server_error_rate {
            let codes = [500, 502, 503];
            let pick = (unit(self.seed, counter, 2) * 3.0) as usize;
            return Fault::ServerError(codes.get(pick).copied().unwrap_or(500));
        }
        if unit(self.seed, counter, 3) < self.rate_limit_rate {
            return Fault::RateLimited;
        }
        if is_file && unit(self.seed, counter, 4) < self.reset_rate {
            return Fault::Reset;
        }
        if is_file && unit(self.seed, counter, 5) < self.truncate_rate {
            return Fault::Truncate;
        }
        Fault::None
    }

    /// Whether submission number `counter` makes a run that fails.
    pub fn run_fails(&self, counter: u64) -> bool {
        self.attempt_fails(counter, 0)
    }

    /// Whether attempt `attempt` (0: the first run, then each restart) of submission number
    /// `counter` fails: drawn afresh per attempt, so a restarted run may succeed.
    pub fn attempt_fails(&self, counter: u64, attempt: u64) -> bool {
        let draw = counter.wrapping_add(attempt.wrapping_mul(0x1_0000_0000));
        unit(self.seed, draw, 6) < self.failed_run_rate
    }

    /// Whether a completed run's files are reported expired (410) before their retention ends:
    /// drawn per download answer.
    pub fn expires(&self, counter: u64) -> bool {
        unit(self.seed, counter, 7) < self.expiry_rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_every_fault() {
        let config = FaultConfig::parse(
            "5xx=0.1, 429=0.2,reset=0.3,truncate=0.4,failed-run=0.5,expire=0.6,slow-ms=20,throttle=4096,seed=7",
        )
        .unwrap();
        assert_eq!(
            config,
            FaultConfig {
                server_error_rate: 0.1,
                rate_limit_rate: 0.2,
                reset_rate: 0.3,
                truncate_rate: 0.4,
                failed_run_rate: 0.5,
                expiry_rate: 0.6,
                slow_ms: 20,
                throttle_bytes_per_s: 4096,
                seed: 7
            }
        );
        assert!(
            FaultConfig::parse("5xx=2")
                .unwrap_err()
                .contains("from 0 to 1")
        );
        assert!(
            FaultConfig::parse("boom=1")
                .unwrap_err()
                .contains("unknown fault")
        );
    }

    #[test]
    fn decisions_are_reproducible_and_near_their_rates() {
        let config = FaultConfig {
            server_error_rate: 0.1,
            seed: 42,
            ..FaultConfig::default()
        };
        let errors = (0..10_000)
            .filter(|&i| config.decide(i, false) != Fault::None)
            .count();
        assert!((800..1200).contains(&errors), "{errors}");
        let again = (0..10_000)
            .filter(|&i| config.decide(i, false) != Fault::None)
            .count();
        assert_eq!(errors, again);
        assert_eq!(FaultConfig::default().decide(3, true), Fault::None);
    }
}
