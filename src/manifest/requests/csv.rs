//! CSV request files: a header row of field names and one request per row → [`EventRequest`]s.
//!
//! Input: the file's text (byte-order mark already removed) and its delimiter (a comma, or a tab
//! for tab-separated files, told from the header line by the caller). Output: one request per valid row, in
//! file order; blank rows are skipped and an empty cell means "not given". Errors: header problems
//! (a missing `deviceCode` or time column, the same field twice) once for the file, then every bad
//! row and cell as diagnostics at `row N, field X`; unknown and nameless columns are warnings.

use std::collections::BTreeMap;

use super::EventRequest;
use super::fields::{At, Fields, Given, Layers, Raw, canonical, unknown_field_help};
use super::request::{Place, Quiet, build_request};
use super::sink::Sink;
use crate::manifest::diagnostic::{Diagnostic, Location};

pub(super) fn parse_csv(sink: &mut Sink, text: &str, delimiter: u8) -> Vec<EventRequest> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(headers) => headers.clone(),
        Err(error) => {
            sink.error(
                &Location::File,
                format!("cannot read the CSV header: {error}"),
            );
            return Vec::new();
        }
    };
    if headers.iter().all(str::is_empty) {
        let message = "empty CSV file: expected a header row such as deviceCode,timestamp";
        sink.error(&Location::File, message);
        return Vec::new();
    }

    // Map each column to its field once; problems with the header are reported once, not per row.
    let mut columns: Vec<Option<&'static str>> = Vec::with_capacity(headers.len());
    let mut first_column: BTreeMap<&'static str, &str> = BTreeMap::new();
    for (index, name) in headers.iter().enumerate() {
        let field = if name.is_empty() {
            let message = format!("column {} has no name; its values are ignored", index + 1);
            sink.push(Diagnostic::warning(sink.file, Location::File, message));
            None
        } else if let Some(field) = canonical(name) {
            if let Some(first) = first_column.get(field) {
                let message =
                    format!("columns `{first}` and `{name}` are the same field: keep one");
                sink.error(&Location::File, message);
                None
            } else {
                first_column.insert(field, name);
                Some(field)
            }
        } else {
            let message = format!("unknown column `{name}`");
            sink.warning_help(&Location::File, message, unknown_field_help(name));
            None
        };
        columns.push(field);
    }
    let has = |field: &str| columns.contains(&Some(field));
    let quiet = Quiet {
        device: !has("deviceCode") && !has("locationCode"),
        time: !has("timestamp") && !has("start"),
    };
    if quiet.device {
        sink.error_help(
            &Location::File,
            "no `deviceCode` column",
            "add a `deviceCode` (or `device`) column: each row names its hydrophone, such as ICLISTENHF6324 \
             (or a `locationCode` column naming its site, such as BACAX)",
        );
    }
    if quiet.time {
        sink.error_help(
            &Location::File,
            "no `timestamp` or `start` column",
            "add a `timestamp` column for instants, or `start` with `end` or `duration_seconds` for windows",
        );
    }

    let mut requests = Vec::new();
    let mut entries = 0;
    for (index, record) in reader.records().enumerate() {
        let row = index + 1;
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                sink.error(&Location::File, format!("row {row}: {error}"));
                continue;
            }
        };
        // Spreadsheets export trailing blank rows as `,,,`: they are not requests.
        if record.iter().all(str::is_empty) {
            continue;
        }
        entries += 1;
        if record.len() != headers.len() {
            let field = headers
                .get(record.len())
                .map_or_else(|| format!("column {}", headers.len() + 1), str::to_owned);
            let at = Location::Row { row, field };
            let message = format!(
                "row has {} fields but the header has {}",
                record.len(),
                headers.len()
            );
            let help = if delimiter == b'\t' {
                "a tab-separated file has one tab between cells: quote cells that contain tabs"
            } else {
                "quote cells that contain commas"
            };
            sink.error_help(&at, message, help);
            continue;
        }
        let mut own = Fields::new();
        for ((column, name), cell) in columns.iter().zip(headers.iter()).zip(record.iter()) {
            if let Some(field) = column
                && !cell.is_empty()
            {
                own.insert(
                    field,
                    Given {
                        raw: Raw::Text(cell),
                        place: At::Cell { row, field: name },
                    },
                );
            }
        }
        let layers = Layers {
            defaults: None,
            own: &own,
        };
        requests.extend(build_request(sink, &Place::Row(row), &layers, quiet));
    }
    if entries == 0 {
        let message = "the file has no requests";
        sink.push(Diagnostic::warning(sink.file, Location::File, message));
    }
    requests
}
