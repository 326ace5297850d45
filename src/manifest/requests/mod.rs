//! Request files: the seed tool's JSON and CSV event lists → [`EventRequest`]s, or diagnostics.
//!
//! Input: the text of a request file as the Python tool (`onc-hydrophone-data`) reads it. JSON in one
//! of three layouts, told apart by shape: `{"defaults": {...}, "requests": [...]}`, the legacy map
//! `{"DEVICE": [[Y, M, D, h, m, s], ...]}`, or a bare list of request objects; or CSV with a header
//! row of field names and one request per row, separated by commas or tabs (told from the header
//! line); or a Raven Pro selection table (tab-separated, told by Raven's column names, see `raven`).
//!
//! Output: one [`EventRequest`] per valid request, in file order, with every default applied, times
//! in UTC at millisecond precision and padding in milliseconds. An empty CSV cell, an empty JSON
//! string and JSON `null` all mean "not given", so the default applies.
//!
//! Errors: every problem in the file, all at once, as [`Diagnostic`]s located by CSV row and column
//! or by JSON path (`requests[3].timestamp`). Unknown fields are warnings (the seed ignored them, so
//! old files keep working, but a typo is pointed out); a request with any error is left out of the
//! output, so callers must treat any error diagnostic as "do not run this file".
//!
//! Layout, in the order a file is read: `json` tells the JSON layouts apart and reads the
//! `{defaults, requests}` payload and the bare list, `legacy` reads the old `{DEVICE: [...]}` map,
//! `csv` reads a header row and one request per row, and `raven` reads Raven Pro selection tables
//! (one request per selection, its times from Raven's columns). All four turn what they read into
//! `fields` (canonical field names, their aliases, and each value as given with where it was
//! given). `request` checks one request's fields, with `values` for settings and `time` for times,
//! and builds the [`EventRequest`]. Every problem goes to one `sink`, which also remembers what was
//! already reported. `sanitise` makes tags and clip names safe to use as file names.

mod csv;
mod fields;
mod json;
mod legacy;
mod raven;
mod request;
mod sink;
mod time;
mod values;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::diagnostic::{Diagnostic, Location};
use sink::Sink;

pub use crate::cache::sanitise_name;
pub use time::parse_timestamp;

/// A site named by a request row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowSite {
    /// ONC's `locationCode`.
    pub location: String,
    /// ONC's `deviceCategoryCode` (default `HYDROPHONE`).
    pub category: String,
}

/// One event from a request file: a device (or site), a time window and its per-request
/// settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRequest {
    /// Where it came from, for messages: "row 3" (CSV) or "requests[2]" / "ICLISTENHF6324[0]" / "[4]" (JSON).
    pub origin: String,
    /// ONC device code; empty when the row names a site (`site`) instead.
    pub device: String,
    /// ONC site (`locationCode`, `deviceCategoryCode`) when the row names one instead of a
    /// device: ONC's deployments say which device was there.
    pub site: Option<RowSite>,
    pub start: DateTime<Utc>,
    /// Equal to `start` for an instant (timestamp only).
    pub end: DateTime<Utc>,
    pub is_instant: bool,
    /// Padding in milliseconds, >= 0.
    pub pad_before_ms: i64,
    pub pad_after_ms: i64,
    /// Default false.
    pub download_audio: bool,
    /// Default true.
    pub download_spectrogram: bool,
    /// "mat" | "png".
    pub spectrogram_format: Option<String>,
    /// Default: true when any padding field is set (in the request or in `defaults`), else false.
    pub clip: bool,
    /// "flac" | "wav".
    pub audio_extension: Option<String>,
    /// Sanitised with [`sanitise_name`]: it names a folder.
    pub output_tag: Option<String>,
    /// Sanitised with [`sanitise_name`]: it names clip files.
    pub output_name: Option<String>,
    /// `label`, or `description` when there is no label.
    pub label: Option<String>,
    /// `dpo_*` → value as text (numbers without quotes: 2 → "2", 2.5 → "2.5", true → "true").
    pub options: BTreeMap<String, String>,
}

/// The request-file syntaxes. The JSON layouts are told apart by their shape; a table's
/// delimiter and layout by its header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFormat {
    Json,
    /// A table with a header row: the seed's CSV layout separated by commas or tabs, or a Raven
    /// Pro selection table (Raven's column names in the header), whatever the file's extension.
    Csv,
    /// A Raven Pro selection table, whatever its header says (for callers that know it is one).
    Raven,
}

/// The file extensions read as tables: `.csv`, `.tsv`, and `.txt` (what Raven saves).
const TABLE_EXTENSIONS: [&str; 3] = ["csv", "tsv", "txt"];

/// What a request file may be called, for messages.
pub const REQUEST_FILE_TYPES: &str = ".json, .csv, .tsv, or a Raven selection table (.txt)";

impl RequestFormat {
    /// `.json`, or a table (`.csv`, `.tsv`, `.txt`), in any case; anything else is not a
    /// request file.
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?;
        if extension.eq_ignore_ascii_case("json") {
            Some(Self::Json)
        } else if TABLE_EXTENSIONS
            .iter()
            .any(|known| extension.eq_ignore_ascii_case(known))
        {
            Some(Self::Csv)
        } else {
            None
        }
    }
}

/// How a table's text is laid out, told from its header line (its first line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TableLayout {
    /// The seed's columns, separated by this byte.
    Seed(u8),
    /// Raven's columns, separated by this byte (a tab as Raven writes it; a comma when a
    /// spreadsheet re-saved it).
    Raven(u8),
}

/// The delimiter is whichever of tab and comma the header line holds more of (a comma on a
/// tie: the seed's CSV); Raven's own column names make it a Raven table.
fn table_layout(text: &str) -> TableLayout {
    let header = text.lines().next().unwrap_or_default();
    let tabs = header.matches('\t').count();
    let delimiter = if tabs > header.matches(',').count() {
        b'\t'
    } else {
        b','
    };
    let is_raven = header
        .split(char::from(delimiter))
        .any(|name| raven::is_raven_column(name.trim().trim_matches('"')));
    if is_raven {
        TableLayout::Raven(delimiter)
    } else {
        TableLayout::Seed(delimiter)
    }
}

/// Read and parse a file; an unreadable file is one diagnostic with [`Location::File`].
pub fn read_requests(path: &Path, file: &str) -> (Vec<EventRequest>, Vec<Diagnostic>) {
    let Some(format) = RequestFormat::from_path(path) else {
        let message = format!("unknown request file type: expected {REQUEST_FILE_TYPES}");
        return (
            Vec::new(),
            vec![Diagnostic::error(file, Location::File, message)],
        );
    };
    match std::fs::read_to_string(path) {
        Ok(text) => parse_requests(file, &text, format),
        Err(error) => {
            let message = format!("cannot read request file: {error}");
            (
                Vec::new(),
                vec![Diagnostic::error(file, Location::File, message)],
            )
        }
    }
}

/// Parse a request file's text. `file` is the name used in diagnostics. Returns every valid request
/// and every problem (errors and warnings).
pub fn parse_requests(
    file: &str,
    text: &str,
    format: RequestFormat,
) -> (Vec<EventRequest>, Vec<Diagnostic>) {
    // Spreadsheet programs save CSV (and some editors JSON) with a byte-order mark, which would
    // otherwise become part of the first column name or a JSON syntax error.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut sink = Sink::new(file);
    let requests = match format {
        RequestFormat::Json => json::parse_json(&mut sink, text),
        RequestFormat::Csv => match table_layout(text) {
            TableLayout::Seed(delimiter) => csv::parse_csv(&mut sink, text, delimiter),
            TableLayout::Raven(delimiter) => raven::parse_raven(&mut sink, text, delimiter),
        },
        RequestFormat::Raven => match table_layout(text) {
            TableLayout::Seed(delimiter) | TableLayout::Raven(delimiter) => {
                raven::parse_raven(&mut sink, text, delimiter)
            }
        },
    };
    (requests, sink.diagnostics)
}
