//! The data source of a request — `deviceCode`, or `locationCode` with `deviceCategoryCode` —
//! and the archived files it selects in a window, deployments respected.
//!
//! Input: a route's query parameters, then a window and the configured sample rate. Output: a
//! checked [`Source`], its deployments overlapping the window, and their files in start order
//! (at a location: the files of whichever device was deployed there at each moment, each named
//! by its own device code). Errors: ONC's envelopes, ready to answer: 127 naming `deviceCode` or
//! `locationCode` for a code the registry does not know, 128 for a missing parameter (a
//! location without `deviceCategoryCode`), 127 naming `deviceCategoryCode` for a category never
//! deployed at the location; [`no_deployment`] when the window misses every deployment.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;

use crate::archive::{self, ArchiveFile};
use crate::registry::{self, Deployment};
use crate::server::protocol::{missing, onc_error, unknown_code};

/// Where a request's data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    Device(String),
    Location { code: String, category: String },
}

impl Source {
    /// The source as ONC's messages and the duplicate-submission identity name it.
    pub(crate) fn label(&self) -> String {
        match self {
            Source::Device(code) => code.clone(),
            Source::Location { code, category } => format!("{code}/{category}"),
        }
    }

    /// Its deployments overlapping `[from_ms, to_ms)` (containing the instant when equal), in
    /// time order.
    pub(crate) fn deployments(&self, from_ms: i64, to_ms: i64) -> Vec<&'static Deployment> {
        let overlaps = |d: &&'static Deployment| {
            if from_ms == to_ms {
                d.begin_ms <= from_ms && from_ms < d.end_or_max()
            } else {
                d.overlap(from_ms, to_ms).is_some()
            }
        };
        let mut found: Vec<&'static Deployment> = match self {
            Source::Device(code) => registry::deployments_of_device(code)
                .filter(overlaps)
                .collect(),
            Source::Location { code, category } => registry::deployments_at(code, Some(category))
                .filter(overlaps)
                .collect(),
        };
        found.sort_by_key(|d| d.begin_ms);
        found
    }

    /// Archived files of its deployments in the window (overlapping it, or with `starting`,
    /// starting in it), in start order.
    pub(crate) fn files(
        &self,
        sample_rate: u32,
        from_ms: i64,
        to_ms: i64,
        starting: bool,
    ) -> Vec<ArchiveFile> {
        let mut files: Vec<ArchiveFile> = self
            .deployments(from_ms, to_ms)
            .into_iter()
            .flat_map(|d| archive::deployment_files(d, sample_rate, from_ms, to_ms, starting))
            .collect();
        files.sort_by_key(|f| f.start_ms);
        files
    }
}

/// Reads the data source: `deviceCode` when given (and `location_allowed` is irrelevant), else
/// `locationCode` + `deviceCategoryCode` when `location_allowed`. Neither: 128 on `deviceCode`.
pub(crate) fn data_source(
    params: &BTreeMap<String, String>,
    location_allowed: bool,
) -> Result<Source, Response> {
    if let Some(device) = params.get("deviceCode") {
        if !registry::is_known_device(device) {
            return Err(unknown_code("deviceCode", device));
        }
        return Ok(Source::Device(device.clone()));
    }
    match params.get("locationCode") {
        Some(location) if location_allowed => location_source(params, location),
        _ => Err(missing("deviceCode")),
    }
}

/// `locationCode` (known) with `deviceCategoryCode` (required, and deployed there at some time).
pub(crate) fn location_source(
    params: &BTreeMap<String, String>,
    location: &str,
) -> Result<Source, Response> {
    if registry::location(location).is_none() {
        return Err(unknown_code("locationCode", location));
    }
    let Some(category) = params.get("deviceCategoryCode") else {
        return Err(missing("deviceCategoryCode"));
    };
    if registry::deployments_at(location, Some(category))
        .next()
        .is_none()
    {
        return Err(onc_error(
            StatusCode::BAD_REQUEST,
            127,
            &format!("Invalid deviceCategoryCode: no {category} was ever deployed at {location}"),
            "deviceCategoryCode",
        ));
    }
    Ok(Source::Location {
        code: location.to_owned(),
        category: category.clone(),
    })
}

/// ONC's 400/127 for a window outside every deployment of the source, naming the dates and
/// listing the deployments that exist.
pub(crate) fn no_deployment(source: &Source, from_ms: i64, to_ms: i64) -> Response {
    let all = source.deployments(i64::MIN, i64::MAX);
    let spans: Vec<String> = all
        .iter()
        .map(|d| {
            format!(
                "{} at {} from {}{}",
                d.device,
                d.location,
                onc_date(d.begin_ms),
                d.end_ms.map_or_else(
                    || " (still deployed)".to_owned(),
                    |e| format!(" to {}", onc_date(e))
                )
            )
        })
        .collect();
    onc_error(
        StatusCode::BAD_REQUEST,
        127,
        &format!(
            "No deployment of {} in range {} to {}; deployments: {}",
            source.label(),
            onc_date(from_ms),
            onc_date(to_ms),
            spans.join("; ")
        ),
        "dateFrom,dateTo",
    )
}

/// ONC's date form in JSON answers: `2024-04-01T00:00:00.000Z`.
pub(crate) fn onc_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(onc_format::stamp::onc_date)
        .unwrap_or_default()
}
