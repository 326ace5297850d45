//! Discovery services: `deployments`, `devices` and `dataProducts`.
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

pub(crate) fn deployments(params: &BTreeMap<String, String>) -> Response {
    let Some(device) = params
        .get("deviceCode")
        .filter(|d| looks_like_device_code(d))
    else {
        return onc_error(
            StatusCode::BAD_REQUEST,
            127,
            "No deployments found",
            "deviceCode",
        );
    };
    json_response(
        StatusCode::OK,
        json!([{
            "deviceCode": device, "locationCode": "SIMHYD", "deviceCategoryCode": "HYDROPHONE",
            "begin": "2020-01-01T00:00:00.000Z", "end": null,
            "lat": 48.65, "lon": -123.49, "depth": 23.0, "heading": null, "pitch": null, "roll": null,
            "hasDeviceData": true, "citation": null
        }]),
    )
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
