//! Loading a TOML manifest: text → [`Manifest`] + [`SpanIndex`], or every problem found.
//!
//! Input: the manifest's text and the name to show in messages. Output: the typed manifest and an
//! index from each key path (`plan.calls.windows[1].start`) to the byte spans of its key and value,
//! so later stages can point a caret at any value. Errors: TOML syntax errors (all of them, via
//! toml's recovering parser), every unknown key (with the closest valid key), and the first type
//! error serde meets (serde cannot continue past one).

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::diagnostic::{Diagnostic, SourceText, closest};
use super::model::{Manifest, schema_json};

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

/// Renders a key path as users write it: `plan.calls.windows[1].start`.
pub fn render_path(path: &[PathSegment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            PathSegment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                let bare = !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if bare {
                    out.push_str(key);
                } else {
                    out.push_str(&format!("{key:?}"));
                }
            }
            PathSegment::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}

/// Builds a path from string keys: `path(&["plan", "calls", "device"])`.
pub fn key_path(keys: &[&str]) -> Vec<PathSegment> {
    keys.iter()
        .map(|key| PathSegment::Key((*key).to_owned()))
        .collect()
}

/// Where a key and its value sit in the manifest's text.
#[derive(Debug, Clone, Default)]
pub struct SpanEntry {
    /// The key's span (absent for array elements).
    pub key: Option<Range<usize>>,
    /// The value's span.
    pub value: Range<usize>,
}

/// Key path → spans, for every key and array element of a manifest.
#[derive(Debug, Clone, Default)]
pub struct SpanIndex {
    entries: HashMap<Vec<PathSegment>, SpanEntry>,
}

impl SpanIndex {
    fn from_table(table: &DeTable<'_>) -> Self {
        let mut index = Self::default();
        let mut path = Vec::new();
        index.add_table(&mut path, table);
        index
    }

    fn add_table(&mut self, path: &mut Vec<PathSegment>, table: &DeTable<'_>) {
        for (key, value) in table {
            path.push(PathSegment::Key(key.get_ref().to_string()));
            self.entries.insert(
                path.clone(),
                SpanEntry {
                    key: Some(key.span()),
                    value: value.span(),
                },
            );
            self.add_value(path, value);
            path.pop();
        }
    }

    fn add_value(&mut self, path: &mut Vec<PathSegment>, value: &Spanned<DeValue<'_>>) {
        match value.get_ref() {
            DeValue::Table(table) => self.add_table(path, table),
            DeValue::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    path.push(PathSegment::Index(index));
                    self.entries.insert(
                        path.clone(),
                        SpanEntry {
                            key: None,
                            value: item.span(),
                        },
                    );
                    self.add_value(path, item);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    pub fn get(&self, path: &[PathSegment]) -> Option<&SpanEntry> {
        self.entries.get(path)
    }

    /// The span of a value, falling back to the nearest enclosing key that has one, then to the
    /// start of the file: a diagnostic always has somewhere to point.
    pub fn value_span(&self, path: &[PathSegment]) -> Range<usize> {
        for len in (0..=path.len()).rev() {
            if let Some(entry) = self.entries.get(&path[..len]) {
                return if len == path.len() {
                    entry.value.clone()
                } else {
                    entry.key.clone().unwrap_or_else(|| entry.value.clone())
                };
            }
        }
        0..0
    }

    /// The span of a key (or of the value for array elements), with the same fallbacks.
    pub fn key_span(&self, path: &[PathSegment]) -> Range<usize> {
        match self.entries.get(path) {
            Some(SpanEntry { key: Some(key), .. }) => key.clone(),
            _ => self.value_span(path),
        }
    }
}

/// A manifest read from disk (or built from a request file), ready for planning.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The name shown in messages (the path as the user gave it).
    pub file: String,
    /// The manifest's location; request-file paths inside it are relative to its folder.
    pub path: PathBuf,
    pub text: String,
    pub manifest: Manifest,
    pub spans: SpanIndex,
}

impl Loaded {
    pub fn source(&self) -> SourceText<'_> {
        SourceText::new(&self.file, &self.text)
    }
}

/// Parses a manifest's text. Returns the manifest when it could be built (possibly with
/// warnings) and every diagnostic found.
pub fn load_manifest_text(
    file: &str,
    text: &str,
) -> (Option<(Manifest, SpanIndex)>, Vec<Diagnostic>) {
    let source = SourceText::new(file, text);
    let mut diagnostics = Vec::new();
    if !text.trim_start().starts_with("#:schema") {
        diagnostics.push(
            source
                .warning(0..0, "manifest does not start with a `#:schema` directive")
                .with_help(
                    "add `#:schema ../schemas/manifest.schema.json` (path relative to the manifest) as the first line so editors validate and complete it",
                ),
        );
    }
    let (table, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        for error in syntax_errors {
            let span = error.span().unwrap_or(0..0);
            diagnostics.push(source.error(span, format!("invalid TOML: {}", error.message())));
        }
        return (None, diagnostics);
    }
    let spans = SpanIndex::from_table(table.get_ref());
    let schema: serde_json::Value = serde_json::from_str(&schema_json()).unwrap_or_default();

    let mut unknown = Vec::new();
    let deserializer = toml::de::Deserializer::from(table);
    let result: Result<Manifest, _> = serde_ignored::deserialize(deserializer, |path| {
        unknown.push(convert_ignored_path(&path));
    });
    for path in unknown {
        diagnostics.push(unknown_key_diagnostic(&source, &spans, &schema, &path));
    }
    match result {
        Ok(manifest) => (Some((manifest, spans)), diagnostics),
        Err(error) => {
            let span = error.span().unwrap_or(0..0);
            diagnostics.push(source.error(span, error.message().to_owned()));
            (None, diagnostics)
        }
    }
}

fn convert_ignored_path(path: &serde_ignored::Path<'_>) -> Vec<PathSegment> {
    let mut segments = Vec::new();
    let mut current = path;
    loop {
        match current {
            serde_ignored::Path::Root => break,
            serde_ignored::Path::Seq { parent, index } => {
                segments.push(PathSegment::Index(*index));
                current = parent;
            }
            serde_ignored::Path::Map { parent, key } => {
                segments.push(PathSegment::Key(key.clone()));
                current = parent;
            }
            serde_ignored::Path::Some { parent }
            | serde_ignored::Path::NewtypeStruct { parent }
            | serde_ignored::Path::NewtypeVariant { parent } => current = parent,
        }
    }
    segments.reverse();
    segments
}

fn unknown_key_diagnostic(
    source: &SourceText<'_>,
    spans: &SpanIndex,
    schema: &serde_json::Value,
    path: &[PathSegment],
) -> Diagnostic {
    let (parent, name) = match path.split_last() {
        Some((PathSegment::Key(name), parent)) => (parent, name.as_str()),
        _ => (path, ""),
    };
    let where_ = if parent.is_empty() {
        "at the top level".to_owned()
    } else {
        format!("in `{}`", render_path(parent))
    };
    let diagnostic = source.error(
        spans.key_span(path),
        format!("unknown key `{name}` {where_}"),
    );
    let valid = known_keys(schema, parent);
    match closest(name, valid.iter().map(String::as_str)) {
        Some(suggestion) => diagnostic.with_help(format!("did you mean `{suggestion}`?")),
        None if !valid.is_empty() => {
            diagnostic.with_help(format!("valid keys here: {}", valid.join(", ")))
        }
        None => diagnostic,
    }
}

/// The keys the schema allows in the table at `path`, found by walking the generated schema so
/// suggestions can never drift from the model.
pub fn known_keys(schema: &serde_json::Value, path: &[PathSegment]) -> Vec<String> {
    let mut node = resolve(schema, schema);
    for segment in path {
        node = match segment {
            PathSegment::Key(key) => node
                .get("properties")
                .and_then(|properties| properties.get(key))
                .or_else(|| node.get("additionalProperties"))
                .map(|next| resolve(schema, next)),
            PathSegment::Index(_) => node.get("items").map(|next| resolve(schema, next)),
        }
        .unwrap_or(&serde_json::Value::Null);
    }
    node.get("properties")
        .and_then(|properties| properties.as_object())
        .map(|properties| properties.keys().cloned().collect())
        .unwrap_or_default()
}

fn resolve<'s>(root: &'s serde_json::Value, node: &'s serde_json::Value) -> &'s serde_json::Value {
    let mut node = node;
    for _ in 0..16 {
        let Some(reference) = node.get("$ref").and_then(|r| r.as_str()) else {
            break;
        };
        let name = reference.rsplit('/').next().unwrap_or_default();
        match root.get("$defs").and_then(|defs| defs.get(name)) {
            Some(target) => node = target,
            None => break,
        }
    }
    // `Option<T>` fields are `anyOf: [T, null]` in some schemars versions.
    if let Some(variants) = node.get("anyOf").and_then(|v| v.as_array()) {
        for variant in variants {
            let variant = resolve_once(root, variant);
            if variant.get("properties").is_some() || variant.get("items").is_some() {
                return variant;
            }
        }
    }
    node
}

fn resolve_once<'s>(
    root: &'s serde_json::Value,
    node: &'s serde_json::Value,
) -> &'s serde_json::Value {
    node.get("$ref")
        .and_then(|r| r.as_str())
        .and_then(|reference| reference.rsplit('/').next())
        .and_then(|name| root.get("$defs").and_then(|defs| defs.get(name)))
        .unwrap_or(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unknown_key_is_reported_with_a_suggestion() {
        let text = "#:schema x\nversion = 1\n[plan.a]\ndevise = \"X\"\nrange = { start = 2024-04-01T00:00:00Z, end = 2024-04-01T01:00:00Z, ned = 1 }\n";
        let (manifest, diagnostics) = load_manifest_text("m.toml", text);
        assert!(manifest.is_some());
        let rendered: Vec<String> = diagnostics.iter().map(|d| d.render_human()).collect();
        assert_eq!(
            rendered,
            vec![
                "m.toml:4:1: error: unknown key `devise` in `plan.a`\n4 | devise = \"X\"\n  | ^^^^^^\n  = help: did you mean `device`?\n",
                "m.toml:5:69: error: unknown key `ned` in `plan.a.range`\n5 | range = { start = 2024-04-01T00:00:00Z, end = 2024-04-01T01:00:00Z, ned = 1 }\n  |                                                                     ^^^\n  = help: did you mean `end`?\n",
            ]
        );
    }
}
