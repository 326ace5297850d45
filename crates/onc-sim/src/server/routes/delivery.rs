//! Data product delivery (`dataProductDelivery`): request, run, status, cancel, restart and
//! download.
//!
//! Input: the query parameters of each call (`deviceCode` or `locationCode` with
//! `deviceCategoryCode`, `dataProductCode`, `extension`,
//! `dateFrom`/`dateTo`, `dpo_*` options; then `dpRequestId`, `dpRunId`, `index`). Output: ONC's
//! JSON answers (request id and estimates, run ids and states, progress messages) and the
//! product files, generated on demand. Errors: ONC's envelopes for missing, invalid or unknown
//! parameters (unknown device or location codes: 127 naming the parameter); 400/127 at `request`
//! for a window outside every deployment of the source; a cancelled run's bare 400, 410 past
//! retention, 204 for a run with no files (a window within a deployment that falls in an outage).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::faults::Fault;
use crate::runs::RunState;
use crate::server::files::{file_response, generate};
use crate::server::protocol::{date_range, json_response, onc_error, sample_rate, token};
use crate::server::sources::{data_source, no_deployment};
use crate::server::state::{Inner, Output, RequestRecord, Shared};
use crate::{flac, mat, oracle, picture};
use onc_format::options::{self, OptionProblem};

pub(crate) fn product_request(shared: &Shared, params: &BTreeMap<String, String>) -> Response {
    let source = match data_source(params, true) {
        Ok(source) => source,
        Err(response) => return response,
    };
    let Some(product) = params.get("dataProductCode") else {
        return onc_error(
            StatusCode::BAD_REQUEST,
            128,
            "Missing parameter: dataProductCode",
            "dataProductCode",
        );
    };
    let Some(extensions) = options::product_extensions(product) else {
        return onc_error(
            StatusCode::BAD_REQUEST,
            127,
            &format!("Invalid dataProductCode: {product}"),
            "dataProductCode",
        );
    };
    let Some(extension) = params.get("extension") else {
        return onc_error(
            StatusCode::BAD_REQUEST,
            128,
            "Missing parameter: extension",
            "extension",
        );
    };
    if !extensions.contains(&extension.as_str()) {
        return onc_error(
            StatusCode::BAD_REQUEST,
            127,
            &format!("Invalid extension for {product}: {extension}"),
            "extension",
        );
    }
    let (from, to) = match date_range(params) {
        Ok(range) => range,
        Err(response) => return response,
    };
    let mut dpo = BTreeMap::new();
    let mut messages = Vec::new();
    for (name, value) in params.iter().filter(|(name, _)| name.starts_with("dpo_")) {
        match options::check_option(product, name, value) {
            None => {}
            Some(OptionProblem::UnknownName) | Some(OptionProblem::NotAnOption) => {
                return onc_error(
                    StatusCode::BAD_REQUEST,
                    129,
                    &format!("Invalid parameter name: {name}"),
                    name,
                );
            }
            Some(OptionProblem::BadValue { allowed }) => {
                return onc_error(
                    StatusCode::BAD_REQUEST,
                    127,
                    &format!("Invalid value {value} for {name}: expected {allowed}"),
                    name,
                );
            }
        }
        dpo.insert(name.clone(), value.clone());
    }
    let downsample: u8 = dpo
        .get("dpo_spectralDataDownsample")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            messages.push("dpo_spectralDataDownsample not given: using the default (1)".to_owned());
            1
        });
    let diversion = dpo
        .get("dpo_hydrophoneDataDiversionMode")
        .filter(|mode| *mode == "LPF" || *mode == "HPF")
        .cloned();
    if source.deployments(from, to).is_empty() {
        return no_deployment(&source, from, to);
    }
    let files = source.files(sample_rate(shared), from, to, false);
    let outputs: Vec<Output> = files
        .into_iter()
        .map(|file| match (product.as_str(), extension.as_str()) {
            ("HSD", "mat") => Output::Mat {
                file,
                downsample,
                diversion: diversion.clone(),
            },
            ("HSD", _) => Output::Png { file },
            (_, extension) => Output::Audio {
                file,
                extension: extension.to_owned(),
            },
        })
        .collect();
    let on_demand = match (product.as_str(), extension.as_str()) {
        ("HSD", "mat") => downsample != 1,
        ("HSD", _) => true,
        _ => dpo
            .get("dpo_audioFormatConversion")
            .is_some_and(|v| v == "1"),
    };
    let Ok(mut inner) = shared.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let per_file = if on_demand {
        inner.config.on_demand_file_s
    } else {
        inner.config.archived_file_s
    };
    let work_s = inner.config.run_overhead_s + per_file * outputs.len() as f64;
    let token = params.get("token").cloned().unwrap_or_default();
    let identity = format!(
        "{}|{from}|{to}|{product}|{extension}|{dpo:?}",
        source.label()
    );
    let submission = inner.stats.submissions;
    let fails = inner.config.faults.run_fails(submission);
    let expired_early = inner.config.faults.expires(submission);
    inner.stats.submissions += 1;
    let now = inner.now();
    let previous = inner.last_submission.insert(token.clone(), now);
    let own = inner.token_stats(&token);
    own.submissions += 1;
    if let Some(previous) = previous {
        // The gap is one token's: two people's pipelines submitting at once are each polite.
        let gap = now - previous;
        own.min_submission_gap_s =
            Some(own.min_submission_gap_s.map_or(gap, |least| least.min(gap)));
        inner.stats.min_submission_gap_s = Some(
            inner
                .stats
                .min_submission_gap_s
                .map_or(gap, |least| least.min(gap)),
        );
    }
    *inner.seen_submissions.entry(identity).or_default() += 1;
    inner.stats.duplicate_submissions = inner
        .seen_submissions
        .values()
        .map(|count| count.saturating_sub(1))
        .sum();
    let id = inner.next_request_id;
    inner.next_request_id += 1;
    let estimated_bytes: u64 = outputs.iter().map(estimated_size).sum();
    inner.requests.insert(
        id,
        RequestRecord {
            token,
            outputs,
            run_id: None,
            run_index: None,
            fails,
            work_s,
            submission,
            restarts: 0,
            expired_early,
        },
    );
    // ONC states its estimate in whole units; scaled so clients poll at the simulated pace.
    let estimate_s = work_s * inner.config.time_scale;
    json_response(
        StatusCode::OK,
        json!({
            "dpRequestId": id,
            "estimatedFileSize": human_size(estimated_bytes),
            "estimatedProcessingTime": human_duration(estimate_s),
            "messages": messages,
            "citations": [{
                "citation": "Ocean Networks Canada Society. 2024. Hydrophone Data (simulated).",
                "doi": "10.80242/SIMULATED",
                "landingPageUrl": "https://data.oceannetworks.ca/",
                "queryPid": id
            }],
            "disclaimer": "Simulated data from the onc-pipe built-in ONC simulator.",
            "queryPids": [id],
            "queryURL": "https://data.oceannetworks.ca/"
        }),
    )
}

/// The size of the file an output becomes, as the simulator writes it: a MAT file's PSD cells
/// (doubles at 1e-5 dB) compress to about 4.7 bytes each, plus its time and frequency vectors
/// and a few kB of structure (measured: a 5-minute plotRes file at 64 kHz is about 4.0 MB, as
/// ONC estimates); audio as the archive listing sizes it.
fn estimated_size(output: &Output) -> u64 {
    match output {
        Output::Mat {
            file, downsample, ..
        } => {
            let layout = oracle::spectrogram_layout(file, *downsample);
            let (nfreq, ncols) = (
                layout.frequencies_hz.len() as u64,
                layout.column_times_ms.len() as u64,
            );
            nfreq * ncols * 47 / 10 + (nfreq + ncols) * 8 + 2_000
        }
        Output::Png { .. } => 20_000,
        Output::Audio { file, extension } if extension == "wav" => 44 + file.samples * 3,
        Output::Audio { file, .. } => file.samples * 3 / 2,
    }
}

/// ONC's form of a size estimate: whole kB below 1 MB (at least 1), whole MB below 1 GB, else
/// GB with one decimal (`151 kB`, `48 MB`, `1.2 GB`); decimal units, rounded to nearest.
fn human_size(bytes: u64) -> String {
    if bytes >= 1_000_000_000 {
        format!("{:.1} GB", bytes as f64 / 1e9)
    } else if bytes >= 1_000_000 {
        format!("{} MB", (bytes + 500_000) / 1_000_000)
    } else {
        format!("{} kB", ((bytes + 500) / 1_000).max(1))
    }
}

/// ONC's form of a time estimate, `<int> s|min|hour`: seconds below two minutes, minutes below
/// two hours, else hours, rounded up.
fn human_duration(seconds: f64) -> String {
    let s = seconds.ceil().max(1.0) as u64;
    if s < 120 {
        format!("{s} s")
    } else if s < 7_200 {
        format!("{} min", s.div_ceil(60))
    } else {
        format!("{} hour", s.div_ceil(3_600))
    }
}

fn request_id(params: &BTreeMap<String, String>) -> Result<u64, Response> {
    let Some(text) = params.get("dpRequestId") else {
        return Err(onc_error(
            StatusCode::BAD_REQUEST,
            128,
            "Missing parameter: dpRequestId",
            "dpRequestId",
        ));
    };
    text.parse().map_err(|_| {
        onc_error(
            StatusCode::BAD_REQUEST,
            127,
            &format!("Invalid dpRequestId: {text}"),
            "dpRequestId",
        )
    })
}

/// The request named by `dpRequestId`, with the simulator locked: parses the id and answers
/// ONC's 400s (128 missing, 127 invalid or unknown) itself.
fn lookup_request<'a>(
    shared: &'a Shared,
    params: &BTreeMap<String, String>,
) -> Result<(u64, RequestRecord, f64, std::sync::MutexGuard<'a, Inner>), Response> {
    let id = request_id(params)?;
    let inner = shared
        .lock()
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())?;
    let now = inner.now();
    let Some(record) = inner.requests.get(&id).cloned() else {
        return Err(onc_error(
            StatusCode::BAD_REQUEST,
            127,
            &format!("Invalid dpRequestId: {id}"),
            "dpRequestId",
        ));
    };
    Ok((id, record, now, inner))
}

fn run_status_text(state: &RunState) -> &'static str {
    match state {
        RunState::Queued => "queued",
        RunState::Running { .. } => "data product running",
        RunState::Complete => "complete",
        RunState::Failed { .. } => "error",
        RunState::Cancelled => "cancelled",
    }
}

pub(crate) fn product_run(shared: &Shared, params: &BTreeMap<String, String>) -> Response {
    let (id, record, now, mut inner) = match lookup_request(shared, params) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (run_id, index) = match (record.run_id, record.run_index) {
        (Some(run_id), Some(index)) => (run_id, index),
        _ => {
            let index = inner
                .model
                .submit(&record.token, now, record.work_s, record.fails);
            let run_id = inner.next_run_id;
            inner.next_run_id += 1;
            inner.stats.runs += 1;
            inner.run_to_request.insert(run_id, id);
            if let Some(stored) = inner.requests.get_mut(&id) {
                stored.run_id = Some(run_id);
                stored.run_index = Some(index);
            }
            inner.note_runs_in_flight(&record.token, now);
            (run_id, index)
        }
    };
    let state = inner.model.state(index, now).unwrap_or(RunState::Queued);
    let file_count = if state == RunState::Complete {
        record.outputs.len()
    } else {
        0
    };
    let status = if matches!(
        state,
        RunState::Complete | RunState::Failed { .. } | RunState::Cancelled
    ) {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    json_response(
        status,
        json!([{ "dpRunId": run_id, "fileCount": file_count, "status": run_status_text(&state) }]),
    )
}

pub(crate) fn product_status(shared: &Shared, params: &BTreeMap<String, String>) -> Response {
    let (id, record, now, inner) = match lookup_request(shared, params) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let state = record
        .run_index
        .and_then(|index| inner.model.state(index, now));
    let header = if state.is_some() { "COMPLETED" } else { "OPEN" };
    json_response(
        StatusCode::OK,
        json!({
            "dpRequestId": id,
            "searchHdrStatus": header,
            "status": state.as_ref().map(run_status_text).unwrap_or("not started"),
            "fileCount": if state == Some(RunState::Complete) { record.outputs.len() } else { 0 },
        }),
    )
}

pub(crate) fn product_cancel(shared: &Shared, params: &BTreeMap<String, String>) -> Response {
    let (_, record, now, mut inner) = match lookup_request(shared, params) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (Some(run_id), Some(index)) = (record.run_id, record.run_index) else {
        return json_response(StatusCode::OK, json!([]));
    };
    inner.model.cancel(index, now);
    let state = inner.model.state(index, now).unwrap_or(RunState::Cancelled);
    json_response(
        StatusCode::OK,
        json!([{ "dpRunId": run_id, "status": run_status_text(&state) }]),
    )
}

pub(crate) fn product_restart(shared: &Shared, params: &BTreeMap<String, String>) -> Response {
    let (id, record, now, mut inner) = match lookup_request(shared, params) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (Some(run_id), Some(index)) = (record.run_id, record.run_index) else {
        return onc_error(
            StatusCode::BAD_REQUEST,
            127,
            &format!("dpRequestId {id} has no run to restart"),
            "dpRequestId",
        );
    };
    // Each attempt draws its own failure: a restarted run may succeed, or fail again.
    let attempt = record.restarts + 1;
    let fails = inner
        .config
        .faults
        .attempt_fails(record.submission, attempt);
    if inner.model.restart(index, now, fails) {
        inner.stats.restarts += 1;
        if let Some(stored) = inner.requests.get_mut(&id) {
            stored.restarts = attempt;
            stored.fails = fails;
        }
        inner.note_runs_in_flight(&record.token, now);
    }
    let state = inner.model.state(index, now).unwrap_or(RunState::Queued);
    json_response(
        StatusCode::OK,
        json!([{ "dpRunId": run_id, "status": run_status_text(&state) }]),
    )
}

/// The 202 message a download shows while its run is not done, following ONC's real sequence.
fn progress_message(state: &RunState, outputs: &[Output]) -> (String, String) {
    let first = outputs.first().map(Output::filename).unwrap_or_default();
    match state {
        RunState::Queued => ("queued".into(), "Queued".into()),
        RunState::Running { progress } => {
            let message = if *progress < 0.1 {
                "Running".to_owned()
            } else if *progress < 0.2 {
                "Running... getting data for time segment 1 of 1.".to_owned()
            } else if *progress < 0.8 {
                format!(
                    "Running... processing hydrophone spectral data, {:.1}% complete for deployment 1 of 1. (0.0% was pre-generated.)",
                    progress * 100.0
                )
            } else if *progress < 0.9 {
                "Running... writing data products, time range 1 of 1.".to_owned()
            } else if *progress < 0.95 {
                format!(
                    "Data product generation complete, preparing download link and metadata report... file ({first}) complete, waiting on the file system to synchronize"
                )
            } else {
                format!("Transferring ({first}) to the FTP server")
            };
            ("running".into(), message)
        }
        RunState::Failed { message } => ("error".into(), message.clone()),
        _ => ("running".into(), "Running".into()),
    }
}

pub(crate) async fn product_download(
    shared: &Shared,
    params: &BTreeMap<String, String>,
    fault: Fault,
    head: bool,
) -> Response {
    let Some(run_text) = params.get("dpRunId") else {
        return onc_error(
            StatusCode::BAD_REQUEST,
            128,
            "Missing parameter: dpRunId",
            "dpRunId",
        );
    };
    let Ok(run_id) = run_text.parse::<u64>() else {
        return onc_error(
            StatusCode::BAD_REQUEST,
            127,
            &format!("Invalid dpRunId: {run_text}"),
            "dpRunId",
        );
    };
    let index_text = params.get("index").cloned().unwrap_or_else(|| "1".into());
    let (record, state, expired, syncing) = {
        let Ok(inner) = shared.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let Some(record) = inner
            .run_to_request
            .get(&run_id)
            .and_then(|id| inner.requests.get(id))
            .cloned()
        else {
            return onc_error(
                StatusCode::BAD_REQUEST,
                127,
                &format!("Invalid dpRunId: {run_id}"),
                "dpRunId",
            );
        };
        let now = inner.now();
        let index = record.run_index.unwrap_or(usize::MAX);
        let state = inner.model.state(index, now).unwrap_or(RunState::Queued);
        let since_finish = inner.model.finish_time(index).map(|finish| now - finish);
        let expired = since_finish.is_some_and(|since| since > inner.config.retention_s);
        let syncing = since_finish.is_some_and(|since| since < inner.config.sync_s);
        (record, state, expired, syncing)
    };
    match &state {
        RunState::Cancelled => {
            // ONC's wart: a cancelled run answers 400 without an `errors` key.
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"message": "The data product request was cancelled"}),
            );
        }
        RunState::Complete if syncing => {
            let first = record
                .outputs
                .first()
                .map(Output::filename)
                .unwrap_or_default();
            return json_response(
                StatusCode::ACCEPTED,
                json!({"status": "running", "message": format!("Search complete, waiting on the file system to synchronize ({first})")}),
            );
        }
        RunState::Complete => {}
        other => {
            let (status, message) = progress_message(other, &record.outputs);
            return json_response(
                StatusCode::ACCEPTED,
                json!({"status": status, "message": message}),
            );
        }
    }
    if expired || record.expired_early {
        return (StatusCode::GONE, "").into_response();
    }
    if record.outputs.is_empty() {
        return StatusCode::NO_CONTENT.into_response();
    }
    if index_text == "meta" {
        let name = record
            .outputs
            .first()
            .map(|o| {
                let filename = o.filename();
                let stem = filename
                    .rsplit_once('.')
                    .map_or(filename.clone(), |(s, _)| s.to_owned());
                let extension = filename
                    .rsplit_once('.')
                    .map_or("", |(_, e)| e)
                    .to_uppercase();
                format!("{stem}_{extension}_META.xml")
            })
            .unwrap_or_default();
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata><dpRunId>{run_id}</dpRunId><fileCount>{}</fileCount><source>onc-pipe simulator</source></metadata>\n",
            record.outputs.len()
        );
        return file_response(
            shared,
            token(params),
            &name,
            Arc::new(xml.into_bytes()),
            fault,
            head,
        );
    }
    let Ok(index) = index_text.parse::<usize>() else {
        return onc_error(
            StatusCode::BAD_REQUEST,
            127,
            &format!("Invalid index: {index_text}"),
            "index",
        );
    };
    let Some(output) = index
        .checked_sub(1)
        .and_then(|i| record.outputs.get(i))
        .cloned()
    else {
        return (StatusCode::NOT_FOUND, "").into_response();
    };
    let name = output.filename();
    match generate(shared, &name, move || match &output {
        Output::Mat {
            file,
            downsample,
            diversion,
        } => mat::hsd_mat_bytes(file, *downsample, diversion.as_deref()),
        Output::Png { file } => picture::hsd_png_bytes(file),
        Output::Audio { file, extension } if extension == "wav" => Ok(flac::wav_bytes(file)),
        Output::Audio { file, .. } => flac::flac_bytes(file),
    })
    .await
    {
        Ok(bytes) => file_response(shared, token(params), &name, bytes, fault, head),
        Err(message) => (StatusCode::INTERNAL_SERVER_ERROR, message).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_are_in_onc_forms() {
        assert_eq!(human_size(151_000), "151 kB");
        assert_eq!(human_size(12), "1 kB");
        assert_eq!(human_size(47_600_000), "48 MB");
        assert_eq!(human_size(1_234_000_000), "1.2 GB");
        assert_eq!(human_duration(0.2), "1 s");
        assert_eq!(human_duration(35.0), "35 s");
        assert_eq!(human_duration(118.5), "119 s");
        assert_eq!(human_duration(120.0), "2 min");
        assert_eq!(human_duration(121.0), "3 min");
        assert_eq!(human_duration(7_200.0), "2 hour");
    }

    /// The size estimate of a MAT output is within 2 % of the file the simulator writes.
    #[test]
    fn mat_size_estimates_match_the_files() {
        let file = crate::archive::ArchiveFile {
            device: "ICLISTENHF6324".into(),
            start_ms: 1_711_929_667_123,
            samples: 300 * 8_000,
            sample_rate: 8_000,
        };
        for (downsample, rate) in [(0, 8_000), (1, 8_000), (2, 8_000), (0, 64_000), (2, 64_000)] {
            let file = crate::archive::ArchiveFile {
                samples: 300 * u64::from(rate),
                sample_rate: rate,
                ..file.clone()
            };
            let output = Output::Mat {
                file: file.clone(),
                downsample,
                diversion: None,
            };
            let actual = mat::hsd_mat_bytes(&file, downsample, None).unwrap().len() as f64;

            let estimate = estimated_size(&output) as f64;
            assert!(
                (estimate / actual - 1.0).abs() < 0.02
                    || (downsample == 1 && (estimate - actual).abs() < 3_000.0),
                "downsample {downsample}: estimated {estimate}, wrote {actual}"
            );
        }
    }
}
