//! The data product codes a fetch stage may name: onc-pipe's own table, which a caller extends
//! with the codes ONC lists (its `dataProducts` service) when it has them.
//!
//! Input: product codes. Output: [`KnownProducts`] — whether a code is known, and the known code
//! closest to one that is not (a typo). No errors: an unknown code is the planner's diagnostic.

use std::collections::BTreeSet;

use onc_format::options::KNOWN_PRODUCTS;

/// The data product codes planning accepts. A parameter of planning, not a global, so a run
/// that has ONC's list (cached or fresh) plans against it while `validate` stays offline with
/// the built-in table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownProducts {
    codes: BTreeSet<String>,
}

impl Default for KnownProducts {
    fn default() -> Self {
        Self::built_in()
    }
}

impl KnownProducts {
    /// The products onc-pipe knows without asking ONC (those it has option tables for).
    pub fn built_in() -> Self {
        Self {
            codes: KNOWN_PRODUCTS.iter().map(|&code| code.to_owned()).collect(),
        }
    }

    /// Adds codes learned elsewhere, e.g. from ONC's `dataProducts` list.
    pub fn extend<S: Into<String>>(&mut self, codes: impl IntoIterator<Item = S>) {
        self.codes.extend(codes.into_iter().map(Into::into));
    }

    /// Whether `code` is known, exactly (ONC's codes are case-sensitive).
    pub fn contains(&self, code: &str) -> bool {
        self.codes.contains(code)
    }

    /// The known code `code` was probably meant to be: the same letters in another case, else
    /// the closest by edit distance, if any is close.
    pub fn closest(&self, code: &str) -> Option<&str> {
        self.codes
            .iter()
            .find(|known| known.eq_ignore_ascii_case(code))
            .map(String::as_str)
            .or_else(|| {
                crate::manifest::diagnostic::closest(code, self.codes.iter().map(String::as_str))
            })
    }

    /// Every known code, sorted.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.codes.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_the_closest_code_and_learned_codes_count() {
        let mut known = KnownProducts::built_in();
        assert!(known.contains("HSD") && known.contains("AD"));
        assert!(!known.contains("hsd"));
        assert_eq!(known.closest("HSDD"), Some("HSD"));
        assert_eq!(known.closest("hsd"), Some("HSD"));
        assert_eq!(known.closest("XYZQW"), None);
        assert!(!known.contains("TSSD"));
        known.extend(["TSSD", "LF"]);
        assert!(known.contains("TSSD"));
        assert_eq!(known.closest("TSSP"), Some("TSSD"));
        assert_eq!(
            known.codes().collect::<Vec<_>>(),
            ["AD", "HSD", "LF", "TSSD"]
        );
    }
}
