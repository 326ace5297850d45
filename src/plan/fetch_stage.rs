//! Fetch stages: a `[fetch.NAME]` stage → a [`Fetch`] (its plans, its [`Source`], its request
//! size), and the data product options of stages and request rows checked.
//!
//! Input: the stage and the manifest's plan stages; the planned windows, for their rows' options.
//! Output: the resolved [`Fetch`], or `None` when the stage has an error. Errors: reported to
//! the checker at the manifest path (or, for a row's option, the request-file row): dangling plan
//! names, `product` with `archive` or neither, unknown products (with the closest known code),
//! bad archive or product extensions, bad options. Undocumented options are warnings: they are
//! sent to ONC as given.

use std::collections::{BTreeMap, BTreeSet};

use super::check::{Checker, dangling_reference, name_path, p, with_key};
use super::types::{Fetch, Window};
use crate::manifest::diagnostic::closest;
use crate::manifest::load::PathSegment;
use crate::manifest::model::OptionValue;
use crate::manifest::{Diagnostic, Location};
use onc_format::options::{self, OptionProblem};
use onc_format::query::{self, Source};

pub(super) fn fetch_stage(
    check: &mut Checker<'_>,
    name: &str,
    stage: &crate::manifest::model::FetchStage,
) -> Option<Fetch> {
    let stage_path = p(&["fetch", name]);
    let plan_names: Vec<String> = check.loaded.manifest.plan.keys().cloned().collect();
    let mut ok = true;
    if stage.plan.0.is_empty() {
        check.error_at(
            &with_key(stage_path.clone(), "plan"),
            "`plan` names no plan stage",
        );
        ok = false;
    }
    for (index, plan) in stage.plan.iter().enumerate() {
        if !plan_names.iter().any(|name| name == plan) {
            let path = name_path(check, with_key(stage_path.clone(), "plan"), index);
            dangling_reference(check, &path, "plan", plan, &plan_names);
            ok = false;
        }
    }
    let per_request = check.positive(
        &with_key(stage_path.clone(), "per_request"),
        stage.per_request,
        12,
    );
    let options: BTreeMap<String, String> = stage
        .options
        .iter()
        .map(|(key, value)| (key.clone(), option_text(value)))
        .collect();

    let source = match (&stage.product, &stage.archive) {
        (Some(_), Some(_)) => {
            check.key_error_at(
                &with_key(stage_path, "archive"),
                "give `product` or `archive`, not both",
            );
            return None;
        }
        (None, None) => {
            check
                .key_error_at(
                    &stage_path,
                    format!("fetch stage `{name}` has neither `product` nor `archive`"),
                )
                .help = Some(
                "add `product = \"HSD\"` with `extension = \"mat\"`, or `archive = \"flac\"`"
                    .into(),
            );
            return None;
        }
        (None, Some(extension)) => {
            ok &= archive_extension(check, &with_key(stage_path.clone(), "archive"), extension);
            if stage.extension.is_some() {
                check.warning_at(
                    &with_key(stage_path.clone(), "extension"),
                    "`extension` is ignored with `archive`",
                );
            }
            if !options.is_empty() {
                check
                    .error_at(
                        &with_key(stage_path, "options"),
                        "archived files take no data product options",
                    )
                    .help = Some(
                    "options apply to `product` stages; for converted audio use `product = \"AD\"`"
                        .into(),
                );
                ok = false;
            }
            Source::Archive {
                extension: extension.clone(),
            }
        }
        (Some(code), None) => {
            let product_path = with_key(stage_path.clone(), "product");
            if !check.products.contains(code) {
                let known = check.products.codes().collect::<Vec<_>>().join(", ");
                let help = match check.products.closest(code) {
                    Some(suggestion) => {
                        format!("did you mean \"{suggestion}\"? known products: {known}")
                    }
                    None => format!("known products: {known}"),
                };
                check
                    .error_at(&product_path, format!("unknown data product `{code}`"))
                    .help = Some(help);
                ok = false;
            }
            let extension = match &stage.extension {
                Some(extension) => extension.clone(),
                None => {
                    check
                        .key_error_at(
                            &stage_path,
                            format!("fetch stage `{name}` has a `product` but no `extension`"),
                        )
                        .help =
                        Some("ONC requires the extension, e.g. `extension = \"mat\"`".into());
                    return None;
                }
            };
            if let Some(valid) = options::product_extensions(code)
                && !valid.contains(&extension.as_str())
            {
                check
                    .error_at(
                        &with_key(stage_path.clone(), "extension"),
                        format!("`{code}` has no extension `{extension}`"),
                    )
                    .help = Some(format!("{code} extensions: {}", valid.join(", ")));
                ok = false;
            }
            for (option, value) in &options {
                let path = with_key(with_key(stage_path.clone(), "options"), option);
                ok &= report_option(check, &path, code, option, value, None);
            }
            Source::Product {
                code: code.clone(),
                extension,
                options,
            }
        }
    };
    ok.then(|| Fetch {
        name: name.to_owned(),
        plans: stage.plan.0.clone(),
        source,
        per_request,
    })
}

/// Checks an `archive` extension: ONC's listings take any extension it archives for a device
/// (`flac`, `wav`, `mat`, `png`, …), so any lowercase word of a few letters or digits is valid;
/// a near miss of a known one (`flca`) is a warning, as ONC would list nothing. Returns whether
/// the extension is acceptable.
fn archive_extension(check: &mut Checker<'_>, path: &[PathSegment], extension: &str) -> bool {
    if !query::is_archive_extension_shaped(extension) {
        check
            .error_at(
                path,
                format!("invalid archive file type `{extension}`: an extension is 1 to {} lowercase letters or digits, without the dot", query::MAX_ARCHIVE_EXTENSION_LEN),
            )
            .help = Some(format!(
            "e.g. {}",
            options::ARCHIVE_EXTENSIONS.join(", ")
        ));
        return false;
    }
    if !options::ARCHIVE_EXTENSIONS.contains(&extension)
        && let Some(known) = closest(extension, options::ARCHIVE_EXTENSIONS.iter().copied())
    {
        check
            .warning_at(
                path,
                format!("archive file type `{extension}` is not one onc-pipe knows; it is listed at ONC as given"),
            )
            .help = Some(format!("did you mean `{known}`?"));
    }
    true
}

/// A request-file row, for option problems found in it.
struct RowOrigin<'a> {
    file: &'a str,
    origin: &'a str,
}

/// Reports one option problem at a manifest path (or, with `origin`, as a request-file problem).
/// Returns whether the option is acceptable.
fn report_option(
    check: &mut Checker<'_>,
    path: &[PathSegment],
    product: &str,
    option: &str,
    value: &str,
    origin: Option<RowOrigin<'_>>,
) -> bool {
    let Some(problem) = options::check_option(product, option, value) else {
        return true;
    };
    let (message, help, is_error) = match problem {
        OptionProblem::NotAnOption => (
            format!("`{option}` is not a data product option"),
            Some("ONC data product options start with `dpo_`".to_owned()),
            true,
        ),
        OptionProblem::UnknownName => (
            format!("`{option}` is not a documented {product} option; it is sent to ONC as given"),
            options::product_options(product)
                .and_then(|known| closest(option, known.iter().map(|(name, _)| *name)))
                .map(|c| format!("did you mean `{c}`?")),
            false,
        ),
        OptionProblem::BadValue { allowed } => (
            format!("invalid value `{value}` for `{option}`"),
            Some(format!("{option} takes {allowed}")),
            true,
        ),
    };
    let diagnostic = match origin {
        Some(RowOrigin { file, origin }) => {
            let location = match origin.strip_prefix("row ").and_then(|n| n.parse().ok()) {
                Some(row) => Location::Row {
                    row,
                    field: "data_product_options".into(),
                },
                None => Location::JsonPath {
                    path: format!("{origin}.data_product_options.{option}"),
                },
            };
            let d = if is_error {
                Diagnostic::error(file, location, message)
            } else {
                Diagnostic::warning(file, location, message)
            };
            Some(check.push(d))
        }
        None if is_error => Some(check.error_at(path, message)),
        None => Some(check.warning_at(path, message)),
    };
    if let (Some(diagnostic), Some(help)) = (diagnostic, help) {
        diagnostic.help = Some(help);
    }
    !is_error
}

fn option_text(value: &OptionValue) -> String {
    value.to_query_value()
}

/// Checks the `dpo_*` options of request-file rows against the products that will fetch them,
/// reported at the row in the request file.
pub(super) fn check_row_options(check: &mut Checker<'_>, windows: &[Window], fetches: &[Fetch]) {
    let mut seen = BTreeSet::new();
    for fetch in fetches {
        let Source::Product { code, .. } = &fetch.source else {
            continue;
        };
        for window in windows.iter().filter(|w| fetch.plans.contains(&w.stage)) {
            let Some(row) = &window.row else { continue };
            for (option, value) in &row.options {
                if seen.insert((
                    row.source_file.clone(),
                    row.origin.clone(),
                    option.clone(),
                    code.clone(),
                )) {
                    let origin = RowOrigin {
                        file: &row.source_file,
                        origin: &row.origin,
                    };
                    report_option(check, &[], code, option, value, Some(origin));
                }
            }
        }
    }
}
