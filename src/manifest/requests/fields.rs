//! Request fields: the names a request file may use, and each value as given.
//!
//! Input: a field name from a JSON key or a CSV header, and the raw value next to it. Output: the
//! field's canonical name ([`canonical`]; some fields have aliases, as in the seed), and a
//! [`Given`] value that remembers where it was written, so a later problem can point at it. A
//! request's own fields are looked up over the file's defaults through [`Layers`]. Errors: none
//! here; an unknown name is `None` from [`canonical`], and [`unknown_field_help`] words the hint.

use std::collections::BTreeMap;

use serde_json::Value;

use super::sink::kind;
use crate::manifest::diagnostic::{self, Location};

/// Every field the seed accepts, canonical name first, then its aliases. `begin_time` and
/// `stop_time` are not in the seed's docs but its code reads them, so files using them exist.
const FIELDS: &[(&str, &[&str])] = &[
    ("deviceCode", &["device", "device_code"]),
    ("locationCode", &["location", "location_code"]),
    (
        "deviceCategoryCode",
        &["device_category", "device_category_code"],
    ),
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

pub(super) const PAD_FIELDS: [&str; 3] = ["pad_seconds", "pad_before_seconds", "pad_after_seconds"];

pub(super) fn canonical(name: &str) -> Option<&'static str> {
    FIELDS
        .iter()
        .find(|(field, aliases)| *field == name || aliases.contains(&name))
        .map(|(field, _)| *field)
}

/// [`canonical`], ignoring ASCII case: Raven users write `Device` or `Label` as column titles.
pub(super) fn canonical_any_case(name: &str) -> Option<&'static str> {
    FIELDS
        .iter()
        .find(|(field, aliases)| {
            field.eq_ignore_ascii_case(name) || aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
        })
        .map(|(field, _)| *field)
}

fn all_field_names() -> impl Iterator<Item = &'static str> {
    FIELDS
        .iter()
        .flat_map(|(field, aliases)| std::iter::once(*field).chain(aliases.iter().copied()))
}

pub(super) fn unknown_field_help(name: &str) -> String {
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
pub(super) enum Raw<'a> {
    Json(&'a Value),
    Text(&'a str),
}

/// A field as given, with where it was given (so a bad default points at `defaults.x`).
#[derive(Debug, Clone)]
pub(super) struct Given<'a> {
    pub(super) raw: Raw<'a>,
    pub(super) place: At<'a>,
}

/// Where a field was given. CSV cells keep borrowed parts and build their [`Location`] only when
/// there is something to report: a 100,000-row file then allocates nothing per cell for it.
#[derive(Debug, Clone)]
pub(super) enum At<'a> {
    Cell { row: usize, field: &'a str },
    Known(Location),
}

impl<'a> Given<'a> {
    pub(super) fn at(&self) -> Location {
        match &self.place {
            At::Cell { row, field } => Location::Row {
                row: *row,
                field: (*field).to_owned(),
            },
            At::Known(location) => location.clone(),
        }
    }

    pub(super) fn as_text(&self) -> Option<&'a str> {
        match self.raw {
            Raw::Text(text) => Some(text),
            Raw::Json(Value::String(text)) => Some(text),
            Raw::Json(_) => None,
        }
    }

    /// JSON `null` and empty strings mean "not given", like an empty CSV cell.
    pub(super) fn is_absent(&self) -> bool {
        match self.raw {
            Raw::Json(Value::Null) => true,
            _ => self.as_text().is_some_and(|text| text.trim().is_empty()),
        }
    }

    pub(super) fn kind(&self) -> &'static str {
        match self.raw {
            Raw::Json(value) => kind(value),
            Raw::Text(_) => "text",
        }
    }
}

/// Fields of one object or row, by canonical name.
pub(super) type Fields<'a> = BTreeMap<&'static str, Given<'a>>;

/// A request's own fields over the file's defaults. The merge is per field, as the seed's
/// `{**defaults, **request}`: a request's `pad_seconds` does not undo a default `pad_before_seconds`.
pub(super) struct Layers<'r, 'a> {
    pub(super) defaults: Option<&'r Fields<'a>>,
    pub(super) own: &'r Fields<'a>,
}

impl<'r, 'a> Layers<'r, 'a> {
    pub(super) fn get(&self, name: &str) -> Option<&'r Given<'a>> {
        let own = self.own.get(name).filter(|given| !given.is_absent());
        own.or_else(|| self.defaults?.get(name).filter(|given| !given.is_absent()))
    }
}
