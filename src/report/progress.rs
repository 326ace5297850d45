//! Live run reporting: executor [`Event`]s → progress bars on a terminal, or plain lines.
//!
//! Input: the events of one `run`, in order, and the number of ONC nodes and clips to expect.
//! Output: on a terminal, two bars on stderr — ONC requests (queued / processing / done, with
//! ONC's progress messages) and files (count, bytes, rate, ETA) — with failures and warnings
//! printed above them; otherwise (`--no-progress`, a pipe, CI) one plain line per event, so logs
//! stay greppable. `--quiet` keeps only failures.

use std::collections::HashSet;
use std::time::Duration;

use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::exec::Event;

/// How many things the run will touch, for the bars' lengths.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expected {
    /// Product request and archive listing nodes.
    pub onc_nodes: u64,
    /// Clip nodes.
    pub clips: u64,
}

/// Where events go.
pub struct Reporter {
    output: Output,
    quiet: bool,
    /// Nodes submitted (or re-attached) and not finished: "processing".
    processing: HashSet<String>,
    /// Nodes finished: cached, done or failed.
    finished: u64,
    expected: Expected,
    files_expected: u64,
    files: u64,
    bytes: u64,
    clips: u64,
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
    pub fn new(bars: bool, quiet: bool, expected: Expected) -> Self {
        let output = if bars && !quiet {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let requests = multi.add(ProgressBar::new(expected.onc_nodes));
            requests.set_style(style("{spinner} ONC requests [{bar:30}] {pos}/{len} {msg}"));
            requests.enable_steady_tick(Duration::from_millis(200));
            let files = multi.add(ProgressBar::new(0));
            files.set_style(style(
                "  files        [{bar:30}] {pos}/{len} {msg} ({per_sec}, ETA {eta})",
            ));
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
            processing: HashSet::new(),
            finished: 0,
            expected,
            files_expected: 0,
            files: 0,
            bytes: 0,
            clips: 0,
        };
        reporter.refresh();
        reporter
    }

    /// Shows one event.
    pub fn event(&mut self, event: &Event) {
        match event {
            Event::Submitted { node, .. } | Event::Reattached { node, .. } => {
                self.processing.insert(node.clone());
            }
            Event::RunComplete { files, .. } => self.files_expected += u64::from(*files),
            Event::Listed { to_download, .. } => self.files_expected += *to_download as u64,
            Event::Downloaded { bytes, .. } => {
                self.files += 1;
                self.bytes += bytes;
            }
            Event::Cached { node, .. } | Event::Done { node, .. } | Event::Failed { node, .. } => {
                self.processing.remove(node);
                self.finished += 1;
            }
            Event::Clipped { .. }
            | Event::ClipCached { .. }
            | Event::ClipSkipped { .. }
            | Event::ClipFailed { .. } => {
                self.clips += 1;
            }
            Event::Progress { .. } | Event::Warning { .. } => {}
        }
        let important = matches!(event, Event::Failed { .. } | Event::ClipFailed { .. });
        match &self.output {
            Output::Plain => {
                if important || !self.quiet {
                    eprintln!("{}", super::event_line(event));
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
        let processing = self.processing.len() as u64;
        let queued = self
            .expected
            .onc_nodes
            .saturating_sub(self.finished + processing);
        format!(
            "{queued} queued · {processing} processing · {} done",
            self.finished
        )
    }

    fn refresh(&self) {
        if let Output::Bars {
            requests, files, ..
        } = &self.output
        {
            requests.set_position(self.finished);
            if !requests.message().contains("ONC:") || self.processing.is_empty() {
                requests.set_message(self.counts());
            }
            files.set_length(self.files_expected.max(self.files));
            files.set_position(self.files);
            let clips = if self.expected.clips > 0 {
                format!(" · clips {}/{}", self.clips, self.expected.clips)
            } else {
                String::new()
            };
            files.set_message(format!("{}{clips}", HumanBytes(self.bytes)));
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

    fn event(kind: &str, node: &str) -> Event {
        let what = "ICLISTENHF6324 HSD mat".to_string();
        let node = node.to_string();
        match kind {
            "submitted" => Event::Submitted {
                node,
                what,
                dp_request_id: 1,
                estimate: None,
            },
            "complete" => Event::RunComplete {
                node,
                dp_run_id: 2,
                files: 3,
            },
            "downloaded" => Event::Downloaded {
                node,
                file: "a.mat".into(),
                bytes: 10,
            },
            "clip failed" => Event::ClipFailed {
                node,
                what,
                reason: "its source files could not be fetched".into(),
            },
            "done" => Event::Done {
                node,
                what,
                files: 3,
            },
            _ => Event::Cached {
                node,
                what,
                files: 3,
            },
        }
    }

    #[test]
    fn counts_follow_the_runs_through_their_states() {
        let mut reporter = Reporter::new(
            false,
            true,
            Expected {
                onc_nodes: 3,
                clips: 0,
            },
        );
        assert_eq!(reporter.counts(), "3 queued · 0 processing · 0 done");
        reporter.event(&event("cached", "a"));
        reporter.event(&event("submitted", "b"));
        reporter.event(&event("complete", "b"));
        reporter.event(&event("downloaded", "b"));
        assert_eq!(reporter.counts(), "1 queued · 1 processing · 1 done");
        reporter.event(&event("done", "b"));
        assert_eq!(reporter.counts(), "1 queued · 0 processing · 2 done");
        assert_eq!(
            (reporter.files, reporter.bytes, reporter.files_expected),
            (1, 10, 3)
        );
    }

    #[test]
    fn failed_clips_count_as_clips_not_as_onc_requests() {
        let mut reporter = Reporter::new(
            false,
            true,
            Expected {
                onc_nodes: 1,
                clips: 2,
            },
        );
        reporter.event(&event("clip failed", "c1"));
        reporter.event(&event("clip failed", "c2"));
        assert_eq!(reporter.counts(), "1 queued · 0 processing · 0 done");
        assert_eq!(reporter.clips, 2);
    }
}
