//! The example manifests and request files: all valid, the schema fresh, the seed's arithmetic.

use std::collections::BTreeMap;

use onc_pipe::compile::compile;
use onc_pipe::dag::{NodeDetail, NodeKind};
use onc_pipe::manifest::schema_json;

use crate::support::{onc_pipe, repo};

fn example_files() -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for dir in ["manifests", "manifests/requests"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 10, "examples missing: {files:?}");
    files
}

#[test]
fn committed_schema_is_fresh() {
    let committed = std::fs::read_to_string(repo().join("schemas/manifest.schema.json")).unwrap();
    assert!(
        committed == schema_json(),
        "schemas/manifest.schema.json is stale: run `cargo run -- schema > schemas/manifest.schema.json`"
    );
}

#[test]
fn every_example_compiles_without_errors_or_warnings() {
    for file in example_files() {
        let compiled = compile(&file).unwrap_or_else(|diagnostics| {
            panic!(
                "{}",
                diagnostics
                    .iter()
                    .map(|d| d.render_human())
                    .collect::<String>()
            )
        });
        assert!(
            compiled.warnings.is_empty(),
            "{}: {:?}",
            file.display(),
            compiled.warnings
        );
        assert!(compiled.dag.is_acyclic());
        assert!(
            compiled.dag.count(NodeKind::File) > 0,
            "{} fetches nothing",
            file.display()
        );
    }
}

#[test]
fn every_manifest_starts_with_a_schema_directive() {
    for file in example_files()
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "toml"))
    {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            text.starts_with("#:schema ../schemas/manifest.schema.json\n"),
            "{}",
            file.display()
        );
    }
}

#[test]
fn validate_accepts_all_examples() {
    let output = onc_pipe(
        &repo(),
        &[
            "validate",
            "manifests/demo.toml",
            "manifests/scenario2_sampling.toml",
            "manifests/requests/seed_requests.csv",
        ],
    );
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert_eq!(
        output.stdout,
        "3 files valid, 0 invalid (0 errors, 0 warnings)\n"
    );
}

fn requests(file: &str) -> Vec<BTreeMap<String, String>> {
    let compiled = compile(&repo().join(file)).unwrap();
    compiled
        .dag
        .nodes()
        .filter_map(|node| match &node.detail {
            NodeDetail::Request { query, .. } if node.kind == NodeKind::ProductRequest => {
                Some(query.params())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn seed_sampling_is_fourteen_requests_of_55_minutes_evenly_spaced() {
    let requests = requests("manifests/scenario2_sampling.toml");
    assert_eq!(requests.len(), 14);
    let starts: Vec<&str> = requests.iter().map(|q| q["dateFrom"].as_str()).collect();
    assert_eq!(starts[0], "2024-04-01T00:00:00.000Z");
    assert_eq!(starts[1], "2024-04-01T03:37:18.461Z");
    assert_eq!(starts[13], "2024-04-02T23:05:00.000Z");
    assert_eq!(requests[13]["dateTo"], "2024-04-03T00:00:00.000Z");
    for query in &requests {
        assert_eq!(query["dataProductCode"], "HSD");
        assert_eq!(query["extension"], "mat");
        assert_eq!(query["dpo_spectralDataDownsample"], "2");
        assert_eq!(query["dpo_hydrophoneDataDiversionMode"], "OD");
        assert_eq!(query["dpo_spectrogramConcatenation"], "None");
        assert_eq!(query["deviceCode"], "ICLISTENHF6324");
    }
}

#[test]
fn six_hour_range_is_one_request_of_72_files() {
    let requests = requests("manifests/scenario1_six_hours.toml");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["dateFrom"], "2024-04-01T00:00:00.000Z");
    assert_eq!(requests[0]["dateTo"], "2024-04-01T06:00:00.000Z");
}

#[test]
fn plan_json_lists_windows_and_nodes_with_queries() {
    // An empty cache folder of its own: the demo's real cache may exist on this machine.
    let cache = crate::support::Scratch::new();
    let cache_dir = cache.path().join("cache");
    let output = onc_pipe(
        &repo(),
        &[
            "plan",
            "manifests/demo.toml",
            "--format",
            "json",
            "--cache-dir",
            cache_dir.to_str().unwrap(),
        ],
    );
    assert_eq!(output.code, 0, "{}", output.stderr);
    let plan: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    let windows = plan["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 3);
    let humpback = windows
        .iter()
        .find(|w| w["label"] == "humpback call")
        .unwrap();
    assert_eq!(humpback["stage"], "events");
    assert_eq!(humpback["start"], "2024-04-01T04:24:50.000Z");
    assert_eq!(humpback["end"], "2024-04-01T04:25:10.000Z");
    assert_eq!(humpback["clip_start"], "2024-04-01T04:24:35.000Z");
    assert_eq!(humpback["clip_end"], "2024-04-01T04:25:30.000Z");
    let nodes = plan["nodes"].as_array().unwrap();
    for node in nodes {
        if node["kind"] == "window" {
            assert_eq!(node["state"], "planned");
        } else {
            assert_eq!(node["state"], "to run", "{node}");
        }
    }
    // `plan` keeps ONC's deployments in the cache (so the next plan asks nothing), and nothing
    // else: no object, no node record, no lock.
    let kept: Vec<_> = std::fs::read_dir(cache_dir.join("discovery-v1"))
        .expect("deployments kept")
        .collect();
    assert_eq!(kept.len(), 1, "one device, one answer");
    for bucket in ["objects-v1", "nodes-v1", "journal-v1"] {
        let entries = std::fs::read_dir(cache_dir.join(bucket))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(entries, 0, "{bucket}");
    }
    let request = nodes
        .iter()
        .find(|n| {
            n["kind"] == "product_request" && n["query"]["dateFrom"] == "2024-04-01T04:24:35.000Z"
        })
        .expect("the humpback clip's padded window is requested");
    assert_eq!(request["query"]["dateTo"], "2024-04-01T04:25:30.000Z");
    assert_eq!(request["query"]["dataProductCode"], "HSD");
    assert!(request["query"].get("token").is_none());
    assert_eq!(request["inputs"].as_array().unwrap().len(), 1);
}
