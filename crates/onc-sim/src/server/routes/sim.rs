//! The simulator's own routes under `/_sim/`, for tests: request accounting and the content
//! oracle.
//!
//! Input: the shared state; for the oracle, `filename` and `count`. Output: [`SimStats`] as JSON
//! (`/_sim/stats`, not itself counted), the samples an archive file must hold
//! (`/_sim/oracle/audio`). Errors: ONC's 96 envelope for a file the archive does not hold.
//!
//! [`SimStats`]: crate::server::state::SimStats

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::server::protocol::{device_profile, json_response, onc_error};
use crate::server::state::Shared;
use crate::{archive, oracle};
use onc_format::stamp::parse_archive_name;

/// `/_sim/stats`: a copy of the request accounting.
pub(crate) fn stats(shared: &Shared) -> Response {
    let stats = shared
        .lock()
        .map(|inner| inner.stats.clone())
        .unwrap_or_default();
    json_response(StatusCode::OK, json!(stats))
}

/// `/_sim/oracle/audio?filename=NAME&count=N`: the first N samples the archive file NAME must
/// hold, straight from the content oracle, for tests written in other languages.
pub(crate) fn oracle_audio(shared: &Shared, params: &BTreeMap<String, String>) -> Response {
    let file = params
        .get("filename")
        .and_then(|name| parse_archive_name(name).map(|parsed| (name, parsed)))
        .and_then(|(name, parsed)| {
            device_profile(shared, parsed.device)
                .and_then(|profile| archive::file_by_name(&profile, name))
        });
    let Some(file) = file else {
        return onc_error(StatusCode::BAD_REQUEST, 96, "File not found", "filename");
    };
    let count = params
        .get("count")
        .and_then(|c| c.parse::<u64>().ok())
        .unwrap_or(file.samples)
        .min(file.samples);
    let samples: Vec<i32> = (0..count)
        .map(|i| oracle::audio_sample(&file.device, file.sample_time_ns(i)))
        .collect();
    json_response(
        StatusCode::OK,
        json!({ "filename": file.filename("flac"), "sample_rate": file.sample_rate, "samples": samples }),
    )
}
