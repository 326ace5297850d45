//! The router: every request to the simulator comes through [`handle`].
//!
//! Input: the method, URI and query of a request. Output: the route's answer (its head alone for
//! HEAD), after accounting the request and injecting the faults the configuration asks for.
//! Errors: injected faults (5xx, 429), ONC's 401 for a missing (errorCode 128) or rejected (127)
//! token and its 404 envelope for an unknown service; each route answers its own bad requests.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::protocol::onc_error;
use super::routes::archive::{archive_download, archive_list};
use super::routes::availability::data_availability;
use super::routes::delivery::{
    product_cancel, product_download, product_request, product_restart, product_run, product_status,
};
use super::routes::discovery::{data_products, deployments, devices, locations};
use super::routes::sim::{oracle_audio, stats};
use super::state::Shared;
use crate::faults::Fault;

/// Every request comes here: account, inject faults, route; every answer says the time scale.
pub(crate) async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    query: Query<Vec<(String, String)>>,
) -> Response {
    let time_scale = shared
        .lock()
        .map(|inner| inner.config.time_scale)
        .unwrap_or(1.0);
    let mut response = route(shared, method, uri, query).await;
    if let Ok(value) = header::HeaderValue::from_str(&time_scale.to_string()) {
        // Real seconds per simulated second: a client on loopback may scale its own timers
        // (stagger, polls, backoff) by it, so that it paces itself as it would against ONC.
        response
            .headers_mut()
            .insert(onc_format::query::SIM_TIME_SCALE_HEADER, value);
    }
    response
}

async fn route(
    shared: Shared,
    method: Method,
    uri: Uri,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let params: BTreeMap<String, String> = pairs.into_iter().collect();
    let path = uri.path().trim_end_matches('/').to_owned();
    if path == "/_sim/stats" {
        return stats(&shared);
    }
    if path == "/_sim/oracle/audio" {
        return oracle_audio(&shared, &params);
    }
    let endpoint = endpoint_name(&path, params.get("method").map(String::as_str));
    let is_file = matches!(
        endpoint.as_str(),
        "dataProductDelivery/download" | "archivefile/download"
    );
    let (fault, slow_ms) = {
        let Ok(mut inner) = shared.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        inner.stats.requests_total += 1;
        *inner
            .stats
            .requests_by_endpoint
            .entry(endpoint.clone())
            .or_default() += 1;
        inner.counter += 1;
        let fault = inner.config.faults.decide(inner.counter, is_file);
        if fault != Fault::None {
            inner.stats.faults_injected += 1;
        }
        (fault, inner.config.faults.slow_ms)
    };
    if slow_ms > 0 {
        tokio::time::sleep(Duration::from_millis(slow_ms)).await;
    }
    match fault {
        Fault::ServerError(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, "simulated server error").into_response();
        }
        Fault::RateLimited => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                "slow down",
            )
                .into_response();
        }
        _ => {}
    }
    // Authentication, as ONC: the token is a query parameter on every call.
    // A missing or empty token is a missing parameter (128); one the simulator rejects (any
    // starting with `invalid`) an invalid value (127); both 401.
    match params.get("token").map(String::as_str) {
        None | Some("") => {
            return onc_error(
                StatusCode::UNAUTHORIZED,
                128,
                "Missing parameter: token",
                "token",
            );
        }
        Some(token) if token.starts_with("invalid") => {
            return onc_error(StatusCode::UNAUTHORIZED, 127, "Invalid token", "token");
        }
        Some(_) => {}
    }
    let head = method == Method::HEAD;
    let response = match endpoint.as_str() {
        "dataProductDelivery/request" => product_request(&shared, &params),
        "dataProductDelivery/run" => product_run(&shared, &params),
        "dataProductDelivery/status" => product_status(&shared, &params),
        "dataProductDelivery/cancel" => product_cancel(&shared, &params),
        "dataProductDelivery/restart" => product_restart(&shared, &params),
        "dataProductDelivery/download" => product_download(&shared, &params, fault, head).await,
        "archivefile/device" | "archivefile/location" => archive_list(&shared, &endpoint, &params),
        "archivefile/download" => archive_download(&shared, &params, fault, head).await,
        "deployments" => deployments(&params),
        "locations" => locations(&params),
        "devices" => devices(&shared, &params),
        "dataProducts" => data_products(&params),
        "dataAvailability/dataproducts" => data_availability(&shared, &params),
        _ => onc_error(
            StatusCode::NOT_FOUND,
            127,
            &format!("unknown service `{}`", uri.path()),
            "service",
        ),
    };
    if head {
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, Body::empty());
    }
    response
}

/// `/api/dataProductDelivery/run` or `/api/dataProductDelivery?method=run` → `dataProductDelivery/run`.
fn endpoint_name(path: &str, method: Option<&str>) -> String {
    let service = path.strip_prefix("/api/").unwrap_or(path).to_owned();
    match (service.as_str(), method) {
        ("dataProductDelivery", Some(method)) => format!("dataProductDelivery/{method}"),
        ("archivefiles" | "archivefile", Some("getListByDevice")) => "archivefile/device".into(),
        ("archivefiles" | "archivefile", Some("getListByLocation")) => {
            "archivefile/location".into()
        }
        ("archivefiles" | "archivefile", Some("getFile")) => "archivefile/download".into(),
        _ => service,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_names_cover_both_styles() {
        assert_eq!(
            endpoint_name("/api/dataProductDelivery/run", None),
            "dataProductDelivery/run"
        );
        assert_eq!(
            endpoint_name("/api/dataProductDelivery", Some("download")),
            "dataProductDelivery/download"
        );
        assert_eq!(
            endpoint_name("/api/archivefiles", Some("getListByDevice")),
            "archivefile/device"
        );
        assert_eq!(
            endpoint_name("/api/archivefiles", Some("getFile")),
            "archivefile/download"
        );
        assert_eq!(
            endpoint_name("/api/archivefile/download", None),
            "archivefile/download"
        );
    }
}
