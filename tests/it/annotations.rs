//! Annotation tools in and out: a Raven Pro selection table (both time forms, Raven's
//! duplicated Waveform/Spectrogram rows, an `Annotation` column) is run as a request file; the
//! audio clips come out with an Audacity label track each and their folder's Raven selection
//! table, whose times point at the events to the sample (checked against the simulator's
//! oracle), and which reads back as the same events.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use onc_sim::archive::{DeviceProfile, files_overlapping};
use onc_sim::oracle::audio_sample;

use crate::support::{Scratch, onc_pipe};

const DEVICE: &str = "ICLISTENHF6324";
const RATE: u32 = 8_000;

fn ms(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_millis()
}

const MANIFEST: &str = r#"version = 1

[onc]
base_url = "simulator"

[onc.simulator]
sample_rate = 8000
time_scale = 0.002

[output]
dir = "data"
cache = "cache"

[plan.calls]
requests = "selections.txt"

[fetch.audio]
plan = "calls"
archive = "flac"

[clip.calls]
plan = "calls"
fetch = ["audio"]
pad_before = "5s"
pad_after = "5s"
audio = "flac"
"#;

/// A table as Raven saves it: the file-and-offset form (one selection in two views, from an
/// ONC file's name) and the clock form (device from a column, duration from End − Begin).
fn raven_table(file_name: &str, clock: DateTime<Utc>) -> String {
    let (date, time) = (clock.format("%Y/%m/%d"), clock.format("%H:%M:%S%.3f"));
    let header = "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tDelta Time (s)\tBegin File\tFile Offset (s)\tBegin Date\tBegin Clock Time\tDevice\tAnnotation\tNotes";
    format!(
        "{header}\n\
         1\tWaveform 1\t1\t12.345\t14.845\t\t\t2.5\t{file_name}\t12.345\t\t\t\thumpback\tclear\n\
         1\tSpectrogram 1\t1\t12.345\t14.845\t200\t1800\t2.5\t{file_name}\t12.345\t\t\t\thumpback\tclear\n\
         2\tSpectrogram 1\t1\t900.25\t902\t100\t3000\t\t\t\t{date}\t{time}\t{DEVICE}\tship\t\n"
    )
}

fn table(path: &Path) -> Vec<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    lines
        .map(|line| {
            header
                .iter()
                .map(|name| (*name).to_owned())
                .zip(line.split('\t').map(str::to_owned))
                .collect()
        })
        .collect()
}

fn seconds(text: &str) -> f64 {
    text.parse().unwrap()
}

#[test]
fn a_raven_table_in_gives_clips_with_raven_and_audacity_files_that_mark_the_events() {
    let profile = DeviceProfile {
        code: DEVICE.into(),
        sample_rate: RATE,
    };
    let file = files_overlapping(
        &profile,
        ms("2024-04-01T04:20:00Z"),
        ms("2024-04-01T04:20:01Z"),
    )
    .into_iter()
    .next()
    .unwrap();
    let file_name = onc_format::stamp::archive_name(DEVICE, file.start_ms, "flac");
    // The clock form: 30.25 s into a file (the simulated archive has gaps), 1.75 s long.
    let later = files_overlapping(
        &profile,
        ms("2024-04-01T04:50:00Z"),
        ms("2024-04-01T04:50:01Z"),
    )
    .into_iter()
    .next()
    .unwrap();
    let clock_ms = later.start_ms + 30_250;
    let clock = DateTime::<Utc>::from_timestamp_millis(clock_ms).unwrap();
    // Event start → label, as the table gives them.
    let events: BTreeMap<String, (i64, i64)> = BTreeMap::from([
        (
            "humpback".to_owned(),
            (file.start_ms + 12_345, file.start_ms + 14_845),
        ),
        ("ship".to_owned(), (clock_ms, clock_ms + 1_750)),
    ]);

    let scratch = Scratch::new();
    scratch.write("m.toml", MANIFEST);
    scratch.write("selections.txt", &raven_table(&file_name, clock));
    let checked = onc_pipe(scratch.path(), &["validate", "selections.txt"]);
    assert_eq!(checked.code, 0, "{}", checked.stderr);
    let ran = onc_pipe(
        scratch.path(),
        &["run", "m.toml", "--json", "--no-progress"],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let record: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(record["clips_written"], 2, "{record}");

    let data = scratch.path().join("data");
    let mut reader = csv::Reader::from_path(data.join("catalog.csv")).unwrap();
    let rows: Vec<onc_pipe::catalog::Row> = reader.deserialize().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let folder = Path::new(&rows[0].path).parent().unwrap().to_path_buf();
    let selections = table(&data.join(&folder).join("clips.selections.txt"));
    assert_eq!(selections.len(), 2, "{selections:?}");

    // The timeline Raven builds from the folder's clips opened as one sequence, in name order.
    let mut before = 0.0;
    for (row, selection) in rows.iter().zip(&selections) {
        let (start_ms, end_ms) = events[&row.label];
        let rate = row.sample_rate.unwrap();
        assert_eq!(rate, RATE);
        let first_ns = i128::from(
            DateTime::parse_from_rfc3339(&row.first)
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap(),
        );

        // Audacity: seconds from the clip's first sample to the event's start and end.
        let labels =
            std::fs::read_to_string(data.join(Path::new(&row.path).with_extension("labels.txt")))
                .unwrap();
        let cells: Vec<&str> = labels.trim_end().split('\t').collect();
        assert_eq!(cells.len(), 3, "{labels:?}");
        assert_eq!(cells[2], row.label);
        let (from, to) = (seconds(cells[0]), seconds(cells[1]));
        let half_sample_ns = 1e9 / f64::from(rate) / 2.0;
        for (offset, event_ms) in [(from, start_ms), (to, end_ms)] {
            let at_ns = first_ns as f64 + offset * 1e9;
            assert!(
                (at_ns - event_ms as f64 * 1e6).abs() < half_sample_ns,
                "{}: {offset} s after {} is not {event_ms} ms",
                row.label,
                row.first
            );
        }
        // To the sample: the clip's sample at the label's start is the recording at the event.
        let mut flac = claxon::FlacReader::open(data.join(&row.path)).unwrap();
        let samples: Vec<i32> = flac.samples().map(Result::unwrap).collect();
        let k = (from * f64::from(rate)).round() as usize;
        assert_eq!(
            samples[k],
            audio_sample(DEVICE, i128::from(start_ms) * 1_000_000),
            "{}",
            row.label
        );

        // Raven: the clip file and the offset in it, the same times on the sequence timeline.
        assert_eq!(
            selection["Begin File"],
            Path::new(&row.path).file_name().unwrap().to_string_lossy()
        );
        assert_eq!(selection["View"], "Spectrogram 1");
        assert!(
            (seconds(&selection["File Offset (s)"]) - from).abs() < 1e-6,
            "{selection:?}"
        );
        assert!(
            (seconds(&selection["Delta Time (s)"]) - (to - from)).abs() < 1e-6,
            "{selection:?}"
        );
        assert!(
            (seconds(&selection["Begin Time (s)"]) - (before + from)).abs() < 1e-6,
            "{selection:?}"
        );
        assert!(
            (seconds(&selection["End Time (s)"]) - (before + to)).abs() < 1e-6,
            "{selection:?}"
        );
        assert_eq!(seconds(&selection["High Freq (Hz)"]), f64::from(RATE) / 2.0);
        assert_eq!(selection["Annotation"], row.label);
        before += row.length as f64 / f64::from(rate);
    }

    // The table reads back as a request file: the same events.
    let written = data.join(&folder).join("clips.selections.txt");
    let (again, diagnostics) = onc_pipe::manifest::requests::read_requests(&written, "back.txt");
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let mut read_back: Vec<(String, i64, i64)> = again
        .iter()
        .map(|request| {
            (
                request.label.clone().unwrap(),
                request.start.timestamp_millis(),
                request.end.timestamp_millis(),
            )
        })
        .collect();
    read_back.sort();
    let expected: Vec<(String, i64, i64)> = events
        .iter()
        .map(|(label, (a, b))| (label.clone(), *a, *b))
        .collect();
    assert_eq!(read_back, expected);

    // The run record lists them; `status` does not call them stale.
    let listed: Vec<&str> = record["catalog"]["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 3, "{listed:?}");
    for file in &listed {
        assert!(data.join(file).is_file(), "{file}");
    }
    let status = onc_pipe(scratch.path(), &["status", "m.toml", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(
        status["stale_outputs"]["files"],
        serde_json::json!([]),
        "{status}"
    );
}

#[test]
fn validate_reports_every_bad_raven_cell_at_its_row_and_column() {
    let scratch = Scratch::new();
    scratch.write(
        "bad.txt",
        "Selection\tView\tBegin File\tFile Offset (s)\tDelta Time (s)\tAnnotation\n\
         1\tSpectrogram 1\tICLISTENHF6324_20240401T042134.421Z.flac\tsoon\t1\tx\n\
         2\tSpectrogram 1\trecording.wav\t1\t1\ty\n",
    );
    let checked = onc_pipe(scratch.path(), &["validate", "bad.txt"]);
    assert_eq!(checked.code, 2, "{}", checked.stderr);
    for expected in [
        "bad.txt:row 1, field `File Offset (s)`: error: invalid number \"soon\"",
        "bad.txt:row 2, field `Begin File`: error: \"recording.wav\" is not an ONC file name",
    ] {
        assert!(checked.stderr.contains(expected), "{}", checked.stderr);
    }
}
