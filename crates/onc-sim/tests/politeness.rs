//! Per-token politeness accounting, over plain HTTP as any client sees it.
//!
//! Covers `SimStats::per_token` (two tokens counted apart, keyed by a label that is not the
//! token) and `max_downloads_in_flight` (two concurrent downloads reach 2, sequential ones 1, a
//! download whose client went away mid-body is let go, so the next one counts 1 again).

// Test code panics on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use onc_sim::archive::{DeviceProfile, files_starting_in};
use onc_sim::faults::FaultConfig;
use onc_sim::{SimConfig, SimHandle, start, token_label};
use serde_json::Value;

const ALICE: &str = "5e1f0c8a-alice-token-9d2b";
const BOB: &str = "77aa31d0-bob-token-4c1e";

/// A simulator whose file bodies are sent at `throttle` bytes per second (0: at once).
async fn simulator(throttle: u64) -> SimHandle {
    // reqwest is built without a default TLS provider in this workspace: building a client
    // needs one, even for plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = SimConfig {
        sample_rate: 8_000,
        time_scale: 0.002,
        faults: FaultConfig {
            throttle_bytes_per_s: throttle,
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    };
    start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

/// GET `api/<service>` with `params` and `token`; the status and the JSON body (`Null` if none).
async fn get(sim: &SimHandle, service: &str, token: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let mut query = params.to_vec();
    query.push(("token", token));
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

/// A one-file HSD request at ICLISTENHF6324 (deployed at SEVIP since 2021-03-01), run.
async fn submit_and_run(sim: &SimHandle, token: &str) {
    let (status, body) = get(
        sim,
        "dataProductDelivery/request",
        token,
        &[
            ("deviceCode", "ICLISTENHF6324"),
            ("dateFrom", "2024-01-01T00:00:00.000Z"),
            ("dateTo", "2024-01-01T00:05:00.000Z"),
            ("dataProductCode", "HSD"),
            ("extension", "mat"),
            ("dpo_spectralDataDownsample", "2"),
            ("dpo_spectrogramConcatenation", "None"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["dpRequestId"].to_string();
    let (status, body) = get(
        sim,
        "dataProductDelivery/run",
        token,
        &[("dpRequestId", &id)],
    )
    .await;
    assert!(status == 200 || status == 202, "{status} {body}");
}

/// The archive name of a FLAC file ICLISTENHF6324 holds (2024-01-01, deployed).
fn archived_flac() -> String {
    let profile = DeviceProfile {
        code: "ICLISTENHF6324".into(),
        sample_rate: 8_000,
    };
    files_starting_in(&profile, 1_704_067_200_000, 1_704_067_500_000)
        .first()
        .unwrap()
        .filename("flac")
}

/// Starts a download of `name`: the answer with its headers, its body not read yet.
async fn start_download(sim: &SimHandle, token: &str, name: &str) -> reqwest::Response {
    let response = reqwest::Client::new()
        .get(format!("{}api/archivefile/download", sim.base_url))
        .query(&[("filename", name), ("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response
}

/// Reads a download's body to its end; its length.
async fn finish(response: reqwest::Response) -> usize {
    response.bytes().await.unwrap().len()
}

/// Waits (at most 10 s) until the simulator holds no download in flight: the server lets a
/// body go just after its last chunk, or once it notices the client left.
async fn wait_no_download_in_flight(sim: &SimHandle) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.downloads_in_flight() != 0 {
        assert!(
            Instant::now() < deadline,
            "still {} downloads in flight",
            sim.downloads_in_flight()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tokens_are_counted_apart_under_labels_that_are_not_the_tokens() {
    let sim = simulator(0).await;
    submit_and_run(&sim, ALICE).await;
    submit_and_run(&sim, ALICE).await;
    submit_and_run(&sim, BOB).await;
    let name = archived_flac();
    finish(start_download(&sim, BOB, &name).await).await;
    wait_no_download_in_flight(&sim).await;

    let stats = sim.stats();
    assert_eq!(stats.submissions, 3);
    assert_eq!(stats.per_token.len(), 2, "{stats:?}");
    let alice = &stats.per_token[&token_label(ALICE)];
    let bob = &stats.per_token[&token_label(BOB)];
    assert_eq!(alice.submissions, 2);
    assert_eq!(bob.submissions, 1);
    // Only Alice submitted twice: only she has a gap, and it is the global one.
    assert!(alice.min_submission_gap_s.is_some());
    assert_eq!(bob.min_submission_gap_s, None);
    assert_eq!(stats.min_submission_gap_s, alice.min_submission_gap_s);
    assert!(alice.max_runs_in_flight >= 1 && bob.max_runs_in_flight >= 1);
    // The global mark is "the most runs of one token": the greater of the two.
    assert_eq!(
        stats.max_runs_in_flight,
        alice.max_runs_in_flight.max(bob.max_runs_in_flight)
    );
    assert_eq!(alice.max_downloads_in_flight, 0);
    assert_eq!(bob.max_downloads_in_flight, 1);

    // The tokens appear nowhere in the accounting, as served to any client.
    let served = reqwest::get(format!("{}_sim/stats", sim.base_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let parsed: onc_sim::SimStats = serde_json::from_str(&served).unwrap();
    // Not the whole struct: serde_json's default float parsing may be off by the last bit of
    // `min_submission_gap_s`, which says nothing about the accounting.
    assert_eq!(
        parsed.max_downloads_in_flight,
        stats.max_downloads_in_flight
    );
    let submissions = |stats: &onc_sim::SimStats| -> Vec<(String, u64)> {
        stats
            .per_token
            .iter()
            .map(|(label, own)| (label.clone(), own.submissions))
            .collect()
    };
    assert_eq!(submissions(&parsed), submissions(&stats));
    for token in [ALICE, BOB] {
        assert!(!served.contains(token), "{served}");
    }
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_downloads_reach_two_in_flight() {
    // A body takes over a second: both answers start long before either ends.
    let sim = simulator(4_000_000).await;
    let name = archived_flac();
    let (first, second) = tokio::join!(
        start_download(&sim, ALICE, &name),
        start_download(&sim, ALICE, &name)
    );
    assert_eq!(sim.downloads_in_flight(), 2);
    let (first, second) = tokio::join!(finish(first), finish(second));
    assert_eq!(first, second);
    wait_no_download_in_flight(&sim).await;
    let stats = sim.stats();
    assert_eq!(stats.max_downloads_in_flight, 2);
    assert_eq!(
        stats.per_token[&token_label(ALICE)].max_downloads_in_flight,
        2
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_downloads_stay_at_one_in_flight() {
    let sim = simulator(0).await;
    let name = archived_flac();
    for token in [ALICE, ALICE, BOB] {
        assert!(finish(start_download(&sim, token, &name).await).await > 0);
        wait_no_download_in_flight(&sim).await;
    }
    let stats = sim.stats();
    assert_eq!(stats.files_served, 3);
    assert_eq!(stats.max_downloads_in_flight, 1);
    assert_eq!(
        stats.per_token[&token_label(ALICE)].max_downloads_in_flight,
        1
    );
    assert_eq!(
        stats.per_token[&token_label(BOB)].max_downloads_in_flight,
        1
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_dropped_mid_body_is_let_go() {
    let sim = simulator(4_000_000).await;
    let name = archived_flac();
    let mut dropped = start_download(&sim, ALICE, &name).await;
    // A first chunk, then the client goes away with the rest unread.
    assert!(dropped.chunk().await.unwrap().is_some());
    assert_eq!(sim.downloads_in_flight(), 1);
    drop(dropped);
    // The server notices at its next write to the closed connection (throttled: 0.1 s).
    wait_no_download_in_flight(&sim).await;
    // Had the dropped download stayed counted, this one would make two.
    let size = finish(start_download(&sim, ALICE, &name).await).await;
    assert!(size > 0);
    wait_no_download_in_flight(&sim).await;
    let stats = sim.stats();
    assert_eq!(stats.max_downloads_in_flight, 1);
    assert_eq!(
        stats.per_token[&token_label(ALICE)].max_downloads_in_flight,
        1
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_names_a_file_without_serving_it() {
    let sim = simulator(0).await;
    let name = archived_flac();
    let head = reqwest::Client::new()
        .head(format!("{}api/archivefile/download", sim.base_url))
        .query(&[("filename", name.as_str()), ("token", ALICE)])
        .send()
        .await
        .unwrap();
    assert_eq!(head.status().as_u16(), 200);
    let disposition = head.headers()["content-disposition"].to_str().unwrap();
    assert_eq!(disposition, format!("attachment; filename={name}"));
    let length: usize = head.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(head.bytes().await.unwrap().is_empty());
    let stats = sim.stats();
    assert_eq!(stats.files_named_by_head, 1);
    assert_eq!(stats.files_served, 0);
    assert_eq!(stats.bytes_served, 0);
    assert_eq!(stats.max_downloads_in_flight, 0);
    // The file served after it is served once, whole, with the length the HEAD announced.
    assert_eq!(
        finish(start_download(&sim, ALICE, &name).await).await,
        length
    );
    assert_eq!(
        finish(start_download(&sim, ALICE, &name).await).await,
        length
    );
    let stats = sim.stats();
    assert_eq!(stats.files_served, 2);
    assert_eq!(stats.files_served_again, 1);
    assert_eq!(stats.names_served_again, vec![name]);
    sim.stop().await;
}
