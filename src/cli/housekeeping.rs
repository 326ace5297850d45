//! `gc` and `cache dir|size`: their arguments → [`crate::housekeeping`] → what
//! [`crate::report::housekeeping`] renders, and an exit code.

use std::path::PathBuf;

use clap::Subcommand;

use super::{Cli, prepare, report_error, write_stdout};
use crate::error::Error;
use crate::report;
use crate::run::Overrides;

/// `onc-pipe cache ...`.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Print the cache folder `run` would use (for MANIFEST, or from --cache-dir,
    /// ONC_PIPE_CACHE, the user config or the default `.onc-pipe` here).
    Dir {
        /// A manifest (.toml) or request file (.json, .csv).
        file: Option<PathBuf>,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print what the cache holds: objects, node records, coverage entries, run records, bytes.
    Size {
        /// A manifest (.toml) or request file (.json, .csv).
        file: Option<PathBuf>,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

/// What the command line overrides, for commands that may have no manifest (`gc`, `cache`).
fn overrides(cli: &Cli) -> Overrides {
    Overrides {
        base_url: cli.base_url.clone(),
        output_dir: cli.output_dir.clone(),
        cache_dir: cli.cache_dir.clone(),
        local_cache: cli.local_cache.clone(),
    }
}

/// A folder as printed: absolute, and without `..` when it exists (scripts use it:
/// `du -sh "$(onc-pipe cache dir m.toml)"`).
fn shown(dir: PathBuf) -> PathBuf {
    std::fs::canonicalize(&dir)
        .or_else(|_| std::path::absolute(&dir))
        .unwrap_or(dir)
}

/// The cache without a manifest: `--cache-dir`, `ONC_PIPE_CACHE`, the user config's `cache`,
/// else `.onc-pipe` in the current folder.
fn cache_without_manifest(
    cli: &Cli,
) -> Result<(PathBuf, Option<crate::cache::remote::RemoteUrl>), Error> {
    let default = crate::run::user_cache().unwrap_or_else(|| crate::plan::DEFAULT_CACHE_DIR.into());
    crate::run::cache_place(&overrides(cli), std::path::Path::new(""), &default)
}

/// `gc`: what the manifests no longer reference, listed or removed under the exclusive lock.
pub(super) fn gc(
    cli: &Cli,
    files: &[PathBuf],
    older_than: Option<std::time::SystemTime>,
    apply: bool,
    json: bool,
) -> i32 {
    let prepare = |file: &std::path::Path| prepare(cli, file, false);
    let default_cache = || cache_without_manifest(cli);
    let mut outcome =
        match crate::housekeeping::gc(files, &prepare, &default_cache, older_than, apply) {
            Ok(outcome) => outcome,
            Err(error) => return report_error(&error),
        };
    outcome.cache = shown(outcome.cache);
    let text = if json {
        report::housekeeping::gc_json(&outcome)
    } else {
        report::housekeeping::gc_text(&outcome)
    };
    let code = write_stdout(&text);
    match &outcome.done {
        Some(done) if !done.failed.is_empty() => crate::error::EXIT_FAILED,
        _ => code,
    }
}

/// `cache dir|size`: the folder `run` would use (for a manifest, or without one), and what it
/// holds. Neither creates it.
pub(super) fn cache_command(cli: &Cli, what: &CacheCommand) -> i32 {
    let (file, json) = match what {
        CacheCommand::Dir { file, json } | CacheCommand::Size { file, json } => (file, *json),
    };
    let place = match file {
        Some(file) => prepare(cli, file, false).map(|p| (p.cache_dir, p.remote)),
        None => cache_without_manifest(cli),
    };
    let (dir, remote) = match place {
        Ok(place) => place,
        Err(error) => return report_error(&error),
    };
    let dir = shown(dir);
    let remote = remote.map(|url| url.to_string());
    let text = match what {
        CacheCommand::Dir { .. } if json => {
            let value = serde_json::json!({ "cache": dir.display().to_string(), "store": remote });
            serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
        }
        // With a team store, the folder in front of it (the one on this disk), then the store.
        CacheCommand::Dir { .. } => match &remote {
            Some(store) => format!("{}\t{store}\n", dir.display()),
            None => format!("{}\n", dir.display()),
        },
        CacheCommand::Size { .. } => {
            let usage = match crate::cache::usage(&dir) {
                Ok(usage) => usage,
                Err(error) => return report_error(&Error::OpenCache(error)),
            };
            if json {
                report::housekeeping::size_json(&dir, &usage)
            } else {
                report::housekeeping::size_text(&dir, &usage)
            }
        }
    };
    write_stdout(&text)
}

/// Reads the user config file for the commands that use a cache or a token, and installs it;
/// a bad file stops them with exit 2 and every problem at its line and column. A token others
/// can read is a warning.
pub(super) fn load_user_config(cli: &Cli) -> Result<(), i32> {
    use super::Command;
    if matches!(
        cli.command,
        Command::Validate { .. }
            | Command::Schema
            | Command::Doctor { .. }
            | Command::Completions { .. }
    ) {
        return Ok(());
    }
    match crate::config::load() {
        Ok(Some(config)) => {
            if let Some(warning) = config.permission_warning().filter(|_| !cli.quiet) {
                eprintln!("onc-pipe: {warning}");
            }
            crate::config::install(config);
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(problems) => Err(report_error(&Error::Invalid(problems))),
    }
}
