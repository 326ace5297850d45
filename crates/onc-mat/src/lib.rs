//! MAT-file Level 5 reader and writer, and ONC's spectrogram layout on top of it.
//!
//! Input: the bytes of a MAT file (MATLAB's "-v7"/Level 5 format as ONC's HSD `mat` product
//! and scipy write it: either endianness, `miCOMPRESSED` (zlib) or plain elements, small data
//! elements). Output: a [`MatFile`] — the header text and each variable as a [`MatValue`] tree
//! (numeric, logical, char, struct and cell arrays; other classes kept as opaque bytes) that
//! keeps every field, so a clip can be written back with [`write_mat`] (Level 5, one
//! `miCOMPRESSED` element per variable). [`spectrogram_from_mat`] reads ONC's
//! `SpectData.{PSD, frequency, time}` and `Meta.deviceCode`; [`spectrogram_clip_mat`],
//! [`crop_spectrogram_mat`] and [`concat_spectrogram_mats`] build clip files from templates.
//! Errors: [`MatError`], which says what was wrong and where (byte offset, variable/field path);
//! a MATLAB v7.3 (HDF5) file gets its own error saying so. No input makes the reader panic,
//! allocate more than the input (or its bounded decompression) justifies, or recurse deeper than
//! [`MAX_NESTING`].
//!
//! Why a reader of our own (the evidence): `matfile` 0.5 cannot see structs, and ONC's data
//! lives in the `SpectData` struct. `matrw` (cpfist/matrw) matches the header text with the magic
//! `"MATLAB 5.0 MAT-file, "` (comma included), so it rejects scipy-written files, and its parser
//! panics on malformed input: `read_exact(..).unwrap()` and `String::from_utf8(..).unwrap()` on
//! struct field names, a division by a field-name length read from the file (0 → panic), and
//! `panic!("Unexpected error")` on a short header. Level 5 is a small, documented format; this
//! reader is a few hundred lines, fuzzed (`fuzz/`), and returns errors instead.

mod onc;
mod read;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
mod write;

pub use onc::{
    SpectrogramFile, concat_spectrogram_mats, crop_spectrogram_mat, spectrogram_clip_mat,
    spectrogram_from_mat,
};
pub use read::read_mat;
pub use write::write_mat;

/// Deepest nesting of structs and cells the reader accepts (MATLAB files in practice nest a few
/// levels); deeper input is refused rather than risking the stack.
pub const MAX_NESTING: usize = 64;

/// Most bytes the `miCOMPRESSED` elements of one file may inflate to, together (4 GiB, the
/// largest a Level 5 element can declare): refuses zlib bombs, one or many, instead of
/// exhausting memory.
pub const MAX_DECOMPRESSED_BYTES: u64 = 4 << 30;

/// A MAT file: the 116-byte header text (trailing spaces and NULs trimmed) and the variables in
/// file order.
#[derive(Debug, Clone, PartialEq)]
pub struct MatFile {
    pub header_text: String,
    pub variables: Vec<(String, MatValue)>,
}

impl MatFile {
    /// The first variable called `name`.
    pub fn get(&self, name: &str) -> Option<&MatValue> {
        self.variables
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// The first variable called `name`, mutable.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut MatValue> {
        self.variables
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}

/// One MATLAB array. Dimensions are as stored (at least two); data is column-major.
#[derive(Debug, Clone, PartialEq)]
pub enum MatValue {
    /// Numeric or logical array.
    Numeric(NumericArray),
    /// Char array as UTF-16 code units (MATLAB's `char`), column-major.
    Char { dims: Vec<usize>, units: Vec<u16> },
    /// Struct array (or MATLAB object, with `class_name`): `values` holds, for each element in
    /// column-major order, one value per field in `field_names` order.
    Struct(StructArray),
    /// Cell array, elements column-major.
    Cell {
        dims: Vec<usize>,
        elements: Vec<MatValue>,
    },
    /// A class this reader does not interpret (sparse, function handle, MATLAB opaque/MCOS
    /// objects): the `miMATRIX` element's body bytes, little-endian, written back verbatim. Its
    /// name is inside `body`, so such a variable keeps the name it was read with.
    Opaque { class: u8, body: Vec<u8> },
}

impl MatValue {
    /// A real double matrix, `rows × cols`, column-major `data`.
    pub fn double(rows: usize, cols: usize, data: Vec<f64>) -> MatValue {
        MatValue::Numeric(NumericArray {
            dims: vec![rows, cols],
            real: NumericData::F64(data),
            imag: None,
            logical: false,
        })
    }

    /// A 1×n char row vector (0×0 when empty, as MATLAB writes `''`).
    pub fn text(s: &str) -> MatValue {
        let units: Vec<u16> = s.encode_utf16().collect();
        let dims = if units.is_empty() {
            vec![0, 0]
        } else {
            vec![1, units.len()]
        };
        MatValue::Char { dims, units }
    }

    /// A 1×1 struct with these fields in order.
    pub fn struct_1x1(fields: Vec<(String, MatValue)>) -> MatValue {
        let (field_names, values) = fields.into_iter().unzip();
        MatValue::Struct(StructArray {
            dims: vec![1, 1],
            class_name: None,
            field_names,
            values,
        })
    }

    /// Field `name` of a 1×1 struct (`None` for other values or a missing field).
    pub fn field(&self, name: &str) -> Option<&MatValue> {
        match self {
            MatValue::Struct(s) => s.field(name),
            _ => None,
        }
    }

    /// Field `name` of a 1×1 struct, mutable.
    pub fn field_mut(&mut self, name: &str) -> Option<&mut MatValue> {
        match self {
            MatValue::Struct(s) => s.field_mut(name),
            _ => None,
        }
    }

    /// A char array's text (unpaired UTF-16 surrogates replaced), column-major order.
    pub fn as_text(&self) -> Option<String> {
        match self {
            MatValue::Char { units, .. } => Some(String::from_utf16_lossy(units)),
            _ => None,
        }
    }

    /// The dimensions (empty for opaque values, whose layout is not interpreted).
    pub fn dims(&self) -> &[usize] {
        match self {
            MatValue::Numeric(a) => &a.dims,
            MatValue::Char { dims, .. } | MatValue::Cell { dims, .. } => dims,
            MatValue::Struct(s) => &s.dims,
            MatValue::Opaque { .. } => &[],
        }
    }

    /// MATLAB's class name, for messages.
    pub fn class_name(&self) -> &'static str {
        match self {
            MatValue::Numeric(a) if a.logical => "logical",
            MatValue::Numeric(a) => a.real.class_name(),
            MatValue::Char { .. } => "char",
            MatValue::Struct(s) if s.class_name.is_some() => "object",
            MatValue::Struct(_) => "struct",
            MatValue::Cell { .. } => "cell",
            MatValue::Opaque { .. } => "opaque",
        }
    }
}

/// A numeric array: its class is the variant of `real` (and `imag`, which has the same one).
#[derive(Debug, Clone, PartialEq)]
pub struct NumericArray {
    pub dims: Vec<usize>,
    pub real: NumericData,
    pub imag: Option<NumericData>,
    /// MATLAB `logical` (stored as uint8 with the logical flag).
    pub logical: bool,
}

/// Typed column-major values; the variant is the MATLAB class.
#[derive(Debug, Clone)]
pub enum NumericData {
    F64(Vec<f64>),
    F32(Vec<f32>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
    U32(Vec<u32>),
    I64(Vec<i64>),
    U64(Vec<u64>),
}

/// Equality is bitwise for floats, so a NaN equals the same NaN: a read → write → read round
/// trip of a PSD full of NaNs compares equal.
impl PartialEq for NumericData {
    fn eq(&self, other: &Self) -> bool {
        use NumericData::*;
        match (self, other) {
            (F64(a), F64(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (F32(a), F32(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (I8(a), I8(b)) => a == b,
            (U8(a), U8(b)) => a == b,
            (I16(a), I16(b)) => a == b,
            (U16(a), U16(b)) => a == b,
            (I32(a), I32(b)) => a == b,
            (U32(a), U32(b)) => a == b,
            (I64(a), I64(b)) => a == b,
            (U64(a), U64(b)) => a == b,
            _ => false,
        }
    }
}

impl NumericData {
    pub fn len(&self) -> usize {
        use NumericData::*;
        match self {
            F64(v) => v.len(),
            F32(v) => v.len(),
            I8(v) => v.len(),
            U8(v) => v.len(),
            I16(v) => v.len(),
            U16(v) => v.len(),
            I32(v) => v.len(),
            U32(v) => v.len(),
            I64(v) => v.len(),
            U64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// MATLAB's class name.
    pub fn class_name(&self) -> &'static str {
        use NumericData::*;
        match self {
            F64(_) => "double",
            F32(_) => "single",
            I8(_) => "int8",
            U8(_) => "uint8",
            I16(_) => "int16",
            U16(_) => "uint16",
            I32(_) => "int32",
            U32(_) => "uint32",
            I64(_) => "int64",
            U64(_) => "uint64",
        }
    }

    /// Every value as f64 (64-bit integers beyond 2^53 round).
    pub fn to_f64(&self) -> Vec<f64> {
        use NumericData::*;
        match self {
            F64(v) => v.clone(),
            F32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            I8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            U8(v) => v.iter().map(|&x| f64::from(x)).collect(),
            I16(v) => v.iter().map(|&x| f64::from(x)).collect(),
            U16(v) => v.iter().map(|&x| f64::from(x)).collect(),
            I32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            U32(v) => v.iter().map(|&x| f64::from(x)).collect(),
            I64(v) => v.iter().map(|&x| x as f64).collect(),
            U64(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }

    /// The values at `indices`, same class.
    pub(crate) fn select(&self, indices: impl Iterator<Item = usize> + Clone) -> NumericData {
        use NumericData::*;
        fn pick<T: Copy>(v: &[T], idx: impl Iterator<Item = usize>) -> Vec<T> {
            idx.filter_map(|i| v.get(i).copied()).collect()
        }
        match self {
            F64(v) => F64(pick(v, indices)),
            F32(v) => F32(pick(v, indices)),
            I8(v) => I8(pick(v, indices)),
            U8(v) => U8(pick(v, indices)),
            I16(v) => I16(pick(v, indices)),
            U16(v) => U16(pick(v, indices)),
            I32(v) => I32(pick(v, indices)),
            U32(v) => U32(pick(v, indices)),
            I64(v) => I64(pick(v, indices)),
            U64(v) => U64(pick(v, indices)),
        }
    }

    /// `values` converted to the class of `self` (saturating for integer classes, as `as` does).
    pub(crate) fn same_class_from_f64(&self, values: &[f64]) -> NumericData {
        use NumericData::*;
        match self {
            F64(_) => F64(values.to_vec()),
            F32(_) => F32(values.iter().map(|&x| x as f32).collect()),
            I8(_) => I8(values.iter().map(|&x| x as i8).collect()),
            U8(_) => U8(values.iter().map(|&x| x as u8).collect()),
            I16(_) => I16(values.iter().map(|&x| x as i16).collect()),
            U16(_) => U16(values.iter().map(|&x| x as u16).collect()),
            I32(_) => I32(values.iter().map(|&x| x as i32).collect()),
            U32(_) => U32(values.iter().map(|&x| x as u32).collect()),
            I64(_) => I64(values.iter().map(|&x| x as i64).collect()),
            U64(_) => U64(values.iter().map(|&x| x as u64).collect()),
        }
    }
}

/// A struct array (or a MATLAB object when `class_name` is set).
#[derive(Debug, Clone, PartialEq)]
pub struct StructArray {
    pub dims: Vec<usize>,
    pub class_name: Option<String>,
    pub field_names: Vec<String>,
    /// Element-major: element `e`'s field `f` is `values[e * field_names.len() + f]`.
    pub values: Vec<MatValue>,
}

impl StructArray {
    /// Field `name` of the first element (the only one of a 1×1 struct).
    pub fn field(&self, name: &str) -> Option<&MatValue> {
        let i = self.field_names.iter().position(|n| n == name)?;
        self.values.get(i)
    }

    /// Field `name` of the first element, mutable.
    pub fn field_mut(&mut self, name: &str) -> Option<&mut MatValue> {
        let i = self.field_names.iter().position(|n| n == name)?;
        self.values.get_mut(i)
    }
}

/// Why reading, writing or interpreting a MAT file failed. Messages read after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum MatError {
    #[error(
        "read MAT file: it is a MATLAB v7.3 (HDF5-based) MAT file, which is not supported; \
         request the product as a MAT Level 5 (\"-v7\") file, or convert it in MATLAB with \
         `save(name, '-struct', 'S', '-v7')`"
    )]
    V73,
    #[error("read MAT file: not a MAT Level 5 file: {reason}")]
    NotLevel5 { reason: String },
    #[error("read MAT file: {reason} at {at}{}", path_suffix(.path))]
    Malformed {
        /// Where: `byte N` of the file, or `byte N of the variable compressed at byte M`.
        at: String,
        /// Variable/field path, e.g. `SpectData.params.overlap` (empty at the top level).
        path: String,
        reason: String,
    },
    #[error("write MAT file: {reason}{}", path_suffix(.path))]
    Write { path: String, reason: String },
    #[error("read ONC spectrogram from MAT file: {reason}")]
    Spectrogram { reason: String },
    #[error("build spectrogram clip MAT: {reason}")]
    Clip { reason: String },
}

fn path_suffix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" (in {path})")
    }
}

#[cfg(test)]
mod tests;
