//! Who is deployed where, and when, in the simulated ONC: its locations, hydrophones and their
//! deployments.
//!
//! Input: a device code, a location code (+ device category) and a time span in ms since 1970.
//! Output: the deployments that match, and the parts of a span that they cover. Plain data, no I/O;
//! always built, so tests and benchmarks can compute what the simulator will answer.
//!
//! The table is small but has ONC's awkward cases, each one something onc-pipe must handle:
//! * `ICLISTENHF6324` at `SEVIP` since 2021-03-01: the device most tests and examples use;
//!   a window before its deployment is an error.
//! * `BACAX`: `ICLISTENHF1251` until 2023-06-15T18:00Z, then `ICLISTENHF6406` (a **swap**: a
//!   location-based plan spanning that moment orders from both devices).
//! * `ICLISTENHF1951` at `FGPD`: two deployments with a **gap** (2022-09-01 to 2023-03-01) while it
//!   was ashore for service.
//! * `ICLISTENHF6020` at `CBYIP` since 2021-01-01 (the seed tool's examples use it).
//!
//! Every other device or location code is unknown: the server answers 400 with errorCode 127.
//! Deployment ends are exclusive; `None` is a deployment still in the water.

/// Simulated hydrophones' device category (ONC's `deviceCategoryCode`).
pub const HYDROPHONE: &str = "HYDROPHONE";

/// One ONC location (site).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    /// ONC's `locationCode`.
    pub code: &'static str,
    /// ONC's `locationName`.
    pub name: &'static str,
    pub lat: f64,
    pub lon: f64,
    /// Metres below the surface.
    pub depth: f64,
}

/// One deployment: a device at a location over `[begin_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deployment {
    pub device: &'static str,
    pub location: &'static str,
    /// ONC's `deviceCategoryCode`.
    pub category: &'static str,
    pub begin_ms: i64,
    /// Exclusive; `None` while the device is still deployed.
    pub end_ms: Option<i64>,
}

impl Deployment {
    /// The end as a number, `i64::MAX` for a deployment still in the water.
    pub fn end_or_max(&self) -> i64 {
        self.end_ms.unwrap_or(i64::MAX)
    }

    /// The part of `[from_ms, to_ms)` within this deployment, if any.
    pub fn overlap(&self, from_ms: i64, to_ms: i64) -> Option<(i64, i64)> {
        onc_format::deployment::overlap((self.begin_ms, self.end_ms), (from_ms, to_ms))
    }
}

// 2020-01-01, 2020-06-01, 2021-01-01, 2021-03-01, 2022-09-01, 2023-03-01, 2023-06-15T18:00Z.
const T2020_01_01: i64 = 1_577_836_800_000;
const T2020_06_01: i64 = 1_590_969_600_000;
const T2021_01_01: i64 = 1_609_459_200_000;
const T2021_03_01: i64 = 1_614_556_800_000;
const T2022_09_01: i64 = 1_661_990_400_000;
const T2023_03_01: i64 = 1_677_628_800_000;
const T2023_06_15_18H: i64 = 1_686_852_000_000;

/// Every simulated location.
pub const LOCATIONS: &[Location] = &[
    Location {
        code: "SEVIP",
        name: "Strait of Georgia East, VENUS Instrument Platform",
        lat: 49.0429,
        lon: -123.3176,
        depth: 170.0,
    },
    Location {
        code: "BACAX",
        name: "Barkley Canyon Axis",
        lat: 48.3167,
        lon: -126.0501,
        depth: 985.0,
    },
    Location {
        code: "FGPD",
        name: "Folger Pinnacle",
        lat: 48.8143,
        lon: -125.2809,
        depth: 23.0,
    },
    Location {
        code: "CBYIP",
        name: "Cambridge Bay Underwater Network",
        lat: 69.1133,
        lon: -105.0598,
        depth: 6.0,
    },
];

/// Every simulated deployment, by location then begin.
pub const DEPLOYMENTS: &[Deployment] = &[
    Deployment {
        device: "ICLISTENHF6324",
        location: "SEVIP",
        category: HYDROPHONE,
        begin_ms: T2021_03_01,
        end_ms: None,
    },
    Deployment {
        device: "ICLISTENHF1251",
        location: "BACAX",
        category: HYDROPHONE,
        begin_ms: T2020_01_01,
        end_ms: Some(T2023_06_15_18H),
    },
    Deployment {
        device: "ICLISTENHF6406",
        location: "BACAX",
        category: HYDROPHONE,
        begin_ms: T2023_06_15_18H,
        end_ms: None,
    },
    Deployment {
        device: "ICLISTENHF1951",
        location: "FGPD",
        category: HYDROPHONE,
        begin_ms: T2020_06_01,
        end_ms: Some(T2022_09_01),
    },
    Deployment {
        device: "ICLISTENHF1951",
        location: "FGPD",
        category: HYDROPHONE,
        begin_ms: T2023_03_01,
        end_ms: None,
    },
    Deployment {
        device: "ICLISTENHF6020",
        location: "CBYIP",
        category: HYDROPHONE,
        begin_ms: T2021_01_01,
        end_ms: None,
    },
];

/// Whether ONC (simulated) knows this device code. Case-sensitive, as ONC's codes are.
pub fn is_known_device(code: &str) -> bool {
    DEPLOYMENTS.iter().any(|d| d.device == code)
}

/// The location with this code, if ONC (simulated) knows it.
pub fn location(code: &str) -> Option<&'static Location> {
    LOCATIONS.iter().find(|l| l.code == code)
}

/// The deployments of one device, in time order.
pub fn deployments_of_device(code: &str) -> impl Iterator<Item = &'static Deployment> + '_ {
    DEPLOYMENTS.iter().filter(move |d| d.device == code)
}

/// The deployments at a location (of one device category when given), in time order.
pub fn deployments_at<'a>(
    location: &'a str,
    category: Option<&'a str>,
) -> impl Iterator<Item = &'static Deployment> + 'a {
    DEPLOYMENTS
        .iter()
        .filter(move |d| d.location == location && category.is_none_or(|c| d.category == c))
}

/// The parts of `[from_ms, to_ms)` during which `device` was deployed, in time order.
pub fn deployed_spans(device: &str, from_ms: i64, to_ms: i64) -> Vec<(i64, i64)> {
    deployments_of_device(device)
        .filter_map(|d| d.overlap(from_ms, to_ms))
        .collect()
}

/// Whether `device` was deployed at instant `t_ms`.
pub fn deployed_at(device: &str, t_ms: i64) -> bool {
    deployments_of_device(device).any(|d| d.begin_ms <= t_ms && t_ms < d.end_or_max())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        onc_format::stamp::parse_onc_date(text).unwrap_or_else(|| panic!("{text}"))
    }

    #[test]
    fn the_constants_are_the_dates_they_name() {
        assert_eq!(T2020_01_01, ms("2020-01-01T00:00:00.000Z"));
        assert_eq!(T2020_06_01, ms("2020-06-01T00:00:00.000Z"));
        assert_eq!(T2021_01_01, ms("2021-01-01T00:00:00.000Z"));
        assert_eq!(T2021_03_01, ms("2021-03-01T00:00:00.000Z"));
        assert_eq!(T2022_09_01, ms("2022-09-01T00:00:00.000Z"));
        assert_eq!(T2023_03_01, ms("2023-03-01T00:00:00.000Z"));
        assert_eq!(T2023_06_15_18H, ms("2023-06-15T18:00:00.000Z"));
    }

    #[test]
    fn every_deployment_is_at_a_known_location_and_none_overlap_per_device_or_location() {
        for d in DEPLOYMENTS {
            assert!(location(d.location).is_some(), "{d:?}");
            assert!(d.begin_ms < d.end_or_max(), "{d:?}");
            for other in DEPLOYMENTS {
                if std::ptr::eq(d, other) {
                    continue;
                }
                let overlapping = d.overlap(other.begin_ms, other.end_or_max()).is_some();
                assert!(
                    !(overlapping && other.device == d.device),
                    "{d:?} {other:?}"
                );
                assert!(
                    !(overlapping && other.location == d.location),
                    "{d:?} {other:?}"
                );
            }
        }
    }

    #[test]
    fn the_swap_and_the_gap_are_where_the_docs_say() {
        let swap = ms("2023-06-15T18:00:00.000Z");
        assert!(deployed_at("ICLISTENHF1251", swap - 1));
        assert!(!deployed_at("ICLISTENHF1251", swap));
        assert!(deployed_at("ICLISTENHF6406", swap));
        let at_bacax: Vec<_> = deployments_at("BACAX", Some(HYDROPHONE))
            .map(|d| d.device)
            .collect();
        assert_eq!(at_bacax, ["ICLISTENHF1251", "ICLISTENHF6406"]);

        let spans = deployed_spans(
            "ICLISTENHF1951",
            ms("2022-01-01T00:00:00.000Z"),
            ms("2024-01-01T00:00:00.000Z"),
        );
        assert_eq!(
            spans,
            [
                (
                    ms("2022-01-01T00:00:00.000Z"),
                    ms("2022-09-01T00:00:00.000Z")
                ),
                (
                    ms("2023-03-01T00:00:00.000Z"),
                    ms("2024-01-01T00:00:00.000Z")
                ),
            ]
        );
        assert!(!deployed_at(
            "ICLISTENHF6324",
            ms("2021-02-28T23:59:59.999Z")
        ));
        assert!(deployed_at(
            "ICLISTENHF6324",
            ms("2024-04-01T00:00:00.000Z")
        ));
        assert!(!is_known_device("ICLISTENHF9999"));
        assert!(location("NOPE").is_none());
    }
}
