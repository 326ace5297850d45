use super::*;
use onc_mat::testing::{EncodeOptions, MI_COMPRESSED, assorted, encode};
use onc_sim::archive::{ArchiveFile, DeviceProfile, files_overlapping};
use onc_sim::{mat::hsd_mat_bytes, oracle};
use proptest::prelude::*;

const DEVICE: &str = "ICLISTENHF6324";
/// 2024-04-01T00:00:00Z.
const APRIL_1: i64 = 1_711_929_600_000;

/// The simulator's archive file containing `t_ms`.
fn sim_file(t_ms: i64) -> ArchiveFile {
    let profile = DeviceProfile {
        code: DEVICE.into(),
        sample_rate: 8000,
    };
    files_overlapping(&profile, t_ms, t_ms + 1)
        .into_iter()
        .next()
        .unwrap()
}

/// A 6-second version of a simulator file (20 plotRes columns): quick to read many times.
fn short_sim_file() -> ArchiveFile {
    ArchiveFile {
        samples: 6 * 8000,
        ..sim_file(APRIL_1)
    }
}

fn numeric(v: &MatValue) -> &NumericArray {
    match v {
        MatValue::Numeric(a) => a,
        other => panic!("not numeric: {other:?}"),
    }
}

fn f64s(v: &MatValue) -> Vec<f64> {
    numeric(v).real.to_f64()
}

fn same_f64(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

#[test]
fn reads_every_field_the_simulator_writes() {
    let file = sim_file(APRIL_1);
    let bytes = hsd_mat_bytes(&file, 2, None).unwrap();
    let mat = read_mat(&bytes).unwrap();
    assert!(
        mat.header_text
            .starts_with("MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: "),
        "{}",
        mat.header_text
    );
    let names: Vec<&str> = mat.variables.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["SpectData", "Meta"]);

    let layout = oracle::spectrogram_layout(&file, 2);
    let (nf, nc) = (layout.frequencies_hz.len(), layout.column_times_ms.len());
    let spect = mat.get("SpectData").unwrap();
    let MatValue::Struct(s) = spect else { panic!() };
    assert_eq!(s.dims, [1, 1]);
    assert_eq!(
        s.field_names,
        [
            "PSD",
            "frequency",
            "time",
            "processingComment",
            "units",
            "sampleRate",
            "params"
        ]
    );
    let psd = numeric(spect.field("PSD").unwrap());
    assert_eq!(psd.dims, [nf, nc]);
    // The simulator stores PSD as double (at 1e-5 dB).
    let NumericData::F64(cells) = &psd.real else {
        panic!("PSD not double")
    };
    // Every 7th column in full (DC row -Inf, NaNs by kind), so the sample covers every row.
    let mut nans = 0;
    for (j, &t) in layout.column_times_ms.iter().enumerate().step_by(7) {
        for (i, &f) in layout.frequencies_hz.iter().enumerate() {
            let want = oracle::psd_db_stored(DEVICE, t, f);
            let got = cells[j * nf + i];
            assert!(same_f64(got, want), "cell ({i},{j}): {got} vs {want}");
            nans += usize::from(want.is_nan());
        }
        assert_eq!(cells[j * nf], f64::NEG_INFINITY);
    }
    assert!(nans > 0, "the sample should include NaN cells");

    let freq = numeric(spect.field("frequency").unwrap());
    assert_eq!(freq.dims, [nf, 1]);
    assert_eq!(freq.real, NumericData::F64(layout.frequencies_hz.clone()));
    let time = numeric(spect.field("time").unwrap());
    assert_eq!(time.dims, [1, nc]);
    let datenums: Vec<f64> = layout
        .column_times_ms
        .iter()
        .map(|&t| oracle::datenum(t))
        .collect();
    assert_eq!(time.real, NumericData::F64(datenums));
    let comment = spect.field("processingComment").unwrap().as_text().unwrap();
    assert!(comment.starts_with("Simulated spectrogram"), "{comment}");
    assert_eq!(
        spect.field("processingComment").unwrap().dims(),
        [1, comment.len()]
    );
    assert_eq!(
        spect.field("units").unwrap().as_text().unwrap(),
        "dB re 1 uPa^2/Hz"
    );
    assert_eq!(f64s(spect.field("sampleRate").unwrap()), [8000.0]);
    let params = spect.field("params").unwrap();
    assert_eq!(f64s(params.field("windowLengthSec").unwrap()), [0.6]);
    assert_eq!(f64s(params.field("overlap").unwrap()), [0.5]);

    let meta = mat.get("Meta").unwrap();
    let MatValue::Struct(m) = meta else { panic!() };
    assert_eq!(
        m.field_names,
        [
            "deviceID",
            "deviceCode",
            "deviceName",
            "deviceCategory",
            "deviceCategoryCode",
            "creationDate",
            "lat",
            "lon",
            "depth",
            "deviceHeading",
            "devicePitch",
            "deviceRoll",
            "siteName",
            "locationName",
            "dataQualityComments"
        ]
    );
    assert_eq!(meta.field("deviceCode").unwrap().as_text().unwrap(), DEVICE);
    assert_eq!(
        meta.field("deviceCategoryCode").unwrap().as_text().unwrap(),
        "HYDROPHONE"
    );
    assert_eq!(
        meta.field("deviceName").unwrap().as_text().unwrap(),
        format!("Simulated Ocean Sonics icListen HF Hydrophone {DEVICE}")
    );
    let lat = f64s(meta.field("lat").unwrap())[0];
    assert!((47.5..50.5).contains(&lat), "{lat}");
    let created = meta.field("creationDate").unwrap().as_text().unwrap();
    assert!(created.ends_with('Z'), "{created}");

    let sg = spectrogram_from_mat(&mat).unwrap();
    assert_eq!((sg.nfreq, sg.ntime), (nf, nc));
    assert_eq!(sg.frequency_hz, layout.frequencies_hz);
    assert_eq!(sg.device.as_deref(), Some(DEVICE));
    assert_eq!(sg.psd.len(), nf * nc);
    for (t_s, &t_ms) in sg.time_s.iter().zip(&layout.column_times_ms) {
        // A datenum resolves ~10 µs at today's dates.
        assert!((t_s - t_ms as f64 / 1000.0).abs() < 1e-4, "{t_s} vs {t_ms}");
    }
}

#[test]
fn other_resolutions_and_diversions_read() {
    let file = short_sim_file();
    for (downsample, nf) in [(0u8, 214), (1, 107), (2, 107)] {
        let mat = read_mat(&hsd_mat_bytes(&file, downsample, Some("HPF")).unwrap()).unwrap();
        let sg = spectrogram_from_mat(&mat).unwrap();
        assert_eq!(sg.nfreq, nf);
        assert_eq!(sg.psd.len(), sg.nfreq * sg.ntime);
    }
    // An empty file: PSD nfreq×0, time 1×0.
    let empty = ArchiveFile { samples: 0, ..file };
    let sg =
        spectrogram_from_mat(&read_mat(&hsd_mat_bytes(&empty, 2, None).unwrap()).unwrap()).unwrap();
    assert_eq!((sg.nfreq, sg.ntime), (107, 0));
}

#[test]
fn round_trip_write_then_read_is_equal() {
    let bytes = hsd_mat_bytes(&sim_file(APRIL_1), 2, None).unwrap();
    let mat = read_mat(&bytes).unwrap();
    let written = write_mat(&mat).unwrap();
    assert_eq!(written, write_mat(&mat).unwrap(), "deterministic");
    assert_eq!(&written[126..128], b"IM");
    // Each variable is one compressed element.
    assert_eq!(
        u32::from_le_bytes(written[128..132].try_into().unwrap()),
        MI_COMPRESSED
    );
    assert_eq!(read_mat(&written).unwrap(), mat);
}

#[test]
fn crop_keeps_class_orientation_and_passthrough_fields() {
    let mat = read_mat(&hsd_mat_bytes(&short_sim_file(), 2, None).unwrap()).unwrap();
    let full = spectrogram_from_mat(&mat).unwrap();
    let nf = full.nfreq;
    let cropped = crop_spectrogram_mat(&mat, 5..12).unwrap();
    let sg = spectrogram_from_mat(&cropped).unwrap();
    assert_eq!(sg.ntime, 7);
    assert!(
        sg.psd
            .iter()
            .zip(&full.psd[5 * nf..12 * nf])
            .all(|(a, b)| same_f64(*a, *b))
    );
    assert_eq!(sg.time_s, full.time_s[5..12]);
    let spect = cropped.get("SpectData").unwrap();
    assert_eq!(spect.field("time").unwrap().dims(), [1, 7]);
    assert_eq!(spect.field("PSD").unwrap().dims(), [nf, 7]);
    let original = mat.get("SpectData").unwrap();
    for field in [
        "frequency",
        "processingComment",
        "units",
        "sampleRate",
        "params",
    ] {
        assert_eq!(spect.field(field), original.field(field), "{field}");
    }
    assert_eq!(cropped.get("Meta"), mat.get("Meta"));
    assert_eq!(read_mat(&write_mat(&cropped).unwrap()).unwrap(), cropped);

    // Single precision stays single, a column time vector stays a column.
    let mut single = mat.clone();
    let s = single.get_mut("SpectData").unwrap();
    let psd = match s.field_mut("PSD").unwrap() {
        MatValue::Numeric(a) => a,
        _ => panic!(),
    };
    psd.real = NumericData::F32(psd.real.to_f64().iter().map(|&x| x as f32).collect());
    let time = match s.field_mut("time").unwrap() {
        MatValue::Numeric(a) => a,
        _ => panic!(),
    };
    time.dims = vec![time.dims[1], 1];
    let cropped = crop_spectrogram_mat(&single, 0..3).unwrap();
    let spect = cropped.get("SpectData").unwrap();
    assert!(matches!(
        numeric(spect.field("PSD").unwrap()).real,
        NumericData::F32(_)
    ));
    assert_eq!(spect.field("time").unwrap().dims(), [3, 1]);
    assert_eq!(
        crop_spectrogram_mat(&single, 20..20)
            .unwrap()
            .variables
            .len(),
        2
    );

    let err = crop_spectrogram_mat(&mat, 15..21).unwrap_err().to_string();
    assert!(
        err.contains("columns 15..21") && err.contains("20 time columns"),
        "{err}"
    );
}

#[test]
fn clip_mat_replaces_psd_and_time_in_template_class() {
    let mat = read_mat(&hsd_mat_bytes(&short_sim_file(), 2, None).unwrap()).unwrap();
    let full = spectrogram_from_mat(&mat).unwrap();
    let nf = full.nfreq;
    // Two source columns, then a NaN gap column.
    let mut psd = full.psd[..2 * nf].to_vec();
    psd.extend(std::iter::repeat_n(f64::NAN, nf));
    let times = [full.time_s[0], full.time_s[1], full.time_s[1] + 0.3];
    let clip = spectrogram_clip_mat(&mat, &psd, nf, &times).unwrap();
    let back = spectrogram_from_mat(&read_mat(&write_mat(&clip).unwrap()).unwrap()).unwrap();
    assert_eq!((back.nfreq, back.ntime), (nf, 3));
    assert!(back.psd.iter().zip(&psd).all(|(a, b)| same_f64(*a, *b)));
    for (a, b) in back.time_s.iter().zip(times) {
        assert!((a - b).abs() < 1e-4);
    }
    assert_eq!(clip.get("Meta"), mat.get("Meta"));

    let err = spectrogram_clip_mat(&mat, &psd, nf - 1, &times)
        .unwrap_err()
        .to_string();
    assert!(err.contains("frequencies"), "{err}");
    let err = spectrogram_clip_mat(&mat, &psd[1..], nf, &times)
        .unwrap_err()
        .to_string();
    assert!(err.contains("PSD values"), "{err}");
}

#[test]
fn concat_joins_column_ranges_of_consecutive_files() {
    let profile = DeviceProfile {
        code: DEVICE.into(),
        sample_rate: 8000,
    };
    let files = files_overlapping(&profile, APRIL_1, APRIL_1 + 400_000);
    assert!(files.len() >= 2);
    let parts: Vec<(MatFile, std::ops::Range<usize>)> = files[..2]
        .iter()
        .map(|f| {
            let short = ArchiveFile {
                samples: 3 * 8000,
                ..f.clone()
            };
            (
                read_mat(&hsd_mat_bytes(&short, 2, None).unwrap()).unwrap(),
                2..7,
            )
        })
        .collect();
    let clip = concat_spectrogram_mats(&parts).unwrap();
    let sg = spectrogram_from_mat(&clip).unwrap();
    assert_eq!(sg.ntime, 10);
    let first = spectrogram_from_mat(&parts[0].0).unwrap();
    let second = spectrogram_from_mat(&parts[1].0).unwrap();
    assert_eq!(sg.time_s[..5], first.time_s[2..7]);
    assert_eq!(sg.time_s[5..], second.time_s[2..7]);
    assert!(concat_spectrogram_mats(&[]).is_err());
}

#[test]
fn every_truncation_of_a_simulator_file_is_an_error() {
    let mat = read_mat(&hsd_mat_bytes(&short_sim_file(), 2, None).unwrap()).unwrap();
    for options in [
        EncodeOptions::default(),
        EncodeOptions {
            compress: false,
            ..EncodeOptions::default()
        },
    ] {
        let bytes = encode(&mat, &options).unwrap();
        // Every length up to the first variable's end is an error (after that, a prefix may be a
        // valid file with fewer variables).
        for len in (0..bytes.len()).step_by(7) {
            if let Ok(m) = read_mat(&bytes[..len]) {
                assert!(m.variables.len() < mat.variables.len(), "len {len}");
            }
        }
    }
}

/// Inputs for the mutation test, built once: a plain (uncompressed) and a compressed simulator
/// file, and the assorted variables big-endian with small elements.
fn mutated_inputs() -> &'static [Vec<u8>] {
    static INPUTS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    INPUTS.get_or_init(build_mutated_inputs)
}

fn build_mutated_inputs() -> Vec<Vec<u8>> {
    let mat = read_mat(&hsd_mat_bytes(&short_sim_file(), 2, None).unwrap()).unwrap();
    let plain = encode(
        &mat,
        &EncodeOptions {
            compress: false,
            ..EncodeOptions::default()
        },
    )
    .unwrap();
    let small = encode(
        &assorted(),
        &EncodeOptions {
            compress: false,
            small_elements: true,
            big_endian: true,
        },
    )
    .unwrap();
    vec![plain, write_mat(&mat).unwrap(), small]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Mutated simulator files: never a panic; whatever reads also writes and reads back equal.
    #[test]
    fn mutated_files_never_panic(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let mut bytes = mutated_inputs()[which].clone();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if do_cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        if let Ok(mat) = read_mat(&bytes) {
            let _ = spectrogram_from_mat(&mat);
            let _ = crop_spectrogram_mat(&mat, 0..1);
            if let Ok(written) = write_mat(&mat) {
                prop_assert_eq!(read_mat(&written).unwrap(), mat);
            }
        }
    }
}

/// Writes the fuzzer's seed corpus (small simulator files in each layout, and the assorted
/// variables) into `$ONC_PIPE_FUZZ_SEEDS`: `fuzz/seed-corpus.sh` runs it.
#[test]
#[ignore = "generates fuzz seeds; run by fuzz/seed-corpus.sh"]
fn write_fuzz_seeds() {
    let Some(dir) = std::env::var_os("ONC_PIPE_FUZZ_SEEDS") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let short = ArchiveFile {
        samples: 3 * 8000,
        ..sim_file(APRIL_1)
    };
    let mut seeds = vec![
        (
            "sim_plotres.mat".to_string(),
            hsd_mat_bytes(&short, 2, None).unwrap(),
        ),
        (
            "sim_minute.mat".to_string(),
            hsd_mat_bytes(&short, 1, Some("LPF")).unwrap(),
        ),
    ];
    let sim = read_mat(&seeds[0].1).unwrap();
    for (name, file) in [("sim", &sim), ("assorted", &assorted())] {
        for (suffix, compress, big_endian, small_elements) in [
            ("plain_le", false, false, false),
            ("plain_be_small", false, true, true),
            ("zlib_be", true, true, false),
        ] {
            let options = EncodeOptions {
                compress,
                big_endian,
                small_elements,
            };
            seeds.push((
                format!("{name}_{suffix}.mat"),
                encode(file, &options).unwrap(),
            ));
        }
    }
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
