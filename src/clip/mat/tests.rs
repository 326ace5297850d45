use super::read::*;
use super::write::{EncodeOptions, encode};
use super::*;
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
    let NumericData::F64(cells) = &psd.real else {
        panic!("PSD not double")
    };
    // Every 7th column in full (DC row -Inf, NaNs by kind), so the sample covers every row.
    let mut nans = 0;
    for (j, &t) in layout.column_times_ms.iter().enumerate().step_by(7) {
        for (i, &f) in layout.frequencies_hz.iter().enumerate() {
            let want = oracle::psd_db(DEVICE, t, f);
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

/// A MatFile with one variable of each kind the reader supports.
fn assorted() -> MatFile {
    let int_arrays = vec![
        NumericData::I8(vec![-128, 0, 127]),
        NumericData::U8(vec![0, 1, 255]),
        NumericData::I16(vec![-32768, 1, 32767]),
        NumericData::U16(vec![0, 2, 65535]),
        NumericData::I32(vec![i32::MIN, 3, i32::MAX]),
        NumericData::U32(vec![0, 4, u32::MAX]),
        NumericData::I64(vec![i64::MIN, 5, i64::MAX]),
        NumericData::U64(vec![0, 6, u64::MAX]),
        NumericData::F32(vec![f32::NAN, f32::NEG_INFINITY, 1.5]),
        NumericData::F64(vec![f64::NAN, f64::NEG_INFINITY, -0.0]),
    ];
    let mut variables: Vec<(String, MatValue)> = int_arrays
        .into_iter()
        .map(|d| {
            (
                format!("v_{}", d.class_name()),
                MatValue::Numeric(NumericArray {
                    dims: vec![3, 1],
                    real: d,
                    imag: None,
                    logical: false,
                }),
            )
        })
        .collect();
    variables.push((
        "z".into(),
        MatValue::Numeric(NumericArray {
            dims: vec![1, 2],
            real: NumericData::F64(vec![1.0, 2.0]),
            imag: Some(NumericData::F64(vec![-1.0, 0.5])),
            logical: false,
        }),
    ));
    variables.push((
        "flags".into(),
        MatValue::Numeric(NumericArray {
            dims: vec![2, 2],
            real: NumericData::U8(vec![1, 0, 0, 1]),
            imag: None,
            logical: true,
        }),
    ));
    variables.push(("s".into(), MatValue::text("µPa² — 日本 🐋")));
    variables.push(("bmp".into(), MatValue::text("µPa² — 日本")));
    variables.push((
        "grid".into(),
        MatValue::Char {
            dims: vec![2, 3],
            units: "adbecf".encode_utf16().collect(),
        },
    ));
    variables.push(("empty".into(), MatValue::text("")));
    variables.push(("nothing".into(), MatValue::double(0, 0, vec![])));
    let nested = MatValue::struct_1x1(vec![
        ("a".into(), MatValue::double(1, 1, vec![1.0])),
        (
            "inner".into(),
            MatValue::struct_1x1(vec![
                ("deep".into(), MatValue::text("yes")),
                (
                    "a_rather_long_field_name_of_40_characters".into(),
                    MatValue::double(1, 1, vec![2.0]),
                ),
            ]),
        ),
    ]);
    variables.push(("nested".into(), nested));
    variables.push((
        "people".into(),
        MatValue::Struct(StructArray {
            dims: vec![1, 2],
            class_name: None,
            field_names: vec!["name".into(), "age".into()],
            values: vec![
                MatValue::text("Ann"),
                MatValue::double(1, 1, vec![31.0]),
                MatValue::text("Bo"),
                MatValue::double(1, 1, vec![4.0]),
            ],
        }),
    ));
    variables.push((
        "no_fields".into(),
        MatValue::Struct(StructArray {
            dims: vec![1, 1],
            class_name: None,
            field_names: vec![],
            values: vec![],
        }),
    ));
    variables.push((
        "c".into(),
        MatValue::Cell {
            dims: vec![3, 1],
            elements: vec![
                MatValue::text("x"),
                MatValue::double(1, 3, vec![1.0, 2.0, 3.0]),
                MatValue::Cell {
                    dims: vec![1, 1],
                    elements: vec![MatValue::struct_1x1(vec![(
                        "k".into(),
                        MatValue::double(0, 0, vec![]),
                    )])],
                },
            ],
        },
    ));
    variables.push((
        "obj".into(),
        MatValue::Struct(StructArray {
            dims: vec![1, 1],
            class_name: Some("MyClass".into()),
            field_names: vec!["p".into()],
            values: vec![MatValue::double(1, 1, vec![7.0])],
        }),
    ));
    variables.push((
        "cube".into(),
        MatValue::Numeric(NumericArray {
            dims: vec![2, 1, 2],
            real: NumericData::I16(vec![1, 2, 3, 4]),
            imag: None,
            logical: false,
        }),
    ));
    MatFile {
        header_text: "MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Apr  1 00:00:00 2024"
            .into(),
        variables,
    }
}

#[test]
fn every_layout_variant_reads_back_equal() {
    let mat = assorted();
    for compress in [true, false] {
        for big_endian in [false, true] {
            for small_elements in [false, true] {
                let options = EncodeOptions {
                    compress,
                    big_endian,
                    small_elements,
                };
                let bytes = encode(&mat, &options).unwrap();
                let back = read_mat(&bytes).unwrap_or_else(|e| panic!("{options:?}: {e}"));
                assert_eq!(back, mat, "{options:?}");
            }
        }
    }
    assert_eq!(read_mat(&write_mat(&mat).unwrap()).unwrap(), mat);
    let back = read_mat(&write_mat(&mat).unwrap()).unwrap();
    assert_eq!(back.get("s").unwrap().as_text().unwrap(), "µPa² — 日本 🐋");
    assert_eq!(
        back.get("nested")
            .unwrap()
            .field("inner")
            .unwrap()
            .field("deep")
            .unwrap()
            .as_text()
            .unwrap(),
        "yes"
    );
}

#[test]
fn scipy_header_without_comma_is_accepted() {
    let mut mat = assorted();
    mat.header_text =
        "MATLAB 5.0 MAT-file Platform: posix, Created on: Mon Apr  1 00:00:00 2024".into();
    let back = read_mat(&write_mat(&mat).unwrap()).unwrap();
    assert_eq!(back.header_text, mat.header_text);
}

/// Files written by scipy 1.17.1 `savemat` (header without the comma, NUL-padded; chars as
/// miUTF8; a struct from a dict, a cell from an object array): see testdata/README.md.
#[test]
fn reads_files_written_by_scipy() {
    let mat = read_mat(include_bytes!("testdata/scipy_savemat_compressed.mat")).unwrap();
    assert!(
        mat.header_text
            .starts_with("MATLAB 5.0 MAT-file Platform: posix, Created on: "),
        "{}",
        mat.header_text
    );
    let sg = spectrogram_from_mat(&mat).unwrap();
    assert_eq!((sg.nfreq, sg.ntime), (2, 2));
    // scipy writes the nested list [[1, 2], [3, 4]] row by row: PSD(0, 1) = 2.
    assert_eq!(sg.psd, [1.0, 3.0, 2.0, 4.0]);
    assert_eq!(sg.frequency_hz, [0.0, 5.0]);
    assert_eq!(sg.device.as_deref(), Some("X"));
    let spect = mat.get("SpectData").unwrap();
    assert_eq!(
        spect.field("processingComment").unwrap().as_text().unwrap(),
        "héllo"
    );
    assert!(matches!(mat.get("cellv"), Some(MatValue::Cell { .. })));
    assert_eq!(read_mat(&write_mat(&mat).unwrap()).unwrap(), mat);

    let plain = read_mat(include_bytes!("testdata/scipy_savemat_plain.mat")).unwrap();
    assert_eq!(plain.get("x").unwrap().as_text().unwrap(), "abc");
    assert_eq!(f64s(plain.get("v").unwrap()), [1.0, 2.0, 3.0]);
    assert_eq!(f64s(plain.get("n").unwrap()), [3.0]);
}

/// Little-endian element: tag, data, padding to 8.
fn el(ty: u32, data: &[u8]) -> Vec<u8> {
    let mut out = ty.to_le_bytes().to_vec();
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(8) * 8, 0);
    out
}

/// A little-endian miMATRIX element: flags (class), dims, name, then `rest`.
fn matrix_el(class: u8, dims: &[i32], name: &str, rest: &[u8]) -> Vec<u8> {
    let mut body = el(MI_UINT32, &[class, 0, 0, 0, 0, 0, 0, 0]);
    let dims: Vec<u8> = dims.iter().flat_map(|d| d.to_le_bytes()).collect();
    body.extend(el(MI_INT32, &dims));
    body.extend(el(MI_INT8, name.as_bytes()));
    body.extend_from_slice(rest);
    el(MI_MATRIX, &body)
}

fn header(text: &str, version: [u8; 2], endian: &[u8; 2]) -> Vec<u8> {
    let mut h = text.as_bytes().to_vec();
    h.resize(116, b' ');
    h.extend_from_slice(&[0; 8]);
    h.extend_from_slice(&version);
    h.extend_from_slice(endian);
    h
}

fn le_file(elements: &[Vec<u8>]) -> Vec<u8> {
    let mut out = header("MATLAB 5.0 MAT-file, hand-built", [0, 1], b"IM");
    for e in elements {
        out.extend_from_slice(e);
    }
    out
}

#[test]
fn hand_built_big_endian_file() {
    // x = [1.5 -2] as a 1×2 double, uncompressed, big-endian, name as a small element.
    let mut f = header("MATLAB 5.0 MAT-file, Platform: SOL2", [1, 0], b"MI");
    let mut body = Vec::new();
    body.extend_from_slice(&[0, 0, 0, 6, 0, 0, 0, 8, 0, 0, 0, 6, 0, 0, 0, 0]); // flags: double
    body.extend_from_slice(&[0, 0, 0, 5, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 2]); // dims 1×2
    body.extend_from_slice(&[0, 1, 0, 1, b'x', 0, 0, 0]); // small element: int8, 1 byte
    body.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 16]);
    body.extend_from_slice(&1.5f64.to_be_bytes());
    body.extend_from_slice(&(-2.0f64).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 14]);
    f.extend_from_slice(&(body.len() as u32).to_be_bytes());
    f.extend_from_slice(&body);
    let mat = read_mat(&f).unwrap();
    assert_eq!(mat.header_text, "MATLAB 5.0 MAT-file, Platform: SOL2");
    assert_eq!(
        mat.variables,
        vec![("x".to_string(), MatValue::double(1, 2, vec![1.5, -2.0]))]
    );
}

#[test]
fn matlab_storage_tricks_are_undone() {
    // A double array stored as uint8 (MATLAB saves space that way), chars stored as UTF-8,
    // an empty field written as a matrix element with no bytes, and a sparse matrix kept opaque.
    let stored_u8 = matrix_el(MX_DOUBLE, &[1, 3], "d", &el(MI_UINT8, &[1, 2, 200]));
    let utf8 = matrix_el(MX_CHAR, &[1, 3], "t", &el(MI_UTF8, "aµb".as_bytes()));
    let mut fields = Vec::new();
    fields.extend_from_slice(&((4u32 << 16) | MI_INT32).to_le_bytes());
    fields.extend_from_slice(&8u32.to_le_bytes());
    fields.extend(el(MI_INT8, b"e\0\0\0\0\0\0\0"));
    fields.extend(el(MI_MATRIX, &[]));
    let with_empty = matrix_el(MX_STRUCT, &[1, 1], "s", &fields);
    let mut sparse_rest = el(MI_INT32, &0i32.to_le_bytes()); // ir
    sparse_rest.extend(el(MI_INT32, &[0; 8])); // jc
    sparse_rest.extend(el(MI_DOUBLE, &3.0f64.to_le_bytes())); // pr
    let sparse = matrix_el(MX_SPARSE, &[1, 1], "sp", &sparse_rest);
    let bytes = le_file(&[stored_u8, utf8, with_empty, sparse]);
    let mat = read_mat(&bytes).unwrap();
    assert_eq!(
        mat.get("d").unwrap(),
        &MatValue::double(1, 3, vec![1.0, 2.0, 200.0])
    );
    assert_eq!(mat.get("t").unwrap().as_text().unwrap(), "aµb");
    assert_eq!(
        mat.get("s").unwrap().field("e").unwrap(),
        &MatValue::double(0, 0, vec![])
    );
    assert!(matches!(
        mat.get("sp").unwrap(),
        MatValue::Opaque {
            class: MX_SPARSE,
            ..
        }
    ));
    assert_eq!(read_mat(&write_mat(&mat).unwrap()).unwrap(), mat);
}

fn spect_file(psd: NumericData, freq_dims: Vec<usize>, time_dims: Vec<usize>) -> MatFile {
    let num = |dims: Vec<usize>, real: NumericData| {
        MatValue::Numeric(NumericArray {
            dims,
            real,
            imag: None,
            logical: false,
        })
    };
    MatFile {
        header_text: "MATLAB 5.0 MAT-file".into(),
        variables: vec![(
            "SpectData".into(),
            MatValue::struct_1x1(vec![
                ("PSD".into(), num(vec![2, 3], psd)),
                (
                    "frequency".into(),
                    num(freq_dims, NumericData::F64(vec![0.0, 100.0])),
                ),
                (
                    "time".into(),
                    num(
                        time_dims,
                        NumericData::F64(vec![719_529.0, 719_529.5, 719_530.0]),
                    ),
                ),
            ]),
        )],
    }
}

#[test]
fn single_precision_psd_and_either_vector_orientation() {
    let psd32 = NumericData::F32(vec![f32::NEG_INFINITY, 1.0, f32::NAN, 2.0, 3.0, 4.0]);
    for (freq_dims, time_dims) in [
        (vec![2, 1], vec![1, 3]),
        (vec![1, 2], vec![3, 1]),
        (vec![1, 2], vec![1, 3]),
    ] {
        let mat = spect_file(psd32.clone(), freq_dims, time_dims.clone());
        let mat = read_mat(&write_mat(&mat).unwrap()).unwrap();
        let sg = spectrogram_from_mat(&mat).unwrap();
        assert_eq!((sg.nfreq, sg.ntime), (2, 3));
        assert_eq!(sg.psd[0], f64::NEG_INFINITY);
        assert!(sg.psd[2].is_nan());
        assert_eq!(sg.time_s, [0.0, 43_200.0, 86_400.0]);
        assert_eq!(sg.device, None);
        let clip = spectrogram_clip_mat(&mat, &[5.0, 6.0], 2, &[60.0]).unwrap();
        let spect = clip.get("SpectData").unwrap();
        assert_eq!(
            numeric(spect.field("PSD").unwrap()).real,
            NumericData::F32(vec![5.0, 6.0])
        );
        assert_eq!(spect.field("time").unwrap().dims(), [1, 1]);
    }
}

#[test]
fn spectrogram_errors_name_what_is_wrong() {
    let good = spect_file(NumericData::F64(vec![0.0; 6]), vec![2, 1], vec![1, 3]);
    let msg = |m: &MatFile| spectrogram_from_mat(m).unwrap_err().to_string();

    let none = MatFile {
        header_text: String::new(),
        variables: vec![("Other".into(), MatValue::double(1, 1, vec![1.0]))],
    };
    assert!(
        msg(&none).contains("no SpectData variable (it has: Other)"),
        "{}",
        msg(&none)
    );

    let mut missing = good.clone();
    if let Some(MatValue::Struct(s)) = missing.get_mut("SpectData") {
        s.field_names[0] = "psd".into();
    }
    assert!(
        msg(&missing).contains("SpectData has no PSD field"),
        "{}",
        msg(&missing)
    );

    // PSD time × frequency instead of frequency × time.
    let transposed = spect_file(NumericData::F64(vec![0.0; 6]), vec![2, 1], vec![1, 3]);
    let mut transposed = transposed;
    if let Some(MatValue::Numeric(a)) = transposed
        .get_mut("SpectData")
        .and_then(|s| s.field_mut("PSD"))
    {
        a.dims = vec![3, 2];
    }
    let m = msg(&transposed);
    assert!(
        m.contains("SpectData.PSD is 3×2") && m.contains("expected frequency × time"),
        "{m}"
    );

    let ints = spect_file(NumericData::I32(vec![0; 6]), vec![2, 1], vec![1, 3]);
    assert!(
        msg(&ints).contains("int32, expected double or single"),
        "{}",
        msg(&ints)
    );

    let mut text_time = good.clone();
    if let Some(v) = text_time
        .get_mut("SpectData")
        .and_then(|s| s.field_mut("time"))
    {
        *v = MatValue::text("yesterday");
    }
    assert!(
        msg(&text_time).contains("SpectData.time is a char array"),
        "{}",
        msg(&text_time)
    );
    // Every message reads after "failed to".
    assert!(msg(&none).starts_with("read ONC spectrogram"));
}

#[test]
fn v73_files_get_a_clear_error() {
    let mut v73 = header(
        "MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Sun May 19 14:40:48 2024 HDF5 schema 1.00 .",
        [0, 2],
        b"IM",
    );
    v73.resize(512, 0);
    v73.extend_from_slice(b"\x89HDF\r\n\x1a\n");
    v73.resize(2048, 0);
    let err = read_mat(&v73).unwrap_err();
    assert!(matches!(err, MatError::V73));
    let text = err.to_string();
    assert!(
        text.contains("v7.3") && text.contains("HDF5") && text.contains("-v7"),
        "{text}"
    );
    // The HDF5 signature alone (header text rewritten) is still recognised.
    let mut odd = v73.clone();
    odd[..10].copy_from_slice(b"HDF5 file ");
    odd[126..128].copy_from_slice(b"??");
    assert!(matches!(read_mat(&odd), Err(MatError::V73)));
    // Version 0x0200 with a Level 5 text.
    let v2 = header("MATLAB 5.0 MAT-file", [0, 2], b"IM");
    assert!(matches!(read_mat(&v2), Err(MatError::V73)));
}

#[test]
fn malformed_inputs_are_errors_with_locations() {
    let err = |b: &[u8]| read_mat(b).unwrap_err().to_string();
    assert!(err(b"").contains("0 bytes, fewer than the 128-byte header"));
    let e = err(&header("hello", [0, 1], b"XX"));
    assert!(e.contains("endian indicator"), "{e}");
    // A 1×1e9 double with 8 bytes of data: refused by count, nothing allocated.
    let huge = matrix_el(
        MX_DOUBLE,
        &[1, 1_000_000_000],
        "big",
        &el(MI_DOUBLE, &[0; 8]),
    );
    let e = err(&le_file(&[huge]));
    assert!(
        e.contains("holds 1 values but the dimensions need 1000000000") && e.contains("(in big)"),
        "{e}"
    );
    // A struct claiming 2^31 elements.
    let mut fields = Vec::new();
    fields.extend_from_slice(&((4u32 << 16) | MI_INT32).to_le_bytes());
    fields.extend_from_slice(&8u32.to_le_bytes());
    fields.extend(el(MI_INT8, b"f\0\0\0\0\0\0\0"));
    let many = matrix_el(MX_STRUCT, &[65536, 32768], "many", &fields);
    let e = err(&le_file(&[many]));
    assert!(
        e.contains("call for 2147483648 values but only 0 bytes remain"),
        "{e}"
    );
    // Zero field-name length with names present (matrw divides by it).
    let mut zero = Vec::new();
    zero.extend_from_slice(&((4u32 << 16) | MI_INT32).to_le_bytes());
    zero.extend_from_slice(&0u32.to_le_bytes());
    zero.extend(el(MI_INT8, b"f\0\0\0\0\0\0\0"));
    let e = err(&le_file(&[matrix_el(MX_STRUCT, &[1, 1], "z", &zero)]));
    assert!(e.contains("not a whole number of 0-byte names"), "{e}");
    // Corrupt zlib.
    let mut bad = le_file(&[]);
    bad.extend(MI_COMPRESSED.to_le_bytes());
    bad.extend(4u32.to_le_bytes());
    bad.extend([1, 2, 3, 4]);
    let e = err(&bad);
    assert!(
        e.contains("zlib stream is corrupt") && e.contains("at byte 128"),
        "{e}"
    );
    // An element running past the end, inside a compressed variable: both offsets named.
    let mut truncated = write_mat(&assorted()).unwrap();
    truncated.truncate(200);
    assert!(read_mat(&truncated).is_err());
}

#[test]
fn nesting_deeper_than_the_limit_is_refused() {
    let mut v = MatValue::double(1, 1, vec![1.0]);
    for _ in 0..MAX_NESTING + 5 {
        v = MatValue::Cell {
            dims: vec![1, 1],
            elements: vec![v],
        };
    }
    let mat = MatFile {
        header_text: "MATLAB 5.0 MAT-file".into(),
        variables: vec![("deep".into(), v)],
    };
    let e = read_mat(&write_mat(&mat).unwrap()).unwrap_err().to_string();
    assert!(e.contains("nest deeper than 64"), "{e}");
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
