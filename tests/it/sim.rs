//! onc-pipe's own ONC client against the built-in simulator: the whole status machine, listing
//! pagination, retries under every injected fault, and token redaction.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use onc_pipe::onc::{
    Backoff, ClientConfig, DownloadOutcome, FileIndex, OncClient, OncError, Token,
};
use onc_sim::faults::FaultConfig;
use onc_sim::{SimConfig, SimHandle, start};

const TOKEN: &str = "5e1f0c8a-test-token-9d2b";

fn fast_config() -> SimConfig {
    SimConfig {
        sample_rate: 8_000,
        time_scale: 0.002,
        ..SimConfig::default()
    }
}

async fn simulator(config: SimConfig) -> SimHandle {
    start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

fn client(sim: &SimHandle, token: &str) -> OncClient {
    let mut config = ClientConfig::new(sim.base_url.clone(), Token::new(token.to_owned()));
    config.backoff = Backoff::new(Duration::from_millis(5), Duration::from_millis(40), 8);
    config.timeout = Duration::from_secs(10);
    OncClient::new(config).unwrap()
}

fn hsd(from: &str, to: &str) -> BTreeMap<String, String> {
    [
        ("deviceCode", "ICLISTENHF6324"),
        ("dataProductCode", "HSD"),
        ("extension", "mat"),
        ("dateFrom", from),
        ("dateTo", to),
        ("dpo_spectralDataDownsample", "2"),
        ("dpo_hydrophoneDataDiversionMode", "OD"),
        ("dpo_spectrogramConcatenation", "None"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Polls `run` until complete; returns (dpRunId, fileCount, number of 202 answers seen).
async fn run_to_completion(client: &OncClient, request_id: u64) -> (u64, u32, usize) {
    for pending in 0..2_000 {
        let poll = client.run_product(request_id).await.unwrap();
        let run = poll.runs[0].clone();
        if poll.complete {
            return (run.dp_run_id, run.file_count, pending);
        }
        assert_eq!(run.file_count, 0, "fileCount is 0 until complete");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("run never completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_run_download_follows_onc_status_machine() {
    let sim = simulator(fast_config()).await;
    let client = client(&sim, TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let request = client
        .request_product(&hsd("2024-04-01T00:00:00.000Z", "2024-04-01T00:12:00.000Z"))
        .await
        .unwrap();
    assert!(request.estimated_processing_time.is_some());
    // Before `run` the request has no run: downloading by an unknown run id is 400/127.
    let early = client
        .download_product(1, FileIndex::Number(1), dir.path())
        .await
        .unwrap_err();
    assert!(early.is_unknown_id(), "{early}");
    let first = client.run_product(request.dp_request_id).await.unwrap();
    assert!(!first.complete, "a fresh run is queued or running (202)");
    let run_id = first.runs[0].dp_run_id;
    match client
        .download_product(run_id, FileIndex::Number(1), dir.path())
        .await
        .unwrap()
    {
        DownloadOutcome::NotReady { status, message } => {
            assert!(status == "queued" || status == "running", "{status}");
            assert!(!message.is_empty());
        }
        other => panic!("expected 202 while running, got {other:?}"),
    }
    let (same_run, file_count, _) = run_to_completion(&client, request.dp_request_id).await;
    assert_eq!(same_run, run_id, "polling `run` returns the same dpRunId");
    assert!(
        (3..=4).contains(&file_count),
        "12 minutes of off-grid 5-minute files: {file_count}"
    );
    for index in 1..=file_count {
        match client
            .download_product(run_id, FileIndex::Number(index), dir.path())
            .await
            .unwrap()
        {
            DownloadOutcome::Ready(file) => {
                assert!(
                    file.filename.ends_with("-spect_plotRes.mat"),
                    "{}",
                    file.filename
                );
                assert_eq!(std::fs::metadata(&file.temp_path).unwrap().len(), file.size);
            }
            other => panic!("expected a file, got {other:?}"),
        }
    }
    let past = client
        .download_product(run_id, FileIndex::Number(file_count + 1), dir.path())
        .await
        .unwrap();
    assert_eq!(past, DownloadOutcome::PastEnd);
    match client
        .download_product(run_id, FileIndex::Meta, dir.path())
        .await
        .unwrap()
    {
        DownloadOutcome::Ready(file) => assert!(
            file.filename.ends_with("_MAT_META.xml"),
            "{}",
            file.filename
        ),
        other => panic!("expected the metadata file, got {other:?}"),
    }
    let stats = sim.stats();
    assert_eq!(stats.submissions, 1);
    assert_eq!(stats.runs, 1);
    assert_eq!(stats.files_served, u64::from(file_count) + 1);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_data_gives_204_and_expired_results_give_410() {
    let sim = simulator(fast_config()).await;
    let client = client(&sim, TOKEN);
    let dir = tempfile::tempdir().unwrap();
    // A window within the device's deployment that falls in an outage (between two files more
    // than a file apart): a valid request with no files. (Before the deployment, in 2019, the
    // simulator refuses the request itself, as ONC does: 400/127.)
    let layout = onc_sim::archive::files_starting_in(
        &onc_sim::archive::DeviceProfile {
            code: "ICLISTENHF6324".into(),
            sample_rate: 8_000,
        },
        1_711_929_600_000, // 2024-04-01
        1_712_016_000_000,
    );
    let (gap_from, gap_to) = layout
        .windows(2)
        .find(|pair| pair[1].start_ms - pair[0].end_ms() > 10_000)
        .map(|pair| (pair[0].end_ms() + 1_000, pair[1].start_ms - 1_000))
        .unwrap();
    let date =
        |ms| onc_format::stamp::onc_date(chrono::DateTime::from_timestamp_millis(ms).unwrap());
    let empty = client
        .request_product(&hsd(&date(gap_from), &date(gap_to)))
        .await
        .unwrap();
    let (run_id, count, _) = run_to_completion(&client, empty.dp_request_id).await;
    assert_eq!(count, 0);
    let none = client
        .download_product(run_id, FileIndex::Number(1), dir.path())
        .await
        .unwrap();
    assert_eq!(none, DownloadOutcome::NoData);
    sim.stop().await;

    // Retention 0: results are deleted as soon as they are made.
    let sim = simulator(SimConfig {
        retention_s: 0.0,
        ..fast_config()
    })
    .await;
    let client = self::client(&sim, TOKEN);
    let request = client
        .request_product(&hsd("2024-04-01T00:00:00.000Z", "2024-04-01T00:05:00.000Z"))
        .await
        .unwrap();
    let (run_id, _, _) = run_to_completion(&client, request.dp_request_id).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let gone = client
        .download_product(run_id, FileIndex::Number(1), dir.path())
        .await
        .unwrap();
    assert_eq!(gone, DownloadOutcome::Gone);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_run_download_is_400_without_errors_and_restart_keeps_the_run() {
    let config = SimConfig {
        time_scale: 0.05,
        ..fast_config()
    };
    let sim = simulator(config).await;
    let client = client(&sim, TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let request = client
        .request_product(&hsd("2024-04-01T00:00:00.000Z", "2024-04-01T00:30:00.000Z"))
        .await
        .unwrap();
    let run = client
        .run_product(request.dp_request_id)
        .await
        .unwrap()
        .runs[0]
        .dp_run_id;
    let cancelled = client.cancel(request.dp_request_id).await.unwrap();
    assert_eq!(cancelled[0].status, "cancelled");
    let error = client
        .download_product(run, FileIndex::Number(1), dir.path())
        .await
        .unwrap_err();
    assert!(matches!(error, OncError::CancelledRun { .. }), "{error:?}");
    let restarted = client.restart(request.dp_request_id).await.unwrap();
    assert_eq!(restarted[0].dp_run_id, run, "restart keeps the dpRunId");
    let (same, count, _) = run_to_completion(&client, request.dp_request_id).await;
    assert_eq!(same, run);
    assert!(count >= 6);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onc_errors_carry_code_message_and_parameter() {
    let sim = simulator(fast_config()).await;
    let client = client(&sim, TOKEN);
    let mut bad = hsd("2024-04-01T00:00:00.000Z", "2024-04-01T00:05:00.000Z");
    bad.insert("extension".into(), "xyz".into());
    let error = client.request_product(&bad).await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("Invalid extension for HSD: xyz") && text.contains("extension"),
        "{text}"
    );
    let mut reversed = hsd("2024-04-02T00:00:00.000Z", "2024-04-01T00:00:00.000Z");
    reversed.remove("dpo_spectralDataDownsample");
    let error = client.request_product(&reversed).await.unwrap_err();
    assert!(
        error.to_string().contains("dateFrom is after dateTo"),
        "{error}"
    );
    let unauthorized = self::client(&sim, "invalid-token")
        .request_product(&bad)
        .await
        .unwrap_err();
    assert!(
        matches!(unauthorized, OncError::Unauthorized { .. }),
        "{unauthorized:?}"
    );
    let unknown_run = client.run_product(42).await.unwrap_err();
    assert!(unknown_run.is_unknown_id(), "{unknown_run}");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_listing_follows_pagination_and_downloads_files() {
    let config = SimConfig {
        row_limit: 4,
        ..fast_config()
    };
    let sim = simulator(config).await;
    let client = client(&sim, TOKEN);
    let entries = client
        .list_archive_by_device(
            "ICLISTENHF6324",
            "2024-04-01T00:00:00.000Z",
            "2024-04-01T01:00:00.000Z",
            "flac",
        )
        .await
        .unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e.filename.as_str()).collect();
    assert!((11..=13).contains(&names.len()), "{names:?}");
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, names, "pages are in order and never repeat a file");
    let listing_calls = sim.stats().requests_by_endpoint["archivefile/device"];
    assert!(
        listing_calls >= 3,
        "{listing_calls} pages for {} files at 4 per page",
        names.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = client.download_archive(names[0], dir.path()).await.unwrap();
    assert_eq!(file.filename, names[0]);
    let reader = claxon::FlacReader::open(&file.temp_path).unwrap();
    assert_eq!(reader.streaminfo().bits_per_sample, 24);
    assert_eq!(reader.streaminfo().sample_rate, 8_000);
    let error = client
        .download_archive("ICLISTENHF6324_20240401T000000.000Z.flac", dir.path())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("File not found"), "{error}");
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_injected_fault_is_retried_to_success() {
    for (name, faults) in [
        (
            "5xx",
            FaultConfig {
                server_error_rate: 0.3,
                seed: 1,
                ..FaultConfig::default()
            },
        ),
        (
            "429",
            FaultConfig {
                rate_limit_rate: 0.3,
                seed: 2,
                ..FaultConfig::default()
            },
        ),
        (
            "reset",
            FaultConfig {
                reset_rate: 0.4,
                seed: 3,
                ..FaultConfig::default()
            },
        ),
        (
            "truncate",
            FaultConfig {
                truncate_rate: 0.4,
                seed: 4,
                ..FaultConfig::default()
            },
        ),
    ] {
        let sim = simulator(SimConfig {
            faults,
            ..fast_config()
        })
        .await;
        let client = client(&sim, TOKEN);
        let dir = tempfile::tempdir().unwrap();
        let request = client
            .request_product(&hsd("2024-04-01T00:00:00.000Z", "2024-04-01T00:20:00.000Z"))
            .await
            .unwrap();
        let (run_id, count, _) = run_to_completion(&client, request.dp_request_id).await;
        for index in 1..=count {
            match client
                .download_product(run_id, FileIndex::Number(index), dir.path())
                .await
            {
                Ok(DownloadOutcome::Ready(file)) => {
                    let bytes = std::fs::read(&file.temp_path).unwrap();
                    assert_eq!(bytes.len() as u64, file.size, "{name}");
                    assert_eq!(
                        blake3::hash(&bytes).to_hex().to_string(),
                        file.blake3,
                        "{name}"
                    );
                }
                other => panic!("{name}: file {index}: {other:?}"),
            }
        }
        assert!(
            sim.stats().faults_injected > 0,
            "{name}: no fault was injected"
        );
        let leftovers = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(".part-"))
            .count();
        assert_eq!(
            leftovers,
            usize::from(u8::try_from(count).unwrap()),
            "{name}: only finished temp files remain"
        );
        sim.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_queues_runs_beyond_the_limit() {
    let config = SimConfig {
        capacity: 2,
        time_scale: 0.01,
        ..fast_config()
    };
    let sim = simulator(config).await;
    let client = client(&sim, TOKEN);
    let mut ids = Vec::new();
    for hour in 0..3 {
        let from = format!("2024-04-01T0{hour}:00:00.000Z");
        let to = format!("2024-04-01T0{hour}:05:00.000Z");
        ids.push(
            client
                .request_product(&hsd(&from, &to))
                .await
                .unwrap()
                .dp_request_id,
        );
    }
    for id in &ids {
        client.run_product(*id).await.unwrap();
    }
    let third = client.status(ids[2]).await.unwrap();
    assert_eq!(third["status"], "queued", "{third}");
    for id in &ids {
        run_to_completion(&client, *id).await;
    }
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_never_appears_in_errors() {
    let sim = simulator(SimConfig {
        faults: FaultConfig {
            server_error_rate: 1.0,
            seed: 9,
            ..FaultConfig::default()
        },
        ..fast_config()
    })
    .await;
    let client = client(&sim, TOKEN);
    let error = client
        .request_product(&hsd("2024-04-01T00:00:00.000Z", "2024-04-01T00:05:00.000Z"))
        .await
        .unwrap_err();
    for text in [
        error.to_string(),
        format!("{error:?}"),
        format!("{client:?}"),
    ] {
        assert!(!text.contains(TOKEN), "{text}");
    }
    sim.stop().await;
    // A closed port: transport errors carry the URL in reqwest; ours must not.
    let error = client.run_product(1).await.unwrap_err();
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(TOKEN), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_method_style_and_head_requests_work() {
    let sim = simulator(fast_config()).await;
    // reqwest is built without a default TLS provider: pick ring, as OncClient::new does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let listing: serde_json::Value = http
        .get(format!("{}api/archivefiles", sim.base_url))
        .query(&[
            ("method", "getListByDevice"),
            ("token", TOKEN),
            ("deviceCode", "ICLISTENHF6324"),
            ("dateFrom", "2024-04-01T00:00:00.000Z"),
            ("dateTo", "2024-04-01T00:20:00.000Z"),
            ("fileExtension", "wav"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let files = listing["files"].as_array().unwrap();
    assert!((3..=5).contains(&files.len()), "{listing}");
    let name = files[0].as_str().unwrap();
    let head = http
        .head(format!("{}api/archivefiles", sim.base_url))
        .query(&[("method", "getFile"), ("token", TOKEN), ("filename", name)])
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    let length: u64 = head.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(length > 44, "a WAV header and samples");
    assert_eq!(
        head.headers()["content-disposition"],
        format!("attachment; filename={name}").as_str()
    );
    assert!(head.bytes().await.unwrap().is_empty(), "HEAD has no body");
    let stats: serde_json::Value = http
        .get(format!("{}_sim/stats", sim.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["requests_by_endpoint"]["archivefile/device"], 1);
    assert_eq!(stats["requests_by_endpoint"]["archivefile/download"], 1);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_runs_and_slow_answers_are_injected() {
    let faults = FaultConfig {
        failed_run_rate: 1.0,
        slow_ms: 30,
        seed: 5,
        ..FaultConfig::default()
    };
    let sim = simulator(SimConfig {
        faults,
        ..fast_config()
    })
    .await;
    let client = client(&sim, TOKEN);
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let request = client
        .request_product(&hsd("2024-04-01T00:00:00.000Z", "2024-04-01T00:05:00.000Z"))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(30),
        "slow-ms delays every answer"
    );
    let (run_id, count, _) = run_to_completion(&client, request.dp_request_id).await;
    assert_eq!(count, 0);
    let poll = client.run_product(request.dp_request_id).await.unwrap();
    assert_eq!(poll.runs[0].status, "error");
    match client
        .download_product(run_id, FileIndex::Number(1), dir.path())
        .await
        .unwrap()
    {
        DownloadOutcome::NotReady { status, message } => {
            assert_eq!(status, "error");
            assert!(message.contains("failed"), "{message}");
        }
        other => panic!("expected 202 with status error, got {other:?}"),
    }
    sim.stop().await;
}

/// The simulator says its time scale on every answer; a client on loopback believes it, so its
/// timers run at the simulator's pace. 429s are counted (the executor's admission backs off on
/// them) and their Retry-After is a floor under the retry delay.
#[tokio::test]
async fn the_client_learns_the_simulators_time_scale_and_counts_throttling() {
    let sim = simulator(SimConfig {
        time_scale: 0.05,
        faults: FaultConfig {
            rate_limit_rate: 1.0,
            ..FaultConfig::default()
        },
        ..fast_config()
    })
    .await;
    let mut config = ClientConfig::new(sim.base_url.clone(), Token::new(TOKEN.to_owned()));
    config.backoff = Backoff::new(Duration::from_millis(5), Duration::from_millis(5), 2);
    let client = OncClient::new(config).unwrap();
    assert_eq!(client.time_scale(), 1.0, "nothing heard yet: ONC's pace");
    // Every answer is a 429 (Retry-After: 1 s): two attempts, both counted.
    let started = std::time::Instant::now();
    assert!(
        client
            .request_product(&hsd("2024-04-01T00:00:00.000Z", "2024-04-01T00:05:00.000Z"))
            .await
            .is_err()
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After is a floor"
    );
    assert_eq!(client.throttled(), 2);
    assert_eq!(client.time_scale(), 0.05);
    assert_eq!(
        client.scaled(Duration::from_secs(3)),
        Duration::from_millis(150)
    );
    sim.stop().await;
}
