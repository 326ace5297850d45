//! What `gc` and `cache dir|size` print: text for people, one JSON object for scripts.
//!
//! Input: a [`GcOutcome`] or a cache's [`Usage`]. Output: text. No errors.

use std::path::Path;

use crate::cache::Usage;
use crate::housekeeping::GcOutcome;

/// What `gc` says: every file it removes (or would), then one line of totals.
pub fn gc_text(outcome: &GcOutcome) -> String {
    use crate::cache::GarbageKind as K;
    let mut text = String::new();
    let verb = if outcome.done.is_some() {
        "removed"
    } else {
        "would remove"
    };
    for garbage in &outcome.plan.remove {
        text.push_str(&format!(
            "{verb} {} ({})\n",
            outcome.cache.join(&garbage.path).display(),
            crate::report::estimate::bytes_text(garbage.bytes)
        ));
    }
    let parts: Vec<String> = [
        K::Object,
        K::NodeRecord,
        K::CoverageEntry,
        K::FileRecord,
        K::Temporary,
    ]
    .iter()
    .filter_map(|&kind| {
        let (count, _) = outcome.plan.count(kind);
        (count > 0 || kind == K::Object).then(|| format!("{count} {}", kind.noun(count)))
    })
    .collect();
    let bytes = crate::report::estimate::bytes_text(outcome.plan.bytes());
    let kept = format!(
        "{} {} ({}) kept",
        outcome.plan.kept_objects,
        K::Object.noun(outcome.plan.kept_objects),
        crate::report::estimate::bytes_text(outcome.plan.kept_object_bytes)
    );
    let cache = outcome.cache.display();
    text.push_str(&match &outcome.done {
        None if outcome.plan.remove.is_empty() => format!("{cache}: nothing to free; {kept}\n"),
        None => format!(
            "{cache}: would free {bytes}: {}; {kept}; run again with --apply to remove them\n",
            parts.join(", ")
        ),
        Some(done) => format!(
            "{cache}: freed {}: {}; {kept}\n",
            crate::report::estimate::bytes_text(done.removed_bytes),
            parts.join(", ")
        ),
    });
    if let Some(done) = &outcome.done {
        for (path, reason) in &done.failed {
            text.push_str(&format!("could not remove {}: {reason}\n", path.display()));
        }
    }
    text
}

/// `gc --json`: one object.
pub fn gc_json(outcome: &GcOutcome) -> String {
    let value = serde_json::json!({
        "cache": outcome.cache.display().to_string(),
        "applied": outcome.done.is_some(),
        "remove": outcome.plan.remove,
        "bytes": outcome.plan.bytes(),
        "kept_objects": outcome.plan.kept_objects,
        "kept_object_bytes": outcome.plan.kept_object_bytes,
        "removed": outcome.done.as_ref().map(|d| d.removed),
        "removed_bytes": outcome.done.as_ref().map(|d| d.removed_bytes),
        "failed": outcome.done.as_ref().map(|d| d.failed.iter().map(|(p, r)| serde_json::json!({"path": p.display().to_string(), "reason": r})).collect::<Vec<_>>()),
    });
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}

/// `cache size`: the folder's place and what it holds.
pub fn size_text(cache: &Path, usage: &Usage) -> String {
    let noun = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{}: {} in all; {} ({}), {}, {}, {}\n",
        cache.display(),
        crate::report::estimate::bytes_text(usage.total_bytes),
        noun(usage.objects, "object", "objects"),
        crate::report::estimate::bytes_text(usage.object_bytes),
        noun(usage.node_records, "node record", "node records"),
        noun(usage.coverage_entries, "coverage entry", "coverage entries"),
        noun(usage.run_records, "run record", "run records"),
    )
}

/// `cache size --json`.
pub fn size_json(cache: &Path, usage: &Usage) -> String {
    let mut value = serde_json::to_value(usage).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "cache".into(),
            serde_json::Value::String(cache.display().to_string()),
        );
    }
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}
