//! Settings resolution: `[onc]`, `[output]` and `[onc.simulator]` → [`Settings`], defaults
//! applied.
//!
//! Input: the manifest in the [`Checker`]. Output: the resolved [`Settings`] (base URL, pacing,
//! limits, folders, the in-process simulator's configuration). Errors: reported to the checker
//! at the setting: an invalid base URL, durations that do not parse or are not longer than zero,
//! counts of zero, empty folders, simulator settings out of range.

use std::path::PathBuf;

use super::check::{Checker, p};
use super::types::{DEFAULT_BASE_URL, Settings};

/// The cache folder when `output.cache` is not given, relative to the manifest's folder.
pub const DEFAULT_CACHE_DIR: &str = ".onc-pipe";

pub(super) fn resolve_settings(check: &mut Checker<'_>) -> Settings {
    let onc = &check.loaded.manifest.onc;
    let output = &check.loaded.manifest.output;
    let base_url = onc
        .base_url
        .clone()
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
    if base_url != "simulator"
        && !(base_url.starts_with("https://") || base_url.starts_with("http://"))
    {
        check
            .error_at(
                &p(&["onc", "base_url"]),
                format!("invalid base URL `{base_url}`"),
            )
            .help =
            Some("use an http(s) URL such as https://data.oceannetworks.ca/ or `simulator`".into());
    }
    let stagger = onc.stagger.clone();
    let poll = onc.poll_interval.clone();
    let max_wait = onc.max_wait.clone();
    let timeout = onc.timeout.clone();
    let (max_runs, workers, attempts) = (onc.max_runs, onc.download_workers, onc.max_attempts);
    let settings = Settings {
        base_url,
        stagger_ms: check.duration(&p(&["onc", "stagger"]), stagger.as_ref(), 3_000),
        poll_interval_ms: check.duration(&p(&["onc", "poll_interval"]), poll.as_ref(), 30_000),
        max_wait_ms: check.duration(&p(&["onc", "max_wait"]), max_wait.as_ref(), 45 * 60_000),
        max_runs: check.positive(&p(&["onc", "max_runs"]), max_runs, 16),
        download_workers: check.positive(&p(&["onc", "download_workers"]), workers, 4),
        max_attempts: check.positive(&p(&["onc", "max_attempts"]), attempts, 6),
        timeout_ms: check.duration(&p(&["onc", "timeout"]), timeout.as_ref(), 60_000),
        output_dir: PathBuf::from(output.dir.clone().unwrap_or_else(|| "data".into())),
        cache_dir: PathBuf::from(
            output
                .cache
                .clone()
                .unwrap_or_else(|| DEFAULT_CACHE_DIR.into()),
        ),
        simulator: onc_sim::SimConfig::default(),
    };
    let mut settings = settings;
    settings.simulator = resolve_simulator(check);
    for (key, value) in [
        ("poll_interval", settings.poll_interval_ms),
        ("max_wait", settings.max_wait_ms),
        ("timeout", settings.timeout_ms),
    ] {
        if value <= 0 {
            check.error_at(&p(&["onc", key]), "must be longer than zero");
        }
    }
    for (key, value) in [("dir", &output.dir), ("cache", &output.cache)] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            check.error_at(&p(&["output", key]), "must not be empty");
        }
    }
    if let Some(cache) = output.cache.as_deref().filter(|c| c.contains("://"))
        && let Err(error) = crate::cache::remote::RemoteUrl::parse(cache)
    {
        check.error_at(&p(&["output", "cache"]), error.to_string());
    }
    settings
}

/// The in-process simulator's settings; defaults make the demo quick (time scale 0.05).
fn resolve_simulator(check: &mut Checker<'_>) -> onc_sim::SimConfig {
    let mut config = onc_sim::SimConfig {
        time_scale: 0.05,
        ..onc_sim::SimConfig::default()
    };
    let Some(settings) = check.loaded.manifest.onc.simulator.clone() else {
        return config;
    };
    let errors = config.apply(&onc_sim::config::SimSettings {
        sample_rate: settings.sample_rate,
        time_scale: settings.time_scale,
        capacity: settings.capacity.map(u64::from),
        per_file_seconds: settings.per_file_seconds,
        faults: settings.faults,
    });
    for error in errors {
        let setting = error.setting();
        let message = match error {
            onc_sim::config::SettingError::OutOfRange { setting, problem } => {
                format!("`{setting}` {problem}")
            }
            onc_sim::config::SettingError::Faults(message) => message,
        };
        check.error_at(&p(&["onc", "simulator", setting]), message);
    }
    config
}
