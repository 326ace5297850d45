use super::*;
use proptest::prelude::*;

/// 2024-04-01T00:00:00Z.
const T0: f64 = 1_711_929_600.0;
const NFREQ: usize = 8;

/// A synthetic source file whose every cell tells where it came from: `time·1000 + bin`.
#[derive(Debug, Clone)]
struct File {
    name: String,
    psd: Vec<f64>,
    nfreq: usize,
    frequency_hz: Vec<f64>,
    time_s: Vec<f64>,
}

impl File {
    fn input(&self) -> SpectrogramInput<'_> {
        SpectrogramInput {
            name: &self.name,
            psd: &self.psd,
            nfreq: self.nfreq,
            frequency_hz: &self.frequency_hz,
            time_s: &self.time_s,
        }
    }
}

fn cell(time_s: f64, bin: usize) -> f64 {
    (time_s - T0) * 1000.0 + bin as f64
}

fn file_with_times(suffix: &str, time_s: Vec<f64>) -> File {
    let start = iso_stamp(time_s.first().copied().unwrap_or(T0));
    let psd = time_s
        .iter()
        .flat_map(|&t| (0..NFREQ).map(move |bin| cell(t, bin)))
        .collect();
    File {
        name: format!("ICLISTENHF6324_{start}{suffix}-spect_plotRes.mat"),
        psd,
        nfreq: NFREQ,
        frequency_hz: (0..NFREQ).map(|i| i as f64 * 500.0).collect(),
        time_s,
    }
}

/// `count` columns `spacing` apart from `T0 + offset`.
fn file(offset: f64, spacing: f64, count: usize) -> File {
    file_with_times(
        "",
        (0..count)
            .map(|j| T0 + offset + j as f64 * spacing)
            .collect(),
    )
}

fn iso_stamp(t: f64) -> String {
    chrono::DateTime::from_timestamp_millis((t * 1000.0).round() as i64)
        .unwrap()
        .format("%Y%m%dT%H%M%S%.3fZ")
        .to_string()
}

fn clip(files: &[&File], start: f64, end: f64, gaps: GapPolicy) -> Vec<SpectrogramClip> {
    let inputs: Vec<_> = files.iter().map(|f| f.input()).collect();
    clip_spectrogram(&inputs, T0 + start, T0 + end, gaps).unwrap()
}

fn clip_err(files: &[&File], start: f64, end: f64, gaps: GapPolicy) -> SpectrogramClipError {
    let inputs: Vec<_> = files.iter().map(|f| f.input()).collect();
    clip_spectrogram(&inputs, T0 + start, T0 + end, gaps).unwrap_err()
}

fn one(mut clips: Vec<SpectrogramClip>) -> SpectrogramClip {
    assert_eq!(clips.len(), 1);
    clips.remove(0)
}

/// Column times relative to T0.
fn rel_times(clip: &SpectrogramClip) -> Vec<f64> {
    clip.time_s.iter().map(|t| t - T0).collect()
}

fn column(clip: &SpectrogramClip, j: usize) -> &[f64] {
    &clip.psd[j * clip.nfreq..(j + 1) * clip.nfreq]
}

/// Every column either holds the cells of its own time or (a filled gap) is all NaN.
fn assert_cells_match_times(clip: &SpectrogramClip) {
    for (j, &t) in clip.time_s.iter().enumerate() {
        let col = column(clip, j);
        if col.iter().all(|v| v.is_nan()) {
            continue;
        }
        for (bin, &v) in col.iter().enumerate() {
            assert_eq!(v, cell(t, bin), "column {j} bin {bin}");
        }
    }
}

fn source(file: &File, first: u64, end: u64) -> SourceUse {
    SourceUse {
        file: file.name.clone(),
        first,
        end,
    }
}

fn span(start: f64, end: f64) -> Span {
    Span {
        start_s: T0 + start,
        end_s: T0 + end,
    }
}

#[test]
fn clip_inside_one_file() {
    let a = file(0.0, 1.0, 300);
    let c = one(clip(&[&a], 10.0, 20.0, GapPolicy::Fail));
    assert_eq!(rel_times(&c), (10..20).map(f64::from).collect::<Vec<_>>());
    assert_eq!(c.nfreq, NFREQ);
    assert_eq!(c.psd.len(), NFREQ * 10);
    assert_eq!(c.frequency_hz, a.frequency_hz);
    assert_eq!(c.seconds_per_column, 1.0);
    assert_eq!(c.sources, vec![source(&a, 10, 20)]);
    assert!(c.gaps.is_empty() && c.overlaps.is_empty());
    assert_cells_match_times(&c);
}

#[test]
fn column_at_clip_start_is_kept_and_at_clip_end_excluded() {
    let a = file(0.0, 1.0, 300);
    let c = one(clip(&[&a], 10.0, 20.0, GapPolicy::Fail));
    assert_eq!(rel_times(&c).first(), Some(&10.0));
    assert_eq!(rel_times(&c).last(), Some(&19.0));
    // Between columns: the first column at or after the start, the last before the end.
    let c = one(clip(&[&a], 10.5, 20.5, GapPolicy::Fail));
    assert_eq!(rel_times(&c), (11..21).map(f64::from).collect::<Vec<_>>());
    assert_eq!(c.sources, vec![source(&a, 11, 21)]);
}

#[test]
fn clip_crossing_a_file_boundary_uses_both_files() {
    let a = file(0.0, 1.0, 300);
    let b = file(300.0, 1.0, 300);
    // Given in the wrong order: sorted by first column time.
    let c = one(clip(&[&b, &a], 295.0, 305.0, GapPolicy::Fail));
    assert_eq!(rel_times(&c), (295..305).map(f64::from).collect::<Vec<_>>());
    assert_eq!(c.sources, vec![source(&a, 295, 300), source(&b, 0, 5)]);
    assert!(c.gaps.is_empty() && c.overlaps.is_empty());
    assert_cells_match_times(&c);
}

#[test]
fn gap_between_files_is_filled_with_nan_columns_on_the_grid() {
    let a = file(0.0, 1.0, 300);
    let b = file(310.0, 1.0, 300);
    let c = one(clip(&[&a, &b], 295.0, 315.0, GapPolicy::Fill));
    assert_eq!(rel_times(&c), (295..315).map(f64::from).collect::<Vec<_>>());
    for j in 0..20 {
        let filled = (5..15).contains(&j);
        assert_eq!(column(&c, j).iter().all(|v| v.is_nan()), filled, "{j}");
    }
    assert_eq!(c.gaps, vec![span(300.0, 310.0)]);
    assert_eq!(c.sources, vec![source(&a, 295, 300), source(&b, 0, 5)]);
    assert_cells_match_times(&c);
}

#[test]
fn jitter_below_one_and_a_half_columns_is_not_a_gap() {
    let a = file(0.0, 1.0, 300);
    let b = file(300.4, 1.0, 300);
    let c = one(clip(&[&a, &b], 290.0, 310.0, GapPolicy::Fail));
    assert!(c.gaps.is_empty());
    assert_eq!(c.ncols(), 20);
}

#[test]
fn overlapping_columns_are_dropped_and_reported() {
    let a = file(0.0, 1.0, 300);
    let b = file(297.0, 1.0, 300);
    let c = one(clip(&[&a, &b], 290.0, 310.0, GapPolicy::Fail));
    assert_eq!(rel_times(&c), (290..310).map(f64::from).collect::<Vec<_>>());
    assert_eq!(c.sources, vec![source(&a, 290, 300), source(&b, 3, 13)]);
    assert_eq!(c.overlaps, vec![span(297.0, 300.0)]);
    assert!(c.gaps.is_empty());
    assert_cells_match_times(&c);
}

#[test]
fn a_file_inside_another_is_all_overlap() {
    let a = file(0.0, 1.0, 300);
    let b = file(100.5, 1.0, 10);
    let c = one(clip(&[&a, &b], 95.0, 120.0, GapPolicy::Fail));
    assert_eq!(c.sources, vec![source(&a, 95, 120)]);
    assert_eq!(rel_times(&c), (95..120).map(f64::from).collect::<Vec<_>>());
    // b sorts after a (later first column) and repeats time a already covered.
    assert_eq!(c.overlaps, vec![span(100.5, 110.5)]);
}

#[test]
fn short_file_with_short_last_column_keeps_the_median_spacing() {
    // 294.5 s file: columns every second, the last one only half a step after the previous.
    let mut times: Vec<f64> = (0..294).map(|j| T0 + f64::from(j)).collect();
    times.push(T0 + 293.5 + 0.25);
    let a = file_with_times("", times);
    let b = file(294.5, 1.0, 300);
    let c = one(clip(&[&a, &b], 290.0, 300.0, GapPolicy::Fail));
    assert_eq!(c.seconds_per_column, 1.0);
    assert!(c.gaps.is_empty());
    assert_eq!(
        rel_times(&c),
        vec![
            290.0, 291.0, 292.0, 293.0, 293.75, 294.5, 295.5, 296.5, 297.5, 298.5, 299.5
        ]
    );
    assert_eq!(c.sources, vec![source(&a, 290, 295), source(&b, 0, 6)]);
}

#[test]
fn no_data_before_or_after_is_a_gap_at_each_end() {
    let a = file(10.0, 1.0, 10);
    let c = one(clip(&[&a], 0.0, 30.0, GapPolicy::Fill));
    assert_eq!(rel_times(&c), (0..30).map(f64::from).collect::<Vec<_>>());
    assert_eq!(c.gaps, vec![span(0.0, 10.0), span(20.0, 30.0)]);
    assert_eq!(c.sources, vec![source(&a, 0, 10)]);
    let filled = (0..30)
        .filter(|&j| column(&c, j).iter().all(|v| v.is_nan()))
        .count();
    assert_eq!(filled, 20);
    assert_cells_match_times(&c);

    // Split does not cut at the edges: one clip, gaps reported, no NaN columns.
    let c = one(clip(&[&a], 0.0, 30.0, GapPolicy::Split));
    assert_eq!(rel_times(&c), (10..20).map(f64::from).collect::<Vec<_>>());
    assert_eq!(c.gaps.len(), 2);

    // Less than 1.5 columns missing at either end is the grid's phase, not a gap.
    let c = one(clip(&[&a], 8.6, 20.4, GapPolicy::Fail));
    assert_eq!(c.ncols(), 10);
}

#[test]
fn fill_at_the_edges_stays_inside_the_window_with_fractional_spacing() {
    let a = file(100.0, 0.3, 100);
    let c = one(clip(&[&a], 97.0, 140.0, GapPolicy::Fill));
    let times = rel_times(&c);
    assert!(times[0] >= 97.0 - 1e-9 && times[0] < 97.3, "{}", times[0]);
    assert!(*times.last().unwrap() < 140.0);
    assert!(times.windows(2).all(|w| w[1] > w[0]));
    assert_eq!(c.gaps.len(), 2);
    assert!((c.seconds_per_column - 0.3).abs() < 1e-6);
    // 10 columns before 100 s, 100 from the file (to 129.7 s), 34 from 130 s to 139.9 s.
    assert_eq!(c.ncols(), 144);
}

#[test]
fn gap_policies() {
    let a = file(0.0, 1.0, 10);
    let b = file(20.0, 1.0, 10);

    let clips = clip(&[&a, &b], 0.0, 30.0, GapPolicy::Split);
    assert_eq!(clips.len(), 2);
    assert_eq!(
        rel_times(&clips[0]),
        (0..10).map(f64::from).collect::<Vec<_>>()
    );
    assert_eq!(
        rel_times(&clips[1]),
        (20..30).map(f64::from).collect::<Vec<_>>()
    );
    assert_eq!(clips[0].sources, vec![source(&a, 0, 10)]);
    assert_eq!(clips[1].sources, vec![source(&b, 0, 10)]);
    for c in &clips {
        assert_eq!(c.gaps, vec![span(10.0, 20.0)]);
        assert!(c.psd.iter().all(|v| v.is_finite()));
    }

    let skipped = clip_err(&[&a, &b], 0.0, 30.0, GapPolicy::Skip);
    assert!(matches!(
        skipped,
        SpectrogramClipError::SkippedForGap { count: 1, .. }
    ));
    assert!(
        skipped.to_string().contains("skipped because of a gap"),
        "{skipped}"
    );

    let failed = clip_err(&[&a, &b], 0.0, 30.0, GapPolicy::Fail);
    assert_eq!(
        failed.to_string(),
        "clip spectrograms 2024-04-01T00:00:00.000Z – 2024-04-01T00:00:30.000Z: the data has a \
         gap from 2024-04-01T00:00:10.000Z to 2024-04-01T00:00:20.000Z (1 gap(s) in all; \
         gaps = \"fail\")"
    );

    let filled = one(clip(&[&a, &b], 0.0, 30.0, GapPolicy::Fill));
    assert_eq!(filled.ncols(), 30);

    // Without a gap every policy gives the same single clip.
    for policy in [
        GapPolicy::Fill,
        GapPolicy::Split,
        GapPolicy::Skip,
        GapPolicy::Fail,
    ] {
        assert_eq!(clip(&[&a], 2.0, 8.0, policy).len(), 1);
    }
}

#[test]
fn split_gives_each_stretch_its_own_overlaps() {
    let a = file(0.0, 1.0, 10);
    let b = file(8.0, 1.0, 4); // overlaps a's last two columns, ends at 11
    let c = file(20.0, 1.0, 10);
    let clips = clip(&[&a, &b, &c], 0.0, 30.0, GapPolicy::Split);
    assert_eq!(clips.len(), 2);
    assert_eq!(clips[0].overlaps, vec![span(8.0, 10.0)]);
    assert!(clips[1].overlaps.is_empty());
    assert_eq!(clips[0].sources, vec![source(&a, 0, 10), source(&b, 2, 4)]);
}

#[test]
fn diverted_data_is_never_stitched_with_original_data() {
    let a = file_with_times(
        "_20240401T000500.000Z-LPF",
        (0..300).map(|j| T0 + f64::from(j)).collect(),
    );
    let b = file_with_times(
        "_20240401T001000.000Z-OD",
        (300..600).map(|j| T0 + f64::from(j)).collect(),
    );
    let err = clip_err(&[&a, &b], 290.0, 310.0, GapPolicy::Fill);
    assert!(
        matches!(err, SpectrogramClipError::DiversionMismatch { .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&a.name) && message.contains(&b.name),
        "{message}"
    );
    assert!(message.contains("LPF"), "{message}");

    let hpf = file_with_times("-HPF", (300..600).map(|j| T0 + f64::from(j)).collect());
    let plain = file(0.0, 1.0, 300);
    assert!(matches!(
        clip_err(&[&plain, &hpf], 290.0, 310.0, GapPolicy::Fill),
        SpectrogramClipError::DiversionMismatch { .. }
    ));
    // -OD and no suffix are the same original data.
    let od = file_with_times("-OD", (300..600).map(|j| T0 + f64::from(j)).collect());
    assert_eq!(
        clip(&[&plain, &od], 290.0, 310.0, GapPolicy::Fail)[0].ncols(),
        20
    );
    // Two LPF files stitch.
    let lpf2 = file_with_times("-LPF", (300..600).map(|j| T0 + f64::from(j)).collect());
    assert_eq!(
        clip(&[&a, &lpf2], 290.0, 310.0, GapPolicy::Fail)[0].ncols(),
        20
    );
}

#[test]
fn name_facts_read_onc_names() {
    let facts =
        name_facts("ICLISTENHF6324_20260903T195000.000Z_20260903T195454.500Z-OD-spect_plotRes.mat");
    assert_eq!(facts.device, Some("ICLISTENHF6324"));
    assert_eq!(facts.diversion, Diversion::Original);
    assert_eq!(facts.channel, None);
    let facts = name_facts("ICLISTENHF1951_20240830T144006.000Z-LPF-H2-spect_fullRes.mat");
    assert_eq!(facts.device, Some("ICLISTENHF1951"));
    assert_eq!(facts.diversion, Diversion::LowPass);
    assert_eq!(facts.channel, Some("H2"));
    // The device code is never read as a suffix.
    let facts = name_facts("HPF_20240830T144006.000Z-spect.mat");
    assert_eq!(facts.diversion, Diversion::Original);
    assert_eq!(name_facts("x-HPF.mat").diversion, Diversion::HighPass);
    assert_eq!(name_facts("").device, None);
}

#[test]
fn channels_and_devices_are_not_mixed() {
    let h1 = file_with_times("-H1", (0..300).map(|j| T0 + f64::from(j)).collect());
    let h2 = file_with_times("-H2", (300..600).map(|j| T0 + f64::from(j)).collect());
    assert!(matches!(
        clip_err(&[&h1, &h2], 290.0, 310.0, GapPolicy::Fill),
        SpectrogramClipError::ChannelMismatch { .. }
    ));
    let a = file(0.0, 1.0, 300);
    let mut other = file(300.0, 1.0, 300);
    other.name = other.name.replace("ICLISTENHF6324", "ICLISTENHF1251");
    assert!(matches!(
        clip_err(&[&a, &other], 290.0, 310.0, GapPolicy::Fill),
        SpectrogramClipError::DeviceMismatch { .. }
    ));
}

#[test]
fn differing_frequency_axes_are_refused() {
    let a = file(0.0, 1.0, 300);
    let mut b = file(300.0, 1.0, 300);
    b.frequency_hz[3] += 1.0;
    let err = clip_err(&[&a, &b], 290.0, 310.0, GapPolicy::Fill);
    assert!(
        matches!(err, SpectrogramClipError::FrequencyMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("bin 3"), "{err}");

    // A rounding-sized difference is the same axis.
    let mut c = file(300.0, 1.0, 300);
    c.frequency_hz[3] *= 1.0 + 1e-12;
    assert_eq!(
        clip(&[&a, &c], 290.0, 310.0, GapPolicy::Fail)[0].ncols(),
        20
    );

    let mut d = file(300.0, 1.0, 300);
    d.nfreq = 4;
    d.frequency_hz.truncate(4);
    d.psd = d
        .psd
        .chunks(NFREQ)
        .flat_map(|col| col[..4].to_vec())
        .collect();
    let err = clip_err(&[&a, &d], 290.0, 310.0, GapPolicy::Fill);
    assert!(err.to_string().contains("8 vs 4 bins"), "{err}");
}

#[test]
fn different_time_resolutions_are_refused() {
    let a = file(0.0, 1.0, 300);
    let b = file(300.0, 60.0, 5);
    assert!(matches!(
        clip_err(&[&a, &b], 290.0, 310.0, GapPolicy::Fill),
        SpectrogramClipError::SpacingMismatch { .. }
    ));
}

#[test]
fn malformed_inputs_are_errors_naming_the_file() {
    let good = file(0.0, 1.0, 10);
    let check = |broken: File, expect: fn(&SpectrogramClipError) -> bool| {
        let err = clip_err(&[&good, &broken], 0.0, 10.0, GapPolicy::Fill);
        assert!(expect(&err), "{err:?}");
        assert!(err.to_string().contains(&broken.name), "{err}");
    };
    let mut f = file(20.0, 1.0, 10);
    f.nfreq = 0;
    check(f, |e| {
        matches!(e, SpectrogramClipError::NoFrequencies { .. })
    });
    let mut f = file(20.0, 1.0, 10);
    f.psd.pop();
    check(f, |e| matches!(e, SpectrogramClipError::PsdLength { .. }));
    let mut f = file(20.0, 1.0, 10);
    f.frequency_hz.pop();
    check(f, |e| {
        matches!(e, SpectrogramClipError::FrequencyAxisLength { .. })
    });
    let mut f = file(20.0, 1.0, 10);
    f.time_s[4] = f64::NAN;
    check(f, |e| {
        matches!(e, SpectrogramClipError::BadTime { column: 4, .. })
    });
    let mut f = file(20.0, 1.0, 10);
    f.time_s.swap(2, 3);
    check(f, |e| {
        matches!(e, SpectrogramClipError::UnsortedTime { column: 3, .. })
    });
    let mut f = file(20.0, 1.0, 10);
    f.time_s.clear();
    f.psd.clear();
    check(f, |e| matches!(e, SpectrogramClipError::NoColumns { .. }));
    // nfreq · ncols overflowing usize is a length mismatch, not a panic.
    let mut f = file(20.0, 1.0, 10);
    f.nfreq = usize::MAX;
    check(f, |e| {
        matches!(
            e,
            SpectrogramClipError::FrequencyAxisLength { .. }
                | SpectrogramClipError::PsdLength { .. }
        )
    });
}

#[test]
fn window_and_coverage_errors() {
    let a = file(0.0, 1.0, 10);
    assert_eq!(
        clip_spectrogram(&[], T0, T0 + 1.0, GapPolicy::Fill).unwrap_err(),
        SpectrogramClipError::NoInputs
    );
    for (start, end) in [
        (5.0, 5.0),
        (6.0, 5.0),
        (f64::NAN, 5.0),
        (0.0, f64::INFINITY),
    ] {
        assert!(matches!(
            clip_spectrogram(&[a.input()], T0 + start, T0 + end, GapPolicy::Fill).unwrap_err(),
            SpectrogramClipError::InvalidWindow { .. }
        ));
    }
    let err = clip_err(&[&a], 20.0, 30.0, GapPolicy::Fill);
    assert_eq!(
        err.to_string(),
        "clip spectrograms: no spectrogram columns between 2024-04-01T00:00:20.000Z and \
         2024-04-01T00:00:30.000Z"
    );
    let single = file(0.0, 1.0, 1);
    assert!(matches!(
        clip_err(&[&single], 0.0, 1.0, GapPolicy::Fill),
        SpectrogramClipError::NoSpacing { .. }
    ));
}

#[test]
fn a_gap_too_large_to_fill_fails_instead_of_allocating() {
    // Microsecond columns over a day-long window: billions of NaN columns.
    let a = file(0.0, 1e-6, 3);
    let err = clip_err(&[&a], 0.0, 86_400.0, GapPolicy::Fill);
    assert!(
        matches!(err, SpectrogramClipError::TooLarge { .. }),
        "{err}"
    );
}

#[test]
fn iso_utc_formats_milliseconds() {
    assert_eq!(
        iso_utc(T0 + 4.0 * 3600.0 + 24.0 * 60.0 + 40.0),
        "2024-04-01T04:24:40.000Z"
    );
    assert_eq!(iso_utc(T0 + 0.1234), "2024-04-01T00:00:00.123Z");
    assert_eq!(iso_utc(f64::NAN), "NaN s");
}

// ---- NPZ ----

/// Entries of a ZIP of stored entries, checked against the central directory and CRC.
fn read_zip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let eocd = bytes.len() - 22;
    assert_eq!(u32_at(eocd), 0x0605_4b50);
    let count = u16_at(eocd + 10);
    let (cd_size, cd_offset) = (u32_at(eocd + 12), u32_at(eocd + 16));
    assert_eq!(cd_offset + cd_size, eocd);
    let mut at = cd_offset;
    let mut entries = Vec::new();
    for _ in 0..count {
        assert_eq!(u32_at(at), 0x0201_4b50);
        assert_eq!(u16_at(at + 10), 0, "stored");
        let crc = u32_at(at + 16);
        let (size, stored) = (u32_at(at + 20), u32_at(at + 24));
        assert_eq!(size, stored);
        let name_len = u16_at(at + 28);
        let extra = u16_at(at + 30) + u16_at(at + 32);
        let local = u32_at(at + 42);
        let name = String::from_utf8(bytes[at + 46..at + 46 + name_len].to_vec()).unwrap();
        at += 46 + name_len + extra;

        assert_eq!(u32_at(local), 0x0403_4b50);
        assert_eq!(u32_at(local + 14), crc);
        assert_eq!(u32_at(local + 22), size);
        let local_name_len = u16_at(local + 26);
        let data_at = local + 30 + local_name_len + u16_at(local + 28);
        assert_eq!(
            &bytes[local + 30..local + 30 + local_name_len],
            name.as_bytes()
        );
        let data = bytes[data_at..data_at + size].to_vec();
        let mut check = flate2::Crc::new();
        check.update(&data);
        assert_eq!(check.sum() as usize, crc, "{name}");
        entries.push((name, data));
    }
    assert_eq!(at, eocd);
    entries
}

/// An NPY 1.0 file → (header dict, data bytes).
fn read_npy(bytes: &[u8]) -> (String, &[u8]) {
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + len) % 64, 0, "data aligned to 64 bytes");
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    assert!(header.ends_with('\n'));
    (header.trim_end().to_string(), &bytes[10 + len..])
}

fn f64s(data: &[u8]) -> Vec<f64> {
    data.chunks(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn utf32(data: &[u8]) -> String {
    data.chunks(4)
        .map(|c| char::from_u32(u32::from_le_bytes(c.try_into().unwrap())).unwrap())
        .filter(|&c| c != '\0')
        .collect()
}

#[test]
fn npz_has_numpy_keys_shapes_and_data() {
    let a = file(0.0, 1.0, 300);
    let b = file(310.0, 1.0, 300);
    let c = one(clip(&[&a, &b], 296.0, 312.0, GapPolicy::Fill));
    assert_eq!(c.ncols(), 16);
    let meta = NpzMeta {
        clip_start_s: T0 + 296.0,
        clip_end_s: T0 + 312.0,
        device: "ICLISTENHF6324",
        description: "humpback – ☃",
    };
    let bytes = write_npz(&c, &meta).unwrap();
    // Deterministic bytes.
    assert_eq!(bytes, write_npz(&c, &meta).unwrap());
    let entries = read_zip(&bytes);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "spectrogram.npy",
            "frequency.npy",
            "time.npy",
            "seconds_per_column.npy",
            "clip_start.npy",
            "clip_end.npy",
            "device.npy",
            "description.npy"
        ]
    );
    let npy = |key: &str| read_npy(&entries.iter().find(|(n, _)| n == key).unwrap().1);

    let (header, data) = npy("spectrogram.npy");
    assert_eq!(
        header,
        "{'descr': '<f8', 'fortran_order': False, 'shape': (8, 16), }"
    );
    let values = f64s(data);
    assert_eq!(values.len(), 8 * 16);
    // C order: row = frequency bin, column = time.
    for bin in 0..8 {
        for j in 0..16 {
            let (got, want) = (values[bin * 16 + j], c.psd[j * 8 + bin]);
            assert!(got == want || (got.is_nan() && want.is_nan()), "{bin},{j}");
        }
    }
    assert!(values[4].is_nan(), "gap column 300 s is NaN");

    let (header, data) = npy("frequency.npy");
    assert_eq!(
        header,
        "{'descr': '<f8', 'fortran_order': False, 'shape': (8,), }"
    );
    assert_eq!(f64s(data), c.frequency_hz);
    let (header, data) = npy("time.npy");
    assert_eq!(
        header,
        "{'descr': '<f8', 'fortran_order': False, 'shape': (16,), }"
    );
    assert_eq!(f64s(data), c.time_s);
    let (header, data) = npy("seconds_per_column.npy");
    assert_eq!(
        header,
        "{'descr': '<f8', 'fortran_order': False, 'shape': (), }"
    );
    assert_eq!(f64s(data), vec![1.0]);

    let (header, data) = npy("clip_start.npy");
    assert_eq!(
        header,
        "{'descr': '<U24', 'fortran_order': False, 'shape': (), }"
    );
    assert_eq!(utf32(data), "2024-04-01T00:04:56.000Z");
    let (_, data) = npy("clip_end.npy");
    assert_eq!(utf32(data), "2024-04-01T00:05:12.000Z");
    let (header, data) = npy("device.npy");
    assert_eq!(
        header,
        "{'descr': '<U14', 'fortran_order': False, 'shape': (), }"
    );
    assert_eq!(utf32(data), "ICLISTENHF6324");
    let (header, data) = npy("description.npy");
    assert_eq!(
        header,
        "{'descr': '<U12', 'fortran_order': False, 'shape': (), }"
    );
    assert_eq!(utf32(data), "humpback – ☃");
}

#[test]
fn npz_empty_description_and_bad_shapes() {
    let a = file(0.0, 1.0, 10);
    let mut c = one(clip(&[&a], 0.0, 10.0, GapPolicy::Fail));
    let meta = NpzMeta {
        clip_start_s: T0,
        clip_end_s: T0 + 10.0,
        device: "",
        description: "",
    };
    let entries = read_zip(&write_npz(&c, &meta).unwrap());
    let (header, data) = read_npy(&entries[7].1);
    assert_eq!(
        header,
        "{'descr': '<U1', 'fortran_order': False, 'shape': (), }"
    );
    assert_eq!(data, [0, 0, 0, 0]);
    c.psd.pop();
    assert!(matches!(write_npz(&c, &meta), Err(NpzError::Shape { .. })));
}

// ---- PNG ----

fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    pixels.truncate(info.buffer_size());
    (info.width, info.height, pixels)
}

#[test]
fn png_of_a_small_clip_is_enlarged_and_decodes() {
    let a = file(0.0, 1.0, 300);
    let b = file(310.0, 1.0, 300);
    let c = one(clip(&[&a, &b], 295.0, 315.0, GapPolicy::Fill));
    let bytes = render_png(&c, "ICLISTENHF6324 2024-04-01T00:04:55Z (fill)").unwrap();
    let (width, height, pixels) = decode_png(&bytes);
    // 20 columns → 400 px (×20), 8 bins → 200 px (×25), plus the margins.
    assert_eq!((width, height), (44 + 400 + 74, 26 + 200 + 30));
    let pixel = |x: usize, y: usize| {
        let at = (y * width as usize + x) * 3;
        [pixels[at], pixels[at + 1], pixels[at + 2]]
    };
    // The gap (columns 5..15) is grey; data columns are viridis.
    assert_eq!(pixel(44 + 10 * 20, 26 + 100), [150, 150, 150]);
    assert_ne!(pixel(44 + 2 * 20, 26 + 100), [150, 150, 150]);
    // Low frequencies at the bottom: cells grow with the bin, so the bottom row is darker.
    let brightness = |p: [u8; 3]| u32::from(p[0]) + u32::from(p[1]) + u32::from(p[2]);
    assert!(brightness(pixel(44 + 20, 26 + 199)) < brightness(pixel(44 + 20, 26)));
}

#[test]
fn png_of_a_long_clip_is_reduced_and_nan_only_clips_render() {
    let a = file(0.0, 0.25, 5000);
    let c = one(clip(&[&a], 0.0, 1250.0, GapPolicy::Fail));
    let (width, height, _) = decode_png(&render_png(&c, "long").unwrap());
    assert_eq!((width, height), (44 + 1200 + 74, 26 + 200 + 30));

    let mut empty = c.clone();
    empty.psd.fill(f64::NAN);
    empty.psd[0] = f64::NEG_INFINITY;
    decode_png(&render_png(&empty, "").unwrap());

    empty.time_s.clear();
    assert!(matches!(
        render_png(&empty, "x"),
        Err(RenderError::Empty { .. })
    ));
}

// ---- the simulator's real layout ----

#[test]
fn clip_across_simulator_files_matches_the_oracle() {
    use onc_sim::{archive, mat, oracle};
    let profile = archive::DeviceProfile {
        code: "ICLISTENHF6324".into(),
        sample_rate: 8000,
    };
    let from_ms = 1_711_929_600_000;
    let files = archive::files_overlapping(&profile, from_ms, from_ms + 2 * 3_600_000);
    assert!(files.len() >= 10);
    struct Built {
        name: String,
        psd: Vec<f64>,
        frequency_hz: Vec<f64>,
        time_s: Vec<f64>,
        time_ms: Vec<i64>,
    }
    let built: Vec<Built> = files
        .iter()
        .map(|f| {
            let layout = oracle::spectrogram_layout(f, 2);
            let psd = layout
                .column_times_ms
                .iter()
                .flat_map(|&t| {
                    layout
                        .frequencies_hz
                        .iter()
                        .map(move |&hz| oracle::psd_db(&f.device, t, hz))
                })
                .collect();
            Built {
                name: mat::hsd_mat_filename(f, 2, None),
                psd,
                time_s: layout
                    .column_times_ms
                    .iter()
                    .map(|&t| t as f64 / 1000.0)
                    .collect(),
                frequency_hz: layout.frequencies_hz,
                time_ms: layout.column_times_ms,
            }
        })
        .collect();
    fn input(b: &Built) -> SpectrogramInput<'_> {
        SpectrogramInput {
            name: &b.name,
            psd: &b.psd,
            nfreq: b.frequency_hz.len(),
            frequency_hz: &b.frequency_hz,
            time_s: &b.time_s,
        }
    }
    // Every boundary between consecutive files (jittered, overlapping or with outages).
    for pair in built.windows(2) {
        let boundary_ms = pair[1].time_ms[0];
        let (start_ms, end_ms) = (boundary_ms - 5_000, boundary_ms + 5_000);
        let inputs = [input(&pair[0]), input(&pair[1])];
        let clips = clip_spectrogram(
            &inputs,
            start_ms as f64 / 1000.0,
            end_ms as f64 / 1000.0,
            GapPolicy::Fill,
        )
        .unwrap();
        let c = one(clips);
        // Expected columns, worked out from the layouts directly.
        let mut expected: Vec<i64> = Vec::new();
        for b in pair {
            for &t in &b.time_ms {
                if t >= start_ms && t < end_ms && expected.last().is_none_or(|&last| t > last) {
                    expected.push(t);
                }
            }
        }
        let nfreq = c.nfreq;
        assert_eq!(c.frequency_hz, pair[0].frequency_hz);
        assert!((c.seconds_per_column - 0.3).abs() < 1e-6);
        let mut found = 0;
        for (j, &t) in c.time_s.iter().enumerate() {
            let t_ms = (t * 1000.0).round() as i64;
            let col = &c.psd[j * nfreq..(j + 1) * nfreq];
            if expected.contains(&t_ms) {
                found += 1;
                for (bin, (&got, &hz)) in col.iter().zip(&c.frequency_hz).enumerate() {
                    let want = oracle::psd_db(&profile.code, t_ms, hz);
                    assert!(
                        got == want || (got.is_nan() && want.is_nan()),
                        "{t_ms} bin {bin}: {got} vs {want}"
                    );
                }
            } else {
                assert!(col.iter().all(|v| v.is_nan()), "filled column at {t_ms}");
                assert!(
                    c.gaps.iter().any(|g| g.start_s - 1e-6 <= t && t < g.end_s),
                    "filled column {t_ms} outside the reported gaps {:?}",
                    c.gaps
                );
            }
        }
        assert_eq!(found, expected.len(), "boundary at {boundary_ms}");
        let used: u64 = c.sources.iter().map(|s| s.end - s.first).sum();
        assert_eq!(used as usize, expected.len());
    }
}

// ---- properties ----

#[derive(Debug, Clone)]
struct FileSpec {
    offset: f64,
    count: usize,
    spacing: f64,
    corrupt: u8,
}

fn file_spec() -> impl Strategy<Value = FileSpec> {
    (
        -20.0..80.0f64,
        0usize..40,
        prop_oneof![Just(1.0), Just(0.5), Just(0.3)],
        0u8..12,
    )
        .prop_map(|(offset, count, spacing, corrupt)| FileSpec {
            offset,
            count,
            spacing,
            corrupt,
        })
}

fn build(spec: &FileSpec, nfreq: usize) -> File {
    let mut f = file(spec.offset, spec.spacing, spec.count);
    f.nfreq = nfreq;
    f.frequency_hz.truncate(nfreq);
    f.frequency_hz.resize(nfreq, 0.0);
    f.psd = f
        .time_s
        .iter()
        .flat_map(|&t| (0..nfreq).map(move |bin| cell(t, bin)))
        .collect();
    match spec.corrupt {
        0 if !f.time_s.is_empty() => f.time_s[0] = f64::NAN,
        1 => {
            f.time_s.reverse();
        }
        2 => {
            f.psd.pop();
        }
        _ => {}
    }
    f
}

fn policy() -> impl Strategy<Value = GapPolicy> {
    prop_oneof![
        Just(GapPolicy::Fill),
        Just(GapPolicy::Split),
        Just(GapPolicy::Skip),
        Just(GapPolicy::Fail)
    ]
}

proptest! {
    #[test]
    fn clipping_never_panics_and_keeps_its_invariants(
        specs in prop::collection::vec(file_spec(), 0..4),
        nfreq in 0usize..4,
        start in -30.0..100.0f64,
        length in -5.0..60.0f64,
        gaps in policy(),
    ) {
        let files: Vec<File> = specs.iter().map(|s| build(s, nfreq)).collect();
        let inputs: Vec<_> = files.iter().map(File::input).collect();
        let (start, end) = (T0 + start, T0 + start + length);
        let Ok(clips) = clip_spectrogram(&inputs, start, end, gaps) else {
            return Ok(());
        };
        prop_assert!(!clips.is_empty());
        if gaps != GapPolicy::Split {
            prop_assert_eq!(clips.len(), 1);
        }
        for c in &clips {
            prop_assert!(c.ncols() > 0);
            prop_assert_eq!(c.psd.len(), c.nfreq * c.ncols());
            prop_assert_eq!(c.frequency_hz.len(), c.nfreq);
            prop_assert!(c.time_s.windows(2).all(|w| w[1] > w[0]));
            prop_assert!(c.time_s.iter().all(|&t| t >= start && t < end));
            let used: u64 = c.sources.iter().map(|s| s.end - s.first).sum();
            let filled = (0..c.ncols())
                .filter(|&j| c.nfreq > 0 && column(c, j).iter().all(|v| v.is_nan()))
                .count();
            prop_assert_eq!(used as usize + filled, c.ncols());
            if gaps != GapPolicy::Fill {
                prop_assert_eq!(filled, 0);
            }
            if matches!(gaps, GapPolicy::Skip | GapPolicy::Fail) {
                prop_assert!(c.gaps.is_empty());
            }
            // Every kept column came from its source unchanged.
            assert_cells_match_times(c);
            write_npz(c, &NpzMeta { clip_start_s: start, clip_end_s: end, device: "d", description: "" })
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            render_png(c, "p").map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
    }
}
