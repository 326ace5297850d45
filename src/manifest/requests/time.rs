//! Times: timestamps, time zones and `[Y, M, D, h, m, s]` lists → UTC at millisecond precision.
//!
//! Input: ISO 8601 / RFC 3339 text (with or without an offset), a date-and-time list from JSON, and
//! a request's optional `timezone` (an IANA name, `UTC`, or an offset). Output: a
//! `DateTime<Utc>`, with naive times read in the time zone and sub-millisecond digits dropped.
//! Errors: text that is not such a time, a date or time that does not exist, an unknown time zone,
//! and local times that daylight saving skips or repeats, as messages naming the value: returned
//! by [`parse_timestamp`], or reported to the request's [`Sink`] by [`time_value`].

use chrono::{
    DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, SecondsFormat,
    TimeZone, Utc,
};
use chrono_tz::{TZ_VARIANTS, Tz};
use serde_json::Value;

use super::fields::{Given, Raw};
use super::sink::{Sink, kind};
use crate::manifest::diagnostic;

const TIMESTAMP_EXAMPLE: &str = "2024-04-01T12:34:50Z";

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

/// The time zone naive times of one request are read in.
pub(super) enum ZoneState {
    /// No `timezone`: naive times are UTC, as in the seed.
    Utc,
    Given(Zone),
    /// `timezone` was bad and has been reported; naive times cannot be read.
    Broken,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Zone {
    Fixed(FixedOffset),
    Named(Tz),
}

pub(super) struct ZoneError {
    pub(super) message: String,
    pub(super) help: Option<String>,
}

/// `UTC`/`Z`, an offset (`-07:00`, `+0530`, `-07`), or an IANA name (any case).
pub(super) fn parse_zone(text: &str) -> Result<Zone, ZoneError> {
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

/// `[Y, M, D]` up to `[Y, M, D, h, m, s, ms]`, all integers, as a UTC-less date and time.
pub(super) fn naive_from_components(items: &[Value]) -> Result<NaiveDateTime, String> {
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

/// A request field's time: an ISO 8601 string, or (JSON) a `[Y, M, D, h, m, s]` list as in the
/// legacy map. Naive times are read in the request's `timezone`.
pub(super) fn time_value(
    sink: &mut Sink,
    given: &Given,
    zone: &ZoneState,
) -> Option<DateTime<Utc>> {
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

pub(super) fn show(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn show_naive(naive: NaiveDateTime) -> String {
    naive.format("%Y-%m-%dT%H:%M:%S%.f").to_string()
}
