//! Client tests against tiny in-process fake servers on 127.0.0.1 (axum for well-formed HTTP,
//! raw TCP for bodies cut short). No external network; each test takes milliseconds.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

const SECRET: &str = "5ec2e7a1-0b0b-4c4c-8d8d-123456789abc";

/// What a fake route answers: the query of the request and how many times this path was hit
/// before (0-based).
type Handler = Arc<dyn Fn(&HashMap<String, String>, usize) -> Response + Send + Sync>;

struct FakeState {
    routes: HashMap<String, Handler>,
    hits: Mutex<HashMap<String, usize>>,
    log: Mutex<Vec<(String, HashMap<String, String>)>>,
}

struct Fake {
    base: String,
    state: Arc<FakeState>,
}

impl Fake {
    /// Requests received, as (path after `/api/`, query).
    fn log(&self) -> Vec<(String, HashMap<String, String>)> {
        self.state.log.lock().unwrap().clone()
    }
}

async fn dispatch(State(state): State<Arc<FakeState>>, uri: Uri) -> Response {
    let path = uri.path().trim_start_matches("/api/").to_string();
    let query = Query::<HashMap<String, String>>::try_from_uri(&uri)
        .map(|q| q.0)
        .unwrap_or_default();
    state
        .log
        .lock()
        .unwrap()
        .push((path.clone(), query.clone()));
    let n = {
        let mut hits = state.hits.lock().unwrap();
        let n = hits.entry(path.clone()).or_insert(0);
        *n += 1;
        *n - 1
    };
    match state.routes.get(&path) {
        Some(handler) => handler(&query, n),
        None => respond(404, &[], "no such route"),
    }
}

async fn fake(routes: Vec<(&str, Handler)>) -> Fake {
    let state = Arc::new(FakeState {
        routes: routes
            .into_iter()
            .map(|(path, handler)| (path.to_string(), handler))
            .collect(),
        hits: Mutex::new(HashMap::new()),
        log: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .fallback(dispatch)
        .with_state(state.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Fake {
        base: format!("http://{addr}"),
        state,
    }
}

fn respond(status: u16, headers: &[(&str, &str)], body: impl Into<Body>) -> Response {
    let mut builder = Response::builder().status(StatusCode::from_u16(status).unwrap());
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body.into()).unwrap()
}

fn json_response(status: u16, value: Value) -> Response {
    respond(
        status,
        &[("content-type", "application/json")],
        value.to_string(),
    )
}

fn handler(
    f: impl Fn(&HashMap<String, String>, usize) -> Response + Send + Sync + 'static,
) -> Handler {
    Arc::new(f)
}

/// A client with millisecond backoff and 3 attempts.
fn client_for(base: &str) -> OncClient {
    let mut config = ClientConfig::new(base, Token::new(SECRET));
    config.backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(5), 3);
    config.timeout = Duration::from_secs(5);
    OncClient::new(config).unwrap()
}

/// A raw TCP server that answers its n-th connection with `responses[n]` (the last one repeats)
/// and then closes the connection: the way to send fewer bytes than `Content-Length`.
async fn raw_server(responses: Vec<Vec<u8>>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let response = responses[n.min(responses.len() - 1)].clone();
            tokio::spawn(async move {
                // Read the request head before answering.
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = socket.write_all(&response).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), count)
}

fn raw_file_response(content_length: usize, body: &[u8]) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {content_length}\r\n\
         Content-Disposition: attachment; filename=cut.flac\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    response.extend_from_slice(body);
    response
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The secret must not appear in the error's Display or Debug, nor in the client's Debug.
fn assert_no_secret(err: &OncError, client: &OncClient) {
    let shown = format!("{err}");
    let debugged = format!("{err:?}");
    let client_debug = format!("{client:?}");
    for text in [&shown, &debugged, &client_debug] {
        assert!(!text.contains(SECRET), "token leaked: {text}");
        assert!(!text.contains("5ec2e7a1"), "token prefix leaked: {text}");
    }
}

#[tokio::test]
async fn run_product_reports_202_then_200() {
    let server = fake(vec![(
        "dataProductDelivery/run",
        handler(|q, n| {
            assert_eq!(q.get("dpRequestId").map(String::as_str), Some("42"));
            if n < 2 {
                json_response(
                    202,
                    json!([{"dpRunId": 7, "fileCount": 0, "status": "data product running"}]),
                )
            } else {
                json_response(
                    200,
                    json!([{"dpRunId": 7, "fileCount": 12, "status": "complete"}]),
                )
            }
        }),
    )])
    .await;
    let client = client_for(&server.base);
    for _ in 0..2 {
        let poll = client.run_product(42).await.unwrap();
        assert!(!poll.complete);
        assert_eq!(poll.runs[0].dp_run_id, 7);
        assert_eq!(poll.runs[0].file_count, 0);
        assert_eq!(poll.runs[0].status, "data product running");
    }
    let poll = client.run_product(42).await.unwrap();
    assert!(poll.complete);
    assert_eq!(
        poll.runs,
        vec![RunInfo {
            dp_run_id: 7,
            file_count: 12,
            status: "complete".into()
        }]
    );
    assert_eq!(client.requests_sent(), 3);
    // Every call carries the token in the query, and only there.
    for (path, query) in server.log() {
        assert_eq!(path, "dataProductDelivery/run");
        assert_eq!(query.get("token").map(String::as_str), Some(SECRET));
    }
}

#[tokio::test]
async fn request_status_cancel_restart_parse() {
    let server = fake(vec![
        (
            "dataProductDelivery/request",
            handler(|q, _| {
                assert_eq!(q.get("dataProductCode").map(String::as_str), Some("HSD"));
                assert_eq!(
                    q.get("dpo_hydrophoneChannel").map(String::as_str),
                    Some("H1")
                );
                json_response(
                    200,
                    json!({"dpRequestId": 28892274, "estimatedFileSize": "151 kB",
                        "estimatedProcessingTime": "2 min", "messages": ["default used"],
                        "citations": [], "disclaimer": "rough", "queryPids": [1], "queryURL": "x"}),
                )
            }),
        ),
        (
            "dataProductDelivery/status",
            handler(|_, _| json_response(200, json!({"searchHdrStatus": "OPEN"}))),
        ),
        (
            "dataProductDelivery/cancel",
            handler(|_, _| json_response(200, json!([{"dpRunId": 9, "status": "cancelled"}]))),
        ),
        (
            "dataProductDelivery/restart",
            handler(|_, _| json_response(200, json!([{"dpRunId": 9, "status": "queued"}]))),
        ),
    ])
    .await;
    let client = client_for(&server.base);
    let params: BTreeMap<String, String> = [
        ("deviceCode", "ICLISTENHF1251"),
        ("dataProductCode", "HSD"),
        ("extension", "mat"),
        ("dpo_hydrophoneChannel", "H1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let request = client.request_product(&params).await.unwrap();
    assert_eq!(request.dp_request_id, 28892274);
    assert_eq!(request.processing_time(), Some(Duration::from_secs(120)));
    assert_eq!(request.messages, vec!["default used".to_string()]);
    let status = client.status(28892274).await.unwrap();
    assert_eq!(status["searchHdrStatus"], "OPEN");
    let cancelled = client.cancel(28892274).await.unwrap();
    assert_eq!(cancelled[0].status, "cancelled");
    assert_eq!(cancelled[0].dp_run_id, 9);
    let restarted = client.restart(28892274).await.unwrap();
    assert_eq!(restarted[0].status, "queued");
}

#[tokio::test]
async fn download_product_outcomes() {
    let server = fake(vec![(
        "dataProductDelivery/download",
        handler(|q, _| {
            let index = q.get("index").cloned().unwrap_or_default();
            match index.as_str() {
                "1" => respond(
                    200,
                    &[("content-disposition", "attachment; filename=X_1.mat")],
                    "first file",
                ),
                "2" => respond(
                    200,
                    &[("content-disposition", "attachment; filename=\"X_2.mat\"")],
                    "second file",
                ),
                "3" => respond(
                    200,
                    &[("content-disposition", "attachment; filename=\"../../etc/evil\"")],
                    "evil",
                ),
                "4" => json_response(
                    202,
                    json!({"status": "running", "message": "Running... getting data for time segment 1 of 1."}),
                ),
                "5" => respond(204, &[], ""),
                "6" => respond(404, &[], ""),
                "7" => respond(410, &[], ""),
                "meta" => respond(
                    200,
                    &[("content-disposition", "attachment; filename=X_MAT_META.xml")],
                    "<xml/>",
                ),
                _ => respond(500, &[], ""),
            }
        }),
    )])
    .await;
    let client = client_for(&server.base);
    let dir = tempfile::tempdir().unwrap();

    let ready = |outcome: DownloadOutcome| match outcome {
        DownloadOutcome::Ready(file) => file,
        other => panic!("expected a file, got {other:?}"),
    };
    let first = ready(
        client
            .download_product(5, FileIndex::Number(1), dir.path())
            .await
            .unwrap(),
    );
    assert_eq!(first.filename, "X_1.mat");
    assert_eq!(first.size, 10);
    assert_eq!(
        first.blake3,
        blake3::hash(b"first file").to_hex().to_string()
    );
    assert_eq!(std::fs::read(&first.temp_path).unwrap(), b"first file");
    assert_eq!(first.temp_path.parent(), Some(dir.path()));
    let temp_name = first.temp_path.file_name().unwrap().to_string_lossy();
    assert!(temp_name.starts_with(TEMP_PREFIX), "{temp_name}");

    let second = ready(
        client
            .download_product(5, FileIndex::Number(2), dir.path())
            .await
            .unwrap(),
    );
    assert_eq!(second.filename, "X_2.mat");
    assert_ne!(second.temp_path, first.temp_path);

    let evil = ready(
        client
            .download_product(5, FileIndex::Number(3), dir.path())
            .await
            .unwrap(),
    );
    assert_eq!(evil.filename, "evil");

    let meta = ready(
        client
            .download_product(5, FileIndex::Meta, dir.path())
            .await
            .unwrap(),
    );
    assert_eq!(meta.filename, "X_MAT_META.xml");

    assert_eq!(
        client
            .download_product(5, FileIndex::Number(4), dir.path())
            .await
            .unwrap(),
        DownloadOutcome::NotReady {
            status: "running".into(),
            message: "Running... getting data for time segment 1 of 1.".into()
        }
    );
    let outcomes = [
        (5, DownloadOutcome::NoData),
        (6, DownloadOutcome::PastEnd),
        (7, DownloadOutcome::Gone),
    ];
    for (index, expected) in outcomes {
        assert_eq!(
            client
                .download_product(5, FileIndex::Number(index), dir.path())
                .await
                .unwrap(),
            expected
        );
    }
    // Outcomes are not retried: one request each.
    assert_eq!(client.requests_sent(), 8);
    let indexes: Vec<String> = server
        .log()
        .iter()
        .map(|(_, q)| format!("{}:{}", q["dpRunId"], q["index"]))
        .collect();
    assert_eq!(
        indexes,
        ["5:1", "5:2", "5:3", "5:meta", "5:4", "5:5", "5:6", "5:7"]
    );
    // Only the four downloaded temp files exist; nothing else was written.
    assert_eq!(files_in(dir.path()).len(), 4);
}

#[tokio::test]
async fn truncated_download_is_retried_then_reported() {
    let (base, connections) = raw_server(vec![raw_file_response(100, &[7u8; 50])]).await;
    let client = client_for(&base);
    let dir = tempfile::tempdir().unwrap();
    let err = client
        .download_product(1, FileIndex::Number(1), dir.path())
        .await
        .unwrap_err();
    match &err {
        OncError::Truncated {
            endpoint,
            expected,
            received,
        } => {
            assert_eq!(endpoint, "dataProductDelivery/download");
            assert_eq!(*expected, 100);
            assert!(*received <= 50, "{received}");
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
    assert!(err.is_transient());
    assert_eq!(client.requests_sent(), 3);
    assert_eq!(connections.load(Ordering::SeqCst), 3);
    // Every partial file was deleted.
    assert!(
        files_in(dir.path()).is_empty(),
        "{:?}",
        files_in(dir.path())
    );
    assert_no_secret(&err, &client);
}

#[tokio::test]
async fn truncated_download_restarts_from_scratch() {
    let body = b"0123456789".repeat(10);
    let (base, connections) = raw_server(vec![
        raw_file_response(100, &body[..30]),
        raw_file_response(100, &body),
    ])
    .await;
    let client = client_for(&base);
    let dir = tempfile::tempdir().unwrap();
    let file = client
        .download_archive("cut.flac", dir.path())
        .await
        .unwrap();
    assert_eq!(connections.load(Ordering::SeqCst), 2);
    assert_eq!(file.size, 100);
    assert_eq!(file.filename, "cut.flac");
    assert_eq!(file.blake3, blake3::hash(&body).to_hex().to_string());
    assert_eq!(std::fs::read(&file.temp_path).unwrap(), body);
    assert_eq!(files_in(dir.path()).len(), 1);
}

#[tokio::test]
async fn archive_listing_follows_next_parameters_across_three_pages() {
    let server = fake(vec![(
        "archivefile/device",
        handler(|q, n| {
            let date_from = q.get("dateFrom").cloned().unwrap_or_default();
            match n {
                0 => {
                    assert_eq!(q.get("returnOptions").map(String::as_str), Some("all"));
                    assert_eq!(q.get("fileExtension").map(String::as_str), Some("flac"));
                    assert_eq!(q.get("deviceCode").map(String::as_str), Some("ICLISTENHF1251"));
                    assert!(!q.contains_key("extension"));
                    json_response(
                        200,
                        json!({"files": [
                            {"filename": "A_20210409T000000.000Z.flac", "dateFrom": "2021-04-09T00:00:00.000Z", "fileSize": 10},
                            {"filename": "A_20210409T000500.000Z.flac", "dateFrom": "2021-04-09T00:05:00.000Z"}],
                        "next": {"parameters": {"deviceCode": "ICLISTENHF1251",
                            "dateFrom": "2021-04-09T00:05:00.001Z", "dateTo": "2021-04-10T00:00:00.000Z",
                            "fileExtension": "flac", "returnOptions": "all", "rowLimit": 2, "page": 2,
                            "token": "not-our-token"},
                            "url": "https://example.invalid/api/archivefile/device?token=xyz"}}),
                    )
                }
                1 => {
                    assert_eq!(date_from, "2021-04-09T00:05:00.001Z");
                    assert_eq!(q.get("rowLimit").map(String::as_str), Some("2"));
                    assert_eq!(q.get("page").map(String::as_str), Some("2"));
                    json_response(
                        200,
                        json!({"files": ["A_20210409T001000.000Z.flac"],
                        "next": {"parameters": {"deviceCode": "ICLISTENHF1251",
                            "dateFrom": "2021-04-09T00:10:00.001Z", "dateTo": "2021-04-10T00:00:00.000Z",
                            "fileExtension": "flac", "returnOptions": "all", "rowLimit": 2, "page": 3}}}),
                    )
                }
                2 => {
                    assert_eq!(date_from, "2021-04-09T00:10:00.001Z");
                    json_response(
                        200,
                        json!({"files": [{"filename": "A_20210409T001500.000Z.flac",
                            "dateFrom": "2021-04-09T00:15:00.000Z"}], "next": null}),
                    )
                }
                _ => panic!("too many pages requested"),
            }
        }),
    )])
    .await;
    let client = client_for(&server.base);
    let entries = client
        .list_archive_by_device(
            "ICLISTENHF1251",
            "2021-04-09T00:00:00.000Z",
            "2021-04-10T00:00:00.000Z",
            "flac",
        )
        .await
        .unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e.filename.as_str()).collect();
    assert_eq!(
        names,
        [
            "A_20210409T000000.000Z.flac",
            "A_20210409T000500.000Z.flac",
            "A_20210409T001000.000Z.flac",
            "A_20210409T001500.000Z.flac"
        ]
    );
    assert_eq!(entries[0].file_size(), Some(10));
    assert_eq!(entries[2].date_from, None);
    assert_eq!(client.requests_sent(), 3);
    // The server's `token` in next.parameters was replaced by ours, never sent.
    for (_, query) in server.log() {
        assert_eq!(query.get("token").map(String::as_str), Some(SECRET));
    }
}

#[tokio::test]
async fn archive_listing_by_location_and_repeated_page_guard() {
    let server = fake(vec![(
        "archivefile/location",
        handler(|q, _| {
            assert_eq!(q.get("locationCode").map(String::as_str), Some("BACAX"));
            assert_eq!(
                q.get("deviceCategoryCode").map(String::as_str),
                Some("HYDROPHONE")
            );
            // A broken server that points back at the same page forever.
            let mut parameters: serde_json::Map<String, Value> = q
                .iter()
                .filter(|(k, _)| k.as_str() != "token")
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            parameters.insert("page".into(), json!(1));
            json_response(
                200,
                json!({"files": [], "next": {"parameters": parameters}}),
            )
        }),
    )])
    .await;
    let client = client_for(&server.base);
    let err = client
        .list_archive_by_location("BACAX", "HYDROPHONE", "2021-01-01", "2021-01-02", "flac")
        .await
        .unwrap_err();
    assert!(matches!(err, OncError::InvalidResponse { .. }), "{err:?}");
    assert!(format!("{err}").contains("repeats"), "{err}");
    // The first page, then the second, whose `next` repeats it: detected before sending.
    assert_eq!(client.requests_sent(), 2);
}

#[tokio::test]
async fn discovery_returns_json_and_404_means_nothing_matched() {
    let server = fake(vec![
        (
            "deployments",
            handler(|_, _| json_response(200, json!([{"deviceCode": "X", "begin": "2020-01-01"}]))),
        ),
        ("devices", handler(|_, _| respond(404, &[], ""))),
        (
            "dataProducts",
            handler(|q, _| {
                assert_eq!(q.get("dataProductCode").map(String::as_str), Some("HSD"));
                json_response(200, json!([{"dataProductCode": "HSD", "extension": "mat"}]))
            }),
        ),
    ])
    .await;
    let client = client_for(&server.base);
    let mut params = BTreeMap::new();
    params.insert("deviceCode".to_string(), "X".to_string());
    assert_eq!(
        client.deployments(&params).await.unwrap()[0]["deviceCode"],
        "X"
    );
    assert_eq!(client.devices(&params).await.unwrap(), json!([]));
    params.insert("dataProductCode".to_string(), "HSD".to_string());
    assert_eq!(
        client.data_products(&params).await.unwrap()[0]["extension"],
        "mat"
    );
}

#[tokio::test]
async fn transient_500_then_success_is_retried() {
    let server = fake(vec![(
        "dataProductDelivery/status",
        handler(|_, n| {
            if n == 0 {
                respond(503, &[], "busy")
            } else {
                json_response(200, json!({"searchHdrStatus": "COMPLETED"}))
            }
        }),
    )])
    .await;
    let client = client_for(&server.base);
    let status = client.status(1).await.unwrap();
    assert_eq!(status["searchHdrStatus"], "COMPLETED");
    assert_eq!(client.requests_sent(), 2);
}

/// Every error path, with a server that echoes the token wherever it can: none of the errors'
/// Display or Debug, nor the client's Debug, may contain it.
#[tokio::test]
async fn every_error_path_is_redacted() {
    let echo = format!("https://data.oceannetworks.ca/api/x?token={SECRET}&a=1 raw {SECRET}");
    let echo_for_500 = echo.clone();
    let server = fake(vec![
        (
            "dataProductDelivery/request",
            handler(|q, _| {
                json_response(
                    400,
                    json!({"errors": [{"errorCode": 127,
                        "errorMessage": format!("Invalid token {}", q["token"]),
                        "parameter": "dataProductCode"}]}),
                )
            }),
        ),
        (
            "dataProductDelivery/run",
            handler(|_, _| {
                json_response(
                    400,
                    json!({"errors": [{"errorCode": 127, "errorMessage": "Invalid dpRequestId",
                        "parameter": "dpRequestId"}]}),
                )
            }),
        ),
        (
            "dataProductDelivery/download",
            handler(|q, _| match q["index"].as_str() {
                "1" => json_response(400, json!({"message": format!("cancelled {}", q["token"])})),
                "2" => respond(404, &[], ""),
                "3" => respond(410, &[], ""),
                _ => json_response(
                    202,
                    json!({"status": "queued", "message": format!("for token={}", q["token"])}),
                ),
            }),
        ),
        (
            "dataProductDelivery/status",
            handler(|q, _| {
                json_response(
                    401,
                    json!({"errors": [{"errorCode": 127,
                        "errorMessage": format!("bad token {}", q["token"]), "parameter": "token"}]}),
                )
            }),
        ),
        (
            "dataProductDelivery/cancel",
            handler(move |_, _| respond(500, &[], echo_for_500.clone())),
        ),
        (
            "dataProductDelivery/restart",
            handler(|q, _| respond(200, &[], format!("<html>not json {}</html>", q["token"]))),
        ),
        (
            "archivefile/download",
            handler(|q, _| {
                json_response(
                    400,
                    json!({"errors": [{"errorCode": 96,
                        "errorMessage": format!("unknown file {}", q["filename"]),
                        "parameter": "filename"}]}),
                )
            }),
        ),
        (
            "devices",
            handler(|q, _| respond(418, &[], format!("teapot ?token={}", q["token"]))),
        ),
    ])
    .await;
    let client = client_for(&server.base);
    let dir = tempfile::tempdir().unwrap();
    let mut errors = Vec::new();

    // 400 with ONC's envelope: ONC's message and parameter are shown, permanent, one request.
    let before = client.requests_sent();
    let err = client.request_product(&BTreeMap::new()).await.unwrap_err();
    assert_eq!(client.requests_sent() - before, 1);
    assert!(matches!(err, OncError::Onc { status: 400, .. }), "{err:?}");
    let shown = err.to_string();
    assert!(shown.contains("Invalid token REDACTED"), "{shown}");
    assert!(shown.contains("dataProductCode"), "{shown}");
    assert!(shown.contains("dataProductDelivery/request"), "{shown}");
    assert!(!err.is_transient());
    assert!(!err.is_unknown_id());
    errors.push(err);

    // 400/127 on dpRequestId: the pipeline resubmits.
    let err = client.run_product(99).await.unwrap_err();
    assert!(err.is_unknown_id(), "{err:?}");
    assert!(!err.is_transient());
    errors.push(err);

    // 400 without `errors` from download: a cancelled run.
    let err = client
        .download_product(3, FileIndex::Number(1), dir.path())
        .await
        .unwrap_err();
    assert!(matches!(err, OncError::CancelledRun { .. }), "{err:?}");
    errors.push(err);

    // 404 and 410 are outcomes; a 202 message echoing the token is redacted.
    assert_eq!(
        client
            .download_product(3, FileIndex::Number(2), dir.path())
            .await
            .unwrap(),
        DownloadOutcome::PastEnd
    );
    assert_eq!(
        client
            .download_product(3, FileIndex::Number(3), dir.path())
            .await
            .unwrap(),
        DownloadOutcome::Gone
    );
    let not_ready = client
        .download_product(3, FileIndex::Number(4), dir.path())
        .await
        .unwrap();
    assert!(!format!("{not_ready:?}").contains(SECRET), "{not_ready:?}");

    // 401.
    let err = client.status(1).await.unwrap_err();
    assert!(matches!(err, OncError::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("token"), "{err}");
    errors.push(err);

    // 500, retried until the attempts are exhausted.
    let before = client.requests_sent();
    let err = client.cancel(1).await.unwrap_err();
    assert_eq!(client.requests_sent() - before, 3);
    assert!(matches!(err, OncError::Http { status: 500, .. }), "{err:?}");
    assert!(err.is_transient());
    if let OncError::Http { body_excerpt, .. } = &err {
        assert!(body_excerpt.chars().count() <= 300);
        assert!(body_excerpt.contains("token=REDACTED"), "{body_excerpt}");
    }
    errors.push(err);

    // Not JSON: permanent, one request.
    let before = client.requests_sent();
    let err = client.restart(1).await.unwrap_err();
    assert_eq!(client.requests_sent() - before, 1);
    assert!(matches!(err, OncError::InvalidResponse { .. }), "{err:?}");
    errors.push(err);

    // Unknown archive file (400/96).
    let err = client
        .download_archive("nope.flac", dir.path())
        .await
        .unwrap_err();
    assert!(matches!(err, OncError::Onc { status: 400, .. }), "{err:?}");
    assert!(err.to_string().contains("unknown file nope.flac"), "{err}");
    errors.push(err);

    // Any other status: an excerpt, redacted.
    let err = client.devices(&BTreeMap::new()).await.unwrap_err();
    assert!(matches!(err, OncError::Http { status: 418, .. }), "{err:?}");
    errors.push(err);

    // Connection refused: transient, retried, reported with the attempt count.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let refused = client_for(&format!("http://{closed}"));
    let err = refused.status(1).await.unwrap_err();
    match &err {
        OncError::Transport {
            attempts, endpoint, ..
        } => {
            assert_eq!(*attempts, 3);
            assert_eq!(endpoint, "dataProductDelivery/status");
        }
        other => panic!("expected Transport, got {other:?}"),
    }
    assert_eq!(refused.requests_sent(), 3);
    assert_no_secret(&err, &refused);
    errors.push(err);

    // A body cut short.
    let (base, _) = raw_server(vec![raw_file_response(64, b"short")]).await;
    let cut = client_for(&base);
    let err = cut
        .download_archive("x.flac", dir.path())
        .await
        .unwrap_err();
    assert!(matches!(err, OncError::Truncated { .. }), "{err:?}");
    assert_no_secret(&err, &cut);
    errors.push(err);

    for err in &errors {
        assert_no_secret(err, &client);
        // Endpoints are names, never URLs.
        if let Some(endpoint) = err.endpoint() {
            assert!(
                !endpoint.contains("://") && !endpoint.contains('?'),
                "{endpoint}"
            );
        }
    }
    assert!(files_in(dir.path()).is_empty());
}

#[tokio::test]
async fn stalled_server_times_out_as_transport() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut config = ClientConfig::new(format!("http://{addr}"), Token::new(SECRET));
    config.backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(2), 2);
    config.timeout = Duration::from_millis(150);
    let client = OncClient::new(config).unwrap();
    let err = client.status(1).await.unwrap_err();
    assert!(
        matches!(err, OncError::Transport { attempts: 2, .. }),
        "{err:?}"
    );
    assert_no_secret(&err, &client);
}

#[test]
fn base_url_is_normalised_and_validated() {
    let client = OncClient::new(ClientConfig::new(
        "https://data.oceannetworks.ca",
        Token::new(SECRET),
    ))
    .unwrap();
    assert_eq!(client.base_url(), "https://data.oceannetworks.ca/");
    let client = OncClient::new(ClientConfig::new(
        "http://127.0.0.1:8080/prefix",
        Token::new(SECRET),
    ))
    .unwrap();
    assert_eq!(client.base_url(), "http://127.0.0.1:8080/prefix/");
    let debug = format!("{client:?}");
    assert!(
        debug.contains("Token(***)") && !debug.contains(SECRET),
        "{debug}"
    );

    for bad in [
        "",
        "not a url",
        "ftp://data.oceannetworks.ca/",
        &format!("https://data.oceannetworks.ca/?token={SECRET}"),
        "https://data.oceannetworks.ca/#x",
    ] {
        let err = OncClient::new(ClientConfig::new(bad, Token::new(SECRET))).unwrap_err();
        assert!(
            matches!(err, OncError::InvalidBaseUrl { .. }),
            "{bad}: {err:?}"
        );
        assert!(!format!("{err} {err:?}").contains(SECRET), "{err:?}");
    }
}

#[tokio::test]
async fn clones_share_the_request_counter() {
    let server = fake(vec![(
        "dataProductDelivery/status",
        handler(|_, _| json_response(200, json!({}))),
    )])
    .await;
    let client = client_for(&server.base);
    let clone = client.clone();
    client.status(1).await.unwrap();
    clone.status(1).await.unwrap();
    assert_eq!(client.requests_sent(), 2);
    assert_eq!(clone.requests_sent(), 2);
}

#[test]
fn error_messages_read_after_failed_to() {
    let err = OncError::Onc {
        status: 400,
        errors: vec![OncErrorDetail {
            error_code: 23,
            error_message: "dateFrom is after dateTo".into(),
            parameter: "dateFrom".into(),
        }],
        endpoint: "dataProductDelivery/request".into(),
    };
    assert_eq!(
        format!("failed to {err}"),
        "failed to call ONC dataProductDelivery/request (HTTP 400): dateFrom is after dateTo \
         (parameter `dateFrom`, code 23)"
    );
    let err = OncError::Truncated {
        endpoint: "archivefile/download".into(),
        expected: 10,
        received: 4,
    };
    assert_eq!(
        err.to_string(),
        "download from ONC archivefile/download: body truncated at 4 of 10 bytes"
    );
    let err = OncError::Transport {
        endpoint: "devices".into(),
        source_text: "error sending request: connection refused".into(),
        attempts: 5,
    };
    assert_eq!(
        err.to_string(),
        "reach ONC devices after 5 attempt(s): error sending request: connection refused"
    );
}

/// Callers spawn these futures on a multi-threaded runtime: they must be `Send`.
#[test]
fn call_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let client = client_for("http://127.0.0.1:9/");
    let params = BTreeMap::new();
    let dir = Path::new(".");
    assert_send(&client.request_product(&params));
    assert_send(&client.run_product(1));
    assert_send(&client.status(1));
    assert_send(&client.cancel(1));
    assert_send(&client.restart(1));
    assert_send(&client.download_product(1, FileIndex::Meta, dir));
    assert_send(&client.list_archive_by_device("d", "a", "b", "flac"));
    assert_send(&client.list_archive_by_location("l", "c", "a", "b", "flac"));
    assert_send(&client.download_archive("f", dir));
    assert_send(&client.deployments(&params));
    assert_send(&client.devices(&params));
    assert_send(&client.data_products(&params));
    fn assert_sync_clone<T: Send + Sync + Clone + 'static>() {}
    assert_sync_clone::<OncClient>();
}

#[test]
fn loopback_hosts_bypass_proxies() {
    for (url, expected) in [
        ("http://127.0.0.1:8080/", true),
        ("http://localhost/", true),
        ("http://[::1]:80/", true),
        ("https://data.oceannetworks.ca/", false),
        ("http://10.0.0.1/", false),
    ] {
        assert_eq!(super::client::is_loopback(url), expected, "{url}");
    }
}
