//! Request-file tests: the seed tool's example files, every layout, alias and default, and the
//! exact words and order of every diagnostic.
//!
//! Input: request-file text, inline or from `manifests/requests/`. Output checked: the requests
//! and the diagnostics [`parse_requests`] returns, as users see them. Errors: a failed assertion.

use chrono::{TimeDelta, TimeZone};

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
        site: None,
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
        "../../../manifests/requests/seed_requests.json"
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
        "../../../manifests/requests/seed_requests.csv"
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
    let requests = clean(json(include_str!("../../../manifests/requests/calls.json")));
    let common = |mut request: EventRequest, label: &str| {
        request.output_tag = Some("json_timestamp_demo".into());
        // `pad_seconds: 15` in the defaults: the timestamp's clip has context on both sides.
        request.pad_before_ms = 15_000;
        request.pad_after_ms = 15_000;
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
        "../../../manifests/requests/legacy_map.json"
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
        let text = format!(r#"[{{"device": "ICLISTENHF6324", "{key}": "2024-04-01T01:02:03Z"}}]"#);
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
            let text = format!("deviceCode,timestamp,{column}\nICLISTENHF6324,2024-04-01,{cell}\n");
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
            format!("invalid timestamp {bad:?}: expected ISO 8601 such as 2024-04-01T12:34:50Z")
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
         r.csv: warning: unknown column `colour`\n  = help: known fields: deviceCode, locationCode, \
         deviceCategoryCode, timestamp, \
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
    // Long names that differ only at the end stay apart, keep their extension, and are stable.
    let long = |tail: &str| sanitise_name(&format!("{}{tail}", "A".repeat(5_000))).unwrap();
    let (one, two) = (long("_1.mat"), long("_2.mat"));
    assert_ne!(one, two);
    assert!(
        one.len() == 120 && one.ends_with(".mat") && one.starts_with("AAAA"),
        "{one}"
    );
    assert_eq!(sanitise_name(&one), Some(one.clone()));
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
        include_str!("../../../manifests/requests/calls.json"),
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
        let _ = parse_requests("f", &text, RequestFormat::Raven);
        let _ = parse_timestamp(&text, Some(&text));
    }
}

#[test]
fn rows_may_name_a_site_instead_of_a_device() {
    let (rows, diagnostics) = parse_requests(
        "r.csv",
        "locationCode,timestamp\nBACAX,2023-06-15T17:00:00Z\n",
        RequestFormat::Csv,
    );
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    assert_eq!(rows[0].device, "");
    assert_eq!(
        rows[0].site,
        Some(RowSite {
            location: "BACAX".into(),
            category: "HYDROPHONE".into()
        })
    );

    let (rows, diagnostics) = json(
        r#"{"requests": [
            {"deviceCode": "ICLISTENHF6324", "locationCode": "BACAX", "timestamp": "2024-04-01T00:00:00Z"},
            {"location": "BAC AX", "timestamp": "2024-04-01T00:00:00Z"},
            {"location": "FGPD", "device_category": "HYDROPHONE", "timestamp": "2024-04-01T00:00:00Z"}
        ]}"#,
    );
    let messages: Vec<_> = diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "both `deviceCode` and `locationCode`",
            "invalid location code \"BAC AX\""
        ]
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].site.as_ref().map(|s| s.location.as_str()),
        Some("FGPD")
    );
}

fn raven(text: &str) -> (Vec<EventRequest>, Vec<Diagnostic>) {
    parse_requests("sel.txt", text, RequestFormat::Csv)
}

const RAVEN_HEADER: &str = "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tDelta Time (s)\tBegin File\tFile Offset (s)\tAnnotation";

#[test]
fn raven_tables_give_one_request_per_selection_from_the_onc_file_and_offset() {
    let text = format!(
        "{RAVEN_HEADER}\n\
         1\tWaveform 1\t1\t10.5\t12.75\t0\t4000\t2.25\tICLISTENHF6324_20240401T042134.421Z.flac\t10.5\thumpback\n\
         1\tSpectrogram 1\t1\t10.5\t12.75\t100\t900\t2.25\tICLISTENHF6324_20240401T042134.421Z.flac\t10.5\thumpback\n\
         2\tSpectrogram 1\t1\t400\t400\t0\t4000\t0\tICLISTENHF6324_20240401T042634.421Z.flac\t100.0004\t\n"
    );
    let requests = clean(raven(&text));
    let mut first = base(
        "row 1",
        "2024-04-01T04:21:44.921Z",
        "2024-04-01T04:21:47.171Z",
        false,
    );
    first.download_audio = true;
    first.clip = true;
    first.label = Some("humpback".into());
    // A zero-length selection is an instant; the offset is rounded to the millisecond.
    let mut second = base(
        "row 3",
        "2024-04-01T04:28:14.421Z",
        "2024-04-01T04:28:14.421Z",
        true,
    );
    second.download_audio = true;
    second.clip = true;
    assert_eq!(requests, [first, second]);
}

#[test]
fn raven_clock_times_need_a_device_column_and_read_the_timezone() {
    let text = "Selection\tView\tBegin Date\tBegin Clock Time\tBegin Time (s)\tEnd Time (s)\tDevice\ttimezone\tClass\n\
                7\tSpectrogram 1\t2024/4/1\t4:21:34.5\t0\t1.5\tICLISTENHF6324\t-07:00\tfin\n";
    let requests = clean(raven(text));
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].start, utc("2024-04-01T11:21:34.500Z"));
    assert_eq!(requests[0].end, utc("2024-04-01T11:21:36Z"));
    assert_eq!(requests[0].label.as_deref(), Some("fin"));

    let (_, diagnostics) = raven(
        "Selection\tBegin Date\tBegin Clock Time\tDelta Time (s)\n1\t2024/04/01\t04:00:00\t1\n",
    );
    assert_eq!(
        errors(&diagnostics),
        ["sel.txt: no column naming the device"]
    );
    assert!(
        rendered(&diagnostics).contains("`Device` column"),
        "{}",
        rendered(&diagnostics)
    );
}

#[test]
fn raven_errors_name_the_row_and_column_and_say_what_is_valid() {
    let text = format!(
        "{RAVEN_HEADER}\n\
         1\tSpectrogram 1\t1\t1\t2\t0\t1\tabc\tICLISTENHF6324_20240401T042134.421Z.flac\t1\tx\n\
         2\tSpectrogram 1\t1\t1\t2\t0\t1\t1\tmy_recording.wav\t1\tx\n\
         3\tSpectrogram 1\t1\t1\t2\t0\t1\t1\tICLISTENHF6324_20240401T042134.421Z.flac\tsoon\tx\n\
         three\tSpectrogram 1\t1\t1\t2\t0\t1\t1\tICLISTENHF6324_20240401T042134.421Z.flac\t1\tx\n\
         5\tSpectrogram 1\t1\t1\t2\t0\t1\t-1\tICLISTENHF6324_20240401T042134.421Z.flac\t1\tx\n"
    );
    let (requests, diagnostics) = raven(&text);
    assert!(requests.is_empty(), "{requests:?}");
    assert_eq!(
        errors(&diagnostics),
        [
            "sel.txt:row 1, field `Delta Time (s)`: invalid number \"abc\": expected seconds such as 12.5",
            "sel.txt:row 2, field `Begin File`: \"my_recording.wav\" is not an ONC file name",
            "sel.txt:row 3, field `File Offset (s)`: invalid number \"soon\": expected seconds such as 12.5",
            "sel.txt:row 4, field `Selection`: invalid selection number \"three\"",
            "sel.txt:row 5, field `Delta Time (s)`: the selection ends before it begins (-1.000 s)",
        ]
    );
    let shown = rendered(&diagnostics);
    assert!(
        shown.contains("ICLISTENHF6324_20240401T042134.421Z.flac, or give `Begin Date`"),
        "{shown}"
    );

    // Missing columns: once for the file, each saying what to add.
    let (_, diagnostics) = raven("Selection\tView\tAnnotation\n1\tSpectrogram 1\tx\n");
    assert_eq!(
        errors(&diagnostics),
        [
            "sel.txt: no column giving when selections start",
            "sel.txt: no column giving how long selections last",
            "sel.txt: no column naming the device",
        ]
    );
    let (_, diagnostics) = raven(
        "Selection\tBegin File\tDelta Time (s)\n1\tICLISTENHF6324_20240401T042134.421Z.flac\t1\n",
    );
    assert_eq!(
        errors(&diagnostics),
        ["sel.txt: column `Begin File` without `File Offset (s)`"]
    );
}

#[test]
fn tab_separated_request_files_in_the_seed_layout_are_read_like_csv() {
    let tabs = clean(raven(
        "deviceCode\ttimestamp\tlabel\nICLISTENHF6324\t2024-04-01T12:30:00Z\twhale, call\n",
    ));
    let commas = clean(csv(
        "deviceCode,timestamp,label\nICLISTENHF6324,2024-04-01T12:30:00Z,\"whale, call\"\n",
    ));
    assert_eq!(tabs, commas);
    assert_eq!(tabs[0].label.as_deref(), Some("whale, call"));
    for name in ["x.txt", "x.TSV", "x.csv"] {
        assert_eq!(
            RequestFormat::from_path(std::path::Path::new(name)),
            Some(RequestFormat::Csv)
        );
    }
}
