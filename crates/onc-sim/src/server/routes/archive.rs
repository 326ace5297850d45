//! Archived files (`archivefile`): listings by device or by location, and file download.
//!
//! Input: `deviceCode` (or `locationCode` with `deviceCategoryCode`), `dateFrom`/`dateTo`,
//! `rowLimit`, `fileExtension`, `returnOptions`; `filename` for a download. Output: pages of file
//! names (or, with `returnOptions=all`, file records) with `next.parameters` for the next page;
//! the FLAC or WAV file itself (archived spectrograms: see `spect_files`). Only files recorded
//! while their device was deployed exist; a location lists the files of whichever device was
//! deployed there at each moment. Errors: ONC's envelopes (128 missing, 127 invalid or unknown
//! device/location code, 127 for a location window outside every deployment, 96 file not
//! found); 500 if a file cannot be generated.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::DateTime;
use serde_json::{Value, json};

use crate::archive::{self, ArchiveFile};
use crate::faults::Fault;
use crate::flac;
use crate::server::files::{file_response, generate};
use crate::server::protocol::{
    date_range, device_profile, json_response, missing, onc_error, sample_rate, token,
};
use crate::server::routes::spect_files::{spect_download, spect_listed, spect_listing};
use crate::server::sources::{Source, data_source, location_source, no_deployment};
use crate::server::state::Shared;
use onc_format::stamp::{onc_date, parse_archive_name};

pub(crate) fn archive_list(
    shared: &Shared,
    endpoint: &str,
    params: &BTreeMap<String, String>,
) -> Response {
    let source = if endpoint == "archivefile/device" {
        data_source(params, false)
    } else {
        match params.get("locationCode") {
            Some(location) => location_source(params, location),
            None => Err(missing("locationCode")),
        }
    };
    let source = match source {
        Ok(source) => source,
        Err(response) => return response,
    };
    let (from, to) = match date_range(params) {
        Ok(range) => range,
        Err(response) => return response,
    };
    // No data: an empty listing by device, ONC's 400/127 by location (shared/onc-api.md §3).
    let by_location = matches!(source, Source::Location { .. });
    if by_location && source.deployments(from, to).is_empty() {
        return no_deployment(&source, from, to);
    }
    let default_limit = shared
        .lock()
        .map(|inner| inner.config.row_limit)
        .unwrap_or(500);
    let row_limit = params
        .get("rowLimit")
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&limit| limit > 0)
        .unwrap_or(default_limit);
    let extension = params.get("fileExtension").cloned();
    let extensions: Vec<String> = match &extension {
        Some(extension) => vec![extension.clone()],
        None => vec!["flac".into(), "wav".into()],
    };
    // Pages hold whole source files (both extensions of a file stay together), `rowLimit`
    // entries at most, and at least one file so a listing always advances.
    let mut sources = source.files(sample_rate(shared), from, to, true);
    let files_per_page = (row_limit / extensions.len().max(1)).max(1);
    let next = if sources.len() > files_per_page {
        let next_from = sources.get(files_per_page).map_or(to, |file| file.start_ms);
        sources.truncate(files_per_page);
        let mut next_params: BTreeMap<String, String> = params
            .iter()
            .filter(|(name, _)| name.as_str() != "token" && name.as_str() != "method")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let next_date = DateTime::from_timestamp_millis(next_from).unwrap_or_default();
        next_params.insert("dateFrom".into(), onc_date(next_date));
        next_params.insert("rowLimit".into(), row_limit.to_string());
        json!({ "parameters": next_params, "url": format!("https://data.oceannetworks.ca/api/{endpoint}") })
    } else {
        Value::Null
    };
    let files: Vec<(ArchiveFile, String)> = sources
        .into_iter()
        .flat_map(|file| {
            extensions
                .iter()
                .map(move |ext| (file.clone(), ext.clone()))
        })
        .filter(|(file, ext)| ext == "flac" || ext == "wav" || spect_listed(file, ext))
        .collect();
    let all = params.get("returnOptions").is_some_and(|v| v == "all");
    let rows: Vec<Value> = files
        .iter()
        .map(|(file, ext)| {
            let spect = spect_listing(file, ext);
            let name = spect
                .as_ref()
                .map_or_else(|| file.filename(ext), |(name, _)| name.clone());
            if all {
                let start = DateTime::from_timestamp_millis(file.start_ms).unwrap_or_default();
                let end = DateTime::from_timestamp_millis(file.end_ms()).unwrap_or_default();
                let size = if let Some((_, size)) = spect {
                    size
                } else {
                    listed_size(file, ext)
                };
                json!({
                    "filename": name,
                    "dateFrom": onc_date(start),
                    "dateTo": onc_date(end),
                    "archiveLocation": "simulated",
                    "compression": null,
                    "deviceCode": file.device,
                    "fileSize": size,
                    "uncompressedFileSize": size,
                    "modifyDate": onc_date(end),
                    "path": format!("{}/{}", file.device, start.format("%Y/%m/%d")),
                })
            } else {
                json!(name)
            }
        })
        .collect();
    json_response(StatusCode::OK, json!({ "files": rows, "next": next }))
}

/// The size a listing (and `dataAvailability`) gives for an archived file: a 24-bit WAV's
/// exactly, a FLAC's as about half of it (the generated FLAC is not made to list it).
pub(crate) fn listed_size(file: &ArchiveFile, extension: &str) -> u64 {
    if extension == "wav" {
        44 + file.samples * 3
    } else {
        file.samples * 3 / 2
    }
}

pub(crate) async fn archive_download(
    shared: &Shared,
    params: &BTreeMap<String, String>,
    fault: Fault,
    head: bool,
) -> Response {
    let Some(filename) = params.get("filename").filter(|name| !name.is_empty()) else {
        return onc_error(
            StatusCode::BAD_REQUEST,
            128,
            "Missing parameter: filename",
            "filename",
        );
    };
    if let Some(response) = spect_download(shared, params, fault, head).await {
        return response;
    }
    let unknown = || {
        onc_error(
            StatusCode::BAD_REQUEST,
            96,
            &format!("File not found: {filename}"),
            "filename",
        )
    };
    let Some(name) = parse_archive_name(filename) else {
        return unknown();
    };
    let extension = name.extension.to_owned();
    let Some(profile) = device_profile(shared, name.device) else {
        return unknown();
    };
    let Some(file) = archive::deployed_file_by_name(&profile, filename) else {
        return unknown();
    };
    let bytes = generate(shared, filename, move || {
        if extension == "wav" {
            Ok(flac::wav_bytes(&file))
        } else {
            flac::flac_bytes(&file)
        }
    })
    .await;
    match bytes {
        Ok(bytes) => file_response(shared, token(params), filename, bytes, fault, head),
        Err(message) => (StatusCode::INTERNAL_SERVER_ERROR, message).into_response(),
    }
}
