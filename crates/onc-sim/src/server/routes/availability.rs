//! `dataAvailability/dataproducts`: which archived products exist for a device or location in a
//! window, as ONC's official client 2.6.0 calls it (`getDataAvailability`).
//!
//! Input: `deviceCode`, or `locationCode` (with an optional `deviceCategoryCode`), optional
//! `dateFrom`/`dateTo` (default: every deployment, up to now), `dataProductCode`, `extension`.
//! Output: `{"availableDataProducts": [...], "messages": [], "next": null, "queryUrl": str}`, one
//! entry per device and archived product/extension (`AD` `flac` and `wav`, the simulator's
//! archive) with at least one file recorded within a deployment in the window: `dateFrom`/`dateTo`
//! (first file start, last file end), `fileCount`, `totalFileSize` (the archive listing's sizes),
//! `totalUncompressedFileSize` and ONC's file-coverage figures. Valid filters matching nothing:
//! 200 with an empty list. Errors: ONC's 400/127 naming `deviceCode` or `locationCode` for an
//! unknown code, or a date that does not parse.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use serde_json::{Value, json};

use crate::archive::{self, ArchiveFile};
use crate::server::protocol::{json_response, sample_rate};
use crate::server::routes::archive::listed_size;
use crate::server::routes::discovery::matching_deployments;
use crate::server::sources::onc_date;
use crate::server::state::Shared;
use onc_format::grid::FILE_MS;

/// The archived products the simulator holds: (dataProductCode, extension).
const ARCHIVED: [(&str, &str); 2] = [("AD", "flac"), ("AD", "wav")];

pub(crate) fn data_availability(shared: &Shared, params: &BTreeMap<String, String>) -> Response {
    let deployments = match matching_deployments(params) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let date = |name: &str| {
        params
            .get(name)
            .and_then(|text| onc_format::stamp::parse_onc_date(text))
    };
    let from = date("dateFrom").unwrap_or(i64::MIN);
    // Nothing is recorded after now.
    let to = date("dateTo")
        .unwrap_or(i64::MAX)
        .min(Utc::now().timestamp_millis());
    let rate = sample_rate(shared);
    // Files per device, all its matching deployments together, in start order.
    let mut by_device: BTreeMap<&str, Vec<ArchiveFile>> = BTreeMap::new();
    for d in deployments {
        by_device
            .entry(d.device)
            .or_default()
            .extend(archive::deployment_files(d, rate, from, to, true));
    }
    let mut entries = Vec::new();
    for (device, files) in &by_device {
        let (Some(first), Some(last)) = (files.first(), files.last()) else {
            continue;
        };
        for (product, extension) in ARCHIVED {
            let wanted = |name: &str, value: &str| params.get(name).is_none_or(|w| w == value);
            if !wanted("dataProductCode", product) || !wanted("extension", extension) {
                continue;
            }
            entries.push(entry(device, product, extension, files, first, last));
        }
    }
    json_response(
        StatusCode::OK,
        json!({
            "availableDataProducts": entries,
            "messages": [],
            "next": null,
            "queryUrl": "https://data.oceannetworks.ca/api/dataAvailability/dataproducts"
        }),
    )
}

/// One availability entry: counts, sizes and coverage (a file's duration over ONC's nominal
/// five minutes, at most 1) of `files`.
fn entry(
    device: &str,
    product: &str,
    extension: &str,
    files: &[ArchiveFile],
    first: &ArchiveFile,
    last: &ArchiveFile,
) -> Value {
    let coverage = |f: &ArchiveFile| (f.duration_ms() as f64 / FILE_MS as f64).min(1.0);
    let total: u64 = files.iter().map(|f| listed_size(f, extension)).sum();
    let uncompressed: u64 = files.iter().map(|f| listed_size(f, "wav")).sum();
    let mean = files.iter().map(coverage).sum::<f64>() / files.len().max(1) as f64;
    let min = files
        .iter()
        .min_by(|a, b| coverage(a).total_cmp(&coverage(b)))
        .unwrap_or(first);
    let max = files
        .iter()
        .max_by(|a, b| coverage(a).total_cmp(&coverage(b)))
        .unwrap_or(first);
    json!({
        "dataProductCode": product,
        "extension": extension,
        "deviceCode": device,
        "dateFrom": onc_date(first.start_ms),
        "dateTo": onc_date(last.end_ms()),
        "fileCount": files.len(),
        "totalFileSize": total,
        "totalUncompressedFileSize": uncompressed,
        "averageFileCoverage": (mean * 1e4).round() / 1e4,
        "minFileCoverage": coverage(min),
        "minFileCoverageDate": onc_date(min.start_ms),
        "maxFileCoverage": coverage(max),
        "maxFileCoverageDate": onc_date(max.start_ms),
    })
}
