//! The manifest compiler's front door: a file path → [`Compiled`] (plan + DAG), or diagnostics.
//!
//! Input: a `.toml` manifest, or a request file (`.json`, `.csv`, `.tsv`, a Raven selection
//! table `.txt`) in the seed tool's formats or Raven's,
//! which becomes one request plan with the fetch and clip stages the seed tool would run.
//! Output: the plan, its DAG and any warnings; or every problem found (errors and warnings).
//! In steps, for commands that consult ONC between them: [`plan_file`] (offline), then
//! [`apply_deployments`] (what ONC's deployments say), then [`build`] (the DAG).

use std::collections::BTreeMap;
use std::path::Path;

use crate::dag::{self, Dag};
use crate::manifest::model::{ClipStage, FetchStage, Manifest, OneOrMany, OptionValue, PlanStage};
use crate::manifest::requests::RequestFormat;
use crate::manifest::{Diagnostic, Loaded, Location, SpanIndex, load_manifest_text};
use crate::plan::deployed::KnownDeployments;
use crate::plan::{self, Plan};

/// A compiled input.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub loaded: Loaded,
    pub plan: Plan,
    pub dag: Dag,
    /// Warnings (never errors: those make compilation fail).
    pub warnings: Vec<Diagnostic>,
}

/// The data product options the seed tool sends for plotRes spectrograms; a request file run
/// directly gets them unless its rows say otherwise.
pub fn seed_hsd_options() -> BTreeMap<String, OptionValue> {
    BTreeMap::from([
        (
            "dpo_hydrophoneDataDiversionMode".to_owned(),
            OptionValue::Text("OD".into()),
        ),
        (
            "dpo_spectralDataDownsample".to_owned(),
            OptionValue::Integer(2),
        ),
        (
            "dpo_spectrogramConcatenation".to_owned(),
            OptionValue::Text("None".into()),
        ),
    ])
}

/// Reads and parses an input file without planning it.
pub fn load(path: &Path) -> Result<(Loaded, Vec<Diagnostic>), Vec<Diagnostic>> {
    let shown = path.display().to_string();
    if RequestFormat::from_path(path).is_some() {
        return Ok((request_file_manifest(path, &shown), Vec::new()));
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            return Err(vec![Diagnostic::error(
                &shown,
                Location::File,
                format!("cannot read file: {error}"),
            )]);
        }
    };
    let is_toml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
    if !is_toml {
        return Err(vec![
            Diagnostic::error(&shown, Location::File, "unknown input type").with_help(format!(
                "give a manifest (.toml) or a request file ({})",
                crate::manifest::requests::REQUEST_FILE_TYPES
            )),
        ]);
    }
    load_toml_text(&shown, path, text)
}

/// A manifest's text (`shown` names it in diagnostics; `path` is where relative paths in it are
/// resolved from) → the loaded manifest and its warnings, or every problem found.
pub fn load_toml_text(
    shown: &str,
    path: &Path,
    text: String,
) -> Result<(Loaded, Vec<Diagnostic>), Vec<Diagnostic>> {
    let (parsed, diagnostics) = load_manifest_text(shown, &text);
    match parsed {
        Some((manifest, spans)) if !diagnostics.iter().any(Diagnostic::is_error) => Ok((
            Loaded {
                file: shown.to_owned(),
                path: path.to_path_buf(),
                text,
                manifest,
                spans,
            },
            diagnostics,
        )),
        _ => Err(diagnostics),
    }
}

/// A request file run directly: one plan of its rows, HSD spectrograms (seed defaults, rows'
/// options and formats win), archived audio for rows with `download_audio`, clips for rows with
/// `clip`, as the seed tool's `download_requests_from_json/csv` would.
fn request_file_manifest(path: &Path, shown: &str) -> Loaded {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut manifest = Manifest {
        version: 1,
        ..Manifest::default()
    };
    manifest.plan.insert(
        "requests".into(),
        PlanStage {
            requests: Some(file_name),
            ..PlanStage::default()
        },
    );
    manifest.fetch.insert(
        "spectrograms".into(),
        FetchStage {
            plan: OneOrMany(vec!["requests".into()]),
            product: Some("HSD".into()),
            extension: Some("mat".into()),
            options: seed_hsd_options(),
            ..FetchStage::default()
        },
    );
    manifest.fetch.insert(
        "audio".into(),
        FetchStage {
            plan: OneOrMany(vec!["requests".into()]),
            archive: Some("flac".into()),
            ..FetchStage::default()
        },
    );
    manifest.clip.insert(
        "clips".into(),
        ClipStage {
            plan: "requests".into(),
            fetch: OneOrMany(vec!["spectrograms".into(), "audio".into()]),
            ..ClipStage::default()
        },
    );
    Loaded {
        file: shown.to_owned(),
        path: path.to_path_buf(),
        text: String::new(),
        manifest,
        spans: SpanIndex::default(),
    }
}

/// An input file planned, before its DAG: what ONC's deployments are checked against.
#[derive(Debug, Clone)]
pub struct Planned {
    pub loaded: Loaded,
    pub plan: Plan,
    /// Warnings (never errors: those make planning fail).
    pub warnings: Vec<Diagnostic>,
}

/// Loads and plans one input file, offline, against the built-in product table.
pub fn plan_file(path: &Path) -> Result<Planned, Vec<Diagnostic>> {
    plan_file_with(path, &plan::KnownProducts::built_in())
}

/// [`plan_file`], accepting the data product codes of `products` (the built-in table extended
/// with ONC's `dataProducts` list).
pub fn plan_file_with(
    path: &Path,
    products: &plan::KnownProducts,
) -> Result<Planned, Vec<Diagnostic>> {
    let (loaded, diagnostics) = load(path)?;
    plan_loaded(loaded, diagnostics, products)
}

/// Plans a loaded input (`diagnostics`: the warnings of loading it), offline, accepting the
/// data product codes of `products`.
pub fn plan_loaded(
    loaded: Loaded,
    mut diagnostics: Vec<Diagnostic>,
    products: &plan::KnownProducts,
) -> Result<Planned, Vec<Diagnostic>> {
    let (plan, plan_diagnostics) = plan::plan_manifest_with(&loaded, products);
    diagnostics.extend(plan_diagnostics);
    match plan {
        Some(plan) if !diagnostics.iter().any(Diagnostic::is_error) => Ok(Planned {
            loaded,
            plan,
            warnings: diagnostics,
        }),
        _ => Err(diagnostics),
    }
}

/// Checks a plan against ONC's deployments (see [`plan::deployed`]): sets each window's
/// location and resolves site windows; new warnings join the plan's. Errors: every problem
/// this check found (errors and warnings; not the plan's earlier warnings, already shown).
pub fn apply_deployments(
    mut planned: Planned,
    known: &KnownDeployments,
) -> Result<Planned, Vec<Diagnostic>> {
    let found = plan::deployed::apply(&planned.loaded, &mut planned.plan, known);
    if found.iter().any(Diagnostic::is_error) {
        return Err(found);
    }
    planned.warnings.extend(found);
    Ok(planned)
}

/// Builds the DAG of a plan.
pub fn build(planned: Planned) -> Compiled {
    let dag = dag::build(&planned.plan);
    Compiled {
        loaded: planned.loaded,
        plan: planned.plan,
        dag,
        warnings: planned.warnings,
    }
}

/// Loads, plans and builds the DAG of one input file, offline: ONC's deployments are not
/// consulted, and the windows of site stages (`location`) are left out of the DAG.
pub fn compile(path: &Path) -> Result<Compiled, Vec<Diagnostic>> {
    plan_file(path).map(build)
}
