//! The typed, retrying ONC client.
//!
//! Input: a [`ClientConfig`] (base URL, token, timeouts, backoff) and typed call arguments.
//! Output: typed answers ([`ProductRequest`], [`RunPoll`], [`RunInfo`], [`ArchiveEntry`],
//! [`DownloadOutcome`], [`Downloaded`]) or raw JSON for the discovery endpoints.
//! Errors: [`OncError`], one enum for the layer; every string in it is redacted.
//!
//! Every call is `GET {base}api/{service}?...&token=...`. One private loop,
//! `OncClient::with_retry`, sends every attempt: transient failures (see `retry.rs`) are retried
//! after an exponential, jittered delay up to `Backoff::max_attempts`, permanent ones return at
//! once. A download that fails mid-body restarts from scratch in a fresh temporary file.
//!
//! The token travels only in the query string built by `OncClient::send`. `reqwest` errors print
//! their URL, so they are always stripped of it and passed through `redact_text`; server bodies
//! quoted in errors are redacted too.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use onc_format::query;
use serde_json::Value;

use super::answers::{DownloadOutcome, Downloaded, FileIndex, RunPoll};
use super::api::{
    ArchiveEntry, DownloadStatus, ErrorEnvelope, OncErrorDetail, ProductRequest, RunInfo,
    parse_archive_page, parse_json_body, parse_runs,
};
use super::download::{response_filename, stream_to_temp};
use super::error::{OncError, reqwest_error};
use super::redact::{Token, redact_text, redact_url};
use super::retry::Backoff;

/// ONC's production API.
pub const DEFAULT_BASE_URL: &str = "https://data.oceannetworks.ca/";

/// The longest server text quoted in an error.
const EXCERPT_CHARS: usize = 300;

/// How much of an error body is read (the rest is discarded with the connection).
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// The services (paths under `{base}api/`) this client calls. Errors name these, never URLs.
pub mod endpoint {
    pub const REQUEST: &str = "dataProductDelivery/request";
    pub const RUN: &str = "dataProductDelivery/run";
    pub const DOWNLOAD: &str = "dataProductDelivery/download";
    pub const STATUS: &str = "dataProductDelivery/status";
    pub const CANCEL: &str = "dataProductDelivery/cancel";
    pub const RESTART: &str = "dataProductDelivery/restart";
    pub const ARCHIVE_BY_DEVICE: &str = "archivefile/device";
    pub const ARCHIVE_BY_LOCATION: &str = "archivefile/location";
    pub const ARCHIVE_DOWNLOAD: &str = "archivefile/download";
    pub const DEPLOYMENTS: &str = "deployments";
    pub const DEVICES: &str = "devices";
    pub const DATA_PRODUCTS: &str = "dataProducts";
}

/// How to reach ONC.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://data.oceannetworks.ca/` or a simulator; a missing trailing `/` is added.
    pub base_url: String,
    pub token: Token,
    /// Connect timeout, and the longest silence allowed while reading a response. Not a limit on
    /// a whole request: a large download may take longer as long as bytes keep coming.
    pub timeout: Duration,
    pub backoff: Backoff,
    pub user_agent: String,
}

impl ClientConfig {
    /// Defaults: 60 s timeout, [`Backoff::default`], user agent `onc-pipe/<version>`.
    pub fn new(base_url: impl Into<String>, token: Token) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            token,
            timeout: Duration::from_secs(60),
            backoff: Backoff::default(),
            user_agent: format!("onc-pipe/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// The ONC API client. Cheap to clone (one `Arc`); clones share the connection pool and the
/// request counter. `Debug` shows the base URL and settings, never the token.
#[derive(Clone)]
pub struct OncClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    token: Token,
    timeout: Duration,
    backoff: Backoff,
    requests_sent: AtomicU64,
    /// The base URL is on this machine (the simulator): its time-scale header is honoured.
    loopback: bool,
    /// Real seconds per simulated second, as the simulator last said (`f64` bits); 1.0 for ONC.
    time_scale_bits: AtomicU64,
    /// 429 and 503 answers received: ONC (or a proxy in front of it) asking for less load.
    throttled: AtomicU64,
    /// The latest `Retry-After` of a 429 or 503, in milliseconds (0: none pending): the next
    /// retry waits at least this long.
    retry_after_ms: AtomicU64,
    /// Per-client jitter seed base, plus a counter so that each delay draws fresh jitter.
    jitter_base: u64,
    jitter_counter: AtomicU64,
}

impl fmt::Debug for OncClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OncClient")
            .field("base_url", &redact_url(&self.inner.base_url))
            .field("token", &self.inner.token)
            .field("timeout", &self.inner.timeout)
            .field("backoff", &self.inner.backoff)
            .field("requests_sent", &self.requests_sent())
            .finish()
    }
}

/// Query parameters of one call, in order; `token` is added by `OncClient::send`.
type Params = Vec<(String, String)>;

/// The parameters of `download?dpRunId&index` for file `index` of run `dp_run_id`, and the
/// name its file gets if ONC sends no usable `Content-Disposition`.
fn download_query(dp_run_id: u64, index: FileIndex) -> (Params, String) {
    let id = dp_run_id.to_string();
    let index_text = index.query_value();
    let query = params([
        (query::DP_RUN_ID, id.as_str()),
        (query::INDEX, index_text.as_str()),
    ]);
    (query, format!("dpRun{dp_run_id}_{index_text}"))
}

fn params<const N: usize>(pairs: [(&str, &str); N]) -> Params {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn map_params(map: &BTreeMap<String, String>) -> Params {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

impl OncClient {
    /// Builds the client: validates and normalises the base URL, installs rustls' ring provider
    /// (reqwest is built without one and panics on a client build without a process default).
    pub fn new(config: ClientConfig) -> Result<Self, OncError> {
        let base_url = normalise_base_url(&config.base_url)?;
        // Another part of the program may have installed it already; that is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .user_agent(config.user_agent.as_str())
            .connect_timeout(config.timeout)
            .read_timeout(config.timeout);
        if is_loopback(&base_url) {
            // (Also why the simulator's time-scale header is believed: see `note_answer`.)
            // The simulator: a proxy from the environment must not intercept loopback traffic.
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| OncError::Client {
            detail: redact_text(&e.without_url().to_string(), &config.token),
        })?;
        let loopback = is_loopback(&base_url);
        let jitter_base = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default()
            ^ u64::from(std::process::id()).rotate_left(40);
        Ok(OncClient {
            inner: Arc::new(Inner {
                http,
                base_url,
                token: config.token,
                timeout: config.timeout,
                backoff: config.backoff,
                requests_sent: AtomicU64::new(0),
                loopback,
                time_scale_bits: AtomicU64::new(1.0_f64.to_bits()),
                throttled: AtomicU64::new(0),
                retry_after_ms: AtomicU64::new(0),
                jitter_base,
                jitter_counter: AtomicU64::new(0),
            }),
        })
    }

    /// The normalised base URL (ends with `/`).
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// Real seconds per simulated second: 1.0 against ONC; against the simulator on this
    /// machine, what its answers say (from the first answer on). Every timer of the client and
    /// the executor (stagger, polls, backoff) is multiplied by it, so that a run against a
    /// simulator running 20× fast paces itself as it would against ONC.
    pub fn time_scale(&self) -> f64 {
        f64::from_bits(self.inner.time_scale_bits.load(Ordering::Relaxed))
    }

    /// `duration` on the server's clock (see [`OncClient::time_scale`]).
    pub fn scaled(&self, duration: Duration) -> Duration {
        duration.mul_f64(self.time_scale())
    }

    /// How many 429 and 503 answers this client has received: the executor admits fewer runs
    /// when it grows.
    pub fn throttled(&self) -> u64 {
        self.inner.throttled.load(Ordering::Relaxed)
    }

    /// Number of HTTP requests this client (and its clones) has sent, every attempt counted.
    pub fn requests_sent(&self) -> u64 {
        self.inner.requests_sent.load(Ordering::Relaxed)
    }

    /// `dataProductDelivery/request`: validate a data-product request and get ONC's estimate.
    /// `params` holds `deviceCode` (or `locationCode` + `deviceCategoryCode`), `dataProductCode`,
    /// `extension`, `dateFrom`, `dateTo` and `dpo_*` options, sent as given.
    pub async fn request_product(
        &self,
        params: &BTreeMap<String, String>,
    ) -> Result<ProductRequest, OncError> {
        let query = map_params(params);
        let value = self.get_json(endpoint::REQUEST, &query).await?;
        self.typed(endpoint::REQUEST, value)
    }

    /// `dataProductDelivery/run`: starts the run the first time, reports its progress after.
    pub async fn run_product(&self, dp_request_id: u64) -> Result<RunPoll, OncError> {
        let id = dp_request_id.to_string();
        let query = params([(query::DP_REQUEST_ID, id.as_str())]);
        let ep = endpoint::RUN;
        let query = &query;
        self.with_retry(move || async move {
            let response = self.send(ep, query).await?;
            let status = response.status().as_u16();
            if !matches!(status, 200 | 202) {
                return Err(self.error_from_response(ep, response).await);
            }
            let value = self.read_json(ep, response).await?;
            let runs = parse_runs(value).map_err(|e| self.invalid(ep, &e.to_string()))?;
            Ok(RunPoll {
                complete: status == 200,
                runs,
            })
        })
        .await
    }

    /// `dataProductDelivery/status`: ONC's raw status object (`searchHdrStatus`, ...).
    pub async fn status(&self, dp_request_id: u64) -> Result<Value, OncError> {
        let id = dp_request_id.to_string();
        self.get_json(
            endpoint::STATUS,
            &params([(query::DP_REQUEST_ID, id.as_str())]),
        )
        .await
    }

    /// `dataProductDelivery/cancel`.
    pub async fn cancel(&self, dp_request_id: u64) -> Result<Vec<RunInfo>, OncError> {
        self.runs_call(endpoint::CANCEL, dp_request_id).await
    }

    /// `dataProductDelivery/restart`: restarts a cancelled request (same dpRunId).
    pub async fn restart(&self, dp_request_id: u64) -> Result<Vec<RunInfo>, OncError> {
        self.runs_call(endpoint::RESTART, dp_request_id).await
    }

    /// `dataProductDelivery/download?dpRunId&index=N|meta`. A 200 is streamed to a temporary file
    /// in `dir` (`.part-<random>`), checked against `Content-Length`, hashed with blake3 while
    /// written and fsync'd; the caller renames it. 202/204/404/410 are outcomes, not errors.
    pub async fn download_product(
        &self,
        dp_run_id: u64,
        index: FileIndex,
        dir: &Path,
    ) -> Result<DownloadOutcome, OncError> {
        self.download_product_if(dp_run_id, index, dir, &|_| true)
            .await
    }

    /// [`Self::download_product`], asking `wanted(filename)` once ONC's headers name the file:
    /// when it answers false the body is dropped unread and the answer is
    /// [`DownloadOutcome::Skipped`]. This is how a run's files that are already stored (from an
    /// overlapping request) cost one request and no transfer.
    pub async fn download_product_if(
        &self,
        dp_run_id: u64,
        index: FileIndex,
        dir: &Path,
        wanted: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<DownloadOutcome, OncError> {
        let (query, fallback) = download_query(dp_run_id, index);
        let ep = endpoint::DOWNLOAD;
        let (query, fallback) = (&query, fallback.as_str());
        self.with_retry(move || async move {
            let response = self.send(ep, query).await?;
            match response.status().as_u16() {
                200 => {
                    let filename = response_filename(&response, fallback);
                    if !wanted(&filename) {
                        return Ok(DownloadOutcome::Skipped { filename });
                    }
                    let file =
                        stream_to_temp(response, dir, ep, fallback, &self.inner.token).await?;
                    Ok(DownloadOutcome::Ready(file))
                }
                202 => Ok(self.not_ready(ep, response).await?),
                204 => Ok(DownloadOutcome::NoData),
                404 => Ok(DownloadOutcome::PastEnd),
                410 => Ok(DownloadOutcome::Gone),
                _ => Err(self.error_from_response(ep, response).await),
            }
        })
        .await
    }

    /// The name of file `index` of a run, asked with a HEAD (as ONC's own client counts a run's
    /// files): [`DownloadOutcome::Named`], or what a GET would have answered instead (not
    /// ready, no data, past the end, gone). Nothing is transferred. Used for the files that
    /// straddle a request's edges, which a neighbouring request may be fetching too.
    pub async fn name_product_file(
        &self,
        dp_run_id: u64,
        index: FileIndex,
    ) -> Result<DownloadOutcome, OncError> {
        let (query, fallback) = download_query(dp_run_id, index);
        let ep = endpoint::DOWNLOAD;
        let (query, fallback) = (&query, fallback.as_str());
        self.with_retry(move || async move {
            let response = self.send_as(reqwest::Method::HEAD, ep, query).await?;
            match response.status().as_u16() {
                200 => Ok(DownloadOutcome::Named {
                    filename: response_filename(&response, fallback),
                }),
                // A HEAD's 202 has no body to read ONC's status from.
                202 => Ok(DownloadOutcome::NotReady {
                    status: "running".into(),
                    message: String::new(),
                }),
                204 => Ok(DownloadOutcome::NoData),
                404 => Ok(DownloadOutcome::PastEnd),
                410 => Ok(DownloadOutcome::Gone),
                _ => Err(self.error_from_response(ep, response).await),
            }
        })
        .await
    }

    /// `archivefile/device` with `returnOptions=all`, every page.
    pub async fn list_archive_by_device(
        &self,
        device: &str,
        date_from: &str,
        date_to: &str,
        extension: &str,
    ) -> Result<Vec<ArchiveEntry>, OncError> {
        let first = params([
            (query::DEVICE_CODE, device),
            (query::DATE_FROM, date_from),
            (query::DATE_TO, date_to),
            (query::FILE_EXTENSION, extension),
            (query::RETURN_OPTIONS, query::RETURN_ALL),
        ]);
        self.list_archive(endpoint::ARCHIVE_BY_DEVICE, first).await
    }

    /// `archivefile/device` with an archive listing's parameters as rendered by
    /// `OncQuery::params` (`deviceCode`, dates, `fileExtension`, `returnOptions=all`), every page.
    pub async fn list_archive_files(
        &self,
        params: &BTreeMap<String, String>,
    ) -> Result<Vec<ArchiveEntry>, OncError> {
        self.list_archive(endpoint::ARCHIVE_BY_DEVICE, map_params(params))
            .await
    }

    /// `archivefile/location` with `returnOptions=all`, every page.
    pub async fn list_archive_by_location(
        &self,
        location: &str,
        device_category: &str,
        date_from: &str,
        date_to: &str,
        extension: &str,
    ) -> Result<Vec<ArchiveEntry>, OncError> {
        let first = params([
            (query::LOCATION_CODE, location),
            (query::DEVICE_CATEGORY_CODE, device_category),
            (query::DATE_FROM, date_from),
            (query::DATE_TO, date_to),
            (query::FILE_EXTENSION, extension),
            (query::RETURN_OPTIONS, query::RETURN_ALL),
        ]);
        self.list_archive(endpoint::ARCHIVE_BY_LOCATION, first)
            .await
    }

    /// `archivefile/download?filename=`: an archived file, streamed like
    /// [`OncClient::download_product`]. Any status but 200 is an error (400/96: unknown name).
    pub async fn download_archive(
        &self,
        filename: &str,
        dir: &Path,
    ) -> Result<Downloaded, OncError> {
        let query = params([(query::FILENAME, filename)]);
        let ep = endpoint::ARCHIVE_DOWNLOAD;
        let query = &query;
        self.with_retry(move || async move {
            let response = self.send(ep, query).await?;
            if response.status().as_u16() != 200 {
                return Err(self.error_from_response(ep, response).await);
            }
            stream_to_temp(response, dir, ep, filename, &self.inner.token).await
        })
        .await
    }

    /// `deployments`: raw JSON; a 404 ("nothing matched") is an empty array.
    pub async fn deployments(&self, params: &BTreeMap<String, String>) -> Result<Value, OncError> {
        self.discovery(endpoint::DEPLOYMENTS, params).await
    }

    /// `devices`: raw JSON; a 404 ("nothing matched") is an empty array.
    pub async fn devices(&self, params: &BTreeMap<String, String>) -> Result<Value, OncError> {
        self.discovery(endpoint::DEVICES, params).await
    }

    /// `dataProducts`: raw JSON; a 404 ("nothing matched") is an empty array.
    pub async fn data_products(
        &self,
        params: &BTreeMap<String, String>,
    ) -> Result<Value, OncError> {
        self.discovery(endpoint::DATA_PRODUCTS, params).await
    }

    // ---- private: one attempt, the retry loop, response handling ----

    /// The retry loop every call goes through. `attempt` performs one complete attempt (send,
    /// check status, read or stream the body); a transient error sleeps and tries again, up to
    /// `max_attempts` in all. A `Transport` error reports how many attempts were made.
    async fn with_retry<T, F, Fut>(&self, mut attempt: F) -> Result<T, OncError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, OncError>>,
    {
        let backoff = self.inner.backoff;
        let max_attempts = backoff.max_attempts();
        let mut made = 1;
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(err) if err.is_transient() && made < max_attempts => {
                    let seed = self.inner.jitter_base
                        ^ self.inner.jitter_counter.fetch_add(1, Ordering::Relaxed);
                    // The server's Retry-After (already on its clock) is a floor.
                    let asked =
                        Duration::from_millis(self.inner.retry_after_ms.swap(0, Ordering::Relaxed));
                    let delay = self.scaled(backoff.delay(made, seed)).max(asked);
                    tokio::time::sleep(delay).await;
                    made += 1;
                }
                Err(OncError::Transport {
                    endpoint,
                    source_text,
                    ..
                }) => {
                    return Err(OncError::Transport {
                        endpoint,
                        source_text,
                        attempts: made,
                    });
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Sends one GET to `{base}api/{endpoint}` with `query` plus the token. The only place the
    /// token is exposed. A `token` key in `query` is dropped so it can neither leak from a
    /// server's `next.parameters` nor shadow ours.
    async fn send(&self, endpoint: &str, query: &Params) -> Result<reqwest::Response, OncError> {
        self.send_as(reqwest::Method::GET, endpoint, query).await
    }

    /// [`Self::send`] with another method (HEAD).
    async fn send_as(
        &self,
        method: reqwest::Method,
        endpoint: &str,
        query: &Params,
    ) -> Result<reqwest::Response, OncError> {
        let url = format!("{}api/{endpoint}", self.inner.base_url);
        let mut pairs: Vec<(&str, &str)> = query
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case(query::TOKEN))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        // What -v prints: the parameters as sent, the token left out (it is pushed after).
        let traced = crate::trace::onc().then(|| {
            let shown: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            (
                format!("onc {method} {endpoint} {}", shown.join(" ")),
                Instant::now(),
            )
        });
        pairs.push((query::TOKEN, self.inner.token.expose()));
        self.inner.requests_sent.fetch_add(1, Ordering::Relaxed);
        let sent = self
            .inner
            .http
            .request(method, url)
            .query(&pairs)
            .send()
            .await
            .map_err(|e| reqwest_error(e, endpoint, &self.inner.token));
        if let Some((what, started)) = traced {
            let ms = started.elapsed().as_millis();
            match &sent {
                Ok(response) => crate::trace::line(&format!(
                    "{what} -> {} ({ms} ms)",
                    response.status().as_u16()
                )),
                Err(error) => crate::trace::line(&format!("{what} -> {error} ({ms} ms)")),
            }
        }
        let response = sent?;
        self.note_answer(&response);
        Ok(response)
    }

    /// Learns from an answer's head: the simulator's time scale (believed only from loopback,
    /// bounded to [1e-4, 1] so no answer can make the client faster than it would be against
    /// ONC), and a 429/503 with its `Retry-After` (seconds, at most 10 minutes).
    fn note_answer(&self, response: &reqwest::Response) {
        let headers = response.headers();
        if self.inner.loopback
            && let Some(scale) = headers
                .get(query::SIM_TIME_SCALE_HEADER)
                .and_then(|value| value.to_str().ok())
                .and_then(|text| text.trim().parse::<f64>().ok())
                .filter(|scale| scale.is_finite() && *scale > 0.0)
        {
            self.inner
                .time_scale_bits
                .store(scale.clamp(1e-4, 1.0).to_bits(), Ordering::Relaxed);
        }
        let status = response.status().as_u16();
        if status == 429 || status == 503 {
            self.inner.throttled.fetch_add(1, Ordering::Relaxed);
            let seconds = headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|text| text.trim().parse::<u64>().ok())
                .unwrap_or(0)
                .min(600);
            self.inner
                .retry_after_ms
                .store(seconds * 1_000, Ordering::Relaxed);
        }
    }

    /// GET with retries; any 2xx body parsed as JSON (an empty body is `null`).
    async fn get_json(&self, ep: &str, query: &Params) -> Result<Value, OncError> {
        self.with_retry(move || async move {
            let response = self.send(ep, query).await?;
            if !response.status().is_success() {
                return Err(self.error_from_response(ep, response).await);
            }
            self.read_json(ep, response).await
        })
        .await
    }

    async fn discovery(
        &self,
        ep: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<Value, OncError> {
        let query = map_params(params);
        let query = &query;
        self.with_retry(move || async move {
            let response = self.send(ep, query).await?;
            let status = response.status();
            if status.as_u16() == 404 {
                // Documented meaning on discovery endpoints: valid filters, nothing matched.
                return Ok(Value::Array(Vec::new()));
            }
            if !status.is_success() {
                return Err(self.error_from_response(ep, response).await);
            }
            self.read_json(ep, response).await
        })
        .await
    }

    async fn runs_call(&self, ep: &str, dp_request_id: u64) -> Result<Vec<RunInfo>, OncError> {
        let id = dp_request_id.to_string();
        let value = self
            .get_json(ep, &params([(query::DP_REQUEST_ID, id.as_str())]))
            .await?;
        parse_runs(value).map_err(|e| self.invalid(ep, &e.to_string()))
    }

    /// Follows `next.parameters` verbatim (token aside) until `next` is null. A page whose
    /// parameters were already seen is an error rather than an endless loop.
    async fn list_archive(&self, ep: &str, first: Params) -> Result<Vec<ArchiveEntry>, OncError> {
        let mut entries = Vec::new();
        let mut seen: HashSet<Params> = HashSet::new();
        let mut query = first;
        loop {
            let mut key = query.clone();
            key.sort();
            if !seen.insert(key) {
                return Err(self.invalid(ep, "the next page repeats an earlier page"));
            }
            let page = self.get_json(ep, &query).await?;
            let (files, next) = self.archive_page(ep, page)?;
            entries.extend(files);
            match next {
                Some(next) => query = next,
                None => return Ok(entries),
            }
        }
    }

    /// One listing page (see [`parse_archive_page`]), its problems as this endpoint's
    /// `InvalidResponse`.
    fn archive_page(
        &self,
        ep: &str,
        page: Value,
    ) -> Result<(Vec<ArchiveEntry>, Option<Params>), OncError> {
        parse_archive_page(page).map_err(|detail| self.invalid(ep, &detail))
    }

    /// The JSON body of a 202 from `download`; a body that is not the documented object still
    /// means "not ready", with the (redacted) text as the message.
    async fn not_ready(
        &self,
        ep: &str,
        response: reqwest::Response,
    ) -> Result<DownloadOutcome, OncError> {
        let body = response
            .bytes()
            .await
            .map_err(|e| reqwest_error(e, ep, &self.inner.token))?;
        let token = &self.inner.token;
        let status: DownloadStatus =
            serde_json::from_slice(&body).unwrap_or_else(|_| DownloadStatus {
                status: String::new(),
                message: excerpt(&String::from_utf8_lossy(&body)),
            });
        Ok(DownloadOutcome::NotReady {
            status: redact_text(&status.status, token),
            message: redact_text(&status.message, token),
        })
    }

    /// Reads a success body as JSON. A failure while reading is transient (reset, truncation);
    /// a body that is not JSON is not.
    async fn read_json(&self, ep: &str, response: reqwest::Response) -> Result<Value, OncError> {
        let body = response
            .bytes()
            .await
            .map_err(|e| reqwest_error(e, ep, &self.inner.token))?;
        parse_json_body(&body).map_err(|e| self.invalid(ep, &format!("invalid JSON: {e}")))
    }

    fn typed<T: serde::de::DeserializeOwned>(&self, ep: &str, value: Value) -> Result<T, OncError> {
        serde_json::from_value(value).map_err(|e| self.invalid(ep, &e.to_string()))
    }

    fn invalid(&self, ep: &str, detail: &str) -> OncError {
        OncError::InvalidResponse {
            endpoint: ep.to_string(),
            detail: redact_text(detail, &self.inner.token),
        }
    }

    /// Maps an unexpected status to an error, reading at most [`ERROR_BODY_LIMIT`] bytes of the
    /// body. 401 → `Unauthorized`; ONC's envelope on a 4xx → `Onc`; a 400 without `errors` from
    /// `download` → `CancelledRun`; anything else → `Http` with a redacted excerpt.
    async fn error_from_response(&self, ep: &str, mut response: reqwest::Response) -> OncError {
        let status = response.status().as_u16();
        let mut body = Vec::new();
        // A body that fails half-way still explains the status; keep what arrived.
        while body.len() < ERROR_BODY_LIMIT {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        let token = &self.inner.token;
        let errors = serde_json::from_slice::<ErrorEnvelope>(&body)
            .ok()
            .and_then(|envelope| envelope.errors)
            .map(|errors| {
                errors
                    .into_iter()
                    .map(|e| OncErrorDetail {
                        error_code: e.error_code,
                        error_message: redact_text(&e.error_message, token),
                        parameter: redact_text(&e.parameter, token),
                    })
                    .collect::<Vec<_>>()
            });
        let name = ep.to_string();
        match errors {
            _ if status == 401 => OncError::Unauthorized {
                endpoint: name,
                errors: errors.unwrap_or_default(),
            },
            Some(errors) if !errors.is_empty() && (400..500).contains(&status) => OncError::Onc {
                status,
                errors,
                endpoint: name,
            },
            None if status == 400 && ep == endpoint::DOWNLOAD => {
                OncError::CancelledRun { endpoint: name }
            }
            _ => OncError::Http {
                status,
                endpoint: name,
                body_excerpt: excerpt(&redact_text(&String::from_utf8_lossy(&body), token)),
            },
        }
    }
}

/// At most [`EXCERPT_CHARS`] characters of `text`, whitespace collapsed. Redact before calling:
/// cutting first could leave half a token behind.
fn excerpt(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= EXCERPT_CHARS {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(EXCERPT_CHARS - 1).collect();
    cut.push('…');
    cut
}

pub(crate) fn is_loopback(base_url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(base_url) else {
        return false;
    };
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Validates the base URL and makes it end with `/` (endpoints are appended as `api/...`).
fn normalise_base_url(raw: &str) -> Result<String, OncError> {
    let trimmed = raw.trim();
    let invalid = |reason: &str| OncError::InvalidBaseUrl {
        url: redact_url(trimmed),
        reason: reason.to_string(),
    };
    let url = reqwest::Url::parse(trimmed).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none() {
        return Err(invalid("no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "a query or fragment cannot be combined with API paths",
        ));
    }
    let mut normalised = url.to_string();
    if !normalised.ends_with('/') {
        normalised.push('/');
    }
    Ok(normalised)
}
