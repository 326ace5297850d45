//! Manifests and request files: text → typed [`model::Manifest`] with spans, or diagnostics.
//!
//! `load` parses a TOML manifest and keeps every key's position so later stages can point at
//! it; `requests` reads the seed tool's JSON/CSV request files; `diagnostic` renders problems.

pub mod diagnostic;
pub mod load;
pub mod model;
pub mod requests;

pub use diagnostic::{Diagnostic, DiagnosticFormat, Location, Severity};
pub use load::{Loaded, SpanIndex, load_manifest_text};
pub use model::{Manifest, schema_json};
