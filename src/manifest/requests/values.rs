//! Field values other than times: one [`Given`] value → the typed setting it names.
//!
//! Input: a field as given (JSON value, CSV cell or legacy key). Output: a device code, text, a
//! sanitised name, one of a few choices, a boolean, whole milliseconds from seconds, or the
//! `dpo_*` data product options as text. Errors: a wrong type or an invalid value is reported to
//! the [`Sink`] at the field and gives `None`; a name that sanitising changed is a warning.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::fields::{Given, Raw};
use super::sink::{Sink, kind};
use crate::cache::sanitise_name;
use crate::manifest::diagnostic::{Diagnostic, Location};

const BOOLEAN_HELP: &str = "accepted: true/false, t/f, yes/no, y/n, 1/0 (any case)";
/// About 31 years: far beyond any real padding or event, and far from chrono's limits.
const MAX_SECONDS: f64 = 1e9;

/// ONC device codes: ASCII letters, digits, `_` or `-`, 3 to 64 characters, starting with a letter.
pub(super) fn check_device(code: &str) -> Result<(), String> {
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

pub(super) fn device_value(sink: &mut Sink, given: &Given) -> Option<String> {
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

/// An ONC location or device-category code (`BACAX`, `HYDROPHONE`): 1 to 64 ASCII letters,
/// digits, `.`, `_` or `-`.
pub(super) fn site_code_value(sink: &mut Sink, given: &Given, what: &str) -> Option<String> {
    let text = text_value(sink, given)?;
    let valid = !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        return Some(text);
    }
    sink.error_help(
        &given.at(),
        format!("invalid {what} code {text:?}"),
        format!("an ONC {what} code is letters and digits, such as BACAX or HYDROPHONE"),
    );
    None
}

pub(super) fn text_value(sink: &mut Sink, given: &Given) -> Option<String> {
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
pub(super) fn name_value(sink: &mut Sink, given: &Given, what: &str) -> Option<String> {
    let text = text_value(sink, given)?;
    let help = "names may use letters, digits, `.`, `_`, `-` and spaces, at most 120 characters";
    match sanitise_name(&text) {
        Some(clean) if clean == text => Some(clean),
        Some(clean) => {
            let message = format!("unsafe {what} {} is used as {clean:?}", shown(&text));
            sink.push(Diagnostic::warning(sink.file, given.at(), message).with_help(help));
            Some(clean)
        }
        None => {
            sink.error_help(
                &given.at(),
                format!("unusable {what} {}", shown(&text)),
                help,
            );
            None
        }
    }
}

/// A name as a diagnostic quotes it: whole, or its first 60 characters and its length when
/// longer, so a hostile 5,000-character name does not bury the message.
fn shown(text: &str) -> String {
    const HEAD: usize = 60;
    let count = text.chars().count();
    if count <= HEAD {
        return format!("{text:?}");
    }
    let head: String = text.chars().take(HEAD).collect();
    format!("\"{}…\" ({count} characters)", head.escape_debug())
}

pub(super) fn choice_value(
    sink: &mut Sink,
    given: &Given,
    what: &str,
    valid: &[&str],
) -> Option<String> {
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

pub(super) fn boolean_value(sink: &mut Sink, given: &Given) -> Option<bool> {
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
pub(super) enum Bound {
    NonNegative,
    Positive,
}

/// Seconds (a number, or a number in text) → whole milliseconds, rounded to the nearest.
pub(super) fn seconds_value(sink: &mut Sink, given: &Given, bound: Bound) -> Option<i64> {
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
pub(super) fn options_value(
    sink: &mut Sink,
    given: &Given,
    options: &mut BTreeMap<String, String>,
) {
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
