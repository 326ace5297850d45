//! The simulator is as strict as ONC: every answer here is checked for its HTTP status, ONC's
//! `errorCode` and the `parameter` named, over plain HTTP as any client sees it.
//!
//! Covers authentication (401/128 missing token, 401/127 rejected), unknown device and location
//! codes on every service that takes them (400/127), deployments shaping the archive (no file
//! outside a deployment, a window outside every deployment refused at `request`), requests and
//! listings by location across the BACAX swap, the `request` estimates, `devices` and
//! `dataAvailability/dataproducts`.

// Test code panics on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use onc_sim::{SimConfig, SimHandle, start};
use serde_json::Value;

const TOKEN: &str = "5e1f0c8a-test-token-9d2b";

async fn simulator() -> SimHandle {
    install_crypto();
    let config = SimConfig {
        sample_rate: 8_000,
        time_scale: 0.002,
        ..SimConfig::default()
    };
    start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

/// reqwest is built without a default TLS provider in this workspace: pick ring, as onc-pipe's
/// client does (plain HTTP here, but building a client needs one).
fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// GET `api/<service>` with `params`, the token added unless a `token` is given (or `-token`,
/// which sends none); returns the status and the JSON body (`Null` when there is none).
async fn get(sim: &SimHandle, service: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let mut query: Vec<(&str, &str)> = params.to_vec();
    if !params.iter().any(|(k, _)| *k == "token" || *k == "-token") {
        query.push(("token", TOKEN));
    }
    query.retain(|(k, _)| *k != "-token");
    let response = reqwest::Client::new()
        .get(format!("{}api/{service}", sim.base_url))
        .query(&query)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Asserts ONC's error envelope: status, then the first error's code and parameter.
fn assert_error(answer: &(u16, Value), status: u16, code: u64, parameter: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["errors"][0]["errorCode"], code, "{body}");
    assert_eq!(body["errors"][0]["parameter"], parameter, "{body}");
}

const HSD: [(&str, &str); 4] = [
    ("dataProductCode", "HSD"),
    ("extension", "mat"),
    ("dpo_spectralDataDownsample", "2"),
    ("dpo_spectrogramConcatenation", "None"),
];

fn with<'a>(base: &[(&'a str, &'a str)], more: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    base.iter().chain(more).copied().collect()
}

async fn stats(sim: &SimHandle) -> Value {
    reqwest::get(format!("{}_sim/stats", sim.base_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_token_is_401_128_and_a_rejected_one_401_127() {
    let sim = simulator().await;
    let params = [("deviceCode", "ICLISTENHF6324")];
    let missing = get(&sim, "deployments", &with(&params, &[("-token", "")])).await;
    assert_error(&missing, 401, 128, "token");
    let empty = get(&sim, "deployments", &with(&params, &[("token", "")])).await;
    assert_error(&empty, 401, 128, "token");
    let rejected = get(
        &sim,
        "deployments",
        &with(&params, &[("token", "invalid-123")]),
    )
    .await;
    assert_error(&rejected, 401, 127, "token");
    assert_eq!(get(&sim, "deployments", &params).await.0, 200);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_device_and_location_codes_are_400_127_on_every_service() {
    let sim = simulator().await;
    let window = [
        ("dateFrom", "2024-04-01T00:00:00.000Z"),
        ("dateTo", "2024-04-01T00:10:00.000Z"),
    ];
    // Looks like a hydrophone's code, but ONC (simulated) never deployed it.
    let device = [("deviceCode", "ICLISTENHF9999")];
    for (service, extra) in [
        ("dataProductDelivery/request", with(&HSD, &window)),
        (
            "archivefile/device",
            with(&window, &[("fileExtension", "flac")]),
        ),
        ("devices", vec![]),
        ("deployments", vec![]),
        ("dataProducts", vec![("dataProductCode", "HSD")]),
        ("dataAvailability/dataproducts", window.to_vec()),
    ] {
        let answer = get(&sim, service, &with(&device, &extra)).await;
        assert_error(&answer, 400, 127, "deviceCode");
        let message = answer.1["errors"][0]["errorMessage"].as_str().unwrap();
        assert!(message.contains("ICLISTENHF9999"), "{service}: {message}");
    }
    let location = [
        ("locationCode", "NOPE"),
        ("deviceCategoryCode", "HYDROPHONE"),
    ];
    for (service, extra) in [
        ("dataProductDelivery/request", with(&HSD, &window)),
        ("archivefile/location", window.to_vec()),
        ("dataAvailability/dataproducts", window.to_vec()),
        ("locations", vec![]),
    ] {
        let answer = get(&sim, service, &with(&location, &extra)).await;
        assert_error(&answer, 400, 127, "locationCode");
    }
    // A location without its device category: a missing parameter.
    let answer = get(
        &sim,
        "dataProductDelivery/request",
        &with(&with(&HSD, &window), &[("locationCode", "BACAX")]),
    )
    .await;
    assert_error(&answer, 400, 128, "deviceCategoryCode");
    assert_eq!(stats(&sim).await["submissions"], 0, "nothing was submitted");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_exist_only_while_their_device_is_deployed() {
    let sim = simulator().await;
    // ICLISTENHF6324 is at SEVIP since 2021-03-01: a request in 2019 is refused at once.
    let answer = get(
        &sim,
        "dataProductDelivery/request",
        &with(
            &HSD,
            &[
                ("deviceCode", "ICLISTENHF6324"),
                ("dateFrom", "2019-06-01T00:00:00.000Z"),
                ("dateTo", "2019-06-01T00:10:00.000Z"),
            ],
        ),
    )
    .await;
    assert_error(&answer, 400, 127, "dateFrom,dateTo");
    let message = answer.1["errors"][0]["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("ICLISTENHF6324 at SEVIP from 2021-03-01T00:00:00.000Z (still deployed)"),
        "{message}"
    );
    assert_eq!(stats(&sim).await["submissions"], 0);
    // Across the deployment's start: only files wholly after it.
    let (status, body) = get(
        &sim,
        "archivefile/device",
        &[
            ("deviceCode", "ICLISTENHF6324"),
            ("dateFrom", "2021-02-28T23:00:00.000Z"),
            ("dateTo", "2021-03-01T01:00:00.000Z"),
            ("fileExtension", "flac"),
            ("returnOptions", "all"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let files = body["files"].as_array().unwrap();
    assert!((10..=12).contains(&files.len()), "{body}");
    for file in files {
        let from = file["dateFrom"].as_str().unwrap();
        assert!(from >= "2021-03-01T00:00:00.000Z", "{file}");
    }
    // FGPD's hydrophone was out of the water from 2022-09-01 to 2023-03-01: an empty listing by
    // device, and a file the layout would have there does not download.
    let (status, body) = get(
        &sim,
        "archivefile/device",
        &[
            ("deviceCode", "ICLISTENHF1951"),
            ("dateFrom", "2022-12-01T00:00:00.000Z"),
            ("dateTo", "2022-12-01T01:00:00.000Z"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["files"], serde_json::json!([]), "{body}");
    let layout = onc_sim::archive::files_starting_in(
        &onc_sim::archive::DeviceProfile {
            code: "ICLISTENHF1951".into(),
            sample_rate: 8_000,
        },
        1_669_852_800_000, // 2022-12-01
        1_669_856_400_000,
    );
    let name = layout.first().unwrap().filename("flac");
    let answer = get(&sim, "archivefile/download", &[("filename", &name)]).await;
    assert_error(&answer, 400, 96, "filename");
    // By location the same gap is ONC's 400/127.
    let answer = get(
        &sim,
        "archivefile/location",
        &[
            ("locationCode", "FGPD"),
            ("deviceCategoryCode", "HYDROPHONE"),
            ("dateFrom", "2022-12-01T00:00:00.000Z"),
            ("dateTo", "2022-12-01T01:00:00.000Z"),
        ],
    )
    .await;
    assert_error(&answer, 400, 127, "dateFrom,dateTo");
    sim.stop().await;
}

/// Across the BACAX swap at 2023-06-15T18:00Z a listing and a product request by location give
/// the files of both devices, each named by its own code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_location_yields_the_files_of_whichever_device_was_there() {
    let sim = simulator().await;
    let swap = [
        ("locationCode", "BACAX"),
        ("deviceCategoryCode", "HYDROPHONE"),
        ("dateFrom", "2023-06-15T17:30:00.000Z"),
        ("dateTo", "2023-06-15T18:30:00.000Z"),
    ];
    let (status, body) = get(
        &sim,
        "archivefile/location",
        &with(&swap, &[("fileExtension", "flac")]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let before: Vec<&&str> = names
        .iter()
        .filter(|n| n.starts_with("ICLISTENHF1251_"))
        .collect();
    let after: Vec<&&str> = names
        .iter()
        .filter(|n| n.starts_with("ICLISTENHF6406_"))
        .collect();
    assert_eq!(before.len() + after.len(), names.len(), "{names:?}");
    assert!(before.len() >= 4 && after.len() >= 4, "{names:?}");
    assert!(
        before
            .iter()
            .all(|n| **n < "ICLISTENHF1251_20230615T180000"),
        "{names:?}"
    );
    assert!(
        after.iter().all(|n| **n > "ICLISTENHF6406_20230615T180000"),
        "{names:?}"
    );

    // A product request by location: one run, files of both devices.
    let (status, request) = get(&sim, "dataProductDelivery/request", &with(&HSD, &swap)).await;
    assert_eq!(status, 200, "{request}");
    let id = request["dpRequestId"].to_string();
    let mut run = Value::Null;
    for _ in 0..2_000 {
        let (status, body) = get(&sim, "dataProductDelivery/run", &[("dpRequestId", &id)]).await;
        run = body[0].clone();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(run["status"], "complete", "{run}");
    let count = run["fileCount"].as_u64().unwrap();
    assert!((10..=13).contains(&count), "{run}");
    let run_id = run["dpRunId"].to_string();
    let mut devices = Vec::new();
    for index in 1..=count {
        let response = reqwest::Client::new()
            .head(format!("{}api/dataProductDelivery/download", sim.base_url))
            .query(&[
                ("token", TOKEN),
                ("dpRunId", &run_id),
                ("index", &index.to_string()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let disposition = response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_owned();
        let name = disposition.trim_start_matches("attachment; filename=");
        devices.push(name.split('_').next().unwrap().to_owned());
    }
    assert_eq!(devices.first().map(String::as_str), Some("ICLISTENHF1251"));
    assert_eq!(devices.last().map(String::as_str), Some("ICLISTENHF6406"));
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_estimates_use_onc_forms_and_the_run_model() {
    // At 64 kHz and time scale 1: eleven or twelve plotRes files, as in the seed (ONC: 48 MB,
    // 35 s for twelve).
    install_crypto();
    let sim = start(SimConfig::default(), SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let (status, body) = get(
        &sim,
        "dataProductDelivery/request",
        &with(
            &HSD,
            &[
                ("deviceCode", "ICLISTENHF6324"),
                ("dateFrom", "2024-04-01T00:03:00.000Z"),
                ("dateTo", "2024-04-01T00:58:00.000Z"),
            ],
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // About 4 MB per file (the simulator's measured size, ONC's 48 MB for 12); 5 s + 2.5 s per
    // file.
    let size = body["estimatedFileSize"].as_str().unwrap();
    assert!(["44 MB", "48 MB"].contains(&size), "{body}");
    let time = body["estimatedProcessingTime"].as_str().unwrap();
    assert!(["33 s", "35 s"].contains(&time), "{body}");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_and_data_availability_answer_from_the_registry() {
    let sim = simulator().await;
    let (status, body) = get(
        &sim,
        "devices",
        &[
            ("locationCode", "BACAX"),
            ("deviceCategoryCode", "HYDROPHONE"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let codes: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["deviceCode"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["ICLISTENHF1251", "ICLISTENHF6406"]);
    assert_eq!(body[0]["dataRating"][0]["samplePeriod"], 1.0 / 8000.0);
    assert_eq!(
        body[1]["dataRating"][0]["dateFrom"],
        "2023-06-15T18:00:00.000Z"
    );
    let (status, _) = get(&sim, "devices", &[("deviceCategoryCode", "CTD")]).await;
    assert_eq!(status, 404);

    // Two hours around FGPD's return from its gap: files from 2023-03-01 only.
    let (status, body) = get(
        &sim,
        "dataAvailability/dataproducts",
        &[
            ("deviceCode", "ICLISTENHF1951"),
            ("dateFrom", "2023-02-28T23:00:00.000Z"),
            ("dateTo", "2023-03-01T01:00:00.000Z"),
            ("extension", "flac"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let products = body["availableDataProducts"].as_array().unwrap();
    assert_eq!(products.len(), 1, "{body}");
    let flac = &products[0];
    assert_eq!(flac["dataProductCode"], "AD");
    assert_eq!(flac["deviceCode"], "ICLISTENHF1951");
    assert!(
        flac["dateFrom"].as_str().unwrap() >= "2023-03-01T00:00:00.000Z",
        "{flac}"
    );
    let count = flac["fileCount"].as_u64().unwrap();
    assert!((10..=12).contains(&count), "{flac}");
    // The listing's sizes, summed: 300 s at 8 kHz, 24-bit (7.2 MB), half of it for FLAC.
    let total = flac["totalFileSize"].as_u64().unwrap();
    assert!(
        total > count * 3_500_000 && total <= count * 3_602_000,
        "{flac}"
    );
    // Within the gap: nothing, and that is not an error.
    let (status, body) = get(
        &sim,
        "dataAvailability/dataproducts",
        &[
            ("locationCode", "FGPD"),
            ("dateFrom", "2022-12-01T00:00:00.000Z"),
            ("dateTo", "2022-12-02T00:00:00.000Z"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["availableDataProducts"], serde_json::json!([]));
    sim.stop().await;
}
