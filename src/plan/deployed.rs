//! A plan against ONC's deployments: every window on a device that was in the water then, and
//! site windows resolved to the device(s) deployed there.
//!
//! Input: a [`Plan`] and [`KnownDeployments`] (what ONC's `deployments` service answered, read
//! by the caller — this module does no I/O). Output: the plan with each window's location set
//! from its deployment, and each site window replaced by one window per device deployed during
//! it (clipped to that deployment); and the diagnostics. Errors (diagnostics pointed at the
//! window's manifest position or request row): a device or site ONC does not know; a window
//! outside every deployment, naming the deployments that do exist. A window partly outside is a
//! warning naming the uncovered time. Devices or sites missing from `known` (not consulted,
//! e.g. offline with nothing cached) are left as they are; the caller says so.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::check::{Checker, p, with_index, with_key};
use super::time::rfc3339;
use super::types::{Plan, SiteWindow, Window, WindowOrigin};
use crate::manifest::{Diagnostic, Loaded, Location};
use onc_format::deployment::{Deployment, uncovered};

/// A device or a site: whose deployments a plan needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Deployed {
    Device(String),
    Site { location: String, category: String },
}

/// What ONC said about each device and site a plan needs: `Some(deployments)` (possibly
/// empty), or `None` when ONC does not know the code.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnownDeployments {
    pub answers: BTreeMap<Deployed, Option<Vec<Deployment>>>,
}

/// The devices and sites whose deployments `plan` needs, each once.
pub fn needed(plan: &Plan) -> BTreeSet<Deployed> {
    let mut needed: BTreeSet<Deployed> = BTreeSet::new();
    let mut last_device: Option<&str> = None;
    for window in &plan.windows {
        // Rows of one device come in runs: skip the set lookup for repeats.
        if last_device != Some(window.device.as_str()) {
            needed.insert(Deployed::Device(window.device.clone()));
            last_device = Some(&window.device);
        }
    }
    for site in &plan.site_windows {
        needed.insert(Deployed::Site {
            location: site.location.clone(),
            category: site.category.clone(),
        });
    }
    needed
}

/// Checks every window of `plan` against `known` and resolves its site windows; returns the
/// diagnostics (errors mean nothing may be ordered).
pub fn apply(loaded: &Loaded, plan: &mut Plan, known: &KnownDeployments) -> Vec<Diagnostic> {
    // No product is named here; the checker only needs somewhere to point.
    let products = super::KnownProducts::built_in();
    let mut check = Checker {
        loaded,
        products: &products,
        diagnostics: Vec::new(),
    };
    let mut unknown_reported: BTreeSet<(String, Deployed)> = BTreeSet::new();
    for window in &mut plan.windows {
        let who = Deployed::Device(window.device.clone());
        let Some(answer) = known.answers.get(&who) else {
            continue;
        };
        let Some(deployments) = answer else {
            if unknown_reported.insert((window.stage.clone(), who)) {
                report_unknown(&mut check, window, &format!("device `{}`", window.device));
            }
            continue;
        };
        let (start, end) = span_ms(window);
        match coverage(deployments, start, end) {
            Coverage::None => report_outside(&mut check, window, &window.device, deployments),
            Coverage::Partly(gaps) => report_partly(&mut check, window, &window.device, &gaps),
            Coverage::Whole => {}
        }
        window.location = location_of(deployments, start, end);
    }

    let sites = std::mem::take(&mut plan.site_windows);
    for SiteWindow {
        window,
        location,
        category,
    } in sites
    {
        let who = Deployed::Site {
            location: location.clone(),
            category: category.clone(),
        };
        let site = format!("{category} at {location}");
        let Some(answer) = known.answers.get(&who) else {
            check.push(
                diagnostic_at(&check, &window, format!("which {site} was deployed is unknown"))
                    .with_help("ONC's deployments were not consulted (offline, nothing cached): run `onc-pipe plan` online once"),
            );
            continue;
        };
        let Some(deployments) = answer else {
            if unknown_reported.insert((window.stage.clone(), who)) {
                report_unknown(&mut check, &window, &format!("location `{location}`"));
            }
            continue;
        };
        let (start, end) = span_ms(&window);
        match coverage(deployments, start, end) {
            Coverage::None => {
                report_outside(&mut check, &window, &site, deployments);
                continue;
            }
            Coverage::Partly(gaps) => report_partly(&mut check, &window, &site, &gaps),
            Coverage::Whole => {}
        }
        let location: Arc<str> = Arc::from(location.as_str());
        for deployment in deployments {
            let part = if window.is_instant {
                deployment.contains(start).then_some((start, start))
            } else {
                deployment.overlap(start, end)
            };
            let Some((from, to)) = part else { continue };
            let mut resolved = window.clone();
            resolved.device = deployment.device.clone();
            resolved.location = Some(Arc::clone(&location));
            resolved.start = instant(from).unwrap_or(window.start);
            resolved.end = instant(to).unwrap_or(window.end);
            plan.windows.push(resolved);
        }
    }
    check.diagnostics
}

/// How much of a window deployments cover.
enum Coverage {
    Whole,
    /// Some, with the uncovered parts.
    Partly(Vec<(i64, i64)>),
    None,
}

fn coverage(deployments: &[Deployment], start: i64, end: i64) -> Coverage {
    let gaps = uncovered(deployments, start, end);
    if gaps.is_empty() {
        Coverage::Whole
    } else if gaps == [(start, end)] {
        Coverage::None
    } else {
        Coverage::Partly(gaps)
    }
}

/// The window's `[start, end)` in ms (an instant: `start == end`).
fn span_ms(window: &Window) -> (i64, i64) {
    (
        window.start.timestamp_millis(),
        window.end.timestamp_millis(),
    )
}

fn instant(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// The location of the deployment covering most of `[start, end)` (the one containing an
/// instant).
fn location_of(deployments: &[Deployment], start: i64, end: i64) -> Option<Arc<str>> {
    deployments
        .iter()
        .filter_map(|d| {
            let covered = if start == end {
                d.contains(start).then_some(1)
            } else {
                d.overlap(start, end).map(|(lo, hi)| hi - lo)
            };
            covered.map(|c| (c, d))
        })
        .max_by_key(|(covered, _)| *covered)
        .filter(|(_, d)| !d.location.is_empty())
        .map(|(_, d)| Arc::from(d.location.as_str()))
}

fn report_unknown(check: &mut Checker<'_>, window: &Window, what: &str) {
    let diagnostic = diagnostic_at(check, window, format!("ONC does not know {what}"))
        .with_help("check the code's spelling and case in ONC's Oceans 3.0 data search");
    check.push(diagnostic);
}

fn report_outside(check: &mut Checker<'_>, window: &Window, who: &str, deployments: &[Deployment]) {
    let message = format!(
        "{} is outside every deployment of {who}",
        describe_window(window)
    );
    let is_site = window.device.is_empty();
    let help = if deployments.is_empty() {
        format!("ONC lists no deployment of {who}")
    } else {
        let list = deployments
            .iter()
            .map(|d| describe_deployment(d, is_site))
            .collect::<Vec<_>>()
            .join("; ");
        if is_site {
            format!("deployed at {who}: {list}")
        } else {
            format!("{who} was deployed {list}")
        }
    };
    let diagnostic = diagnostic_at(check, window, message).with_help(help);
    check.push(diagnostic);
}

fn report_partly(check: &mut Checker<'_>, window: &Window, who: &str, gaps: &[(i64, i64)]) {
    let missing_ms: i64 = gaps.iter().map(|(lo, hi)| hi - lo).sum();
    let message = format!(
        "{} is partly outside the deployments of {who}: {} not covered ({})",
        describe_window(window),
        describe_length(missing_ms),
        gaps.iter()
            .map(|(lo, hi)| format!("{} to {}", show(*lo), show(*hi)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let diagnostic = {
        let mut d = diagnostic_at(check, window, message);
        d.severity = crate::manifest::diagnostic::Severity::Warning;
        d.with_help("no data exists for that time; the rest of the window is fetched")
    };
    check.push(diagnostic);
}

/// "window 2024-04-01T00:00:00Z to 2024-04-01T06:00:00Z" (or "instant …"), with the sample
/// number or label when there is one.
fn describe_window(window: &Window) -> String {
    let what = if window.is_instant {
        format!("instant {}", rfc3339(window.start))
    } else {
        format!(
            "window {} to {}",
            rfc3339(window.start),
            rfc3339(window.end)
        )
    };
    match (&window.origin, &window.label) {
        (WindowOrigin::Sample { .. }, Some(label)) => format!("{what} ({label})"),
        (_, Some(label)) if window.origin != WindowOrigin::Row => format!("{what} (`{label}`)"),
        _ => what,
    }
}

/// "at SEVIP since 2021-03-01T00:00:00.000Z (still deployed)" for a device's deployment;
/// "ICLISTENHF1251 from … to …" for one at a site.
fn describe_deployment(deployment: &Deployment, at_site: bool) -> String {
    let who = if at_site {
        format!("{} ", deployment.device)
    } else if deployment.location.is_empty() {
        String::new()
    } else {
        format!("at {} ", deployment.location)
    };
    match deployment.end_ms {
        Some(end) => format!("{who}from {} to {}", show(deployment.begin_ms), show(end)),
        None => format!("{who}since {} (still deployed)", show(deployment.begin_ms)),
    }
}

fn describe_length(ms: i64) -> String {
    let minutes = ms / 60_000;
    if minutes >= 2 * 24 * 60 {
        format!("{} days", minutes / (24 * 60))
    } else if minutes >= 120 {
        format!("{} hours", minutes / 60)
    } else if minutes >= 1 {
        format!("{minutes} min")
    } else {
        format!("{} s", ms / 1000)
    }
}

fn show(ms: i64) -> String {
    instant(ms).map(rfc3339).unwrap_or_else(|| ms.to_string())
}

/// An error at the window's position: its request row, or its key in the manifest.
fn diagnostic_at(check: &Checker<'_>, window: &Window, message: String) -> Diagnostic {
    if let Some(row) = &window.row {
        let field = if window.is_instant {
            "timestamp"
        } else {
            "start"
        };
        let location = match row.origin.strip_prefix("row ").and_then(|n| n.parse().ok()) {
            Some(row) => Location::Row {
                row,
                field: field.into(),
            },
            None => Location::JsonPath {
                path: format!("{}.{field}", row.origin),
            },
        };
        return Diagnostic::error(&row.source_file, location, message);
    }
    let stage = p(&["plan", window.stage.as_str()]);
    let path = match window.origin {
        WindowOrigin::Range => with_key(stage, "range"),
        WindowOrigin::Sample { .. } => with_key(stage, "sample"),
        WindowOrigin::Listed { index } => with_index(with_key(stage, "windows"), index),
        WindowOrigin::Row => stage,
    };
    let span = check.loaded.spans.value_span(&path);
    check.loaded.source().error(span, message)
}

#[cfg(test)]
mod tests;
