//! Problems found while reading a request file: every diagnostic goes through one [`Sink`].
//!
//! Input: errors and warnings from every stage (file layout, header, fields, values), each with
//! its [`Location`]. Output: the file's [`Diagnostic`]s in the order they were met, each reported
//! once (a bad default is met by every request that inherits it), and a running error count that
//! tells a request whether any of its fields failed. Errors: none of its own.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use super::fields::Given;
use crate::manifest::diagnostic::{Diagnostic, Location};

/// A JSON value's kind in words, for "expected ..., found ..." messages at every stage.
pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Collects diagnostics. A bad default is met once per request; it is reported once.
pub(super) struct Sink<'f> {
    pub(super) file: &'f str,
    pub(super) diagnostics: Vec<Diagnostic>,
    seen: HashSet<String>,
    /// Errors met, counting repeats, so each request knows whether it had one.
    pub(super) errors: usize,
    /// `data_product_options` texts already read without error, and what they gave.
    pub(super) options_cache: HashMap<String, BTreeMap<String, String>>,
}

impl<'f> Sink<'f> {
    pub(super) fn new(file: &'f str) -> Self {
        Self {
            file,
            diagnostics: Vec::new(),
            seen: HashSet::new(),
            errors: 0,
            options_cache: HashMap::new(),
        }
    }

    pub(super) fn push(&mut self, diagnostic: Diagnostic) {
        if diagnostic.is_error() {
            self.errors += 1;
        }
        if self.seen.insert(format!("{diagnostic:?}")) {
            self.diagnostics.push(diagnostic);
        }
    }

    pub(super) fn error(&mut self, at: &Location, message: impl Into<String>) {
        self.push(Diagnostic::error(self.file, at.clone(), message));
    }

    pub(super) fn error_help(
        &mut self,
        at: &Location,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(Diagnostic::error(self.file, at.clone(), message).with_help(help));
    }

    pub(super) fn warning_help(
        &mut self,
        at: &Location,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(Diagnostic::warning(self.file, at.clone(), message).with_help(help));
    }

    pub(super) fn type_error(&mut self, given: &Given, expected: &str) {
        let message = format!("expected {expected}, found {}", given.kind());
        self.error(&given.at(), message);
    }
}
