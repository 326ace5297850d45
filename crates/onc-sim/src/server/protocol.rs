//! ONC's error envelope and the parameter readers the routes share.
//!
//! Input: a route's query parameters (and the shared state, for the device profile). Output:
//! JSON answers, the request's token, a checked `dateFrom`/`dateTo` range in milliseconds, a device's profile.
//! Errors: ONC's own, as a ready [`Response`]: the envelope `{"errors": [{errorCode,
//! errorMessage, parameter}]}` with the status and code ONC would give.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};

use super::state::Shared;
use crate::archive::DeviceProfile;
use crate::registry;

/// The ONC error envelope.
pub(crate) fn onc_error(status: StatusCode, code: u32, message: &str, parameter: &str) -> Response {
    let body =
        json!({"errors": [{"errorCode": code, "errorMessage": message, "parameter": parameter}]});
    (status, axum::Json(body)).into_response()
}

/// The request's token (the router already refused a missing one; empty if not).
pub(crate) fn token(params: &BTreeMap<String, String>) -> &str {
    params.get("token").map_or("", String::as_str)
}

pub(crate) fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Reads `dateFrom`/`dateTo` with ONC's errors: 128 missing, 127 invalid, 23 from after to.
pub(crate) fn date_range(params: &BTreeMap<String, String>) -> Result<(i64, i64), Response> {
    let read = |name: &str| -> Result<i64, Response> {
        let Some(text) = params.get(name) else {
            return Err(onc_error(
                StatusCode::BAD_REQUEST,
                128,
                &format!("Missing parameter: {name}"),
                name,
            ));
        };
        onc_format::stamp::parse_onc_date(text).ok_or_else(|| {
            onc_error(
                StatusCode::BAD_REQUEST,
                127,
                &format!("Invalid date: {text}"),
                name,
            )
        })
    };
    let from = read("dateFrom")?;
    let to = read("dateTo")?;
    if from > to {
        return Err(onc_error(
            StatusCode::BAD_REQUEST,
            23,
            "dateFrom is after dateTo",
            "dateFrom,dateTo",
        ));
    }
    if from > Utc::now().timestamp_millis() {
        return Err(onc_error(
            StatusCode::BAD_REQUEST,
            25,
            "dateFrom is in the future",
            "dateFrom",
        ));
    }
    Ok((from, to))
}

/// The configured sample rate of every simulated device.
pub(crate) fn sample_rate(shared: &Shared) -> u32 {
    shared
        .lock()
        .map(|inner| inner.config.sample_rate)
        .unwrap_or(64_000)
}

/// The profile of a device the registry knows (one that has been deployed somewhere); `None`
/// for any other code, however much it looks like one.
pub(crate) fn device_profile(shared: &Shared, code: &str) -> Option<DeviceProfile> {
    registry::is_known_device(code).then(|| DeviceProfile {
        code: code.to_owned(),
        sample_rate: sample_rate(shared),
    })
}

/// ONC's answer to a device or location code it does not know: 400, errorCode 127, naming the
/// parameter (`deviceCode` or `locationCode`).
pub(crate) fn unknown_code(parameter: &str, code: &str) -> Response {
    onc_error(
        StatusCode::BAD_REQUEST,
        127,
        &format!("Invalid {parameter}: {code}"),
        parameter,
    )
}

/// ONC's answer to a required parameter that is absent: 400, errorCode 128, naming it.
pub(crate) fn missing(parameter: &str) -> Response {
    onc_error(
        StatusCode::BAD_REQUEST,
        128,
        &format!("Missing parameter: {parameter}"),
        parameter,
    )
}
