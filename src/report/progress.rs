//! Live run reporting: executor [`Event`]s → progress bars on a terminal, or plain lines.
//!
//! Input: the events of one `run`, in order, and the number of ONC nodes and clips to expect.
//! Output: on a terminal, two bars on stderr — ONC requests (queued / processing / done, with
//! ONC's progress messages) and files (count, bytes, rate, ETA) — with failures and warnings
//! printed above them; otherwise (`--no-progress`, a pipe, CI) one plain line per event, each
//! starting with its UTC time, so logs stay greppable. `--quiet` keeps only failures.

use std::time::Duration;

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::exec::{Event, RunStats, Update};

/// The bars' templates; `wide_msg` cuts ONC's progress messages at the terminal's width
/// instead of wrapping them, which would scroll the bars up the screen on every redraw.
const REQUESTS_BAR: &str = "{spinner} ONC requests [{bar:30}] {pos}/{len} {wide_msg}";
const FILES_BAR: &str = "  files        [{bar:30}] {pos}/{len} ({per_sec}, ETA {eta}) {wide_msg}";

/// The time a plain log line is printed, UTC to the second (`2026-12-06T05:45:50Z`): a batch
/// job's log then says when each run was submitted, re-attached or downloaded.
fn log_time() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Where events go.
pub struct Reporter {
    output: Output,
    quiet: bool,
    /// The statistics after the last event (the executor counts; the reporter only shows).
    stats: RunStats,
}

enum Output {
    Plain,
    Bars {
        // Kept so the bars stay registered with one draw target.
        _multi: MultiProgress,
        requests: ProgressBar,
        files: ProgressBar,
    },
}

impl Reporter {
    /// Bars when `bars` (stderr is a terminal and `--no-progress` was not given), lines otherwise.
    /// `stats` says what the run will touch (the bars' lengths).
    pub fn new(bars: bool, quiet: bool, stats: RunStats) -> Self {
        let output = if bars && !quiet {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let requests = multi.add(ProgressBar::new(stats.onc_nodes));
            requests.set_style(style(REQUESTS_BAR));
            requests.enable_steady_tick(Duration::from_millis(200));
            let files = multi.add(ProgressBar::new(0));
            files.set_style(style(FILES_BAR));
            Output::Bars {
                _multi: multi,
                requests,
                files,
            }
        } else {
            Output::Plain
        };
        let reporter = Reporter {
            output,
            quiet,
            stats,
        };
        reporter.refresh();
        reporter
    }

    /// Shows one event, with the statistics it led to.
    pub fn update(&mut self, update: &Update) {
        self.stats = update.stats;
        let event = &update.event;
        let important = matches!(event, Event::Failed { .. } | Event::ClipFailed { .. });
        match &self.output {
            Output::Plain => {
                if important || !self.quiet {
                    eprintln!("{} {}", log_time(), super::event_line(event));
                }
            }
            Output::Bars { requests, .. } => match event {
                // Failures, warnings and skips stay on screen above the bars.
                Event::Failed { .. }
                | Event::ClipFailed { .. }
                | Event::Warning { .. }
                | Event::ClipSkipped { .. } => {
                    requests.println(super::event_line(event));
                }
                Event::Progress {
                    status, message, ..
                } => {
                    let text = if message.is_empty() {
                        status.clone()
                    } else {
                        format!("{status}: {message}")
                    };
                    requests.set_message(format!("{} · ONC: {text}", self.counts()));
                }
                _ => {}
            },
        }
        self.refresh();
    }

    /// "3 queued · 2 processing · 4 done".
    fn counts(&self) -> String {
        let s = &self.stats;
        let queued = s.onc_nodes.saturating_sub(s.onc_finished + s.onc_in_flight);
        format!(
            "{queued} queued · {} processing · {} done",
            s.onc_in_flight, s.onc_finished
        )
    }

    fn refresh(&self) {
        if let Output::Bars {
            requests, files, ..
        } = &self.output
        {
            let s = &self.stats;
            requests.set_length(s.onc_nodes);
            requests.set_position(s.onc_finished);
            if !requests.message().contains("ONC:") || s.onc_in_flight == 0 {
                requests.set_message(self.counts());
            }
            files.set_length(s.files_expected.max(s.files_downloaded));
            files.set_position(s.files_downloaded);
            let clips = if s.clips_total > 0 {
                format!(" · clips {}/{}", s.clips_finished, s.clips_total)
            } else {
                String::new()
            };
            files.set_message(format!("{}{clips}", HumanBytes(s.bytes_downloaded)));
        }
    }

    /// Removes the bars (the summary follows as plain text).
    pub fn finish(self) {
        if let Output::Bars {
            requests, files, ..
        } = self.output
        {
            requests.finish_and_clear();
            files.finish_and_clear();
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    // The templates are constants; a bad one falls back to indicatif's default bar.
    ProgressStyle::with_template(template)
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_templates_parse() {
        // `style` would fall back to indicatif's default silently.
        for template in [REQUESTS_BAR, FILES_BAR] {
            assert!(ProgressStyle::with_template(template).is_ok(), "{template}");
        }
    }
    use crate::dag::NodeKind;
    use crate::exec::StatsKeeper;

    /// Feeds events through the executor's own counting, as a run does.
    fn feed(reporter: &mut Reporter, keeper: &mut StatsKeeper, event: Event) {
        keeper.apply(&event);
        reporter.update(&Update {
            event,
            stats: keeper.stats(),
        });
    }

    #[test]
    fn the_bars_show_the_executors_counts() {
        let mut keeper = StatsKeeper::new(3, 3, 0);
        let mut reporter = Reporter::new(false, true, keeper.stats());
        assert_eq!(reporter.counts(), "3 queued · 0 processing · 0 done");
        let what = || "ICLISTENHF6324 product HSD.mat".to_string();
        feed(
            &mut reporter,
            &mut keeper,
            Event::Cached {
                node: "a".into(),
                kind: NodeKind::ProductRequest,
                what: what(),
                files: 3,
            },
        );
        feed(
            &mut reporter,
            &mut keeper,
            Event::Submitted {
                node: "b".into(),
                what: what(),
                dp_request_id: 1,
                estimate: None,
            },
        );
        assert_eq!(reporter.counts(), "1 queued · 1 processing · 1 done");
        feed(
            &mut reporter,
            &mut keeper,
            Event::Done {
                node: "b".into(),
                kind: NodeKind::ProductRequest,
                what: what(),
                files: 3,
            },
        );
        assert_eq!(reporter.counts(), "1 queued · 0 processing · 2 done");
        assert_eq!(reporter.stats, keeper.stats());
    }
}
