//! Manifest fuzz target: any text → the path `onc-pipe validate` takes on a `.toml` file
//! (`compile::load_toml_text`, `compile::plan_loaded` against the built-in product table, then
//! the DAG) must end in a plan or in diagnostics, never a panic. A failure must carry at least one
//! error (a failure without one would tell the user nothing), every diagnostic must render in the
//! three output formats, and a built DAG must be acyclic.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use onc_pipe::compile::{build, load_toml_text, plan_loaded};
use onc_pipe::manifest::diagnostic::render_all;
use onc_pipe::manifest::{Diagnostic, DiagnosticFormat};
use onc_pipe::plan::KnownProducts;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A folder that does not exist: a `requests = "…"` file is then an unreadable-file
    // diagnostic, so the target never reads the machine's files (the request-file readers
    // have their own targets).
    let path = Path::new("/nonexistent/fuzz.toml");
    let planned = load_toml_text("fuzz.toml", path, text.to_owned())
        .and_then(|(loaded, warnings)| plan_loaded(loaded, warnings, &KnownProducts::built_in()));
    let diagnostics = match planned {
        Ok(planned) => {
            let compiled = build(planned);
            assert!(compiled.dag.is_acyclic(), "a cyclic DAG");
            assert!(!compiled.warnings.iter().any(Diagnostic::is_error));
            compiled.warnings
        }
        Err(diagnostics) => {
            assert!(
                diagnostics.iter().any(Diagnostic::is_error),
                "a manifest was refused without an error: {diagnostics:?}"
            );
            diagnostics
        }
    };
    for format in [
        DiagnosticFormat::Human,
        DiagnosticFormat::Json,
        DiagnosticFormat::Github,
    ] {
        let _ = render_all(&diagnostics, format);
    }
});
