//! The architecture's one-way flow, checked on the source: the lower layers (`manifest`, `plan`,
//! `dag`, `cache`, `onc`, `clip`) never import the executor, the compiler, the command line, the
//! reporter, or the simulator's server and files. Test code (`tests.rs` files and the
//! `#[cfg(test)]` module that ends a file) may use the simulator as a source of test data.
//!
//! The simulator's configuration (`onc_sim::config`, `onc_sim::faults`, `SimConfig`) is plain
//! data that a manifest's `[onc.simulator]` is checked against, so the plan may name it.

use std::path::{Path, PathBuf};

use crate::support::repo;

const LOWER_LAYERS: [&str; 6] = ["manifest", "plan", "dag", "cache", "onc", "clip"];

const FORBIDDEN: [&str; 6] = [
    "crate::exec",
    "crate::compile",
    "crate::cli",
    "crate::report",
    "crate::simulator",
    "onc_sim::",
];

const ALLOWED_SIMULATOR_PATHS: [&str; 3] =
    ["onc_sim::config", "onc_sim::faults", "onc_sim::SimConfig"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's code without its trailing test module (and nothing of a `tests.rs` file).
fn non_test_code(path: &Path) -> String {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

#[test]
fn lower_layers_import_nothing_above_them() {
    let mut violations = Vec::new();
    for layer in LOWER_LAYERS {
        let mut files = Vec::new();
        let dir = repo().join("src").join(layer);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        }
        let single = repo().join("src").join(format!("{layer}.rs"));
        if single.is_file() {
            files.push(single);
        }
        assert!(!files.is_empty(), "no source for layer {layer}");
        for file in files {
            for (number, line) in non_test_code(&file).lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                for forbidden in FORBIDDEN {
                    let mut rest = code;
                    while let Some(at) = rest.find(forbidden) {
                        let here = &rest[at..];
                        if !ALLOWED_SIMULATOR_PATHS
                            .iter()
                            .any(|ok| here.starts_with(ok))
                        {
                            violations.push(format!(
                                "{}:{}: {}",
                                file.strip_prefix(repo()).unwrap().display(),
                                number + 1,
                                line.trim()
                            ));
                        }
                        rest = &rest[at + forbidden.len()..];
                    }
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports against the flow:\n{}",
        violations.join("\n")
    );
}

/// The checker itself finds what it must: a forbidden import in a fake layer file.
#[test]
fn the_flow_check_sees_a_violation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.rs");
    std::fs::write(
        &file,
        "use crate::exec::Event;\n#[cfg(test)]\nmod tests { use crate::report; }\n",
    )
    .unwrap();
    let code = non_test_code(&file);
    assert!(code.contains("crate::exec"));
    assert!(!code.contains("crate::report"));
}
