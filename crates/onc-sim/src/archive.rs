//! The simulated archive's file layout: (device profile, time window) → the archived source
//! files (start, sample count, rate) that ONC would list, and file names ↔ files.
//!
//! Layout (deterministic, computed per file index k, never by iterating from the epoch):
//! file k nominally starts at `ARCHIVE_START_MS + offset + k·300 s + jitter(k)`, where `offset`
//! (1.000–298.999 s, from the device code) keeps every start off the 5-minute grid and `jitter`
//! is a hashed value in [-500, +500] ms. A file normally lasts until the next nominal start
//! (299–301 s, contiguous); about 1 in 45 files is short (294.5 s, leaving a gap), about 1 in 60
//! is missing (an outage; runs of missing files make longer ones). Files lie entirely within
//! [`ARCHIVE_START_MS`, `ARCHIVE_END_MS`]. Every file exists as both `.flac` and `.wav` (a
//! simplification of ONC's FLAC-since-2021 / WAV-before-2020-08 history).
//!
//! The layout is a device's recording *if it were always deployed*; the server lists and serves
//! only [`deployed_files`] — those lying wholly within one of the device's deployments in
//! [`registry`] (the pure layout functions stay for tests that need no registry).

use onc_format::grid::FILE_MS;
use onc_format::stamp::{archive_name, parse_archive_name};

use crate::oracle::{device_seed, hash3};
use crate::registry::{self, Deployment};

/// 2020-01-01T00:00:00Z: no archived file starts before this.
pub const ARCHIVE_START_MS: i64 = 1_577_836_800_000;
/// 2030-01-01T00:00:00Z: no archived file ends after this.
pub const ARCHIVE_END_MS: i64 = 1_893_456_000_000;

/// Nominal file period: ONC's five-minute grid.
const PERIOD_MS: i64 = FILE_MS;
/// Jitter bound of a file start around its nominal position.
const JITTER_MS: i64 = 500;
/// Length of a "short" file.
const SHORT_MS: i64 = 294_500;
/// One in `MISSING_ONE_IN` files is missing, one in `SHORT_ONE_IN` is short.
const MISSING_ONE_IN: u64 = 60;
const SHORT_ONE_IN: u64 = 45;

const P_OFFSET: u64 = 0x4F46_4653;
const P_JITTER: u64 = 0x4A49_5454;
const P_MISSING: u64 = 0x4D49_5353;
const P_SHORT: u64 = 0x5348_5254;

/// Extensions under which every archived file is listed and downloadable.
const EXTENSIONS: [&str; 2] = ["flac", "wav"];

/// A simulated device. Sample rate configurable so tests use 8 kHz (fast) and benchmarks 64 kHz.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceProfile {
    pub code: String,
    pub sample_rate: u32,
}

/// One archived source file (listed as both `.flac` and `.wav`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveFile {
    pub device: String,
    pub start_ms: i64,
    pub samples: u64,
    pub sample_rate: u32,
}

impl ArchiveFile {
    /// Start + samples·1000/rate, rounded down (saturating; a zero rate gives the start).
    pub fn end_ms(&self) -> i64 {
        self.start_ms.saturating_add(self.duration_ms())
    }

    /// samples·1000/rate in ms, rounded down (0 for a zero rate).
    pub fn duration_ms(&self) -> i64 {
        let d = (i128::from(self.samples) * 1000)
            .checked_div(i128::from(self.sample_rate))
            .unwrap_or(0);
        i64::try_from(d).unwrap_or(i64::MAX)
    }

    /// `<device>_<yyyyMMddTHHmmss.SSS>Z.<extension>`, milliseconds kept.
    pub fn filename(&self, extension: &str) -> String {
        archive_name(&self.device, self.start_ms, extension)
    }

    /// Start of sample `i` in ns since 1970: start_ms·1e6 + ⌊i·1e9/rate⌋ (exact integer
    /// arithmetic; a zero rate gives the file start).
    pub fn sample_time_ns(&self, i: u64) -> i128 {
        // u64 fast path (i128 division is slow and this runs once per generated sample).
        let offset = match i.checked_mul(1_000_000_000) {
            Some(ns) => i128::from(ns.checked_div(u64::from(self.sample_rate)).unwrap_or(0)),
            None => (i128::from(i) * 1_000_000_000)
                .checked_div(i128::from(self.sample_rate))
                .unwrap_or(0),
        };
        i128::from(self.start_ms) * 1_000_000 + offset
    }
}

/// The per-device layout, derived once per query.
struct Layout {
    seed: u64,
    /// ARCHIVE_START_MS + device offset: nominal start of file 0.
    base_ms: i64,
    /// Number of file slots: indices 0..count (the last one ends before ARCHIVE_END_MS).
    count: i64,
    sample_rate: u32,
    device: String,
}

impl Layout {
    fn new(profile: &DeviceProfile) -> Self {
        let seed = device_seed(&profile.code);
        // [1000, 298999] ms past the grid: with ±500 ms jitter, never on a 5-minute boundary.
        let offset = 1_000 + (hash3(seed, 0, P_OFFSET) % 298_000) as i64;
        let base_ms = ARCHIVE_START_MS + offset;
        // File k ends at the latest at nominal(k+1) + JITTER: keep that <= ARCHIVE_END_MS.
        let count = (ARCHIVE_END_MS - JITTER_MS - base_ms) / PERIOD_MS;
        Layout {
            seed,
            base_ms,
            count,
            sample_rate: profile.sample_rate,
            device: profile.code.clone(),
        }
    }

    /// Start of slot k (defined for every k, also the slot after the last file).
    fn start(&self, k: i64) -> i64 {
        let j = (hash3(self.seed, k as u64, P_JITTER) % (2 * JITTER_MS as u64 + 1)) as i64;
        self.base_ms + k * PERIOD_MS + j - JITTER_MS
    }

    /// File k, or None if k is out of the archive or the file is missing.
    fn file(&self, k: i64) -> Option<ArchiveFile> {
        if !(0..self.count).contains(&k)
            || hash3(self.seed, k as u64, P_MISSING).is_multiple_of(MISSING_ONE_IN)
        {
            return None;
        }
        let start = self.start(k);
        let length_ms = if hash3(self.seed, k as u64, P_SHORT).is_multiple_of(SHORT_ONE_IN) {
            SHORT_MS
        } else {
            self.start(k + 1) - start
        };
        // ms·rate/1000: exact for rates that are whole samples per ms; else rounded down, so
        // the file never reaches into the next one.
        let samples = (length_ms as u64).saturating_mul(u64::from(self.sample_rate)) / 1000;
        Some(ArchiveFile {
            device: self.device.clone(),
            start_ms: start,
            samples,
            sample_rate: self.sample_rate,
        })
    }

    /// Slot indices that could hold a file starting in or overlapping [from, to]: a small
    /// superset, clamped to the archive. Inputs are clamped first so extreme values cannot
    /// overflow; clamping to just outside the archive keeps every comparison's outcome.
    fn candidates(&self, from_ms: i64, to_ms: i64) -> std::ops::Range<i64> {
        let lo = from_ms.clamp(ARCHIVE_START_MS - 1, ARCHIVE_END_MS + 1);
        let hi = to_ms.clamp(ARCHIVE_START_MS - 1, ARCHIVE_END_MS + 1);
        // start(k) ∈ [base + kP − J, base + kP + J]; end(k) <= start(k+1).
        let first = (lo - self.base_ms - JITTER_MS).div_euclid(PERIOD_MS) - 1;
        let last = (hi - self.base_ms + JITTER_MS).div_euclid(PERIOD_MS) + 1;
        first.max(0)..(last + 1).min(self.count).max(first.max(0))
    }
}

/// Files with `start < to_ms && end > from_ms`, in start order. An instant (`from_ms == to_ms`)
/// returns the file containing it (`start <= t < end`), if any. O(number of files returned).
pub fn files_overlapping(profile: &DeviceProfile, from_ms: i64, to_ms: i64) -> Vec<ArchiveFile> {
    if from_ms > to_ms {
        return Vec::new();
    }
    let layout = Layout::new(profile);
    layout
        .candidates(from_ms, to_ms)
        .filter_map(|k| layout.file(k))
        .filter(|f| {
            if from_ms == to_ms {
                f.start_ms <= from_ms && from_ms < f.end_ms()
            } else {
                f.start_ms < to_ms && f.end_ms() > from_ms
            }
        })
        .collect()
}

/// ONC archivefile listing semantics: files whose start is in `[from_ms, to_ms)`, in order.
pub fn files_starting_in(profile: &DeviceProfile, from_ms: i64, to_ms: i64) -> Vec<ArchiveFile> {
    if from_ms >= to_ms {
        return Vec::new();
    }
    let layout = Layout::new(profile);
    layout
        .candidates(from_ms, to_ms)
        .filter_map(|k| layout.file(k))
        .filter(|f| f.start_ms >= from_ms && f.start_ms < to_ms)
        .collect()
}

/// The listed file whose name (with any of the archived extensions) is exactly `filename`.
pub fn file_by_name(profile: &DeviceProfile, filename: &str) -> Option<ArchiveFile> {
    let name = parse_archive_name(filename)?;
    if name.device != profile.code || !EXTENSIONS.contains(&name.extension) {
        return None;
    }
    let file = files_starting_in(profile, name.start_ms, name.start_ms.saturating_add(1))
        .into_iter()
        .next()?;
    (file.filename(name.extension) == filename).then_some(file)
}

/// The files of one deployment: those of its device overlapping `[from_ms, to_ms)` (or, with
/// `starting`, starting in it, ONC's listing rule) that lie wholly within the deployment. A
/// device records only while deployed, so the layout's files outside (or straddling an end of)
/// a deployment do not exist.
pub fn deployment_files(
    deployment: &Deployment,
    sample_rate: u32,
    from_ms: i64,
    to_ms: i64,
    starting: bool,
) -> Vec<ArchiveFile> {
    let profile = DeviceProfile {
        code: deployment.device.to_owned(),
        sample_rate,
    };
    // Only the part of the window within the deployment can hold its files.
    let lo = from_ms.max(deployment.begin_ms);
    let hi = to_ms.min(deployment.end_or_max());
    let files = if starting {
        files_starting_in(&profile, lo, hi)
    } else if lo < hi || (from_ms == to_ms && lo == hi) {
        files_overlapping(&profile, lo, hi)
    } else {
        Vec::new()
    };
    files
        .into_iter()
        .filter(|f| deployment.begin_ms <= f.start_ms && f.end_ms() <= deployment.end_or_max())
        .collect()
}

/// [`files_overlapping`] (or, with `starting`, [`files_starting_in`]) restricted to the files
/// recorded while the device was deployed (see [`deployment_files`]), in start order.
pub fn deployed_files(
    profile: &DeviceProfile,
    from_ms: i64,
    to_ms: i64,
    starting: bool,
) -> Vec<ArchiveFile> {
    let mut files: Vec<ArchiveFile> = registry::deployments_of_device(&profile.code)
        .flat_map(|d| deployment_files(d, profile.sample_rate, from_ms, to_ms, starting))
        .collect();
    files.sort_by_key(|f| f.start_ms);
    files
}

/// [`file_by_name`], for a file recorded while its device was deployed.
pub fn deployed_file_by_name(profile: &DeviceProfile, filename: &str) -> Option<ArchiveFile> {
    file_by_name(profile, filename).filter(|f| {
        registry::deployments_of_device(&profile.code)
            .any(|d| d.begin_ms <= f.start_ms && f.end_ms() <= d.end_or_max())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dev() -> DeviceProfile {
        DeviceProfile {
            code: "ICLISTENHF6324".into(),
            sample_rate: 8000,
        }
    }

    const DAY: i64 = 86_400_000;
    /// 2024-04-01T00:00:00Z
    const T2024: i64 = 1_711_929_600_000;

    #[test]
    fn off_grid_contiguous_with_gaps_and_short_files() {
        let p = dev();
        let files = files_starting_in(&p, T2024, T2024 + 7 * DAY);
        assert!(files.len() > 1900 && files.len() < 2016, "{}", files.len());
        let mut short = 0;
        let mut missing = 0;
        for f in &files {
            assert_ne!(f.start_ms.rem_euclid(PERIOD_MS), 0, "{f:?} on the grid");
            if f.duration_ms() == SHORT_MS {
                short += 1;
            } else {
                assert!((299_000..=301_000).contains(&f.duration_ms()), "{f:?}");
            }
        }
        for w in files.windows(2) {
            if let [a, b] = w {
                let step = b.start_ms - a.start_ms;
                if step < 450_000 {
                    assert!((297_000..=302_000).contains(&step), "{a:?} {b:?}");
                    if a.duration_ms() != SHORT_MS {
                        assert_eq!(a.end_ms(), b.start_ms, "contiguous");
                    }
                } else {
                    missing += (step + PERIOD_MS / 2) / PERIOD_MS - 1;
                }
            }
        }
        assert!(missing > 10, "missing {missing}");
        assert!(short > 10, "short {short}");
        // Short files within a single day.
        let day = files_starting_in(&p, T2024, T2024 + DAY);
        assert!(day.iter().any(|f| f.duration_ms() == SHORT_MS));
        // Different devices have different offsets.
        let other = DeviceProfile {
            code: "ICLISTENHF1251".into(),
            sample_rate: 8000,
        };
        let a = files_starting_in(&p, T2024, T2024 + DAY);
        let b = files_starting_in(&other, T2024, T2024 + DAY);
        assert_ne!(
            a.first().map(|f| f.start_ms % PERIOD_MS),
            b.first().map(|f| f.start_ms % PERIOD_MS)
        );
    }

    #[test]
    fn archive_bounds() {
        let p = dev();
        let first = files_overlapping(&p, i64::MIN, ARCHIVE_START_MS + 3_600_000);
        let f0 = first.first().map(|f| f.start_ms).unwrap_or(0);
        assert!((ARCHIVE_START_MS..ARCHIVE_START_MS + 3_600_000).contains(&f0));
        let last = files_overlapping(&p, ARCHIVE_END_MS - 3_600_000, i64::MAX);
        assert!(!last.is_empty());
        assert!(last.iter().all(|f| f.end_ms() <= ARCHIVE_END_MS));
        assert!(
            last.last()
                .is_some_and(|f| f.end_ms() > ARCHIVE_END_MS - 302_000)
        );
        assert!(files_overlapping(&p, 0, ARCHIVE_START_MS).is_empty());
        assert!(files_overlapping(&p, ARCHIVE_END_MS, i64::MAX).is_empty());
        assert!(files_starting_in(&p, i64::MAX, i64::MIN).is_empty());
        assert!(files_overlapping(&p, i64::MAX, i64::MIN).is_empty());
        assert!(files_overlapping(&p, i64::MIN, i64::MIN).is_empty());
    }

    #[test]
    fn listing_is_inclusive_exclusive() {
        let p = dev();
        let files = files_starting_in(&p, T2024, T2024 + DAY);
        let (a, b) = match files.as_slice() {
            [a, b, ..] => (a.clone(), b.clone()),
            _ => panic!("too few files"),
        };
        assert_eq!(
            files_starting_in(&p, a.start_ms, b.start_ms),
            vec![a.clone()]
        );
        assert_eq!(
            files_starting_in(&p, a.start_ms + 1, b.start_ms + 1),
            vec![b.clone()]
        );
        assert!(files_starting_in(&p, a.start_ms + 1, b.start_ms).is_empty());
        assert!(files_starting_in(&p, a.start_ms, a.start_ms).is_empty());
    }

    #[test]
    fn instant_query() {
        let p = dev();
        let files = files_starting_in(&p, T2024, T2024 + DAY);
        for f in files.iter().take(20) {
            assert_eq!(
                files_overlapping(&p, f.start_ms, f.start_ms),
                vec![f.clone()]
            );
            let mid = f.start_ms + 150_000;
            assert_eq!(files_overlapping(&p, mid, mid), vec![f.clone()]);
            let end = f.end_ms();
            let at_end = files_overlapping(&p, end, end);
            assert!(!at_end.contains(f));
        }
        // An instant in a gap after a short file returns nothing.
        let short = files.iter().find(|f| f.duration_ms() == SHORT_MS);
        if let Some(s) = short {
            let t = s.end_ms() + 1000;
            assert!(files_overlapping(&p, t, t).is_empty());
        }
    }

    #[test]
    fn filename_round_trip() {
        let p = dev();
        let files = files_starting_in(&p, T2024, T2024 + DAY);
        for f in files.iter().take(50) {
            for ext in ["flac", "wav"] {
                let name = f.filename(ext);
                let parsed = parse_archive_name(&name).unwrap();
                assert_eq!(
                    (parsed.device, parsed.start_ms, parsed.extension),
                    (p.code.as_str(), f.start_ms, ext)
                );
                assert_eq!(file_by_name(&p, &name), Some(f.clone()));
            }
            assert_eq!(file_by_name(&p, &f.filename("mp3")), None);
        }
        let f = ArchiveFile {
            device: "ICLISTENHF6324".into(),
            start_ms: T2024 + 67_123,
            samples: 0,
            sample_rate: 8000,
        };
        assert_eq!(
            f.filename("flac"),
            "ICLISTENHF6324_20240401T000107.123Z.flac"
        );
        assert_eq!(file_by_name(&p, &f.filename("flac")), None);
    }

    #[test]
    fn sample_times() {
        let f = ArchiveFile {
            device: "D".into(),
            start_ms: 1_000,
            samples: 3,
            sample_rate: 3,
        };
        assert_eq!(f.sample_time_ns(0), 1_000_000_000);
        assert_eq!(f.sample_time_ns(1), 1_333_333_333);
        // Beyond the u64 fast path.
        assert_eq!(
            f.sample_time_ns(u64::MAX),
            1_000_000_000 + i128::from(u64::MAX) * 1_000_000_000 / 3
        );
        assert_eq!(f.end_ms(), 2_000);
        let z = ArchiveFile {
            sample_rate: 0,
            ..f.clone()
        };
        assert_eq!((z.end_ms(), z.sample_time_ns(5)), (1_000, 1_000_000_000));
        let huge = ArchiveFile {
            samples: u64::MAX,
            sample_rate: 1,
            start_ms: i64::MAX,
            ..f
        };
        assert_eq!(huge.end_ms(), i64::MAX);
    }

    #[test]
    fn deployed_files_lie_wholly_within_a_deployment() {
        let ms = |t: &str| onc_format::stamp::parse_onc_date(t).unwrap();
        let profile = |code: &str| DeviceProfile {
            code: code.into(),
            sample_rate: 8000,
        };
        // Before ICLISTENHF6324's deployment (2021-03-01): nothing, by either rule.
        let (from, to) = (ms("2020-06-01T00:00:00Z"), ms("2020-06-02T00:00:00Z"));
        assert!(!files_overlapping(&profile("ICLISTENHF6324"), from, to).is_empty());
        assert!(deployed_files(&profile("ICLISTENHF6324"), from, to, false).is_empty());
        assert!(deployed_files(&profile("ICLISTENHF6324"), from, to, true).is_empty());
        // Across the BACAX swap each device's files stop (start) at the swap.
        let swap = ms("2023-06-15T18:00:00Z");
        let (from, to) = (swap - 3_600_000, swap + 3_600_000);
        let old = deployed_files(&profile("ICLISTENHF1251"), from, to, false);
        let new = deployed_files(&profile("ICLISTENHF6406"), from, to, true);
        assert!(
            old.len() >= 10 && new.len() >= 10,
            "{} {}",
            old.len(),
            new.len()
        );
        assert!(old.iter().all(|f| f.end_ms() <= swap));
        assert!(new.iter().all(|f| f.start_ms >= swap));
        // Every deployed file is a layout file, and the layout's others straddle or miss it.
        let all = files_overlapping(&profile("ICLISTENHF1251"), from, to);
        assert!(old.iter().all(|f| all.contains(f)));
        assert!(
            all.iter().any(|f| f.start_ms < swap && f.end_ms() > swap) || all.len() > old.len()
        );
        // FGPD's gap, and downloads by name follow the same rule.
        let gap = files_starting_in(
            &profile("ICLISTENHF1951"),
            ms("2022-12-01T00:00:00Z"),
            ms("2022-12-01T01:00:00Z"),
        );
        let name = gap.first().map(|f| f.filename("flac")).unwrap_or_default();
        assert!(file_by_name(&profile("ICLISTENHF1951"), &name).is_some());
        assert!(deployed_file_by_name(&profile("ICLISTENHF1951"), &name).is_none());
        let name = new.first().map(|f| f.filename("wav")).unwrap_or_default();
        assert_eq!(
            deployed_file_by_name(&profile("ICLISTENHF6406"), &name).as_ref(),
            new.first()
        );
        // An unknown device has no deployment, so no file.
        assert!(deployed_files(&profile("ICLISTENHF9999"), from, to, false).is_empty());
    }

    /// Brute force: every existing file in slots around the window.
    fn brute(p: &DeviceProfile, from: i64, to: i64) -> Vec<ArchiveFile> {
        let l = Layout::new(p);
        let k0 = (from - l.base_ms).div_euclid(PERIOD_MS);
        (k0 - 5..k0 + (to - from) / PERIOD_MS + 6)
            .filter_map(|k| l.file(k))
            .collect()
    }

    proptest! {
        #[test]
        fn overlapping_matches_brute_force(
            from in (ARCHIVE_START_MS - DAY)..(ARCHIVE_START_MS + 30 * DAY),
            len in 0i64..2_000_000,
            end_side in proptest::bool::ANY,
        ) {
            // Test both ends of the archive.
            let from = if end_side { from - ARCHIVE_START_MS + ARCHIVE_END_MS - 29 * DAY } else { from };
            let to = from + len;
            let p = dev();
            let expect: Vec<_> = brute(&p, from, to)
                .into_iter()
                .filter(|f| if from == to {
                    f.start_ms <= from && from < f.end_ms()
                } else {
                    f.start_ms < to && f.end_ms() > from
                })
                .collect();
            prop_assert_eq!(files_overlapping(&p, from, to), expect);
            let expect: Vec<_> = brute(&p, from, to)
                .into_iter()
                .filter(|f| f.start_ms >= from && f.start_ms < to)
                .collect();
            prop_assert_eq!(files_starting_in(&p, from, to), expect);
        }
    }
}
