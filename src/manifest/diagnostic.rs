//! Diagnostics: every problem found in a manifest or request file, with where it is.
//!
//! Input: a source file's text and a byte span (TOML), a row and field (CSV) or a JSON path.
//! Output: [`Diagnostic`] values rendered as `file:line:col: error: message` plus the source line
//! and a caret (`human`), GitHub workflow annotations (`github`) or JSON objects (`json`).
//!
//! The renderer is written by hand (about 60 lines) rather than with `annotate-snippets`/`miette`
//! because the three output formats must stay byte-stable for golden tests and CI annotations, and
//! a diagnostic here never spans more than one line.

use std::fmt::Write as _;
use std::ops::Range;

use serde::Serialize;

/// How bad a problem is. Errors make `validate` exit 2; warnings are reported and tolerated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// Where a problem is. TOML and JSON problems have lines; CSV problems have a row and a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Location {
    /// A position in a text file (1-based line and column, counted in characters).
    Text {
        line: usize,
        column: usize,
        /// Width of the highlighted text, in characters (at least 1).
        width: usize,
        /// The whole source line, for the caret display.
        #[serde(skip)]
        source_line: String,
    },
    /// A CSV data row (1-based, header excluded) and a column name.
    Row { row: usize, field: String },
    /// A path inside a JSON document such as `requests[3].timestamp`.
    JsonPath { path: String },
    /// The file as a whole (unreadable, empty, wrong format).
    File,
}

/// One problem in one input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: String,
    pub location: Location,
    pub message: String,
    /// A suggestion such as "did you mean `device`?" or the list of valid values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(file: &str, location: Location, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            file: file.to_owned(),
            location,
            message: message.into(),
            help: None,
        }
    }

    pub fn warning(file: &str, location: Location, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(file, location, message)
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Where it sorts in its file: the file-wide ones first, then by line and column (or row);
    /// JSON paths keep the order they were found in (a stable sort).
    fn order(&self) -> (u8, usize, usize) {
        match &self.location {
            Location::File => (0, 0, 0),
            Location::Text { line, column, .. } => (1, *line, *column),
            Location::Row { row, .. } => (1, *row, 0),
            Location::JsonPath { .. } => (2, 0, 0),
        }
    }

    /// `file:line:col`, `file:row N, field F` or `file:$.path`: the prefix of a human line.
    pub fn position(&self) -> String {
        match &self.location {
            Location::Text { line, column, .. } => format!("{}:{line}:{column}", self.file),
            Location::Row { row, field } => format!("{}:row {row}, field `{field}`", self.file),
            Location::JsonPath { path } => format!("{}:{path}", self.file),
            Location::File => self.file.clone(),
        }
    }

    /// The human form: `file:line:col: error: message`, the source line with a caret, and help.
    pub fn render_human(&self) -> String {
        let severity = match self.severity {
            Severity::Error => crate::style::error("error"),
            Severity::Warning => crate::style::warning("warning"),
        };
        let mut out = format!("{}: {severity}: {}\n", self.position(), self.message);
        if let Location::Text {
            line,
            column,
            width,
            source_line,
        } = &self.location
        {
            let gutter = line.to_string().len();
            let _ = writeln!(out, "{line} | {source_line}");
            let _ = writeln!(
                out,
                "{:gutter$} | {}{}",
                "",
                " ".repeat(column.saturating_sub(1)),
                "^".repeat((*width).max(1)),
            );
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "  = help: {help}");
        }
        out
    }

    /// A GitHub Actions workflow command, so problems show up on the pull request's diff.
    pub fn render_github(&self) -> String {
        let command = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut message = self.message.clone();
        if let Some(help) = &self.help {
            message.push_str(" (help: ");
            message.push_str(help);
            message.push(')');
        }
        if let Location::Row { row, field } = &self.location {
            message = format!("row {row}, field `{field}`: {message}");
        }
        if let Location::JsonPath { path } = &self.location {
            message = format!("{path}: {message}");
        }
        let mut properties = format!("file={}", github_escape_property(&self.file));
        if let Location::Text { line, column, .. } = &self.location {
            let _ = write!(properties, ",line={line},col={column}");
        }
        format!("::{command} {properties}::{}", github_escape_data(&message))
    }
}

fn github_escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn github_escape_property(text: &str) -> String {
    github_escape_data(text)
        .replace(':', "%3A")
        .replace(',', "%2C")
}

/// A text file being diagnosed: turns byte spans into line/column locations.
pub struct SourceText<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

impl<'a> SourceText<'a> {
    pub fn new(name: &'a str, text: &'a str) -> Self {
        Self { name, text }
    }

    /// The location of a byte span. Spans past the end point at the last character.
    pub fn locate(&self, span: Range<usize>) -> Location {
        let start = floor_char_boundary(self.text, span.start.min(self.text.len()));
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let source_line = self.text[line_start..line_end].trim_end_matches('\r');
        let line = self.text[..start].matches('\n').count() + 1;
        let column = self.text[line_start..start].chars().count() + 1;
        let end = floor_char_boundary(self.text, span.end.clamp(start, line_end));
        let width = self.text[start..end].chars().count().max(1);
        Location::Text {
            line,
            column,
            width,
            source_line: source_line.to_owned(),
        }
    }

    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(self.name, self.locate(span), message)
    }

    pub fn warning(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        Diagnostic::warning(self.name, self.locate(span), message)
    }
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while index > 0 && !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// The closest candidate to a misspelt name, if it is close enough to be a plausible typo.
pub fn closest<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|candidate| (strsim::damerau_levenshtein(name, candidate), candidate))
        .filter(|(distance, candidate)| {
            // A typo keeps most of the word: "devise" → "device", not "b" → "a".
            *distance <= (candidate.len().max(name.len()) / 3).max(1)
                && *distance < candidate.len().min(name.len())
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// All diagnostics rendered in one of the `validate --format` forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiagnosticFormat {
    Human,
    Json,
    Github,
}

/// Sorts each file's diagnostics as a reader goes through the file (see `Diagnostic::order`),
/// whichever check found them first; files stay in the order their first problem was found.
pub fn sort_by_position(diagnostics: &mut [Diagnostic]) {
    let mut files: Vec<String> = Vec::new();
    for diagnostic in diagnostics.iter() {
        if !files.contains(&diagnostic.file) {
            files.push(diagnostic.file.clone());
        }
    }
    diagnostics.sort_by_key(|diagnostic| {
        let file = files.iter().position(|f| *f == diagnostic.file);
        (file, diagnostic.order())
    });
}

pub fn render_all(diagnostics: &[Diagnostic], format: DiagnosticFormat) -> String {
    match format {
        DiagnosticFormat::Human => diagnostics
            .iter()
            .map(Diagnostic::render_human)
            .collect::<Vec<_>>()
            .join("\n"),
        DiagnosticFormat::Github => diagnostics
            .iter()
            .map(|d| d.render_github() + "\n")
            .collect(),
        DiagnosticFormat::Json => {
            serde_json::to_string_pretty(diagnostics).unwrap_or_else(|_| "[]".to_owned()) + "\n"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_problems_read_from_top_to_bottom_whichever_check_found_them() {
        let text = |line, column| Location::Text {
            line,
            column,
            width: 1,
            source_line: String::new(),
        };
        let mut found = vec![
            Diagnostic::error("m.toml", text(40, 3), "found by the planner"),
            Diagnostic::warning("m.toml", text(7, 1), "found by the loader"),
            Diagnostic::error("m.toml", Location::File, "the file"),
            Diagnostic::error("m.toml", text(7, 0), "same line, earlier column"),
        ];
        // Another file's problem stays apart, in the place its file came.
        found.insert(
            1,
            Diagnostic::error("calls.json", text(1, 1), "another file"),
        );
        sort_by_position(&mut found);
        assert_eq!(found[4].message, "another file");
        found.pop();
        let order: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            order,
            [
                "the file",
                "same line, earlier column",
                "found by the loader",
                "found by the planner"
            ]
        );
    }

    #[test]
    fn caret_points_at_span_in_characters() {
        let source = SourceText::new("m.toml", "a = 1\nκey = \"x\"\n");
        let diagnostic = source.error(7..10, "unknown key `κey`");
        assert_eq!(
            diagnostic.render_human(),
            "m.toml:2:1: error: unknown key `κey`\n2 | κey = \"x\"\n  | ^^^\n"
        );
    }

    #[test]
    fn closest_suggests_typos_only() {
        let keys = ["device", "range", "sample"];
        assert_eq!(closest("devise", keys), Some("device"));
        assert_eq!(closest("zzzzzzzz", keys), None);
    }

    #[test]
    fn github_escapes_newlines_and_commas_in_file() {
        let d = Diagnostic::error("a,b.toml", Location::File, "x\ny");
        assert_eq!(d.render_github(), "::error file=a%2Cb.toml::x%0Ay");
    }
}
