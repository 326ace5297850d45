//! The manifest's types, mirroring the TOML file one to one.
//!
//! Input: a TOML document (see `load.rs`). Output: a [`Manifest`] whose values are still as the
//! user wrote them (duration strings, TOML date-times, option values); `plan/` checks and resolves
//! them. The doc comments here become the descriptions of `schemas/manifest.schema.json`.
//!
//! Unknown keys are rejected (the schema says `additionalProperties: false`), but not through
//! serde's `deny_unknown_fields`: that stops at the first key, while `load.rs` reports them all.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// An onc-pipe manifest: plan stages resolve to time windows, fetch stages order ONC data
/// products or archived files for them, clip stages cut the fetched files to each window.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields, title = "onc-pipe manifest")]
pub struct Manifest {
    /// Manifest format version. Must be 1.
    pub version: u32,
    /// How to talk to ONC: server, politeness and limits. All optional.
    #[serde(default)]
    pub onc: OncSettings,
    /// Where outputs and the cache go. All optional.
    #[serde(default)]
    pub output: OutputSettings,
    /// Plan stages, by name: each resolves to time windows on one device.
    #[serde(default)]
    pub plan: BTreeMap<String, PlanStage>,
    /// Fetch stages, by name: each orders an ONC data product or archived files for its plans.
    #[serde(default)]
    pub fetch: BTreeMap<String, FetchStage>,
    /// Clip stages, by name: each cuts fetched files to its plan's windows plus padding.
    #[serde(default)]
    pub clip: BTreeMap<String, ClipStage>,
}

/// Connection, politeness and limit settings for ONC.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct OncSettings {
    /// ONC base URL (default `https://data.oceannetworks.ca/`), or `simulator` for the built-in
    /// ONC simulator. Overridden by `--base-url` and `ONC_BASE_URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Minimum gap between two submissions (default `3s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stagger: Option<DurationText>,
    /// Upper bound between two polls of one run (default `30s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval: Option<DurationText>,
    /// Longest wait for one run before its node fails; a later `run` resumes it (default `45m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_wait: Option<DurationText>,
    /// ONC runs in flight at once (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_runs: Option<u32>,
    /// Files downloading at once (default 4; ONC asks tools for about 3-4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub download_workers: Option<u32>,
    /// Attempts per HTTP call for transient errors (5xx, 429, resets, timeouts): each call's
    /// retry budget, not the node's (default 6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_attempts: Option<u32>,
    /// Timeout of one HTTP request (default `60s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationText>,
    /// Settings of the built-in simulator, used when `base_url = "simulator"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulator: Option<SimulatorSettings>,
}

/// The built-in ONC simulator started in-process for `base_url = "simulator"`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SimulatorSettings {
    /// Real seconds per simulated second (default 0.05: a 35 s ONC job takes 1.75 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_scale: Option<f64>,
    /// Audio sample rate of the simulated hydrophones in Hz (default 64000, as icListen HF).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub sample_rate: Option<u32>,
    /// Runs processed at once per token (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub capacity: Option<u32>,
    /// Processing seconds per on-demand file (default 2.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_file_seconds: Option<f64>,
    /// Faults to inject, e.g. `"5xx=0.1,reset=0.05,failed-run=0.1,seed=7"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<String>,
}

/// Output locations.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct OutputSettings {
    /// Human-readable output tree, relative to the manifest's folder (default `data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// Content-addressed store, journal and lock, relative to the manifest's folder
    /// (default `.onc-pipe`); or a team cache shared by people and machines:
    /// `s3://BUCKET/PREFIX` (S3 or an S3-compatible store, credentials from the AWS variables
    /// and profile files) or `file:///FOLDER` (a shared file system).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
}

/// A plan stage: time windows on one device, or at one site (`location` + `device_category`:
/// the device deployed there at each moment). Give exactly one of `range`, `sample`, `windows`
/// or `requests`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PlanStage {
    /// ONC device code, e.g. `ICLISTENHF6324` (not used with `requests`, whose rows name theirs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// ONC location (site) code instead of `device`, e.g. `BACAX`: the windows are resolved
    /// through ONC's deployments to the device(s) deployed there at each moment (a window
    /// spanning a swap becomes one window per device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// ONC device category at `location` (default `HYDROPHONE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_category: Option<String>,
    /// Output folder tag under `DEVICE/` (default: the stage name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Every source file overlapping `[start, end)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<TimeRange>,
    /// `count` five-minute files spread evenly between `start` and `end`, `per_request` at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample: Option<Sample>,
    /// Explicit windows (`start` + `end` or `duration`) or instants (`timestamp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<Vec<WindowSpec>>,
    /// A request file in the seed tool's JSON or CSV format, relative to this manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<String>,
}

/// A time range `[start, end)`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct TimeRange {
    /// Start, a TOML offset date-time such as `2024-04-01T00:00:00Z`.
    pub start: TimeValue,
    /// End (exclusive), a TOML offset date-time.
    pub end: TimeValue,
}

/// Evenly spaced samples (the seed's "sampling between two dates").
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Sample {
    /// First possible instant.
    pub start: TimeValue,
    /// Last possible instant.
    pub end: TimeValue,
    /// Number of five-minute files wanted.
    #[schemars(range(min = 1))]
    pub count: u32,
    /// Five-minute files per ONC request (default 12): `ceil(count / per_request)` requests of
    /// `(per_request - 1) x 5 min`, spread evenly, the first at `start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub per_request: Option<u32>,
}

/// One explicit window: `start` with `end` or `duration`, or a `timestamp` alone.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct WindowSpec {
    /// Window start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<TimeValue>,
    /// Window end (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<TimeValue>,
    /// Window length, with `start` and no `end`, e.g. `"3m30s"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<DurationText>,
    /// An instant: the source file(s) containing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<TimeValue>,
    /// Free text carried into outputs and sidecars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Clip basename (sanitised: no path separators, no `..`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A fetch stage: an ONC data product (`product` + `extension`) or archived files (`archive`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct FetchStage {
    /// The plan stage(s) whose windows to fetch.
    pub plan: OneOrMany,
    /// ONC data product code: `HSD` (spectrograms) or `AD` (audio), or another ONC code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// Product file extension, exactly as ONC spells it (`mat`, `png`, `pdf`, `fft`, `wav`,
    /// `flac`, `mp3`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    /// Archived files to list and download instead of a product (no ONC job), by extension:
    /// `flac` or `wav` (audio), `mat` (ONC's pre-generated `-spect.mat` spectrograms, clipped
    /// like HSD `mat` products), `png` (pre-generated pictures, downloaded only), or any other
    /// extension ONC archives for the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    /// Five-minute source files per ONC request (default 12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub per_request: Option<u32>,
    /// ONC data product options (`dpo_*`), sent as given.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, OptionValue>,
}

/// A clip stage: cuts fetched files to each window of its plan, plus padding.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ClipStage {
    /// The plan stage whose windows are clipped.
    pub plan: String,
    /// The fetch stage(s) whose files are clipped; each must fetch `plan`.
    pub fetch: OneOrMany,
    /// Padding on both sides (default `0s`); `pad_before` / `pad_after` override it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad: Option<DurationText>,
    /// Padding before each window's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_before: Option<DurationText>,
    /// Padding after each window's end (kept even when the window has an end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_after: Option<DurationText>,
    /// Spectrogram clip format(s): `npz`, `mat` or `png` (a picture of the clipped data).
    /// Default `npz`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spectrogram: Option<OneOrMany>,
    /// Audio clip format: `flac` or `wav` (default `flac`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<String>,
    /// What to do where source files leave a gap: `fill` (NaN / silence, reported), `split`,
    /// `skip` or `fail` (default `fill`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gaps: Option<String>,
    /// Skip a clip whose padded window has data for less than this share of it, from 0 to 1
    /// (as ObsPy's `minimum_length`): `0.9` keeps clips at least 90 % covered. Default: keep
    /// every clip. A skipped clip is reported with its coverage, and stays skipped until its
    /// sources change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_coverage: Option<f64>,
}

/// One name or a list of names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OneOrMany(pub Vec<String>);

impl OneOrMany {
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor;
        impl<'de> Visitor<'de> for OneOrManyVisitor {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![value.to_owned()]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(OneOrMany(names))
            }
        }
        deserializer.deserialize_any(OneOrManyVisitor)
    }
}

impl Serialize for OneOrMany {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => serializer.serialize_str(one),
            many => many.serialize(serializer),
        }
    }
}

impl JsonSchema for OneOrMany {
    fn schema_name() -> Cow<'static, str> {
        "OneOrMany".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A name, or an array of names.",
            "anyOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" }, "minItems": 1 }
            ]
        })
    }
}

/// A duration as written, e.g. `"15s"`, `"5m"`, `"1h30m"`, `"250ms"`; checked by the planner so
/// every bad one is reported with its position.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct DurationText(pub String);

impl JsonSchema for DurationText {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A duration: one or more <number><unit> parts, units d, h, m, s, ms; e.g. \"15s\", \"1h30m\".",
            "type": "string",
            "pattern": "^([0-9]+(\\.[0-9]+)?(d|h|ms|m|s))+$"
        })
    }
}

/// A TOML date-time as written; the planner requires an offset (`Z` or `+hh:mm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeValue(pub toml::value::Datetime);

impl<'de> Deserialize<'de> for TimeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        toml::value::Datetime::deserialize(deserializer).map(TimeValue)
    }
}

impl Serialize for TimeValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl JsonSchema for TimeValue {
    fn schema_name() -> Cow<'static, str> {
        "DateTime".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A TOML offset date-time, e.g. 2024-04-01T00:00:00Z or 2024-04-01T00:00:00-07:00.",
            "type": "string",
            "format": "date-time"
        })
    }
}

/// A data product option value: ONC takes every value as a string, TOML lets users write
/// numbers and booleans naturally.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl OptionValue {
    /// The value as ONC's query string carries it.
    pub fn to_query_value(&self) -> String {
        match self {
            OptionValue::Text(text) => text.clone(),
            OptionValue::Integer(n) => n.to_string(),
            OptionValue::Float(x) => x.to_string(),
            OptionValue::Bool(b) => b.to_string(),
        }
    }
}

impl<'de> Deserialize<'de> for OptionValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OptionVisitor;
        impl Visitor<'_> for OptionVisitor {
            type Value = OptionValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<OptionValue, E> {
                Ok(OptionValue::Text(value.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, value: i64) -> Result<OptionValue, E> {
                Ok(OptionValue::Integer(value))
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<OptionValue, E> {
                i64::try_from(value)
                    .map(OptionValue::Integer)
                    .map_err(|_| E::custom("option value too large"))
            }
            fn visit_f64<E: de::Error>(self, value: f64) -> Result<OptionValue, E> {
                Ok(OptionValue::Float(value))
            }
            fn visit_bool<E: de::Error>(self, value: bool) -> Result<OptionValue, E> {
                Ok(OptionValue::Bool(value))
            }
        }
        deserializer.deserialize_any(OptionVisitor)
    }
}

impl Serialize for OptionValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            OptionValue::Text(text) => serializer.serialize_str(text),
            OptionValue::Integer(n) => serializer.serialize_i64(*n),
            OptionValue::Float(x) => serializer.serialize_f64(*x),
            OptionValue::Bool(b) => serializer.serialize_bool(*b),
        }
    }
}

impl JsonSchema for OptionValue {
    fn schema_name() -> Cow<'static, str> {
        "OptionValue".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An ONC data product option value (sent to ONC as a string).",
            "type": ["string", "integer", "number", "boolean"]
        })
    }
}

/// The manifest's JSON Schema, as committed in `schemas/manifest.schema.json`.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Manifest);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
