//! The simulator's HTTP server: ONC's web API on loopback, backed by the synthetic archive.
//!
//! Input: [`SimConfig`] and a bind address. Output: a running server ([`SimHandle`]) that answers
//! ONC's endpoints in path style (`/api/dataProductDelivery/run`) and legacy `?method=` style,
//! GET and HEAD, with ONC's error envelopes, plus `/_sim/stats` (request accounting for tests).
//! Errors: only binding the port can fail; every bad request gets the HTTP answer ONC would give.
//!
//! Protocol choices where ONC is silent (see `shared/onc-api.md`, "UNCONFIRMED"): a failed run
//! answers `run` with HTTP 200 and status `error` and `download` with 202 `{"status":"error"}`;
//! a valid token is any non-empty token not starting with `invalid`; archive listings page at
//! `rowLimit` (default 500) files with `next.parameters` carrying `dateFrom` past the last file.

// Helpers return `Err(Response)` to answer early with ONC's error; a Response is large, but
// boxing it on a loopback test server's error path would buy nothing.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::archive::{self, ArchiveFile, DeviceProfile};
use crate::config::SimConfig;
use crate::faults::Fault;
use crate::runs::{RunModel, RunState};
use crate::{flac, mat, oracle, picture};
use onc_format::device::looks_like_device_code;
use onc_format::options::{self, OptionProblem};
use onc_format::stamp::{compact_date, onc_date, parse_archive_name};

/// Request counts and volumes, for tests that prove politeness and caching.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct SimStats {
    /// Every HTTP request, stats excluded.
    pub requests_total: u64,
    /// Per endpoint, e.g. `dataProductDelivery/run`.
    pub requests_by_endpoint: BTreeMap<String, u64>,
    /// Successful data product `request` calls.
    pub submissions: u64,
    /// Submissions identical (device, window, product, options) to an earlier one.
    pub duplicate_submissions: u64,
    /// Runs started by a first `run` call.
    pub runs: u64,
    pub files_served: u64,
    pub bytes_served: u64,
    pub faults_injected: u64,
}

/// One file a run delivers.
#[derive(Debug, Clone)]
enum Output {
    Mat {
        file: ArchiveFile,
        downsample: u8,
        diversion: Option<String>,
    },
    Png {
        file: ArchiveFile,
    },
    Audio {
        file: ArchiveFile,
        extension: String,
    },
}

impl Output {
    fn filename(&self) -> String {
        match self {
            Output::Mat {
                file,
                downsample,
                diversion,
            } => mat::hsd_mat_filename(file, *downsample, diversion.as_deref()),
            Output::Png { file } => picture::hsd_png_filename(file),
            Output::Audio { file, extension } => audio_product_filename(file, extension),
        }
    }
}

/// Audio data product name: start and end, as ONC names AD files.
fn audio_product_filename(file: &ArchiveFile, extension: &str) -> String {
    let start = DateTime::from_timestamp_millis(file.start_ms).unwrap_or_default();
    let end = DateTime::from_timestamp_millis(file.end_ms()).unwrap_or_default();
    format!(
        "{}_{}_{}.{extension}",
        file.device,
        compact_date(start),
        compact_date(end)
    )
}

#[derive(Debug, Clone)]
struct RequestRecord {
    token: String,
    outputs: Vec<Output>,
    run_id: Option<u64>,
    run_index: Option<usize>,
    fails: bool,
    work_s: f64,
}

struct Inner {
    config: SimConfig,
    started: Instant,
    next_request_id: u64,
    next_run_id: u64,
    requests: HashMap<u64, RequestRecord>,
    run_to_request: HashMap<u64, u64>,
    seen_submissions: HashMap<String, u64>,
    model: RunModel,
    stats: SimStats,
    counter: u64,
    /// Generated file bytes, most recent last; bounded by `cache_bytes`.
    cache: VecDeque<(String, Arc<Vec<u8>>)>,
    cache_bytes: usize,
}

impl Inner {
    /// Simulated seconds since start.
    fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64() / self.config.time_scale.max(1e-9)
    }
}

type Shared = Arc<Mutex<Inner>>;

/// A running simulator.
pub struct SimHandle {
    pub base_url: String,
    pub address: SocketAddr,
    shared: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// A copy of the request accounting.
    pub fn stats(&self) -> SimStats {
        self.shared
            .lock()
            .map(|inner| inner.stats.clone())
            .unwrap_or_default()
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Starts the simulator on `address` (port 0 = any free port) inside the current tokio runtime.
pub async fn start(config: SimConfig, address: SocketAddr) -> std::io::Result<SimHandle> {
    let shared: Shared = Arc::new(Mutex::new(Inner {
        model: RunModel::new(config.capacity),
        config,
        started: Instant::now(),
        next_request_id: 28_900_001,
        next_run_id: 56_100_001,
        requests: HashMap::new(),
        run_to_request: HashMap::new(),
        seen_submissions: HashMap::new(),
        stats: SimStats::default(),
        counter: 0,
        cache: VecDeque::new(),
        cache_bytes: 0,
    }));
    let listener = tokio::net::TcpListener::bind(address).await?;
    let address = listener.local_addr()?;
    let app = Router::new().fallback(handle).with_state(shared.clone());
    let (shutdown, on_shutdown) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = on_shutdown.await;
            })
            .await;
    });
    Ok(SimHandle {
        base_url: format!("http://{address}/"),
        address,
        shared,
        shutdown: Some(shutdown),
        task: Some(task),
    })
}

/// The ONC error envelope.
fn onc_error(status: StatusCode, code: u32, message: &str, parameter: &str) -> Response {
    let body =
        json!({"errors": [{"errorCode": code, "errorMessage": message, "parameter": parameter}]});
    (status, axum::Json(body)).into_response()
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Every request comes here: account, inject faults, route.
async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let params: BTreeMap<String, String> = pairs.into_iter().collect();
    let path = uri.path().trim_end_matches('/').to_owned();
    if path == "/_sim/stats" {
        let stats = shared
            .lock()
            .map(|inner| inner.stats.clone())
            .unwrap_or_default();
        return json_response(StatusCode::OK, json!(stats));
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
    match params.get("token") {
        Some(token) if !token.is_empty() && !token.starts_with("invalid") => {}
        _ => return onc_error(StatusCode::UNAUTHORIZED, 127, "Invalid token", "token"),
    }
    let head = method == Method::HEAD;
    let response = match endpoint.as_str() {
        "dataProductDelivery/request" => product_request(&shared, &params),
        "dataProductDelivery/run" => product_run(&shared, &params),
        "dataProductDelivery/status" => product_status(&shared, &params),
        "dataProductDelivery/cancel" => product_cancel(&shared, &params),
        "dataProductDelivery/restart" => product_restart(&shared, &params),
        "dataProductDelivery/download" => product_download(&shared, &params, fault).await,
        "archivefile/device" | "archivefile/location" => archive_list(&shared, &endpoint, &params),
        "archivefile/download" => archive_download(&shared, &params, fault).await,
        "deployments" => deployments(&params),
        "devices" => devices(&shared, &params),
        "dataProducts" => data_products(&params),
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

/// Reads `dateFrom`/`dateTo` with ONC's errors: 128 missing, 127 invalid, 23 from after to.
fn date_range(params: &BTreeMap<String, String>) -> Result<(i64, i64), Response> {
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

fn device_profile(shared: &Shared, code: &str) -> Option<DeviceProfile> {
    let sample_rate = shared.lock().map(|inner| inner.config.sample_rate).ok()?;
    looks_like_device_code(code).then(|| DeviceProfile {
        code: code.to_owned(),
        sample_rate,
    })
}

fn product_request(shared: &Shared, params: &BTreeMap<String, String>) -> Response {
    let Some(device) = params
        .get("deviceCode")
        .or_else(|| params.get("locationCode"))
    else {
        return onc_error(
            StatusCode::BAD_REQUEST,
            128,
            "Missing parameter: deviceCode",
            "deviceCode",
        );
    };
    let Some(profile) = device_profile(shared, device) else {
        return onc_error(
            StatusCode::BAD_REQUEST,
            127,
            &format!("Invalid deviceCode: {device}"),
            "deviceCode",
        );
    };
    let Some(product) = params.get("dataProductCode") else {
        return onc_error(
            StatusCode::BAD_REQUEST,
            128,
            "Missing parameter: dataProductCode",
            "dataProductCode",
        );
    };
    let Some(extensions) = options::product_extensions(product) else {
        return onc_error(
            StatusCode::BAD_REQUEST,
            127,
            &format!("Invalid dataProductCode: {product}"),
            "dataProductCode",
        );
    };
    let Some(extension) = params.get("extension") else {
        return onc_error(
            StatusCode::BAD_REQUEST,
            128,
            "Missing parameter: extension",
            "extension",
        );
    };
    if !extensions.contains(&extension.as_str()) {
        return onc_error(
            StatusCode::BAD_REQUEST,
            127,
            &format!("Invalid extension for {product}: {extension}"),
            "extension",
        );
    }
    let (from, to) = match date_range(params) {
        Ok(range) => range,
        Err(response) => return response,
    };
    let mut dpo = BTreeMap::new();
    let mut messages = Vec::new();
    for (name, value) in params.iter().filter(|(name, _)| name.starts_with("dpo_")) {
        match options::check_option(product, name, value) {
            None => {}
            Some(OptionProblem::UnknownName) | Some(OptionProblem::NotAnOption) => {
                return onc_error(
                    StatusCode::BAD_REQUEST,
                    129,
                    &format!("Invalid parameter name: {name}"),
                    name,
                );
            }
            Some(OptionProblem::BadValue { allowed }) => {
                return onc_error(
                    StatusCode::BAD_REQUEST,
                    127,
                    &format!("Invalid value {value} for {name}: expected {allowed}"),
                    name,
                );
            }
        }
        dpo.insert(name.clone(), value.clone());
    }
    let downsample: u8 = dpo
        .get("dpo_spectralDataDownsample")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            messages.push("dpo_spectralDataDownsample not given: using the default (1)".to_owned());
            1
        });
    let diversion = dpo
        .get("dpo_hydrophoneDataDiversionMode")
        .filter(|mode| *mode == "LPF" || *mode == "HPF")
        .cloned();
    let files = archive::files_overlapping(&profile, from, to);
    let outputs: Vec<Output> = files
        .into_iter()
        .map(|file| match (product.as_str(), extension.as_str()) {
            ("HSD", "mat") => Output::Mat {
                file,
                downsample,
                diversion: diversion.clone(),
            },
            ("HSD", _) => Output::Png { file },
            (_, extension) => Output::Audio {
                file,
                extension: extension.to_owned(),
            },
        })
        .collect();
    let on_demand = match (product.as_str(), extension.as_str()) {
        ("HSD", "mat") => downsample != 1,
        ("HSD", _) => true,
        _ => dpo
            .get("dpo_audioFormatConversion")
            .is_some_and(|v| v == "1"),
    };
    let Ok(mut inner) = shared.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let per_file = if on_demand {
        inner.config.on_demand_file_s
    } else {
        inner.config.archived_file_s
    };
    let work_s = inner.config.run_overhead_s + per_file * outputs.len() as f64;
    let token = params.get("token").cloned().unwrap_or_default();
    let identity = format!("{device}|{from}|{to}|{product}|{extension}|{dpo:?}");
    let submission = inner.stats.submissions;
    let fails = inner.config.faults.run_fails(submission);
    inner.stats.submissions += 1;
    *inner.seen_submissions.entry(identity).or_default() += 1;
    inner.stats.duplicate_submissions = inner
        .seen_submissions
        .values()
        .map(|count| count.saturating_sub(1))
        .sum();
    let id = inner.next_request_id;
    inner.next_request_id += 1;
    let estimated_bytes: u64 = outputs.iter().map(estimated_size).sum();
    inner.requests.insert(
        id,
        RequestRecord {
            token,
            outputs,
            run_id: None,
            run_index: None,
            fails,
            work_s,
        },
    );
    // ONC states its estimate in whole units; scaled so clients poll at the simulated pace.
    let estimate_s = (work_s * inner.config.time_scale).ceil().max(1.0) as u64;
    json_response(
        StatusCode::OK,
        json!({
            "dpRequestId": id,
            "estimatedFileSize": human_size(estimated_bytes),
            "estimatedProcessingTime": format!("{estimate_s} s"),
            "messages": messages,
            "citations": [{
                "citation": "Ocean Networks Canada Society. 2024. Hydrophone Data (simulated).",
                "doi": "10.80242/SIMULATED",
                "landingPageUrl": "https://data.oceannetworks.ca/",
                "queryPid": id
            }],
            "disclaimer": "Simulated data from the onc-pipe built-in ONC simulator.",
            "queryPids": [id],
            "queryURL": "https://data.oceannetworks.ca/"
        }),
    )
}

fn estimated_size(output: &Output) -> u64 {
    match output {
        Output::Mat { file, .. } => file.duration_ms() as u64 * 13,
        Output::Png { .. } => 20_000,
        Output::Audio { file, .. } => file.samples * 3 / 2,
    }
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        format!("{} MB", bytes / 1_000_000)
    } else {
        format!("{} kB", (bytes / 1_000).max(1))
    }
}

fn request_id(params: &BTreeMap<String, String>) -> Result<u64, Response> {
    let Some(text) = params.get("dpRequestId") else {
        return Err(onc_error(
            StatusCode::BAD_REQUEST,
            128,
            "Missing parameter: dpRequestId",
            "dpRequestId",
        ));
    };
    text.parse().map_err(|_| {
        onc_error(
            StatusCode::BAD_REQUEST,
            127,
            &format!("Invalid dpRequestId: {text}"),
            "dpRequestId",
        )
    })
}

/// The request named by `dpRequestId`, with the simulator locked: parses the id and answers
/// ONC's 400s (128 missing, 127 invalid or unknown) itself.
fn lookup_request<'a>(
    shared: &'a Shared,
    params: &BTreeMap<String, String>,
) -> Result<(u64, RequestRecord, f64, std::sync::MutexGuard<'a, Inner>), Response> {
    let id = request_id(params)?;
    let inner = shared
        .lock()
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
    let now = inner.now();
    let Some(record) = inner.requests.get(&id).cloned() else {
        return Err(onc_error(
            StatusCode::BAD_REQUEST,
            127,
            &format!("Invalid dpRequestId: {id}"),
            "dpRequestId",
        ));
    };
    Ok((id, record, now, inner))
}

fn run_status_text(state: &RunState) -> &'static str {
    match state {
        RunState::Queued => "queued",
        RunState::Running { .. } => "data product running",
        RunState::Complete => "complete",
        RunState::Failed { .. } => "error",
        RunState::Cancelled => "cancelled",
    }
}

fn product_run(shared: &Shared, params: &BTreeMap<String, String>) -> Response {
    let (id, record, now, mut inner) = match lookup_request(shared, params) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (run_id, index) = match (record.run_id, record.run_index) {
        (Some(run_id), Some(index)) => (run_id, index),
        _ => {
            let index = inner
                .model
                .submit(&record.token, now, record.work_s, record.fails);
            let run_id = inner.next_run_id;
            inner.next_run_id += 1;
            inner.stats.runs += 1;
            inner.run_to_request.insert(run_id, id);
            if let Some(stored) = inner.requests.get_mut(&id) {
                stored.run_id = Some(run_id);
                stored.run_index = Some(index);
            }
            (run_id, index)
        }
    };
    let state = inner.model.state(index, now).unwrap_or(RunState::Queued);
    let file_count = if state == RunState::Complete {
        record.outputs.len()
    } else {
        0
    };
    let status = if matches!(
        state,
        RunState::Complete | RunState::Failed { .. } | RunState::Cancelled
    ) {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    json_response(
        status,
        json!([{ "dpRunId": run_id, "fileCount": file_count, "status": run_status_text(&state) }]),
    )
}

fn product_status(shared: &Shared, params: &BTreeMap<String, String>) -> Response {
    let (id, record, now, inner) = match lookup_request(shared, params) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let state = record
        .run_index
        .and_then(|index| inner.model.state(index, now));
    let header = if state.is_some() { "COMPLETED" } else { "OPEN" };
    json_response(
        StatusCode::OK,
        json!({
            "dpRequestId": id,
            "searchHdrStatus": header,
            "status": state.as_ref().map(run_status_text).unwrap_or("not started"),
            "fileCount": if state == Some(RunState::Complete) { record.outputs.len() } else { 0 },
        }),
    )
}

fn product_cancel(shared: &Shared, params: &BTreeMap<String, String>) -> Response {
    let (_, record, now, mut inner) = match lookup_request(shared, params) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (Some(run_id), Some(index)) = (record.run_id, record.run_index) else {
        return json_response(StatusCode::OK, json!([]));
    };
    inner.model.cancel(index, now);
    let state = inner.model.state(index, now).unwrap_or(RunState::Cancelled);
    json_response(
        StatusCode::OK,
        json!([{ "dpRunId": run_id, "status": run_status_text(&state) }]),
    )
}

fn product_restart(shared: &Shared, params: &BTreeMap<String, String>) -> Response {
    let (id, record, now, mut inner) = match lookup_request(shared, params) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (Some(run_id), Some(index)) = (record.run_id, record.run_index) else {
        return onc_error(
            StatusCode::BAD_REQUEST,
            127,
            &format!("dpRequestId {id} has no run to restart"),
            "dpRequestId",
        );
    };
    inner.model.restart(index, now);
    let state = inner.model.state(index, now).unwrap_or(RunState::Queued);
    json_response(
        StatusCode::OK,
        json!([{ "dpRunId": run_id, "status": run_status_text(&state) }]),
    )
}

/// The 202 message a download shows while its run is not done, following ONC's real sequence.
fn progress_message(state: &RunState, outputs: &[Output]) -> (String, String) {
    let first = outputs.first().map(Output::filename).unwrap_or_default();
    match state {
        RunState::Queued => ("queued".into(), "Queued".into()),
        RunState::Running { progress } => {
            let message = if *progress < 0.1 {
                "Running".to_owned()
            } else if *progress < 0.2 {
                "Running... getting data for time segment 1 of 1.".to_owned()
            } else if *progress < 0.8 {
                format!(
                    "Running... processing hydrophone spectral data, {:.1}% complete for deployment 1 of 1. (0.0% was pre-generated.)",
                    progress * 100.0
                )
            } else if *progress < 0.9 {
                "Running... writing data products, time range 1 of 1.".to_owned()
            } else if *progress < 0.95 {
                format!(
                    "Data product generation complete, preparing download link and metadata report... file ({first}) complete, waiting on the file system to synchronize"
                )
            } else {
                format!("Transferring ({first}) to the FTP server")
            };
            ("running".into(), message)
        }
        RunState::Failed { message } => ("error".into(), message.clone()),
        _ => ("running".into(), "Running".into()),
    }
}

async fn product_download(
    shared: &Shared,
    params: &BTreeMap<String, String>,
    fault: Fault,
) -> Response {
    let Some(run_text) = params.get("dpRunId") else {
        return onc_error(
            StatusCode::BAD_REQUEST,
            128,
            "Missing parameter: dpRunId",
            "dpRunId",
        );
    };
    let Ok(run_id) = run_text.parse::<u64>() else {
        return onc_error(
            StatusCode::BAD_REQUEST,
            127,
            &format!("Invalid dpRunId: {run_text}"),
            "dpRunId",
        );
    };
    let index_text = params.get("index").cloned().unwrap_or_else(|| "1".into());
    let (record, state, expired) = {
        let Ok(inner) = shared.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let Some(record) = inner
            .run_to_request
            .get(&run_id)
            .and_then(|id| inner.requests.get(id))
            .cloned()
        else {
            return onc_error(
                StatusCode::BAD_REQUEST,
                127,
                &format!("Invalid dpRunId: {run_id}"),
                "dpRunId",
            );
        };
        let now = inner.now();
        let index = record.run_index.unwrap_or(usize::MAX);
        let state = inner.model.state(index, now).unwrap_or(RunState::Queued);
        let expired = inner
            .model
            .finish_time(index)
            .is_some_and(|finish| now - finish > inner.config.retention_s);
        (record, state, expired)
    };
    match &state {
        RunState::Cancelled => {
            // ONC's wart: a cancelled run answers 400 without an `errors` key.
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"message": "The data product request was cancelled"}),
            );
        }
        RunState::Complete => {}
        other => {
            let (status, message) = progress_message(other, &record.outputs);
            return json_response(
                StatusCode::ACCEPTED,
                json!({"status": status, "message": message}),
            );
        }
    }
    if expired {
        return (StatusCode::GONE, "").into_response();
    }
    if record.outputs.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    if index_text == "meta" {
        let name = record
            .outputs
            .first()
            .map(|o| {
                let filename = o.filename();
                let stem = filename
                    .rsplit_once('.')
                    .map_or(filename.clone(), |(s, _)| s.to_owned());
                let extension = filename
                    .rsplit_once('.')
                    .map_or("", |(_, e)| e)
                    .to_uppercase();
                format!("{stem}_{extension}_META.xml")
            })
            .unwrap_or_default();
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata><dpRunId>{run_id}</dpRunId><fileCount>{}</fileCount><source>onc-pipe simulator</source></metadata>\n",
            record.outputs.len()
        );
        return file_response(shared, &name, Arc::new(xml.into_bytes()), fault);
    }
    let Ok(index) = index_text.parse::<usize>() else {
        return onc_error(
            StatusCode::BAD_REQUEST,
            127,
            &format!("Invalid index: {index_text}"),
            "index",
        );
    };
    let Some(output) = index
        .checked_sub(1)
        .and_then(|i| record.outputs.get(i))
        .cloned()
    else {
        return (StatusCode::NOT_FOUND, "").into_response();
    };
    let name = output.filename();
    match generate(shared, &name, move || match &output {
        Output::Mat {
            file,
            downsample,
            diversion,
        } => mat::hsd_mat_bytes(file, *downsample, diversion.as_deref()),
        Output::Png { file } => picture::hsd_png_bytes(file),
        Output::Audio { file, extension } if extension == "wav" => Ok(flac::wav_bytes(file)),
        Output::Audio { file, .. } => flac::flac_bytes(file),
    })
    .await
    {
        Ok(bytes) => file_response(shared, &name, bytes, fault),
        Err(message) => (StatusCode::INTERNAL_SERVER_ERROR, message).into_response(),
    }
}

/// File bytes from the cache, or generated on a blocking thread and cached.
async fn generate(
    shared: &Shared,
    name: &str,
    make: impl FnOnce() -> Result<Vec<u8>, String> + Send + 'static,
) -> Result<Arc<Vec<u8>>, String> {
    if let Ok(inner) = shared.lock()
        && let Some((_, bytes)) = inner.cache.iter().find(|(cached, _)| cached == name)
    {
        return Ok(bytes.clone());
    }
    let bytes = Arc::new(
        tokio::task::spawn_blocking(make)
            .await
            .map_err(|error| format!("file generation stopped: {error}"))??,
    );
    if let Ok(mut inner) = shared.lock() {
        // Bounded: enough for a benchmark's working set, never the whole archive.
        const CACHE_LIMIT: usize = 512 * 1024 * 1024;
        inner.cache_bytes += bytes.len();
        inner.cache.push_back((name.to_owned(), bytes.clone()));
        while inner.cache_bytes > CACHE_LIMIT {
            match inner.cache.pop_front() {
                Some((_, old)) => inner.cache_bytes -= old.len(),
                None => break,
            }
        }
    }
    Ok(bytes)
}

/// A 200 file answer with ONC's headers (unquoted `filename=`, as ONC sends and as the official
/// client's `split("filename=")` needs), or a reset/truncated one when a fault says so.
fn file_response(shared: &Shared, name: &str, bytes: Arc<Vec<u8>>, fault: Fault) -> Response {
    let length = bytes.len();
    let mut throttle = 0;
    if let Ok(mut inner) = shared.lock() {
        inner.stats.files_served += 1;
        inner.stats.bytes_served += length as u64;
        throttle = inner.config.faults.throttle_bytes_per_s;
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename={name}")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    let body = match fault {
        Fault::Reset | Fault::Truncate => {
            // Send part of the body, then fail the stream: hyper closes the connection before
            // Content-Length bytes arrived, as a reset or a cut proxy would.
            let cut = if fault == Fault::Reset {
                length.min(64)
            } else {
                length * 3 / 4
            };
            let head = bytes.get(..cut).map(<[u8]>::to_vec).unwrap_or_default();
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
                Ok(head),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "simulated fault",
                )),
            ];
            Body::from_stream(futures_util::stream::iter(chunks))
        }
        _ if throttle > 0 => throttled_body(bytes, throttle),
        _ => Body::from(bytes.as_ref().clone()),
    };
    let mut response = Response::new(body);
    *response.headers_mut() = headers;
    response
}

/// `bytes` sent in chunks of a tenth of a second's worth, sleeping between them, so the whole
/// body takes about `length / bytes_per_s` seconds.
fn throttled_body(bytes: Arc<Vec<u8>>, bytes_per_s: u64) -> Body {
    let chunk = usize::try_from(bytes_per_s / 10)
        .unwrap_or(usize::MAX)
        .max(1);
    let stream = futures_util::stream::unfold(0usize, move |offset| {
        let bytes = Arc::clone(&bytes);
        async move {
            let end = offset.saturating_add(chunk).min(bytes.len());
            let piece = bytes.get(offset..end)?.to_vec();
            if piece.is_empty() {
                return None;
            }
            if offset > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Some((Ok::<_, std::io::Error>(piece), end))
        }
    });
    Body::from_stream(stream)
}

fn archive_list(shared: &Shared, endpoint: &str, params: &BTreeMap<String, String>) -> Response {
    let device = if endpoint == "archivefile/device" {
        let Some(device) = params.get("deviceCode") else {
            return onc_error(
                StatusCode::BAD_REQUEST,
                128,
                "Missing parameter: deviceCode",
                "deviceCode",
            );
        };
        device.clone()
    } else {
        let (Some(location), Some(category)) =
            (params.get("locationCode"), params.get("deviceCategoryCode"))
        else {
            return onc_error(
                StatusCode::BAD_REQUEST,
                128,
                "Missing parameter: locationCode and deviceCategoryCode",
                "locationCode",
            );
        };
        if category != "HYDROPHONE" {
            return onc_error(
                StatusCode::BAD_REQUEST,
                127,
                "No data found for the given location and device category",
                "deviceCategoryCode",
            );
        }
        // Each simulated location holds one hydrophone named after it.
        format!(
            "ICLISTENHF{}",
            location.bytes().map(u32::from).sum::<u32>() % 10_000
        )
    };
    let Some(profile) = device_profile(shared, &device) else {
        return onc_error(
            StatusCode::BAD_REQUEST,
            127,
            &format!("Invalid deviceCode: {device}"),
            "deviceCode",
        );
    };
    let (from, to) = match date_range(params) {
        Ok(range) => range,
        Err(response) => return response,
    };
    let default_limit = shared
        .lock()
        .map(|inner| inner.config.row_limit)
        .unwrap_or(500);
    let row_limit = params
        .get("rowLimit")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&limit| limit > 0)
        .unwrap_or(default_limit);
    let extension = params.get("fileExtension").cloned();
    let extensions: Vec<String> = match &extension {
        Some(extension) => vec![extension.clone()],
        None => vec!["flac".into(), "wav".into()],
    };
    // Pages hold whole source files (both extensions of a file stay together), `rowLimit`
    // entries at most, and at least one file so a listing always advances.
    let mut sources = archive::files_starting_in(&profile, from, to);
    let files_per_page = (row_limit / extensions.len().max(1)).max(1);
    let next = if sources.len() > files_per_page {
        let next_from = sources.get(files_per_page).map_or(to, |file| file.start_ms);
        sources.truncate(files_per_page);
        let mut next_params: BTreeMap<String, String> = params
            .iter()
            .filter(|(name, _)| name.as_str() != "token" && name.as_str() != "method")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let next_date = DateTime::from_timestamp_millis(next_from).unwrap_or_default();
        next_params.insert("dateFrom".into(), onc_date(next_date));
        next_params.insert("rowLimit".into(), row_limit.to_string());
        json!({ "parameters": next_params, "url": format!("https://data.oceannetworks.ca/api/{endpoint}") })
    } else {
        Value::Null
    };
    let files: Vec<(ArchiveFile, String)> = sources
        .into_iter()
        .flat_map(|file| {
            extensions
                .iter()
                .map(move |ext| (file.clone(), ext.clone()))
        })
        .filter(|(_, ext)| ext == "flac" || ext == "wav")
        .collect();
    let all = params.get("returnOptions").is_some_and(|v| v == "all");
    let rows: Vec<Value> = files
        .iter()
        .map(|(file, ext)| {
            let name = file.filename(ext);
            if all {
                let start = DateTime::from_timestamp_millis(file.start_ms).unwrap_or_default();
                let end = DateTime::from_timestamp_millis(file.end_ms()).unwrap_or_default();
                let size = if ext == "wav" {
                    44 + file.samples * 3
                } else {
                    file.samples * 3 / 2
                };
                json!({
                    "filename": name,
                    "dateFrom": onc_date(start),
                    "dateTo": onc_date(end),
                    "archiveLocation": "simulated",
                    "compression": null,
                    "deviceCode": file.device,
                    "fileSize": size,
                    "uncompressedFileSize": size,
                    "modifyDate": onc_date(end),
                    "path": format!("{}/{}", file.device, start.format("%Y/%m/%d")),
                })
            } else {
                json!(name)
            }
        })
        .collect();
    json_response(StatusCode::OK, json!({ "files": rows, "next": next }))
}

async fn archive_download(
    shared: &Shared,
    params: &BTreeMap<String, String>,
    fault: Fault,
) -> Response {
    let Some(filename) = params.get("filename").filter(|name| !name.is_empty()) else {
        return onc_error(
            StatusCode::BAD_REQUEST,
            128,
            "Missing parameter: filename",
            "filename",
        );
    };
    let unknown = || {
        onc_error(
            StatusCode::BAD_REQUEST,
            96,
            &format!("File not found: {filename}"),
            "filename",
        )
    };
    let Some(name) = parse_archive_name(filename) else {
        return unknown();
    };
    let extension = name.extension.to_owned();
    let Some(profile) = device_profile(shared, name.device) else {
        return unknown();
    };
    let Some(file) = archive::file_by_name(&profile, filename) else {
        return unknown();
    };
    let bytes = generate(shared, filename, move || {
        if extension == "wav" {
            Ok(flac::wav_bytes(&file))
        } else {
            flac::flac_bytes(&file)
        }
    })
    .await;
    match bytes {
        Ok(bytes) => file_response(shared, filename, bytes, fault),
        Err(message) => (StatusCode::INTERNAL_SERVER_ERROR, message).into_response(),
    }
}

/// `/_sim/oracle/audio?filename=NAME&count=N`: the first N samples the archive file NAME must
/// hold, straight from the content oracle, for tests written in other languages.
fn oracle_audio(shared: &Shared, params: &BTreeMap<String, String>) -> Response {
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

fn deployments(params: &BTreeMap<String, String>) -> Response {
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

fn devices(shared: &Shared, params: &BTreeMap<String, String>) -> Response {
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

fn data_products(params: &BTreeMap<String, String>) -> Response {
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
