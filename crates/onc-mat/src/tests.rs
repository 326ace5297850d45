use super::read::*;
use super::testing::{EncodeOptions, assorted, encode};
use super::*;

fn numeric(v: &MatValue) -> &NumericArray {
    match v {
        MatValue::Numeric(a) => a,
        other => panic!("not numeric: {other:?}"),
    }
}

fn f64s(v: &MatValue) -> Vec<f64> {
    numeric(v).real.to_f64()
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
fn the_inflation_budget_is_for_the_whole_file() {
    // Each compressed variable inflates to a few hundred bytes; the budget counts them all.
    let bytes = write_mat(&assorted()).unwrap();
    let one = crate::read::read_mat_within(&bytes, 1 << 20).unwrap();
    assert_eq!(one, read_mat(&bytes).unwrap());
    let mut inflated = 0u64;
    let mut at = 128;
    while at + 8 <= bytes.len() {
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::ZlibDecoder::new(&bytes[at + 8..at + 8 + size]),
            &mut out,
        )
        .unwrap();
        inflated += out.len() as u64;
        // Compressed elements are not padded to 8 bytes.
        at += 8 + size;
    }
    // Every variable alone is far under the budget; together they are over it by one byte.
    let e = crate::read::read_mat_within(&bytes, inflated - 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!(
            "inflate to more than {} bytes in all",
            inflated - 1
        )),
        "{e}"
    );
    assert!(crate::read::read_mat_within(&bytes, inflated).is_ok());
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
