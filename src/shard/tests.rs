use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::compile::Compiled;
use crate::dag::{NodeKey, NodeKind};
use crate::estimate::SampleRates;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn shard_specs_are_k_of_n_from_one() {
    assert_eq!(
        "2/4".parse::<ShardArg>(),
        Ok(ShardArg::Fixed(Shard::new(2, 4).unwrap()))
    );
    assert_eq!("auto".parse::<ShardArg>(), Ok(ShardArg::Auto));
    assert_eq!(
        "0/4".parse::<ShardArg>(),
        Err(ShardError::OutOfRange { index: 0, count: 4 })
    );
    assert_eq!(
        "5/4".parse::<ShardArg>(),
        Err(ShardError::OutOfRange { index: 5, count: 4 })
    );
    assert_eq!("1/0".parse::<ShardArg>(), Err(ShardError::NoShards));
    for bad in ["", "4", "a/b", "1/-2", "1/4/2", "-1/4"] {
        assert!(
            matches!(bad.parse::<ShardArg>(), Err(ShardError::Syntax(_))),
            "{bad}"
        );
    }
    let message = "0/4".parse::<ShardArg>().unwrap_err().to_string();
    assert!(message.contains("numbered 1 to 4"), "{message}");
    assert_eq!(Shard::new(3, 4).unwrap().to_string(), "3/4");
}

#[test]
fn slurm_arrays_count_from_their_first_task() {
    let from = |pairs: &[(&str, &str)]| Shard::from_env(env(pairs));
    let slurm = [
        ("SLURM_ARRAY_TASK_ID", "5"),
        ("SLURM_ARRAY_TASK_MIN", "4"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
    ];
    assert_eq!(from(&slurm), Ok(Shard::new(2, 4).unwrap()));
    let zero = [
        ("SLURM_ARRAY_TASK_ID", "0"),
        ("SLURM_ARRAY_TASK_MIN", "0"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
    ];
    assert_eq!(from(&zero), Ok(Shard::new(1, 4).unwrap()));
    // `--array=0-6:2`: tasks 0, 2, 4, 6.
    let stepped = [
        ("SLURM_ARRAY_TASK_ID", "6"),
        ("SLURM_ARRAY_TASK_MIN", "0"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
        ("SLURM_ARRAY_TASK_STEP", "2"),
    ];
    assert_eq!(from(&stepped), Ok(Shard::new(4, 4).unwrap()));
    // `--array=1,3,7`: not one range.
    let scattered = [
        ("SLURM_ARRAY_TASK_ID", "7"),
        ("SLURM_ARRAY_TASK_MIN", "1"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
    ];
    assert!(matches!(
        from(&scattered),
        Err(ShardError::SlurmNotARange { .. })
    ));
    assert!(matches!(
        from(&[("SLURM_ARRAY_TASK_ID", "1")]),
        Err(ShardError::Missing {
            name: "SLURM_ARRAY_TASK_COUNT",
            ..
        })
    ));
    assert!(matches!(
        from(&[
            ("SLURM_ARRAY_TASK_ID", "x"),
            ("SLURM_ARRAY_TASK_COUNT", "2")
        ]),
        Err(ShardError::NotANumber { .. })
    ));
}

#[test]
fn kubernetes_indexed_jobs_need_the_count_in_onc_pipe_shards() {
    let from = |pairs: &[(&str, &str)]| Shard::from_env(env(pairs));
    assert_eq!(
        from(&[("JOB_COMPLETION_INDEX", "0"), ("ONC_PIPE_SHARDS", "3")]),
        Ok(Shard::new(1, 3).unwrap())
    );
    assert_eq!(
        from(&[("JOB_COMPLETION_INDEX", "2"), ("ONC_PIPE_SHARDS", "3")]),
        Ok(Shard::new(3, 3).unwrap())
    );
    assert!(matches!(
        from(&[("JOB_COMPLETION_INDEX", "3"), ("ONC_PIPE_SHARDS", "3")]),
        Err(ShardError::IndexBeyondCount { .. })
    ));
    let missing = from(&[("JOB_COMPLETION_INDEX", "0")]).unwrap_err();
    assert!(missing.to_string().contains("ONC_PIPE_SHARDS"), "{missing}");
    let none = from(&[]).unwrap_err();
    assert_eq!(none, ShardError::NoEnvironment);
    assert!(none.to_string().contains("SLURM_ARRAY_TASK_ID"));
    assert!(none.to_string().contains("JOB_COMPLETION_INDEX"));
}

fn compile(text: &str) -> Compiled {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.toml");
    std::fs::write(&path, text).unwrap();
    crate::compile::compile(&path).unwrap()
}

#[test]
fn a_share_is_a_floor_of_each_limit_and_n_staggers() {
    let compiled = compile(SURVEY);
    let mut settings = compiled.plan.settings.clone();
    settings.max_runs = 10;
    settings.download_workers = 4;
    settings.stagger_ms = 3_000;
    let share = Share::of(&settings, 3).unwrap();
    assert_eq!(
        (share.max_runs, share.download_workers, share.stagger_ms),
        (3, 1, 9_000)
    );
    // Together the shards never exceed the manifest's limits.
    assert!(share.max_runs * 3 <= settings.max_runs);
    assert!(share.download_workers * 3 <= settings.download_workers);
    share.apply(&mut settings);
    assert_eq!(settings.max_runs, 3);
    let refused = Share::of(&compiled.plan.settings, 5).unwrap_err();
    assert_eq!(
        refused,
        ShardError::ShareTooSmall {
            limit: Limit::DownloadWorkers,
            value: 4,
            shards: 5
        }
    );
    let text = refused.to_string();
    assert!(
        text.contains("onc.download_workers = 4") && text.contains("--offline"),
        "{text}"
    );
}

/// Twelve one-file requests of the same source, no clips.
const SURVEY: &str = r#"version = 1
[plan.survey]
device = "ICLISTENHF6324"
range = { start = 2024-04-01T00:00:00Z, end = 2024-04-01T01:00:00Z }
[fetch.plotres]
plan = "survey"
product = "HSD"
extension = "mat"
per_request = 1
"#;

/// A survey in one-file requests, events whose clips span two of its files, and audio.
const EVENTS: &str = r#"version = 1
[plan.survey]
device = "ICLISTENHF6324"
range = { start = 2024-04-01T00:00:00Z, end = 2024-04-01T01:00:00Z }
[plan.events]
device = "ICLISTENHF6324"
windows = [
  { start = 2024-04-01T00:04:50Z, end = 2024-04-01T00:05:10Z, label = "a" },
  { start = 2024-04-01T00:29:55Z, end = 2024-04-01T00:30:05Z, label = "b" },
  { start = 2024-04-01T03:00:00Z, end = 2024-04-01T03:00:10Z, label = "c" },
]
[fetch.plotres]
plan = ["survey", "events"]
product = "HSD"
extension = "mat"
per_request = 1
[fetch.audio]
plan = "events"
archive = "flac"
[clip.events]
plan = "events"
fetch = ["plotres", "audio"]
pad = "5s"
"#;

fn onc_and_clips(compiled: &Compiled) -> BTreeSet<NodeKey> {
    compiled
        .dag
        .nodes()
        .filter(|n| {
            matches!(
                n.kind,
                NodeKind::ProductRequest | NodeKind::ArchiveList | NodeKind::Clip
            )
        })
        .map(|n| n.key)
        .collect()
}

#[test]
fn every_onc_and_clip_node_is_in_exactly_one_part() {
    let compiled = compile(EVENTS);
    for count in 1..=7 {
        let split = split(&compiled.dag, &SampleRates::default(), count);
        assert_eq!(split.parts.len(), count as usize);
        let mut seen = BTreeSet::new();
        for part in &split.parts {
            for key in part.selection(Phase::All) {
                assert!(seen.insert(key), "{} in two parts", key.short());
            }
            // The phases partition a part.
            let fetch = part.selection(Phase::Fetch);
            let offline = part.selection(Phase::Offline);
            assert!(fetch.is_disjoint(&offline));
            assert_eq!(
                fetch.union(&offline).count(),
                part.selection(Phase::All).len()
            );
        }
        assert_eq!(seen, onc_and_clips(&compiled), "{count} shards");
        let files: u64 = split.parts.iter().map(|p| p.files).sum();
        assert_eq!(files, compiled.dag.count(NodeKind::File) as u64);
    }
}

#[test]
fn what_shares_source_files_stays_in_one_part() {
    let compiled = compile(EVENTS);
    let dag = &compiled.dag;
    let split = split(dag, &SampleRates::default(), 4);
    let part_of = |key: &NodeKey| {
        split
            .parts
            .iter()
            .position(|p| p.selection(Phase::All).contains(key))
    };
    let mut spanning = 0;
    for clip in dag.nodes().filter(|n| n.kind == NodeKind::Clip) {
        let sources: BTreeSet<NodeKey> = clip
            .inputs
            .iter()
            .filter_map(|f| dag.node(f))
            .flat_map(|f| f.inputs.iter().copied())
            .collect();
        if sources.len() > 1 {
            spanning += 1;
        }
        for source in &sources {
            assert_eq!(part_of(source), part_of(&clip.key), "{}", clip.key.short());
        }
    }
    assert!(
        spanning > 0,
        "the manifest must have a clip reading two requests"
    );
    for file in dag.nodes().filter(|n| n.kind == NodeKind::File) {
        let parts: BTreeSet<Option<usize>> = file.inputs.iter().map(part_of).collect();
        assert_eq!(parts.len(), 1, "a file fetched by two parts");
    }
}

#[test]
fn the_split_is_deterministic() {
    let first = split(&compile(EVENTS).dag, &SampleRates::default(), 3);
    for _ in 0..3 {
        assert_eq!(
            split(&compile(EVENTS).dag, &SampleRates::default(), 3),
            first
        );
    }
    // Pinned: the shape of the split (counts per part), not only its stability in one process.
    let shape: Vec<(usize, usize, usize, u64)> = first
        .parts
        .iter()
        .map(|p| {
            (
                p.product_requests.len(),
                p.archive_lists.len(),
                p.clips.len(),
                p.files,
            )
        })
        .collect();
    // Three events (each a spectrogram and an audio clip and a listing) over twelve survey
    // files: every part gets one event, the survey's requests fill the rest by bytes.
    assert_eq!(shape, [(5, 1, 2, 7), (5, 1, 2, 7), (4, 1, 2, 6)]);
}

#[test]
fn equal_requests_are_balanced() {
    let compiled = compile(SURVEY);
    let requests = compiled.dag.count(NodeKind::ProductRequest);
    assert_eq!(requests, 12);
    let split = split(&compiled.dag, &SampleRates::default(), 4);
    for part in &split.parts {
        assert_eq!(part.product_requests.len(), 3);
        assert_eq!(part.files, 3);
        assert_eq!(part.estimated_bytes, split.parts[0].estimated_bytes);
    }
    // More shards than groups: the rest are empty, none is lost.
    let wide = super::split(&compiled.dag, &SampleRates::default(), 16);
    assert_eq!(
        wide.parts
            .iter()
            .filter(|p| p.product_requests.is_empty())
            .count(),
        4
    );
}
