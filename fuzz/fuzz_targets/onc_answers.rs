//! ONC answers fuzz target: any bytes, as the body (or header) of an ONC answer → every parser
//! the client applies to one must return a value or an error, never panic: JSON bodies
//! (`parse_json_body`) as a product request's estimate, runs (`run`, `cancel`, `restart`), an
//! archive listing page with its `next.parameters`, deployments, the `dataProducts` list; raw
//! bodies as a 202 download status and ONC's error envelope; the text as a `Content-Disposition`
//! header and as an `estimatedProcessingTime`. A name from the header, once sanitised, must be
//! safe to join to the output folder (one plain component, never `.`, `..` or a temp name).

#![no_main]

use libfuzzer_sys::fuzz_target;
use onc_pipe::onc::TEMP_PREFIX;
use onc_pipe::onc::api::{
    DownloadStatus, ErrorEnvelope, ProductRequest, data_product_codes, parse_archive_page,
    parse_json_body, parse_processing_time, parse_runs,
};
use onc_pipe::onc::discovery::parse_deployments;
use onc_pipe::onc::download::{filename_from_content_disposition, sanitize_filename};

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<DownloadStatus>(data);
    let _ = serde_json::from_slice::<ErrorEnvelope>(data);
    let text = String::from_utf8_lossy(data);
    if let Some(name) = filename_from_content_disposition(&text)
        && let Some(safe) = sanitize_filename(&name)
    {
        assert!(!safe.is_empty());
        assert!(!safe.contains(['/', '\\']), "{safe:?}");
        assert!(!safe.chars().any(char::is_control), "{safe:?}");
        assert!(safe != "." && safe != ".." && !safe.starts_with(TEMP_PREFIX));
    }
    let _ = parse_processing_time(&text);
    let Ok(value) = parse_json_body(data) else {
        return;
    };
    if let Ok(request) = serde_json::from_value::<ProductRequest>(value.clone()) {
        let _ = request.processing_time();
    }
    let _ = parse_runs(value.clone());
    if let Ok((entries, _next)) = parse_archive_page(value.clone()) {
        for entry in entries {
            let _ = (entry.start_ms(), entry.end_ms(), entry.file_size());
        }
    }
    let _ = parse_deployments(value.clone());
    let _ = data_product_codes(&value);
});
