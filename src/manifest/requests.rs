//! Request files: the seed tool's JSON and CSV event lists → [`EventRequest`]s, or diagnostics.
//!
//! Input: the text of a request file as the Python tool (`onc-hydrophone-data`) reads it. JSON in one
//! of three layouts, told apart by shape: `{"defaults": {...}, "requests": [...]}`, the legacy map
//! `{"DEVICE": [[Y, M, D, h, m, s], ...]}`, or a bare list of request objects; or CSV with a header
//! row of field names and one request per row.
//!
//! Output: one [`EventRequest`] per valid request, in file order, with every default applied, times
//! in UTC at millisecond precision and padding in milliseconds. An empty CSV cell, an empty JSON
//! string and JSON `null` all mean "not given", so the default applies.
//!
//! Errors: every problem in the file, all at once, as [`Diagnostic`]s located by CSV row and column
//! or by JSON path (`requests[3].timestamp`). Unknown fields are warnings (the seed ignored them, so
//! old files keep working, but a typo is pointed out); a request with any error is left out of the
//! output, so callers must treat any error diagnostic as "do not run this file".

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use chrono::{
    DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, SecondsFormat,
    TimeDelta, TimeZone, Utc,
};
use chrono_tz::{TZ_VARIANTS, Tz};
use serde_json::{Map, Value};

use super::diagnostic::{self, Diagnostic, Location};

/// One event from a request file: a device, a time window and its per-request settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRequest {
    /// Where it came from, for messages: "row 3" (CSV) or "requests[2]" / "ICLISTENHF6324[0]" / "[4]" (JSON).
    pub origin: String,
    pub device: String,
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

/// The two request-file syntaxes; the JSON layouts are told apart by their shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFormat {
    Json,
    Csv,
}

impl RequestFormat {
    /// `.json` or `.csv`, in any case; anything else is not a request file.
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?;
        if extension.eq_ignore_ascii_case("json") {
            Some(Self::Json)
        } else if extension.eq_ignore_ascii_case("csv") {
            Some(Self::Csv)
        } else {
            None
        }
    }
}

/// Read and parse a file; an unreadable file is one diagnostic with [`Location::File`].
pub fn read_requests(path: &Path, file: &str) -> (Vec<EventRequest>, Vec<Diagnostic>) {
    let Some(format) = RequestFormat::from_path(path) else {
        let message = "unknown request file type: expected a .json or .csv file";
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
        RequestFormat::Json => parse_json(&mut sink, text),
        RequestFormat::Csv => parse_csv(&mut sink, text),
    };
    (requests, sink.diagnostics)
}

/// Replace path separators, `..`, control characters and characters outside `[A-Za-z0-9._ -]` with
/// `_`; trim spaces and dots from both ends (a leading dot hides a file, a trailing one is dropped
/// by Windows); prefix Windows device names (`CON`, `NUL`, ...) with `_`; at most 120 characters.
/// `None` when nothing usable is left. Sanitising a sanitised name returns it unchanged.
pub fn sanitise_name(name: &str) -> Option<String> {
    let kept: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ' ' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // One pass leaves no `..`: a run of k dots becomes k/2 underscores and at most one dot.
    let kept = kept.replace("..", "_");
    let trimmed = kept.trim_matches([' ', '.']);
    let stem = trimmed.split('.').next().unwrap_or_default();
    let reserved = ["CON", "PRN", "AUX", "NUL"]
        .iter()
        .any(|r| stem.eq_ignore_ascii_case(r))
        || (stem.len() == 4
            && ["COM", "LPT"]
                .iter()
                .any(|p| stem.get(..3).is_some_and(|s| s.eq_ignore_ascii_case(p)))
            && stem.ends_with(|c: char| c.is_ascii_digit() && c != '0'));
    let prefixed = if reserved {
        format!("_{trimmed}")
    } else {
        trimmed.to_owned()
    };
    // Everything left is ASCII, so 120 characters are 120 bytes.
    let limited: String = prefixed.chars().take(120).collect();
    let limited = limited.trim_end_matches([' ', '.']);
    (!limited.is_empty()).then(|| limited.to_owned())
}

/// Parse one timestamp: RFC 3339 / ISO 8601 with an offset or `Z` (a space may replace the `T`;
/// fractional seconds; a date alone means midnight), or a naive time, read in `timezone` (an IANA
/// name, `UTC`/`Z`, or an offset such as `-07:00`/`+0530`; no time zone means UTC). An explicit
/// offset in `text` wins over `timezone`. Sub-millisecond digits are dropped. Local times that do
/// not exist or happen twice (daylight saving changes) are errors naming the time zone.
pub fn parse_timestamp(text: &str, timezone: Option<&str>) -> Result<DateTime<Utc>, String> {
    let zone = match timezone {
        Some(name) => Some(parse_zone(name).map_err(|error| error.message)?),
        None => None,
    };
    let (naive, offset) = parse_parts(text.trim()).ok_or_else(|| invalid_timestamp(text))?;
    to_utc(naive, offset, zone.as_ref())
}

// ---------------------------------------------------------------------------------------------
// Fields

/// Every field the seed accepts, canonical name first, then its aliases. `begin_time` and
/// `stop_time` are not in the seed's docs but its code reads them, so files using them exist.
const FIELDS: &[(&str, &[&str])] = &[
    ("deviceCode", &["device", "device_code"]),
    ("timestamp", &["time", "datetime"]),
    ("start", &["start_time", "begin", "begin_time"]),
    ("end", &["end_time", "stop", "stop_time"]),
    ("duration_seconds", &[]),
    ("timezone", &[]),
    ("pad_seconds", &[]),
    ("pad_before_seconds", &[]),
    ("pad_after_seconds", &[]),
    ("download_audio", &["audio"]),
    ("download_spectrogram", &["spectrogram"]),
    ("spectrogram_format", &[]),
    ("clip", &[]),
    ("audio_extension", &[]),
    ("output_tag", &[]),
    ("output_name", &[]),
    ("label", &[]),
    ("description", &[]),
    ("data_product_options", &[]),
];

const PAD_FIELDS: [&str; 3] = ["pad_seconds", "pad_before_seconds", "pad_after_seconds"];
const BOOLEAN_HELP: &str = "accepted: true/false, t/f, yes/no, y/n, 1/0 (any case)";
const TIMESTAMP_EXAMPLE: &str = "2024-04-01T12:34:50Z";
/// About 31 years: far beyond any real padding or event, and far from chrono's limits.
const MAX_SECONDS: f64 = 1e9;

fn canonical(name: &str) -> Option<&'static str> {
    FIELDS
        .iter()
        .find(|(field, aliases)| *field == name || aliases.contains(&name))
        .map(|(field, _)| *field)
}

fn all_field_names() -> impl Iterator<Item = &'static str> {
    FIELDS
        .iter()
        .flat_map(|(field, aliases)| std::iter::once(*field).chain(aliases.iter().copied()))
}

fn unknown_field_help(name: &str) -> String {
    match diagnostic::closest(name, all_field_names()) {
        Some(candidate) => format!("did you mean `{candidate}`?"),
        None => {
            let known: Vec<&str> = FIELDS.iter().map(|(field, _)| *field).collect();
            format!("known fields: {}", known.join(", "))
        }
    }
}

/// A field's value before conversion: a JSON value, or text (a CSV cell, or a legacy map's key).
#[derive(Debug, Clone, Copy)]
enum Raw<'a> {
    Json(&'a Value),
    Text(&'a str),
}

/// A field as given, with where it was given (so a bad default points at `defaults.x`).
#[derive(Debug, Clone)]
struct Given<'a> {
    raw: Raw<'a>,
    place: At<'a>,
}

/// Where a field was given. CSV cells keep borrowed parts and build their [`Location`] only when
/// there is something to report: a 100,000-row file then allocates nothing per cell for it.
#[derive(Debug, Clone)]
enum At<'a> {
    Cell { row: usize, field: &'a str },
    Known(Location),
}

impl<'a> Given<'a> {
    fn at(&self) -> Location {
        match &self.place {
            At::Cell { row, field } => Location::Row {
                row: *row,
                field: (*field).to_owned(),
            },
            At::Known(location) => location.clone(),
        }
    }

    fn as_text(&self) -> Option<&'a str> {
        match self.raw {
            Raw::Text(text) => Some(text),
            Raw::Json(Value::String(text)) => Some(text),
            Raw::Json(_) => None,
        }
    }

    /// JSON `null` and empty strings mean "not given", like an empty CSV cell.
    fn is_absent(&self) -> bool {
        match self.raw {
            Raw::Json(Value::Null) => true,
            _ => self.as_text().is_some_and(|text| text.trim().is_empty()),
        }
    }

    fn kind(&self) -> &'static str {
        match self.raw {
            Raw::Json(value) => kind(value),
            Raw::Text(_) => "text",
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Fields of one object or row, by canonical name.
type Fields<'a> = BTreeMap<&'static str, Given<'a>>;

/// A request's own fields over the file's defaults. The merge is per field, as the seed's
/// `{**defaults, **request}`: a request's `pad_seconds` does not undo a default `pad_before_seconds`.
struct Layers<'r, 'a> {
    defaults: Option<&'r Fields<'a>>,
    own: &'r Fields<'a>,
}

impl<'r, 'a> Layers<'r, 'a> {
    fn get(&self, name: &str) -> Option<&'r Given<'a>> {
        let own = self.own.get(name).filter(|given| !given.is_absent());
        own.or_else(|| self.defaults?.get(name).filter(|given| !given.is_absent()))
    }
}

/// Where a request is: its origin text and where to point when a field is missing.
enum Place {
    Json(String),
    Row(usize),
}

impl Place {
    fn origin(&self) -> String {
        match self {
            Place::Json(path) => path.clone(),
            Place::Row(row) => format!("row {row}"),
        }
    }

    fn at(&self, field: &str) -> Location {
        match self {
            Place::Json(path) => Location::JsonPath { path: path.clone() },
            Place::Row(row) => Location::Row {
                row: *row,
                field: field.to_owned(),
            },
        }
    }
}

/// Missing-field errors already reported once for the whole file (a CSV without the column).
#[derive(Debug, Default, Clone, Copy)]
struct Quiet {
    device: bool,
    time: bool,
}

/// Collects diagnostics. A bad default is met once per request; it is reported once.
struct Sink<'f> {
    file: &'f str,
    diagnostics: Vec<Diagnostic>,
    seen: HashSet<String>,
    /// Errors met, counting repeats, so each request knows whether it had one.
    errors: usize,
    /// `data_product_options` texts already read without error, and what they gave.
    options_cache: HashMap<String, BTreeMap<String, String>>,
}

impl<'f> Sink<'f> {
    fn new(file: &'f str) -> Self {
        Self {
            file,
            diagnostics: Vec::new(),
            seen: HashSet::new(),
            errors: 0,
            options_cache: HashMap::new(),
        }
    }

    fn push(&mut self, diagnostic: Diagnostic) {
        if diagnostic.is_error() {
            self.errors += 1;
        }
        if self.seen.insert(format!("{diagnostic:?}")) {
            self.diagnostics.push(diagnostic);
        }
    }

    fn error(&mut self, at: &Location, message: impl Into<String>) {
        self.push(Diagnostic::error(self.file, at.clone(), message));
    }

    fn error_help(&mut self, at: &Location, message: impl Into<String>, help: impl Into<String>) {
        self.push(Diagnostic::error(self.file, at.clone(), message).with_help(help));
    }

    fn warning_help(&mut self, at: &Location, message: impl Into<String>, help: impl Into<String>) {
        self.push(Diagnostic::warning(self.file, at.clone(), message).with_help(help));
    }

    fn type_error(&mut self, given: &Given, expected: &str) {
        let message = format!("expected {expected}, found {}", given.kind());
        self.error(&given.at(), message);
    }
}

// ---------------------------------------------------------------------------------------------
// JSON

fn parse_json(sink: &mut Sink, text: &str) -> Vec<EventRequest> {
    let root = Location::JsonPath { path: "$".into() };
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(error) => {
            sink.error(&root, json_error_message(&error));
            return Vec::new();
        }
    };
    let layout_help = "expected {\"defaults\": {...}, \"requests\": [...]}, \
                       a {\"DEVICE\": [[Y, M, D, h, m, s], ...]} map, or a list of requests";
    let (requests, entries) = match &value {
        Value::Object(map) if map.contains_key("requests") || map.contains_key("defaults") => {
            parse_payload(sink, map)
        }
        Value::Object(map) if map.values().all(Value::is_array) => parse_legacy(sink, map),
        Value::Object(map) => {
            // Most likely a misspelt `requests`/`defaults`: say so rather than "not a map".
            let typo = map.keys().find_map(|key| {
                diagnostic::closest(key, ["requests", "defaults"]).map(|near| (key, near))
            });
            let help = match typo {
                Some((key, near)) => format!("did you mean `{near}` instead of `{key}`?"),
                None => layout_help.to_owned(),
            };
            sink.error_help(&root, "unrecognised request file layout", help);
            return Vec::new();
        }
        Value::Array(items) => {
            let requests = items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| request_entry(sink, item, format!("[{index}]"), None))
                .collect();
            (requests, items.len())
        }
        other => {
            let message = format!("unrecognised request file layout: found {}", kind(other));
            sink.error_help(&root, message, layout_help);
            return Vec::new();
        }
    };
    if entries == 0 {
        let message = "the file has no requests";
        sink.push(Diagnostic::warning(sink.file, Location::File, message));
    }
    requests
}

/// `invalid JSON at line 3, column 5: expected value`, without serde_json's own position suffix.
fn json_error_message(error: &serde_json::Error) -> String {
    let full = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let reason = full.strip_suffix(&suffix).unwrap_or(&full);
    format!(
        "invalid JSON at line {}, column {}: {reason}",
        error.line(),
        error.column()
    )
}

/// `{defaults, requests}`. Returns the valid requests and how many entries there were.
fn parse_payload(sink: &mut Sink, map: &Map<String, Value>) -> (Vec<EventRequest>, usize) {
    for key in map
        .keys()
        .filter(|key| !matches!(key.as_str(), "requests" | "defaults"))
    {
        let help = match diagnostic::closest(key, ["requests", "defaults"]) {
            Some(near) => format!("did you mean `{near}`?"),
            None => "a request file has `defaults` and `requests`".to_owned(),
        };
        let at = Location::JsonPath { path: key.clone() };
        sink.warning_help(&at, format!("unknown key `{key}`"), help);
    }
    let defaults = match map.get("defaults") {
        None | Some(Value::Null) => Fields::new(),
        Some(Value::Object(object)) => collect_object(sink, object, "defaults"),
        Some(other) => {
            let at = Location::JsonPath {
                path: "defaults".into(),
            };
            let message = format!(
                "expected an object of default fields, found {}",
                kind(other)
            );
            sink.error(&at, message);
            Fields::new()
        }
    };
    match map.get("requests") {
        Some(Value::Array(items)) => {
            let requests = items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| {
                    request_entry(sink, item, format!("requests[{index}]"), Some(&defaults))
                })
                .collect();
            (requests, items.len())
        }
        None => {
            let at = Location::JsonPath { path: "$".into() };
            sink.error(
                &at,
                "missing `requests`: expected a list of request objects",
            );
            (Vec::new(), 1)
        }
        Some(other) => {
            let at = Location::JsonPath {
                path: "requests".into(),
            };
            let message = format!("expected a list of request objects, found {}", kind(other));
            sink.error(&at, message);
            (Vec::new(), 1)
        }
    }
}

/// The legacy `{DEVICE: [[Y, M, D, h, m, s], ...]}` map. As in the seed, an entry may also be a
/// timestamp string or a request object (whose device defaults to the key).
fn parse_legacy(sink: &mut Sink, map: &Map<String, Value>) -> (Vec<EventRequest>, usize) {
    let mut requests = Vec::new();
    let mut entries = 0;
    for (device, list) in map {
        let Value::Array(list) = list else { continue };
        entries += list.len();
        let device_at = Location::JsonPath {
            path: device.clone(),
        };
        let device_ok = match check_device(device) {
            Ok(()) => true,
            Err(message) => {
                sink.error(&device_at, message);
                false
            }
        };
        let mut implied = Fields::new();
        implied.insert(
            "deviceCode",
            Given {
                raw: Raw::Text(device),
                place: At::Known(device_at),
            },
        );
        for (index, entry) in list.iter().enumerate() {
            let path = format!("{device}[{index}]");
            let at = Location::JsonPath { path: path.clone() };
            let instant = match entry {
                Value::Array(items) => match naive_from_components(items) {
                    Ok(naive) => Ok(Utc.from_utc_datetime(&naive)),
                    Err(reason) => Err(format!(
                        "invalid date/time {}: {reason}",
                        serde_json::to_string(items).unwrap_or_default()
                    )),
                },
                Value::String(text) => parse_timestamp(text, None),
                Value::Object(_) => {
                    requests.extend(request_entry(sink, entry, path, Some(&implied)));
                    continue;
                }
                other => Err(format!(
                    "expected [year, month, day, hour, minute, second], found {}",
                    kind(other)
                )),
            };
            match instant {
                Ok(at_time) if device_ok => requests.push(instant_request(path, device, at_time)),
                Ok(_) => {}
                Err(message) => sink.error(&at, message),
            }
        }
    }
    (requests, entries)
}

fn instant_request(origin: String, device: &str, at: DateTime<Utc>) -> EventRequest {
    EventRequest {
        origin,
        device: device.to_owned(),
        start: at,
        end: at,
        is_instant: true,
        pad_before_ms: 0,
        pad_after_ms: 0,
        download_audio: false,
        download_spectrogram: true,
        spectrogram_format: None,
        clip: false,
        audio_extension: None,
        output_tag: None,
        output_name: None,
        label: None,
        options: BTreeMap::new(),
    }
}

/// `[Y, M, D]` up to `[Y, M, D, h, m, s, ms]`, all integers, as a UTC-less date and time.
fn naive_from_components(items: &[Value]) -> Result<NaiveDateTime, String> {
    if !(3..=7).contains(&items.len()) {
        return Err(format!(
            "expected 3 to 7 integers [year, month, day, hour, minute, second, millisecond], found {}",
            items.len()
        ));
    }
    let mut parts = [0_i64; 7];
    for (slot, item) in parts.iter_mut().zip(items) {
        *slot = item
            .as_i64()
            .ok_or_else(|| format!("expected integers, found {}", kind(item)))?;
    }
    let [year, month, day, hour, minute, second, milli] = parts;
    let date = i32::try_from(year)
        .ok()
        .zip(u32::try_from(month).ok())
        .zip(u32::try_from(day).ok())
        .and_then(|((y, m), d)| NaiveDate::from_ymd_opt(y, m, d))
        .ok_or_else(|| format!("no such date {year}-{month:02}-{day:02}"))?;
    let time = u32::try_from(hour)
        .ok()
        .zip(u32::try_from(minute).ok())
        .zip(u32::try_from(second).ok().filter(|s| *s < 60))
        .zip(u32::try_from(milli).ok().filter(|ms| *ms < 1000))
        .and_then(|(((h, m), s), ms)| NaiveTime::from_hms_milli_opt(h, m, s, ms))
        .ok_or_else(|| format!("no such time {hour:02}:{minute:02}:{second:02}.{milli:03}"))?;
    Ok(date.and_time(time))
}

fn request_entry(
    sink: &mut Sink,
    item: &Value,
    path: String,
    defaults: Option<&Fields>,
) -> Option<EventRequest> {
    let Value::Object(object) = item else {
        let at = Location::JsonPath { path };
        sink.error(
            &at,
            format!("expected a request object, found {}", kind(item)),
        );
        return None;
    };
    let own = collect_object(sink, object, &path);
    let layers = Layers {
        defaults,
        own: &own,
    };
    build_request(sink, &Place::Json(path), &layers, Quiet::default())
}

/// One JSON object's fields by canonical name; unknown names are warnings, an alias given together
/// with its field is an error (which one would win is not obvious to the reader).
fn collect_object<'a>(sink: &mut Sink, object: &'a Map<String, Value>, prefix: &str) -> Fields<'a> {
    let mut fields = Fields::new();
    let mut written: BTreeMap<&'static str, &str> = BTreeMap::new();
    for (key, value) in object {
        let at = Location::JsonPath {
            path: if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            },
        };
        let Some(name) = canonical(key) else {
            sink.warning_help(
                &at,
                format!("unknown field `{key}`"),
                unknown_field_help(key),
            );
            continue;
        };
        if let Some(first) = written.get(name) {
            sink.error(
                &at,
                format!("`{first}` and `{key}` are the same field: give one"),
            );
            continue;
        }
        written.insert(name, key);
        fields.insert(
            name,
            Given {
                raw: Raw::Json(value),
                place: At::Known(at),
            },
        );
    }
    fields
}

// ---------------------------------------------------------------------------------------------
// CSV

fn parse_csv(sink: &mut Sink, text: &str) -> Vec<EventRequest> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
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
        device: !has("deviceCode"),
        time: !has("timestamp") && !has("start"),
    };
    if quiet.device {
        sink.error_help(
            &Location::File,
            "no `deviceCode` column",
            "add a `deviceCode` (or `device`) column: each row names its hydrophone, such as ICLISTENHF6324",
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
            sink.error_help(&at, message, "quote cells that contain commas");
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

// ---------------------------------------------------------------------------------------------
// One request

/// Check every field of one request, report every problem, and build it if there was none.
fn build_request(
    sink: &mut Sink,
    place: &Place,
    layers: &Layers,
    quiet: Quiet,
) -> Option<EventRequest> {
    let errors_before = sink.errors;

    let device = match layers.get("deviceCode") {
        Some(given) => device_value(sink, given),
        None => {
            if quiet.device {
                sink.errors += 1;
            } else {
                sink.error_help(
                    &place.at("deviceCode"),
                    "missing `deviceCode`",
                    "every request names an ONC device such as ICLISTENHF6324 \
                     (field `deviceCode`, `device` or `device_code`)",
                );
            }
            None
        }
    };

    // A bad time zone is reported once, at `timezone`; naive times then cannot be read.
    let zone = match layers.get("timezone") {
        None => ZoneState::Utc,
        Some(given) => match given.as_text() {
            Some(text) => match parse_zone(text) {
                Ok(zone) => ZoneState::Given(zone),
                Err(error) => {
                    match error.help {
                        Some(help) => sink.error_help(&given.at(), error.message, help),
                        None => sink.error(&given.at(), error.message),
                    }
                    ZoneState::Broken
                }
            },
            None => {
                sink.type_error(given, "a time zone name or offset");
                ZoneState::Broken
            }
        },
    };

    // Every given time is read, even in a wrong combination, so that all bad values are reported.
    let timestamp = layers.get("timestamp");
    let start = layers.get("start");
    let end = layers.get("end");
    let duration = layers.get("duration_seconds");
    let timestamp_value = timestamp.and_then(|given| time_value(sink, given, &zone));
    let start_value = start.and_then(|given| time_value(sink, given, &zone));
    let end_value = end.and_then(|given| time_value(sink, given, &zone));
    let duration_ms = duration.and_then(|given| seconds_value(sink, given, Bound::Positive));

    let window = match (timestamp, start) {
        (Some(_), Some(start)) => {
            sink.error(&start.at(), "give `timestamp` or `start`, not both");
            None
        }
        (Some(_), None) => {
            if let Some(end) = end {
                sink.error(
                    &end.at(),
                    "`end` needs `start`: a `timestamp` is an instant",
                );
            }
            if let Some(duration) = duration {
                let message = "`duration_seconds` needs `start`: a `timestamp` is an instant";
                sink.error(&duration.at(), message);
            }
            timestamp_value.map(|at| (at, at, true))
        }
        (None, Some(_)) => match (end, duration) {
            (Some(_), Some(duration)) => {
                sink.error(&duration.at(), "give `end` or `duration_seconds`, not both");
                None
            }
            (Some(end), None) => match (start_value, end_value) {
                (Some(from), Some(to)) if to <= from => {
                    let message = format!("end {} is not after start {}", show(to), show(from));
                    sink.error(&end.at(), message);
                    None
                }
                (Some(from), Some(to)) => Some((from, to, false)),
                _ => None,
            },
            (None, Some(duration)) => match (start_value, duration_ms) {
                (Some(from), Some(ms)) => {
                    let to =
                        TimeDelta::try_milliseconds(ms).and_then(|d| from.checked_add_signed(d));
                    if to.is_none() {
                        sink.error(&duration.at(), "the window ends past the year 262143");
                    }
                    to.map(|to| (from, to, false))
                }
                _ => None,
            },
            (None, None) => start_value.map(|at| (at, at, true)),
        },
        (None, None) => {
            if let Some(end) = end {
                sink.error(&end.at(), "`end` needs `start`");
            } else if quiet.time {
                sink.errors += 1;
            } else {
                sink.error_help(
                    &place.at("timestamp"),
                    "missing `timestamp` or `start`",
                    "give `timestamp` for an instant, or `start` with `end` or `duration_seconds` for a window",
                );
            }
            None
        }
    };

    // `pad_before_seconds`/`pad_after_seconds` override `pad_seconds` after defaults are merged.
    let pad = layers
        .get("pad_seconds")
        .and_then(|given| seconds_value(sink, given, Bound::NonNegative));
    let pad_before = layers
        .get("pad_before_seconds")
        .map(|given| seconds_value(sink, given, Bound::NonNegative));
    let pad_after = layers
        .get("pad_after_seconds")
        .map(|given| seconds_value(sink, given, Bound::NonNegative));
    let pad_before_ms = pad_before.unwrap_or(pad).unwrap_or(0);
    let pad_after_ms = pad_after.unwrap_or(pad).unwrap_or(0);
    let any_pad = PAD_FIELDS.iter().any(|field| layers.get(field).is_some());

    let flag = |sink: &mut Sink, name: &str, default: bool| {
        layers
            .get(name)
            .and_then(|given| boolean_value(sink, given))
            .unwrap_or(default)
    };
    let download_audio = flag(sink, "download_audio", false);
    let download_spectrogram = flag(sink, "download_spectrogram", true);
    let clip = flag(sink, "clip", any_pad);

    let spectrogram_format = layers
        .get("spectrogram_format")
        .and_then(|given| choice_value(sink, given, "spectrogram format", &["mat", "png"]));
    let audio_extension = layers
        .get("audio_extension")
        .and_then(|given| choice_value(sink, given, "audio extension", &["flac", "wav"]));
    let output_tag = layers
        .get("output_tag")
        .and_then(|given| name_value(sink, given, "tag"));
    let output_name = layers
        .get("output_name")
        .and_then(|given| name_value(sink, given, "file name"));
    let label = layers
        .get("label")
        .and_then(|given| text_value(sink, given));
    let description = layers
        .get("description")
        .and_then(|given| text_value(sink, given));

    // Options merge per option name: a request adding one option keeps the defaults' others.
    let mut options = BTreeMap::new();
    let option_layers = [layers.defaults, Some(layers.own)];
    for fields in option_layers.into_iter().flatten() {
        if let Some(given) = fields
            .get("data_product_options")
            .filter(|given| !given.is_absent())
        {
            options_value(sink, given, &mut options);
        }
    }

    let (Some(device), Some((start, end, is_instant))) = (device, window) else {
        return None;
    };
    if sink.errors != errors_before {
        return None;
    }
    Some(EventRequest {
        origin: place.origin(),
        device,
        start,
        end,
        is_instant,
        pad_before_ms,
        pad_after_ms,
        download_audio,
        download_spectrogram,
        spectrogram_format,
        clip,
        audio_extension,
        output_tag,
        output_name,
        label: label.or(description),
        options,
    })
}

/// ONC device codes: ASCII letters, digits, `_` or `-`, 3 to 64 characters, starting with a letter.
fn check_device(code: &str) -> Result<(), String> {
    let valid = (3..=64).contains(&code.len())
        && code.starts_with(|c: char| c.is_ascii_alphabetic())
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid device code {code:?}: expected an ONC device code such as ICLISTENHF6324 \
             (3 to 64 letters, digits, `_` or `-`, starting with a letter)"
        ))
    }
}

fn device_value(sink: &mut Sink, given: &Given) -> Option<String> {
    let Some(text) = given.as_text() else {
        sink.type_error(given, "a device code string");
        return None;
    };
    let code = text.trim();
    match check_device(code) {
        Ok(()) => Some(code.to_owned()),
        Err(message) => {
            sink.error(&given.at(), message);
            None
        }
    }
}

fn text_value(sink: &mut Sink, given: &Given) -> Option<String> {
    match given.as_text() {
        Some(text) => Some(text.trim().to_owned()),
        None => {
            sink.type_error(given, "a string");
            None
        }
    }
}

/// A tag or clip name: sanitised, with a warning when that changed it (the file says one thing and
/// the output will be called another) and an error when nothing usable is left.
fn name_value(sink: &mut Sink, given: &Given, what: &str) -> Option<String> {
    let text = text_value(sink, given)?;
    let help = "names may use letters, digits, `.`, `_`, `-` and spaces, at most 120 characters";
    match sanitise_name(&text) {
        Some(clean) if clean == text => Some(clean),
        Some(clean) => {
            let message = format!("unsafe {what} {text:?} is used as {clean:?}");
            sink.push(Diagnostic::warning(sink.file, given.at(), message).with_help(help));
            Some(clean)
        }
        None => {
            sink.error_help(&given.at(), format!("unusable {what} {text:?}"), help);
            None
        }
    }
}

fn choice_value(sink: &mut Sink, given: &Given, what: &str, valid: &[&str]) -> Option<String> {
    let Some(text) = given.as_text() else {
        sink.type_error(given, "a string");
        return None;
    };
    let lower = text.trim().to_ascii_lowercase();
    if valid.contains(&lower.as_str()) {
        Some(lower)
    } else {
        let help = format!("valid values: {}", valid.join(", "));
        sink.error_help(&given.at(), format!("invalid {what} {text:?}"), help);
        None
    }
}

/// The CSV booleans (true/false, t/f, yes/no, y/n, 1/0, any case); JSON adds real booleans and 0/1.
fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Some(true),
        "false" | "f" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

fn boolean_value(sink: &mut Sink, given: &Given) -> Option<bool> {
    let parsed = match given.raw {
        Raw::Json(Value::Bool(value)) => Some(*value),
        Raw::Json(Value::Number(number)) => match number.as_u64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        _ => match given.as_text() {
            Some(text) => parse_bool(text),
            None => {
                sink.type_error(given, "true or false");
                return None;
            }
        },
    };
    if parsed.is_none() {
        let shown = match given.raw {
            Raw::Json(Value::Number(number)) => number.to_string(),
            _ => format!("{:?}", given.as_text().unwrap_or_default()),
        };
        let message = format!("invalid boolean {shown}: expected true or false");
        sink.error_help(&given.at(), message, BOOLEAN_HELP);
    }
    parsed
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    NonNegative,
    Positive,
}

/// Seconds (a number, or a number in text) → whole milliseconds, rounded to the nearest.
fn seconds_value(sink: &mut Sink, given: &Given, bound: Bound) -> Option<i64> {
    let (value, shown) = match given.raw {
        Raw::Json(Value::Number(number)) => (number.as_f64(), number.to_string()),
        _ => match given.as_text() {
            Some(text) => (text.trim().parse::<f64>().ok(), format!("{text:?}")),
            None => {
                sink.type_error(given, "a number of seconds");
                return None;
            }
        },
    };
    let Some(seconds) = value.filter(|value| value.is_finite()) else {
        let message = format!("invalid number {shown}: expected seconds such as 15 or 2.5");
        sink.error(&given.at(), message);
        return None;
    };
    if seconds < 0.0 {
        sink.error(
            &given.at(),
            format!("{shown} seconds is negative: expected 0 or more"),
        );
        return None;
    }
    if seconds > MAX_SECONDS {
        sink.error(
            &given.at(),
            format!("{shown} seconds is too large: at most 1000000000"),
        );
        return None;
    }
    // Bounded above, so the cast cannot saturate.
    let ms = (seconds * 1000.0).round() as i64;
    if bound == Bound::Positive && ms <= 0 {
        let message = format!("a duration of {shown} seconds is empty: expected at least 0.001");
        sink.error(&given.at(), message);
        return None;
    }
    Some(ms)
}

/// `data_product_options`: a JSON object (in CSV, and also accepted in JSON, as JSON text).
fn options_value(sink: &mut Sink, given: &Given, options: &mut BTreeMap<String, String>) {
    let parsed: Map<String, Value>;
    let (object, in_place) = match given.raw {
        Raw::Json(Value::Object(object)) => (object, true),
        _ => {
            let Some(text) = given.as_text() else {
                sink.type_error(given, "an object of dpo_* options");
                return;
            };
            // A CSV usually repeats the same options on every row: read each text once.
            if let Some(known) = sink.options_cache.get(text) {
                options.extend(known.iter().map(|(k, v)| (k.clone(), v.clone())));
                return;
            }
            match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(object)) => {
                    parsed = object;
                    (&parsed, false)
                }
                Ok(other) => {
                    let message = format!(
                        "expected a JSON object of dpo_* options, found {}",
                        kind(&other)
                    );
                    sink.error_help(
                        &given.at(),
                        message,
                        "for example {\"dpo_spectralDataDownsample\": 2}",
                    );
                    return;
                }
                Err(error) => {
                    let message = format!("invalid JSON in data_product_options: {error}");
                    sink.error_help(
                        &given.at(),
                        message,
                        "for example {\"dpo_spectralDataDownsample\": 2}",
                    );
                    return;
                }
            }
        }
    };
    let errors_before = sink.errors;
    let mut read = BTreeMap::new();
    for (key, value) in object {
        // Inside a JSON object, point at the option itself; in text, at the cell or string.
        let at = match (given.at(), in_place) {
            (Location::JsonPath { path }, true) => Location::JsonPath {
                path: format!("{path}.{key}"),
            },
            (other, _) => other,
        };
        let name = key.strip_prefix("dpo_").filter(|rest| !rest.is_empty());
        if name.is_none() {
            let help = if key.starts_with("dpo_") {
                "give the option's name after `dpo_`".to_owned()
            } else {
                format!("ONC data product options start with `dpo_`, such as `dpo_{key}`")
            };
            sink.error_help(
                &at,
                format!("`{key}` is not an ONC data product option"),
                help,
            );
            continue;
        }
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            other => {
                let message = format!(
                    "option `{key}` must be a string, number or boolean, found {}",
                    kind(other)
                );
                sink.error(&at, message);
                continue;
            }
        };
        read.insert(key.clone(), text);
    }
    // Only a text read without errors is remembered, so every bad row still gets its own report.
    if let (false, Some(text)) = (in_place, given.as_text())
        && sink.errors == errors_before
    {
        sink.options_cache.insert(text.to_owned(), read.clone());
    }
    options.extend(read);
}

// ---------------------------------------------------------------------------------------------
// Times

/// The time zone naive times of one request are read in.
enum ZoneState {
    /// No `timezone`: naive times are UTC, as in the seed.
    Utc,
    Given(Zone),
    /// `timezone` was bad and has been reported; naive times cannot be read.
    Broken,
}

#[derive(Debug, Clone, Copy)]
enum Zone {
    Fixed(FixedOffset),
    Named(Tz),
}

struct ZoneError {
    message: String,
    help: Option<String>,
}

/// `UTC`/`Z`, an offset (`-07:00`, `+0530`, `-07`), or an IANA name (any case).
fn parse_zone(text: &str) -> Result<Zone, ZoneError> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("utc") || text.eq_ignore_ascii_case("z") {
        return Ok(Zone::Fixed(Utc.fix()));
    }
    let expected =
        "expected an IANA name such as America/Vancouver, UTC, or an offset such as -07:00";
    if text.starts_with(['+', '-']) {
        return parse_offset(text)
            .map(Zone::Fixed)
            .ok_or_else(|| ZoneError {
                message: format!("invalid time zone offset {text:?}: {expected}"),
                help: None,
            });
    }
    if let Ok(tz) = text.parse::<Tz>() {
        return Ok(Zone::Named(tz));
    }
    if let Some(tz) = TZ_VARIANTS
        .iter()
        .find(|tz| tz.name().eq_ignore_ascii_case(text))
    {
        return Ok(Zone::Named(*tz));
    }
    let near = diagnostic::closest(text, TZ_VARIANTS.iter().map(|tz| tz.name()));
    Err(ZoneError {
        message: format!("unknown time zone {text:?}: {expected}"),
        help: near.map(|near| format!("did you mean `{near}`?")),
    })
}

/// `Z`, or a sign and `HH:MM`, `HHMM` or `HH` (hours 0–23, minutes 0–59).
fn parse_offset(text: &str) -> Option<FixedOffset> {
    if text.eq_ignore_ascii_case("z") {
        return Some(Utc.fix());
    }
    let (sign, body) = if let Some(body) = text.strip_prefix('+') {
        (1, body)
    } else {
        (-1, text.strip_prefix('-')?)
    };
    let (hours, minutes) = match body.len() {
        2 => (body, "00"),
        4 => (body.get(..2)?, body.get(2..)?),
        5 => {
            let (hours, minutes) = body.split_once(':')?;
            (hours, minutes)
        }
        _ => return None,
    };
    let hours = two_digits(hours).filter(|h| *h < 24)?;
    let minutes = two_digits(minutes).filter(|m| *m < 60)?;
    FixedOffset::east_opt(sign * i32::try_from(hours * 3600 + minutes * 60).ok()?)
}

/// Exactly two ASCII digits.
fn two_digits(text: &str) -> Option<u32> {
    (text.len() == 2 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD`, optionally followed by `T`/`t`/space and `HH:MM[:SS[.fff]]`, optionally followed
/// by `Z` or an offset. Hand-written because chrono's parsers either need an offset or accept
/// one-digit fields, and the error must not depend on which of several formats was tried last.
fn parse_parts(text: &str) -> Option<(NaiveDateTime, Option<FixedOffset>)> {
    let date = parse_date(text.get(..10)?)?;
    let rest = text.get(10..)?;
    let mut chars = rest.chars();
    let Some(separator) = chars.next() else {
        return Some((date.and_time(NaiveTime::MIN), None));
    };
    if !matches!(separator, 'T' | 't' | ' ') {
        return None;
    }
    let rest = chars.as_str();
    let split = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (time, offset) = rest.split_at_checked(split)?;
    let time = parse_time(time.trim_end())?;
    let offset = if offset.is_empty() {
        None
    } else {
        Some(parse_offset(offset)?)
    };
    Some((date.and_time(time), offset))
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    let (year, rest) = text.split_once('-')?;
    let (month, day) = rest.split_once('-')?;
    let year_ok = year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit());
    if !year_ok {
        return None;
    }
    NaiveDate::from_ymd_opt(year.parse().ok()?, two_digits(month)?, two_digits(day)?)
}

/// `HH:MM`, `HH:MM:SS`, or `HH:MM:SS.f` (`.` or `,`, 1 to 9 digits, cut to milliseconds).
/// Leap seconds (`:60`) are refused: ONC's files are in UTC without them.
fn parse_time(text: &str) -> Option<NaiveTime> {
    let mut parts = text.split(':');
    let hours = two_digits(parts.next()?)?;
    let minutes = two_digits(parts.next()?)?;
    let seconds_text = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let (seconds, millis) = match seconds_text {
        None => (0, 0),
        Some(text) => match text.split_once(['.', ',']) {
            None => (two_digits(text)?, 0),
            Some((whole, fraction)) => {
                let digits_ok = (1..=9).contains(&fraction.len())
                    && fraction.bytes().all(|b| b.is_ascii_digit());
                if !digits_ok {
                    return None;
                }
                let millis_text = format!("{:0<3}", fraction.get(..3).unwrap_or(fraction));
                (two_digits(whole)?, millis_text.parse().ok()?)
            }
        },
    };
    if seconds > 59 {
        return None;
    }
    NaiveTime::from_hms_milli_opt(hours, minutes, seconds, millis)
}

fn to_utc(
    naive: NaiveDateTime,
    offset: Option<FixedOffset>,
    zone: Option<&Zone>,
) -> Result<DateTime<Utc>, String> {
    let out_of_range = || format!("timestamp {} is out of range", show_naive(naive));
    let resolved = match (offset, zone) {
        (Some(offset), _) | (None, Some(&Zone::Fixed(offset))) => offset
            .from_local_datetime(&naive)
            .single()
            .map(|at| at.with_timezone(&Utc))
            .ok_or_else(out_of_range)?,
        (None, None) => Utc.from_utc_datetime(&naive),
        (None, Some(Zone::Named(tz))) => match tz.from_local_datetime(&naive) {
            LocalResult::Single(at) => at.with_timezone(&Utc),
            LocalResult::Ambiguous(first, second) => {
                return Err(format!(
                    "local time {} is ambiguous in {} (it happens twice when daylight saving time ends): \
                     give an offset, {} or {}",
                    show_naive(naive),
                    tz.name(),
                    first.offset().fix(),
                    second.offset().fix()
                ));
            }
            LocalResult::None => {
                return Err(format!(
                    "local time {} does not exist in {} (skipped when daylight saving time starts)",
                    show_naive(naive),
                    tz.name()
                ));
            }
        },
    };
    // Keep milliseconds and nothing finer: every time downstream is whole milliseconds.
    DateTime::from_timestamp_millis(resolved.timestamp_millis()).ok_or_else(out_of_range)
}

/// A request field's time: an ISO 8601 string, or (JSON) a `[Y, M, D, h, m, s]` list as in the
/// legacy map. Naive times are read in the request's `timezone`.
fn time_value(sink: &mut Sink, given: &Given, zone: &ZoneState) -> Option<DateTime<Utc>> {
    let (naive, offset) = match given.raw {
        Raw::Json(Value::Array(items)) => match naive_from_components(items) {
            Ok(naive) => (naive, None),
            Err(reason) => {
                let shown = serde_json::to_string(items).unwrap_or_default();
                sink.error(&given.at(), format!("invalid date/time {shown}: {reason}"));
                return None;
            }
        },
        _ => {
            let Some(text) = given.as_text() else {
                let expected = format!("an ISO 8601 string such as {TIMESTAMP_EXAMPLE}");
                sink.type_error(given, &expected);
                return None;
            };
            match parse_parts(text.trim()) {
                Some(parts) => parts,
                None => {
                    sink.error(&given.at(), invalid_timestamp(text));
                    return None;
                }
            }
        }
    };
    let zone = match (offset, zone) {
        (Some(_), _) | (None, ZoneState::Utc) => None,
        (None, ZoneState::Given(zone)) => Some(zone),
        (None, ZoneState::Broken) => return None,
    };
    match to_utc(naive, offset, zone) {
        Ok(at) => Some(at),
        Err(message) => {
            sink.error(&given.at(), message);
            None
        }
    }
}

fn invalid_timestamp(text: &str) -> String {
    format!("invalid timestamp {text:?}: expected ISO 8601 such as {TIMESTAMP_EXAMPLE}")
}

fn show(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn show_naive(naive: NaiveDateTime) -> String {
    naive.format("%Y-%m-%dT%H:%M:%S%.f").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Severity;
    use proptest::prelude::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("test time")
            .with_timezone(&Utc)
    }

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// A request with the documented defaults, to be adjusted field by field in each test.
    fn base(origin: &str, start: &str, end: &str, is_instant: bool) -> EventRequest {
        EventRequest {
            origin: origin.to_owned(),
            device: "ICLISTENHF6324".to_owned(),
            start: utc(start),
            end: utc(end),
            is_instant,
            pad_before_ms: 0,
            pad_after_ms: 0,
            download_audio: false,
            download_spectrogram: true,
            spectrogram_format: None,
            clip: false,
            audio_extension: None,
            output_tag: None,
            output_name: None,
            label: None,
            options: BTreeMap::new(),
        }
    }

    fn json(text: &str) -> (Vec<EventRequest>, Vec<Diagnostic>) {
        parse_requests("r.json", text, RequestFormat::Json)
    }

    fn csv(text: &str) -> (Vec<EventRequest>, Vec<Diagnostic>) {
        parse_requests("r.csv", text, RequestFormat::Csv)
    }

    /// Parses cleanly: no diagnostics at all.
    fn clean(parsed: (Vec<EventRequest>, Vec<Diagnostic>)) -> Vec<EventRequest> {
        let (requests, diagnostics) = parsed;
        assert!(
            diagnostics.is_empty(),
            "unexpected diagnostics: {diagnostics:#?}"
        );
        requests
    }

    fn rendered(diagnostics: &[Diagnostic]) -> String {
        diagnostics.iter().map(Diagnostic::render_human).collect()
    }

    fn errors(diagnostics: &[Diagnostic]) -> Vec<String> {
        diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| format!("{}: {}", d.position(), d.message))
            .collect()
    }

    #[test]
    fn seed_json_example() {
        let requests = clean(json(include_str!(
            "../../manifests/requests/seed_requests.json"
        )));
        let dpo = options(&[("dpo_spectralDataDownsample", "2")]);
        let mut first = base(
            "requests[0]",
            "2024-04-01T12:34:50Z",
            "2024-04-01T12:34:50Z",
            true,
        );
        first.pad_before_ms = 15_000;
        first.pad_after_ms = 15_000;
        first.download_audio = true;
        first.clip = true;
        first.label = Some("whale call 1".into());
        first.options = dpo.clone();
        let mut second = base(
            "requests[1]",
            "2024-04-01T12:30:00Z",
            "2024-04-01T12:33:30Z",
            false,
        );
        second.pad_before_ms = 10_000;
        // The seed dropped `pad_after` when `end` was given; it is kept.
        second.pad_after_ms = 20_000;
        second.download_audio = true;
        second.clip = true;
        second.label = Some("ship noise event".into());
        second.options = dpo;
        assert_eq!(requests, vec![first, second]);
    }

    #[test]
    fn seed_csv_example() {
        let requests = clean(csv(include_str!(
            "../../manifests/requests/seed_requests.csv"
        )));
        let row = |n: usize, at: &str, label: &str, dpo: &[(&str, &str)]| {
            let mut request = base(&format!("row {n}"), at, at, true);
            request.label = Some(label.into());
            request.options = options(dpo);
            request
        };
        assert_eq!(
            requests,
            vec![
                row(
                    1,
                    "2024-04-01T12:30:00Z",
                    "whale call",
                    &[("dpo_spectralDataDownsample", "2")]
                ),
                row(
                    2,
                    "2024-04-01T14:45:30Z",
                    "ship noise",
                    &[("dpo_spectralDataDownsample", "1")]
                ),
                row(3, "2024-04-02T08:15:00Z", "unknown", &[]),
            ]
        );
    }

    #[test]
    fn scenario_four_calls() {
        let requests = clean(json(include_str!("../../manifests/requests/calls.json")));
        let common = |mut request: EventRequest, label: &str| {
            request.output_tag = Some("json_timestamp_demo".into());
            request.download_audio = true;
            request.clip = true;
            request.label = Some(label.into());
            request
        };
        let ping = common(
            base(
                "requests[0]",
                "2024-04-01T04:25:00Z",
                "2024-04-01T04:25:00Z",
                true,
            ),
            "single ping",
        );
        let mut ramp = common(
            base(
                "requests[1]",
                "2024-04-01T14:00:00Z",
                "2024-04-01T14:03:30Z",
                false,
            ),
            "ship ramp",
        );
        ramp.pad_before_ms = 15_000;
        ramp.pad_after_ms = 20_000;
        let mut full = common(
            base(
                "requests[2]",
                "2024-04-02T03:15:00Z",
                "2024-04-02T03:19:59Z",
                false,
            ),
            "keep full window",
        );
        full.clip = false;
        assert_eq!(requests, vec![ping, ramp, full]);
    }

    #[test]
    fn legacy_map_example() {
        let requests = clean(json(include_str!(
            "../../manifests/requests/legacy_map.json"
        )));
        let instant = |n: usize, at: &str| base(&format!("ICLISTENHF6324[{n}]"), at, at, true);
        assert_eq!(
            requests,
            vec![
                instant(0, "2024-04-01T04:25:00Z"),
                instant(1, "2024-04-01T14:00:00Z"),
                instant(2, "2024-04-02T03:15:30Z"),
            ]
        );
    }

    #[test]
    fn legacy_map_accepts_three_to_seven_integers_strings_and_objects() {
        let requests = clean(json(
            r#"{"ICLISTENHF6324": [[2024, 4, 1], [2024, 4, 1, 12], [2024, 4, 1, 12, 5],
                [2024, 4, 1, 12, 5, 7, 250], "2024-04-01T12:00:00-07:00",
                {"timestamp": "2024-04-01T00:00:00Z", "pad_seconds": 1.5}],
                "ICLISTENHF1234": []}"#,
        ));
        let times: Vec<(String, DateTime<Utc>)> = requests
            .iter()
            .map(|r| (r.origin.clone(), r.start))
            .collect();
        let expected = [
            ("ICLISTENHF6324[0]", "2024-04-01T00:00:00Z"),
            ("ICLISTENHF6324[1]", "2024-04-01T12:00:00Z"),
            ("ICLISTENHF6324[2]", "2024-04-01T12:05:00Z"),
            ("ICLISTENHF6324[3]", "2024-04-01T12:05:07.250Z"),
            ("ICLISTENHF6324[4]", "2024-04-01T19:00:00Z"),
            ("ICLISTENHF6324[5]", "2024-04-01T00:00:00Z"),
        ]
        .map(|(o, t)| (o.to_owned(), utc(t)));
        assert_eq!(times, expected);
        let object = &requests[5];
        assert_eq!(object.device, "ICLISTENHF6324");
        assert_eq!(
            (object.pad_before_ms, object.pad_after_ms, object.clip),
            (1500, 1500, true)
        );
    }

    #[test]
    fn legacy_map_reports_every_bad_entry() {
        let (requests, diagnostics) = json(
            r#"{"ICLISTENHF6324": [[2024, 13, 1, 0, 0, 0], [2024, 4, 1, 24, 0, 0], [2024, 4],
                [2024, 4, 1, 0, 0, 1.5], 7, [2024, 4, 1, 0, 0, 0]], "6324": [[2024, 4, 1]]}"#,
        );
        assert_eq!(requests.len(), 1);
        assert_eq!(
            errors(&diagnostics),
            vec![
                "r.json:6324: invalid device code \"6324\": expected an ONC device code such as \
                 ICLISTENHF6324 (3 to 64 letters, digits, `_` or `-`, starting with a letter)",
                "r.json:ICLISTENHF6324[0]: invalid date/time [2024,13,1,0,0,0]: no such date 2024-13-01",
                "r.json:ICLISTENHF6324[1]: invalid date/time [2024,4,1,24,0,0]: no such time 24:00:00.000",
                "r.json:ICLISTENHF6324[2]: invalid date/time [2024,4]: expected 3 to 7 integers \
                 [year, month, day, hour, minute, second, millisecond], found 2",
                "r.json:ICLISTENHF6324[3]: invalid date/time [2024,4,1,0,0,1.5]: expected integers, found a number",
                "r.json:ICLISTENHF6324[4]: expected [year, month, day, hour, minute, second], found a number",
            ]
        );
    }

    #[test]
    fn bare_list_of_requests() {
        let requests = clean(json(
            r#"[{"deviceCode": "ICLISTENHF6324", "timestamp": "2024-04-01T12:00:00Z"},
                {"deviceCode": "ICLISTENHF6020", "start": "2024-04-01T12:00:00Z",
                 "duration_seconds": 90.5, "spectrogram_format": "PNG", "audio_extension": "wav",
                 "output_name": "call 7", "description": "humpback",
                 "data_product_options": {"dpo_a": 2.5, "dpo_b": true, "dpo_c": "None"}}]"#,
        ));
        let first = base("[0]", "2024-04-01T12:00:00Z", "2024-04-01T12:00:00Z", true);
        let mut second = base(
            "[1]",
            "2024-04-01T12:00:00Z",
            "2024-04-01T12:01:30.500Z",
            false,
        );
        second.device = "ICLISTENHF6020".into();
        second.spectrogram_format = Some("png".into());
        second.audio_extension = Some("wav".into());
        second.output_name = Some("call 7".into());
        second.label = Some("humpback".into());
        second.options = options(&[("dpo_a", "2.5"), ("dpo_b", "true"), ("dpo_c", "None")]);
        assert_eq!(requests, vec![first, second]);
    }

    #[test]
    fn every_alias_is_accepted() {
        let aliases = [
            ("deviceCode", r#""ICLISTENHF6324""#),
            ("device", r#""ICLISTENHF6324""#),
            ("device_code", r#""ICLISTENHF6324""#),
        ];
        for (key, value) in aliases {
            let text = format!(r#"[{{"{key}": {value}, "time": "2024-04-01T00:00:00Z"}}]"#);
            let requests = clean(json(&text));
            assert_eq!(requests[0].device, "ICLISTENHF6324", "{key}");
        }
        for key in ["timestamp", "time", "datetime"] {
            let text =
                format!(r#"[{{"device": "ICLISTENHF6324", "{key}": "2024-04-01T01:02:03Z"}}]"#);
            let requests = clean(json(&text));
            assert_eq!(requests[0].start, utc("2024-04-01T01:02:03Z"), "{key}");
            assert!(requests[0].is_instant);
        }
        for start in ["start", "start_time", "begin", "begin_time"] {
            for end in ["end", "end_time", "stop", "stop_time"] {
                let text = format!(
                    r#"[{{"device": "ICLISTENHF6324", "{start}": "2024-04-01T01:00:00Z",
                        "{end}": "2024-04-01T02:00:00Z"}}]"#
                );
                let requests = clean(json(&text));
                let window = (requests[0].start, requests[0].end, requests[0].is_instant);
                let expected = (
                    utc("2024-04-01T01:00:00Z"),
                    utc("2024-04-01T02:00:00Z"),
                    false,
                );
                assert_eq!(window, expected, "{start} {end}");
            }
        }
        let requests = clean(csv("device_code,datetime,audio,spectrogram,description\n\
             ICLISTENHF6324,2024-04-01 01:02:03,yes,no,a call\n"));
        let mut expected = base(
            "row 1",
            "2024-04-01T01:02:03Z",
            "2024-04-01T01:02:03Z",
            true,
        );
        expected.download_audio = true;
        expected.download_spectrogram = false;
        expected.label = Some("a call".into());
        assert_eq!(requests, vec![expected]);
    }

    #[test]
    fn label_wins_over_description() {
        let requests = clean(json(
            r#"[{"device": "ICLISTENHF6324", "time": "2024-04-01T00:00:00Z",
                 "label": "L", "description": "D"}]"#,
        ));
        assert_eq!(requests[0].label.as_deref(), Some("L"));
    }

    #[test]
    fn csv_booleans() {
        let table = [
            ("true", true),
            ("TRUE", true),
            ("t", true),
            ("T", true),
            ("yes", true),
            ("Yes", true),
            ("y", true),
            ("Y", true),
            ("1", true),
            ("false", false),
            ("False", false),
            ("f", false),
            ("F", false),
            ("no", false),
            ("NO", false),
            ("n", false),
            ("N", false),
            ("0", false),
        ];
        for (cell, expected) in table {
            for column in ["download_audio", "download_spectrogram", "clip"] {
                let text =
                    format!("deviceCode,timestamp,{column}\nICLISTENHF6324,2024-04-01,{cell}\n");
                let request = clean(csv(&text)).remove(0);
                let value = match column {
                    "download_audio" => request.download_audio,
                    "download_spectrogram" => request.download_spectrogram,
                    _ => request.clip,
                };
                assert_eq!(value, expected, "{column} = {cell}");
            }
        }
        // Empty cells are "not given": the defaults apply.
        let request = clean(csv(
            "deviceCode,timestamp,download_audio,download_spectrogram,clip\n\
             ICLISTENHF6324,2024-04-01,,,\n",
        ))
        .remove(0);
        assert!(!request.download_audio && request.download_spectrogram && !request.clip);
        // JSON takes real booleans, the same strings, and 0/1.
        let requests = clean(json(
            r#"[{"device": "ICLISTENHF6324", "time": "2024-04-01", "audio": "Y", "clip": 0},
                {"device": "ICLISTENHF6324", "time": "2024-04-01", "audio": true, "clip": "no"}]"#,
        ));
        let flags: Vec<(bool, bool)> = requests
            .iter()
            .map(|r| (r.download_audio, r.clip))
            .collect();
        assert_eq!(flags, vec![(true, false), (true, false)]);
    }

    #[test]
    fn defaults_override_order() {
        let requests = clean(json(
            r#"{"defaults": {"deviceCode": "ICLISTENHF6324", "pad_seconds": 5,
                             "pad_before_seconds": 7, "download_audio": true,
                             "spectrogram_format": "mat", "output_tag": "d",
                             "data_product_options": {"dpo_a": 1, "dpo_b": 2}},
                "requests": [
                  {"timestamp": "2024-04-01T00:00:00Z"},
                  {"timestamp": "2024-04-01T00:00:00Z", "device": "ICLISTENHF1234",
                   "pad_seconds": 1, "download_audio": false, "output_tag": "own",
                   "data_product_options": {"dpo_b": "x", "dpo_c": 3}},
                  {"timestamp": "2024-04-01T00:00:00Z", "pad_after_seconds": 0.25,
                   "spectrogram_format": null}
                ]}"#,
        ));
        let summary: Vec<_> = requests
            .iter()
            .map(|r| {
                (
                    r.device.as_str(),
                    r.pad_before_ms,
                    r.pad_after_ms,
                    r.download_audio,
                    r.spectrogram_format.as_deref(),
                    r.output_tag.as_deref(),
                    r.clip,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                // Defaults alone: pad_before_seconds overrides pad_seconds.
                (
                    "ICLISTENHF6324",
                    7000,
                    5000,
                    true,
                    Some("mat"),
                    Some("d"),
                    true
                ),
                // Merged per field: the request's pad_seconds replaces the default pad_seconds,
                // the default pad_before_seconds still overrides it (as the seed's dict merge).
                (
                    "ICLISTENHF1234",
                    7000,
                    1000,
                    false,
                    Some("mat"),
                    Some("own"),
                    true
                ),
                // `null` means "not given": the default applies.
                (
                    "ICLISTENHF6324",
                    7000,
                    250,
                    true,
                    Some("mat"),
                    Some("d"),
                    true
                ),
            ]
        );
        assert_eq!(
            requests[0].options,
            options(&[("dpo_a", "1"), ("dpo_b", "2")])
        );
        assert_eq!(
            requests[1].options,
            options(&[("dpo_a", "1"), ("dpo_b", "x"), ("dpo_c", "3")])
        );
    }

    #[test]
    fn clip_defaults_to_whether_padding_is_given() {
        let requests = clean(json(
            r#"[{"device": "ICLISTENHF6324", "time": "2024-04-01"},
                {"device": "ICLISTENHF6324", "time": "2024-04-01", "pad_seconds": 0},
                {"device": "ICLISTENHF6324", "time": "2024-04-01", "pad_after_seconds": 3},
                {"device": "ICLISTENHF6324", "time": "2024-04-01", "pad_after_seconds": 3, "clip": false}]"#,
        ));
        let clips: Vec<bool> = requests.iter().map(|r| r.clip).collect();
        assert_eq!(clips, vec![false, true, true, false]);
    }

    #[test]
    fn windows() {
        let requests = clean(json(
            r#"[{"device": "ICLISTENHF6324", "start": "2024-04-01T00:00:00Z"},
                {"device": "ICLISTENHF6324", "start": "2024-04-01T00:00:00Z", "duration_seconds": "300"},
                {"device": "ICLISTENHF6324", "start": "2024-04-01T00:00:00Z", "end": "2024-04-01T00:00:00.001Z"}]"#,
        ));
        let windows: Vec<_> = requests
            .iter()
            .map(|r| (r.start, r.end, r.is_instant))
            .collect();
        let at = utc("2024-04-01T00:00:00Z");
        assert_eq!(
            windows,
            vec![
                (at, at, true),
                (at, utc("2024-04-01T00:05:00Z"), false),
                (at, utc("2024-04-01T00:00:00.001Z"), false),
            ]
        );
    }

    #[test]
    fn window_errors_point_at_the_field() {
        let (requests, diagnostics) = json(
            r#"{"requests": [
                {"device": "ICLISTENHF6324", "start": "2024-04-01T01:00:00Z", "end": "2024-04-01T00:00:00Z"},
                {"device": "ICLISTENHF6324", "timestamp": "2024-04-01T01:00:00Z", "start": "2024-04-01T01:00:00Z"},
                {"device": "ICLISTENHF6324", "end": "2024-04-01T01:00:00Z"},
                {"device": "ICLISTENHF6324"},
                {"timestamp": "2024-04-01T01:00:00Z"},
                {"device": "ICLISTENHF6324", "timestamp": "2024-04-01", "end": "2024-04-02", "duration_seconds": 5},
                {"device": "ICLISTENHF6324", "start": "2024-04-01", "end": "2024-04-02", "duration_seconds": 5},
                {"device": "ICLISTENHF6324", "start": "2024-04-01", "duration_seconds": 0},
                {"device": "ICL 6324", "time": "2024-04-01", "pad_seconds": -1, "spectrogram_format": "jpg"}
            ]}"#,
        );
        assert!(requests.is_empty());
        assert_eq!(
            errors(&diagnostics),
            vec![
                "r.json:requests[0].end: end 2024-04-01T00:00:00Z is not after start 2024-04-01T01:00:00Z",
                "r.json:requests[1].start: give `timestamp` or `start`, not both",
                "r.json:requests[2].end: `end` needs `start`",
                "r.json:requests[3]: missing `timestamp` or `start`",
                "r.json:requests[4]: missing `deviceCode`",
                "r.json:requests[5].end: `end` needs `start`: a `timestamp` is an instant",
                "r.json:requests[5].duration_seconds: `duration_seconds` needs `start`: a `timestamp` is an instant",
                "r.json:requests[6].duration_seconds: give `end` or `duration_seconds`, not both",
                "r.json:requests[7].duration_seconds: a duration of 0 seconds is empty: expected at least 0.001",
                "r.json:requests[8].device: invalid device code \"ICL 6324\": expected an ONC device code such as \
                 ICLISTENHF6324 (3 to 64 letters, digits, `_` or `-`, starting with a letter)",
                "r.json:requests[8].pad_seconds: -1 seconds is negative: expected 0 or more",
                "r.json:requests[8].spectrogram_format: invalid spectrogram format \"jpg\"",
            ]
        );
    }

    #[test]
    fn timezones() {
        let vancouver = [
            (
                "2024-04-01T05:00:00",
                Some("America/Vancouver"),
                "2024-04-01T12:00:00Z",
            ),
            (
                "2024-01-15T05:00:00",
                Some("America/Vancouver"),
                "2024-01-15T13:00:00Z",
            ),
            (
                "2024-04-01T05:00:00",
                Some("america/vancouver"),
                "2024-04-01T12:00:00Z",
            ),
            (
                "2024-04-01T05:00:00",
                Some("-07:00"),
                "2024-04-01T12:00:00Z",
            ),
            ("2024-04-01T17:30:00", Some("+0530"), "2024-04-01T12:00:00Z"),
            ("2024-04-01T14:00:00", Some("+02"), "2024-04-01T12:00:00Z"),
            ("2024-04-01T12:00:00", Some("UTC"), "2024-04-01T12:00:00Z"),
            ("2024-04-01T12:00:00", Some("Z"), "2024-04-01T12:00:00Z"),
            ("2024-04-01T12:00:00", None, "2024-04-01T12:00:00Z"),
            // An explicit offset wins over the time zone.
            (
                "2024-04-01T12:00:00+01:00",
                Some("America/Vancouver"),
                "2024-04-01T11:00:00Z",
            ),
            (
                "2024-04-01 12:00:00.1239Z",
                None,
                "2024-04-01T12:00:00.123Z",
            ),
            ("2024-04-01t12:00z", None, "2024-04-01T12:00:00Z"),
            (
                "2024-04-01T12:00:00,5-0100",
                None,
                "2024-04-01T13:00:00.500Z",
            ),
            (
                "2024-04-01",
                Some("America/Vancouver"),
                "2024-04-01T07:00:00Z",
            ),
            (" 2024-04-01T12:00:00Z ", None, "2024-04-01T12:00:00Z"),
        ];
        for (text, zone, expected) in vancouver {
            assert_eq!(
                parse_timestamp(text, zone),
                Ok(utc(expected)),
                "{text} in {zone:?}"
            );
        }
        assert_eq!(
            parse_timestamp("2024-03-10T02:30:00", Some("America/Vancouver")),
            Err(
                "local time 2024-03-10T02:30:00 does not exist in America/Vancouver \
                 (skipped when daylight saving time starts)"
                    .to_owned()
            )
        );
        assert_eq!(
            parse_timestamp("2024-11-03T01:30:00", Some("America/Vancouver")),
            Err(
                "local time 2024-11-03T01:30:00 is ambiguous in America/Vancouver (it happens \
                 twice when daylight saving time ends): give an offset, -07:00 or -08:00"
                    .to_owned()
            )
        );
        assert_eq!(
            parse_timestamp("2024-04-01T00:00:00", Some("Mars/Olympus")),
            Err(
                "unknown time zone \"Mars/Olympus\": expected an IANA name such as \
                 America/Vancouver, UTC, or an offset such as -07:00"
                    .to_owned()
            )
        );
        for bad in [
            "2024-13-01",
            "2024-02-30T00:00:00Z",
            "2024-4-1",
            "2024-04-01T1:00:00Z",
            "2024-04-01T12:00:60Z",
            "2024-04-01T24:00:00Z",
            "2024-04-01T12:00:00+25:00",
            "2024-04-01T12:00:00.Z",
            "2024-04-01T",
            "2024-04-01X12:00:00",
            "1711972800",
            "",
            "2024-04-01T12:00:00Zjunk",
            "２０２４-04-01",
        ] {
            let error = parse_timestamp(bad, None).expect_err(bad);
            assert_eq!(
                error,
                format!(
                    "invalid timestamp {bad:?}: expected ISO 8601 such as 2024-04-01T12:34:50Z"
                )
            );
        }
    }

    #[test]
    fn timezone_field_applies_to_every_time_of_the_request() {
        let requests = clean(csv("deviceCode,start,end,timezone\n\
             ICLISTENHF6324,2024-04-01T05:00:00,2024-04-01T12:10:00Z,America/Vancouver\n"));
        assert_eq!(
            (requests[0].start, requests[0].end),
            (utc("2024-04-01T12:00:00Z"), utc("2024-04-01T12:10:00Z"))
        );
        let (requests, diagnostics) = json(
            r#"{"defaults": {"timezone": "America/Vancover", "deviceCode": "ICLISTENHF6324"},
                "requests": [{"timestamp": "2024-04-01T05:00:00"}, {"timestamp": "2024-04-02T05:00:00"},
                             {"timestamp": "2024-03-10T02:30:00", "timezone": "America/Vancouver"}]}"#,
        );
        assert!(requests.is_empty());
        // The bad default is reported once, though two requests use it; the third has its own zone.
        assert_eq!(
            rendered(&diagnostics),
            "r.json:defaults.timezone: error: unknown time zone \"America/Vancover\": expected an IANA \
             name such as America/Vancouver, UTC, or an offset such as -07:00\n  \
             = help: did you mean `America/Vancouver`?\n\
             r.json:requests[2].timestamp: error: local time 2024-03-10T02:30:00 does not exist in \
             America/Vancouver (skipped when daylight saving time starts)\n"
        );
    }

    #[test]
    fn a_bad_default_is_reported_once() {
        let (requests, diagnostics) = json(
            r#"{"defaults": {"pad_seconds": "lots", "deviceCode": "ICLISTENHF6324"},
                "requests": [{"timestamp": "2024-04-01"}, {"timestamp": "2024-04-02"}]}"#,
        );
        assert!(requests.is_empty());
        assert_eq!(
            errors(&diagnostics),
            vec![
                "r.json:defaults.pad_seconds: invalid number \"lots\": expected seconds such as 15 or 2.5"
            ]
        );
    }

    #[test]
    fn bad_csv_rows_are_all_reported_and_rendered() {
        let (requests, diagnostics) = csv("deviceCode,timestamp,download_audio\n\
             ICLISTENHF6324,2024-04-01T12:00:00Z,yes\n\
             ICLISTENHF6324,2024-13-01,no\n\
             ICLISTENHF6324,2024-04-01T13:00:00Z,maybe\n");
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].origin, "row 1");
        assert_eq!(
            rendered(&diagnostics),
            "r.csv:row 2, field `timestamp`: error: invalid timestamp \"2024-13-01\": expected ISO 8601 \
             such as 2024-04-01T12:34:50Z\n\
             r.csv:row 3, field `download_audio`: error: invalid boolean \"maybe\": expected true or false\n  \
             = help: accepted: true/false, t/f, yes/no, y/n, 1/0 (any case)\n"
        );
    }

    #[test]
    fn bad_json_field_paths_are_rendered() {
        let (requests, diagnostics) = json(
            r#"{"defaults": {"deviceCode": "ICLISTENHF6324"},
                "requests": [
                  {"timestamp": "2024-04-01T12:00:00Z", "pad_befor_seconds": 3},
                  {"timestamp": "2024-04-01T12:00:00Z", "audio": "sometimes",
                   "data_product_options": {"spectralDataDownsample": 2}}
                ]}"#,
        );
        assert_eq!(requests.len(), 1);
        assert_eq!(
            rendered(&diagnostics),
            "r.json:requests[0].pad_befor_seconds: warning: unknown field `pad_befor_seconds`\n  \
             = help: did you mean `pad_before_seconds`?\n\
             r.json:requests[1].audio: error: invalid boolean \"sometimes\": expected true or false\n  \
             = help: accepted: true/false, t/f, yes/no, y/n, 1/0 (any case)\n\
             r.json:requests[1].data_product_options.spectralDataDownsample: error: \
             `spectralDataDownsample` is not an ONC data product option\n  \
             = help: ONC data product options start with `dpo_`, such as `dpo_spectralDataDownsample`\n"
        );
    }

    #[test]
    fn json_syntax_error_has_line_and_column() {
        let (requests, diagnostics) = json("{\n  \"requests\": [\n    {,\n  ]\n}\n");
        assert!(requests.is_empty());
        assert_eq!(
            rendered(&diagnostics),
            "r.json:$: error: invalid JSON at line 3, column 6: key must be a string\n"
        );
    }

    #[test]
    fn json_layout_problems() {
        let (_, diagnostics) = json(r#"{"request": [{"device": "ICLISTENHF6324"}], "x": 1}"#);
        assert_eq!(
            rendered(&diagnostics),
            "r.json:$: error: unrecognised request file layout\n  \
             = help: did you mean `requests` instead of `request`?\n"
        );
        let (_, diagnostics) = json(r#""hello""#);
        assert_eq!(
            errors(&diagnostics),
            vec!["r.json:$: unrecognised request file layout: found a string"]
        );
        let (_, diagnostics) = json(r#"{"defaults": {}, "requests": {}, "extra": 1}"#);
        assert_eq!(
            rendered(&diagnostics),
            "r.json:extra: warning: unknown key `extra`\n  = help: a request file has `defaults` and `requests`\n\
             r.json:requests: error: expected a list of request objects, found an object\n"
        );
        let (_, diagnostics) = json(r#"{"defaults": {"clip": true}}"#);
        assert_eq!(
            errors(&diagnostics),
            vec!["r.json:$: missing `requests`: expected a list of request objects"]
        );
        let (_, diagnostics) = json(
            r#"{"requests": [3, {"device": "ICLISTENHF6324", "device_code": "X", "time": "2024-04-01"}]}"#,
        );
        assert_eq!(
            errors(&diagnostics),
            vec![
                "r.json:requests[0]: expected a request object, found a number",
                "r.json:requests[1].device_code: `device` and `device_code` are the same field: give one",
            ]
        );
        let (requests, diagnostics) = json(r#"{"requests": []}"#);
        assert!(requests.is_empty());
        assert_eq!(diagnostics[0].severity, Severity::Warning);
        assert_eq!(diagnostics[0].message, "the file has no requests");
    }

    #[test]
    fn json_type_errors() {
        let (_, diagnostics) = json(
            r#"[{"device": 6324, "time": 1711972800, "pad_seconds": true, "label": 5,
                 "clip": [], "timezone": 7, "data_product_options": [1],
                 "output_tag": ". .", "output_name": "../../x"}]"#,
        );
        let all: Vec<String> = diagnostics
            .iter()
            .map(|d| format!("{:?} {}: {}", d.severity, d.position(), d.message))
            .collect();
        assert_eq!(
            all,
            vec![
                "Error r.json:[0].device: expected a device code string, found a number",
                "Error r.json:[0].timezone: expected a time zone name or offset, found a number",
                "Error r.json:[0].time: expected an ISO 8601 string such as 2024-04-01T12:34:50Z, found a number",
                "Error r.json:[0].pad_seconds: expected a number of seconds, found a boolean",
                "Error r.json:[0].clip: expected true or false, found a list",
                "Error r.json:[0].output_tag: unusable tag \". .\"",
                "Warning r.json:[0].output_name: unsafe file name \"../../x\" is used as \"____x\"",
                "Error r.json:[0].label: expected a string, found a number",
                "Error r.json:[0].data_product_options: expected an object of dpo_* options, found a list",
            ]
        );
    }

    #[test]
    fn csv_structure_problems() {
        let (requests, diagnostics) = csv("device,deviceCode,timestamp,colour,\n\
             ICLISTENHF6324,,2024-04-01,red,\n\
             ICLISTENHF6324,2024-04-01\n\
             ,,,,\n\
             ICLISTENHF6324,,2024-04-01,red,,extra\n\
             ICLISTENHF6324,,2024-04-01,,\n");
        assert_eq!(requests.len(), 2);
        assert_eq!(
            requests
                .iter()
                .map(|r| r.origin.as_str())
                .collect::<Vec<_>>(),
            vec!["row 1", "row 5"]
        );
        assert_eq!(
            rendered(&diagnostics),
            "r.csv: error: columns `device` and `deviceCode` are the same field: keep one\n\
             r.csv: warning: unknown column `colour`\n  = help: known fields: deviceCode, timestamp, \
             start, end, duration_seconds, timezone, pad_seconds, pad_before_seconds, pad_after_seconds, \
             download_audio, download_spectrogram, spectrogram_format, clip, audio_extension, output_tag, \
             output_name, label, description, data_product_options\n\
             r.csv: warning: column 5 has no name; its values are ignored\n\
             r.csv:row 2, field `timestamp`: error: row has 2 fields but the header has 5\n  \
             = help: quote cells that contain commas\n\
             r.csv:row 4, field `column 6`: error: row has 6 fields but the header has 5\n  \
             = help: quote cells that contain commas\n"
        );
    }

    #[test]
    fn csv_missing_columns_are_reported_once() {
        let (requests, diagnostics) = csv("label\nA\nB\n");
        assert!(requests.is_empty());
        assert_eq!(
            errors(&diagnostics),
            vec![
                "r.csv: no `deviceCode` column",
                "r.csv: no `timestamp` or `start` column"
            ]
        );
        let (_, diagnostics) = csv("deviceCode,timestamp\n,2024-04-01\nICLISTENHF6324,\n");
        assert_eq!(
            errors(&diagnostics),
            vec![
                "r.csv:row 1, field `deviceCode`: missing `deviceCode`",
                "r.csv:row 2, field `timestamp`: missing `timestamp` or `start`",
            ]
        );
        let (_, diagnostics) = csv("");
        assert_eq!(
            errors(&diagnostics),
            vec!["r.csv: empty CSV file: expected a header row such as deviceCode,timestamp"]
        );
    }

    #[test]
    fn csv_data_product_options() {
        let (requests, diagnostics) = csv("deviceCode,timestamp,data_product_options\n\
             ICLISTENHF6324,2024-04-01,\"{\"\"dpo_a\"\": 2.5, \"\"dpo_b\"\": false}\"\n\
             ICLISTENHF6324,2024-04-01,{not json\n\
             ICLISTENHF6324,2024-04-01,\"{\"\"a\"\": 1, \"\"dpo_\"\": 2, \"\"dpo_c\"\": null}\"\n\
             ICLISTENHF6324,2024-04-01,[1]\n");
        assert_eq!(requests.len(), 1);
        assert_eq!(
            requests[0].options,
            options(&[("dpo_a", "2.5"), ("dpo_b", "false")])
        );
        assert_eq!(
            errors(&diagnostics),
            vec![
                "r.csv:row 2, field `data_product_options`: invalid JSON in data_product_options: \
                 key must be a string at line 1 column 2",
                "r.csv:row 3, field `data_product_options`: `a` is not an ONC data product option",
                "r.csv:row 3, field `data_product_options`: `dpo_` is not an ONC data product option",
                "r.csv:row 3, field `data_product_options`: option `dpo_c` must be a string, number or boolean, found null",
                "r.csv:row 4, field `data_product_options`: expected a JSON object of dpo_* options, found a list",
            ]
        );
    }

    #[test]
    fn repeated_options_are_read_once_but_reported_per_row() {
        let (requests, diagnostics) = csv("deviceCode,timestamp,data_product_options\n\
             ICLISTENHF6324,2024-04-01,\"{\"\"dpo_a\"\": 1}\"\n\
             ICLISTENHF6324,2024-04-02,\"{\"\"dpo_a\"\": 1}\"\n\
             ICLISTENHF6324,2024-04-03,\"{\"\"a\"\": 1}\"\n\
             ICLISTENHF6324,2024-04-04,\"{\"\"a\"\": 1}\"\n");
        let read: Vec<_> = requests
            .iter()
            .map(|r| (r.origin.as_str(), r.options.clone()))
            .collect();
        let dpo = options(&[("dpo_a", "1")]);
        assert_eq!(read, vec![("row 1", dpo.clone()), ("row 2", dpo)]);
        assert_eq!(
            errors(&diagnostics),
            vec![
                "r.csv:row 3, field `data_product_options`: `a` is not an ONC data product option",
                "r.csv:row 4, field `data_product_options`: `a` is not an ONC data product option",
            ]
        );
    }

    #[test]
    fn byte_order_mark_is_ignored() {
        let requests = clean(csv(
            "\u{feff}deviceCode,timestamp\nICLISTENHF6324,2024-04-01\n",
        ));
        assert_eq!(requests.len(), 1);
        let requests = clean(json(
            "\u{feff}[{\"device\": \"ICLISTENHF6324\", \"time\": \"2024-04-01\"}]",
        ));
        assert_eq!(requests.len(), 1);
    }

    #[test]
    fn sanitise_names() {
        let cleaned = sanitise_name("../../etc/passwd").expect("something is left");
        assert!(
            !cleaned.contains('/') && !cleaned.contains(".."),
            "{cleaned}"
        );
        assert_eq!(cleaned, "____etc_passwd");
        assert_eq!(sanitise_name(""), None);
        assert_eq!(sanitise_name("   "), None);
        assert_eq!(sanitise_name(".."), Some("_".into()));
        assert_eq!(sanitise_name(". ."), None);
        assert_eq!(sanitise_name(".hidden"), Some("hidden".into()));
        assert_eq!(sanitise_name("C:\\Windows\\x"), Some("C__Windows_x".into()));
        assert_eq!(sanitise_name("call\n7\u{0}"), Some("call_7_".into()));
        assert_eq!(
            sanitise_name("baleine à bosse"),
            Some("baleine _ bosse".into())
        );
        assert_eq!(sanitise_name("NUL.txt"), Some("_NUL.txt".into()));
        assert_eq!(sanitise_name("com1"), Some("_com1".into()));
        assert_eq!(sanitise_name("com10"), Some("com10".into()));
        assert_eq!(
            sanitise_name("json_timestamp_demo"),
            Some("json_timestamp_demo".into())
        );
        assert_eq!(sanitise_name(&"a".repeat(500)).map(|s| s.len()), Some(120));
    }

    #[test]
    fn from_path_and_read_requests() {
        assert_eq!(
            RequestFormat::from_path(Path::new("a/b.JSON")),
            Some(RequestFormat::Json)
        );
        assert_eq!(
            RequestFormat::from_path(Path::new("b.csv")),
            Some(RequestFormat::Csv)
        );
        assert_eq!(RequestFormat::from_path(Path::new("b.toml")), None);
        assert_eq!(RequestFormat::from_path(Path::new("csv")), None);

        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("missing.csv");
        let (requests, diagnostics) = read_requests(&missing, "missing.csv");
        assert!(requests.is_empty());
        assert_eq!(diagnostics.len(), 1);
        assert_eq!(diagnostics[0].location, Location::File);
        assert!(
            diagnostics[0]
                .message
                .starts_with("cannot read request file: ")
        );

        let present = dir.path().join("calls.json");
        std::fs::write(
            &present,
            include_str!("../../manifests/requests/calls.json"),
        )
        .expect("write");
        let (requests, diagnostics) = read_requests(&present, "calls.json");
        assert_eq!((requests.len(), diagnostics.len()), (3, 0));
    }

    /// Text that is not a request file never panics, whatever the layout.
    #[test]
    fn garbage_does_not_panic() {
        for text in [
            "",
            "{",
            "[",
            "null",
            "[[[]]]",
            "{\"A\": [[]]}",
            "\"\\u0000\"",
            "é,ü\n\"",
            "a\n\"b",
        ] {
            let _ = json(text);
            let _ = csv(text);
        }
    }

    proptest! {
        #[test]
        fn naive_time_with_offset_is_shifted_by_the_offset(
            offset_minutes in -12 * 60..=14 * 60_i32,
            millis in -2_208_988_800_000_i64..4_102_444_800_000_i64,
            compact in any::<bool>(),
        ) {
            let naive = DateTime::from_timestamp_millis(millis).expect("in range").naive_utc();
            let sign = if offset_minutes < 0 { '-' } else { '+' };
            let (hours, minutes) = (offset_minutes.abs() / 60, offset_minutes.abs() % 60);
            let offset = if compact {
                format!("{sign}{hours:02}{minutes:02}")
            } else {
                format!("{sign}{hours:02}:{minutes:02}")
            };
            let text = naive.format("%Y-%m-%dT%H:%M:%S%.3f").to_string();
            let expected = Utc.from_utc_datetime(&naive) - TimeDelta::minutes(i64::from(offset_minutes));
            prop_assert_eq!(parse_timestamp(&text, Some(&offset)), Ok(expected));
            // The same offset written into the timestamp gives the same instant.
            prop_assert_eq!(parse_timestamp(&format!("{text}{offset}"), None), Ok(expected));
        }

        #[test]
        fn sanitised_names_are_safe_and_stable(name in any::<String>()) {
            if let Some(clean) = sanitise_name(&name) {
                prop_assert!(!clean.is_empty() && clean.len() <= 120);
                prop_assert!(!clean.contains("..") && !clean.starts_with('.'));
                prop_assert!(clean.chars().all(|c| c.is_ascii_alphanumeric() || "._ -".contains(c)));
                prop_assert_eq!(sanitise_name(&clean), Some(clean.clone()));
            }
        }

        #[test]
        fn any_text_parses_without_panicking(text in any::<String>()) {
            let _ = parse_requests("f", &text, RequestFormat::Json);
            let _ = parse_requests("f", &text, RequestFormat::Csv);
            let _ = parse_timestamp(&text, Some(&text));
        }
    }
}
