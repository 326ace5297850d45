//! Cache housekeeping: `gc` after a stage is removed frees exactly that stage's objects (a dry
//! run first, which removes nothing), leaves a cache a later run uses without a request, never
//! touches a cache a run holds; `cache dir` and `cache size`.

use std::collections::BTreeSet;
use std::path::Path;

use onc_pipe::compile::compile;
use onc_pipe::dag::NodeKind;

use crate::run::{Ran, onc_pipe, record, tree};
use crate::support::{Scratch, keys_of};

/// Two stages on one device's archived audio, 16 hours apart: each its own listing and clips,
/// one source (so gc must tell them apart by time, not by source).
fn two_stages() -> String {
    format!("{}{}", one_stage(), EVENING)
}

fn one_stage() -> String {
    r#"version = 1

[onc]
base_url = "simulator"
stagger = "10ms"
poll_interval = "50ms"

[onc.simulator]
sample_rate = 8000
time_scale = 0.002

[output]
dir = "data"
cache = "cache"

[plan.morning]
device = "ICLISTENHF6324"
windows = [{ start = 2024-04-01T04:24:50Z, end = 2024-04-01T04:25:10Z, label = "call" }]

[fetch.morning_audio]
plan = "morning"
archive = "flac"

[clip.morning]
plan = "morning"
fetch = "morning_audio"
pad = "5s"
audio = "wav"
"#
    .to_owned()
}

const EVENING: &str = r#"
[plan.evening]
device = "ICLISTENHF6324"
windows = [{ start = 2024-04-01T20:14:50Z, end = 2024-04-01T20:15:10Z, label = "ship" }]

[fetch.evening_audio]
plan = "evening"
archive = "flac"

[clip.evening]
plan = "evening"
fetch = "evening_audio"
pad = "5s"
audio = "wav"
"#;

/// The objects in the cache, by name.
fn objects(cache: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for shard in std::fs::read_dir(cache.join("objects-v1"))
        .unwrap()
        .flatten()
    {
        for object in std::fs::read_dir(shard.path()).unwrap().flatten() {
            names.insert(object.file_name().to_string_lossy().into_owned());
        }
    }
    names
}

/// The objects the records of `keys` name, read from the cache's files as they are: node
/// records' outputs and coverage entries' files.
fn objects_of(cache: &Path, keys: &BTreeSet<String>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut records: Vec<std::path::PathBuf> = keys
        .iter()
        .map(|key| cache.join("nodes-v1").join(format!("{key}.json")))
        .collect();
    for identity in std::fs::read_dir(cache.join("coverage-v1"))
        .unwrap()
        .flatten()
    {
        for key in keys {
            records.push(identity.path().join(format!("{key}.json")));
        }
    }
    for path in records.iter().filter(|p| p.is_file()) {
        let value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for list in ["outputs", "files"] {
            for file in value[list].as_array().into_iter().flatten() {
                names.insert(file["blake3"].as_str().unwrap().to_owned());
            }
        }
    }
    names
}

/// The cache's files and their hashes, but the lock file (gc writes its pid there).
fn cache_tree(cache: &Path) -> Vec<(String, String)> {
    tree(cache)
        .into_iter()
        .filter(|(path, _)| path != "lock")
        .collect()
}

fn ok(ran: &Ran) {
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
}

#[test]
fn gc_after_a_stage_is_removed_frees_exactly_that_stages_objects() {
    let scratch = Scratch::new();
    let cache = scratch.path().join("cache");
    let old = scratch.write("old.toml", &two_stages());
    let first = onc_pipe(scratch.path(), &["run", "old.toml", "--json", "--quiet"]);
    ok(&first);
    let new = scratch.write("m.toml", &one_stage());

    // The removed stage's nodes: the old DAG's minus the new one's, by the compiler alone.
    let (old_dag, new_dag) = (compile(&old).unwrap(), compile(&new).unwrap());
    let mut removed_keys = BTreeSet::new();
    let mut kept_keys = BTreeSet::new();
    for kind in [NodeKind::ArchiveList, NodeKind::Clip] {
        let (before, after) = (keys_of(&old_dag, kind), keys_of(&new_dag, kind));
        assert!(after.is_subset(&before));
        removed_keys.extend(before.difference(&after).cloned());
        kept_keys.extend(after);
    }
    assert_eq!(removed_keys.len(), 2, "one listing and one clip");
    let all = objects(&cache);
    let expected_gone = objects_of(&cache, &removed_keys);
    let kept = objects_of(&cache, &kept_keys);
    assert!(
        expected_gone.len() >= 3,
        "the evening's files, clip and sidecar: {expected_gone:?}"
    );
    assert!(expected_gone.is_disjoint(&kept), "the stages share nothing");
    assert_eq!(
        &expected_gone | &kept,
        all,
        "every object belongs to a stage"
    );

    let records = removed_keys
        .iter()
        .filter(|key| cache.join("nodes-v1").join(format!("{key}.json")).is_file())
        .count();
    assert_eq!(records, 2, "the listing's record and the clip's");

    // The dry run lists exactly them and removes nothing.
    let before = cache_tree(&cache);
    let dry = onc_pipe(scratch.path(), &["gc", "m.toml"]);
    ok(&dry);
    for object in &expected_gone {
        assert!(dry.stdout.contains(object.as_str()), "{}", dry.stdout);
    }
    for object in &kept {
        assert!(!dry.stdout.contains(object.as_str()), "{}", dry.stdout);
    }
    assert!(
        dry.stdout.contains("would free ")
            && dry
                .stdout
                .contains(&format!("{} objects", expected_gone.len()))
            && dry.stdout.contains("2 node records")
            && dry.stdout.contains("1 coverage entry")
            && dry.stdout.contains("--apply"),
        "{}",
        dry.stdout
    );
    assert_eq!(cache_tree(&cache), before, "a dry run removes nothing");

    // --apply removes exactly them, and the records that named them.
    let applied = onc_pipe(scratch.path(), &["gc", "m.toml", "--apply", "--json"]);
    ok(&applied);
    let value = record(&applied);
    assert_eq!(value["applied"], true, "{value}");
    assert_eq!(value["failed"], serde_json::json!([]), "{value}");
    assert_eq!(objects(&cache), &all - &expected_gone);
    for key in &removed_keys {
        assert!(!cache.join("nodes-v1").join(format!("{key}.json")).exists());
    }
    assert!(objects_of(&cache, &removed_keys).is_empty());
    let again = onc_pipe(scratch.path(), &["gc", "m.toml"]);
    ok(&again);
    assert!(again.stdout.contains("nothing to free"), "{}", again.stdout);

    // The new manifest's re-run asks nothing; the old one's fetches only the removed stage.
    let rerun = onc_pipe(scratch.path(), &["run", "m.toml", "--json", "--quiet"]);
    ok(&rerun);
    assert_eq!(record(&rerun)["http_requests"], 0, "{}", rerun.stdout);
    let old_again = onc_pipe(scratch.path(), &["run", "old.toml", "--json", "--quiet"]);
    ok(&old_again);
    let (first, again) = (record(&first), record(&old_again));
    let evening_sources = sources_of(&cache, &removed_keys);
    assert_eq!(
        again["files_downloaded"].as_u64().unwrap() as usize,
        evening_sources.len(),
        "the evening's source files, again: {again}"
    );
    assert_eq!(
        again["files_cached"].as_u64().unwrap() + again["files_downloaded"].as_u64().unwrap(),
        first["files_downloaded"].as_u64().unwrap(),
        "the morning's from the cache: {again}"
    );
    assert_eq!(again["clips_written"], 1, "the evening's clip: {again}");
    assert_eq!(again["clips_cached"], 1, "the morning's clip: {again}");
    assert!(objects(&cache).is_superset(&(&all - &expected_gone)));
    assert!(objects(&cache).is_superset(&evening_sources));
}

/// The source files the coverage entries of `keys` name.
fn sources_of(cache: &Path, keys: &BTreeSet<String>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for identity in std::fs::read_dir(cache.join("coverage-v1"))
        .unwrap()
        .flatten()
    {
        for key in keys {
            let path = identity.path().join(format!("{key}.json"));
            if let Ok(text) = std::fs::read_to_string(&path) {
                let value: serde_json::Value = serde_json::from_str(&text).unwrap();
                for file in value["files"].as_array().into_iter().flatten() {
                    names.insert(file["blake3"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    names
}

#[test]
fn gc_never_touches_a_cache_a_run_holds() {
    let scratch = Scratch::new();
    let cache = scratch.path().join("cache");
    scratch.write("old.toml", &two_stages());
    ok(&onc_pipe(scratch.path(), &["run", "old.toml", "--quiet"]));
    scratch.write("m.toml", &one_stage());
    let before = cache_tree(&cache);

    // Held as a run holds it: shared, after its start-up.
    let opened = onc_pipe::cache::Cache::open(&cache).unwrap();
    let held = opened.lock_for_run().unwrap();
    opened.share(&held).unwrap();
    let blocked = onc_pipe(scratch.path(), &["gc", "m.toml", "--apply"]);
    assert_eq!(blocked.code, 3, "{}\n{}", blocked.stdout, blocked.stderr);
    assert!(
        blocked
            .stderr
            .contains(&format!("pid {}", std::process::id())),
        "{}",
        blocked.stderr
    );
    let dry = onc_pipe(scratch.path(), &["gc", "m.toml"]);
    assert_eq!(
        dry.code, 3,
        "even a dry run waits for the run: {}",
        dry.stderr
    );
    drop(held);
    let after: Vec<_> = cache_tree(&cache);
    assert_eq!(after, before, "nothing removed while a run held the cache");
}

#[test]
fn gc_refuses_what_it_cannot_judge() {
    let scratch = Scratch::new();
    // Neither manifests nor an age: that would be everything.
    let none = onc_pipe(scratch.path(), &["gc"]);
    assert_eq!(none.code, 2, "{}", none.stderr);
    assert!(none.stderr.contains("--older-than"), "{}", none.stderr);
    // A bad age names the flag and what is valid.
    let bad = onc_pipe(scratch.path(), &["gc", "--older-than", "last week"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("--older-than") && bad.stderr.contains("30d"),
        "{}",
        bad.stderr
    );
    // A team store: out of scope, said so.
    scratch.write("m.toml", &one_stage());
    let team = onc_pipe(
        scratch.path(),
        &["gc", "m.toml", "--cache-dir", "s3://lab-bucket/onc"],
    );
    assert_eq!(team.code, 2, "{}", team.stderr);
    assert!(
        team.stderr.contains("s3://lab-bucket/onc") && team.stderr.contains("team store"),
        "{}",
        team.stderr
    );
    // No cache yet: nothing to free, and none created.
    let empty = onc_pipe(scratch.path(), &["gc", "m.toml", "--apply"]);
    ok(&empty);
    assert!(!scratch.path().join("cache").exists());
}

#[test]
fn gc_older_than_keeps_what_is_recent() {
    let scratch = Scratch::new();
    let cache = scratch.path().join("cache");
    scratch.write("old.toml", &two_stages());
    ok(&onc_pipe(scratch.path(), &["run", "old.toml", "--quiet"]));
    let all = objects(&cache);
    // Everything was stored today: an age of a day keeps it all, with or without manifests.
    let young = onc_pipe(scratch.path(), &["gc", "--older-than", "1d", "--apply"]);
    ok(&young);
    assert_eq!(objects(&cache), all, "{}", young.stdout);
    // A time in the future: age alone removes every object.
    let future = onc_pipe(
        scratch.path(),
        &[
            "gc",
            "--older-than",
            "2999-01-01",
            "--apply",
            "--cache-dir",
            "cache",
        ],
    );
    ok(&future);
    assert!(objects(&cache).is_empty(), "{}", future.stdout);
    // And the cache is consistent: the next run fetches everything again without an error.
    let rerun = onc_pipe(scratch.path(), &["run", "old.toml", "--json", "--quiet"]);
    ok(&rerun);
    assert_eq!(record(&rerun)["clips_written"], 2, "{}", rerun.stdout);
}

#[test]
fn cache_dir_and_size_say_where_and_how_much() {
    let scratch = Scratch::new();
    scratch.write("m.toml", &one_stage());
    let dir = onc_pipe(scratch.path(), &["cache", "dir", "m.toml"]);
    ok(&dir);
    let expected = std::fs::canonicalize(scratch.path()).unwrap().join("cache");
    assert_eq!(
        std::fs::canonicalize(dir.stdout.trim()).ok(),
        None,
        "not created by asking"
    );
    assert!(
        dir.stdout.trim().ends_with("/cache") && Path::new(dir.stdout.trim()).is_absolute(),
        "{}",
        dir.stdout
    );
    let empty = onc_pipe(scratch.path(), &["cache", "size", "m.toml", "--json"]);
    ok(&empty);
    assert_eq!(record(&empty)["objects"], 0, "{}", empty.stdout);

    let ran = onc_pipe(scratch.path(), &["run", "m.toml", "--quiet"]);
    ok(&ran);
    assert_eq!(
        std::fs::canonicalize(dir.stdout.trim()).unwrap(),
        expected,
        "the folder the run used"
    );
    let size = onc_pipe(scratch.path(), &["cache", "size", "m.toml", "--json"]);
    ok(&size);
    let value = record(&size);
    assert_eq!(
        value["objects"].as_u64().unwrap() as usize,
        objects(&expected).len()
    );
    assert_eq!(value["run_records"], 1, "{value}");
    assert!(value["node_records"].as_u64().unwrap() >= 1, "{value}");
    assert!(value["coverage_entries"].as_u64().unwrap() >= 1, "{value}");
    assert!(
        value["total_bytes"].as_u64() > value["object_bytes"].as_u64(),
        "{value}"
    );
    let text = onc_pipe(scratch.path(), &["cache", "size", "m.toml"]);
    ok(&text);
    // Humanised as every size onc-pipe prints ("4.7 MB"), never a raw byte count.
    assert!(
        text.stdout.contains("B in all") && text.stdout.contains("1 run record"),
        "{}",
        text.stdout
    );

    // Without a manifest: --cache-dir, else ONC_PIPE_CACHE, else `.onc-pipe` here.
    let flag = onc_pipe(
        scratch.path(),
        &["cache", "dir", "--cache-dir", "elsewhere"],
    );
    assert!(
        flag.stdout.trim().ends_with("/elsewhere"),
        "{}",
        flag.stdout
    );
    let default = onc_pipe(scratch.path(), &["cache", "dir", "--json"]);
    let value = record(&default);
    assert!(
        value["cache"].as_str().unwrap().ends_with("/.onc-pipe"),
        "{value}"
    );
}
