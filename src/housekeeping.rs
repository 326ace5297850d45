//! Cache housekeeping: `onc-pipe gc` and `onc-pipe cache dir|size`.
//!
//! Input: the manifests whose data to keep (each compiled as `status` compiles it: offline,
//! ONC's deployments from the cache, the command line's overrides applied), an optional age,
//! and the cache they name. Output: a [`GcOutcome`] — the [`GcPlan`] of what is (or would be)
//! removed and, with `apply`, what was — or the cache's place and [`Usage`]. Errors:
//! [`GcError`] (exit 2: nothing named, manifests on different caches, a team store; exit 3: a
//! manifest whose sites' deployments are not cached, so what it references cannot be known)
//! and [`Error`] for what every command can meet (invalid manifest, cache held by a run).
//!
//! gc takes the cache lock exclusively for the whole listing and removal: a run holding the
//! cache makes it exit 3 and remove nothing, and no run can start while it removes.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::cache::{Cache, GcDone, GcOptions, GcPlan, Keep};
use crate::compile::Compiled;
use crate::dag::{NodeDetail, NodeKind};
use crate::error::{EXIT_CANNOT_START, EXIT_INVALID, Error};
use crate::run::Prepared;

/// Why gc cannot collect.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    /// Neither a manifest nor an age: that would remove everything.
    #[error(
        "name the manifests whose data to keep (`onc-pipe gc m.toml ...`), or an age \
         (`--older-than 2026-01-01` or `--older-than 30d`); to empty the cache {}, remove that folder",
        .cache.display()
    )]
    NothingNamed { cache: PathBuf },
    /// The manifests use different caches: gc collects one at a time.
    #[error(
        "the manifests use different caches ({first} uses {}, {other} uses {}): gc collects one \
         cache at a time; give the manifests of one cache, or the same --cache-dir to all",
        .first_cache.display(), .other_cache.display()
    )]
    DifferentCaches {
        first: String,
        first_cache: PathBuf,
        other: String,
        other_cache: PathBuf,
    },
    /// A team store: out of scope.
    #[error(
        "{store} is a team store: gc does not collect team stores (other people's and \
         machines' runs use them, and this command cannot know their manifests); the local \
         folder in front of it, {}, holds only copies and can be removed whole (a run brings \
         back what it needs)",
        .local.display()
    )]
    TeamStore { store: String, local: PathBuf },
    /// Site stages whose deployments are not in the cache: their windows, so what they
    /// reference, are unknown.
    #[error(
        "{manifest}: cannot tell what it references: ONC's deployments of {who} are not in the \
         cache; run `onc-pipe plan {manifest}` once (it asks ONC), then gc again"
    )]
    DeploymentsUnknown { manifest: String, who: String },
}

impl GcError {
    pub fn exit_code(&self) -> i32 {
        match self {
            GcError::DeploymentsUnknown { .. } => EXIT_CANNOT_START,
            _ => EXIT_INVALID,
        }
    }
}

/// What the manifests' DAG references in a cache against `server`: its node keys and, per
/// source, its requests' ranges.
pub fn keep_of(compiled: &Compiled, keep: &mut Keep) {
    let server = &compiled.plan.settings.base_url;
    for node in compiled.dag.nodes() {
        keep.node_keys.insert(node.key.to_hex());
        if let (
            NodeKind::ProductRequest | NodeKind::ArchiveList,
            NodeDetail::Request { query, .. },
        ) = (node.kind, &node.detail)
        {
            keep.ranges
                .entry(crate::exec::source_identity(server, query))
                .or_default()
                .push((query.from_ms(), query.to_ms()));
        }
    }
}

/// A gc: what it found, and what it removed when applied.
#[derive(Debug)]
pub struct GcOutcome {
    pub cache: PathBuf,
    pub plan: GcPlan,
    /// `None` for a dry run.
    pub done: Option<GcDone>,
}

/// Collects the cache of `manifests` (or, with none, the cache the overrides or the default
/// name) under `older_than`: lists what would go, and removes it when `apply`. `prepare` is how
/// the command line compiles a manifest (its overrides applied).
pub fn gc(
    manifests: &[PathBuf],
    prepare: &dyn Fn(&Path) -> Result<Prepared, Error>,
    default_cache: &dyn Fn() -> Result<(PathBuf, Option<crate::cache::remote::RemoteUrl>), Error>,
    older_than: Option<SystemTime>,
    apply: bool,
) -> Result<GcOutcome, Error> {
    let mut prepared = Vec::new();
    for file in manifests {
        prepared.push((file, prepare(file)?));
    }
    let (cache_dir, remote) = match prepared.first() {
        Some((_, first)) => (first.cache_dir.clone(), first.remote.clone()),
        None => default_cache()?,
    };
    if let Some(store) = remote {
        return Err(Error::Gc(GcError::TeamStore {
            store: store.to_string(),
            local: cache_dir,
        }));
    }
    for (file, other) in &prepared {
        if other.cache_dir != cache_dir || other.remote.is_some() {
            return Err(Error::Gc(GcError::DifferentCaches {
                first: manifests
                    .first()
                    .map(|f| f.display().to_string())
                    .unwrap_or_default(),
                first_cache: cache_dir,
                other: file.display().to_string(),
                other_cache: other.cache_dir.clone(),
            }));
        }
    }
    if prepared.is_empty() && older_than.is_none() {
        return Err(Error::Gc(GcError::NothingNamed { cache: cache_dir }));
    }
    if !cache_dir.is_dir() {
        // Nothing to collect, and gc never creates a cache.
        return Ok(GcOutcome {
            cache: cache_dir,
            plan: GcPlan::default(),
            done: apply.then(GcDone::default),
        });
    }
    let cache = Cache::open(&cache_dir).map_err(Error::OpenCache)?;
    // Exclusive for the whole gc: a run in progress (which shares the lock) makes it exit 3.
    let lock = cache.lock().map_err(Error::CacheBusy)?;
    let mut options = GcOptions {
        keep: Keep::default(),
        older_than,
    };
    for (file, prepared) in &prepared {
        let (checked, _) = crate::run::check_deployments_now(prepared, true, Some(&cache))?;
        // A device's windows are known without its deployments; a site's are not.
        let site = checked
            .discovered
            .not_consulted
            .iter()
            .find_map(|who| match who {
                crate::plan::deployed::Deployed::Site { location, category } => {
                    Some(format!("{category} at {location}"))
                }
                crate::plan::deployed::Deployed::Device(_) => None,
            });
        if let Some(who) = site {
            return Err(Error::Gc(GcError::DeploymentsUnknown {
                manifest: file.display().to_string(),
                who,
            }));
        }
        keep_of(&checked.compiled, &mut options.keep);
    }
    let plan = cache.gc_plan(&lock, &options).map_err(Error::OpenCache)?;
    let done = if apply {
        Some(cache.gc_apply(&lock, &plan).map_err(Error::OpenCache)?)
    } else {
        None
    };
    Ok(GcOutcome {
        cache: cache_dir,
        plan,
        done,
    })
}

/// `--older-than`: a date (`2026-11-01`, UTC midnight), an RFC 3339 time, or an age in days
/// or hours before now (`30d`, `12h`). Errors: the text and what would be valid.
pub fn parse_older_than(text: &str) -> Result<SystemTime, String> {
    let text = text.trim();
    let now = chrono::Utc::now();
    let at = if let Some(days) = text.strip_suffix('d').and_then(|n| n.parse::<u32>().ok()) {
        now - chrono::Duration::days(i64::from(days))
    } else if let Some(hours) = text.strip_suffix('h').and_then(|n| n.parse::<u32>().ok()) {
        now - chrono::Duration::hours(i64::from(hours))
    } else if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        date.and_time(chrono::NaiveTime::MIN).and_utc()
    } else if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        time.with_timezone(&chrono::Utc)
    } else {
        return Err(format!(
            "`{text}` is not a date (2026-11-01), an RFC 3339 time (2026-11-01T12:00:00Z) or an age (30d, 12h)"
        ));
    };
    Ok(SystemTime::from(at))
}
