//! No panic on any input: mangled manifests go through load → plan → DAG and come out as a plan
//! or as diagnostics, never as a panic.

use std::path::PathBuf;

use onc_pipe::manifest::{Loaded, load_manifest_text};
use proptest::prelude::*;

use crate::support::repo;

fn compile_text_lenient(text: &str) {
    let (parsed, _diagnostics) = load_manifest_text("fuzz.toml", text);
    let Some((manifest, spans)) = parsed else {
        return;
    };
    let loaded = Loaded {
        file: "fuzz.toml".into(),
        path: PathBuf::from("/nonexistent/fuzz.toml"),
        text: text.to_owned(),
        manifest,
        spans,
    };
    let (plan, diagnostics) = onc_pipe::plan::plan_manifest(&loaded);
    for diagnostic in &diagnostics {
        let _ = diagnostic.render_human();
        let _ = diagnostic.render_github();
    }
    if let Some(plan) = plan {
        let dag = onc_pipe::dag::build(&plan);
        assert!(dag.is_acyclic());
    }
}

/// An edit of a manifest: replace, insert or delete characters that matter to TOML and to us.
fn edits() -> impl Strategy<Value = Vec<(usize, u8, char)>> {
    let alphabet = prop::sample::select(vec![
        '0', '1', '9', '-', ':', 'T', 'Z', '.', '"', '\'', '[', ']', '{', '}', '=', ',', '\n', ' ',
        'h', 'm', 's', 'é', '#',
    ]);
    prop::collection::vec((0usize..4000, 0u8..3, alphabet), 1..6)
}

fn apply(text: &str, edits: &[(usize, u8, char)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for &(position, kind, c) in edits {
        if chars.is_empty() {
            chars.push(c);
            continue;
        }
        let at = position % chars.len();
        match kind {
            0 => chars[at] = c,
            1 => chars.insert(at, c),
            _ => {
                chars.remove(at);
            }
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn mangled_manifests_never_panic(edits in edits(), which in 0usize..3) {
        let file = ["manifests/demo.toml", "manifests/scenario2_sampling.toml", "manifests/scenario3_explicit_windows.toml"][which];
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        compile_text_lenient(&apply(&text, &edits));
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        compile_text_lenient(&text);
    }
}

#[test]
fn absurd_values_are_errors_not_hangs() {
    let text = "#:schema x\nversion = 1\n[plan.a]\ndevice = \"ICLISTENHF6324\"\n\
                sample = { start = 1900-01-01T00:00:00Z, end = 9999-12-31T23:59:59Z, count = 4000000000, per_request = 4000000000 }\n";
    let (parsed, _) = load_manifest_text("m.toml", text);
    let (manifest, spans) = parsed.unwrap();
    let loaded = Loaded {
        file: "m.toml".into(),
        path: PathBuf::from("m.toml"),
        text: text.into(),
        manifest,
        spans,
    };
    let (plan, diagnostics) = onc_pipe::plan::plan_manifest(&loaded);
    assert!(plan.is_none());
    let messages: Vec<&str> = diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert!(
        messages.contains(&"`count` must be at most 1000000"),
        "{messages:?}"
    );
}
