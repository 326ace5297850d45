//! Names in the output tree: a tag or clip name from a request file or manifest, or a file name
//! ONC sent → a name that is safe as one path component (no separators, no `..`, not hidden, no Windows device name), or `None` when
//! nothing usable is left.
//!
//! Input: any text. Output: the sanitised name (sanitising it again changes nothing). Errors: none
//! here; callers decide whether an unusable name is an error (a request file reports it as one).

/// Replace path separators, `..`, control characters and characters outside `[A-Za-z0-9._ -]` with
/// `_`; trim spaces and dots from both ends (a leading dot hides a file, a trailing one is dropped
/// by Windows); prefix Windows device names (`CON`, `NUL`, ...) with `_`; at most 120 characters
/// (a longer name keeps its head, a hash of the whole name and its extension: see `shortened`).
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
    // Everything left is ASCII, so characters are bytes.
    if prefixed.len() <= MAX_NAME {
        return (!prefixed.is_empty()).then_some(prefixed);
    }
    Some(shortened(name, &prefixed))
}

/// Longest sanitised name: well under the 255 bytes file systems allow a path component, with
/// room for the suffixes (`_part2`, `.json`, a stage name) added to clip names.
const MAX_NAME: usize = 120;

/// A sanitised name longer than [`MAX_NAME`] (ASCII, trimmed), cut to fit: its head, `-` and 8
/// hex digits of the blake3 of the original `name`, then its extension when it has a short one.
/// Cutting alone would give two long names that differ only at the end (two ONC files
/// `<5,000 characters>_1.mat` and `…_2.mat`) the same name, so one would replace the other in
/// the output folder; the hash keeps them apart and the extension keeps the file's type.
fn shortened(name: &str, sanitised: &str) -> String {
    let extension = sanitised
        .rsplit_once('.')
        .map(|(_, ext)| ext)
        .filter(|ext| {
            (1..=16).contains(&ext.len()) && ext.chars().all(|c| c.is_ascii_alphanumeric())
        })
        .map(|ext| format!(".{ext}"))
        .unwrap_or_default();
    let hash = blake3::hash(name.as_bytes()).to_hex();
    let tag = hash.get(..8).unwrap_or_default();
    let room = MAX_NAME - 1 - tag.len() - extension.len();
    let head = sanitised.get(..room).unwrap_or(sanitised);
    format!("{head}-{tag}{extension}")
}
