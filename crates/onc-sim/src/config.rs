//! How the simulated ONC behaves: its sample rate, speed, capacity, costs and faults.
//!
//! Input: values from a manifest's `[onc.simulator]` or `onc-pipe simulate`'s flags. Output: a
//! [`SimConfig`]. Plain data, available without the server (the `server` feature), so a
//! product built without the simulator still reads and checks manifests that configure it.

use crate::faults::FaultConfig;

/// How the simulated ONC behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Audio sample rate of every simulated device (tests: 8000; ONC's icListen HF: 64000).
    pub sample_rate: u32,
    /// Simulated seconds per real second are `1 / time_scale`: 0.01 runs a 35 s job in 0.35 s.
    pub time_scale: f64,
    /// Runs processed at once per token; more queue.
    pub capacity: usize,
    /// Fixed cost of a data product run, seconds (before `time_scale`).
    pub run_overhead_s: f64,
    /// Cost per on-demand file (MAT downsample 0 or 2, PNG), seconds.
    pub on_demand_file_s: f64,
    /// Cost per pre-generated or archived file, seconds.
    pub archived_file_s: f64,
    /// How long results stay downloadable before 410, seconds (before `time_scale`).
    pub retention_s: f64,
    /// Seconds after a run completes during which its downloads still answer 202 "waiting on
    /// the file system to synchronize" (ONC's sequence shows such answers; how long they last
    /// is not documented, so 0 unless a test asks).
    pub sync_s: f64,
    /// Archive listing page size when the request gives no `rowLimit`.
    pub row_limit: usize,
    pub faults: FaultConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            sample_rate: 64_000,
            time_scale: 1.0,
            capacity: 8,
            run_overhead_s: 5.0,
            // The seed's ONC estimate: ~35 s for a 12-file plotRes request.
            on_demand_file_s: 2.5,
            archived_file_s: 0.2,
            retention_s: 7.0 * 86_400.0,
            sync_s: 0.0,
            row_limit: 500,
            faults: FaultConfig::default(),
        }
    }
}

/// Simulator settings as a user gives them, in a manifest's `[onc.simulator]` or as
/// `onc-pipe simulate` flags; each `None` keeps the configuration's value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimSettings {
    pub sample_rate: Option<u32>,
    pub time_scale: Option<f64>,
    pub capacity: Option<u64>,
    pub per_file_seconds: Option<f64>,
    pub faults: Option<String>,
}

/// A simulator setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingError {
    /// A number out of range; `problem` reads after the setting's name ("must be at least 1").
    OutOfRange {
        setting: &'static str,
        problem: &'static str,
    },
    /// The fault list does not parse (the parser's message).
    Faults(String),
}

impl SettingError {
    /// The setting's name as a manifest spells it (`time_scale`).
    pub fn setting(&self) -> &'static str {
        match self {
            SettingError::OutOfRange { setting, .. } => setting,
            SettingError::Faults(_) => "faults",
        }
    }
}

impl SimConfig {
    /// Applies `settings` over this configuration: the one place the simulator's settings are
    /// checked, for manifests and command lines alike. Every bad setting is returned (the others
    /// are applied), so a user sees all of them at once.
    pub fn apply(&mut self, settings: &SimSettings) -> Vec<SettingError> {
        let mut errors = Vec::new();
        let mut out_of_range = |setting, problem| {
            errors.push(SettingError::OutOfRange { setting, problem });
        };
        match settings.time_scale {
            Some(scale) if scale.is_finite() && scale > 0.0 => self.time_scale = scale,
            Some(_) => out_of_range("time_scale", "must be a positive number"),
            None => {}
        }
        match settings.sample_rate {
            Some(rate) if rate > 0 => self.sample_rate = rate,
            Some(_) => out_of_range("sample_rate", "must be at least 1"),
            None => {}
        }
        match settings.capacity.map(usize::try_from) {
            Some(Ok(capacity)) if capacity > 0 => self.capacity = capacity,
            Some(_) => out_of_range("capacity", "must be at least 1"),
            None => {}
        }
        match settings.per_file_seconds {
            Some(seconds) if seconds.is_finite() && seconds >= 0.0 => {
                self.on_demand_file_s = seconds;
            }
            Some(_) => out_of_range("per_file_seconds", "must be zero or more"),
            None => {}
        }
        if let Some(faults) = &settings.faults {
            match FaultConfig::parse(faults) {
                Ok(faults) => self.faults = faults,
                Err(message) => errors.push(SettingError::Faults(message)),
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_settings_apply_and_every_bad_one_is_named() {
        let mut config = SimConfig::default();
        let errors = config.apply(&SimSettings {
            sample_rate: Some(8_000),
            time_scale: Some(0.01),
            capacity: Some(16),
            per_file_seconds: Some(25.0),
            faults: Some("5xx=0.1,seed=3".into()),
        });
        assert_eq!(errors, []);
        assert_eq!(
            (config.sample_rate, config.time_scale, config.capacity),
            (8_000, 0.01, 16)
        );
        assert_eq!(config.on_demand_file_s, 25.0);
        assert_ne!(config.faults, FaultConfig::default());

        let before = config.clone();
        let errors = config.apply(&SimSettings {
            sample_rate: Some(0),
            time_scale: Some(f64::NAN),
            capacity: Some(0),
            per_file_seconds: Some(-1.0),
            faults: Some("5xx=2".into()),
        });
        let named: Vec<&str> = errors.iter().map(SettingError::setting).collect();
        assert_eq!(
            named,
            [
                "time_scale",
                "sample_rate",
                "capacity",
                "per_file_seconds",
                "faults"
            ]
        );
        assert_eq!(config, before, "nothing bad is applied");
        assert_eq!(config.apply(&SimSettings::default()), []);
    }
}
