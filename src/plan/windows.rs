//! Window arithmetic: sampling, five-minute file slots, and coalescing windows into ONC requests.
//!
//! Input: UTC instants in milliseconds. Output: sample starts, slot counts and request spans.
//! Pure functions, property-tested: no I/O, no errors (callers validate first).

use onc_format::grid::FILE_MS;

/// Starts of the seed's "sampling between two dates": `ceil(count / per_request)` requests, each
/// covering `(per_request - 1) x 5 min`, spread evenly over `[start, end - span]` with the first
/// at `start` (and, when there are two or more, the last at `end - span`).
///
/// Returns `(starts, span_ms)`. When the range is shorter than one span every request starts at
/// `start` would be pointless, so the caller rejects that case (`span_ms > end - start`).
pub fn sample_starts(start_ms: i64, end_ms: i64, count: u32, per_request: u32) -> (Vec<i64>, i64) {
    let per_request = per_request.max(1);
    let requests = count.div_ceil(per_request).max(1) as i64;
    let span_ms = i64::from(per_request - 1) * FILE_MS;
    let room = (end_ms - span_ms - start_ms).max(0);
    let starts = (0..requests)
        .map(|i| {
            if requests == 1 {
                start_ms
            } else {
                // i128: `room * i` overflows i64 for ranges of a few hundred thousand years.
                start_ms + ((i128::from(room) * i128::from(i)) / i128::from(requests - 1)) as i64
            }
        })
        .collect();
    (starts, span_ms)
}

/// The five-minute grid slot holding an instant (slot `k` is `[k x 5 min, (k + 1) x 5 min)`).
pub fn slot_of(ms: i64) -> i64 {
    ms.div_euclid(FILE_MS)
}

/// The grid slots a window touches: `[first, last]`. An instant touches one slot; a window
/// `[start, end)` touches the slots from its start's to its last millisecond's.
pub fn slots(start_ms: i64, end_ms: i64) -> (i64, i64) {
    let first = slot_of(start_ms);
    let last = if end_ms > start_ms {
        slot_of(end_ms - 1)
    } else {
        first
    };
    (first, last)
}

/// Nominal number of five-minute source files in a window, counted as the seed does (a 6-hour
/// range is 72 files): `ceil(duration / 5 min)`, at least 1. ONC's real files start off the grid,
/// so a request may return one more; this is an estimate for batching and `plan`.
pub fn nominal_files(start_ms: i64, end_ms: i64) -> i64 {
    let duration = (end_ms - start_ms).max(0);
    ((duration + FILE_MS - 1) / FILE_MS).max(1)
}

/// A span of time one ONC request will cover, and the windows (by index) it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSpan {
    pub start_ms: i64,
    pub end_ms: i64,
    pub members: Vec<usize>,
}

/// Groups windows (same device, same product and options) into ONC requests.
///
/// Windows are sorted by start; a window joins the current request when it overlaps it or the
/// gap is shorter than one file (so no file lies wholly between them and nothing extra is
/// fetched) and the merged request stays within `per_request` nominal files. A window longer
/// than `per_request` files is cut into chunks that end on the five-minute grid, so that two
/// chunks never ask for the same nominal file.
pub fn coalesce(windows: &[(i64, i64)], per_request: u32) -> Vec<RequestSpan> {
    let per_request = i64::from(per_request.max(1));
    let mut order: Vec<usize> = (0..windows.len()).collect();
    order.sort_by_key(|&i| (windows[i].0, windows[i].1, i));

    let mut requests: Vec<RequestSpan> = Vec::new();
    for index in order {
        let (start, end) = windows[index];
        let end = end.max(start);
        // Requests are sorted and disjoint, and windows come in start order: only the requests
        // at the tail can overlap this window. Join every one it touches.
        let mut covered_to = start;
        for request in requests.iter_mut().rev() {
            let touches = if end > start {
                request.start_ms < end && request.end_ms > start
            } else {
                request.start_ms <= start && start < request.end_ms
            };
            if touches {
                request.members.push(index);
                covered_to = covered_to.max(request.end_ms);
            } else if request.end_ms <= start {
                break;
            }
        }
        if covered_to >= end && covered_to > start {
            continue;
        }
        // The rest of the window, `[rest_start, end)`, is not covered yet.
        let rest_start = covered_to.max(start);
        if let Some(last) = requests.last_mut() {
            let close_enough = rest_start - last.end_ms < FILE_MS;
            let merged_end = last.end_ms.max(end);
            if close_enough && nominal_files(last.start_ms, merged_end) <= per_request {
                last.end_ms = merged_end;
                if !last.members.contains(&index) {
                    last.members.push(index);
                }
                continue;
            }
        }
        push_chunks(&mut requests, rest_start, end, per_request, index);
    }
    requests
}

/// Appends `[start, end)` as requests of at most `per_request` nominal files, chunk ends on the
/// five-minute grid.
fn push_chunks(
    requests: &mut Vec<RequestSpan>,
    start: i64,
    end: i64,
    per_request: i64,
    member: usize,
) {
    let mut chunk_start = start;
    loop {
        let grid_end = (slot_of(chunk_start) + per_request) * FILE_MS;
        let chunk_end = if end <= grid_end { end } else { grid_end };
        requests.push(RequestSpan {
            start_ms: chunk_start,
            end_ms: chunk_end,
            members: vec![member],
        });
        if chunk_end >= end {
            break;
        }
        chunk_start = chunk_end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const APRIL_1: i64 = 1_711_929_600_000; // 2024-04-01T00:00:00Z
    const HOUR: i64 = 3_600_000;

    #[test]
    fn seed_sampling_gives_fourteen_requests_of_55_minutes() {
        let (starts, span) = sample_starts(APRIL_1, APRIL_1 + 48 * HOUR, 160, 12);
        assert_eq!(starts.len(), 14);
        assert_eq!(span, 55 * 60_000);
        assert_eq!(starts[0], APRIL_1);
        assert_eq!(*starts.last().unwrap(), APRIL_1 + 48 * HOUR - span);
        let gaps: Vec<i64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|g| (g - gaps[0]).abs() <= 1), "{gaps:?}");
    }

    #[test]
    fn six_hour_range_is_72_files_in_one_request_of_72() {
        assert_eq!(nominal_files(APRIL_1, APRIL_1 + 6 * HOUR), 72);
        let requests = coalesce(&[(APRIL_1, APRIL_1 + 6 * HOUR)], 72);
        assert_eq!(requests.len(), 1);
        let requests = coalesce(&[(APRIL_1, APRIL_1 + 6 * HOUR)], 12);
        assert_eq!(requests.len(), 6);
        assert_eq!(requests[1].start_ms, APRIL_1 + HOUR);
    }

    #[test]
    fn nearby_instants_share_a_request_distant_ones_do_not() {
        let t = APRIL_1 + 4 * HOUR;
        let requests = coalesce(
            &[(t, t), (t + 60_000, t + 60_000), (t + HOUR, t + HOUR)],
            12,
        );
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].members, vec![0, 1]);
    }

    fn windows_strategy() -> impl Strategy<Value = Vec<(i64, i64)>> {
        prop::collection::vec((0i64..48 * HOUR, 0i64..3 * HOUR), 1..40).prop_map(|spans| {
            spans
                .into_iter()
                .map(|(offset, len)| (APRIL_1 + offset, APRIL_1 + offset + len))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn sampling_starts_are_even_and_inside(count in 1u32..500, per_request in 1u32..40, hours in 1i64..2000) {
            let start = APRIL_1;
            let end = APRIL_1 + hours * HOUR;
            let (starts, span) = sample_starts(start, end, count, per_request);
            prop_assert_eq!(starts.len() as u32, count.div_ceil(per_request));
            prop_assert_eq!(starts[0], start);
            if span <= end - start {
                for s in &starts { prop_assert!(*s >= start && s + span <= end); }
            }
            let gaps: Vec<i64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
            if let Some(first) = gaps.first() {
                for g in &gaps { prop_assert!((g - first).abs() <= 1); }
            }
        }

        #[test]
        fn batching_never_exceeds_per_request(windows in windows_strategy(), per_request in 1u32..30) {
            for request in coalesce(&windows, per_request) {
                prop_assert!(nominal_files(request.start_ms, request.end_ms) <= i64::from(per_request));
            }
        }

        #[test]
        fn requests_cover_exactly_the_union_of_their_windows(windows in windows_strategy(), per_request in 1u32..30) {
            let requests = coalesce(&windows, per_request);
            // Every window instant is covered by a request that lists it.
            for (index, (start, end)) in windows.iter().enumerate() {
                let mut covered = *start;
                let mut mine: Vec<&RequestSpan> = requests.iter().filter(|r| r.members.contains(&index)).collect();
                mine.sort_by_key(|r| r.start_ms);
                for request in mine {
                    prop_assert!(request.start_ms <= covered, "hole before {}", covered);
                    covered = covered.max(request.end_ms);
                }
                prop_assert!(covered >= *end);
            }
            // A request never reaches outside its windows, and never bridges a gap of a whole file.
            for request in &requests {
                let member_start = request.members.iter().map(|&i| windows[i].0).min().unwrap();
                let member_end = request.members.iter().map(|&i| windows[i].1).max().unwrap();
                prop_assert!(request.start_ms >= member_start && request.end_ms <= member_end.max(member_start));
                let mut spans: Vec<(i64, i64)> = request.members.iter().map(|&i| windows[i]).collect();
                spans.sort();
                let mut reach = spans[0].1.max(spans[0].0);
                for (start, end) in spans.iter().skip(1) {
                    if start < &request.end_ms && *start > request.start_ms {
                        prop_assert!(start - reach < FILE_MS);
                    }
                    reach = reach.max(*end);
                }
            }
            // Requests of one group never overlap.
            let mut sorted = requests.clone();
            sorted.sort_by_key(|r| r.start_ms);
            for pair in sorted.windows(2) {
                prop_assert!(pair[0].end_ms <= pair[1].start_ms);
            }
        }
    }
}
