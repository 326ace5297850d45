//! ONC's time spellings: file-name stamps, the query date format, archive file names.
//!
//! Input: instants (UTC, milliseconds) or strings. Output: `yyyyMMddTHHmmss.SSSZ` stamps as ONC
//! writes them in file names (`ICLISTENHF6324_20240401T000107.123Z.flac`), its query-string
//! dates `yyyy-MM-ddTHH:mm:ss.SSSZ`, and the times found in a file name. Parsers accept any
//! string and answer `None` for anything that is not exactly a stamp of a real calendar date.
//!
//! Everything is UTC with millisecond precision, the precision of ONC's query format and of its
//! file names.

use std::fmt::Write as _;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

/// Characters in a file-name stamp: `20240401T000107.123Z`.
pub const STAMP_LEN: usize = 20;

/// ONC's query-string date format: `yyyy-MM-ddTHH:mm:ss.SSSZ`, always UTC.
pub fn onc_date(time: DateTime<Utc>) -> String {
    // Written out by hand: chrono's strftime (and even `write!`) dominated the cost of planning
    // 100,000 rows, which formats a few dates per node (see BENCHMARKS.md).
    let mut out = String::with_capacity(24);
    push_date(&mut out, time, true);
    out
}

/// The compact UTC stamp used in file names: `20240401T042450.000Z`.
pub fn compact_date(time: DateTime<Utc>) -> String {
    let mut out = String::with_capacity(STAMP_LEN);
    push_date(&mut out, time, false);
    out
}

/// [`compact_date`] of milliseconds since 1970; instants beyond chrono's range (±262,000
/// years) are written as its limits.
pub fn stamp_of_ms(ms: i64) -> String {
    let time = DateTime::from_timestamp_millis(ms).unwrap_or(if ms < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    });
    compact_date(time)
}

/// `DEVICE_START_END` with compact stamps: the default clip basename.
pub fn push_compact_span(out: &mut String, device: &str, start: DateTime<Utc>, end: DateTime<Utc>) {
    out.push_str(device);
    out.push('_');
    push_date(out, start, false);
    out.push('_');
    push_date(out, end, false);
}

fn push_date(out: &mut String, time: DateTime<Utc>, separators: bool) {
    let year = time.year();
    if !(0..=9999).contains(&year) {
        // Outside what ONC can hold; keep chrono's spelling rather than invent one.
        let pattern = if separators {
            "%Y-%m-%dT%H:%M:%S%.3fZ"
        } else {
            "%Y%m%dT%H%M%S%.3fZ"
        };
        let _ = write!(out, "{}", time.format(pattern));
        return;
    }
    // Into a stack buffer, then one `push_str`: pushing char by char (with a power of ten per
    // digit) was most of the formatting time when planning 100,000 rows.
    let mut buf = [0u8; 24];
    let mut len = 0;
    let (date_sep, time_sep): (&[u8], &[u8]) = if separators { (b"-", b":") } else { (b"", b"") };
    // `prefix`, then `value` in `width` digits.
    let mut put = |prefix: &[u8], mut value: u32, width: usize| {
        buf[len..len + prefix.len()].copy_from_slice(prefix);
        len += prefix.len();
        for slot in buf[len..len + width].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
        len += width;
    };
    put(b"", year.unsigned_abs(), 4);
    put(date_sep, time.month(), 2);
    put(date_sep, time.day(), 2);
    put(b"T", time.hour(), 2);
    put(time_sep, time.minute(), 2);
    put(time_sep, time.second(), 2);
    put(b".", time.timestamp_subsec_millis().min(999), 3);
    put(b"Z", 0, 0);
    // Only ASCII digits and separators were written.
    out.push_str(std::str::from_utf8(&buf[..len]).unwrap_or_default());
}

/// Parses exactly one stamp `yyyyMMddTHHmmss.SSSZ` of a real calendar date (no leap seconds) to
/// milliseconds since 1970.
pub fn parse_stamp(text: &str) -> Option<i64> {
    stamp_bytes_ms(text.as_bytes())
}

/// The stamp in exactly these 20 bytes, if they are one.
fn stamp_bytes_ms(bytes: &[u8]) -> Option<i64> {
    if bytes.len() != STAMP_LEN {
        return None;
    }
    let shape_ok = bytes.iter().enumerate().all(|(j, &b)| match j {
        8 => b == b'T',
        15 => b == b'.',
        19 => b == b'Z',
        _ => b.is_ascii_digit(),
    });
    if !shape_ok {
        return None;
    }
    // Only ASCII digits at these positions now.
    let number = |from: usize, to: usize| {
        bytes[from..to]
            .iter()
            .fold(0u32, |n, &b| n * 10 + u32::from(b - b'0'))
    };
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(number(0, 4)).ok()?,
        number(4, 6),
        number(6, 8),
    )?;
    let time = date.and_hms_milli_opt(
        number(9, 11),
        number(11, 13),
        number(13, 15),
        number(16, 19),
    )?;
    // chrono reads a second of 60 as a leap second; ONC never writes one.
    if number(13, 15) > 59 {
        return None;
    }
    Some(time.and_utc().timestamp_millis())
}

/// The first two stamps anywhere in a file name, as milliseconds since 1970
/// (`DEV_20240401T000107.123Z[_20240401T000607.456Z]...`); `None` where there is none.
///
/// Works on bytes, so a name holding any Unicode is read without slicing inside a character.
pub fn times_in_name(name: &str) -> (Option<i64>, Option<i64>) {
    let bytes = name.as_bytes();
    let mut found = [None, None];
    let mut count = 0;
    let mut i = 0;
    while i + STAMP_LEN <= bytes.len() && count < found.len() {
        if let Some(ms) = stamp_bytes_ms(&bytes[i..i + STAMP_LEN]) {
            found[count] = Some(ms);
            count += 1;
            i += STAMP_LEN;
        } else {
            i += 1;
        }
    }
    (found[0], found[1])
}

/// Parses a date as ONC's services write and accept it, to milliseconds since 1970: RFC 3339
/// with any offset (`2024-04-01T00:01:07.123Z`, what ONC's JSON holds), the same without an
/// offset or a trailing `Z` read as UTC, with or without seconds and fractions, or a date alone
/// (`2024-04-01`, midnight UTC). `None` for anything else.
pub fn parse_onc_date(text: &str) -> Option<i64> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.timestamp_millis());
    }
    let trimmed = text.strip_suffix('Z').unwrap_or(text);
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = chrono::NaiveDateTime::parse_from_str(trimmed, format) {
            return Some(naive.and_utc().timestamp_millis());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|naive| naive.and_utc().timestamp_millis())
}

/// An archived file's name taken apart: `<device>_<stamp>.<extension>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveName<'a> {
    pub device: &'a str,
    pub start_ms: i64,
    pub extension: &'a str,
}

/// Parses an archive file name `<device>_<yyyyMMddTHHmmss.SSS>Z.<ext>` (non-empty device,
/// non-empty ASCII alphanumeric extension); `None` for anything else.
pub fn parse_archive_name(name: &str) -> Option<ArchiveName<'_>> {
    let (device, rest) = name.rsplit_once('_')?;
    // The stamp is fixed-width, then '.', then the extension.
    let stamp = rest.get(..STAMP_LEN)?;
    let extension = rest.get(STAMP_LEN..)?.strip_prefix('.')?;
    if device.is_empty()
        || extension.is_empty()
        || !extension.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return None;
    }
    Some(ArchiveName {
        device,
        start_ms: parse_stamp(stamp)?,
        extension,
    })
}

/// The archive file name of a device's file starting at `start_ms`.
pub fn archive_name(device: &str, start_ms: i64, extension: &str) -> String {
    format!("{device}_{}.{extension}", stamp_of_ms(start_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hand_written_formats_match_chrono() {
        for ms in [
            0_i64,
            1_711_929_890_007,
            253_402_300_799_999,
            951_782_400_123,
        ] {
            let time = DateTime::from_timestamp_millis(ms).unwrap();
            assert_eq!(
                onc_date(time),
                time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
            );
            assert_eq!(
                compact_date(time),
                time.format("%Y%m%dT%H%M%S%.3fZ").to_string()
            );
            assert_eq!(stamp_of_ms(ms), compact_date(time));
            assert_eq!(parse_stamp(&compact_date(time)), Some(ms));
        }
        assert_eq!(stamp_of_ms(-1), "19691231T235959.999Z");
        let _ = stamp_of_ms(i64::MIN);
        let _ = stamp_of_ms(i64::MAX);
    }

    #[test]
    fn stamps_in_names() {
        assert_eq!(
            times_in_name("ICLISTENHF6406_20240523T061507.123Z_20240523T062007.000Z-spect.mat"),
            (Some(1_716_444_907_123), Some(1_716_445_207_000))
        );
        assert_eq!(
            times_in_name("ICLISTENHF6406_20240523T061507.123Z.flac"),
            (Some(1_716_444_907_123), None)
        );
        assert_eq!(times_in_name("nothing.mat"), (None, None));
        // Multi-byte characters around and inside the stamp positions must not panic.
        assert_eq!(
            times_in_name("é20240523T061507.123Zé"),
            (Some(1_716_444_907_123), None)
        );
        assert_eq!(times_in_name("2024052ééé3T061507.123Z"), (None, None));
        assert_eq!(
            times_in_name("20240230T000000.000Z"),
            (None, None),
            "Feb 30"
        );
        assert_eq!(
            times_in_name("20240101T000060.000Z"),
            (None, None),
            "leap second"
        );
    }

    #[test]
    fn archive_names() {
        for bad in [
            "",
            "x.flac",
            "_20240401T000000.000Z.flac",
            "D_20240401T000000.000Z.",
            "D_20240401T000000.000Z.fl-ac",
            "D_20241301T000000.000Z.flac",
            "D_20240401T000000.000Zflac",
            "D_2024040é1T00000.000Z.flac",
            "X_20240401T000107Z.flac",
            "X_20240401T000107.123Z",
            "X_20240230T000107.123Z.flac",
            "X_20240401T240107.123Z.flac",
            "X_2024O401T000107.123Z.flac",
            "X_20240401T000107.12é.flac",
        ] {
            assert_eq!(parse_archive_name(bad), None, "{bad}");
        }
        assert_eq!(
            parse_archive_name("A_B-C_19991231T235959.999Z.wav"),
            Some(ArchiveName {
                device: "A_B-C",
                start_ms: 946_684_799_999,
                extension: "wav"
            })
        );
        assert_eq!(
            archive_name("A_B-C", 946_684_799_999, "wav"),
            "A_B-C_19991231T235959.999Z.wav"
        );
    }

    #[test]
    fn onc_dates() {
        let ms = 1_711_929_667_123;
        for text in [
            "2024-04-01T00:01:07.123Z",
            "2024-04-01T00:01:07.123",
            "2024-04-01T02:01:07.123+02:00",
        ] {
            assert_eq!(parse_onc_date(text), Some(ms), "{text}");
        }
        assert_eq!(parse_onc_date("2024-04-01T00:01:07Z"), Some(ms - 123));
        assert_eq!(parse_onc_date("2024-04-01T00:01"), Some(ms - 7_123));
        assert_eq!(parse_onc_date("2024-04-01"), Some(ms - 67_123));
        for bad in [
            "",
            "2024-04-31",
            "yesterday",
            "2024-04-01T25:00:00Z",
            "2024-04-01 00:00",
        ] {
            assert_eq!(parse_onc_date(bad), None, "{bad}");
        }
        let time = DateTime::from_timestamp_millis(ms).unwrap();
        assert_eq!(parse_onc_date(&onc_date(time)), Some(ms));
    }

    proptest! {
        #[test]
        fn parsers_take_any_string(text in "\\PC*") {
            let _ = parse_onc_date(&text);
            let _ = times_in_name(&text);
            let _ = parse_stamp(&text);
            let _ = parse_archive_name(&text);
            let _ = crate::device::looks_like_device_code(&text);
        }

        #[test]
        fn parsers_take_any_string_near_a_stamp(prefix in "\\PC{0,4}", cut in 0usize..20, insert in "\\PC{0,2}") {
            let mut stamp = "20240523T061507.123Z".to_owned();
            stamp.insert_str(cut, &insert);
            let text = format!("{prefix}{stamp}");
            let _ = times_in_name(&text);
            let _ = parse_archive_name(&format!("D_{stamp}.flac"));
        }

        #[test]
        fn stamps_round_trip(ms in -62_167_219_200_000_i64..253_402_300_800_000) {
            prop_assert_eq!(parse_stamp(&stamp_of_ms(ms)), Some(ms));
            prop_assert_eq!(times_in_name(&archive_name("D", ms, "flac")), (Some(ms), None));
        }
    }
}
