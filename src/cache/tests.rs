use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::links::{place_output, rename_into_place};
use super::*;

fn open_temp() -> (tempfile::TempDir, Cache) {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open(&dir.path().join("cache")).unwrap();
    (dir, cache)
}

/// A finished "download" in the cache's tmp dir: (path, blake3 hex, size).
fn temp_file(cache: &Cache, name: &str, content: &[u8]) -> (PathBuf, String, u64) {
    let path = cache.tmp_dir().join(name);
    fs::write(&path, content).unwrap();
    let hex = blake3::hash(content).to_hex().to_string();
    (path, hex, content.len() as u64)
}

fn stored(
    cache: &Cache,
    name: &str,
    content: &[u8],
    start: Option<i64>,
    end: Option<i64>,
) -> StoredFile {
    let object = cache.store_bytes(content).unwrap();
    StoredFile {
        name: name.to_string(),
        blake3: object.blake3,
        size: object.size,
        start_ms: start,
        end_ms: end,
    }
}

fn entry(key: &str, from_ms: i64, to_ms: i64, files: Vec<StoredFile>) -> CoverageEntry {
    CoverageEntry {
        key: key.to_string(),
        from_ms,
        to_ms,
        files,
        dp_request_id: Some(7),
        dp_run_id: Some(8),
        completed_at: "2026-01-01T00:00:00Z".to_string(),
    }
}

fn entries_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn journal_entry() -> JournalEntry {
    let mut query = BTreeMap::new();
    query.insert("deviceCode".to_string(), "ICLISTENHF6324".to_string());
    query.insert(
        "dateFrom".to_string(),
        "2024-04-01T00:00:00.000Z".to_string(),
    );
    JournalEntry {
        query,
        dp_request_id: 123,
        dp_run_id: Some(456),
        submitted_at: "2026-01-01T00:00:00Z".to_string(),
        base_url: "https://data.oceannetworks.ca".to_string(),
        restarts: 0,
    }
}

const KEY_A: &str = "aaaa1111";
const KEY_B: &str = "bbbb2222";

// ---------------------------------------------------------------------------------------------
// layout and atomic writes

#[test]
fn open_creates_the_versioned_layout_and_is_idempotent() {
    let (_dir, cache) = open_temp();
    for sub in [
        OBJECTS_DIR,
        COVERAGE_DIR,
        JOURNAL_DIR,
        NODES_DIR,
        RUNS_DIR,
        TMP_DIR,
    ] {
        assert!(cache.root().join(sub).is_dir(), "{sub}");
    }
    assert!(cache.root().join("CACHEDIR.TAG").is_file());
    let again = Cache::open(cache.root()).unwrap();
    assert_eq!(again.root(), cache.root());
    assert_eq!(cache.tmp_dir(), cache.root().join("tmp"));
}

#[test]
fn open_fails_with_the_path_when_the_root_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    fs::write(&file, b"x").unwrap();
    let err = Cache::open(&file).unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with("create directory"), "{message}");
    assert!(message.contains("not-a-dir"), "{message}");
}

#[test]
fn atomic_writes_leave_no_temp_files() {
    let (_dir, cache) = open_temp();
    let file = stored(&cache, "a.mat", b"alpha", Some(0), Some(10));
    cache
        .record_coverage("ident1", &entry(KEY_A, 0, 10, vec![file.clone()]))
        .unwrap();
    cache.journal_write(KEY_A, &journal_entry()).unwrap();
    cache
        .write_node_record(&NodeRecord {
            key: KEY_A.to_string(),
            kind: "file".to_string(),
            outputs: vec![file],
            completed_at: "2026-01-01T00:00:00Z".to_string(),
            detail: serde_json::json!({"x": 1}),
        })
        .unwrap();
    cache
        .write_run_record(&serde_json::json!({"runs_total": 1}), chrono::Utc::now())
        .unwrap();
    assert!(entries_in(&cache.tmp_dir()).is_empty());
    assert_eq!(
        entries_in(&cache.root().join(COVERAGE_DIR).join("ident1")),
        vec![format!("{KEY_A}.json")]
    );
    assert_eq!(
        entries_in(&cache.root().join(JOURNAL_DIR)),
        vec![format!("{KEY_A}.json")]
    );
    assert_eq!(
        entries_in(&cache.root().join(NODES_DIR)),
        vec![format!("{KEY_A}.json")]
    );
}

#[test]
fn keys_that_could_escape_their_bucket_are_refused() {
    let (_dir, cache) = open_temp();
    for bad in ["", "../x", "a/b", "a.b", "..", "a\\b"] {
        let err = cache.journal_write(bad, &journal_entry()).unwrap_err();
        assert!(matches!(err, CacheError::InvalidKey { .. }), "{bad}: {err}");
        assert!(err.to_string().contains(JOURNAL_DIR), "{err}");
        assert!(cache.coverage(bad).is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------------------------------------
// objects

#[test]
fn store_object_moves_the_file_in_read_only_and_dedupes() {
    let (_dir, cache) = open_temp();
    let (t1, hex, size) = temp_file(&cache, "one.part", b"same bytes");
    let path = cache.store_object(&t1, &hex, size, true).unwrap();
    assert_eq!(path, cache.object_path(&hex));
    assert_eq!(
        path,
        cache.root().join(OBJECTS_DIR).join(&hex[..2]).join(&hex)
    );
    assert!(!t1.exists());
    assert_eq!(fs::read(&path).unwrap(), b"same bytes");
    assert!(fs::metadata(&path).unwrap().permissions().readonly());
    assert!(cache.has_object(&hex, size));
    assert!(!cache.has_object(&hex, size + 1));

    // A second download of the same content: the temp file goes, the object stays (same inode,
    // so existing links remain valid).
    let (t2, hex2, size2) = temp_file(&cache, "two.part", b"same bytes");
    #[cfg(unix)]
    let inode_before = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&path).unwrap());
    let again = cache.store_object(&t2, &hex2, size2, false).unwrap();
    assert_eq!(again, path);
    assert!(!t2.exists());
    #[cfg(unix)]
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&fs::metadata(&path).unwrap()),
        inode_before
    );
    assert_eq!(
        entries_in(&cache.root().join(OBJECTS_DIR).join(&hex[..2])),
        vec![hex.clone()]
    );
    assert!(entries_in(&cache.tmp_dir()).is_empty());
}

#[test]
fn store_object_rejects_a_size_mismatch_and_keeps_the_temp_file() {
    let (_dir, cache) = open_temp();
    let (temp, hex, size) = temp_file(&cache, "short.part", b"twelve bytes");
    let err = cache
        .store_object(&temp, &hex, size + 1, false)
        .unwrap_err();
    assert!(
        matches!(
            err,
            CacheError::SizeMismatch {
                expected: 13,
                actual: 12,
                ..
            }
        ),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains("short.part"), "{message}");
    assert!(message.contains("expected 13"), "{message}");
    assert!(temp.exists(), "the caller reports and removes it");
    assert!(!cache.object_path(&hex).exists());
}

#[test]
fn store_object_rejects_a_hash_mismatch_when_verifying() {
    let (_dir, cache) = open_temp();
    let (temp, _, size) = temp_file(&cache, "bad.part", b"content");
    let wrong = blake3::hash(b"other").to_hex().to_string();
    let err = cache.store_object(&temp, &wrong, size, true).unwrap_err();
    assert!(matches!(err, CacheError::HashMismatch { .. }), "{err}");
    assert!(err.to_string().contains("bad.part"), "{err}");
    assert!(temp.exists());
    assert!(!cache.object_path(&wrong).exists());
}

#[test]
fn store_object_rejects_a_name_that_is_not_a_hash() {
    let (_dir, cache) = open_temp();
    let (temp, _, size) = temp_file(&cache, "x.part", b"content");
    for bad in ["", "abc", "../../etc/passwd", &"g".repeat(64)] {
        let err = cache.store_object(&temp, bad, size, false).unwrap_err();
        assert!(matches!(err, CacheError::InvalidKey { .. }), "{bad}: {err}");
        assert!(!cache.has_object(bad, size));
    }
    assert!(temp.exists());
}

#[test]
fn store_object_replaces_a_damaged_object() {
    let (_dir, cache) = open_temp();
    let object = cache.store_bytes(b"good content").unwrap();
    make_writable(&object.path);
    fs::write(&object.path, b"good").unwrap(); // truncated
    assert!(!cache.has_object(&object.blake3, object.size));
    let (temp, hex, size) = temp_file(&cache, "refetch.part", b"good content");
    let path = cache.store_object(&temp, &hex, size, true).unwrap();
    assert_eq!(fs::read(path).unwrap(), b"good content");
    assert!(cache.verify_object(&hex, size).unwrap());
}

#[test]
fn a_truncated_or_altered_object_fails_verify() {
    let (_dir, cache) = open_temp();
    let object = cache.store_bytes(b"0123456789").unwrap();
    assert!(cache.verify_object(&object.blake3, object.size).unwrap());

    make_writable(&object.path);
    fs::write(&object.path, b"01234").unwrap();
    assert!(!cache.verify_object(&object.blake3, object.size).unwrap());
    assert!(!cache.has_object(&object.blake3, object.size));

    // Same size, different content: only the re-hash sees it.
    fs::write(&object.path, b"0123456780").unwrap();
    assert!(cache.has_object(&object.blake3, object.size));
    assert!(!cache.verify_object(&object.blake3, object.size).unwrap());

    fs::remove_file(&object.path).unwrap();
    assert!(!cache.verify_object(&object.blake3, object.size).unwrap());
}

#[test]
fn hash_file_matches_blake3() {
    let (_dir, cache) = open_temp();
    let (path, hex, size) = temp_file(&cache, "h", &vec![7u8; 300_000]);
    assert_eq!(hash_file(&path).unwrap(), (hex, size));
}

fn make_writable(path: &Path) {
    let mut perms = fs::metadata(path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    fs::set_permissions(path, perms).unwrap();
}

// ---------------------------------------------------------------------------------------------
// coverage

fn coverage_of(spans: &[(i64, i64)]) -> Coverage {
    Coverage {
        entries: spans
            .iter()
            .enumerate()
            .map(|(i, &(f, t))| entry(&format!("k{i}"), f, t, Vec::new()))
            .collect(),
        problems: Vec::new(),
    }
}

#[test]
fn uncovered_table() {
    type Case = (&'static [(i64, i64)], (i64, i64), &'static [(i64, i64)]);
    let cases: &[Case] = &[
        // nothing recorded
        (&[], (0, 10), &[(0, 10)]),
        // exact, inside, around
        (&[(0, 10)], (0, 10), &[]),
        (&[(0, 10)], (2, 8), &[]),
        (&[(2, 8)], (0, 10), &[(0, 2), (8, 10)]),
        // half-open: touching entries leave no gap, a hole of one ms is a gap
        (&[(0, 5), (5, 10)], (0, 10), &[]),
        (&[(0, 5), (6, 10)], (0, 10), &[(5, 6)]),
        // overlapping and nested entries, unsorted
        (&[(4, 9), (0, 6), (5, 7)], (0, 12), &[(9, 12)]),
        // entries entirely outside the query
        (&[(-10, -1), (20, 30)], (0, 10), &[(0, 10)]),
        // entry ending exactly where the query starts covers nothing of it
        (&[(-5, 0)], (0, 10), &[(0, 10)]),
        // several gaps, merged output
        (
            &[(1, 2), (3, 4), (6, 8)],
            (0, 10),
            &[(0, 1), (2, 3), (4, 6), (8, 10)],
        ),
        // instant entries cover no span
        (&[(5, 5)], (0, 10), &[(0, 10)]),
        // instants: covered by [from, to) including from, excluding to
        (&[(0, 10)], (0, 0), &[]),
        (&[(0, 10)], (9, 9), &[]),
        (&[(0, 10)], (10, 10), &[(10, 10)]),
        (&[(5, 5)], (5, 5), &[]),
        (&[], (5, 5), &[(5, 5)]),
        // reversed query: empty
        (&[], (10, 0), &[]),
    ];
    for (spans, (from, to), expected) in cases {
        assert_eq!(
            coverage_of(spans).uncovered(*from, *to),
            expected.to_vec(),
            "entries {spans:?}, query [{from}, {to})"
        );
    }
}

proptest! {
    /// Against a brute-force model on integer instants: `t` is uncovered iff no entry has
    /// `from <= t < to`; the result must be exactly the maximal runs of uncovered instants.
    #[test]
    fn uncovered_is_the_complement_of_the_union(
        spans in prop::collection::vec((-20i64..60, 0i64..25), 0..8),
        from in -30i64..70,
        len in 0i64..60,
    ) {
        let spans: Vec<(i64, i64)> = spans.into_iter().map(|(f, l)| (f, f + l)).collect();
        let to = from + len;
        let coverage = coverage_of(&spans);
        let covered = |t: i64| spans.iter().any(|&(f, e)| f <= t && t < e);
        let got = coverage.uncovered(from, to);
        if from == to {
            let instant_covered = covered(from) || spans.iter().any(|&(f, e)| f == from && e == from);
            prop_assert_eq!(got.is_empty(), instant_covered);
            if !instant_covered {
                prop_assert_eq!(got, vec![(from, from)]);
            }
        } else {
            let mut expected: Vec<(i64, i64)> = Vec::new();
            for t in from..to {
                if covered(t) {
                    continue;
                }
                match expected.last_mut() {
                    Some(last) if last.1 == t => last.1 = t + 1,
                    _ => expected.push((t, t + 1)),
                }
            }
            prop_assert_eq!(got, expected);
        }
    }

    /// Order of entries never matters (union semantics).
    #[test]
    fn uncovered_ignores_entry_order(
        spans in prop::collection::vec((-20i64..60, 0i64..25), 0..8),
        from in -30i64..70,
        len in 0i64..60,
    ) {
        let spans: Vec<(i64, i64)> = spans.into_iter().map(|(f, l)| (f, f + l)).collect();
        let mut reversed = spans.clone();
        reversed.reverse();
        prop_assert_eq!(
            coverage_of(&spans).uncovered(from, from + len),
            coverage_of(&reversed).uncovered(from, from + len)
        );
    }
}

#[test]
fn coverage_round_trip_and_file_queries() {
    let (_dir, cache) = open_temp();
    let a = stored(&cache, "a.mat", b"a", Some(0), Some(300));
    let b = stored(&cache, "b.mat", b"b", Some(300), Some(600));
    let untimed = stored(&cache, "c.mat", b"c", None, None);
    cache
        .record_coverage(
            "ident1",
            &entry(KEY_B, 300, 900, vec![b.clone(), untimed.clone()]),
        )
        .unwrap();
    cache
        .record_coverage("ident1", &entry(KEY_A, 0, 600, vec![a.clone(), b.clone()]))
        .unwrap();
    let coverage = cache.coverage("ident1").unwrap();
    assert!(coverage.problems.is_empty(), "{:?}", coverage.problems);
    assert_eq!(coverage.entries.len(), 2);
    assert_eq!(coverage.entries[0].key, KEY_A, "sorted by from_ms");
    assert_eq!(coverage.uncovered(0, 1000), vec![(900, 1000)]);

    // b appears in both entries but once in the answer; the untimed file stands for its entry.
    assert_eq!(
        coverage.files_overlapping(250, 350),
        vec![a.clone(), b.clone(), untimed.clone()]
    );
    assert_eq!(coverage.files_overlapping(0, 300), vec![a.clone()]);
    assert_eq!(coverage.files_overlapping(600, 700), vec![untimed.clone()]);
    assert_eq!(
        coverage.files_overlapping(300, 300),
        vec![b.clone(), untimed.clone()]
    );
    assert!(coverage.files_overlapping(900, 1000).is_empty());
    assert_eq!(coverage.file_named("b.mat"), Some(b));
    assert_eq!(coverage.file_named("nope.mat"), None);

    // Another identity sees nothing.
    let other = cache.coverage("ident2").unwrap();
    assert!(other.entries.is_empty() && other.problems.is_empty());
}

#[test]
fn record_coverage_refuses_files_not_in_the_store() {
    let (_dir, cache) = open_temp();
    let ghost = StoredFile {
        name: "ghost.mat".to_string(),
        blake3: blake3::hash(b"ghost").to_hex().to_string(),
        size: 5,
        start_ms: None,
        end_ms: None,
    };
    let err = cache
        .record_coverage("ident1", &entry(KEY_A, 0, 10, vec![ghost]))
        .unwrap_err();
    assert!(matches!(err, CacheError::MissingObject { .. }), "{err}");
    assert!(err.to_string().contains("ghost.mat"), "{err}");
    assert!(cache.coverage("ident1").unwrap().entries.is_empty());
}

#[test]
fn corrupt_coverage_entries_are_skipped_with_a_reason() {
    let (_dir, cache) = open_temp();
    let good = stored(&cache, "good.mat", b"good", None, None);
    let lost = stored(&cache, "lost.mat", b"lost", None, None);
    cache
        .record_coverage("ident1", &entry(KEY_A, 0, 10, vec![good]))
        .unwrap();
    cache
        .record_coverage("ident1", &entry(KEY_B, 10, 20, vec![lost.clone()]))
        .unwrap();
    let dir = cache.root().join(COVERAGE_DIR).join("ident1");
    fs::write(dir.join("cccc.json"), b"{ not json").unwrap();
    fs::write(dir.join("dddd.json"), b"").unwrap();
    // A valid entry filed under the wrong name.
    fs::write(
        dir.join("eeee.json"),
        serde_json::to_vec(&entry("ffff", 0, 5, Vec::new())).unwrap(),
    )
    .unwrap();
    fs::write(dir.join("stray.txt"), b"?").unwrap();
    // An object deleted behind the cache's back.
    fs::remove_file(cache.object_path(&lost.blake3)).unwrap();

    let coverage = cache.coverage("ident1").unwrap();
    assert_eq!(coverage.entries.len(), 1);
    assert_eq!(coverage.entries[0].key, KEY_A);
    assert_eq!(coverage.problems.len(), 5, "{:#?}", coverage.problems);
    let all = coverage.problems.join("\n");
    for needle in [
        "cccc.json",
        "dddd.json",
        "eeee.json",
        "stray.txt",
        "lost.mat",
    ] {
        assert!(all.contains(needle), "{needle} in {all}");
    }
    // The lost entry's range is uncovered again, so it is fetched again.
    assert_eq!(coverage.uncovered(0, 20), vec![(10, 20)]);
}

// ---------------------------------------------------------------------------------------------
// journal

#[test]
fn journal_round_trip_and_removal() {
    let (_dir, cache) = open_temp();
    assert_eq!(cache.journal_read(KEY_A).unwrap(), None);
    let entry = journal_entry();
    cache.journal_write(KEY_A, &entry).unwrap();
    assert_eq!(cache.journal_read(KEY_A).unwrap(), Some(entry.clone()));

    // Updating with the run id replaces the entry.
    let mut updated = entry.clone();
    updated.dp_run_id = Some(999);
    cache.journal_write(KEY_A, &updated).unwrap();
    cache.journal_write(KEY_B, &entry).unwrap();
    assert_eq!(
        cache.journal_all().unwrap(),
        vec![(KEY_A.to_string(), updated), (KEY_B.to_string(), entry)]
    );

    cache.journal_remove(KEY_A).unwrap();
    cache.journal_remove(KEY_A).unwrap(); // absent: fine
    assert_eq!(cache.journal_read(KEY_A).unwrap(), None);
    assert_eq!(cache.journal_all().unwrap().len(), 1);
}

#[test]
fn journal_never_stores_the_token() {
    let (_dir, cache) = open_temp();
    let mut entry = journal_entry();
    entry
        .query
        .insert("token".to_string(), "s3cret-token".to_string());
    entry
        .query
        .insert("Token".to_string(), "s3cret-token".to_string());
    cache.journal_write(KEY_A, &entry).unwrap();
    let raw =
        fs::read_to_string(cache.root().join(JOURNAL_DIR).join(format!("{KEY_A}.json"))).unwrap();
    assert!(!raw.contains("s3cret"), "{raw}");
    let back = cache.journal_read(KEY_A).unwrap().unwrap();
    assert_eq!(back.query, journal_entry().query);
}

#[test]
fn corrupt_journal_entries_read_as_missing_with_a_reason() {
    let (_dir, cache) = open_temp();
    cache.journal_write(KEY_A, &journal_entry()).unwrap();
    let dir = cache.root().join(JOURNAL_DIR);
    fs::write(
        dir.join(format!("{KEY_B}.json")),
        b"{\"dp_request_id\": \"oops\"}",
    )
    .unwrap();
    fs::write(dir.join("junk"), b"").unwrap();

    assert_eq!(cache.journal_read(KEY_B).unwrap(), None);
    match cache.journal_lookup(KEY_B).unwrap() {
        Lookup::Corrupt(reason) => assert!(reason.contains(KEY_B), "{reason}"),
        other => panic!("expected corrupt, got {other:?}"),
    }
    let scan = cache.journal_scan().unwrap();
    assert_eq!(scan.entries.len(), 1);
    assert_eq!(scan.problems.len(), 2, "{:?}", scan.problems);
    assert_eq!(cache.journal_all().unwrap().len(), 1);
}

/// A new entry is renamed into place before its fsync (the SIGKILL window after ONC's answer is
/// then microseconds, not an fsync). A power cut before that fsync can leave it empty: it must
/// read as absent (the node is submitted again), never as an entry. Nothing stays in tmp/.
#[test]
fn a_new_journal_entry_left_empty_by_a_power_cut_reads_as_missing() {
    let (_dir, cache) = open_temp();
    cache.journal_write(KEY_A, &journal_entry()).unwrap();
    assert_eq!(fs::read_dir(cache.tmp_dir()).unwrap().count(), 0);
    let path = cache.root().join(JOURNAL_DIR).join(format!("{KEY_A}.json"));
    fs::write(&path, b"").unwrap();
    assert_eq!(cache.journal_read(KEY_A).unwrap(), None);
    assert!(matches!(
        cache.journal_lookup(KEY_A).unwrap(),
        Lookup::Corrupt(_)
    ));
}

// ---------------------------------------------------------------------------------------------
// node and run records

fn node_record(cache: &Cache, key: &str) -> NodeRecord {
    NodeRecord {
        key: key.to_string(),
        kind: "clip".to_string(),
        outputs: vec![stored(cache, "clip.flac", b"flac bytes", None, None)],
        completed_at: "2026-01-01T00:00:00Z".to_string(),
        detail: serde_json::json!({"gaps": []}),
    }
}

#[test]
fn node_record_round_trip() {
    let (_dir, cache) = open_temp();
    assert_eq!(cache.read_node_record(KEY_A).unwrap(), None);
    assert_eq!(cache.node_record_lookup(KEY_A).unwrap(), Lookup::Missing);
    let record = node_record(&cache, KEY_A);
    cache.write_node_record(&record).unwrap();
    assert_eq!(cache.read_node_record(KEY_A).unwrap(), Some(record));
}

#[test]
fn node_records_refuse_missing_outputs() {
    let (_dir, cache) = open_temp();
    let mut record = node_record(&cache, KEY_A);
    record.outputs[0].size += 1;
    let err = cache.write_node_record(&record).unwrap_err();
    assert!(matches!(err, CacheError::MissingObject { .. }), "{err}");
    assert_eq!(cache.read_node_record(KEY_A).unwrap(), None);
}

#[test]
fn corrupt_node_records_read_as_missing_with_a_reason() {
    let (_dir, cache) = open_temp();
    let dir = cache.root().join(NODES_DIR);
    fs::write(dir.join(format!("{KEY_A}.json")), b"\x00\xff garbage").unwrap();
    assert_eq!(cache.read_node_record(KEY_A).unwrap(), None);
    assert!(matches!(
        cache.node_record_lookup(KEY_A).unwrap(),
        Lookup::Corrupt(_)
    ));

    // A record filed under another key.
    let record = node_record(&cache, KEY_B);
    fs::write(
        dir.join(format!("{KEY_A}.json")),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
    match cache.node_record_lookup(KEY_A).unwrap() {
        Lookup::Corrupt(reason) => assert!(reason.contains("does not match"), "{reason}"),
        other => panic!("expected corrupt, got {other:?}"),
    }

    // A record whose output object vanished.
    cache.write_node_record(&record).unwrap();
    fs::remove_file(cache.object_path(&record.outputs[0].blake3)).unwrap();
    match cache.node_record_lookup(KEY_B).unwrap() {
        Lookup::Corrupt(reason) => assert!(reason.contains("clip.flac"), "{reason}"),
        other => panic!("expected corrupt, got {other:?}"),
    }
    assert_eq!(cache.read_node_record(KEY_B).unwrap(), None);
}

#[test]
fn run_records_are_named_by_start_time_and_never_overwritten() {
    let (_dir, cache) = open_temp();
    let started = chrono::DateTime::parse_from_rfc3339("2026-11-21T20:01:02.123Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let first = cache
        .write_run_record(&serde_json::json!({"n": 1}), started)
        .unwrap();
    let second = cache
        .write_run_record(&serde_json::json!({"n": 2}), started)
        .unwrap();
    assert_eq!(
        first,
        cache
            .root()
            .join("runs")
            .join("2026-11-21T20-01-02.123Z.json")
    );
    assert_eq!(
        second,
        cache
            .root()
            .join("runs")
            .join("2026-11-21T20-01-02.123Z-2.json")
    );
    let back: serde_json::Value = serde_json::from_slice(&fs::read(first).unwrap()).unwrap();
    assert_eq!(back, serde_json::json!({"n": 1}));
}

// ---------------------------------------------------------------------------------------------
// lock

#[test]
fn a_second_lock_fails_with_the_holder_and_succeeds_after_release() {
    let (_dir, cache) = open_temp();
    let first = cache.lock().unwrap();
    // A second handle on the same file, as a second process would have.
    let other = Cache::open(cache.root()).unwrap();
    let err = other.lock().unwrap_err();
    match &err {
        CacheError::Locked { path, holder } => {
            assert_eq!(path, &cache.root().join(LOCK_FILE));
            assert!(
                holder.starts_with(&format!("pid {} since ", std::process::id())),
                "{holder}"
            );
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.starts_with("lock the cache"), "{message}");
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    drop(first);
    let again = other.lock().unwrap();
    assert_eq!(again.path(), cache.root().join(LOCK_FILE));
}

#[test]
fn clear_tmp_removes_debris_under_the_lock() {
    let (_dir, cache) = open_temp();
    fs::write(cache.tmp_dir().join(".part-abc"), b"partial").unwrap();
    fs::create_dir(cache.tmp_dir().join("sub")).unwrap();
    let lock = cache.lock().unwrap();
    assert_eq!(cache.clear_tmp(&lock).unwrap(), 2);
    assert!(entries_in(&cache.tmp_dir()).is_empty());
}

// ---------------------------------------------------------------------------------------------
// output tree

#[cfg(unix)]
fn inode(path: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&fs::metadata(path).unwrap())
}

#[test]
fn link_output_links_is_idempotent_and_replaces_a_different_file() {
    let (dir, cache) = open_temp();
    let object = cache.store_bytes(b"spectrogram").unwrap();
    let dest = dir.path().join("out/DEV/tag/mat/file.mat");
    assert!(link_output(&object.path, &dest).unwrap());
    assert_eq!(fs::read(&dest).unwrap(), b"spectrogram");
    #[cfg(unix)]
    assert_eq!(inode(&dest), inode(&object.path));
    // Again: left alone.
    assert!(link_output(&object.path, &dest).unwrap());

    // A different file in the way (a stale output) is replaced.
    let other = cache.store_bytes(b"newer spectrogram").unwrap();
    assert!(link_output(&other.path, &dest).unwrap());
    assert_eq!(fs::read(&dest).unwrap(), b"newer spectrogram");
    #[cfg(unix)]
    assert_eq!(inode(&dest), inode(&other.path));
    // No temp names left next to it.
    assert_eq!(
        entries_in(dest.parent().unwrap()),
        vec!["file.mat".to_string()]
    );
    // The old object is untouched.
    assert!(cache.verify_object(&object.blake3, object.size).unwrap());
}

/// Two tasks placing the same object at the same output: the loser's temp link and `dest` are
/// the same inode, where POSIX `rename` is a no-op. The temp name must not stay in the tree.
#[cfg(unix)]
#[test]
fn placing_over_a_link_to_the_same_object_leaves_no_temp_name() {
    let (dir, cache) = open_temp();
    let object = cache.store_bytes(b"spectrogram").unwrap();
    let folder = dir.path().join("out");
    fs::create_dir_all(&folder).unwrap();
    let dest = folder.join("file.mat");
    let temp = folder.join(".file.mat.123-4-5.onc-pipe-tmp");
    fs::hard_link(&object.path, &dest).unwrap();
    fs::hard_link(&object.path, &temp).unwrap();
    rename_into_place(&temp, &dest).unwrap();
    assert_eq!(entries_in(&folder), vec!["file.mat".to_string()]);
    assert_eq!(inode(&dest), inode(&object.path));
}

#[test]
fn the_copy_fallback_makes_an_independent_writable_copy() {
    let (dir, cache) = open_temp();
    let object = cache.store_bytes(b"audio").unwrap();
    let dest = dir.path().join("out/clip.flac");
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    fs::write(&dest, b"old and different").unwrap();
    assert!(!place_output(&object.path, &dest, false).unwrap());
    assert_eq!(fs::read(&dest).unwrap(), b"audio");
    #[cfg(unix)]
    assert_ne!(inode(&dest), inode(&object.path));
    assert!(!fs::metadata(&dest).unwrap().permissions().readonly());
    // An identical copy is left alone (and reported as a copy), even when linking is allowed.
    #[cfg(unix)]
    let before = inode(&dest);
    assert!(!link_output(&object.path, &dest).unwrap());
    #[cfg(unix)]
    assert_eq!(inode(&dest), before);
    assert_eq!(
        entries_in(dest.parent().unwrap()),
        vec!["clip.flac".to_string()]
    );
}

#[test]
fn link_output_never_replaces_a_folder_and_names_missing_objects() {
    let (dir, cache) = open_temp();
    let object = cache.store_bytes(b"x").unwrap();
    let dest = dir.path().join("out/folder");
    fs::create_dir_all(&dest).unwrap();
    let err = link_output(&object.path, &dest).unwrap_err();
    assert!(
        matches!(err, CacheError::DestinationIsDirectory { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("folder"), "{err}");

    let missing = cache.object_path(blake3::hash(b"nope").to_hex().as_str());
    let err = link_output(&missing, &dir.path().join("out/f")).unwrap_err();
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
}

#[test]
fn safe_join_refuses_escapes() {
    let base = Path::new("/data/out");
    for bad in ["../x", "/etc/x", "a/../../x", "a/../b", "..", "", ".", "./"] {
        let err = safe_join(base, Path::new(bad)).unwrap_err();
        assert!(matches!(err, CacheError::UnsafePath { .. }), "{bad}: {err}");
        assert!(err.to_string().contains("/data/out"), "{err}");
    }
    assert_eq!(
        safe_join(base, Path::new("a/b")).unwrap(),
        PathBuf::from("/data/out/a/b")
    );
    assert_eq!(
        safe_join(base, Path::new("./a/./b.mat")).unwrap(),
        PathBuf::from("/data/out/a/b.mat")
    );
}

#[test]
fn error_messages_read_after_failed_to() {
    let (_dir, cache) = open_temp();
    let (temp, hex, size) = temp_file(&cache, "m.part", b"m");
    let errors = [
        cache
            .store_object(&temp, &hex, size + 1, false)
            .unwrap_err(),
        cache.store_object(&temp, "zz", size, false).unwrap_err(),
        safe_join(Path::new("/b"), Path::new("../x")).unwrap_err(),
    ];
    for err in errors {
        let message = err.to_string();
        let first = message.chars().next().unwrap();
        assert!(first.is_lowercase(), "{message}");
    }
}
