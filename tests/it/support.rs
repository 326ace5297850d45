//! Test helpers: temporary manifests, compiling them, running the real binary.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use onc_pipe::compile::{Compiled, compile};
use onc_pipe::dag::NodeKind;

/// The repository root (where `manifests/` and `schemas/` live).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary folder holding files for one test.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// Compiles manifest text written to a scratch file; panics with the diagnostics on failure.
pub fn compile_text(text: &str) -> Compiled {
    let scratch = Scratch::new();
    let path = scratch.write("m.toml", text);
    match compile(&path) {
        Ok(compiled) => compiled,
        Err(diagnostics) => panic!(
            "{}",
            diagnostics
                .iter()
                .map(|d| d.render_human())
                .collect::<String>()
        ),
    }
}

/// The keys of every node of one kind.
pub fn keys_of(compiled: &Compiled, kind: NodeKind) -> BTreeSet<String> {
    compiled
        .dag
        .nodes()
        .filter(|node| node.kind == kind)
        .map(|node| node.key.to_hex())
        .collect()
}

/// Output of one run of the real binary.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `onc-pipe` with arguments in a working folder.
pub fn onc_pipe(dir: &Path, args: &[&str]) -> Output {
    run_binary(dir, args, None)
}

/// Runs `onc-pipe` with arguments in a working folder, with `ONC_TOKEN` set to `token`.
pub fn onc_pipe_with_token(dir: &Path, args: &[&str], token: &str) -> Output {
    run_binary(dir, args, Some(token))
}

/// A user config file that does not exist: tests never read the developer's own
/// (`~/.config/onc-pipe/config.toml` could hold a token or a cache).
pub const NO_USER_CONFIG: (&str, &str) =
    ("ONC_PIPE_CONFIG", "/nonexistent/onc-pipe-tests/config.toml");

fn run_binary(dir: &Path, args: &[&str], token: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_onc-pipe"));
    command
        .args(args)
        .current_dir(dir)
        .env(NO_USER_CONFIG.0, NO_USER_CONFIG.1)
        .env_remove("ONC_BASE_URL");
    if let Some(token) = token {
        command.env("ONC_TOKEN", token);
    }
    let output = command.output().unwrap();
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A small manifest used by key tests; `{...}` placeholders are replaced by the caller.
pub const BASE: &str = r#"#:schema ../schemas/manifest.schema.json
version = 1

[plan.events]
device = "ICLISTENHF6324"
windows = [
  { start = 2024-04-01T04:24:50Z, end = 2024-04-01T04:25:10Z, label = "LABEL" },
]

[fetch.plotres]
plan = "events"
product = "HSD"
extension = "EXT"
options = { dpo_spectralDataDownsample = DOWNSAMPLE, dpo_hydrophoneDataDiversionMode = "OD" }

[clip.events]
plan = "events"
fetch = "plotres"
pad_before = "PAD_BEFORE"
pad_after = "15s"
spectrogram = "FORMAT"
gaps = "GAPS"
"#;

/// [`BASE`] with its default values, and each placeholder overridable.
pub fn base_with(overrides: &[(&str, &str)]) -> String {
    let defaults = [
        ("LABEL", "humpback call"),
        ("EXT", "mat"),
        ("DOWNSAMPLE", "2"),
        ("PAD_BEFORE", "10s"),
        ("FORMAT", "npz"),
        ("GAPS", "fill"),
    ];
    let mut text = BASE.to_owned();
    for (placeholder, default) in defaults {
        let value = overrides
            .iter()
            .find(|(p, _)| *p == placeholder)
            .map_or(default, |(_, v)| *v);
        text = text.replace(placeholder, value);
    }
    text
}

/// `catalog.csv`'s bytes with its ONC id columns blanked: two runs that ordered the same
/// products get different dpRequestIds from ONC, and everything else in the catalog must match.
pub fn catalog_without_onc_ids(bytes: &[u8]) -> Vec<u8> {
    let mut reader = csv::Reader::from_reader(bytes);
    let header = reader.headers().unwrap().clone();
    let ids: Vec<usize> = header
        .iter()
        .enumerate()
        .filter(|(_, name)| matches!(*name, "dp_request_ids" | "dp_run_ids"))
        .map(|(i, _)| i)
        .collect();
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&header).unwrap();
    for record in reader.records() {
        let record = record.unwrap();
        let row: Vec<&str> = record
            .iter()
            .enumerate()
            .map(|(i, cell)| if ids.contains(&i) { "" } else { cell })
            .collect();
        writer.write_record(&row).unwrap();
    }
    writer.into_inner().unwrap()
}
