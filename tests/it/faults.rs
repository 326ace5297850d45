//! The fault matrix (issue 11): each of ONC's failure modes alone at a high rate, then all
//! together, against the simulator; for each, the outcome of a `run` and of the next one.
//!
//! What every row must show: every file arrives by the second `run`; the output tree is
//! byte-identical to a fault-free run (no corrupted byte); no file is transferred twice and no
//! request submitted twice, except the resubmission ONC's 410 asks for; a node still failed
//! after the first run is named with ONC's message. The table is printed (`--nocapture`) and
//! recorded in BENCHMARKS.md.

use onc_sim::SimConfig;
use onc_sim::faults::FaultConfig;

use crate::run::{manifest, onc_pipe, record, simulator, tree};
use crate::support::Scratch;

/// One row: its name and the simulator's `--faults` text.
struct Row {
    name: &'static str,
    faults: String,
}

/// A seed under which, among the manifest's 3 submissions, at least one run fails on its first
/// attempt and its three restarts (so the second `run` has work to do) and every run succeeds
/// by its seventh attempt (so the second `run`'s three restarts suffice).
fn failed_run_seed(rate: f64) -> u64 {
    (0..100_000)
        .find(|&seed| {
            let faults = FaultConfig {
                failed_run_rate: rate,
                seed,
                ..FaultConfig::default()
            };
            let needs_second_run =
                (0..3).any(|n| (0..4).all(|attempt| faults.attempt_fails(n, attempt)));
            let done_by_second =
                (0..3).all(|n| (0..8).any(|attempt| !faults.attempt_fails(n, attempt)));
            needs_second_run && done_by_second
        })
        .unwrap()
}

/// A seed under which one of the manifest's 3 submissions finds its files expired (410) and
/// its resubmission (the fourth) does not.
fn expiry_seed(rate: f64) -> u64 {
    (0..100_000)
        .find(|&seed| {
            let faults = FaultConfig {
                expiry_rate: rate,
                seed,
                ..FaultConfig::default()
            };
            (0..3).filter(|&n| faults.expires(n)).count() == 1 && !faults.expires(3)
        })
        .unwrap()
}

/// A seed for all faults together under which one of the 3 submissions finds its files
/// expired (and no resubmission does) and at least one run fails, and every run succeeds within its first three
/// restarts: what the first `run` meets then does not depend on which request gets which
/// submission number. (5xx, 429, resets and truncations fall on any request; retries absorb
/// them.)
fn together_seed() -> u64 {
    (0..100_000)
        .find(|&seed| {
            let faults = FaultConfig {
                failed_run_rate: 0.2,
                expiry_rate: 0.1,
                seed,
                ..FaultConfig::default()
            };
            (0..3).filter(|&n| faults.expires(n)).count() == 1
                && !(3..8).any(|n| faults.expires(n))
                && (0..3).any(|n| faults.run_fails(n))
                && (0..8).all(|n| (0..4).any(|attempt| !faults.attempt_fails(n, attempt)))
        })
        .unwrap()
}

async fn run_twice(faults: &str) -> (serde_json::Value, serde_json::Value, Outcome) {
    let sim = simulator(SimConfig {
        sample_rate: 8_000,
        time_scale: 0.002,
        faults: FaultConfig::parse(faults).unwrap(),
        ..SimConfig::default()
    })
    .await;
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest(&sim.base_url, "max_attempts = 10"));
    let dir = scratch.path().to_path_buf();
    let (first, second) = tokio::task::spawn_blocking(move || {
        let first = onc_pipe(&dir, &["run", "m.toml", "--json", "--quiet"]);
        let second = onc_pipe(&dir, &["run", "m.toml", "--json", "--quiet"]);
        (first, second)
    })
    .await
    .unwrap();
    let stats = sim.stats();
    let outcome = Outcome {
        first_code: first.code,
        second_code: second.code,
        tree: tree(&scratch.path().join("data")),
        submissions: stats.submissions,
        duplicate_submissions: stats.duplicate_submissions,
        files_served_again: stats.files_served_again,
        faults_injected: stats.faults_injected,
        restarts: stats.restarts,
        requests: stats.requests_total,
    };
    sim.stop().await;
    (record(&first), record(&second), outcome)
}

struct Outcome {
    first_code: i32,
    second_code: i32,
    tree: Vec<(String, String)>,
    submissions: u64,
    duplicate_submissions: u64,
    files_served_again: u64,
    faults_injected: u64,
    restarts: u64,
    requests: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_alone_and_together_every_file_arrives_by_the_second_run() {
    // The reference: the same manifest on a simulator without faults.
    let (_, _, reference) = run_twice("").await;
    assert_eq!(reference.first_code, 0);
    // Two of the manifest's requests return the same file (the one straddling their windows);
    // onc-pipe names it with a HEAD before either transfers it, so it is served once.
    assert_eq!(reference.files_served_again, 0);
    assert!(!reference.tree.is_empty());
    let rows = [
        Row {
            name: "5xx 30 %",
            faults: "5xx=0.3,seed=1".into(),
        },
        Row {
            name: "429 30 %",
            faults: "429=0.3,seed=2".into(),
        },
        Row {
            name: "reset 30 %",
            faults: "reset=0.3,seed=3".into(),
        },
        Row {
            name: "truncated 30 %",
            faults: "truncate=0.3,seed=4".into(),
        },
        Row {
            name: "slow answers (+40 ms each)",
            faults: "slow-ms=40".into(),
        },
        Row {
            name: "failed runs 50 %",
            faults: format!("failed-run=0.5,seed={}", failed_run_seed(0.5)),
        },
        Row {
            name: "expired results (410) 20 %",
            faults: format!("expire=0.2,seed={}", expiry_seed(0.2)),
        },
        Row {
            name: "all together",
            faults: format!(
                "5xx=0.1,429=0.05,reset=0.1,truncate=0.1,failed-run=0.2,expire=0.1,slow-ms=5,seed={}",
                together_seed()
            ),
        },
    ];
    println!(
        "| faults | 1st run: exit, failed nodes | 2nd run: exit | tree = fault-free | faults injected | restarts | submissions (duplicates) | files served twice | requests |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let (first, second, outcome) = run_twice(&row.faults).await;
        let failures = first["failures"].as_array().cloned().unwrap_or_default();
        println!(
            "| {} | {}, {} | {} | {} | {} | {} | {} ({}) | {} | {} |",
            row.name,
            outcome.first_code,
            failures.len(),
            outcome.second_code,
            if outcome.tree == reference.tree {
                "yes"
            } else {
                "NO"
            },
            outcome.faults_injected,
            outcome.restarts,
            outcome.submissions,
            outcome.duplicate_submissions,
            outcome.files_served_again,
            outcome.requests,
        );
        // Every recoverable file arrives by the second run, and not one byte differs.
        assert_eq!(outcome.second_code, 0, "{}: {second}", row.name);
        assert_eq!(outcome.tree, reference.tree, "{}", row.name);
        // A node still failed after the first run is named, with ONC's message.
        for failure in &failures {
            let reason = failure["reason"].as_str().unwrap_or_default();
            assert!(
                !failure["what"].as_str().unwrap_or_default().is_empty() && !reason.is_empty(),
                "{}: {failure}",
                row.name
            );
            if row.name.starts_with("failed runs") {
                assert!(reason.contains("simulated failure"), "{reason}");
            }
        }
        // Nothing fetched or ordered twice but what a 410 asks for: ONC deleted the files, so
        // the request is submitted once more and its files fetched again.
        if !row.faults.contains("expire") {
            assert_eq!(outcome.duplicate_submissions, 0, "{}", row.name);
            assert_eq!(
                outcome.files_served_again, reference.files_served_again,
                "{}",
                row.name
            );
        }
        if row.name.starts_with("failed runs") || row.name == "all together" {
            assert!(outcome.restarts > 0, "{}", row.name);
        }
        if row.name.starts_with("failed runs") {
            assert_eq!(outcome.submissions, reference.submissions, "{}", row.name);
        }
        if row.name.starts_with("expired") {
            assert_eq!(outcome.duplicate_submissions, 1, "{}", row.name);
        }
        if row.name == "all together" {
            assert!(outcome.faults_injected > 0, "{}", row.name);
        }
    }
}
