//! Streaming a file response to disk.
//!
//! Input: a 200 `reqwest::Response` carrying a file, and a directory.
//! Output: [`Downloaded`] — a fsync'd temporary file `.part-<random>` in that directory, its
//! size, its blake3 hash and the sanitised name from `Content-Disposition`. The caller renames it.
//! Errors: `OncError::Truncated` (body shorter than `Content-Length`, or cut mid-stream),
//! `OncError::Transport` (other body errors), `OncError::Io` (disk). On any error, and when the
//! future is dropped (cancellation), the temporary file is deleted.

use std::path::Path;

use reqwest::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, HeaderMap};
use tokio::io::{AsyncWriteExt, BufWriter};

use super::answers::Downloaded;
use super::error::{OncError, reqwest_error};
use super::redact::Token;
use crate::temp::TempGuard;

/// Prefix of temporary download files; anything starting with it in a cache directory is debris.
pub const TEMP_PREFIX: &str = ".part-";

/// Write buffer: big enough that the blocking-pool hop of `tokio::fs` is amortised.
const WRITE_BUFFER: usize = 256 * 1024;

/// Streams `response` into a new temporary file in `dir`, hashing as it writes.
/// The sanitised file name ONC's `Content-Disposition` gives, else `fallback_name`.
pub(crate) fn response_filename(response: &reqwest::Response, fallback_name: &str) -> String {
    response
        .headers()
        .get(CONTENT_DISPOSITION)
        // Lossy rather than `to_str`: a UTF-8 name in the header is still a usable name.
        .and_then(|v| filename_from_content_disposition(&String::from_utf8_lossy(v.as_bytes())))
        .and_then(|name| sanitize_filename(&name))
        .or_else(|| sanitize_filename(fallback_name))
        .unwrap_or_else(|| "download".to_string())
}

pub(crate) async fn stream_to_temp(
    response: reqwest::Response,
    dir: &Path,
    endpoint: &str,
    fallback_name: &str,
    token: &Token,
) -> Result<Downloaded, OncError> {
    let expected = content_length(response.headers());
    let filename = response_filename(&response, fallback_name);

    let (file, guard) = create_temp(dir).await?;
    let mut writer = BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut hasher = blake3::Hasher::new();
    let mut received: u64 = 0;
    let mut response = response;
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(err) => {
                // A body cut short (reset, early close) with a known length is a truncation;
                // a stall is a timeout. Both are transient; the guard deletes the partial file.
                return Err(match expected {
                    Some(expected) if !err.is_timeout() => OncError::Truncated {
                        endpoint: endpoint.to_string(),
                        expected,
                        received,
                    },
                    _ => reqwest_error(err, endpoint, token),
                });
            }
        };
        hasher.update(&chunk);
        received = received.saturating_add(chunk.len() as u64);
        writer
            .write_all(&chunk)
            .await
            .map_err(|source| temp_io(&guard, source))?;
    }
    if let Some(expected) = expected
        && expected != received
    {
        return Err(OncError::Truncated {
            endpoint: endpoint.to_string(),
            expected,
            received,
        });
    }
    writer
        .flush()
        .await
        .map_err(|source| temp_io(&guard, source))?;
    let file = writer.into_inner();
    // Durable before the caller renames it into place: a crash must never leave a renamed but
    // empty file that looks finished.
    file.sync_all()
        .await
        .map_err(|source| temp_io(&guard, source))?;
    drop(file);
    Ok(Downloaded {
        temp_path: guard.keep(),
        filename,
        size: received,
        blake3: hasher.finalize().to_hex().to_string(),
    })
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse().ok())
}

/// Creates `dir/.part-<unique>` exclusively (see [`crate::temp::unique_name`]).
/// An I/O error on a guarded temporary file, naming it.
fn temp_io(guard: &TempGuard, source: std::io::Error) -> OncError {
    OncError::Io {
        path: guard.path().to_path_buf(),
        source,
    }
}

async fn create_temp(dir: &Path) -> Result<(tokio::fs::File, TempGuard), OncError> {
    let mut last_error = None;
    for _ in 0..16 {
        let path = dir.join(crate::temp::unique_name(TEMP_PREFIX, ""));
        match tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
        {
            Ok(file) => return Ok((file, TempGuard::new(path))),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(source) => return Err(OncError::Io { path, source }),
        }
    }
    Err(OncError::Io {
        path: dir.to_path_buf(),
        source: last_error.unwrap_or_else(|| std::io::Error::other("no free temporary name")),
    })
}

/// The file name in a `Content-Disposition` header: `filename*=UTF-8''<percent-encoded>` if
/// present (RFC 6266 prefers it), else `filename="quoted"` (with `\` escapes) or `filename=bare`.
/// Hand-written: reqwest has no parser for this header and the grammar needed is small.
pub fn filename_from_content_disposition(header: &str) -> Option<String> {
    let mut plain = None;
    let mut extended = None;
    for (name, value) in disposition_params(header) {
        if name.eq_ignore_ascii_case("filename*") {
            extended = extended.or_else(|| decode_ext_value(&value));
        } else if name.eq_ignore_ascii_case("filename") {
            plain = plain.or(Some(value));
        }
    }
    extended.or(plain).filter(|s| !s.is_empty())
}

/// `name=value` pairs after the disposition type, values unquoted.
fn disposition_params(header: &str) -> Vec<(String, String)> {
    let mut params = Vec::new();
    let mut chars = header.chars().peekable();
    // Skip the disposition type (`attachment`).
    for c in chars.by_ref() {
        if c == ';' {
            break;
        }
    }
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ';') {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ';' {
                break;
            }
            name.push(c);
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        if chars.next() != Some('=') {
            continue;
        }
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => {
                        if let Some(escaped) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    c => value.push(c),
                }
            }
            // Skip anything up to the next parameter.
            while chars.peek().is_some_and(|c| *c != ';') {
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ';' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        params.push((name.trim().to_string(), value));
    }
    params
}

/// RFC 8187 `charset'lang'percent-encoded`; only UTF-8 (and ASCII-compatible ISO-8859-1 bytes
/// decoded lossily) is supported.
fn decode_ext_value(value: &str) -> Option<String> {
    let mut parts = value.splitn(3, '\'');
    let _charset = parts.next()?;
    let _language = parts.next()?;
    let encoded = parts.next()?;
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = encoded.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Makes a server-supplied name safe to use inside the output directory: the last component after
/// any `/` or `\`, without control characters; `None` for empty, `.`, `..`, or a name that would
/// look like one of our temporary files.
pub fn sanitize_filename(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim().to_string();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." || cleaned.starts_with(TEMP_PREFIX) {
        return None;
    }
    Some(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("attachment; filename=X.flac", Some("X.flac")),
            ("attachment; filename=\"X.flac\"", Some("X.flac")),
            ("attachment;filename=X.flac", Some("X.flac")),
            ("attachment; filename = X.flac ", Some("X.flac")),
            ("attachment; FILENAME=X.flac; size=3", Some("X.flac")),
            ("attachment; size=3; filename=\"a;b.mat\"", Some("a;b.mat")),
            ("attachment; filename=\"a\\\"b.png\"", Some("a\"b.png")),
            (
                "attachment; filename=\"fallback.txt\"; filename*=UTF-8''%C3%A9t%C3%A9.txt",
                Some("été.txt"),
            ),
            ("attachment; filename*=UTF-8''plain.txt", Some("plain.txt")),
            ("attachment", None),
            ("attachment; filename=", None),
            ("attachment; filename=\"\"", None),
            ("", None),
            ("inline; name=x", None),
            ("attachment; filename=\"unterminated", Some("unterminated")),
            ("attachment; filename*=bad", None),
        ];
        for (header, expected) in cases {
            assert_eq!(
                filename_from_content_disposition(header).as_deref(),
                *expected,
                "{header:?}"
            );
        }
    }

    #[test]
    fn sanitize_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("X.flac", Some("X.flac")),
            ("../../etc/passwd", Some("passwd")),
            ("..\\..\\evil.mat", Some("evil.mat")),
            ("/abs/path.png", Some("path.png")),
            ("..", None),
            (".", None),
            ("dir/..", None),
            ("dir/", None),
            ("", None),
            ("a\u{0}b\nc.txt", Some("abc.txt")),
            (".part-1234", None),
            (".hidden", Some(".hidden")),
        ];
        for (name, expected) in cases {
            assert_eq!(sanitize_filename(name).as_deref(), *expected, "{name:?}");
        }
    }
}
