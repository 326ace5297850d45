//! The architecture's one-way flow, checked on the source: the lower layers (`manifest`, `plan`,
//! `dag`, `cache`, `onc`, `clip`, `estimate`) never import the executor, the compiler, the command line, the
//! reporter, or the simulator's server and files. Test code (`tests.rs` files and the
//! `#[cfg(test)]` module that ends a file) may use the simulator as a source of test data.
//!
//! The simulator's configuration (`onc_sim::config`, `onc_sim::faults`, `SimConfig`) is plain
//! data that a manifest's `[onc.simulator]` is checked against, so the plan may name it.

use std::path::{Path, PathBuf};

use crate::support::repo;

const LOWER_LAYERS: [&str; 7] = [
    "manifest", "plan", "dag", "cache", "onc", "clip", "estimate",
];

const FORBIDDEN: [&str; 9] = [
    "crate::exec",
    "crate::discover",
    "crate::compile",
    "crate::cli",
    "crate::report",
    "crate::run",
    "crate::simulator",
    "crate::error",
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

/// A file's code without its test module (`#[cfg(test)]` then `mod`, by convention the end of
/// a file), and nothing of a `tests.rs` file. Other `#[cfg(test)]` items are kept and checked.
fn non_test_code(path: &Path) -> String {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    let mut from = 0;
    while let Some(found) = text[from..].find("#[cfg(test)]") {
        let at = from + found;
        let after = text[at + "#[cfg(test)]".len()..].trim_start();
        if after.starts_with("mod ") || after.starts_with("pub mod ") {
            return text[..at].to_owned();
        }
        from = at + 1;
    }
    text
}

/// Where `code` names `path` as a whole path (`crate::cli` is not `crate::clip`).
fn names(code: &str, path: &str) -> Vec<usize> {
    code.match_indices(path)
        .filter(|(at, _)| {
            let next = code[at + path.len()..].chars().next();
            path.ends_with("::") || !next.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
        .map(|(at, _)| at)
        .collect()
}

/// Every line of `files` (test code aside) that names a `forbidden` path not in `allowed`.
fn violations(files: &[PathBuf], forbidden: &[&str], allowed: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for file in files {
        for (number, line) in non_test_code(file).lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for path in forbidden {
                for at in names(code, path) {
                    if !allowed.iter().any(|ok| code[at..].starts_with(ok)) {
                        found.push(format!(
                            "{}:{}: {}",
                            file.strip_prefix(repo()).unwrap_or(file).display(),
                            number + 1,
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn lower_layers_import_nothing_above_them() {
    let mut found = Vec::new();
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
        found.extend(violations(&files, &FORBIDDEN, &ALLOWED_SIMULATOR_PATHS));
    }
    assert!(
        found.is_empty(),
        "imports against the flow:\n{}",
        found.join("\n")
    );
}

/// The executor sits below the compiler and above the workers: it takes a plan and a DAG, not
/// the compiler's output, and reports through events, not the reporter.
#[test]
fn the_executor_imports_nothing_above_it() {
    let mut files = Vec::new();
    rust_files(&repo().join("src/exec"), &mut files);
    let forbidden = [
        "crate::compile",
        "crate::cli",
        "crate::report",
        "crate::run",
        "crate::manifest",
        "crate::discover",
        "crate::simulator",
        "onc_sim::",
    ];
    let found = violations(&files, &forbidden, &[]);
    assert!(
        found.is_empty(),
        "imports against the flow:\n{}",
        found.join("\n")
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
    assert_eq!(
        violations(std::slice::from_ref(&file), &FORBIDDEN, &[]).len(),
        1
    );
    assert!(!code.contains("crate::report"));
    assert_eq!(
        names("use crate::clip::Span; use crate::cli;", "crate::cli"),
        [27]
    );
    assert_eq!(
        names("use crate::clip::Span;", "crate::cli"),
        Vec::<usize>::new()
    );
}

/// No source file does the work of several modules: none over 800 lines, tests aside.
#[test]
fn no_source_file_is_over_800_lines() {
    let mut files = Vec::new();
    rust_files(&repo().join("src"), &mut files);
    for krate in std::fs::read_dir(repo().join("crates")).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    let long: Vec<String> = files
        .iter()
        .filter(|file| !file.components().any(|c| c.as_os_str() == "tests"))
        .filter_map(|file| {
            let lines = non_test_code(file).lines().count();
            (lines > 800).then(|| format!("{}: {lines} lines", file.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these files: {long:?}");
}
