//! The team store's guarantees, proved on `object_store`'s in-memory store (which, unlike the
//! moto server the integration tests use, serialises racing conditional writes like S3) and
//! on the local file system: one winner per claim however many race, takeover only of a dead
//! or silent holder, write-once records, a missing object read as a miss.

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use object_store::memory::InMemory;

use super::claims::ClaimAttempt;
use super::*;
use crate::cache::{Cache, CoverageEntry, JournalEntry, NodeRecord, StoredFile};

fn remote_over(store: &Arc<InMemory>, lease: Duration) -> Arc<Remote> {
    let store: Arc<dyn ObjectStore> = store.clone();
    Arc::new(Remote::with_store(store, "memory://test".into(), "team/lab".into(), lease).unwrap())
}

fn holder(n: u32) -> Holder {
    Holder {
        host: format!("node{n}"),
        pid: n,
        cache_id: format!("cache{n}"),
        since: "2026-12-06T00:00:00.000Z".into(),
    }
}

fn journal_entry() -> JournalEntry {
    JournalEntry {
        query: BTreeMap::from([("deviceCode".into(), "D".into())]),
        dp_request_id: 42,
        dp_run_id: Some(7),
        submitted_at: "2026-12-06T00:00:00.000Z".into(),
        base_url: "simulator".into(),
        restarts: 0,
    }
}

fn held(attempt: &ClaimAttempt) -> bool {
    matches!(attempt, ClaimAttempt::Held { .. })
}

#[test]
fn sixteen_runs_racing_for_one_claim_make_one_holder() {
    let store = Arc::new(InMemory::new());
    let barrier = Arc::new(Barrier::new(16));
    let racers: Vec<_> = (0..16)
        .map(|n| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                let remote = remote_over(&store, Duration::from_secs(60));
                barrier.wait();
                let attempt = remote.try_claim("ab12", &holder(n)).unwrap();
                let won = held(&attempt);
                // Keep the winner's claim alive while the others look.
                std::thread::sleep(Duration::from_millis(200));
                won
            })
        })
        .collect();
    let winners: Vec<bool> = racers
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .collect();
    assert_eq!(winners.iter().filter(|won| **won).count(), 1, "{winners:?}");
}

#[test]
fn a_renewed_claim_is_never_taken_and_a_silent_one_is_taken_once_with_its_ids() {
    let store = Arc::new(InMemory::new());
    let lease = Duration::from_millis(300);
    let first = remote_over(&store, lease);
    assert!(held(&first.try_claim("ab12", &holder(1)).unwrap()));
    first.note_journal("ab12", &journal_entry()).unwrap();
    // Alive: renewed every 100 ms, so a watcher never sees it unchanged for a lease.
    let watcher = remote_over(&store, lease);
    for _ in 0..8 {
        let attempt = watcher.try_claim("ab12", &holder(2)).unwrap();
        assert_eq!(
            attempt,
            ClaimAttempt::Busy(holder(1).describe()),
            "a live claim was taken"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Killed: no release, no more renewals (the remote and its renewal thread are gone).
    drop(first);
    // Two takers race once the lease has passed unchanged: one gets the ids, the other waits.
    let other = remote_over(&store, lease);
    let mut outcomes = Vec::new();
    for _ in 0..12 {
        outcomes = vec![
            watcher.try_claim("ab12", &holder(2)).unwrap(),
            other.try_claim("ab12", &holder(3)).unwrap(),
        ];
        if outcomes.iter().any(held) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let winners: Vec<&ClaimAttempt> = outcomes.iter().filter(|a| held(a)).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    assert_eq!(
        winners[0],
        &ClaimAttempt::Held {
            taken_over: Some(journal_entry())
        }
    );
}

#[test]
fn a_claim_from_the_same_cache_folder_is_taken_at_once() {
    let store = Arc::new(InMemory::new());
    let dead = remote_over(&store, Duration::from_secs(3600));
    assert!(held(&dead.try_claim("ab12", &holder(1)).unwrap()));
    dead.note_journal("ab12", &journal_entry()).unwrap();
    drop(dead);
    // Same folder (its OS lock on the node is held by the caller): that holder is dead.
    let rerun = remote_over(&store, Duration::from_secs(3600));
    let me = Holder {
        pid: 99,
        ..holder(1)
    };
    assert_eq!(
        rerun.try_claim("ab12", &me).unwrap(),
        ClaimAttempt::Held {
            taken_over: Some(journal_entry())
        }
    );
}

#[test]
fn a_released_claim_is_free_unless_its_submission_is_in_flight() {
    let store = Arc::new(InMemory::new());
    let remote = remote_over(&store, Duration::from_secs(60));
    assert!(held(&remote.try_claim("ab12", &holder(1)).unwrap()));
    remote.release("ab12", false);
    let other = remote_over(&store, Duration::from_secs(60));
    assert!(held(&other.try_claim("ab12", &holder(2)).unwrap()));
    other.release("ab12", true);
    assert!(matches!(
        remote.try_claim("ab12", &holder(1)).unwrap(),
        ClaimAttempt::Busy(_)
    ));
}

fn stored(cache: &Cache, bytes: &[u8], name: &str, from_ms: i64, to_ms: i64) -> StoredFile {
    let object = cache.store_bytes(bytes).unwrap();
    StoredFile {
        name: name.into(),
        blake3: object.blake3,
        size: object.size,
        start_ms: Some(from_ms),
        end_ms: Some(to_ms),
    }
}

#[test]
fn what_one_folder_records_another_pulls_and_a_lost_object_is_a_miss() {
    let store = Arc::new(InMemory::new());
    let dir = tempfile::tempdir().unwrap();
    let writer = Cache::open(&dir.path().join("a"))
        .unwrap()
        .with_remote(remote_over(&store, Duration::from_secs(60)));
    let file = stored(&writer, b"five minutes of sound", "a.flac", 0, 300_000);
    let entry = CoverageEntry {
        key: "ab12".into(),
        from_ms: 0,
        to_ms: 300_000,
        files: vec![file.clone()],
        dp_request_id: Some(1),
        dp_run_id: Some(2),
        completed_at: "2026-12-06T00:00:00.000Z".into(),
    };
    writer.record_coverage("id1", &entry).unwrap();
    let clip = stored(&writer, b"a clip", "c.wav", 10, 20);
    let record = NodeRecord {
        key: "cd34".into(),
        kind: "clip".into(),
        outputs: vec![clip],
        completed_at: "2026-12-06T00:00:00.000Z".into(),
        detail: serde_json::json!({}),
    };
    writer.write_node_record(&record).unwrap();
    // Written once: the same record again is no error, and sends no object twice.
    let before = writer.remote().unwrap().totals();
    writer.write_node_record(&record).unwrap();
    let after = writer.remote().unwrap().totals();
    assert_eq!(after.put, before.put + 1, "only the record, not its object");

    let reader_remote = remote_over(&store, Duration::from_secs(60));
    let reader = Cache::open(&dir.path().join("b"))
        .unwrap()
        .with_remote(reader_remote.clone());
    assert_eq!(
        reader_remote
            .pull_coverage(&reader, "id1", 100_000, 400_000, false)
            .unwrap(),
        1
    );
    assert!(reader.has_object(&file.blake3, file.size));
    assert!(
        reader
            .coverage("id1")
            .unwrap()
            .uncovered(0, 300_000)
            .is_empty()
    );
    // A window the entry does not touch brings nothing.
    assert_eq!(
        reader_remote
            .pull_coverage(&reader, "id1", 300_000, 400_000, false)
            .unwrap(),
        0
    );
    assert!(reader_remote.pull_node_record(&reader, "cd34").unwrap());
    assert!(reader.read_node_record("cd34").unwrap().is_some());
    assert!(!reader_remote.pull_node_record(&reader, "ef56").unwrap());

    // An object gone from the store: the record that names it is a miss, not an error.
    let third = Cache::open(&dir.path().join("c")).unwrap();
    let third_remote = remote_over(&store, Duration::from_secs(60));
    let key = format!("objects-v1/{}/{}", &file.blake3[..2], file.blake3);
    third_remote.delete(&key).unwrap();
    assert_eq!(
        third_remote
            .pull_coverage(&third, "id1", 0, 300_000, false)
            .unwrap(),
        0
    );
    assert!(
        !third
            .coverage("id1")
            .unwrap()
            .uncovered(0, 300_000)
            .is_empty()
    );
}

#[test]
fn a_file_store_claims_with_os_locks_and_hands_over_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let url = RemoteUrl::parse(&format!("file://{}", dir.path().join("team").display())).unwrap();
    let first = Arc::new(Remote::open(&url, Duration::from_secs(60)).unwrap());
    assert!(held(&first.try_claim("ab12", &holder(1)).unwrap()));
    first.note_journal("ab12", &journal_entry()).unwrap();
    let second = Arc::new(Remote::open(&url, Duration::from_secs(60)).unwrap());
    assert_eq!(
        second.try_claim("ab12", &holder(2)).unwrap(),
        ClaimAttempt::Busy(holder(1).describe())
    );
    // The first run stops with its submission in flight: the lock goes, the record stays.
    first.release("ab12", true);
    assert_eq!(
        second.try_claim("ab12", &holder(2)).unwrap(),
        ClaimAttempt::Held {
            taken_over: Some(journal_entry())
        }
    );
}

#[test]
fn cache_urls_parse_and_bad_ones_say_what_is_valid() {
    let url = RemoteUrl::parse("s3://lab-bucket/onc/cache/").unwrap();
    assert_eq!(
        (url.kind, url.container.as_str()),
        (StoreKind::S3, "lab-bucket")
    );
    assert_eq!(url.prefix, "onc/cache");
    assert_eq!(url.to_string(), "s3://lab-bucket/onc/cache");
    assert_eq!(
        CacheLocation::parse(".onc-pipe").unwrap(),
        CacheLocation::Folder(".onc-pipe".into())
    );
    for bad in [
        "s3://A/x",
        "s3://ab",
        "gs://b/x",
        "file://relative",
        "s3://bucket/a/../b",
    ] {
        let error = RemoteUrl::parse(bad).unwrap_err().to_string();
        assert!(error.contains(URL_EXPECTED), "{bad}: {error}");
    }
}
