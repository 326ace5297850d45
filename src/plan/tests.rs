//! Clip windows: padding on both sides, a request row's padding and `clip = false`; which
//! archived files a row fetches.

use chrono::DateTime;

use super::time::add_ms;
use super::*;
use proptest::prelude::*;

fn clip(pad_before_ms: i64, pad_after_ms: i64) -> Clip {
    Clip {
        name: "c".into(),
        plan: "p".into(),
        fetches: vec!["f".into()],
        pad_before_ms,
        pad_after_ms,
        spectrogram: vec![ClipFormat::Npz],
        audio: ClipFormat::Flac,
        gaps: GapPolicy::Fill,
        min_coverage: None,
    }
}

fn window(start_ms: i64, len_ms: i64, row: Option<RowSettings>) -> Window {
    let start = DateTime::from_timestamp_millis(start_ms).unwrap();
    Window {
        stage: "p".into(),
        device: "ICLISTENHF6324".into(),
        location: None,
        origin: WindowOrigin::Range,
        tag: "p".into(),
        label: None,
        name: None,
        start,
        end: add_ms(start, len_ms),
        is_instant: len_ms == 0,
        row,
    }
}

proptest! {
    #[test]
    fn clip_window_is_window_plus_padding_on_both_sides(
        start in 1_700_000_000_000i64..1_800_000_000_000,
        len in 0i64..3_600_000,
        before in 0i64..600_000,
        after in 0i64..600_000,
    ) {
        // The Python tool dropped `pad_after` when the window had an end: both sides stay.
        let w = window(start, len, None);
        let (clip_start, clip_end) = clip(before, after).clip_window(&w).unwrap();
        prop_assert_eq!(clip_start.timestamp_millis(), start - before);
        prop_assert_eq!(clip_end.timestamp_millis(), start + len + after);
    }

    #[test]
    fn a_rows_padding_replaces_the_stages(
        start in 1_700_000_000_000i64..1_800_000_000_000,
        len in 0i64..3_600_000,
        row_before in 0i64..600_000,
        row_after in 1i64..600_000,
    ) {
        let row = RowSettings { pad_before_ms: row_before, pad_after_ms: row_after, clip: true, ..RowSettings::default() };
        let w = window(start, len, Some(row));
        let (clip_start, clip_end) = clip(5_000, 5_000).clip_window(&w).unwrap();
        prop_assert_eq!(clip_start.timestamp_millis(), start - row_before);
        prop_assert_eq!(clip_end.timestamp_millis(), start + len + row_after);
    }
}

#[test]
fn a_row_without_clip_has_no_clip_window() {
    let row = RowSettings {
        clip: false,
        pad_before_ms: 1_000,
        ..RowSettings::default()
    };
    assert_eq!(
        clip(0, 0).clip_window(&window(1_700_000_000_000, 0, Some(row))),
        None
    );
}

#[test]
fn rows_choose_archived_spectrograms_by_download_spectrogram_and_audio_by_download_audio() {
    let archive = |extension: &str| Fetch {
        name: "f".into(),
        plans: vec!["p".into()],
        source: Source::Archive {
            extension: extension.into(),
        },
        per_request: 12,
    };
    let row = |audio: bool, spectrogram: bool| {
        let settings = RowSettings {
            download_audio: audio,
            download_spectrogram: spectrogram,
            audio_extension: Some("wav".into()),
            ..RowSettings::default()
        };
        window(1_700_000_000_000, 0, Some(settings))
    };
    let mat = archive("mat");
    // A row's audio extension never turns spectrogram files into audio.
    assert_eq!(mat.source_for(&row(false, true)), Some(mat.source.clone()));
    assert_eq!(mat.source_for(&row(true, false)), None);
    let png = archive("png");
    assert_eq!(png.source_for(&row(false, true)), Some(png.source.clone()));
    assert_eq!(png.source_for(&row(true, false)), None);
    let flac = archive("flac");
    assert_eq!(
        flac.source_for(&row(true, false)),
        Some(Source::Archive {
            extension: "wav".into()
        })
    );
    assert_eq!(flac.source_for(&row(false, true)), None);
}
