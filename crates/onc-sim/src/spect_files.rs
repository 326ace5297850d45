//! The simulated archive's pre-generated spectrogram files: (device, archived source file) →
//! the `<device>_<yyyyMMddTHHmmss.SSS>Z-spect.mat` and `…Z-spect.png` files ONC archives beside
//! its audio, and their names read back.
//!
//! Input: a device code, an [`ArchiveFile`] and an extension; or a file name. Output: whether
//! the device has such files, their names (one start stamp, `-spect`, as ONC names them, e.g.
//! `ICLISTENHF1560_20181004T235903.000Z-spect.png`), the source file a name stands for, and an
//! approximate listed size. Plain data, no I/O; no errors (an unknown name is `None`).
//!
//! Choices where ONC's behaviour is unconfirmed, kept here: every simulated device has them
//! except those in [`WITHOUT_ARCHIVED_SPECTROGRAMS`] (so clients meet the "ONC lists no such
//! files for this device" answer, an empty listing), only while deployed (see [`registry`]);
//! they start when the device's audio files start (one per source file); the MAT file holds the same `SpectData`/`Meta` structs as the
//! HSD plotRes product of that source file (the server writes it with `mat::hsd_mat_bytes`, so
//! its values are the oracle's), the PNG is the HSD `png` product's picture.

use onc_format::stamp::{parse_archive_name, stamp_of_ms};

use crate::archive::{ArchiveFile, DeviceProfile, files_starting_in};
use crate::{oracle, registry};

/// Extensions of the archived spectrogram files: data (`mat`) and picture (`png`).
pub const SPECT_EXTENSIONS: [&str; 2] = ["mat", "png"];

/// What comes between the start stamp and the extension.
const SPECT_SUFFIX: &str = "-spect";

/// Simulated devices for which ONC archives no spectrogram files (their listings for `mat` and
/// `png` are empty): the hydrophone at Folger Pinnacle, the registry's device with a gap.
pub const WITHOUT_ARCHIVED_SPECTROGRAMS: [&str; 1] = ["ICLISTENHF1951"];

/// The resolution the archived MAT files are written at (`dpo_spectralDataDownsample` 2:
/// plot resolution, a column every 0.3 s).
pub const ARCHIVED_MAT_DOWNSAMPLE: u8 = 2;

/// Whether ONC archives spectrogram files for `device`.
pub fn has_archived_spectrograms(device: &str) -> bool {
    !WITHOUT_ARCHIVED_SPECTROGRAMS.contains(&device)
}

/// Whether ONC archives spectrogram files for this source file: its device has them and was
/// deployed when the file starts (ONC's pre-generated files come from deployed devices; a
/// device code the registry does not know has none).
pub fn has_spect_file(file: &ArchiveFile) -> bool {
    has_archived_spectrograms(&file.device) && registry::deployed_at(&file.device, file.start_ms)
}

/// Whether `extension` is one of the archived spectrogram files' ([`SPECT_EXTENSIONS`]).
pub fn is_spect_extension(extension: &str) -> bool {
    SPECT_EXTENSIONS.contains(&extension)
}

/// `<device>_<yyyyMMddTHHmmss.SSS>Z-spect.<extension>` for the spectrogram of `file`.
pub fn spect_filename(file: &ArchiveFile, extension: &str) -> String {
    format!(
        "{}_{}{SPECT_SUFFIX}.{extension}",
        file.device,
        stamp_of_ms(file.start_ms)
    )
}

/// A spectrogram file name read back: the device, its source file's start and its extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpectName<'a> {
    pub device: &'a str,
    pub start_ms: i64,
    pub extension: &'a str,
}

/// Reads `<device>_<stamp>Z-spect.<mat|png>`; `None` for any other name.
pub fn parse_spect_name(name: &str) -> Option<SpectName<'_>> {
    let (stem, extension) = name.rsplit_once('.')?;
    if !is_spect_extension(extension) {
        return None;
    }
    let base = stem.strip_suffix(SPECT_SUFFIX)?;
    // The audio name of the same source file has the same device and stamp.
    let audio = format!("{base}.{extension}");
    let parsed = parse_archive_name(&audio)?;
    let device = name.get(..parsed.device.len())?;
    Some(SpectName {
        device,
        start_ms: parsed.start_ms,
        extension,
    })
}

/// The source file whose spectrogram file is exactly `filename`, if the device has archived
/// spectrograms and a source file starts at the name's stamp.
pub fn spect_file_by_name(profile: &DeviceProfile, filename: &str) -> Option<ArchiveFile> {
    let name = parse_spect_name(filename)?;
    if name.device != profile.code {
        return None;
    }
    let file = files_starting_in(profile, name.start_ms, name.start_ms.saturating_add(1))
        .into_iter()
        .next()?;
    (has_spect_file(&file) && spect_filename(&file, name.extension) == filename).then_some(file)
}

/// The `fileSize` a listing shows, in bytes: an estimate, the file is only written when
/// downloaded. MAT: the plotRes PSD's doubles (at 1e-5 dB) at about the 4.7 bytes a cell that
/// zlib reaches on the oracle's values, plus the time and frequency vectors (a 5-minute file at
/// 64 kHz: about 4.0 MB); PNG: the picture's size, near constant (about 26.6 kB).
pub fn listed_size(file: &ArchiveFile, extension: &str) -> u64 {
    if extension == "png" {
        return 27_000;
    }
    let layout = oracle::spectrogram_layout(file, ARCHIVED_MAT_DOWNSAMPLE);
    let (nfreq, ncols) = (
        layout.frequencies_hz.len() as u64,
        layout.column_times_ms.len() as u64,
    );
    nfreq * ncols * 47 / 10 + (nfreq + ncols) * 8 + 2_000
}

#[cfg(test)]
mod tests {
    use super::*;

    const T2024: i64 = 1_711_929_600_000;

    fn profile(code: &str) -> DeviceProfile {
        DeviceProfile {
            code: code.into(),
            sample_rate: 8000,
        }
    }

    #[test]
    fn names_follow_the_audio_files_and_read_back() {
        let p = profile("ICLISTENHF6324");
        let files = files_starting_in(&p, T2024, T2024 + 3_600_000);
        assert!(files.len() > 10);
        for f in &files {
            for ext in SPECT_EXTENSIONS {
                let name = spect_filename(f, ext);
                assert_eq!(
                    name,
                    format!("ICLISTENHF6324_{}-spect.{ext}", stamp_of_ms(f.start_ms))
                );
                let parsed = parse_spect_name(&name).unwrap();
                assert_eq!(
                    (parsed.device, parsed.start_ms, parsed.extension),
                    ("ICLISTENHF6324", f.start_ms, ext)
                );
                assert_eq!(spect_file_by_name(&p, &name), Some(f.clone()));
            }
        }
    }

    #[test]
    fn other_names_are_not_spectrogram_files() {
        let p = profile("ICLISTENHF6324");
        let f = files_starting_in(&p, T2024, T2024 + 3_600_000)
            .into_iter()
            .next()
            .unwrap();
        for name in [
            f.filename("flac"),
            f.filename("mat"),
            spect_filename(&f, "pdf"),
            spect_filename(&f, "mat").replace("-spect", "-spect_plotRes"),
            spect_filename(&f, "mat").replace("Z-spect", "-spect"),
            "-spect.mat".to_owned(),
            "_-spect.png".to_owned(),
            "é_20240401T000107.123Z-spect.mat\u{301}".to_owned(),
        ] {
            assert_eq!(spect_file_by_name(&p, &name), None, "{name}");
        }
        // A stamp where no source file starts, another device's name.
        let off = ArchiveFile {
            start_ms: f.start_ms + 1,
            ..f.clone()
        };
        assert_eq!(spect_file_by_name(&p, &spect_filename(&off, "mat")), None);
        let other = profile("ICLISTENHF6406");
        assert_eq!(spect_file_by_name(&other, &spect_filename(&f, "mat")), None);
    }

    #[test]
    fn one_device_has_none() {
        assert!(has_archived_spectrograms("ICLISTENHF6324"));
        assert!(!has_archived_spectrograms("ICLISTENHF1951"));
        let p = profile("ICLISTENHF1951");
        let f = files_starting_in(&p, T2024, T2024 + 3_600_000)
            .into_iter()
            .next()
            .unwrap();
        assert_eq!(spect_file_by_name(&p, &spect_filename(&f, "mat")), None);
    }

    #[test]
    fn none_outside_deployments_or_for_unknown_devices() {
        // ICLISTENHF6324 is deployed at SEVIP from 2021-03-01.
        let p = profile("ICLISTENHF6324");
        let t2021_02 = 1_612_137_600_000;
        let before = files_starting_in(&p, t2021_02, t2021_02 + 3_600_000);
        assert!(!before.is_empty());
        for f in &before {
            assert!(!has_spect_file(f));
            assert_eq!(spect_file_by_name(&p, &spect_filename(f, "mat")), None);
        }
        let unknown = profile("ICLISTENHF9999");
        let f = files_starting_in(&unknown, T2024, T2024 + 3_600_000)
            .into_iter()
            .next()
            .unwrap();
        assert!(!has_spect_file(&f));
        assert_eq!(
            spect_file_by_name(&unknown, &spect_filename(&f, "png")),
            None
        );
    }

    #[test]
    fn listed_sizes_are_plausible() {
        let p = profile("ICLISTENHF6324");
        let f = files_starting_in(&p, T2024, T2024 + 3_600_000)
            .into_iter()
            .next()
            .unwrap();
        assert!(listed_size(&f, "mat") > 100_000);
        assert_eq!(listed_size(&f, "png"), 27_000);
    }
}
