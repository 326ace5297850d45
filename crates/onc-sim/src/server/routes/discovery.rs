//! Discovery services: `deployments`, `locations`, `devices` and `dataProducts`.
//!
//! Input: `deviceCode`, or `dataProductCode` and `extension` filters. Output: ONC's JSON lists
//! describing a simulated hydrophone, its deployment, and the products and options onc-pipe
//! knows. Errors: ONC's 400 envelope for no deployments; 404 with `[]` for no device or product.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::server::protocol::{json_response, onc_error};
use crate::server::state::Shared;
use onc_format::device::looks_like_device_code;
use onc_format::options;

use crate::registry;

pub(crate) fn deployments(params: &BTreeMap<String, String>) -> Response {
    let matching = match matching_deployments(params) {
        Ok(found) => found,
        Err(response) => return response,
    };
    if matching.is_empty() {
        // Valid filters, nothing matched: ONC's discovery services answer 404.
        return (StatusCode::NOT_FOUND, axum::Json(json!([]))).into_response();
    }
    let list: Vec<Value> = matching
        .iter()
        .map(|d| {
            let site = registry::location(d.location);
            json!({
                "deviceCode": d.device, "locationCode": d.location,
                "deviceCategoryCode": d.category,
                "begin": onc_date(d.begin_ms), "end": d.end_ms.map(onc_date),
                "lat": site.map(|l| l.lat), "lon": site.map(|l| l.lon),
                "depth": site.map(|l| l.depth),
                "heading": null, "pitch": null, "roll": null,
                "hasDeviceData": true, "citation": null
            })
        })
        .collect();
    json_response(StatusCode::OK, Value::Array(list))
}

/// `locations`: the sites, filtered by `locationCode`, `deviceCode`, `deviceCategoryCode` and a
/// `dateFrom`/`dateTo` overlap with their deployments.
pub(crate) fn locations(params: &BTreeMap<String, String>) -> Response {
    let matching = match matching_deployments(params) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let list: Vec<Value> = registry::LOCATIONS
        .iter()
        .filter(|l| matching.iter().any(|d| d.location == l.code))
        .map(|l| {
            json!({
                "locationCode": l.code, "locationName": l.name,
                "description": format!("{} (simulated)", l.name),
                "deployments": registry::deployments_at(l.code, None).count(),
                "lat": l.lat, "lon": l.lon, "depth": l.depth,
                "hasDeviceData": true, "hasPropertyData": false,
                "dataSearchURL": format!("https://data.oceannetworks.ca/DataSearch?location={}", l.code)
            })
        })
        .collect();
    if list.is_empty() {
        return (StatusCode::NOT_FOUND, axum::Json(json!([]))).into_response();
    }
    json_response(StatusCode::OK, Value::Array(list))
}

/// The deployments a discovery call's filters select: `deviceCode`, `locationCode`,
/// `deviceCategoryCode`, and `dateFrom`/`dateTo` (each optional; a deployment matches when it
/// overlaps the dates). An unknown device or location code, or a date that does not parse,
/// is ONC's 400 with errorCode 127 naming the parameter.
fn matching_deployments(
    params: &BTreeMap<String, String>,
) -> Result<Vec<&'static registry::Deployment>, Response> {
    let device = params.get("deviceCode");
    if let Some(code) = device.filter(|c| !registry::is_known_device(c)) {
        return Err(onc_error(
            StatusCode::BAD_REQUEST,
            127,
            &format!("Invalid deviceCode: {code}"),
            "deviceCode",
        ));
    }
    let location = params.get("locationCode");
    if let Some(code) = location.filter(|c| registry::location(c).is_none()) {
        return Err(onc_error(
            StatusCode::BAD_REQUEST,
            127,
            &format!("Invalid locationCode: {code}"),
            "locationCode",
        ));
    }
    let date = |name: &str| -> Result<Option<i64>, Response> {
        match params.get(name) {
            None => Ok(None),
            Some(text) => onc_format::stamp::parse_onc_date(text)
                .map(Some)
                .ok_or_else(|| {
                    onc_error(
                        StatusCode::BAD_REQUEST,
                        127,
                        &format!("Invalid date: {text}"),
                        name,
                    )
                }),
        }
    };
    let from = date("dateFrom")?.unwrap_or(i64::MIN);
    let to = date("dateTo")?.unwrap_or(i64::MAX);
    let category = params.get("deviceCategoryCode");
    Ok(registry::DEPLOYMENTS
        .iter()
        .filter(|d| device.is_none_or(|c| d.device == c))
        .filter(|d| location.is_none_or(|c| d.location == c))
        .filter(|d| category.is_none_or(|c| d.category == c))
        .filter(|d| d.begin_ms <= to && from < d.end_or_max())
        .collect())
}

/// ONC's date form in JSON answers: `2024-04-01T00:00:00.000Z`.
fn onc_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(onc_format::stamp::onc_date)
        .unwrap_or_default()
}

pub(crate) fn devices(shared: &Shared, params: &BTreeMap<String, String>) -> Response {
    let Some(device) = params
        .get("deviceCode")
        .filter(|d| looks_like_device_code(d))
    else {
        return (StatusCode::NOT_FOUND, axum::Json(json!([]))).into_response();
    };
    let rate = shared
        .lock()
        .map(|inner| inner.config.sample_rate)
        .unwrap_or(64_000);
    json_response(
        StatusCode::OK,
        json!([{
            "deviceCode": device, "deviceId": 23_000 + device.len(), "deviceName": format!("Simulated icListen HF {device}"),
            "deviceCategoryCode": "HYDROPHONE", "hasDeviceData": true,
            "dataRating": [{"dateFrom": "2020-01-01T00:00:00.000Z", "dateTo": null, "samplePeriod": 1.0 / f64::from(rate), "sampleSize": 3}]
        }]),
    )
}

pub(crate) fn data_products(params: &BTreeMap<String, String>) -> Response {
    let mut products = Vec::new();
    for code in options::KNOWN_PRODUCTS {
        if params
            .get("dataProductCode")
            .is_some_and(|wanted| wanted != code)
        {
            continue;
        }
        for extension in options::product_extensions(code).unwrap_or_default() {
            if params
                .get("extension")
                .is_some_and(|wanted| wanted != extension)
            {
                continue;
            }
            let options: Vec<Value> = options::product_options(code)
                .unwrap_or_default()
                .iter()
                .map(|(name, _)| json!({"option": name, "allowableValues": [], "allowableRange": null, "defaultValue": ""}))
                .collect();
            products.push(json!({
                "dataProductCode": code,
                "dataProductName": if *code == "HSD" { "Hydrophone Spectral Data" } else { "Audio Data" },
                "extension": extension,
                "dataProductOptions": options,
            }));
        }
    }
    if products.is_empty() {
        return (StatusCode::NOT_FOUND, axum::Json(json!([]))).into_response();
    }
    json_response(StatusCode::OK, Value::Array(products))
}
