//! One request: its fields (own over defaults) → one [`EventRequest`], or every problem in it.
//!
//! Input: a request's [`Layers`] of fields, where it is in the file ([`Place`]) and which missing
//! fields the whole file has already been told about ([`Quiet`]). Output: the request with every
//! default applied, or `None`. Errors: every bad or conflicting field is reported, even after the
//! first one, so a file is fixed in one pass; a request with any error is left out.

use std::collections::BTreeMap;

use chrono::TimeDelta;

use super::fields::{Layers, PAD_FIELDS};
use super::sink::Sink;
use super::time::{ZoneState, parse_zone, show, time_value};
use super::values::{
    Bound, boolean_value, choice_value, device_value, name_value, options_value, seconds_value,
    site_code_value, text_value,
};
use super::{EventRequest, RowSite};
use crate::manifest::diagnostic::Location;

/// Where a request is: its origin text and where to point when a field is missing.
pub(super) enum Place {
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
pub(super) struct Quiet {
    pub(super) device: bool,
    pub(super) time: bool,
}

/// Check every field of one request, report every problem, and build it if there was none.
pub(super) fn build_request(
    sink: &mut Sink,
    place: &Place,
    layers: &Layers,
    quiet: Quiet,
) -> Option<EventRequest> {
    let errors_before = sink.errors;

    // A row names a device, or a site (`locationCode`, and `deviceCategoryCode` or HYDROPHONE).
    let location = layers
        .get("locationCode")
        .and_then(|given| site_code_value(sink, given, "location"));
    let category = layers
        .get("deviceCategoryCode")
        .and_then(|given| site_code_value(sink, given, "device category"));
    let location_given = layers.get("locationCode").is_some();
    let (device, site) = match (layers.get("deviceCode"), location) {
        (Some(given), None) if !location_given => (device_value(sink, given), None),
        // A bad `locationCode` was reported where it is.
        (None, None) if location_given => (None, None),
        (None, Some(location)) => (
            Some(String::new()),
            Some(RowSite {
                location,
                category: category.unwrap_or_else(|| "HYDROPHONE".to_owned()),
            }),
        ),
        (Some(_), _) => {
            sink.error_help(
                &place.at("locationCode"),
                "both `deviceCode` and `locationCode`",
                "give `deviceCode` for one instrument, or `locationCode` for whatever device was \
                 deployed at that site",
            );
            (None, None)
        }
        (None, None) => {
            if quiet.device {
                sink.errors += 1;
            } else {
                sink.error_help(
                    &place.at("deviceCode"),
                    "missing `deviceCode`",
                    "every request names an ONC device such as ICLISTENHF6324 \
                     (field `deviceCode`, `device` or `device_code`), or a site \
                     (`locationCode`, such as BACAX)",
                );
            }
            (None, None)
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
        site,
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
