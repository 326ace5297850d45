//! Archived spectrogram files (`archivefile`, extensions `mat` and `png`): what a listing shows
//! for them, and their download.
//!
//! Input: an [`ArchiveFile`] and the extension listed; or a `<device>_<stamp>Z-spect.<ext>`
//! file name to download. Output: the listed name and size; the MAT file (the HSD plotRes
//! product's `SpectData`/`Meta`, values from the oracle) or PNG picture (the HSD `png`
//! product's). Errors: ONC's 400/96 for a name no device file stands for (also on devices
//! without archived spectrograms, and outside deployments); 500 if a file cannot be generated. See
//! [`crate::spect_files`] for the layout and its choices.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::archive::ArchiveFile;
use crate::faults::Fault;
use crate::server::files::{file_response, generate};
use crate::server::protocol::{device_profile, onc_error, token};
use crate::server::state::Shared;
use crate::spect_files::{
    ARCHIVED_MAT_DOWNSAMPLE, has_spect_file, is_spect_extension, listed_size, parse_spect_name,
    spect_file_by_name, spect_filename,
};
use crate::{mat, picture};

/// Whether a listing for `extension` shows a spectrogram file for `file`.
pub(crate) fn spect_listed(file: &ArchiveFile, extension: &str) -> bool {
    is_spect_extension(extension) && has_spect_file(file)
}

/// The listed name and `fileSize` of the spectrogram file of `file`, if `extension` is one of
/// the spectrogram files' (else `None`: an audio file, named and sized by the caller).
pub(crate) fn spect_listing(file: &ArchiveFile, extension: &str) -> Option<(String, u64)> {
    is_spect_extension(extension).then(|| {
        (
            spect_filename(file, extension),
            listed_size(file, extension),
        )
    })
}

/// The download of a spectrogram file, or `None` when `params`' `filename` does not have the
/// spectrogram files' form (an audio name: the caller answers).
pub(crate) async fn spect_download(
    shared: &Shared,
    params: &BTreeMap<String, String>,
    fault: Fault,
    head: bool,
) -> Option<Response> {
    let filename = params.get("filename")?;
    let name = parse_spect_name(filename)?;
    let unknown = || {
        onc_error(
            StatusCode::BAD_REQUEST,
            96,
            &format!("File not found: {filename}"),
            "filename",
        )
    };
    let Some(profile) = device_profile(shared, name.device) else {
        return Some(unknown());
    };
    let Some(file) = spect_file_by_name(&profile, filename) else {
        return Some(unknown());
    };
    let is_mat = name.extension == "mat";
    let bytes = generate(shared, filename, move || {
        if is_mat {
            mat::hsd_mat_bytes(&file, ARCHIVED_MAT_DOWNSAMPLE, None)
        } else {
            picture::hsd_png_bytes(&file)
        }
    })
    .await;
    Some(match bytes {
        Ok(bytes) => file_response(shared, token(params), filename, bytes, fault, head),
        Err(message) => (StatusCode::INTERNAL_SERVER_ERROR, message).into_response(),
    })
}
