//! JSON request files: text → [`EventRequest`]s, for the `{"defaults": ..., "requests": [...]}`
//! payload and the bare list of request objects; the legacy device map is handed to `legacy`.
//!
//! Input: the file's text (byte-order mark already removed). Output: one request per valid entry,
//! in file order, with `defaults` under each request's own fields. Errors: invalid JSON (with line
//! and column), an unrecognised layout, entries that are not objects, and every field problem, as
//! diagnostics at JSON paths (`requests[3].timestamp`); unknown keys and fields are warnings.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::EventRequest;
use super::fields::{At, Fields, Given, Layers, Raw, canonical, unknown_field_help};
use super::legacy::parse_legacy;
use super::request::{Place, Quiet, build_request};
use super::sink::{Sink, kind};
use crate::manifest::diagnostic::{self, Diagnostic, Location};

pub(super) fn parse_json(sink: &mut Sink, text: &str) -> Vec<EventRequest> {
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

pub(super) fn request_entry(
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
