//! The estimate's arithmetic, on small compiled manifests.

use std::collections::HashMap;

use super::model::{self, Production};
use super::*;
use crate::compile::{Compiled, compile};
use crate::dag::state::FreshReason;
use crate::plan::Source;

const PLOT_RES: &str = r#"version = 1
[onc]
stagger = "3s"
max_wait = "45m"
max_runs = 4
download_workers = 4

[plan.p]
device = "ICLISTENHF6324"
range = { start = 2024-04-01T00:00:00Z, end = 2024-04-01T01:00:00Z }

[fetch.plotres]
plan = "p"
product = "HSD"
extension = "mat"
per_request = 12
options = { dpo_spectralDataDownsample = 2 }
"#;

fn compiled(text: &str) -> Compiled {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    std::fs::write(&path, text).unwrap();
    match compile(&path) {
        Ok(compiled) => compiled,
        Err(diagnostics) => panic!("{diagnostics:?}"),
    }
}

fn estimate_of(
    compiled: &Compiled,
    states: &HashMap<NodeKey, NodeState>,
    space: Space,
) -> Estimate {
    estimate(&Inputs {
        plan: &compiled.plan,
        dag: &compiled.dag,
        states,
        rates: &SampleRates::default(),
        space,
        time_scale: 1.0,
    })
}

fn product(options: &[(&str, &str)], extension: &str) -> Source {
    Source::Product {
        code: "HSD".into(),
        extension: extension.into(),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn a_twelve_file_plot_res_request_is_onc_s_48_mb_and_35_s() {
    let cost = file_cost(
        &product(&[("dpo_spectralDataDownsample", "2")], "mat"),
        64_000,
    );
    assert_eq!(cost.production, Production::OnDemand);
    assert_eq!(12 * cost.bytes, 48_000_000);
    assert_eq!(model::request_seconds(&cost, 12), 35.0);
    assert_eq!(12.0 * cost.server_seconds(), 300.0, "25 s per file on ONC");

    let compiled = self::compiled(PLOT_RES);
    let estimate = estimate_of(&compiled, &HashMap::new(), Space::default());
    let stage = &estimate.stages[0];
    assert_eq!((stage.requests, stage.files), (1, 12));
    assert_eq!(stage.bytes, 48_000_000);
    assert_eq!(stage.onc_seconds, 35.0);
    assert_eq!(stage.production, Production::OnDemand);
    assert_eq!(stage.default_product, None);
    assert_eq!(estimate.total.bytes, 48_000_000);
    // Submitted at 0, processed for 35 s, 48 MB through 4 streams capped at 12.5 MB/s.
    assert!((estimate.total.wall_seconds - (35.0 + 48.0 / 12.5)).abs() < 1e-9);
    assert!(estimate.warnings.is_empty());
}

#[test]
fn sizes_follow_resolution_format_and_sample_rate() {
    let mat = |ds: &str| {
        file_cost(
            &product(&[("dpo_spectralDataDownsample", ds)], "mat"),
            64_000,
        )
    };
    assert_eq!(mat("0").bytes, 40_000_000, "fullRes = 10 x plotRes");
    assert_eq!(mat("1").production, Production::PreGenerated);
    assert_eq!(
        file_cost(&product(&[], "mat"), 64_000),
        mat("1"),
        "ONC's default"
    );
    let flac = Source::Archive {
        extension: "flac".into(),
    };
    assert_eq!(file_cost(&flac, 64_000).bytes, 36_000_000);
    assert_eq!(file_cost(&flac, 128_000).bytes, 72_000_000);
    assert_eq!(file_cost(&flac, 64_000).production, Production::Archived);
    let wav = Source::Archive {
        extension: "wav".into(),
    };
    assert_eq!(file_cost(&wav, 64_000).bytes, 64_000 * 300 * 3 + 44);
    let audio = |options: &[(&str, &str)]| Source::Product {
        code: "AD".into(),
        extension: "flac".into(),
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    assert_eq!(
        file_cost(&audio(&[]), 64_000).production,
        Production::PreGenerated
    );
    let downsampled = file_cost(&audio(&[("dpo_audioDownsample", "16000")]), 64_000);
    assert_eq!(downsampled.production, Production::OnDemand);
    assert_eq!(downsampled.bytes, 9_000_000);
}

#[test]
fn cached_nodes_cost_nothing() {
    let compiled = self::compiled(PLOT_RES);
    let mut states: HashMap<NodeKey, NodeState> = HashMap::new();
    for node in compiled.dag.nodes() {
        let state = match node.kind {
            NodeKind::ProductRequest => NodeState::Cached(FreshReason::AllFilesCached),
            NodeKind::File => NodeState::Cached(FreshReason::RequestCached),
            _ => NodeState::Planned,
        };
        states.insert(node.key, state);
    }
    let estimate = estimate_of(&compiled, &states, Space::default());
    assert_eq!(estimate.total, Totals::default());
    assert_eq!(estimate.stages[0].requests, 0);

    // Half the files cached (another request brought them): only the rest is downloaded, but
    // the request still runs and ONC still processes all 12.
    let mut partly: HashMap<NodeKey, NodeState> = HashMap::new();
    for (i, node) in compiled
        .dag
        .nodes()
        .filter(|n| n.kind == NodeKind::File)
        .enumerate()
    {
        if i % 2 == 0 {
            partly.insert(node.key, NodeState::Cached(FreshReason::RequestCached));
        }
    }
    let estimate = estimate_of(&compiled, &partly, Space::default());
    assert_eq!(estimate.total.files, 6);
    assert_eq!(estimate.total.bytes, 24_000_000);
    assert_eq!(estimate.total.onc_seconds, 35.0);
}

#[test]
fn a_request_longer_than_max_wait_is_named_with_a_per_request_that_fits() {
    let text = PLOT_RES
        .replace("max_wait = \"45m\"", "max_wait = \"1m\"")
        .replace("per_request = 12", "per_request = 72")
        .replace("01:00:00Z }", "06:00:00Z }");
    let compiled = self::compiled(&text);
    let estimate = estimate_of(&compiled, &HashMap::new(), Space::default());
    assert_eq!(
        estimate.warnings,
        vec![LongRequest {
            stage: "plotres".into(),
            files: 72,
            seconds: 185.0,
            max_wait_seconds: 60.0,
            // 5 s + 22 x 2.5 s = 60 s.
            per_request: 22,
        }]
    );
}

#[test]
fn a_stage_without_options_says_it_gets_onc_s_default_product() {
    let text = PLOT_RES.replace("options = { dpo_spectralDataDownsample = 2 }\n", "");
    let compiled = self::compiled(&text);
    let estimate = estimate_of(&compiled, &HashMap::new(), Space::default());
    let stage = &estimate.stages[0];
    assert_eq!(stage.production, Production::PreGenerated);
    assert!(
        stage
            .default_product
            .is_some_and(|note| note.contains("dpo_spectralDataDownsample 1, 60 s columns")),
        "{stage:?}"
    );
    assert_eq!(stage.bytes, 12 * 40_000);
}

#[test]
fn downloads_that_do_not_fit_the_cache_are_refused() {
    let compiled = self::compiled(PLOT_RES);
    let space = |free| Space {
        output_free_bytes: Some(free),
        cache_free_bytes: Some(free),
        same_file_system: true,
    };
    let estimate = estimate_of(&compiled, &HashMap::new(), space(47_999_999));
    assert_eq!(
        estimate.no_room(),
        Some(NoRoom {
            needed_bytes: 48_000_000,
            free_bytes: 47_999_999
        })
    );
    assert_eq!(
        estimate_of(&compiled, &HashMap::new(), space(48_000_000)).no_room(),
        None
    );
    assert_eq!(
        estimate_of(&compiled, &HashMap::new(), Space::default()).no_room(),
        None,
        "unknown free space refuses nothing"
    );
}

#[test]
fn wall_time_follows_max_runs_and_stagger() {
    // Two 12-file requests, one run at a time: the second is submitted when the first is done.
    let text = PLOT_RES
        .replace("max_runs = 4", "max_runs = 1")
        .replace("01:00:00Z }", "02:00:00Z }");
    let compiled = self::compiled(&text);
    let estimate = estimate_of(&compiled, &HashMap::new(), Space::default());
    assert_eq!(estimate.total.requests, 2);
    let download = 48.0 / 12.5;
    assert!((estimate.total.wall_seconds - (70.0 + download)).abs() < 1e-9);
    // Four at a time: the second is done 3 s (the stagger) after the first, and its files
    // wait for the first's in the download pipe.
    let parallel = self::compiled(&text.replace("max_runs = 1", "max_runs = 4"));
    let estimate = estimate_of(&parallel, &HashMap::new(), Space::default());
    assert!((estimate.total.wall_seconds - (35.0 + 2.0 * download)).abs() < 1e-9);
}

#[test]
fn archived_spectrograms_are_sized_as_spectrograms_and_cost_no_onc_job() {
    let mat = file_cost(
        &Source::Archive {
            extension: "mat".into(),
        },
        64_000,
    );
    assert_eq!(mat.bytes, 4_000_000);
    assert_eq!(mat.production, Production::Archived);
    let png = file_cost(
        &Source::Archive {
            extension: "png".into(),
        },
        64_000,
    );
    assert_eq!(png.bytes, 150_000);
    assert_eq!(png.onc_seconds(), 0.0);
}
