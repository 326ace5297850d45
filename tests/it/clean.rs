//! Stale outputs: after an event is renamed, `status` lists its old clip files and `clean`
//! removes exactly them (a dry run first), never a user's own files and never the cache; it
//! does not run while a run holds the cache.

use std::path::Path;

use crate::clips::{a_gap_after, manifest};
use crate::support::{Scratch, onc_pipe};

fn objects(cache: &Path) -> usize {
    std::fs::read_dir(cache.join("objects-v1"))
        .unwrap()
        .flatten()
        .map(|shard| std::fs::read_dir(shard.path()).unwrap().count())
        .sum()
}

#[test]
fn clean_lists_then_removes_exactly_what_the_manifest_no_longer_produces() {
    let gap = a_gap_after("2024-04-02T00:00:00Z");
    let window = (gap.0 - 20_000, gap.1 + 20_000);
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest("15s", window));
    let ran = onc_pipe(scratch.path(), &["run", "m.toml", "--quiet"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    // The user's own files: beside the tree's folders, never onc-pipe's to remove.
    scratch.write("data/notes.txt", "my notes");
    scratch.write("data/ICLISTENHF6324/README.txt", "about this device");
    let status = onc_pipe(scratch.path(), &["status", "m.toml"]);
    assert!(!status.stdout.contains("stale"), "{}", status.stdout);
    assert!(
        status
            .stdout
            .contains("clips: 4: 4 cut, 0 to cut (0 failed at the last run), 0 skipped at gaps"),
        "{}",
        status.stdout
    );

    // The event renamed: its clips are cut under the new name; the old ones are stale.
    let renamed = manifest("15s", window).replace("name = \"boundary\"", "name = \"edge\"");
    scratch.write("m.toml", &renamed);
    let ran = onc_pipe(scratch.path(), &["run", "m.toml", "--quiet"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let old: Vec<String> = [
        "audio/boundary.flac",
        "audio/boundary.json",
        // Its Audacity label track goes with it (the folder's Raven table stays: it is rewritten).
        "audio/boundary.labels.txt",
        "spectrograms/boundary.json",
        "spectrograms/boundary.mat",
        "spectrograms/boundary.npz",
        "spectrograms/boundary.png",
    ]
    .iter()
    .map(|f| format!("ICLISTENHF6324/events/clips/{f}"))
    .collect();
    let status = onc_pipe(scratch.path(), &["status", "m.toml", "--json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let value: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(value["stale_outputs"]["files"], serde_json::json!(old));
    assert_eq!(value["clips"]["cut"], 4, "{value}");
    let text = onc_pipe(scratch.path(), &["status", "m.toml"]).stdout;
    assert!(
        text.contains("stale outputs: 7 files") && text.contains("onc-pipe clean m.toml"),
        "{text}"
    );

    // The dry run lists them and removes nothing.
    let objects_before = objects(&scratch.path().join("cache"));
    let dry = onc_pipe(scratch.path(), &["clean", "m.toml"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stdout.contains("would remove") && dry.stdout.contains("--apply"),
        "{}",
        dry.stdout
    );
    for file in &old {
        assert!(scratch.path().join("data").join(file).is_file(), "{file}");
    }

    // A run holding the cache: clean waits for nobody and removes nothing (exit 3).
    let cache = onc_pipe::cache::Cache::open(&scratch.path().join("cache")).unwrap();
    let held = cache.lock_for_run().unwrap();
    cache.share(&held).unwrap();
    let blocked = onc_pipe(scratch.path(), &["clean", "m.toml", "--apply"]);
    assert_eq!(blocked.code, 3, "{}", blocked.stderr);
    for file in &old {
        assert!(scratch.path().join("data").join(file).is_file(), "{file}");
    }
    drop(held);

    // --apply removes exactly them: the new clips, the user's files and the cache stay.
    let applied = onc_pipe(scratch.path(), &["clean", "m.toml", "--apply", "--json"]);
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let value: serde_json::Value = serde_json::from_str(&applied.stdout).unwrap();
    assert_eq!(value["removed"], 7, "{value}");
    for file in &old {
        assert!(!scratch.path().join("data").join(file).exists(), "{file}");
    }
    for kept in [
        "notes.txt",
        "ICLISTENHF6324/README.txt",
        "ICLISTENHF6324/events/clips/audio/edge.flac",
        "ICLISTENHF6324/events/clips/spectrograms/gap.npz",
        "catalog.csv",
    ] {
        assert!(scratch.path().join("data").join(kept).is_file(), "{kept}");
    }
    assert_eq!(objects(&scratch.path().join("cache")), objects_before);
    let after = onc_pipe(scratch.path(), &["clean", "m.toml"]);
    assert!(after.stdout.contains("nothing stale"), "{}", after.stdout);
    // A re-run still asks ONC nothing: the cache was not touched.
    let again = onc_pipe(scratch.path(), &["run", "m.toml", "--json", "--quiet"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let record: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(record["http_requests"], 0, "{record}");
}
