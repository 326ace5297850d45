//! Names in the output tree: a tag or clip name from a request file or manifest, or a file name
//! ONC sent → a name that is safe as one path component (no separators, no `..`, not hidden, no Windows device name), or `None` when
//! nothing usable is left.
//!
//! Input: any text. Output: the sanitised name (sanitising it again changes nothing). Errors: none
//! here; callers decide whether an unusable name is an error (a request file reports it as one).

/// Replace path separators, `..`, control characters and characters outside `[A-Za-z0-9._ -]` with
/// `_`; trim spaces and dots from both ends (a leading dot hides a file, a trailing one is dropped
/// by Windows); prefix Windows device names (`CON`, `NUL`, ...) with `_`; at most 120 characters.
/// `None` when nothing usable is left. Sanitising a sanitised name returns it unchanged.
pub fn sanitise_name(name: &str) -> Option<String> {
    let kept: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ' ' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // One pass leaves no `..`: a run of k dots becomes k/2 underscores and at most one dot.
    let kept = kept.replace("..", "_");
    let trimmed = kept.trim_matches([' ', '.']);
    let stem = trimmed.split('.').next().unwrap_or_default();
    let reserved = ["CON", "PRN", "AUX", "NUL"]
        .iter()
        .any(|r| stem.eq_ignore_ascii_case(r))
        || (stem.len() == 4
            && ["COM", "LPT"]
                .iter()
                .any(|p| stem.get(..3).is_some_and(|s| s.eq_ignore_ascii_case(p)))
            && stem.ends_with(|c: char| c.is_ascii_digit() && c != '0'));
    let prefixed = if reserved {
        format!("_{trimmed}")
    } else {
        trimmed.to_owned()
    };
    // Everything left is ASCII, so 120 characters are 120 bytes.
    let limited: String = prefixed.chars().take(120).collect();
    let limited = limited.trim_end_matches([' ', '.']);
    (!limited.is_empty()).then(|| limited.to_owned())
}
