//! Connecting to ONC: resolved settings + environment → an [`OncClient`].
//!
//! Input: the base URL (manifest `onc.base_url`, `--base-url` or `ONC_BASE_URL`), the timeout and
//! attempt limit, and the token from `ONC_TOKEN` or a `.env` file. Output: a client. Errors: no
//! token for a real server, an unreadable `.env`. The base URL [`SIMULATOR`] (the built-in
//! simulator) is the caller's to start (the product's `simulator` module): this layer does not
//! know the simulator.

use std::path::Path;
use std::time::Duration;

use super::{Backoff, ClientConfig, OncClient, OncError, Token};
/// The base URL value that means "the built-in simulator, in this process".
pub const SIMULATOR: &str = "simulator";

/// Why no connection could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "find an ONC token: set ONC_TOKEN or put `ONC_TOKEN=...` in a .env file (get one from your ONC profile), or use `--base-url simulator`"
    )]
    NoToken,
    #[error("read {path}: {reason}")]
    DotEnv { path: String, reason: String },
    #[error("start the built-in ONC simulator: {0}")]
    Simulator(std::io::Error),
    #[error(
        "use the built-in ONC simulator: this onc-pipe was built without it (cargo feature `simulator`)"
    )]
    NoSimulator,
    #[error(transparent)]
    Client(#[from] OncError),
}

/// What to connect to.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub base_url: String,
    pub timeout: Duration,
    pub max_attempts: u32,
}

impl ConnectOptions {
    /// The retry back-off every client gets: 1 s doubling to 60 s, `max_attempts` tries.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(
            Duration::from_secs(1),
            Duration::from_secs(60),
            self.max_attempts,
        )
    }

    /// A client for `base_url` with these options and `token`.
    pub fn client(&self, base_url: &str, token: Token) -> Result<OncClient, OncError> {
        let mut config = ClientConfig::new(base_url.to_owned(), token);
        config.timeout = self.timeout;
        config.backoff = self.backoff();
        OncClient::new(config)
    }
}

/// The token: `ONC_TOKEN`, else `ONC_TOKEN=` in `dotenv` (a `.env` file), else none.
pub fn find_token(env_value: Option<String>, dotenv: &Path) -> Result<Option<Token>, ConnectError> {
    if let Some(value) = env_value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
    {
        return Ok(Some(Token::new(value)));
    }
    let text = match std::fs::read_to_string(dotenv) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => {
            return Err(ConnectError::DotEnv {
                path: dotenv.display().to_string(),
                reason: error.to_string(),
            });
        }
    };
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        if let Some(value) = line.strip_prefix("ONC_TOKEN=") {
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
            if !value.is_empty() {
                return Ok(Some(Token::new(value)));
            }
        }
    }
    Ok(None)
}

/// Connects to a real server: a token is required. The base URL [`SIMULATOR`] is not a server
/// address; the caller starts the simulator and connects to its address instead.
pub fn connect(options: &ConnectOptions, token: Option<Token>) -> Result<OncClient, ConnectError> {
    let token = token.ok_or(ConnectError::NoToken)?;
    Ok(options.client(&options.base_url, token)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comes_from_the_environment_then_dotenv() {
        let dir = tempfile::tempdir().unwrap();
        let dotenv = dir.path().join(".env");
        assert!(find_token(None, &dotenv).unwrap().is_none());
        std::fs::write(
            &dotenv,
            "# comment\nOTHER=1\nexport ONC_TOKEN=\"abc-123\"\n",
        )
        .unwrap();
        assert_eq!(
            find_token(None, &dotenv).unwrap().unwrap().expose(),
            "abc-123"
        );
        assert_eq!(
            find_token(Some("env-1".into()), &dotenv)
                .unwrap()
                .unwrap()
                .expose(),
            "env-1"
        );
        assert_eq!(
            find_token(Some("  ".into()), &dotenv)
                .unwrap()
                .unwrap()
                .expose(),
            "abc-123"
        );
    }

    #[test]
    fn a_real_server_needs_a_token() {
        let options = ConnectOptions {
            base_url: "https://data.oceannetworks.ca/".into(),
            timeout: Duration::from_secs(5),
            max_attempts: 2,
        };
        let error = connect(&options, None).unwrap_err();
        assert!(error.to_string().contains("ONC_TOKEN"), "{error}");
    }
}
