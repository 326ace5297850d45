//! ONC's deployments: a device at a location over a time span, as ONC's `deployments` service
//! lists them, and the arithmetic of "was it in the water then?".
//!
//! Input: deployments (read from ONC's JSON by the client) and spans in ms since 1970, half open.
//! Output: the parts of a span that deployments cover or leave uncovered. Errors: none; a
//! deployment without an end is still in the water (`i64::MAX`).

/// One deployment of a device at a location, `[begin_ms, end_ms)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deployment {
    /// ONC's `deviceCode`.
    pub device: String,
    /// ONC's `locationCode`.
    pub location: String,
    /// ONC's `deviceCategoryCode` (`HYDROPHONE`).
    pub category: String,
    pub begin_ms: i64,
    /// Exclusive; `None` while the device is still deployed.
    pub end_ms: Option<i64>,
}

impl Deployment {
    /// The end as a number: `i64::MAX` for a deployment still in the water.
    pub fn end_or_max(&self) -> i64 {
        self.end_ms.unwrap_or(i64::MAX)
    }

    /// The part of `[from_ms, to_ms)` within this deployment, if any.
    pub fn overlap(&self, from_ms: i64, to_ms: i64) -> Option<(i64, i64)> {
        overlap((self.begin_ms, self.end_ms), (from_ms, to_ms))
    }

    /// Whether the device was deployed at instant `t_ms`.
    pub fn contains(&self, t_ms: i64) -> bool {
        self.begin_ms <= t_ms && t_ms < self.end_or_max()
    }
}

/// The part of the span `(from_ms, to_ms)` within a deployment `(begin_ms, end_ms)` (`None`:
/// still deployed), if any; both half open.
pub fn overlap(deployed: (i64, Option<i64>), (from_ms, to_ms): (i64, i64)) -> Option<(i64, i64)> {
    let lo = from_ms.max(deployed.0);
    let hi = to_ms.min(deployed.1.unwrap_or(i64::MAX));
    (lo < hi).then_some((lo, hi))
}

/// The parts of `[from_ms, to_ms)` that no deployment in `deployments` covers, in time order.
/// An instant (`from_ms == to_ms`) is uncovered when no deployment contains it.
pub fn uncovered(deployments: &[Deployment], from_ms: i64, to_ms: i64) -> Vec<(i64, i64)> {
    if from_ms == to_ms {
        return if deployments.iter().any(|d| d.contains(from_ms)) {
            Vec::new()
        } else {
            vec![(from_ms, to_ms)]
        };
    }
    let mut covered: Vec<(i64, i64)> = deployments
        .iter()
        .filter_map(|d| d.overlap(from_ms, to_ms))
        .collect();
    covered.sort_unstable();
    let mut gaps = Vec::new();
    let mut at = from_ms;
    for (lo, hi) in covered {
        if lo > at {
            gaps.push((at, lo));
        }
        at = at.max(hi);
    }
    if at < to_ms {
        gaps.push((at, to_ms));
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(begin_ms: i64, end_ms: Option<i64>) -> Deployment {
        Deployment {
            device: "ICLISTENHF1951".into(),
            location: "FGPD".into(),
            category: "HYDROPHONE".into(),
            begin_ms,
            end_ms,
        }
    }

    #[test]
    fn uncovered_parts_of_a_span_around_a_gap() {
        let both = [deployment(100, Some(200)), deployment(300, None)];
        assert_eq!(uncovered(&both, 0, 1000), [(0, 100), (200, 300)]);
        assert_eq!(uncovered(&both, 150, 250), [(200, 250)]);
        assert!(uncovered(&both, 120, 180).is_empty());
        assert!(uncovered(&both, 400, i64::MAX).is_empty());
        assert_eq!(uncovered(&[], 5, 9), [(5, 9)]);
    }

    #[test]
    fn instants_are_covered_only_inside_a_deployment() {
        let one = [deployment(100, Some(200))];
        assert!(uncovered(&one, 100, 100).is_empty());
        assert_eq!(
            uncovered(&one, 200, 200),
            [(200, 200)],
            "ends are exclusive"
        );
        assert_eq!(uncovered(&one, 99, 99), [(99, 99)]);
    }

    #[test]
    fn overlapping_deployments_do_not_confuse_the_sweep() {
        let odd = [deployment(0, Some(500)), deployment(100, Some(200))];
        assert!(uncovered(&odd, 0, 500).is_empty());
        assert_eq!(uncovered(&odd, 0, 600), [(500, 600)]);
    }
}
