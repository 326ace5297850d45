//! The Level 5 reader: bytes → [`MatFile`]. Every length read from the file is checked against
//! the bytes actually present before anything is allocated, decompression is capped at
//! [`MAX_DECOMPRESSED_BYTES`], and nesting at [`MAX_NESTING`].

use super::{
    MAX_DECOMPRESSED_BYTES, MAX_NESTING, MatError, MatFile, MatValue, NumericArray, NumericData,
    StructArray,
};
use std::io::Read;

// Data types of elements (MAT-File Format, table 1-1).
pub(super) const MI_INT8: u32 = 1;
pub(super) const MI_UINT8: u32 = 2;
pub(super) const MI_INT16: u32 = 3;
pub(super) const MI_UINT16: u32 = 4;
pub(super) const MI_INT32: u32 = 5;
pub(super) const MI_UINT32: u32 = 6;
pub(super) const MI_SINGLE: u32 = 7;
pub(super) const MI_DOUBLE: u32 = 9;
pub(super) const MI_INT64: u32 = 12;
pub(super) const MI_UINT64: u32 = 13;
pub(super) const MI_MATRIX: u32 = 14;
pub(super) const MI_COMPRESSED: u32 = 15;
pub(super) const MI_UTF8: u32 = 16;
pub(super) const MI_UTF16: u32 = 17;
pub(super) const MI_UTF32: u32 = 18;

// Array classes (table 1-3).
pub(super) const MX_CELL: u8 = 1;
pub(super) const MX_STRUCT: u8 = 2;
pub(super) const MX_OBJECT: u8 = 3;
pub(super) const MX_CHAR: u8 = 4;
pub(super) const MX_SPARSE: u8 = 5;
pub(super) const MX_DOUBLE: u8 = 6;
pub(super) const MX_SINGLE: u8 = 7;
pub(super) const MX_INT8: u8 = 8;
pub(super) const MX_UINT8: u8 = 9;
pub(super) const MX_INT16: u8 = 10;
pub(super) const MX_UINT16: u8 = 11;
pub(super) const MX_INT32: u8 = 12;
pub(super) const MX_UINT32: u8 = 13;
pub(super) const MX_INT64: u8 = 14;
pub(super) const MX_UINT64: u8 = 15;
pub(super) const MX_FUNCTION: u8 = 16;
pub(super) const MX_OPAQUE: u8 = 17;

// Array flag bits (in the first u32 of the flags sub-element, above the class byte).
pub(super) const FLAG_COMPLEX: u32 = 0x0800;
pub(super) const FLAG_LOGICAL: u32 = 0x0200;

pub(super) const HEADER_LEN: usize = 128;
pub(super) const HEADER_TEXT_LEN: usize = 116;
const HDF5_SIGNATURE: &[u8; 8] = b"\x89HDF\r\n\x1a\n";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Endian {
    Little,
    Big,
}

/// Read a MAT Level 5 file. A v7.3 (HDF5) file gives [`MatError::V73`].
pub fn read_mat(bytes: &[u8]) -> Result<MatFile, MatError> {
    read_mat_within(bytes, MAX_DECOMPRESSED_BYTES)
}

/// [`read_mat`], inflating at most `budget` bytes in all, over every compressed variable: a cap
/// per variable alone would let a file of many small zlib bombs (each ~1,000:1) hold a multiple
/// of it in memory at once.
pub(crate) fn read_mat_within(bytes: &[u8], budget: u64) -> Result<MatFile, MatError> {
    let text_end = bytes.len().min(HEADER_TEXT_LEN);
    let raw_text = bytes.get(..text_end).unwrap_or_default();
    // A v7.3 file has a MAT header ("MATLAB 7.3 MAT-file", version 0x0200) and the HDF5
    // signature at byte 512: recognise it before anything else can fail, so it gets its own
    // message instead of a parse error.
    let hdf5 = bytes.get(512..520) == Some(&HDF5_SIGNATURE[..]);
    if raw_text.starts_with(b"MATLAB 7.3") {
        return Err(MatError::V73);
    }
    let not_level5 = |reason: String| {
        if hdf5 {
            MatError::V73
        } else {
            MatError::NotLevel5 { reason }
        }
    };
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err(not_level5(format!(
            "the file has {} bytes, fewer than the {HEADER_LEN}-byte header",
            bytes.len()
        )));
    };
    let endian = match header.get(126..128) {
        Some(b"IM") => Endian::Little,
        Some(b"MI") => Endian::Big,
        other => {
            return Err(not_level5(format!(
                "the endian indicator at byte 126 is {:?}, expected \"IM\" or \"MI\"",
                String::from_utf8_lossy(other.unwrap_or_default())
            )));
        }
    };
    let version = read_u16(header.get(124..126).unwrap_or_default(), endian);
    match version {
        0x0100 => {}
        0x0200 => return Err(MatError::V73),
        other => {
            return Err(not_level5(format!(
                "the version at byte 124 is 0x{other:04x}, expected 0x0100"
            )));
        }
    }
    let header_text = String::from_utf8_lossy(raw_text)
        .trim_end_matches([' ', '\0'])
        .to_string();

    let mut variables = Vec::new();
    // Bytes inflated so far, all compressed variables together (at most `budget`).
    let mut inflated_total: u64 = 0;
    let mut top = Cursor {
        data: bytes,
        pos: HEADER_LEN,
        end: bytes.len(),
        endian,
        compressed_at: None,
    };
    while top.pos < top.end {
        let element_at = top.pos;
        let element = top.element("")?;
        match element.ty {
            MI_COMPRESSED => {
                let inflated = inflate(
                    element.data,
                    element_at,
                    budget.saturating_sub(inflated_total),
                    budget,
                )?;
                inflated_total += inflated.len() as u64;
                let mut inner = Cursor {
                    data: &inflated,
                    pos: 0,
                    end: inflated.len(),
                    endian,
                    compressed_at: Some(element_at),
                };
                while inner.pos < inner.end {
                    let el = inner.element("")?;
                    if el.ty != MI_MATRIX {
                        return Err(inner.error_at(
                            el.at,
                            "",
                            format!(
                                "expected a matrix element (type 14) inside the compressed \
                                 element, found type {}",
                                el.ty
                            ),
                        ));
                    }
                    variables.push(inner.matrix_of(&el, None, 0)?);
                }
            }
            MI_MATRIX => variables.push(top.matrix_of(&element, None, 0)?),
            other => {
                return Err(top.error_at(
                    element_at,
                    "",
                    format!(
                        "expected a variable (matrix type 14 or compressed type 15), found \
                         element type {other}"
                    ),
                ));
            }
        }
    }
    Ok(MatFile {
        header_text,
        variables,
    })
}

/// Inflate one `miCOMPRESSED` element's zlib stream, refusing more than `budget` bytes (what is
/// left of the file's `limit`, [`MAX_DECOMPRESSED_BYTES`]): the output grows with the data
/// actually inflated, never with a size claimed by the file.
fn inflate(zlib: &[u8], element_at: usize, budget: u64, limit: u64) -> Result<Vec<u8>, MatError> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::ZlibDecoder::new(zlib).take(budget.saturating_add(1));
    let malformed = |reason: String| MatError::Malformed {
        at: format!("byte {element_at}"),
        path: String::new(),
        reason,
    };
    decoder.read_to_end(&mut out).map_err(|e| {
        malformed(format!(
            "the compressed variable's zlib stream is corrupt ({e})"
        ))
    })?;
    if out.len() as u64 > budget {
        return Err(malformed(format!(
            "the compressed variables inflate to more than {limit} bytes in all"
        )));
    }
    Ok(out)
}

fn read_u16(b: &[u8], endian: Endian) -> u16 {
    let mut a = [0u8; 2];
    for (dst, src) in a.iter_mut().zip(b) {
        *dst = *src;
    }
    match endian {
        Endian::Little => u16::from_le_bytes(a),
        Endian::Big => u16::from_be_bytes(a),
    }
}

fn read_u32(b: &[u8], endian: Endian) -> u32 {
    let mut a = [0u8; 4];
    for (dst, src) in a.iter_mut().zip(b) {
        *dst = *src;
    }
    match endian {
        Endian::Little => u32::from_le_bytes(a),
        Endian::Big => u32::from_be_bytes(a),
    }
}

/// One data element: its type, its data (without padding), and where its tag starts.
struct Element<'a> {
    ty: u32,
    data: &'a [u8],
    at: usize,
    /// Where `data` starts in the cursor's buffer.
    start: usize,
}

/// A position in one buffer: the file itself, or the inflated bytes of the compressed element
/// at file byte `compressed_at`. Reads stop at `end`.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
    endian: Endian,
    compressed_at: Option<usize>,
}

impl<'a> Cursor<'a> {
    fn location(&self, at: usize) -> String {
        match self.compressed_at {
            None => format!("byte {at}"),
            Some(c) => format!("byte {at} of the variable compressed at file byte {c}"),
        }
    }

    fn error_at(&self, at: usize, path: &str, reason: String) -> MatError {
        MatError::Malformed {
            at: self.location(at),
            path: path.to_string(),
            reason,
        }
    }

    /// A cursor over `element`'s data.
    fn inside(&self, element: &Element<'a>) -> Cursor<'a> {
        Cursor {
            data: self.data,
            pos: element.start,
            end: element.start + element.data.len(),
            endian: self.endian,
            compressed_at: self.compressed_at,
        }
    }

    fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    /// The next element; handles the small data element format (type and size in one u32,
    /// up to 4 data bytes in the tag's second half).
    fn element(&mut self, path: &str) -> Result<Element<'a>, MatError> {
        let at = self.pos;
        let window = self.data.get(at..self.end).unwrap_or_default();
        let Some(tag) = window.get(..8) else {
            return Err(self.error_at(
                at,
                path,
                format!(
                    "an element tag needs 8 bytes but only {} remain",
                    window.len()
                ),
            ));
        };
        let first = read_u32(tag, self.endian);
        if first >> 16 != 0 {
            let size = (first >> 16) as usize;
            if size > 4 {
                return Err(self.error_at(
                    at,
                    path,
                    format!("a small data element claims {size} bytes; at most 4 fit"),
                ));
            }
            self.pos = at + 8;
            return Ok(Element {
                ty: first & 0xFFFF,
                data: tag.get(4..4 + size).unwrap_or_default(),
                at,
                start: at + 4,
            });
        }
        let size = read_u32(tag.get(4..8).unwrap_or_default(), self.endian) as usize;
        let Some(data) = window.get(8..).and_then(|rest| rest.get(..size)) else {
            return Err(self.error_at(
                at,
                path,
                format!(
                    "an element of type {first} declares {size} bytes but only {} remain",
                    window.len() - 8
                ),
            ));
        };
        // Compressed elements are not padded; everything else is padded to 8 bytes (tolerate
        // missing padding at the very end of a buffer).
        let padded = if first == MI_COMPRESSED {
            size
        } else {
            size.div_ceil(8) * 8
        };
        self.pos = at.saturating_add(8).saturating_add(padded).min(self.end);
        Ok(Element {
            ty: first,
            data,
            at,
            start: at + 8,
        })
    }

    /// Parse the `miMATRIX` element `element` into (name, value). `path` is the field/cell path
    /// of this value (`None` for a variable, whose path is its own name).
    fn matrix_of(
        &self,
        element: &Element<'a>,
        path: Option<&str>,
        depth: usize,
    ) -> Result<(String, MatValue), MatError> {
        let mut body = self.inside(element);
        let path_text = path.unwrap_or("");
        if depth > MAX_NESTING {
            return Err(self.error_at(
                element.at,
                path_text,
                format!("structs and cells nest deeper than {MAX_NESTING} levels"),
            ));
        }
        // MATLAB writes an empty array inside a struct or cell as a matrix element with no
        // bytes at all; scipy reads it as a 0×0 double.
        if element.data.is_empty() {
            return Ok((String::new(), MatValue::double(0, 0, Vec::new())));
        }

        let flags_el = body.element(path_text)?;
        if flags_el.ty != MI_UINT32 || flags_el.data.len() < 4 {
            return Err(self.error_at(
                flags_el.at,
                path_text,
                format!(
                    "expected array flags (uint32, 8 bytes), found type {} with {} bytes",
                    flags_el.ty,
                    flags_el.data.len()
                ),
            ));
        }
        let flags = read_u32(flags_el.data, self.endian);
        let class = (flags & 0xFF) as u8;

        if matches!(class, MX_SPARSE | MX_FUNCTION | MX_OPAQUE) {
            // Not interpreted: keep the body bytes. Opaque arrays have no dimensions element,
            // so their name comes right after the flags.
            let name = if class == MX_OPAQUE {
                body.name(path_text)?
            } else {
                body.dims(path_text)?;
                body.name(path_text)?
            };
            if self.endian == Endian::Big {
                return Err(self.error_at(
                    element.at,
                    &join_name(path, &name),
                    format!(
                        "arrays of MATLAB class {} (sparse, function handle or object) in a \
                         big-endian file are not supported",
                        class
                    ),
                ));
            }
            return Ok((
                name,
                MatValue::Opaque {
                    class,
                    body: element.data.to_vec(),
                },
            ));
        }

        let dims = body.dims(path_text)?;
        let name = body.name(path_text)?;
        let path = join_name(path, &name);
        let count = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| {
                self.error_at(
                    element.at,
                    &path,
                    format!("dimensions {dims:?} overflow the element count"),
                )
            })?;

        let value = match class {
            MX_DOUBLE..=MX_UINT64 => {
                let real = body.numeric(class, count, &path, "real part")?;
                let imag = if flags & FLAG_COMPLEX != 0 {
                    Some(body.numeric(class, count, &path, "imaginary part")?)
                } else {
                    None
                };
                MatValue::Numeric(NumericArray {
                    dims,
                    real,
                    imag,
                    logical: flags & FLAG_LOGICAL != 0,
                })
            }
            MX_CHAR => {
                let units = body.chars(count, &path)?;
                MatValue::Char { dims, units }
            }
            MX_STRUCT | MX_OBJECT => {
                let class_name = if class == MX_OBJECT {
                    let el = body.element(&path)?;
                    Some(String::from_utf8_lossy(el.data).into_owned())
                } else {
                    None
                };
                let field_names = body.field_names(&path)?;
                let total = count.checked_mul(field_names.len());
                let per_element = field_names.len().max(1);
                let values = body.children(total, &path, depth, |i| {
                    let field = field_names
                        .get(i % per_element)
                        .map(String::as_str)
                        .unwrap_or_default();
                    if count == 1 {
                        format!("{path}.{field}")
                    } else {
                        format!("{path}({}).{field}", i / per_element + 1)
                    }
                })?;
                MatValue::Struct(StructArray {
                    dims,
                    class_name,
                    field_names,
                    values,
                })
            }
            MX_CELL => {
                let elements = body.children(Some(count), &path, depth, |i| {
                    format!("{path}{{{}}}", i + 1)
                })?;
                MatValue::Cell { dims, elements }
            }
            other => {
                return Err(self.error_at(
                    flags_el.at,
                    &path,
                    format!("unknown array class {other}"),
                ));
            }
        };
        Ok((name, value))
    }

    /// The dimensions sub-element: int32 values ≥ 0, at least one.
    fn dims(&mut self, path: &str) -> Result<Vec<usize>, MatError> {
        let el = self.element(path)?;
        if !matches!(el.ty, MI_INT32 | MI_UINT32) || el.data.is_empty() || el.data.len() % 4 != 0 {
            return Err(self.error_at(
                el.at,
                path,
                format!(
                    "expected array dimensions (int32 values), found type {} with {} bytes",
                    el.ty,
                    el.data.len()
                ),
            ));
        }
        el.data
            .chunks_exact(4)
            .map(|c| {
                let d = read_u32(c, self.endian) as i32;
                usize::try_from(d).map_err(|_| {
                    self.error_at(el.at, path, format!("negative array dimension {d}"))
                })
            })
            .collect()
    }

    /// The array name sub-element (may be empty).
    fn name(&mut self, path: &str) -> Result<String, MatError> {
        let el = self.element(path)?;
        if !matches!(el.ty, MI_INT8 | MI_UINT8 | MI_UTF8) {
            return Err(self.error_at(
                el.at,
                path,
                format!(
                    "expected the array name (int8), found element type {}",
                    el.ty
                ),
            ));
        }
        Ok(String::from_utf8_lossy(el.data).into_owned())
    }

    /// A numeric data sub-element converted to `class`, holding exactly `count` values (a
    /// missing element is accepted for an empty array).
    fn numeric(
        &mut self,
        class: u8,
        count: usize,
        path: &str,
        part: &str,
    ) -> Result<NumericData, MatError> {
        if count == 0 && self.remaining() == 0 {
            return Ok(cast(NumericData::F64(Vec::new()), class));
        }
        let el = self.element(path)?;
        let Some(stored) = decode(el.ty, el.data, self.endian) else {
            return Err(self.error_at(
                el.at,
                path,
                format!(
                    "the {part} has element type {} with {} bytes, not a whole number of \
                     numeric values",
                    el.ty,
                    el.data.len()
                ),
            ));
        };
        if stored.len() != count {
            return Err(self.error_at(
                el.at,
                path,
                format!(
                    "the {part} holds {} values but the dimensions need {count}",
                    stored.len()
                ),
            ));
        }
        Ok(cast(stored, class))
    }

    /// A char array's data as UTF-16 code units, exactly `count` of them.
    fn chars(&mut self, count: usize, path: &str) -> Result<Vec<u16>, MatError> {
        if count == 0 && self.remaining() == 0 {
            return Ok(Vec::new());
        }
        let el = self.element(path)?;
        let units: Vec<u16> = match el.ty {
            MI_UTF8 => match std::str::from_utf8(el.data) {
                Ok(s) => s.encode_utf16().collect(),
                Err(e) => {
                    return Err(self.error_at(
                        el.at,
                        path,
                        format!("char data is not valid UTF-8 ({e})"),
                    ));
                }
            },
            MI_UTF32 => {
                if el.data.len() % 4 != 0 {
                    return Err(self.error_at(
                        el.at,
                        path,
                        "UTF-32 char data is not a whole number of characters".to_string(),
                    ));
                }
                let mut units = Vec::new();
                for c in el.data.chunks_exact(4) {
                    let ch = char::from_u32(read_u32(c, self.endian)).unwrap_or('\u{FFFD}');
                    let mut buf = [0u16; 2];
                    units.extend_from_slice(ch.encode_utf16(&mut buf));
                }
                units
            }
            MI_UTF16 | MI_UINT16 | MI_INT16 if el.data.len() % 2 == 0 => el
                .data
                .chunks_exact(2)
                .map(|c| read_u16(c, self.endian))
                .collect(),
            // Old (v4-style) writers store one byte per character.
            MI_UINT8 | MI_INT8 => el.data.iter().map(|&b| u16::from(b)).collect(),
            other => {
                return Err(self.error_at(
                    el.at,
                    path,
                    format!(
                        "char data has element type {other} with {} bytes",
                        el.data.len()
                    ),
                ));
            }
        };
        if units.len() != count {
            return Err(self.error_at(
                el.at,
                path,
                format!(
                    "char data holds {} characters but the dimensions need {count}",
                    units.len()
                ),
            ));
        }
        Ok(units)
    }

    /// Struct field names: the field-name length `L` (int32), then `L` bytes per name,
    /// NUL-terminated.
    fn field_names(&mut self, path: &str) -> Result<Vec<String>, MatError> {
        let len_el = self.element(path)?;
        if !matches!(len_el.ty, MI_INT32 | MI_UINT32) || len_el.data.len() != 4 {
            return Err(self.error_at(
                len_el.at,
                path,
                format!(
                    "expected the struct field-name length (one int32), found type {} with {} \
                     bytes",
                    len_el.ty,
                    len_el.data.len()
                ),
            ));
        }
        let slot = read_u32(len_el.data, self.endian) as usize;
        let names_el = self.element(path)?;
        if !matches!(names_el.ty, MI_INT8 | MI_UINT8 | MI_UTF8) {
            return Err(self.error_at(
                names_el.at,
                path,
                format!(
                    "expected struct field names (int8), found element type {}",
                    names_el.ty
                ),
            ));
        }
        if names_el.data.is_empty() {
            return Ok(Vec::new());
        }
        if slot == 0 || names_el.data.len() % slot != 0 {
            return Err(self.error_at(
                names_el.at,
                path,
                format!(
                    "{} bytes of struct field names are not a whole number of {slot}-byte names",
                    names_el.data.len()
                ),
            ));
        }
        Ok(names_el
            .data
            .chunks_exact(slot)
            .map(|c| {
                let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
                String::from_utf8_lossy(c.get(..end).unwrap_or_default()).into_owned()
            })
            .collect())
    }

    /// `total` child matrices (struct field values or cell elements). Each takes at least an
    /// 8-byte tag, so a count the remaining bytes cannot hold is refused before any allocation.
    fn children(
        &mut self,
        total: Option<usize>,
        path: &str,
        depth: usize,
        child_path: impl Fn(usize) -> String,
    ) -> Result<Vec<MatValue>, MatError> {
        let at = self.pos;
        let total = match total {
            Some(n) if n <= self.remaining() / 8 => n,
            _ => {
                return Err(self.error_at(
                    at,
                    path,
                    format!(
                        "the dimensions call for {} values but only {} bytes remain",
                        total.map_or("too many".to_string(), |n| n.to_string()),
                        self.remaining()
                    ),
                ));
            }
        };
        let mut values = Vec::with_capacity(total);
        for i in 0..total {
            let child = child_path(i);
            let el = self.element(&child)?;
            if el.ty != MI_MATRIX {
                return Err(self.error_at(
                    el.at,
                    &child,
                    format!("expected a matrix element (type 14), found type {}", el.ty),
                ));
            }
            let (_, value) = self.matrix_of(&el, Some(&child), depth + 1)?;
            values.push(value);
        }
        Ok(values)
    }
}

/// `path.name` for variables (path `None`): just the name.
fn join_name(path: Option<&str>, name: &str) -> String {
    match path {
        Some(p) => p.to_string(),
        None => name.to_string(),
    }
}

/// Typed values of a numeric element (`None`: not a numeric type, or a partial value).
fn decode(ty: u32, b: &[u8], endian: Endian) -> Option<NumericData> {
    macro_rules! decode_as {
        ($t:ty, $n:expr, $variant:ident) => {{
            if !b.len().is_multiple_of($n) {
                return None;
            }
            NumericData::$variant(
                b.chunks_exact($n)
                    .map(|c| {
                        let mut a = [0u8; $n];
                        a.copy_from_slice(c);
                        match endian {
                            Endian::Little => <$t>::from_le_bytes(a),
                            Endian::Big => <$t>::from_be_bytes(a),
                        }
                    })
                    .collect(),
            )
        }};
    }
    Some(match ty {
        MI_INT8 => decode_as!(i8, 1, I8),
        MI_UINT8 => decode_as!(u8, 1, U8),
        MI_INT16 => decode_as!(i16, 2, I16),
        MI_UINT16 => decode_as!(u16, 2, U16),
        MI_INT32 => decode_as!(i32, 4, I32),
        MI_UINT32 => decode_as!(u32, 4, U32),
        MI_SINGLE => decode_as!(f32, 4, F32),
        MI_DOUBLE => decode_as!(f64, 8, F64),
        MI_INT64 => decode_as!(i64, 8, I64),
        MI_UINT64 => decode_as!(u64, 8, U64),
        _ => return None,
    })
}

/// Stored values converted to the array's class. MATLAB stores e.g. a double array of small
/// integers as uint8 to save space; the class, not the stored type, is what the array is.
fn cast(data: NumericData, class: u8) -> NumericData {
    macro_rules! all_as {
        ($t:ty) => {
            match data {
                NumericData::F64(v) => v.into_iter().map(|x| x as $t).collect::<Vec<$t>>(),
                NumericData::F32(v) => v.into_iter().map(|x| x as $t).collect(),
                NumericData::I8(v) => v.into_iter().map(|x| x as $t).collect(),
                NumericData::U8(v) => v.into_iter().map(|x| x as $t).collect(),
                NumericData::I16(v) => v.into_iter().map(|x| x as $t).collect(),
                NumericData::U16(v) => v.into_iter().map(|x| x as $t).collect(),
                NumericData::I32(v) => v.into_iter().map(|x| x as $t).collect(),
                NumericData::U32(v) => v.into_iter().map(|x| x as $t).collect(),
                NumericData::I64(v) => v.into_iter().map(|x| x as $t).collect(),
                NumericData::U64(v) => v.into_iter().map(|x| x as $t).collect(),
            }
        };
    }
    match class {
        MX_SINGLE => NumericData::F32(all_as!(f32)),
        MX_INT8 => NumericData::I8(all_as!(i8)),
        MX_UINT8 => NumericData::U8(all_as!(u8)),
        MX_INT16 => NumericData::I16(all_as!(i16)),
        MX_UINT16 => NumericData::U16(all_as!(u16)),
        MX_INT32 => NumericData::I32(all_as!(i32)),
        MX_UINT32 => NumericData::U32(all_as!(u32)),
        MX_INT64 => NumericData::I64(all_as!(i64)),
        MX_UINT64 => NumericData::U64(all_as!(u64)),
        _ => NumericData::F64(all_as!(f64)),
    }
}
