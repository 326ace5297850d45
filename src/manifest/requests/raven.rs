//! Raven Pro selection tables: one request per selection → [`EventRequest`]s.
//!
//! Input: the text of a table Raven saved (byte-order mark already removed): a header row, then
//! one row per selection and view, cells separated by tabs (or commas, when a spreadsheet re-saved
//! it). Raven writes a row per view (`Waveform 1`, `Spectrogram 1`) of the same selection: rows
//! are deduplicated by `Selection`, the first row of each selection being read.
//!
//! Each selection's start comes from `Begin File` + `File Offset (s)` when `Begin File` is an ONC
//! file name (`ICLISTENHF6324_20240401T042134.421Z.flac`: the device is its prefix, the file's
//! first sample its stamp), or else from `Begin Date` + `Begin Clock Time` (Raven's clock, read in
//! the table's `timezone` column when there is one, UTC otherwise; the device then comes from a
//! `Device`/`deviceCode` column). Its duration is `Delta Time (s)`, or `End Time (s)` −
//! `Begin Time (s)`; a zero duration is an instant. `Annotation` (or, in this order, `label`,
//! `description`, `Class`, `Species`, `Call Type`) is the label. Columns named as the seed's fields
//! (`pad_seconds`, `output_name`, `deviceCode`, ...) are read as in a CSV request file, in any case;
//! Raven's other columns (measurements, user columns) are ignored. A selection is audio marked in
//! audio, so `download_audio` and `clip` default to true here.
//!
//! Output: one request per valid selection, in file order, origin `row N` (its first row, header
//! excluded). Errors: missing columns once for the file, then every bad cell at `row N, field
//! COLUMN`, each saying what would be valid; a selection with any error is left out.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat};

use super::EventRequest;
use super::fields::{At, Fields, Given, Layers, Raw, canonical_any_case};
use super::request::{Place, Quiet, build_request};
use super::sink::Sink;
use crate::manifest::diagnostic::{Diagnostic, Location};

const SELECTION: &str = "Selection";
const BEGIN_FILE: &str = "Begin File";
const FILE_OFFSET: &str = "File Offset (s)";
const BEGIN_DATE: &str = "Begin Date";
const BEGIN_CLOCK: &str = "Begin Clock Time";
const BEGIN_TIME: &str = "Begin Time (s)";
const END_TIME: &str = "End Time (s)";
const DELTA_TIME: &str = "Delta Time (s)";

/// Raven's own columns that this reader uses, as Raven spells them.
const RAVEN_COLUMNS: [&str; 8] = [
    SELECTION,
    BEGIN_FILE,
    FILE_OFFSET,
    BEGIN_DATE,
    BEGIN_CLOCK,
    BEGIN_TIME,
    END_TIME,
    DELTA_TIME,
];

/// Columns carrying a selection's label, best first. `label` and `description` are the seed's.
const LABEL_COLUMNS: [&str; 6] = [
    "Annotation",
    "label",
    "description",
    "Class",
    "Species",
    "Call Type",
];

/// The seed's fields a Raven table cannot use: its times come from Raven's columns.
const TIME_FIELDS: [&str; 4] = ["timestamp", "start", "end", "duration_seconds"];

const ONC_NAME_EXAMPLE: &str = "ICLISTENHF6324_20240401T042134.421Z.flac";

/// Whether a header cell names one of Raven's columns (what tells a Raven table from the seed's).
pub(super) fn is_raven_column(name: &str) -> bool {
    RAVEN_COLUMNS
        .iter()
        .any(|column| column.eq_ignore_ascii_case(name))
}

/// What a column of the table is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Raven(&'static str),
    /// An index into [`LABEL_COLUMNS`].
    Label(usize),
    /// A seed field, by canonical name.
    Seed(&'static str),
    Ignored,
}

fn column_of(name: &str) -> Column {
    if let Some(raven) = RAVEN_COLUMNS.iter().find(|c| c.eq_ignore_ascii_case(name)) {
        return Column::Raven(raven);
    }
    if let Some(index) = LABEL_COLUMNS
        .iter()
        .position(|c| c.eq_ignore_ascii_case(name))
    {
        return Column::Label(index);
    }
    match canonical_any_case(name) {
        Some("label") => Column::Label(1),
        Some("description") => Column::Label(2),
        Some(field) => Column::Seed(field),
        None => Column::Ignored,
    }
}

/// An ONC file name taken apart: the device (its prefix) and its first sample's time (its first
/// stamp), in milliseconds since 1970. Any folder before the name is dropped (`Begin Path`
/// values pasted into `Begin File`).
fn onc_file_start(name: &str) -> Option<(&str, i64)> {
    let name = name.rsplit(['/', '\\']).next().unwrap_or(name);
    name.match_indices('_').find_map(|(at, _)| {
        let device = name.get(..at)?;
        let stamp = name.get(at + 1..at + 21)?;
        let ms = onc_format::stamp::parse_stamp(stamp)?;
        onc_format::device::looks_like_device_code(device).then_some((device, ms))
    })
}

/// Seconds as Raven writes them (`12.3456789012`) → whole milliseconds, rounded; `None` for text
/// that is not a finite number within a billion seconds.
fn seconds_ms(text: &str) -> Option<i64> {
    let seconds = text.trim().parse::<f64>().ok()?;
    // Bounded, so the cast cannot saturate.
    (seconds.is_finite() && seconds.abs() <= 1e9).then(|| (seconds * 1000.0).round() as i64)
}

/// Raven's `Begin Date` (`2024/04/01` or `2024/4/1`; also ISO `2024-04-01`).
fn raven_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    let mut parts = text.split(['/', '-']);
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || year.len() != 4 {
        return None;
    }
    let number = |part: &str| {
        (1..=2)
            .contains(&part.len())
            .then(|| part.parse::<u32>().ok())
            .flatten()
    };
    NaiveDate::from_ymd_opt(year.parse().ok()?, number(month)?, number(day)?)
}

/// Raven's `Begin Clock Time` (`4:21:34.421`, `04:21:34`), to the millisecond.
fn raven_clock(text: &str) -> Option<NaiveTime> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let mut parts = whole.split(':');
    let (hours, minutes, seconds) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |part: &str, most: usize| {
        (!part.is_empty() && part.len() <= most && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<u32>().ok())
            .flatten()
    };
    let millis = if fraction.is_empty() {
        0
    } else {
        let head = fraction.get(..3).unwrap_or(fraction);
        digits(fraction, 12)?;
        digits(&format!("{head:0<3}"), 3)?
    };
    if parts.next().is_some() {
        return None;
    }
    NaiveTime::from_hms_milli_opt(
        digits(hours, 2)?,
        digits(minutes, 2)?,
        digits(seconds, 2).filter(|s| *s < 60)?,
        millis,
    )
}

/// Milliseconds as seconds text with three decimals (`-1.5` → `-1.500`), exactly.
fn ms_text(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    format!("{sign}{}.{:03}", ms / 1000, ms % 1000)
}

/// The table's columns, each once, with what they are used for.
struct Header<'h> {
    names: Vec<&'h str>,
    columns: Vec<Column>,
}

impl Header<'_> {
    fn has(&self, column: Column) -> bool {
        self.columns.contains(&column)
    }
}

pub(super) fn parse_raven(sink: &mut Sink, text: &str, delimiter: u8) -> Vec<EventRequest> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .delimiter(delimiter)
        // Raven writes cells as they are, quotes included; a spreadsheet's CSV quotes.
        .quoting(delimiter != b'\t')
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(headers) => headers.clone(),
        Err(error) => {
            let message = format!("cannot read the selection table's header: {error}");
            sink.error(&Location::File, message);
            return Vec::new();
        }
    };
    let Some(header) = read_header(sink, &headers) else {
        return Vec::new();
    };

    let mut requests = Vec::new();
    let mut seen_selections = BTreeMap::new();
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
        if record.iter().all(str::is_empty) {
            continue;
        }
        // One selection, several views: the first row of each selection is read.
        if let Some((selection, name)) = cell(&header, &record, Column::Raven(SELECTION)) {
            match selection.parse::<u64>() {
                Ok(number) => {
                    if seen_selections.insert(number, row).is_some() {
                        continue;
                    }
                }
                Err(_) => {
                    let at = Location::Row {
                        row,
                        field: name.to_owned(),
                    };
                    let message = format!("invalid selection number {selection:?}");
                    sink.error_help(&at, message, "Raven numbers selections 1, 2, 3, ...");
                    continue;
                }
            }
        }
        entries += 1;
        requests.extend(read_selection(sink, &header, &record, row));
    }
    if entries == 0 {
        let message = "the selection table has no selections";
        sink.push(Diagnostic::warning(sink.file, Location::File, message));
    }
    requests
}

/// Maps the header's columns, and reports once for the file what it lacks.
fn read_header<'h>(sink: &mut Sink, headers: &'h csv::StringRecord) -> Option<Header<'h>> {
    let mut header = Header {
        names: Vec::new(),
        columns: Vec::new(),
    };
    for name in headers.iter() {
        let mut column = column_of(name);
        if let Column::Seed(field) = column
            && TIME_FIELDS.contains(&field)
        {
            let message = format!("column `{name}` is ignored in a Raven selection table");
            let help = "its times come from `Begin File` + `File Offset (s)` or `Begin Date` + \
                        `Begin Clock Time`, and `Delta Time (s)` or `End Time (s)` − `Begin Time (s)`";
            sink.warning_help(&Location::File, message, help);
            column = Column::Ignored;
        }
        if column != Column::Ignored && header.has(column) {
            let first = header
                .columns
                .iter()
                .position(|c| *c == column)
                .map_or("", |at| header.names[at]);
            let message = format!("columns `{first}` and `{name}` are the same field: keep one");
            sink.error(&Location::File, message);
            return None;
        }
        header.names.push(name);
        header.columns.push(column);
    }
    let has = |name: &'static str| header.has(Column::Raven(name));
    let mut complete = true;
    let by_file = has(BEGIN_FILE) && has(FILE_OFFSET);
    let by_clock = has(BEGIN_DATE) && has(BEGIN_CLOCK);
    for (given, needs) in [
        (BEGIN_FILE, FILE_OFFSET),
        (FILE_OFFSET, BEGIN_FILE),
        (BEGIN_DATE, BEGIN_CLOCK),
        (BEGIN_CLOCK, BEGIN_DATE),
    ] {
        if has(given) && !has(needs) && !by_file && !by_clock {
            sink.error(
                &Location::File,
                format!("column `{given}` without `{needs}`"),
            );
            complete = false;
        }
    }
    if !by_file && !by_clock && complete {
        sink.error_help(
            &Location::File,
            "no column giving when selections start",
            format!(
                "add `{BEGIN_FILE}` (an ONC file name such as {ONC_NAME_EXAMPLE}) and \
                 `{FILE_OFFSET}` (Raven's \"Begin File\" and \"File Offset\" measurements), or \
                 `{BEGIN_DATE}` and `{BEGIN_CLOCK}`"
            ),
        );
        complete = false;
    }
    let has_duration = has(DELTA_TIME) || (has(BEGIN_TIME) && has(END_TIME));
    if !has_duration {
        sink.error_help(
            &Location::File,
            "no column giving how long selections last",
            format!("add `{DELTA_TIME}`, or `{BEGIN_TIME}` and `{END_TIME}`"),
        );
        complete = false;
    }
    let named_device = header.has(Column::Seed("deviceCode"));
    if !has(BEGIN_FILE) && !named_device && !header.has(Column::Seed("locationCode")) {
        sink.error_help(
            &Location::File,
            "no column naming the device",
            format!(
                "add `{BEGIN_FILE}` with ONC file names (the device is their prefix), or a \
                 `Device` column with ONC device codes such as ICLISTENHF6324"
            ),
        );
        complete = false;
    }
    complete.then_some(header)
}

/// One selection's row → its request, every bad cell reported at its column.
fn read_selection<'r>(
    sink: &mut Sink,
    header: &Header<'r>,
    record: &'r csv::StringRecord,
    row: usize,
) -> Option<EventRequest> {
    let errors_before = sink.errors;
    let at = |name: &str| Location::Row {
        row,
        field: name.to_owned(),
    };
    let number = |sink: &mut Sink, column: &'static str| {
        let (text, name) = cell(header, record, Column::Raven(column))?;
        let ms = seconds_ms(text);
        if ms.is_none() {
            let message = format!("invalid number {text:?}: expected seconds such as 12.5");
            sink.error(&at(name), message);
        }
        ms
    };

    // The start: from an ONC file and the offset into it, else from Raven's clock.
    let file = cell(header, record, Column::Raven(BEGIN_FILE));
    let onc_file = file.and_then(|(name, _)| onc_file_start(name));
    let clock = cell(header, record, Column::Raven(BEGIN_DATE)).zip(cell(
        header,
        record,
        Column::Raven(BEGIN_CLOCK),
    ));
    let mut file_device = None;
    let (start, start_column): (Option<String>, &'static str) = match (onc_file, clock) {
        (Some((device, file_ms)), _) => {
            file_device = Some(device);
            let start = number(sink, FILE_OFFSET)
                .and_then(|offset| DateTime::from_timestamp_millis(file_ms.checked_add(offset)?))
                .map(|at| at.to_rfc3339_opts(SecondsFormat::Millis, true));
            if start.is_none() && cell(header, record, Column::Raven(FILE_OFFSET)).is_none() {
                sink.error_help(
                    &at(FILE_OFFSET),
                    format!("missing `{FILE_OFFSET}`"),
                    "the selection's start in seconds from the start of its Begin File",
                );
            }
            (start, FILE_OFFSET)
        }
        (None, Some(((date, date_name), (clock, clock_name)))) => {
            let date = raven_date(date).or_else(|| {
                let message = format!("invalid date {date:?}: expected a date such as 2024/04/01");
                sink.error(&at(date_name), message);
                None
            });
            let clock = raven_clock(clock).or_else(|| {
                let message =
                    format!("invalid clock time {clock:?}: expected a time such as 04:21:34.421");
                sink.error(&at(clock_name), message);
                None
            });
            // Naive, so the table's `timezone` column (UTC without one) applies to it.
            let start = date.zip(clock).map(|(date, clock)| {
                date.and_time(clock)
                    .format("%Y-%m-%dT%H:%M:%S%.3f")
                    .to_string()
            });
            (start, BEGIN_CLOCK)
        }
        (None, None) => {
            match file {
                Some((name, column)) => sink.error_help(
                    &at(column),
                    format!("{name:?} is not an ONC file name"),
                    format!(
                        "expected DEVICE_yyyyMMddTHHmmss.fffZ.ext such as {ONC_NAME_EXAMPLE}, or give \
                         `{BEGIN_DATE}` and `{BEGIN_CLOCK}`"
                    ),
                ),
                None => sink.error_help(
                    &at(if header.has(Column::Raven(BEGIN_FILE)) {
                        BEGIN_FILE
                    } else {
                        BEGIN_CLOCK
                    }),
                    "the selection has no start",
                    format!(
                        "give `{BEGIN_FILE}` and `{FILE_OFFSET}`, or `{BEGIN_DATE}` and `{BEGIN_CLOCK}`"
                    ),
                ),
            }
            (None, BEGIN_FILE)
        }
    };

    // The duration: Raven's own, or the difference of its two times.
    let duration_ms = match cell(header, record, Column::Raven(DELTA_TIME)) {
        Some(_) => number(sink, DELTA_TIME).map(|ms| (ms, DELTA_TIME)),
        None => match (number(sink, BEGIN_TIME), number(sink, END_TIME)) {
            (Some(begin), Some(end)) => Some((end - begin, END_TIME)),
            (None, None)
                if cell(header, record, Column::Raven(BEGIN_TIME)).is_none()
                    && cell(header, record, Column::Raven(END_TIME)).is_none() =>
            {
                sink.error_help(
                    &at(DELTA_TIME),
                    "the selection has no duration",
                    format!("give `{DELTA_TIME}`, or `{BEGIN_TIME}` and `{END_TIME}`"),
                );
                None
            }
            _ => None,
        },
    };
    if let Some((ms, column)) = duration_ms
        && ms < 0
    {
        let message = format!("the selection ends before it begins ({} s)", ms_text(ms));
        sink.error_help(
            &at(header_name(header, column)),
            message,
            format!("`{END_TIME}` must not be less than `{BEGIN_TIME}`"),
        );
    }

    // Texts the fields below borrow, so they are declared before them.
    let duration = duration_ms
        .filter(|(ms, _)| *ms > 0)
        .map(|(ms, column)| (ms_text(ms), column));

    // The seed's fields, read as a CSV request file reads them, over this reader's defaults.
    let mut own = Fields::new();
    let mut label: Option<(usize, &str, &str)> = None;
    for ((column, name), value) in header.columns.iter().zip(&header.names).zip(record.iter()) {
        if value.is_empty() {
            continue;
        }
        match column {
            Column::Seed(field) => {
                own.insert(
                    field,
                    Given {
                        raw: Raw::Text(value),
                        place: At::Cell { row, field: name },
                    },
                );
            }
            Column::Label(rank) if label.is_none_or(|(best, _, _)| *rank < best) => {
                label = Some((*rank, value, name));
            }
            _ => {}
        }
    }
    if let (Some(from_file), Some(named)) = (file_device, own.get("deviceCode"))
        && named.as_text().is_some_and(|text| text.trim() != from_file)
    {
        let message = format!(
            "the device {:?} is not the device of the Begin File ({from_file})",
            named.as_text().unwrap_or_default()
        );
        sink.error_help(
            &named.at(),
            message,
            "leave the device cell empty, or name the device that recorded the file",
        );
    }
    if sink.errors != errors_before {
        return None;
    }
    let start = start.as_deref()?;
    if let Some(device) = file_device {
        own.entry("deviceCode").or_insert(Given {
            raw: Raw::Text(device),
            place: At::Cell {
                row,
                field: header_name(header, BEGIN_FILE),
            },
        });
    }
    if let Some((_, text, name)) = label {
        own.insert(
            "label",
            Given {
                raw: Raw::Text(text),
                place: At::Cell { row, field: name },
            },
        );
    }
    own.insert(
        "start",
        Given {
            raw: Raw::Text(start),
            place: At::Cell {
                row,
                field: header_name(header, start_column),
            },
        },
    );
    if let Some((duration, column)) = &duration {
        own.insert(
            "duration_seconds",
            Given {
                raw: Raw::Text(duration),
                place: At::Cell {
                    row,
                    field: header_name(header, column),
                },
            },
        );
    }
    let defaults: Fields = ["download_audio", "clip"]
        .into_iter()
        .map(|field| {
            let given = Given {
                raw: Raw::Text("true"),
                place: At::Known(Location::File),
            };
            (field, given)
        })
        .collect();
    let layers = Layers {
        defaults: Some(&defaults),
        own: &own,
    };
    build_request(sink, &Place::Row(row), &layers, Quiet::default())
}

/// A row's non-empty cell in `wanted`'s column, and the column's name.
fn cell<'r, 'h>(
    header: &Header<'h>,
    record: &'r csv::StringRecord,
    wanted: Column,
) -> Option<(&'r str, &'h str)> {
    let at = header.columns.iter().position(|column| *column == wanted)?;
    let value = record.get(at).filter(|value| !value.is_empty())?;
    Some((value, header.names[at]))
}

/// The column's name as the header spells it (Raven's spelling when it is not there).
fn header_name<'h>(header: &Header<'h>, column: &'static str) -> &'h str {
    header
        .columns
        .iter()
        .position(|c| *c == Column::Raven(column))
        .map_or(column, |at| header.names[at])
}
