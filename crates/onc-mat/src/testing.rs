//! Support for tests of this crate and of crates that read MAT files (feature `test-support`):
//! the writer's other byte layouts, as real writers emit them, and a file with one variable of
//! each kind the reader supports.

use crate::{MatFile, MatValue, NumericArray, NumericData, StructArray};

pub use crate::write::{EncodeOptions, encode};

/// The `miCOMPRESSED` element type: [`crate::write_mat`] writes each variable as one.
pub const MI_COMPRESSED: u32 = crate::read::MI_COMPRESSED;

/// A MatFile with one variable of each kind the reader supports.
pub fn assorted() -> MatFile {
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
