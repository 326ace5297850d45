//! An [`Estimate`] in words, for `plan` and the end of a run: per fetch stage and in total, how ONC
//! makes the files, the free space, and requests longer than `max_wait`.
//!
//! Input: an estimate and the plan's settings (for the limits the wall time assumed). Output:
//! text lines. No errors.

use std::fmt::Write as _;

use crate::estimate::{Estimate, Production, Space};
use crate::plan::Settings;

/// Bytes in decimal units, as ONC writes them (`48.0 MB`).
pub fn bytes_text(bytes: u64) -> String {
    const UNITS: [(&str, f64); 4] = [("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)];
    let value = bytes as f64;
    for (unit, size) in UNITS {
        if value >= size {
            return format!("{:.1} {unit}", value / size);
        }
    }
    format!("{bytes} bytes")
}

/// A duration in the unit that reads best (`35 s`, `8.2 min`, `3.1 h`).
pub fn seconds_text(seconds: f64) -> String {
    if seconds > 0.0 && seconds < 0.95 {
        // The simulator's scaled clock: a 3 s stagger at time_scale 0.001 is 3 ms.
        format!("{:.0} ms", seconds * 1000.0)
    } else if seconds < 90.0 {
        format!("{seconds:.0} s")
    } else if seconds < 5_400.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3_600.0)
    }
}

/// `1 file`, `2 files`.
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn free_text(free: Option<u64>) -> String {
    free.map_or_else(|| "unknown".to_owned(), bytes_text)
}

fn space_text(space: &Space) -> String {
    let sharing = if space.same_file_system {
        "one file system: outputs are hard links into the cache, their bytes count once"
    } else {
        "two file systems: outputs are copies"
    };
    format!(
        "free space: cache {}, output {} ({sharing})",
        free_text(space.cache_free_bytes),
        free_text(space.output_free_bytes)
    )
}

/// The estimate block of `plan`'s text: a heading, one line per fetch stage (and a line for
/// what ONC defaults), the total, the free space, and a warning per stage whose requests
/// outlast `max_wait`.
pub fn estimate_text(estimate: &Estimate, settings: &Settings) -> String {
    let mut out = String::from(
        "\nestimate (what is not cached yet; figures and assumptions in the README, \"Estimates\"):\n",
    );
    for stage in &estimate.stages {
        let mut line = format!("  fetch {}: ", stage.stage);
        match stage.production {
            Production::Archived => line.push_str(&count(stage.listings, "archive listing")),
            _ => line.push_str(&count(stage.requests, "request")),
        }
        let _ = write!(
            line,
            ", {}, {}; {}: {}",
            count(stage.files, "file"),
            bytes_text(stage.bytes),
            stage.production.as_str(),
            stage.basis
        );
        match stage.production {
            Production::OnDemand => {
                let _ = write!(
                    line,
                    "; ONC processing {}, {} of ONC server time",
                    seconds_text(stage.onc_seconds),
                    seconds_text(stage.onc_server_seconds)
                );
            }
            Production::PreGenerated => {
                let _ = write!(line, "; ONC processing {}", seconds_text(stage.onc_seconds));
            }
            Production::Archived => {}
        }
        let _ = writeln!(out, "{line}");
        if let Some(note) = stage.default_product {
            let _ = writeln!(out, "    no options given: {note}");
        }
    }
    let total = &estimate.total;
    let _ = writeln!(
        out,
        "  total: {} + {}, {}, {}; ONC processing {} ({} of ONC server time)",
        count(total.requests, "request"),
        count(total.listings, "archive listing"),
        count(total.files, "file"),
        bytes_text(total.bytes),
        seconds_text(total.onc_seconds),
        seconds_text(total.onc_server_seconds),
    );
    let _ = writeln!(
        out,
        "  expected wall time: {} (max_runs {}, stagger {}, {} download workers at {}/s each, {}/s in all)",
        seconds_text(total.wall_seconds),
        settings.max_runs,
        seconds_text(settings.stagger_ms as f64 / 1000.0),
        settings.download_workers,
        bytes_text(estimate.stream_bytes_per_second as u64),
        bytes_text(estimate.link_bytes_per_second as u64),
    );
    let _ = writeln!(out, "  {}", space_text(&estimate.space));
    if let Some(no_room) = estimate.no_room() {
        let _ = writeln!(
            out,
            "  does not fit: {} to download, {} free in the cache; `run` refuses it (--force to run anyway)",
            bytes_text(no_room.needed_bytes),
            bytes_text(no_room.free_bytes)
        );
    }
    out.push_str(&warning_lines(estimate));
    out
}

/// One `warning:` line per fetch stage whose requests ONC would process for longer than
/// `max_wait`, with a `per_request` that would fit.
pub fn warning_lines(estimate: &Estimate) -> String {
    let mut out = String::new();
    for warning in &estimate.warnings {
        let _ = writeln!(
            out,
            "warning: fetch {}: one request of {} files takes about {} of ONC processing, longer than max_wait ({}); per_request = {} would fit",
            warning.stage,
            warning.files,
            seconds_text(warning.seconds),
            seconds_text(warning.max_wait_seconds),
            warning.per_request
        );
    }
    out
}

/// One line after a run's summary: what was estimated before it started, and what it did.
pub fn comparison_line(estimate: &Estimate, summary: &crate::exec::RunSummary) -> String {
    format!(
        "estimated {}, {} in {}; downloaded {}, {} in {:.1} s\n",
        count(estimate.total.files, "file"),
        bytes_text(estimate.total.bytes),
        seconds_text(estimate.total.wall_seconds),
        count(summary.stats.files_downloaded, "file"),
        bytes_text(summary.stats.bytes_downloaded),
        summary.wall_seconds
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_in_their_unit() {
        assert_eq!(bytes_text(48_000_000), "48.0 MB");
        assert_eq!(bytes_text(320_000_000_000), "320.0 GB");
        assert_eq!(bytes_text(999), "999 bytes");
        assert_eq!(seconds_text(35.0), "35 s");
        assert_eq!(seconds_text(0.0), "0 s");
        assert_eq!(seconds_text(0.01), "10 ms");
        assert_eq!(seconds_text(490.0), "8.2 min");
        assert_eq!(seconds_text(11_160.0), "3.1 h");
    }
}
