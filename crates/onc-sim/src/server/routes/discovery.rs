//! Discovery services: `deployments`, `locations`, `devices` and `dataProducts`.
//!
//! Input: `deviceCode`, `locationCode`, `deviceCategoryCode`, `dateFrom`/`dateTo`, or
//! `dataProductCode` and `extension` filters. Output: ONC's JSON lists describing the registry's
//! hydrophones, their deployments and locations, and the products and options onc-pipe knows.
//! Errors: ONC's 400/127 envelope naming `deviceCode` or `locationCode` for a code the registry
//! does not know (or a date that does not parse); 404 with `[]` when valid filters match nothing.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::oracle::device_seed;
use crate::registry;
use crate::server::protocol::{json_response, onc_error, sample_rate};
use crate::server::sources::onc_date;
use crate::server::state::Shared;
use onc_format::options;

/// ONC's numeric device id, as the MAT files' `Meta.deviceID` gives it.
pub(crate) fn device_id(code: &str) -> u64 {
    20_000 + device_seed(code) % 10_000
}

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
pub(crate) fn matching_deployments(
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

/// `devices`: the registry's devices with a deployment matching the filters (`deviceCode`,
/// `locationCode`, `deviceCategoryCode`, dates), each with its data rating: one sample per
/// `1 / sample_rate` s since its first deployment.
pub(crate) fn devices(shared: &Shared, params: &BTreeMap<String, String>) -> Response {
    let matching = match matching_deployments(params) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let rate = sample_rate(shared);
    let mut seen: Vec<&str> = Vec::new();
    let mut list = Vec::new();
    for d in matching {
        if seen.contains(&d.device) {
            continue;
        }
        seen.push(d.device);
        let first = registry::deployments_of_device(d.device)
            .map(|d| d.begin_ms)
            .min()
            .unwrap_or(d.begin_ms);
        list.push(json!({
            "deviceCode": d.device,
            "deviceId": device_id(d.device),
            "deviceName": format!("Ocean Sonics icListen HF Hydrophone {} (simulated)", d.device),
            "deviceLink": format!("https://data.oceannetworks.ca/DeviceListing?DeviceId={}", device_id(d.device)),
            "deviceCategoryCode": d.category,
            "hasDeviceData": true,
            "cvTerm": {"device": []},
            "dataRating": [{
                "dateFrom": onc_date(first), "dateTo": null,
                "samplePeriod": 1.0 / f64::from(rate.max(1)), "sampleSize": 3
            }]
        }));
    }
    if list.is_empty() {
        return (StatusCode::NOT_FOUND, axum::Json(json!([]))).into_response();
    }
    json_response(StatusCode::OK, Value::Array(list))
}

/// `dataProducts`: the products onc-pipe knows, filtered by `dataProductCode` and `extension`;
/// a `deviceCode` or `locationCode` filter must name a device or location the registry knows.
pub(crate) fn data_products(params: &BTreeMap<String, String>) -> Response {
    if let Err(response) = matching_deployments(params) {
        return response;
    }
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
    // ONC lists many more products than onc-pipe has option tables for; one stands for them,
    // so a client can learn codes it does not know (listed, not produced: requests for it are
    // refused as for any product the simulator does not make).
    for (code, name, extension) in OTHER_PRODUCTS {
        let wanted = params.get("dataProductCode").is_none_or(|w| w == code)
            && params.get("extension").is_none_or(|w| w == extension);
        if wanted {
            products.push(json!({
                "dataProductCode": code,
                "dataProductName": name,
                "extension": extension,
                "dataProductOptions": [],
            }));
        }
    }
    if products.is_empty() {
        return (StatusCode::NOT_FOUND, axum::Json(json!([]))).into_response();
    }
    json_response(StatusCode::OK, Value::Array(products))
}

/// Products ONC lists that onc-pipe has no option table for: (code, name, extension).
const OTHER_PRODUCTS: [(&str, &str, &str); 2] = [
    ("TSSD", "Time Series Scalar Data", "csv"),
    ("TSSD", "Time Series Scalar Data", "mat"),
];
