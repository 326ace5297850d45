//! Node keys: pinned golden values, and one test per key field proving it invalidates exactly
//! the nodes it should.

use onc_pipe::dag::NodeKind;

use crate::support::{base_with, compile_text, keys_of};

/// Which kinds of node got new keys when the manifest changed.
fn changed_kinds(before: &str, after: &str) -> Vec<NodeKind> {
    let (a, b) = (compile_text(before), compile_text(after));
    [
        NodeKind::Window,
        NodeKind::ProductRequest,
        NodeKind::ArchiveList,
        NodeKind::File,
        NodeKind::Clip,
    ]
    .into_iter()
    .filter(|kind| keys_of(&a, *kind) != keys_of(&b, *kind))
    .collect()
}

#[test]
fn golden_keys_are_stable() {
    // If this fails, every user's cache is invalidated: bump KEY_FORMAT_VERSION on purpose, or
    // find the accidental change to a key struct.
    let compiled = compile_text(&base_with(&[]));
    let pinned: Vec<(NodeKind, String)> = compiled
        .dag
        .nodes()
        .map(|node| (node.kind, node.key.to_hex()))
        .collect();
    assert_eq!(
        pinned,
        vec![
            (
                NodeKind::Window,
                "eb47cd701e3c7d20f264ca56ac714720f2b6ff0eb3afa47a77781b296f29989b".to_owned()
            ),
            (
                NodeKind::ProductRequest,
                "2f86f8a2d11219a646696f1c08ff02f4b92b278c80060801e6bc5ce907262633".to_owned()
            ),
            // The padded clip [04:24:40, 04:25:25] crosses the 04:25 boundary: two files.
            (
                NodeKind::File,
                "61ea4901b077a6dbaa154032d5d5856084b7e76779570e28b9f5cace5efb4c7b".to_owned()
            ),
            (
                NodeKind::File,
                "3cb6b35a7af1a70048181e0cd4ef1d3f392cc669b12ff265bfae4ce2c0ecd1ea".to_owned()
            ),
            (
                NodeKind::Clip,
                "edd5d1c431a6bda0dc76febabbfb81cfa2138ce4d2e245b239e3a13ad7106893".to_owned()
            ),
        ]
    );
}

#[test]
fn window_key_is_blake3_of_its_canonical_key_struct() {
    let compiled = compile_text(&base_with(&[]));
    let window = compiled.dag.nodes().next().unwrap();
    let canonical = r#"{"format_version":1,"kind":"window","fields":{"device":"ICLISTENHF6324","end":"2024-04-01T04:25:10.000Z","start":"2024-04-01T04:24:50.000Z"},"inputs":[]}"#;
    let expected = blake3::derive_key("onc-pipe node key", canonical.as_bytes());
    assert_eq!(window.key.0, expected);
}

#[test]
fn dpo_option_change_invalidates_request() {
    assert_eq!(
        changed_kinds(&base_with(&[]), &base_with(&[("DOWNSAMPLE", "0")])),
        vec![NodeKind::ProductRequest, NodeKind::File, NodeKind::Clip]
    );
}

#[test]
fn extension_change_invalidates_request() {
    let before = base_with(&[]);
    let after = base_with(&[("EXT", "png")]);
    assert_eq!(
        changed_kinds(&before, &after),
        vec![NodeKind::ProductRequest, NodeKind::File, NodeKind::Clip]
    );
}

#[test]
fn label_change_does_not_invalidate_fetch() {
    assert_eq!(
        changed_kinds(&base_with(&[]), &base_with(&[("LABEL", "fin whale")])),
        vec![NodeKind::Clip]
    );
}

#[test]
fn padding_change_recuts_clips_but_keeps_files() {
    // More padding widens the ONC query (a new request key) but the five-minute files it needs
    // are the same ones: their keys, and so their cache entries, do not move.
    assert_eq!(
        changed_kinds(&base_with(&[]), &base_with(&[("PAD_BEFORE", "12s")])),
        vec![NodeKind::ProductRequest, NodeKind::Clip]
    );
}

#[test]
fn clip_format_change_invalidates_clips_only() {
    assert_eq!(
        changed_kinds(&base_with(&[]), &base_with(&[("FORMAT", "mat")])),
        vec![NodeKind::Clip]
    );
}

#[test]
fn gap_policy_change_invalidates_clips_only() {
    assert_eq!(
        changed_kinds(&base_with(&[]), &base_with(&[("GAPS", "fail")])),
        vec![NodeKind::Clip]
    );
}

#[test]
fn device_change_invalidates_everything() {
    let before = base_with(&[]);
    let after = before.replace("ICLISTENHF6324", "ICLISTENHF6406");
    assert_eq!(
        changed_kinds(&before, &after),
        vec![
            NodeKind::Window,
            NodeKind::ProductRequest,
            NodeKind::File,
            NodeKind::Clip
        ]
    );
}

#[test]
fn stage_names_and_tags_do_not_change_keys() {
    let before = base_with(&[]);
    let after = before
        .replace("[plan.events]", "[plan.calls]\ntag = \"whales\"")
        .replace("plan = \"events\"", "plan = \"calls\"")
        .replace("[fetch.plotres]", "[fetch.spectrograms]")
        .replace("fetch = \"plotres\"", "fetch = \"spectrograms\"");
    assert_eq!(changed_kinds(&before, &after), Vec::<NodeKind>::new());
}

#[test]
fn option_order_and_number_spelling_do_not_change_keys() {
    let before = base_with(&[]);
    let after = before.replace(
        "options = { dpo_spectralDataDownsample = 2, dpo_hydrophoneDataDiversionMode = \"OD\" }",
        "options = { dpo_hydrophoneDataDiversionMode = \"OD\", dpo_spectralDataDownsample = \"2\" }",
    );
    assert_ne!(before, after);
    assert_eq!(changed_kinds(&before, &after), Vec::<NodeKind>::new());
}

#[test]
fn window_time_change_invalidates_window_and_request_but_shared_files_stay() {
    let before = base_with(&[]);
    let after = before.replace("end = 2024-04-01T04:25:10Z", "end = 2024-04-01T04:31:00Z");
    let (a, b) = (compile_text(&before), compile_text(&after));
    assert_ne!(keys_of(&a, NodeKind::Window), keys_of(&b, NodeKind::Window));
    assert_ne!(
        keys_of(&a, NodeKind::ProductRequest),
        keys_of(&b, NodeKind::ProductRequest)
    );
    let (files_a, files_b) = (keys_of(&a, NodeKind::File), keys_of(&b, NodeKind::File));
    assert!(
        files_a.is_subset(&files_b),
        "the longer window needs the same files and more"
    );
    assert!(files_b.len() > files_a.len());
}

#[test]
fn overlapping_stages_share_requests_and_files() {
    let text = r#"#:schema ../schemas/manifest.schema.json
version = 1
[plan.morning]
device = "ICLISTENHF6324"
range = { start = 2024-04-01T00:00:00Z, end = 2024-04-01T00:30:00Z }
[plan.overlap]
device = "ICLISTENHF6324"
range = { start = 2024-04-01T00:20:00Z, end = 2024-04-01T00:40:00Z }
[fetch.a]
plan = "morning"
product = "HSD"
extension = "mat"
[fetch.b]
plan = ["overlap", "morning"]
product = "HSD"
extension = "mat"
"#;
    let compiled = compile_text(text);
    // 00:00-00:40 is 8 nominal files, fetched once, in one request of at most 12.
    assert_eq!(compiled.dag.count(NodeKind::File), 8);
    assert_eq!(compiled.dag.count(NodeKind::ProductRequest), 1);
    assert!(compiled.dag.is_acyclic());
}
