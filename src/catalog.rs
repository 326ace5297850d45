//! The catalog of an output tree: `catalog.csv`, one row per clip, so a notebook reads a table
//! instead of globbing sidecars (and a renamed event's old files, still on disk, are not
//! counted: only the clips the manifest produces now are listed).
//!
//! Input: the compiled DAG (every clip node of the manifest, whichever shard ran it), the cache
//! (each clip node's record and the sidecar it stored) and the output root. Output:
//! `OUTPUT/catalog.csv`, replaced atomically (a hidden temporary name beside it, renamed over
//! it), and a [`Catalog`] summary for the run record. A clip not cut yet (a failed one, one
//! still to run) or skipped at a gap has no row. Errors: writing the file ([`CatalogError`]);
//! a record or sidecar that cannot be read leaves its clip out, counted in
//! [`Catalog::unreadable`].
//!
//! Shards on machines with their own cache folders but one output tree (a cluster's shared
//! file system, a team store) each hold the records of their own clips only. So a clip of the
//! manifest with no record here keeps the row the catalog already had for it, if its files are
//! still in the tree; and the read-merge-write is done under an OS lock on the output folder,
//! so shards finishing together add their rows instead of overwriting each other's.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::cache::Cache;
use crate::dag::{Dag, NodeKind};

/// The catalog's file name, at the root of the output tree.
pub const CATALOG_FILE: &str = "catalog.csv";

/// What a catalog write produced, for the run record and the run's last lines.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Catalog {
    /// `OUTPUT/catalog.csv`.
    pub path: PathBuf,
    /// Rows: clips (a split clip's pieces each count).
    pub clips: usize,
    /// Clips with a gap filled with silence (audio) or NaN columns (spectrograms).
    pub gap_filled: usize,
    /// Seconds of filled gap over all clips.
    pub gap_filled_seconds: f64,
    /// Clip nodes whose record or sidecar could not be read (left out).
    pub unreadable: usize,
    /// Every clip file the catalog lists, relative to the output root: what a workflow
    /// manager (Snakemake, Nextflow, DVC) declares as onc-pipe's outputs.
    pub outputs: Vec<String>,
    /// The annotation files beside the audio clips (Audacity label tracks, Raven selection
    /// tables; see [`crate::annotations`]), relative to the output root.
    pub annotations: Vec<String>,
    /// The rows written, for the writers that follow the catalog (annotations).
    #[serde(skip)]
    pub rows: Vec<Row>,
}

#[derive(Debug, thiserror::Error)]
#[error("could not write the catalog {path}: {source}")]
pub struct CatalogError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// One row of `catalog.csv`. Times are ISO 8601 UTC, as in the sidecars; lists are joined
/// with `;`; paths are relative to the catalog's folder.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Row {
    /// The clip's first file (its first format), e.g. `DEVICE/TAG/clips/audio/NAME.flac`.
    pub path: String,
    /// Every format's file, `;`-joined.
    pub paths: String,
    /// The sidecar JSON.
    pub sidecar: String,
    pub stage: String,
    /// `spectrogram` or `audio`.
    pub media: String,
    pub device: String,
    pub location: String,
    pub label: String,
    pub name: String,
    /// `k/n` for a piece of a clip split at gaps; empty otherwise.
    pub part: String,
    pub requested_start: String,
    pub requested_end: String,
    pub padded_start: String,
    pub padded_end: String,
    /// The first and last sample or column written.
    pub first: String,
    pub last: String,
    /// Samples or columns written.
    pub length: u64,
    /// `sample` or `column`.
    pub unit: String,
    /// Audio: samples per second.
    pub sample_rate: Option<u32>,
    /// Spectrograms: seconds per column.
    pub seconds_per_column: Option<f64>,
    /// `fill`, `split`, `skip` or `fail`.
    pub gap_policy: String,
    /// Seconds of the clip filled because no source had data (`gaps = "fill"`).
    pub filled_gap_s: f64,
    /// The share of the padded window some source had data for, 0 to 1.
    pub coverage: f64,
    /// ONC's source files cut from.
    pub source_files: String,
    pub dp_request_ids: String,
    pub dp_run_ids: String,
    /// The clip node's content key.
    pub node_key: String,
}

/// The rows of every clip of `dag` that the cache holds a record of, sorted by path; how many
/// could not be read; and the node keys (hex) of the clips with no record here.
pub fn rows(dag: &Dag, cache: &Cache) -> (Vec<Row>, usize, BTreeSet<String>) {
    let mut rows = Vec::new();
    let mut unreadable = 0;
    let mut elsewhere = BTreeSet::new();
    for node in dag.nodes().filter(|node| node.kind == NodeKind::Clip) {
        let record = match cache.read_node_record(&node.key.to_hex()) {
            Ok(Some(record)) => record,
            // Not cut yet, or cut by a run with another cache folder (see the module doc).
            Ok(None) => {
                elsewhere.insert(node.key.to_hex());
                continue;
            }
            Err(_) => {
                unreadable += 1;
                continue;
            }
        };
        for sidecar in record
            .outputs
            .iter()
            .filter(|output| output.name.ends_with(".json"))
        {
            let value = std::fs::read(cache.object_path(&sidecar.blake3))
                .ok()
                .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
            let Some(value) = value else {
                unreadable += 1;
                continue;
            };
            let stem = sidecar.name.trim_end_matches(".json");
            let files: Vec<String> = record
                .outputs
                .iter()
                .filter(|output| output.name != sidecar.name)
                .filter(|output| Path::new(&output.name).with_extension("") == Path::new(stem))
                .map(|output| slashed(&output.name))
                .collect();
            rows.push(row(&value, &slashed(&sidecar.name), &files));
        }
    }
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    (rows, unreadable, elsewhere)
}

/// The rows of the catalog at `path` for clips in `elsewhere` whose files are all still in
/// `output_dir`. A missing or unreadable catalog keeps nothing (it is rewritten whole).
fn kept_rows(path: &Path, output_dir: &Path, elsewhere: &BTreeSet<String>) -> Vec<Row> {
    let Ok(mut reader) = csv::Reader::from_path(path) else {
        return Vec::new();
    };
    reader
        .deserialize::<Row>()
        .filter_map(Result::ok)
        .filter(|row| elsewhere.contains(&row.node_key))
        .filter(|row| {
            row.paths
                .split(';')
                .chain([row.sidecar.as_str()])
                .filter(|file| !file.is_empty())
                .all(|file| {
                    crate::cache::safe_join(output_dir, Path::new(file))
                        .is_ok_and(|full| full.is_file())
                })
        })
        .collect()
}

/// An OS lock on the output folder itself (no lock file in the tree), held while the catalog
/// is read, merged and replaced; released when dropped. Where a folder cannot be locked (not
/// Unix, or a file system without locks), the write goes ahead unlocked: the catalog is then
/// the last writer's, which is what a single run gives anyway.
fn lock_folder(output_dir: &Path) -> Option<std::fs::File> {
    let folder = std::fs::File::open(output_dir).ok()?;
    folder.lock().ok()?;
    Some(folder)
}

/// Paths in the catalog use `/` whatever the platform, as pandas and glob expect.
fn slashed(name: &str) -> String {
    name.replace('\\', "/")
}

fn text(value: &Value, pointer: &str) -> String {
    match value.pointer(pointer) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn seconds(start: &str, end: &str) -> Option<f64> {
    let start = chrono::DateTime::parse_from_rfc3339(start).ok()?;
    let end = chrono::DateTime::parse_from_rfc3339(end).ok()?;
    let nanos = (end - start).num_nanoseconds()?;
    Some(nanos as f64 / 1e9)
}

/// `;`-joined distinct values of `field` over the sidecar's sources, in order.
fn joined_sources(value: &Value, field: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    for source in value
        .get("sources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let item = match source.get(field) {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Number(number)) => number.to_string(),
            _ => continue,
        };
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen.join(";")
}

fn row(value: &Value, sidecar: &str, files: &[String]) -> Row {
    let padded_start = text(value, "/padded_window/start");
    let padded_end = text(value, "/padded_window/end");
    let gap_seconds: f64 = value
        .get("gaps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|gap| gap.get("seconds").and_then(Value::as_f64))
        // Folded from +0: an empty f64 sum is -0, which a CSV would show as "-0.0".
        .fold(0.0, |total, gap| total + gap);
    let gap_policy = text(value, "/gap_policy");
    let padded = seconds(&padded_start, &padded_end).unwrap_or(0.0);
    // The sidecar's own figure (the samples or columns taken from sources); sidecars written
    // before it was recorded: from the gaps they report.
    let coverage = match value.get("coverage").and_then(Value::as_f64) {
        Some(share) => share,
        None if padded > 0.0 => (1.0 - gap_seconds / padded).clamp(0.0, 1.0),
        None => 1.0,
    };
    let part = match (
        value.pointer("/part/index").and_then(Value::as_u64),
        value.pointer("/part/of").and_then(Value::as_u64),
    ) {
        (Some(index), Some(of)) => format!("{index}/{of}"),
        _ => String::new(),
    };
    Row {
        path: files.first().cloned().unwrap_or_default(),
        paths: files.join(";"),
        sidecar: sidecar.to_owned(),
        stage: text(value, "/stage"),
        media: text(value, "/media"),
        device: text(value, "/device"),
        location: text(value, "/location"),
        label: text(value, "/label"),
        name: text(value, "/name"),
        part,
        requested_start: text(value, "/requested_window/start"),
        requested_end: text(value, "/requested_window/end"),
        padded_start,
        padded_end,
        first: text(value, "/first"),
        last: text(value, "/last"),
        length: value.get("length").and_then(Value::as_u64).unwrap_or(0),
        unit: text(value, "/unit"),
        sample_rate: value
            .get("sample_rate")
            .and_then(Value::as_u64)
            .and_then(|rate| u32::try_from(rate).ok()),
        seconds_per_column: value.get("seconds_per_column").and_then(Value::as_f64),
        filled_gap_s: if gap_policy == "fill" {
            gap_seconds
        } else {
            0.0
        },
        gap_policy,
        coverage,
        source_files: joined_sources(value, "file"),
        dp_request_ids: joined_sources(value, "dp_request_id"),
        dp_run_ids: joined_sources(value, "dp_run_id"),
        node_key: text(value, "/node_key"),
    }
}

/// The CSV text of `rows`, header first.
pub fn to_csv(rows: &[Row]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        // serde writes the header with the first row; an empty catalog still has one.
        writer.write_record(HEADER)?;
    }
    for row in rows {
        writer.serialize(row)?;
    }
    writer
        .into_inner()
        .map_err(|error| csv::Error::from(error.into_error()))
}

/// The column names, in order (those of [`Row`]).
pub const HEADER: [&str; 27] = [
    "path",
    "paths",
    "sidecar",
    "stage",
    "media",
    "device",
    "location",
    "label",
    "name",
    "part",
    "requested_start",
    "requested_end",
    "padded_start",
    "padded_end",
    "first",
    "last",
    "length",
    "unit",
    "sample_rate",
    "seconds_per_column",
    "gap_policy",
    "filled_gap_s",
    "coverage",
    "source_files",
    "dp_request_ids",
    "dp_run_ids",
    "node_key",
];

/// Writes `OUTPUT/catalog.csv` for every clip of `dag` the cache holds (see the module doc).
pub fn write(dag: &Dag, cache: &Cache, output_dir: &Path) -> Result<Catalog, CatalogError> {
    let path = output_dir.join(CATALOG_FILE);
    let failed = |source: std::io::Error| CatalogError {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(output_dir).map_err(failed)?;
    let _locked = lock_folder(output_dir);
    let (mut rows, unreadable, elsewhere) = rows(dag, cache);
    if !elsewhere.is_empty() {
        rows.extend(kept_rows(&path, output_dir, &elsewhere));
        rows.sort_by(|a, b| a.path.cmp(&b.path));
    }
    let bytes = to_csv(&rows).map_err(|error| failed(std::io::Error::other(error)))?;
    let temp = crate::temp::TempGuard::new(output_dir.join(crate::temp::unique_name(
        &format!(".{CATALOG_FILE}."),
        crate::temp::OUTPUT_TEMP_SUFFIX,
    )));
    let mut file = std::fs::File::create_new(temp.path()).map_err(failed)?;
    file.write_all(&bytes).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(temp.path(), &path).map_err(failed)?;
    temp.disarm();
    // Under the same lock: a shard finishing meanwhile waits, then writes the tables and
    // labels of the merged rows, not of its own only.
    let annotations =
        crate::annotations::write(&rows, output_dir).map_err(|error| CatalogError {
            path: error.path,
            source: error.source,
        })?;
    let gap_filled: Vec<&Row> = rows.iter().filter(|row| row.filled_gap_s > 0.0).collect();
    Ok(Catalog {
        path,
        clips: rows.len(),
        gap_filled: gap_filled.len(),
        gap_filled_seconds: gap_filled
            .iter()
            .fold(0.0, |total, row| total + row.filled_gap_s),
        unreadable,
        outputs: rows
            .iter()
            .flat_map(|row| row.paths.split(';').filter(|p| !p.is_empty()))
            .map(str::to_owned)
            .collect(),
        annotations,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sidecar() -> Value {
        serde_json::json!({
            "node_key": "ab".repeat(32),
            "stage": "events",
            "device": "ICLISTENHF6324",
            "location": "BACAX",
            "label": "humpback, call",
            "name": "humpback_0425",
            "media": "audio",
            "requested_window": {"start": "2024-04-01T04:24:50Z", "end": "2024-04-01T04:25:10Z"},
            "padded_window": {"start": "2024-04-01T04:24:40Z", "end": "2024-04-01T04:25:20Z"},
            "gap_policy": "fill",
            "first": "2024-04-01T04:24:40.000000Z",
            "last": "2024-04-01T04:25:19.999875Z",
            "length": 320000,
            "unit": "sample",
            "sample_rate": 8000,
            "sources": [
                {"file": "A.flac", "dp_request_id": null, "dp_run_id": null},
                {"file": "B.flac", "dp_request_id": 7, "dp_run_id": 9},
                {"file": "B.flac", "dp_request_id": 7, "dp_run_id": 9}
            ],
            "gaps": [{"start": "x", "end": "y", "seconds": 10.0}],
        })
    }

    #[test]
    fn a_row_carries_what_a_notebook_needs() {
        let files = vec![
            "D/events/clips/audio/humpback_0425.flac".to_owned(),
            "D/events/clips/audio/humpback_0425.wav".to_owned(),
        ];
        let row = row(
            &sidecar(),
            "D/events/clips/audio/humpback_0425.json",
            &files,
        );
        assert_eq!(row.path, files[0]);
        assert_eq!(row.paths, files.join(";"));
        assert_eq!(row.label, "humpback, call");
        assert_eq!(row.sample_rate, Some(8000));
        assert_eq!(row.filled_gap_s, 10.0);
        assert!((row.coverage - 0.75).abs() < 1e-9, "{}", row.coverage);
        assert_eq!(row.source_files, "A.flac;B.flac");
        assert_eq!(row.dp_request_ids, "7");
        assert_eq!(row.part, "");
        // A split clip fills nothing: its gaps are between pieces, not in them.
        let mut split = sidecar();
        split["gap_policy"] = "split".into();
        split["part"] = serde_json::json!({"index": 2, "of": 3});
        let row = super::row(&split, "x.json", &files);
        assert_eq!(row.filled_gap_s, 0.0);
        assert_eq!(row.part, "2/3");
    }

    #[test]
    fn the_csv_has_the_header_and_quotes_what_needs_it() {
        let row = row(&sidecar(), "s.json", &["a.flac".to_owned()]);
        let text = String::from_utf8(to_csv(&[row]).unwrap()).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next().unwrap(), HEADER.join(","));
        assert!(
            lines.next().unwrap().contains("\"humpback, call\""),
            "{text}"
        );
        // An empty catalog still names its columns.
        let empty = String::from_utf8(to_csv(&[]).unwrap()).unwrap();
        assert_eq!(empty.trim_end(), HEADER.join(","));
    }

    #[test]
    fn a_sidecar_missing_fields_gives_empty_cells_not_a_panic() {
        let row = row(&serde_json::json!({"gaps": "not a list"}), "s.json", &[]);
        assert_eq!(row.path, "");
        assert_eq!(row.coverage, 1.0);
        assert_eq!(row.length, 0);
    }
}
