//! The legacy request map: `{"DEVICE": [[Y, M, D, h, m, s], ...]}` → instant [`EventRequest`]s.
//!
//! Input: the top-level JSON object, every value a list. Output: one instant per entry, with the
//! documented defaults; an entry may also be a timestamp string, or a request object whose device
//! defaults to the key (read like a payload request). Errors: a bad device key, and every entry
//! that is not a valid date and time, as diagnostics at `DEVICE[index]`.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};

use super::EventRequest;
use super::fields::{At, Fields, Given, Raw};
use super::json::request_entry;
use super::sink::{Sink, kind};
use super::time::{naive_from_components, parse_timestamp};
use super::values::check_device;
use crate::manifest::diagnostic::Location;

/// The legacy `{DEVICE: [[Y, M, D, h, m, s], ...]}` map. As in the seed, an entry may also be a
/// timestamp string or a request object (whose device defaults to the key).
pub(super) fn parse_legacy(
    sink: &mut Sink,
    map: &Map<String, Value>,
) -> (Vec<EventRequest>, usize) {
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
        site: None,
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
