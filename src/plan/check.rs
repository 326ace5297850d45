//! The checker: collects diagnostics while planning, pointed at manifest positions.
//!
//! Input: the [`Loaded`] manifest (its spans) and manifest paths built with [`p`], [`with_key`]
//! and [`with_index`]. Output: [`Diagnostic`]s (errors and warnings, with help) in the order they
//! were found, and checked values (times, durations, counts, device codes). Errors: each check
//! that fails adds its diagnostic and returns nothing or the default, so planning goes on and
//! reports every problem at once.

use chrono::{DateTime, Utc};

use super::time::{parse_duration_ms, toml_to_utc};
use crate::manifest::load::{PathSegment, key_path};
use crate::manifest::model::{DurationText, TimeValue};
use crate::manifest::{Diagnostic, Loaded};
use onc_format::device::{DEVICE_CODE_SHAPE, looks_like_device_code};

/// Collects problems while planning, pointing them at manifest spans.
pub(super) struct Checker<'a> {
    pub(super) loaded: &'a Loaded,
    /// The data product codes a fetch stage may name.
    pub(super) products: &'a super::KnownProducts,
    pub(super) diagnostics: Vec<Diagnostic>,
}

impl Checker<'_> {
    pub(super) fn push(&mut self, diagnostic: Diagnostic) -> &mut Diagnostic {
        self.diagnostics.push(diagnostic);
        let last = self.diagnostics.len() - 1;
        &mut self.diagnostics[last]
    }

    pub(super) fn error_at(
        &mut self,
        path: &[PathSegment],
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let span = self.loaded.spans.value_span(path);
        let diagnostic = self.loaded.source().error(span, message);
        self.push(diagnostic)
    }

    pub(super) fn warning_at(
        &mut self,
        path: &[PathSegment],
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let span = self.loaded.spans.value_span(path);
        let diagnostic = self.loaded.source().warning(span, message);
        self.push(diagnostic)
    }

    pub(super) fn key_error_at(
        &mut self,
        path: &[PathSegment],
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let span = self.loaded.spans.key_span(path);
        let diagnostic = self.loaded.source().error(span, message);
        self.push(diagnostic)
    }

    pub(super) fn time(
        &mut self,
        path: &[PathSegment],
        value: &TimeValue,
    ) -> Option<DateTime<Utc>> {
        match toml_to_utc(&value.0) {
            Ok(time) => Some(time),
            Err(message) => {
                self.error_at(path, message);
                None
            }
        }
    }

    pub(super) fn duration(
        &mut self,
        path: &[PathSegment],
        value: Option<&DurationText>,
        default_ms: i64,
    ) -> i64 {
        let Some(value) = value else {
            return default_ms;
        };
        match parse_duration_ms(&value.0) {
            Ok(ms) => ms,
            Err(message) => {
                self.error_at(path, message);
                default_ms
            }
        }
    }

    pub(super) fn positive(
        &mut self,
        path: &[PathSegment],
        value: Option<u32>,
        default: u32,
    ) -> u32 {
        match value {
            Some(0) => {
                self.error_at(path, "must be at least 1");
                default
            }
            Some(n) => n,
            None => default,
        }
    }

    /// Checks the shape of an ONC location or device-category code (`BACAX`, `HYDROPHONE`):
    /// 1 to 64 ASCII letters, digits, `.`, `_` or `-`. Returns whether it is valid.
    pub(super) fn site_code(&mut self, path: &[PathSegment], what: &str, code: &str) -> bool {
        let valid = !code.is_empty()
            && code.len() <= 64
            && code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid {
            self.error_at(
                path,
                format!("`{code}` does not look like an ONC {what} code"),
            )
            .help = Some(format!(
                "an ONC {what} code is letters and digits, such as {}",
                if what == "location" {
                    "`BACAX` or `SEVIP`"
                } else {
                    "`HYDROPHONE`"
                }
            ));
        }
        valid
    }

    pub(super) fn device(&mut self, path: &[PathSegment], code: &str) {
        if !looks_like_device_code(code) {
            self.error_at(
                path,
                format!("`{code}` does not look like an ONC device code"),
            )
            .help = Some(DEVICE_CODE_SHAPE.into());
        }
    }
}

pub(super) fn p(keys: &[&str]) -> Vec<PathSegment> {
    key_path(keys)
}

pub(super) fn with_index(mut path: Vec<PathSegment>, index: usize) -> Vec<PathSegment> {
    path.push(PathSegment::Index(index));
    path
}

pub(super) fn with_key(mut path: Vec<PathSegment>, key: &str) -> Vec<PathSegment> {
    path.push(PathSegment::Key(key.to_owned()));
    path
}

/// The path of the `index`th name in a `OneOrMany` value: `key[index]` when it was written as an
/// array, the key itself when it was a single string.
pub(super) fn name_path(
    check: &Checker<'_>,
    key_path: Vec<PathSegment>,
    index: usize,
) -> Vec<PathSegment> {
    if check
        .loaded
        .spans
        .get(&with_index(key_path.clone(), 0))
        .is_some()
    {
        with_index(key_path, index)
    } else {
        key_path
    }
}

/// Reports a reference to a stage that does not exist, suggesting the closest existing name or
/// listing them all. `kind` is "plan" or "fetch".
pub(super) fn dangling_reference(
    check: &mut Checker<'_>,
    path: &[PathSegment],
    kind: &str,
    name: &str,
    existing: &[String],
) {
    let help = match crate::manifest::diagnostic::closest(name, existing.iter().map(String::as_str))
    {
        Some(suggestion) => format!("did you mean `{suggestion}`?"),
        None => format!(
            "{kind} stages: {}",
            list_or_none(existing.iter().map(String::as_str))
        ),
    };
    check
        .error_at(path, format!("no {kind} stage named `{name}`"))
        .help = Some(help);
}

fn list_or_none<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}
