//! ONC data product knowledge used for validation: products, extensions and `dpo_*` options.
//!
//! Input: a product code, an extension and option name/value pairs. Output: problems, as
//! [`OptionProblem`]s the planner turns into diagnostics. The table follows
//! `shared/onc-api.md` §5 (in the onc-pipe repository's `shared/`); ONC adds options over time, so an unknown option *name* is a warning,
//! while a known option with a value outside its documented set is an error (ONC answers 400).

/// Extensions ONC offers per product (exact, case-sensitive).
pub fn product_extensions(product: &str) -> Option<&'static [&'static str]> {
    match product {
        "HSD" => Some(&["png", "pdf", "mat", "fft"]),
        "AD" => Some(&["wav", "flac", "mp3"]),
        _ => None,
    }
}

/// The products onc-pipe knows; others are passed to ONC with a warning.
pub const KNOWN_PRODUCTS: &[&str] = &["HSD", "AD"];

/// Archived file types onc-pipe knows: audio (`flac`, `wav`), ONC's pre-generated spectrograms
/// (`mat`, `png`). A fetch stage may name any other extension ONC lists for a device.
pub const ARCHIVE_EXTENSIONS: &[&str] = &["flac", "wav", "mat", "png"];

/// What values an option takes.
#[derive(Debug, Clone, Copy)]
pub enum Allowed {
    /// One of these strings exactly.
    OneOf(&'static [&'static str]),
    /// An integer in `[min, max]`, or one of the special values.
    IntRange {
        min: i64,
        max: i64,
        special: &'static [i64],
    },
    /// A number in `[min, max]`.
    NumberRange { min: f64, max: f64 },
}

const DIVERSION: (&str, Allowed) = (
    "dpo_hydrophoneDataDiversionMode",
    Allowed::OneOf(&["OD", "LPF", "HPF", "All"]),
);
const ACQUISITION: (&str, Allowed) = (
    "dpo_hydrophoneAcquisitionMode",
    Allowed::OneOf(&["LF", "HF", "All"]),
);
const CHANNEL: (&str, Allowed) = (
    "dpo_hydrophoneChannel",
    Allowed::OneOf(&["H1", "H2", "H3", "All"]),
);

const HSD_OPTIONS: &[(&str, Allowed)] = &[
    DIVERSION,
    ACQUISITION,
    CHANNEL,
    (
        "dpo_spectrogramSource",
        Allowed::OneOf(&["MIX", "WAV", "WAVFLAC", "FFT"]),
    ),
    (
        "dpo_spectrogramConcatenation",
        Allowed::OneOf(&["None", "Concatenate", "Daily", "Weekly", "Adjacent"]),
    ),
    (
        "dpo_spectralDataDownsample",
        Allowed::IntRange {
            min: 0,
            max: 2,
            special: &[],
        },
    ),
    (
        "dpo_spectrogramColourPalette",
        Allowed::IntRange {
            min: 0,
            max: 5,
            special: &[],
        },
    ),
    (
        "dpo_lowerColourLimit",
        Allowed::IntRange {
            min: -160,
            max: 140,
            special: &[-1000],
        },
    ),
    (
        "dpo_upperColourLimit",
        Allowed::IntRange {
            min: -160,
            max: 140,
            special: &[-1000],
        },
    ),
    (
        "dpo_spectrogramFrequencyUpperLimit",
        Allowed::IntRange {
            min: 100,
            max: 500_000,
            special: &[-1],
        },
    ),
    (
        "dpo_spectrogramWindowLengthSec",
        Allowed::NumberRange {
            min: 0.0,
            max: 3600.0,
        },
    ),
    (
        "dpo_spectrogramOverlap",
        Allowed::NumberRange { min: 0.0, max: 1.0 },
    ),
];

const AD_OPTIONS: &[(&str, Allowed)] = &[
    DIVERSION,
    ACQUISITION,
    CHANNEL,
    (
        "dpo_audioDownsample",
        Allowed::IntRange {
            min: 1,
            max: 1_000_000,
            special: &[-1],
        },
    ),
    (
        "dpo_audioFormatConversion",
        Allowed::IntRange {
            min: 0,
            max: 1,
            special: &[],
        },
    ),
];

/// The documented options of a product, if onc-pipe knows the product.
pub fn product_options(product: &str) -> Option<&'static [(&'static str, Allowed)]> {
    match product {
        "HSD" => Some(HSD_OPTIONS),
        "AD" => Some(AD_OPTIONS),
        _ => None,
    }
}

/// What is wrong with one option.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionProblem {
    /// The name does not start with `dpo_` (ONC would answer 400/129).
    NotAnOption,
    /// Not in onc-pipe's table of the product's options ([`product_options`] lists them, for a
    /// caller that suggests the intended name).
    UnknownName,
    /// A known option with a value ONC does not accept; `allowed` describes the valid values.
    BadValue { allowed: String },
}

/// Checks one option against the product's table.
pub fn check_option(product: &str, name: &str, value: &str) -> Option<OptionProblem> {
    if !name.starts_with(crate::query::OPTION_PREFIX) {
        return Some(OptionProblem::NotAnOption);
    }
    let table = product_options(product)?;
    let Some((_, allowed)) = table.iter().find(|(known, _)| *known == name) else {
        return Some(OptionProblem::UnknownName);
    };
    if value_allowed(allowed, value) {
        None
    } else {
        Some(OptionProblem::BadValue {
            allowed: describe(allowed),
        })
    }
}

fn value_allowed(allowed: &Allowed, value: &str) -> bool {
    match allowed {
        Allowed::OneOf(values) => values.contains(&value),
        Allowed::IntRange { min, max, special } => value
            .parse::<i64>()
            .is_ok_and(|n| (*min..=*max).contains(&n) || special.contains(&n)),
        Allowed::NumberRange { min, max } => value
            .parse::<f64>()
            .is_ok_and(|x| x.is_finite() && *min <= x && x <= *max),
    }
}

fn describe(allowed: &Allowed) -> String {
    match allowed {
        Allowed::OneOf(values) => format!("one of {}", values.join(", ")),
        Allowed::IntRange {
            min,
            max,
            special: [],
        } => {
            format!("an integer from {min} to {max}")
        }
        Allowed::IntRange { min, max, special } => format!(
            "{} or an integer from {min} to {max}",
            special
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Allowed::NumberRange { min, max } => format!("a number from {min} to {max}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_table_checks_names_and_values() {
        assert_eq!(check_option("HSD", "dpo_spectralDataDownsample", "2"), None);
        assert_eq!(
            check_option("HSD", "dpo_spectralDataDownsample", "4"),
            Some(OptionProblem::BadValue {
                allowed: "an integer from 0 to 2".into()
            })
        );
        assert_eq!(check_option("HSD", "dpo_lowerColourLimit", "-1000"), None);
        assert_eq!(
            check_option("HSD", "dpo_spectralDataDownsampel", "2"),
            Some(OptionProblem::UnknownName)
        );
        assert_eq!(
            check_option("HSD", "spectralDataDownsample", "2"),
            Some(OptionProblem::NotAnOption)
        );
        assert_eq!(check_option("XYZ", "dpo_anything", "1"), None);
        assert_eq!(check_option("AD", "dpo_audioDownsample", "-1"), None);
    }
}
