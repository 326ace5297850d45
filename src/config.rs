//! The user config file: a personal default for the cache, the ONC token and how many run
//! records a cache keeps.
//!
//! Input: `ONC_PIPE_CONFIG` (a file, for a shared machine or a test), else
//! `config.toml` in the platform's config folder: `$XDG_CONFIG_HOME/onc-pipe/` or
//! `~/.config/onc-pipe/` on Linux and macOS (as command-line tools do there), `%APPDATA%\onc-pipe\`
//! on Windows (the `etcetera` crate's base strategy). Output: a [`UserConfig`] (a missing file is
//! no config), installed once per process ([`install`]) for the commands to read ([`user`]).
//! Errors: every problem in the file as a [`Diagnostic`] with its line and column (the `toml`
//! crate's spans, rendered as the manifest's are), exit 2; the token's value is never shown.
//!
//! Where each setting comes from, the first that has it (README, "The user config file"):
//! * cache: `--cache-dir` > `ONC_PIPE_CACHE` > the manifest's `output.cache` > `cache` here >
//!   `.onc-pipe` beside the manifest. A manifest's own `output.cache` is a project's explicit
//!   choice, so it wins over a personal default.
//! * token: `ONC_TOKEN` > `ONC_TOKEN=` in `./.env` > `token` here.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::manifest::Diagnostic;
use crate::manifest::diagnostic::{Location, SourceText};
use crate::onc::{ConnectError, Token};

/// The environment variable naming the config file explicitly.
pub const CONFIG_ENV: &str = "ONC_PIPE_CONFIG";

/// How many run records a cache keeps when nothing says otherwise.
pub const DEFAULT_KEEP_RUNS: usize = 100;

/// The file's settings, checked.
#[derive(Debug, Clone, Default)]
pub struct UserConfig {
    /// The file they came from.
    pub path: PathBuf,
    /// The cache: a folder (a relative one resolved against the file's folder, `~/` against the
    /// home folder) or a team store's URL.
    pub cache: Option<PathBuf>,
    pub token: Option<Token>,
    /// Run records kept per cache (at least 1).
    pub keep_runs: Option<usize>,
    /// The file is readable by other users and holds a token (Unix permission bits).
    pub token_readable_by_others: Option<u32>,
}

/// The file as written; unknown keys are errors (a misspelt `cahce` must not be ignored).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    cache: Option<toml::Spanned<String>>,
    token: Option<toml::Spanned<String>>,
    keep_runs: Option<toml::Spanned<i64>>,
}

/// Where the config file is looked for: `ONC_PIPE_CONFIG`, else the platform's config folder;
/// `None` when neither can be known (no home folder).
pub fn config_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    use etcetera::BaseStrategy as _;
    let strategy = etcetera::choose_base_strategy().ok()?;
    Some(strategy.config_dir().join("onc-pipe").join("config.toml"))
}

/// The config file at [`config_path`], if there is one. Errors: every problem, each with its
/// place in the file (an unreadable file as a whole).
pub fn load() -> Result<Option<UserConfig>, Vec<Diagnostic>> {
    match config_path() {
        Some(path) => load_from(&path),
        None => Ok(None),
    }
}

/// The config file at `path`; a missing file is `Ok(None)`.
pub fn load_from(path: &Path) -> Result<Option<UserConfig>, Vec<Diagnostic>> {
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(vec![Diagnostic::error(
                &name,
                Location::File,
                format!("cannot read the user config file: {error}"),
            )]);
        }
    };
    let source = SourceText::new(&name, &text);
    let raw: Raw = toml::from_str(&text).map_err(|error| {
        let span = error.span().unwrap_or(0..0);
        vec![redacted(
            source
                .error(span, error.message().trim().to_owned())
                .with_help("valid keys: `cache` (a folder or s3://BUCKET/PREFIX), `token` (your ONC token), `keep_runs` (a whole number, at least 1)"),
        )]
    })?;
    let mut problems = Vec::new();
    let mut config = UserConfig {
        path: path.to_path_buf(),
        ..UserConfig::default()
    };
    if let Some(cache) = raw.cache {
        let value = cache.get_ref().trim();
        if value.is_empty() {
            problems.push(source.error(
                cache.span(),
                "`cache` is empty: give a folder or s3://BUCKET/PREFIX",
            ));
        } else {
            config.cache = Some(resolve(path, value));
        }
    }
    if let Some(token) = raw.token {
        let value = token.get_ref().trim();
        if value.is_empty() {
            problems.push(redacted(source.error(
                token.span(),
                "`token` is empty: give your ONC token (ONC profile, tab \"Web Services API\")",
            )));
        } else {
            config.token = Some(Token::new(value));
            config.token_readable_by_others = readable_by_others(path);
        }
    }
    if let Some(keep) = raw.keep_runs {
        match usize::try_from(*keep.get_ref()) {
            Ok(n) if n >= 1 => config.keep_runs = Some(n),
            _ => problems.push(source.error(
                keep.span(),
                format!(
                    "`keep_runs` must be a whole number, at least 1 (the default is {DEFAULT_KEEP_RUNS})"
                ),
            )),
        }
    }
    if problems.is_empty() {
        Ok(Some(config))
    } else {
        Err(problems)
    }
}

/// A diagnostic whose caret line would show the token: the line is replaced, so the secret
/// never reaches a terminal or a CI log.
fn redacted(mut diagnostic: Diagnostic) -> Diagnostic {
    if let Location::Text { source_line, .. } = &mut diagnostic.location
        && source_line.trim_start().starts_with("token")
    {
        *source_line = "token = \"***\"".into();
        diagnostic.message = "`token` must be a string on one line: token = \"...\"".into();
    }
    diagnostic
}

/// A cache setting as a path: URLs and absolute paths as they are, `~/` under the home folder,
/// others relative to the config file's folder.
fn resolve(file: &Path, value: &str) -> PathBuf {
    if value.contains("://") {
        return PathBuf::from(value);
    }
    if let Some(rest) = value.strip_prefix("~/")
        && let Ok(home) = etcetera::home_dir()
    {
        return home.join(rest);
    }
    let folder = file.parent().unwrap_or(Path::new(""));
    folder.join(value)
}

/// The permission bits that let others read `path`, when any do (Unix only).
fn readable_by_others(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

impl UserConfig {
    /// The warning for a token others can read, if the file holds one.
    pub fn permission_warning(&self) -> Option<String> {
        let mode = self.token_readable_by_others?;
        Some(format!(
            "warning: {} holds your ONC token and other users can read it (mode {mode:04o}); run `chmod 600 {}`",
            self.path.display(),
            self.path.display()
        ))
    }
}

static USER: OnceLock<UserConfig> = OnceLock::new();

/// Makes `config` the process's user config (the command line does, once, before a command).
pub fn install(config: UserConfig) {
    let _ = USER.set(config);
}

/// The installed user config, if any.
pub fn user() -> Option<&'static UserConfig> {
    USER.get()
}

/// The token: `ONC_TOKEN`, else `./.env`, else the user config's. Errors: a `.env` that
/// cannot be read.
pub fn find_token() -> Result<Option<Token>, ConnectError> {
    let found = crate::onc::find_token(std::env::var("ONC_TOKEN").ok(), Path::new(".env"))?;
    Ok(found.or_else(|| user().and_then(|config| config.token.clone())))
}

/// How many run records a cache keeps: the user config's `keep_runs`, else 100.
pub fn keep_runs() -> usize {
    user()
        .and_then(|config| config.keep_runs)
        .unwrap_or(DEFAULT_KEEP_RUNS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_name_line_and_column_and_never_show_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "cache = \"c\"\ncahce = \"x\"\n").unwrap();
        let problems = load_from(&path).unwrap_err();
        let text = problems[0].render_human();
        assert!(text.contains("config.toml:2:1"), "{text}");
        assert!(text.contains("unknown field `cahce`"), "{text}");

        std::fs::write(&path, "token = \"s3cr3t\nkeep_runs = 0\n").unwrap();
        let text = load_from(&path).unwrap_err()[0].render_human();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("config.toml:1:"), "{text}");

        std::fs::write(&path, "keep_runs = 0\n").unwrap();
        let text = load_from(&path).unwrap_err()[0].render_human();
        assert!(
            text.contains("config.toml:1:13") && text.contains("at least 1"),
            "{text}"
        );

        std::fs::write(&path, "cache = \"shared\"\ntoken = \"t\"\nkeep_runs = 5\n").unwrap();
        let config = load_from(&path).unwrap().unwrap();
        assert_eq!(config.cache, Some(dir.path().join("shared")));
        assert_eq!(config.token.unwrap().expose(), "t");
        assert_eq!(config.keep_runs, Some(5));
        assert!(
            load_from(&dir.path().join("absent.toml"))
                .unwrap()
                .is_none()
        );
    }
}
