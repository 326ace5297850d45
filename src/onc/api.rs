//! ONC's JSON, as types.
//!
//! Input: response bodies of the Oceans 3.0 API (`/work/shared/onc-api.md`).
//! Output: [`ProductRequest`], [`RunInfo`], [`ArchiveEntry`], [`DownloadStatus`] and the error
//! envelope [`ErrorEnvelope`] / [`OncErrorDetail`]; [`parse_processing_time`] for ONC's estimates.
//! Errors: `serde_json::Error` from parsing; the client turns them into `OncError::InvalidResponse`.
//!
//! Parsing is lenient where ONC is vague (a missing `messages`, a number sent as a string, a `null`
//! list), strict where the pipeline depends on a value (`dpRequestId`, `dpRunId`, `filename`).

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// The answer to `dataProductDelivery/request`: ONC validated the request and estimated it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductRequest {
    pub dp_request_id: u64,
    /// e.g. `"151 kB"`; absent for products served straight from the archive.
    #[serde(default, deserialize_with = "lenient_string")]
    pub estimated_file_size: Option<String>,
    /// e.g. `"20 s"`, `"2 min"`, `"1 hour"`; see [`parse_processing_time`].
    #[serde(default, deserialize_with = "lenient_string")]
    pub estimated_processing_time: Option<String>,
    /// Bytes, given instead of `estimatedFileSize` for archived products.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub file_size: Option<u64>,
    /// Warnings, e.g. a default used for a missing `dpo_` option.
    #[serde(default, deserialize_with = "lenient_strings")]
    pub messages: Vec<String>,
}

impl ProductRequest {
    /// ONC's processing-time estimate, when it gave one in a known form.
    pub fn processing_time(&self) -> Option<Duration> {
        self.estimated_processing_time
            .as_deref()
            .and_then(parse_processing_time)
    }
}

/// Parses ONC's `estimatedProcessingTime`: `"<number> <unit>"` with unit `s`, `min` or `hour`
/// (longer spellings and plurals such as `sec`, `seconds`, `minutes`, `hours`, `h` accepted; the
/// space is optional; decimals allowed). `None` for anything else, negative or absurdly large.
pub fn parse_processing_time(text: &str) -> Option<Duration> {
    parse_processing_estimate(text).map(|estimate| estimate.expected)
}

/// ONC's processing-time estimate, with how finely it is stated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessingEstimate {
    /// The figure ONC gave.
    pub expected: Duration,
    /// One unit of its last digit: `35 s` → 1 s, `6 min` → 60 s, `1.5 hour` → 6 min. ONC rounds
    /// its figure to this, so the run may end up to one resolution earlier.
    pub resolution: Duration,
}

impl ProcessingEstimate {
    /// The earliest the run plausibly ends: one resolution before the figure (at least half
    /// of it).
    pub fn earliest(&self) -> Duration {
        self.expected
            .saturating_sub(self.resolution)
            .max(self.expected / 2)
    }
}

/// Parses `estimatedProcessingTime` with its resolution (see [`parse_processing_time`]).
pub fn parse_processing_estimate(text: &str) -> Option<ProcessingEstimate> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let seconds_per_unit = match unit.trim().to_ascii_lowercase().as_str() {
        "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "min" | "mins" | "minute" | "minutes" | "m" => 60.0,
        "hour" | "hours" | "hr" | "hrs" | "h" => 3600.0,
        "day" | "days" | "d" => 86_400.0,
        _ => return None,
    };
    let decimals = number
        .split_once('.')
        .map_or(0, |(_, fraction)| fraction.len());
    let step = 10f64.powi(-i32::try_from(decimals.min(9)).unwrap_or(9));
    Some(ProcessingEstimate {
        expected: Duration::try_from_secs_f64(value * seconds_per_unit).ok()?,
        resolution: Duration::try_from_secs_f64(step * seconds_per_unit).ok()?,
    })
}

/// One run of a data-product request, from `run`, `cancel` or `restart`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunInfo {
    pub dp_run_id: u64,
    /// 0 until the run is complete (and absent from `cancel`/`restart` answers).
    #[serde(default, deserialize_with = "lenient_u32")]
    pub file_count: u32,
    /// `queued`, `data product running`, `complete`, `cancelled`, `error`, ...
    #[serde(default, deserialize_with = "lenient_status")]
    pub status: String,
}

/// One file of an archive listing (`returnOptions=all`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveEntry {
    pub filename: String,
    /// Start time of the file, ONC's date format.
    #[serde(default, deserialize_with = "lenient_string")]
    pub date_from: Option<String>,
    /// Every other field, as ONC sent it (sizes, dates, compression: UNCONFIRMED which).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ArchiveEntry {
    /// When the file starts, ms since 1970: ONC's `dateFrom`, else the stamp in its name.
    pub fn start_ms(&self) -> Option<i64> {
        self.date_from
            .as_deref()
            .and_then(onc_format::stamp::parse_onc_date)
            .or_else(|| onc_format::stamp::times_in_name(&self.filename).0)
    }

    /// When the file ends, ms since 1970, where ONC says (`dateTo` with `returnOptions=all`).
    pub fn end_ms(&self) -> Option<i64> {
        self.extra
            .get(onc_format::query::DATE_TO)
            .and_then(Value::as_str)
            .and_then(onc_format::stamp::parse_onc_date)
    }

    /// An entry known only by its name (listings without `returnOptions`).
    pub fn from_filename(filename: impl Into<String>) -> Self {
        ArchiveEntry {
            filename: filename.into(),
            date_from: None,
            extra: Map::new(),
        }
    }

    /// `fileSize` in bytes, if ONC sent it as a number.
    pub fn file_size(&self) -> Option<u64> {
        self.extra.get("fileSize").and_then(value_as_u64)
    }
}

/// The body of a 202 from `dataProductDelivery/download`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadStatus {
    #[serde(default, deserialize_with = "lenient_status")]
    pub status: String,
    #[serde(default, deserialize_with = "lenient_status")]
    pub message: String,
}

/// ONC's error envelope: `{"errors":[{"errorCode","errorMessage","parameter"}]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// `None` when the key is missing (a cancelled run's 400 has no `errors`).
    #[serde(default)]
    pub errors: Option<Vec<OncErrorDetail>>,
}

/// One entry of ONC's error envelope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OncErrorDetail {
    #[serde(default, deserialize_with = "lenient_i64")]
    pub error_code: i64,
    #[serde(default, deserialize_with = "lenient_status")]
    pub error_message: String,
    #[serde(default, deserialize_with = "lenient_status")]
    pub parameter: String,
}

/// ONC's error codes that the pipeline reacts to.
pub mod codes {
    /// `dateFrom` after `dateTo`.
    pub const DATE_ORDER: i64 = 23;
    /// `dateFrom` in the future.
    pub const DATE_IN_FUTURE: i64 = 25;
    /// Unknown archive filename.
    pub const UNKNOWN_FILENAME: i64 = 96;
    /// Invalid parameter value (unknown id, device, product; bad token; no deployment).
    pub const INVALID_VALUE: i64 = 127;
    /// Missing required parameter.
    pub const MISSING_PARAMETER: i64 = 128;
    /// Invalid parameter name.
    pub const INVALID_PARAMETER_NAME: i64 = 129;
}

/// Parses a JSON array of runs; a single run object is accepted as a one-element list.
pub fn parse_runs(value: Value) -> Result<Vec<RunInfo>, serde_json::Error> {
    match value {
        Value::Object(_) => Ok(vec![serde_json::from_value(value)?]),
        other => serde_json::from_value(other),
    }
}

/// Converts a JSON scalar to the string ONC expects back in a query (`next.parameters`).
pub fn query_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A success body as JSON; an empty (or all-whitespace) body is `null`, which ONC sends for
/// some answers with nothing to say.
pub fn parse_json_body(body: &[u8]) -> Result<Value, serde_json::Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body)
}

/// One archive listing page, `{"files": [...], "next": null | {"parameters": {...}}}` → its
/// entries (bare names or `returnOptions=all` objects) and the next page's query parameters
/// (a `token` among them dropped: the client adds its own). Errors: what is wrong with the page.
#[allow(clippy::type_complexity)]
pub fn parse_archive_page(
    page: Value,
) -> Result<(Vec<ArchiveEntry>, Option<Vec<(String, String)>>), String> {
    let Value::Object(mut page) = page else {
        return Err("expected a JSON object with `files`".into());
    };
    let files = match page.remove("files") {
        Some(Value::Array(files)) => files,
        Some(Value::Null) => Vec::new(),
        Some(_) => return Err("`files` is not a list".into()),
        None => return Err("no `files` in the listing".into()),
    };
    let entries = files
        .into_iter()
        .map(|file| match file {
            // Listings without `returnOptions=all` give bare names.
            Value::String(name) => Ok(ArchiveEntry::from_filename(name)),
            other => serde_json::from_value::<ArchiveEntry>(other)
                .map_err(|e| format!("bad file entry: {e}")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let next = match page.remove("next") {
        None | Some(Value::Null) => None,
        Some(Value::Object(mut next)) => match next.remove("parameters") {
            Some(Value::Object(parameters)) => Some(
                parameters
                    .iter()
                    .filter(|(k, _)| !k.eq_ignore_ascii_case(onc_format::query::TOKEN))
                    .map(|(k, v)| (k.clone(), query_value(v)))
                    .collect(),
            ),
            _ => return Err("`next` has no `parameters` object".into()),
        },
        Some(_) => return Err("`next` is neither null nor an object".into()),
    };
    Ok((entries, next))
}

/// The data product codes of ONC's `dataProducts` answer (each entry's `dataProductCode`);
/// entries without one, and an answer that is not a list, give none.
pub fn data_product_codes(answer: &Value) -> Vec<String> {
    answer
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|p| p.get("dataProductCode").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn value_as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f < 1.8e19)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A string, or a number/bool written as one; `null` and other shapes become `None`.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        v @ (Value::Number(_) | Value::Bool(_)) => Some(v.to_string()),
        _ => None,
    })
}

/// Like [`lenient_string`] but defaulting to the empty string.
fn lenient_status<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(lenient_string(d)?.unwrap_or_default())
}

fn lenient_strings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
        Value::String(s) => vec![s],
        _ => Vec::new(),
    })
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(value_as_u64(&Value::deserialize(d)?))
}

fn lenient_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    Ok(value_as_u64(&Value::deserialize(d)?)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0))
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => s.trim().parse().unwrap_or(0),
        _ => 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn product_request_from_recorded_output() {
        let body = json!({"dpRequestId": 28892274, "estimatedFileSize": "151 kB",
            "estimatedProcessingTime": "20 s", "messages": [],
            "citations": [{"citation": "c", "doi": "d", "landingPageUrl": "u", "queryPid": 1}],
            "disclaimer": "rough", "queryPids": [1], "queryURL": "q"});
        let parsed: ProductRequest = serde_json::from_value(body).unwrap();
        assert_eq!(parsed.dp_request_id, 28892274);
        assert_eq!(parsed.estimated_file_size.as_deref(), Some("151 kB"));
        assert_eq!(parsed.processing_time(), Some(Duration::from_secs(20)));
        assert_eq!(parsed.file_size, None);
        assert!(parsed.messages.is_empty());
    }

    #[test]
    fn product_request_from_archive_and_lenient_fields() {
        let body = json!({"dpRequestId": 7, "fileSize": "123456", "messages": null});
        let parsed: ProductRequest = serde_json::from_value(body).unwrap();
        assert_eq!(parsed.file_size, Some(123456));
        assert_eq!(parsed.estimated_processing_time, None);
        let body = json!({"dpRequestId": 7, "fileSize": 99, "messages": ["default used"]});
        let parsed: ProductRequest = serde_json::from_value(body).unwrap();
        assert_eq!(parsed.file_size, Some(99));
        assert_eq!(parsed.messages, vec!["default used".to_string()]);
        assert!(serde_json::from_value::<ProductRequest>(json!({"messages": []})).is_err());
    }

    #[test]
    fn processing_time_table() {
        let cases: &[(&str, Option<u64>)] = &[
            ("20 s", Some(20)),
            ("2 min", Some(120)),
            ("1 hour", Some(3600)),
            ("3 hours", Some(10_800)),
            ("45s", Some(45)),
            (" 5 minutes ", Some(300)),
            ("0 s", Some(0)),
            ("1.5 min", Some(90)),
            ("2 MIN", Some(120)),
            ("", None),
            ("s", None),
            ("20", None),
            ("20 fortnights", None),
            ("-3 s", None),
            ("1e400 s", None),
            ("99999999999999999999999 hour", None),
        ];
        for (text, secs) in cases {
            assert_eq!(
                parse_processing_time(text),
                secs.map(Duration::from_secs),
                "{text:?}"
            );
        }
    }

    /// The resolution is one unit of the figure's last digit; the earliest end is one
    /// resolution early, never below half the figure.
    #[test]
    fn estimates_carry_their_resolution() {
        let cases = [
            ("35 s", 35_000, 1_000, 34_000),
            ("6 min", 360_000, 60_000, 300_000),
            ("1.5 hour", 5_400_000, 360_000, 5_040_000),
            ("2 s", 2_000, 1_000, 1_000),
            ("1 s", 1_000, 1_000, 500),
        ];
        for (text, expected, resolution, earliest) in cases {
            let estimate = parse_processing_estimate(text).unwrap();
            assert_eq!(estimate.expected, Duration::from_millis(expected), "{text}");
            assert_eq!(
                estimate.resolution,
                Duration::from_millis(resolution),
                "{text}"
            );
            assert_eq!(
                estimate.earliest(),
                Duration::from_millis(earliest),
                "{text}"
            );
        }
        assert_eq!(parse_processing_estimate("soon"), None);
    }

    #[test]
    fn runs_parse_array_object_and_cancel_shape() {
        let runs =
            parse_runs(json!([{"dpRunId": 5, "fileCount": 3, "status": "complete"}])).unwrap();
        assert_eq!(
            runs,
            vec![RunInfo {
                dp_run_id: 5,
                file_count: 3,
                status: "complete".into()
            }]
        );
        let runs = parse_runs(json!({"dpRunId": 5, "status": "cancelled"})).unwrap();
        assert_eq!(runs[0].file_count, 0);
        assert_eq!(runs[0].status, "cancelled");
        assert!(parse_runs(json!([{"status": "queued"}])).is_err());
        assert!(parse_runs(json!("nope")).is_err());
    }

    #[test]
    fn archive_entry_keeps_other_fields() {
        let entry: ArchiveEntry = serde_json::from_value(json!({
            "filename": "ICLISTENHF1251_20210409T000000.000Z.flac",
            "dateFrom": "2021-04-09T00:00:00.000Z", "fileSize": 123, "compression": null}))
        .unwrap();
        assert_eq!(entry.date_from.as_deref(), Some("2021-04-09T00:00:00.000Z"));
        assert_eq!(entry.file_size(), Some(123));
        assert!(entry.extra.contains_key("compression"));
        assert!(!entry.extra.contains_key("filename"));
    }

    #[test]
    fn error_envelope_with_and_without_errors() {
        let env: ErrorEnvelope = serde_json::from_value(json!({"errors": [
            {"errorCode": 127, "errorMessage": "Invalid", "parameter": "dpRunId"}]}))
        .unwrap();
        let errors = env.errors.unwrap();
        assert_eq!(errors[0].error_code, codes::INVALID_VALUE);
        assert_eq!(errors[0].parameter, "dpRunId");
        let env: ErrorEnvelope = serde_json::from_value(json!({"message": "cancelled"})).unwrap();
        assert!(env.errors.is_none());
    }

    #[test]
    fn query_values_are_plain_strings() {
        assert_eq!(query_value(&json!("2020-01-01")), "2020-01-01");
        assert_eq!(query_value(&json!(5)), "5");
        assert_eq!(query_value(&json!(true)), "true");
        assert_eq!(query_value(&Value::Null), "");
    }
}
