//! File answers: generated file bytes, cached, sent with ONC's headers.
//!
//! Input: a file name and a way to make its bytes (the FLAC, WAV, MAT and PNG writers), the
//! fault decided for the request and the downloading token. Output: the bytes (from the bounded
//! cache or freshly made on a blocking thread), and a 200 file answer, throttled, reset or
//! truncated as the faults say, counted as a download in flight (globally and for its token)
//! until its body is sent or its connection dropped ([`DownloadGuard`]).
//! Errors: a writer's message, or a stopped generation thread (the caller answers 500).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use futures_util::StreamExt;

use super::state::{Shared, token_label};
use crate::faults::Fault;

/// File bytes from the cache, or generated on a blocking thread and cached.
pub(crate) async fn generate(
    shared: &Shared,
    name: &str,
    make: impl FnOnce() -> Result<Vec<u8>, String> + Send + 'static,
) -> Result<Arc<Vec<u8>>, String> {
    if let Ok(inner) = shared.lock()
        && let Some((_, bytes)) = inner.cache.iter().find(|(cached, _)| cached == name)
    {
        return Ok(bytes.clone());
    }
    let bytes = Arc::new(
        tokio::task::spawn_blocking(make)
            .await
            .map_err(|error| format!("file generation stopped: {error}"))??,
    );
    if let Ok(mut inner) = shared.lock() {
        // Bounded: enough for a benchmark's working set, never the whole archive.
        const CACHE_LIMIT: usize = 512 * 1024 * 1024;
        inner.cache_bytes += bytes.len();
        inner.cache.push_back((name.to_owned(), bytes.clone()));
        while inner.cache_bytes > CACHE_LIMIT {
            match inner.cache.pop_front() {
                Some((_, old)) => inner.cache_bytes -= old.len(),
                None => break,
            }
        }
    }
    Ok(bytes)
}

/// One file download in flight, counted from its answer's start until the guard is dropped.
///
/// The guard lives inside the answer's body stream, so it goes when hyper drops the body:
/// after the last chunk was handed to the connection, or when the client went away mid-body
/// (a dropped connection would otherwise leave the count high forever).
pub(crate) struct DownloadGuard {
    shared: Shared,
    /// The downloading token's label (never the token: it is kept until the body goes).
    label: String,
}

impl DownloadGuard {
    /// Counts a download of `token` in flight and raises the high-water marks it reaches.
    pub(crate) fn start(shared: &Shared, token: &str) -> Self {
        let label = token_label(token);
        if let Ok(mut inner) = shared.lock() {
            inner.downloads_in_flight += 1;
            let all = inner.downloads_in_flight;
            inner.stats.max_downloads_in_flight = inner.stats.max_downloads_in_flight.max(all);
            let own = inner
                .token_downloads_in_flight
                .entry(label.clone())
                .or_default();
            *own += 1;
            let own = *own;
            let stats = inner.stats.per_token.entry(label.clone()).or_default();
            stats.max_downloads_in_flight = stats.max_downloads_in_flight.max(own);
        }
        Self {
            shared: Arc::clone(shared),
            label,
        }
    }
}

impl Drop for DownloadGuard {
    fn drop(&mut self) {
        // A poisoned lock means a route panicked; the counts are moot then. Saturating: a guard
        // whose start found the lock poisoned never counted itself.
        if let Ok(mut inner) = self.shared.lock() {
            inner.downloads_in_flight = inner.downloads_in_flight.saturating_sub(1);
            if let Some(own) = inner.token_downloads_in_flight.get_mut(&self.label) {
                *own = own.saturating_sub(1);
                if *own == 0 {
                    inner.token_downloads_in_flight.remove(&self.label);
                }
            }
        }
    }
}

/// A 200 file answer with ONC's headers (unquoted `filename=`, as ONC sends and as the official
/// client's `split("filename=")` needs), or a reset/truncated one when a fault says so; a
/// download of `token` in flight until its body is sent or dropped. An answer to a HEAD
/// (`head`) names the file and sends nothing, so it is counted as a head, not as a file served.
pub(crate) fn file_response(
    shared: &Shared,
    token: &str,
    name: &str,
    bytes: Arc<Vec<u8>>,
    fault: Fault,
    head: bool,
) -> Response {
    let length = bytes.len();
    let mut throttle = 0;
    if head {
        if let Ok(mut inner) = shared.lock() {
            inner.stats.files_named_by_head += 1;
        }
        let mut response = Response::new(Body::empty());
        *response.headers_mut() = file_headers(name, length);
        return response;
    }
    if let Ok(mut inner) = shared.lock() {
        inner.stats.files_served += 1;
        inner.stats.bytes_served += length as u64;
        if fault == Fault::None && !inner.served_names.insert(name.to_owned()) {
            inner.stats.files_served_again += 1;
            inner.stats.names_served_again.push(name.to_owned());
        }
        throttle = inner.config.faults.throttle_bytes_per_s;
    }
    let headers = file_headers(name, length);
    let body = match fault {
        Fault::Reset | Fault::Truncate => {
            // Send part of the body, then fail the stream: hyper closes the connection before
            // Content-Length bytes arrived, as a reset or a cut proxy would.
            let cut = if fault == Fault::Reset {
                length.min(64)
            } else {
                length * 3 / 4
            };
            let head = bytes.get(..cut).map(<[u8]>::to_vec).unwrap_or_default();
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
                Ok(head),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "simulated fault",
                )),
            ];
            Body::from_stream(futures_util::stream::iter(chunks))
        }
        _ if throttle > 0 => throttled_body(bytes, throttle),
        _ => Body::from(bytes.as_ref().clone()),
    };
    // Started after the stats lock above is released: the guard takes that lock itself.
    let guard = DownloadGuard::start(shared, token);
    let body = Body::from_stream(body.into_data_stream().map(move |chunk| {
        // The closure owns the guard so that it lives exactly as long as the body stream.
        let _in_flight = &guard;
        chunk
    }));
    let mut response = Response::new(body);
    *response.headers_mut() = headers;
    response
}

/// ONC's headers of a file answer: its type, its name and its length.
fn file_headers(name: &str, length: usize) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename={name}")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers
}

/// `bytes` sent in chunks of a tenth of a second's worth, sleeping between them, so the whole
/// body takes about `length / bytes_per_s` seconds.
fn throttled_body(bytes: Arc<Vec<u8>>, bytes_per_s: u64) -> Body {
    let chunk = usize::try_from(bytes_per_s / 10)
        .unwrap_or(usize::MAX)
        .max(1);
    let stream = futures_util::stream::unfold(0usize, move |offset| {
        let bytes = Arc::clone(&bytes);
        async move {
            let end = offset.saturating_add(chunk).min(bytes.len());
            let piece = bytes.get(offset..end)?.to_vec();
            if piece.is_empty() {
                return None;
            }
            if offset > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Some((Ok::<_, std::io::Error>(piece), end))
        }
    });
    Body::from_stream(stream)
}
