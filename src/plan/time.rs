//! Time values: TOML date-times and duration strings → UTC instants and millisecond durations.
//!
//! Everything inside onc-pipe is UTC with millisecond precision, the precision of ONC's
//! `yyyy-MM-ddTHH:mm:ss.SSSZ` query format and of its file names (both spelt by
//! [`onc_format::stamp`]).

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use onc_format::stamp::onc_date;

/// A TOML offset date-time → UTC. Local date-times (no offset) are refused: a manifest is shared
/// between people in different zones, so the zone must be written down.
pub fn toml_to_utc(value: &toml::value::Datetime) -> Result<DateTime<Utc>, String> {
    let (Some(date), Some(time)) = (value.date, value.time) else {
        return Err(format!(
            "`{value}` is not a date-time: give a full date and time such as 2024-04-01T00:00:00Z"
        ));
    };
    let Some(offset) = value.offset else {
        return Err(format!(
            "`{value}` has no UTC offset: append `Z` for UTC or an offset such as `-07:00`"
        ));
    };
    let naive_date = NaiveDate::from_ymd_opt(date.year.into(), date.month.into(), date.day.into())
        .ok_or_else(|| format!("`{value}` is not a valid date"))?;
    let naive_time = NaiveTime::from_hms_nano_opt(
        time.hour.into(),
        time.minute.into(),
        time.second.unwrap_or(0).into(),
        time.nanosecond.unwrap_or(0),
    )
    .ok_or_else(|| format!("`{value}` is not a valid time of day"))?;
    let offset_minutes: i64 = match offset {
        toml::value::Offset::Z => 0,
        toml::value::Offset::Custom { minutes } => minutes.into(),
    };
    let utc = naive_date.and_time(naive_time).and_utc() - TimeDelta::minutes(offset_minutes);
    Ok(truncate_to_ms(utc))
}

/// Drops sub-millisecond digits: ONC's API and file names stop at milliseconds.
pub fn truncate_to_ms(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(time.timestamp_millis()).unwrap_or(time)
}

/// Parses `"15s"`, `"5m"`, `"1h30m"`, `"250ms"`, `"1.5s"`, `"2d"` into milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let invalid = || {
        format!(
            "invalid duration `{text}`: expected <number><unit> parts with units d, h, m, s, ms, such as \"15s\" or \"1h30m\""
        )
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ms = match &rest[..unit_len] {
            "d" => 86_400_000.0,
            "h" => 3_600_000.0,
            "m" | "min" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_len..];
        total += number * unit_ms;
    }
    if !total.is_finite() || total > 1e15 {
        return Err(invalid());
    }
    Ok(total.round() as i64)
}

/// RFC 3339 UTC with milliseconds, for `plan --format json` and sidecars.
pub fn rfc3339(time: DateTime<Utc>) -> String {
    onc_date(time)
}

/// Adds milliseconds, saturating at chrono's limits instead of panicking on absurd input.
pub fn add_ms(time: DateTime<Utc>, ms: i64) -> DateTime<Utc> {
    time.checked_add_signed(TimeDelta::milliseconds(ms))
        .unwrap_or(if ms < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_to_milliseconds() {
        assert_eq!(parse_duration_ms("15s"), Ok(15_000));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("250ms"), Ok(250));
        assert_eq!(parse_duration_ms("1.5s"), Ok(1_500));
        assert_eq!(parse_duration_ms("0s"), Ok(0));
        assert!(parse_duration_ms("15").is_err());
        assert!(parse_duration_ms("s").is_err());
        assert!(parse_duration_ms("5 minutes").is_err());
        assert!(parse_duration_ms("").is_err());
    }

    #[test]
    fn toml_offsets_convert_to_utc() {
        let value: toml::value::Datetime = "2024-04-01T05:00:00.250-07:00".parse().unwrap();
        assert_eq!(
            onc_date(toml_to_utc(&value).unwrap()),
            "2024-04-01T12:00:00.250Z"
        );
        let local: toml::value::Datetime = "2024-04-01T05:00:00".parse().unwrap();
        assert!(toml_to_utc(&local).unwrap_err().contains("no UTC offset"));
    }
}
