//! The Level 5 writer: [`MatFile`] → bytes, little-endian, one `miCOMPRESSED` element per
//! variable, laid out as MATLAB and scipy write it (every sub-element padded to 8 bytes, the
//! compressed elements themselves not padded). Numeric data is stored in its class's own type
//! (double as `miDOUBLE`, ...), chars as `miUTF8` (or UTF-16 `miUINT16` when the text has
//! surrogate pairs).

use super::read::*;
use super::{MatError, MatFile, MatValue, NumericData};
use flate2::Compression;
use flate2::write::ZlibEncoder;
use std::io::Write;

/// Field-name slot width MATLAB uses (names up to 31 bytes + NUL); longer names get a wider slot.
const FIELD_NAME_SLOT: usize = 32;

/// Write `file` as a MAT Level 5 file (little-endian, each variable compressed).
pub fn write_mat(file: &MatFile) -> Result<Vec<u8>, MatError> {
    encode(file, &EncodeOptions::default())
}

/// Layout choices; [`write_mat`] uses the defaults. The others exist so tests can produce the
/// variants real writers emit (big-endian, uncompressed, small data elements).
#[derive(Debug, Clone, Copy)]
pub struct EncodeOptions {
    pub compress: bool,
    pub big_endian: bool,
    /// Write data of 1–4 bytes as small data elements (MATLAB does for short names).
    pub small_elements: bool,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            compress: true,
            big_endian: false,
            small_elements: false,
        }
    }
}

fn write_error(path: &str, reason: String) -> MatError {
    MatError::Write {
        path: path.to_string(),
        reason,
    }
}

pub fn encode(file: &MatFile, options: &EncodeOptions) -> Result<Vec<u8>, MatError> {
    let text = file.header_text.as_bytes();
    if text.len() > HEADER_TEXT_LEN {
        return Err(write_error(
            "",
            format!(
                "the header text has {} bytes; at most {HEADER_TEXT_LEN} fit",
                text.len()
            ),
        ));
    }
    if text.starts_with(b"MATLAB 7.3") {
        return Err(write_error(
            "",
            "the header text announces a v7.3 (HDF5) file, but this writer writes Level 5"
                .to_string(),
        ));
    }
    let w = Writer { options: *options };
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(text);
    out.resize(HEADER_TEXT_LEN, b' ');
    // Subsystem data offset (filled in below if there is subsystem data), version, endian.
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(&w.u16_bytes(0x0100));
    out.extend_from_slice(if options.big_endian { b"MI" } else { b"IM" });

    let mut subsystem_at = None;
    for (name, value) in &file.variables {
        // MATLAB stores the data behind opaque (MCOS) objects in a trailing unnamed variable
        // and points the header at it; keep that pointer right.
        if name.is_empty() {
            subsystem_at = Some(out.len() as u64);
        } else {
            subsystem_at = None;
        }
        let mut matrix = Vec::new();
        w.matrix(&mut matrix, name, value, name)?;
        if options.compress {
            let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
            z.write_all(&matrix)
                .and_then(|()| z.finish())
                .map_err(|e| write_error(name, format!("zlib compression failed ({e})")))
                .and_then(|zbytes| {
                    out.extend_from_slice(&w.u32_bytes(MI_COMPRESSED));
                    out.extend_from_slice(&w.u32_bytes(w.len_u32(zbytes.len(), name)?));
                    out.extend_from_slice(&zbytes);
                    Ok(())
                })?;
        } else {
            out.extend_from_slice(&matrix);
        }
    }
    if let Some(at) = subsystem_at {
        let bytes = if options.big_endian {
            at.to_be_bytes()
        } else {
            at.to_le_bytes()
        };
        if let Some(slot) = out.get_mut(HEADER_TEXT_LEN..HEADER_TEXT_LEN + 8) {
            slot.copy_from_slice(&bytes);
        }
    }
    Ok(out)
}

struct Writer {
    options: EncodeOptions,
}

impl Writer {
    fn u16_bytes(&self, v: u16) -> [u8; 2] {
        if self.options.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u32_bytes(&self, v: u32) -> [u8; 4] {
        if self.options.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn len_u32(&self, n: usize, path: &str) -> Result<u32, MatError> {
        u32::try_from(n)
            .map_err(|_| write_error(path, format!("an element of {n} bytes exceeds 4 GiB")))
    }

    /// Append a data element: tag, data, zero padding to 8 bytes.
    fn element(&self, out: &mut Vec<u8>, ty: u32, data: &[u8], path: &str) -> Result<(), MatError> {
        if self.options.small_elements && (1..=4).contains(&data.len()) {
            out.extend_from_slice(&self.u32_bytes(((data.len() as u32) << 16) | ty));
            out.extend_from_slice(data);
            out.resize(out.len() + 4 - data.len(), 0);
            return Ok(());
        }
        out.extend_from_slice(&self.u32_bytes(ty));
        out.extend_from_slice(&self.u32_bytes(self.len_u32(data.len(), path)?));
        out.extend_from_slice(data);
        out.resize(out.len() + (8 - data.len() % 8) % 8, 0);
        Ok(())
    }

    /// Append a complete `miMATRIX` element for `value` named `name` ("" for fields and cells).
    fn matrix(
        &self,
        out: &mut Vec<u8>,
        name: &str,
        value: &MatValue,
        path: &str,
    ) -> Result<(), MatError> {
        let tag_at = out.len();
        out.extend_from_slice(&self.u32_bytes(MI_MATRIX));
        out.extend_from_slice(&[0u8; 4]); // size, patched below
        let body_at = out.len();

        if let MatValue::Opaque { body, .. } = value {
            if self.options.big_endian {
                return Err(write_error(
                    path,
                    "an opaque array (kept little-endian) cannot be written big-endian".to_string(),
                ));
            }
            // The size covers the kept bytes only, so reading this back gives the same body.
            let size = self.len_u32(body.len(), path)?;
            if let Some(slot) = out.get_mut(tag_at + 4..tag_at + 8) {
                slot.copy_from_slice(&self.u32_bytes(size));
            }
            out.extend_from_slice(body);
            out.resize(out.len() + (8 - body.len() % 8) % 8, 0);
            return Ok(());
        } else {
            let (class, flags, dims) = match value {
                MatValue::Numeric(a) => {
                    let mut flags = 0;
                    if a.imag.is_some() {
                        flags |= FLAG_COMPLEX;
                    }
                    if a.logical {
                        flags |= FLAG_LOGICAL;
                    }
                    (numeric_class(&a.real), flags, &a.dims)
                }
                MatValue::Char { dims, .. } => (MX_CHAR, 0, dims),
                MatValue::Struct(s) if s.class_name.is_some() => (MX_OBJECT, 0, &s.dims),
                MatValue::Struct(s) => (MX_STRUCT, 0, &s.dims),
                MatValue::Cell { dims, .. } => (MX_CELL, 0, dims),
                MatValue::Opaque { .. } => (0, 0, &Vec::new()),
            };
            let count = element_count(dims, path)?;
            let mut flag_bytes = Vec::with_capacity(8);
            flag_bytes.extend_from_slice(&self.u32_bytes(u32::from(class) | flags));
            flag_bytes.extend_from_slice(&[0u8; 4]);
            self.element(out, MI_UINT32, &flag_bytes, path)?;
            let mut dim_bytes = Vec::with_capacity(dims.len() * 4);
            for &d in dims {
                let d = i32::try_from(d).map_err(|_| {
                    write_error(path, format!("dimension {d} does not fit in int32"))
                })?;
                dim_bytes.extend_from_slice(&self.u32_bytes(d as u32));
            }
            if dim_bytes.is_empty() {
                return Err(write_error(path, "an array needs dimensions".to_string()));
            }
            self.element(out, MI_INT32, &dim_bytes, path)?;
            self.element(out, MI_INT8, name.as_bytes(), path)?;

            match value {
                MatValue::Numeric(a) => {
                    self.numeric(out, &a.real, count, path)?;
                    if let Some(imag) = &a.imag {
                        if numeric_class(imag) != class {
                            return Err(write_error(
                                path,
                                format!(
                                    "the imaginary part is {}, the real part {}",
                                    imag.class_name(),
                                    a.real.class_name()
                                ),
                            ));
                        }
                        self.numeric(out, imag, count, path)?;
                    }
                }
                MatValue::Char { units, .. } => {
                    if units.len() != count {
                        return Err(write_error(
                            path,
                            format!(
                                "{} characters for dimensions {dims:?} ({count} needed)",
                                units.len()
                            ),
                        ));
                    }
                    // scipy decodes `miUINT16` chars through its `uint16_codec` (UTF-8 by
                    // default: only each unit's low byte survives), so non-ASCII text is written
                    // as `miUTF8`, which MATLAB and scipy both decode. Text with surrogate pairs
                    // stays UTF-16: in UTF-8 its character count would not match the dimensions.
                    let bmp_only = units.iter().all(|&u| !(0xD800..0xE000).contains(&u));
                    match String::from_utf16(units) {
                        Ok(text) if bmp_only => {
                            self.element(out, MI_UTF8, text.as_bytes(), path)?;
                        }
                        _ => {
                            let bytes: Vec<u8> =
                                units.iter().flat_map(|&u| self.u16_bytes(u)).collect();
                            self.element(out, MI_UINT16, &bytes, path)?;
                        }
                    }
                }
                MatValue::Struct(s) => {
                    if let Some(class_name) = &s.class_name {
                        self.element(out, MI_INT8, class_name.as_bytes(), path)?;
                    }
                    let longest = s.field_names.iter().map(String::len).max().unwrap_or(0);
                    let slot = FIELD_NAME_SLOT.max((longest + 1).div_ceil(8) * 8);
                    // The field-name length is always a small data element, as MATLAB writes it.
                    out.extend_from_slice(&self.u32_bytes((4 << 16) | MI_INT32));
                    out.extend_from_slice(&self.u32_bytes(self.len_u32(slot, path)?));
                    let mut names = vec![0u8; slot * s.field_names.len()];
                    for (i, field) in s.field_names.iter().enumerate() {
                        if field.as_bytes().contains(&0) {
                            return Err(write_error(
                                path,
                                format!("field name {field:?} contains a NUL byte"),
                            ));
                        }
                        if let Some(dst) = names.get_mut(i * slot..i * slot + field.len()) {
                            dst.copy_from_slice(field.as_bytes());
                        }
                    }
                    self.element(out, MI_INT8, &names, path)?;
                    let expected = count.checked_mul(s.field_names.len());
                    if expected != Some(s.values.len()) {
                        return Err(write_error(
                            path,
                            format!(
                                "{} field values for {count} elements × {} fields",
                                s.values.len(),
                                s.field_names.len()
                            ),
                        ));
                    }
                    let per_element = s.field_names.len().max(1);
                    for (i, v) in s.values.iter().enumerate() {
                        let field = s
                            .field_names
                            .get(i % per_element)
                            .map(String::as_str)
                            .unwrap_or_default();
                        let child = if count == 1 {
                            format!("{path}.{field}")
                        } else {
                            format!("{path}({}).{field}", i / per_element + 1)
                        };
                        self.matrix(out, "", v, &child)?;
                    }
                }
                MatValue::Cell { elements, .. } => {
                    if elements.len() != count {
                        return Err(write_error(
                            path,
                            format!(
                                "{} cell elements for dimensions {dims:?} ({count} needed)",
                                elements.len()
                            ),
                        ));
                    }
                    for (i, v) in elements.iter().enumerate() {
                        self.matrix(out, "", v, &format!("{path}{{{}}}", i + 1))?;
                    }
                }
                MatValue::Opaque { .. } => {}
            }
        }
        let size = self.len_u32(out.len() - body_at, path)?;
        if let Some(slot) = out.get_mut(tag_at + 4..tag_at + 8) {
            slot.copy_from_slice(&self.u32_bytes(size));
        }
        Ok(())
    }

    /// A numeric data element in the class's own type, exactly `count` values.
    fn numeric(
        &self,
        out: &mut Vec<u8>,
        data: &NumericData,
        count: usize,
        path: &str,
    ) -> Result<(), MatError> {
        if data.len() != count {
            return Err(write_error(
                path,
                format!("{} values for {count} elements", data.len()),
            ));
        }
        let big = self.options.big_endian;
        macro_rules! bytes_of {
            ($v:expr) => {
                $v.iter()
                    .flat_map(|x| {
                        if big {
                            x.to_be_bytes()
                        } else {
                            x.to_le_bytes()
                        }
                    })
                    .collect::<Vec<u8>>()
            };
        }
        let (ty, bytes) = match data {
            NumericData::F64(v) => (MI_DOUBLE, bytes_of!(v)),
            NumericData::F32(v) => (MI_SINGLE, bytes_of!(v)),
            NumericData::I8(v) => (MI_INT8, bytes_of!(v)),
            NumericData::U8(v) => (MI_UINT8, bytes_of!(v)),
            NumericData::I16(v) => (MI_INT16, bytes_of!(v)),
            NumericData::U16(v) => (MI_UINT16, bytes_of!(v)),
            NumericData::I32(v) => (MI_INT32, bytes_of!(v)),
            NumericData::U32(v) => (MI_UINT32, bytes_of!(v)),
            NumericData::I64(v) => (MI_INT64, bytes_of!(v)),
            NumericData::U64(v) => (MI_UINT64, bytes_of!(v)),
        };
        self.element(out, ty, &bytes, path)
    }
}

fn numeric_class(data: &NumericData) -> u8 {
    match data {
        NumericData::F64(_) => MX_DOUBLE,
        NumericData::F32(_) => MX_SINGLE,
        NumericData::I8(_) => MX_INT8,
        NumericData::U8(_) => MX_UINT8,
        NumericData::I16(_) => MX_INT16,
        NumericData::U16(_) => MX_UINT16,
        NumericData::I32(_) => MX_INT32,
        NumericData::U32(_) => MX_UINT32,
        NumericData::I64(_) => MX_INT64,
        NumericData::U64(_) => MX_UINT64,
    }
}

fn element_count(dims: &[usize], path: &str) -> Result<usize, MatError> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| write_error(path, format!("dimensions {dims:?} overflow")))
}
