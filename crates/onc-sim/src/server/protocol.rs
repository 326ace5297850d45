//! ONC's error envelope and the parameter readers the routes share.
//!
//! Input: a route's query parameters (and the shared state, for the device profile). Output:
//! JSON answers, a checked `dateFrom`/`dateTo` range in milliseconds, a device's profile.
//! Errors: ONC's own, as a ready [`Response`]: the envelope `{"errors": [{errorCode,
//! errorMessage, parameter}]}` with the status and code ONC would give.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};

use super::state::Shared;
use crate::archive::DeviceProfile;
use onc_format::device::looks_like_device_code;

/// The ONC error envelope.
pub(crate) fn onc_error(status: StatusCode, code: u32, message: &str, parameter: &str) -> Response {
    let body =
        json!({"errors": [{"errorCode": code, "errorMessage": message, "parameter": parameter}]});
    (status, axum::Json(body)).into_response()
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

pub(crate) fn device_profile(shared: &Shared, code: &str) -> Option<DeviceProfile> {
    let sample_rate = shared.lock().map(|inner| inner.config.sample_rate).ok()?;
    looks_like_device_code(code).then(|| DeviceProfile {
        code: code.to_owned(),
        sample_rate,
    })
}
