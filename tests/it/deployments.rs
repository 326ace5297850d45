//! Know before ordering: windows against ONC's deployments, end to end against the simulator
//! (whose registry has ICLISTENHF6324 at SEVIP since 2021-03-01 and a swap at BACAX on
//! 2023-06-15T18:00Z): errors before anything is submitted, the cache that makes a second plan
//! ask nothing, and site stages ordering from each deployed device.

use std::net::SocketAddr;
use std::path::Path;

use onc_sim::{SimConfig, SimHandle, start};

use crate::support::{Output, Scratch, onc_pipe_with_token};

const TOKEN: &str = "5eed0000-deployments-test";

fn onc_pipe(dir: &Path, args: &[&str]) -> Output {
    onc_pipe_with_token(dir, args, TOKEN)
}

async fn simulator() -> SimHandle {
    let config = SimConfig {
        sample_rate: 8_000,
        time_scale: 0.002,
        ..SimConfig::default()
    };
    start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

fn manifest(base_url: &str, plan: &str) -> String {
    format!(
        r#"#:schema ../schemas/manifest.schema.json
version = 1

[onc]
base_url = "{base_url}"
stagger = "10ms"
poll_interval = "50ms"

[output]
dir = "data"
cache = "cache"

{plan}

[fetch.plotres]
plan = "events"
product = "HSD"
extension = "mat"
options = {{ dpo_spectralDataDownsample = 2, dpo_hydrophoneDataDiversionMode = "OD", dpo_spectrogramConcatenation = "None" }}

[fetch.audio]
plan = "events"
archive = "flac"

[clip.events]
plan = "events"
fetch = ["plotres", "audio"]
pad = "5s"
"#
    )
}

const BEFORE_DEPLOYMENT: &str = r#"[plan.events]
device = "ICLISTENHF6324"
windows = [
  { start = 2024-04-01T04:24:50Z, end = 2024-04-01T04:25:10Z, label = "call" },
  { start = 2020-11-02T10:00:00Z, duration = "30s", label = "too early" },
]"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_before_the_deployment_stops_plan_and_run_with_nothing_submitted() {
    let sim = simulator().await;
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest(&sim.base_url, BEFORE_DEPLOYMENT));
    let dir = scratch.path().to_path_buf();
    let (plan, run) = tokio::task::spawn_blocking(move || {
        (
            onc_pipe(&dir, &["plan", "m.toml"]),
            onc_pipe(&dir, &["run", "m.toml", "--no-progress"]),
        )
    })
    .await
    .unwrap();
    for ran in [&plan, &run] {
        assert_eq!(ran.code, 2, "{}", ran.stderr);
        assert!(
            ran.stderr.contains(
                "error: window 2020-11-02T10:00:00.000Z to 2020-11-02T10:00:30.000Z (`too early`) is outside every deployment of ICLISTENHF6324"
            ),
            "{}",
            ran.stderr
        );
        assert!(
            ran.stderr.contains(
                "ICLISTENHF6324 was deployed at SEVIP since 2021-03-01T00:00:00.000Z (still deployed)"
            ),
            "{}",
            ran.stderr
        );
        assert!(
            ran.stderr.contains("m.toml:17:3: error"),
            "the window's line: {}",
            ran.stderr
        );
        assert!(ran.stdout.is_empty(), "{}", ran.stdout);
    }
    let stats = sim.stats();
    assert_eq!(stats.submissions, 0);
    assert_eq!(
        stats.requests_total,
        stats
            .requests_by_endpoint
            .get("deployments")
            .copied()
            .unwrap_or(0),
        "only deployments were asked: {stats:?}"
    );
    assert_eq!(
        stats.requests_total, 1,
        "the plan asked once; the run found the answer in the cache: {stats:?}"
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_device_is_named_and_a_second_plan_asks_nothing() {
    let sim = simulator().await;
    let scratch = Scratch::new();
    let typo = BEFORE_DEPLOYMENT
        .replace("ICLISTENHF6324", "ICLISTENHF6325")
        .replace(
            "  { start = 2020-11-02T10:00:00Z, duration = \"30s\", label = \"too early\" },\n",
            "",
        );
    scratch.write("typo.toml", &manifest(&sim.base_url, &typo));
    let good = BEFORE_DEPLOYMENT.replace(
        "  { start = 2020-11-02T10:00:00Z, duration = \"30s\", label = \"too early\" },\n",
        "",
    );
    scratch.write("good.toml", &manifest(&sim.base_url, &good));
    let dir = scratch.path().to_path_buf();
    let (typo, first, second, offline) = tokio::task::spawn_blocking(move || {
        (
            onc_pipe(&dir, &["plan", "typo.toml"]),
            onc_pipe(&dir, &["plan", "good.toml", "--format", "json"]),
            onc_pipe(&dir, &["plan", "good.toml", "--format", "json"]),
            onc_pipe(
                &dir,
                &["plan", "good.toml", "--format", "json", "--offline"],
            ),
        )
    })
    .await
    .unwrap();
    assert_eq!(typo.code, 2, "{}", typo.stderr);
    assert!(
        typo.stderr
            .contains("error: ONC does not know device `ICLISTENHF6325`"),
        "{}",
        typo.stderr
    );
    for ran in [&first, &second, &offline] {
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        assert!(ran.stderr.is_empty(), "{}", ran.stderr);
    }
    // The same plan each time (but for the free disk space in the estimate, which other tests
    // change meanwhile).
    let without_space = |text: &str| {
        let mut plan: serde_json::Value = serde_json::from_str(text).unwrap();
        if let Some(estimate) = plan.get_mut("estimate").and_then(|e| e.as_object_mut()) {
            estimate.remove("space");
        }
        plan
    };
    assert_eq!(without_space(&first.stdout), without_space(&second.stdout));
    assert_eq!(without_space(&first.stdout), without_space(&offline.stdout));
    let plan: serde_json::Value = serde_json::from_str(&first.stdout).unwrap();
    let window = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "window")
        .unwrap();
    assert_eq!(window["location"], "SEVIP", "{window}");
    let stats = sim.stats();
    assert_eq!(
        stats.requests_by_endpoint.get("deployments"),
        Some(&2),
        "{stats:?}"
    );
    assert_eq!(
        stats.requests_total, 2,
        "the second and offline plans asked nothing"
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_plan_across_a_swap_orders_from_both_devices_each_in_its_deployment() {
    let sim = simulator().await;
    let scratch = Scratch::new();
    let site = r#"[plan.events]
location = "BACAX"
device_category = "HYDROPHONE"
windows = [{ start = 2023-06-15T17:30:00Z, end = 2023-06-15T18:30:00Z, label = "swap", name = "swap" }]"#;
    scratch.write("m.toml", &manifest(&sim.base_url, site));
    let dir = scratch.path().to_path_buf();
    let run = tokio::task::spawn_blocking(move || {
        onc_pipe(&dir, &["run", "m.toml", "--no-progress", "--json"])
    })
    .await
    .unwrap();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let data = scratch.path().join("data");
    // Each device's window is its part of the event; padding is added to that part.
    for (device, start, end) in [
        (
            "ICLISTENHF1251",
            "2023-06-15T17:30:00.000Z",
            "2023-06-15T18:00:00.000Z",
        ),
        (
            "ICLISTENHF6406",
            "2023-06-15T18:00:00.000Z",
            "2023-06-15T18:30:00.000Z",
        ),
    ] {
        let sidecar = data.join(device).join("events/clips/audio/swap.json");
        let text = std::fs::read_to_string(&sidecar)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", sidecar.display(), run.stderr));
        let sidecar: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(sidecar["device"], device);
        assert_eq!(sidecar["location"], "BACAX");
        assert_eq!(sidecar["requested_window"]["start"], start, "{sidecar}");
        assert_eq!(sidecar["requested_window"]["end"], end, "{sidecar}");
        for source in sidecar["sources"].as_array().unwrap() {
            assert!(
                source["file"].as_str().unwrap().starts_with(device),
                "{source}"
            );
        }
    }
    let stats = sim.stats();
    assert_eq!(
        stats.submissions, 2,
        "one product request per device: {stats:?}"
    );
    sim.stop().await;
}

/// A product onc-pipe has no table for is an error offline (`validate`, `plan --offline`), and
/// accepted when ONC's own `dataProducts` list has it; the list is then cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_onc_lists_is_accepted_online_and_refused_offline() {
    let sim = simulator().await;
    let scratch = Scratch::new();
    let text = manifest(&sim.base_url, BEFORE_DEPLOYMENT)
        .replace(
            "  { start = 2020-11-02T10:00:00Z, duration = \"30s\", label = \"too early\" },\n",
            "",
        )
        .replace("product = \"HSD\"", "product = \"TSSD\"")
        .replace("extension = \"mat\"\noptions = { dpo_spectralDataDownsample = 2, dpo_hydrophoneDataDiversionMode = \"OD\", dpo_spectrogramConcatenation = \"None\" }", "extension = \"csv\"")
        .replace("fetch = [\"plotres\", \"audio\"]", "fetch = \"audio\"");
    scratch.write("m.toml", &text);
    let dir = scratch.path().to_path_buf();
    let (validate, offline, online, again) = tokio::task::spawn_blocking(move || {
        (
            onc_pipe(&dir, &["validate", "m.toml"]),
            onc_pipe(&dir, &["plan", "m.toml", "--offline"]),
            onc_pipe(&dir, &["plan", "m.toml"]),
            onc_pipe(&dir, &["plan", "m.toml"]),
        )
    })
    .await
    .unwrap();
    for ran in [&validate, &offline] {
        assert_eq!(ran.code, 2, "{}", ran.stderr);
        assert!(
            ran.stderr.contains("unknown data product `TSSD`"),
            "{}",
            ran.stderr
        );
    }
    for ran in [&online, &again] {
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        assert!(ran.stdout.contains("product TSSD.csv"), "{}", ran.stdout);
    }
    let stats = sim.stats();
    assert_eq!(
        stats.requests_by_endpoint.get("dataProducts"),
        Some(&1),
        "asked once, then cached: {stats:?}"
    );
    assert_eq!(stats.submissions, 0);
    sim.stop().await;
}
