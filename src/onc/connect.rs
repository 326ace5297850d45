//! Connecting to ONC: resolved settings + environment → an [`OncClient`], starting the built-in
//! simulator in-process when the base URL is `simulator`.
//!
//! Input: the base URL (manifest `onc.base_url`, `--base-url` or `ONC_BASE_URL`), the timeout and
//! attempt limit, and the token from `ONC_TOKEN` or a `.env` file. Output: a client, plus the
//! simulator's handle when one was started (dropping it stops the simulator). Errors: no token for
//! a real server, an unreadable `.env`, a simulator that cannot bind.

use std::path::Path;
use std::time::Duration;

use super::{Backoff, ClientConfig, OncClient, OncError, Token};
use crate::sim::{SimConfig, SimHandle};

/// The base URL value that means "the built-in simulator, in this process".
pub const SIMULATOR: &str = "simulator";

/// The token the in-process simulator is given: it accepts any token, and this one makes clear
/// in a captured request that no real credential was involved.
const SIMULATOR_TOKEN: &str = "00000000-0000-0000-0000-onc-pipe-sim";

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
    #[error(transparent)]
    Client(#[from] OncError),
}

/// What to connect to.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub base_url: String,
    pub timeout: Duration,
    pub max_attempts: u32,
    /// Settings of the in-process simulator, when `base_url` is `simulator`.
    pub simulator: SimConfig,
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

/// Connects: a client for a real server (token required), or the in-process simulator and a
/// client for it. Must be called inside a tokio runtime.
pub async fn connect(
    options: &ConnectOptions,
    token: Option<Token>,
) -> Result<(OncClient, Option<SimHandle>), ConnectError> {
    let backoff = Backoff::new(
        Duration::from_secs(1),
        Duration::from_secs(60),
        options.max_attempts,
    );
    if options.base_url == SIMULATOR {
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let handle = crate::sim::start(options.simulator.clone(), address)
            .await
            .map_err(ConnectError::Simulator)?;
        let mut config = ClientConfig::new(handle.base_url.clone(), Token::new(SIMULATOR_TOKEN));
        config.timeout = options.timeout;
        config.backoff = backoff;
        return Ok((OncClient::new(config)?, Some(handle)));
    }
    let token = token.ok_or(ConnectError::NoToken)?;
    let mut config = ClientConfig::new(options.base_url.clone(), token);
    config.timeout = options.timeout;
    config.backoff = backoff;
    Ok((OncClient::new(config)?, None))
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

    #[tokio::test]
    async fn simulator_base_url_starts_one_in_process_and_needs_no_token() {
        let options = ConnectOptions {
            base_url: SIMULATOR.into(),
            timeout: Duration::from_secs(5),
            max_attempts: 2,
            simulator: SimConfig {
                sample_rate: 8_000,
                time_scale: 0.001,
                ..SimConfig::default()
            },
        };
        let (client, handle) = connect(&options, None).await.unwrap();
        let handle = handle.expect("a simulator was started");
        assert_eq!(client.base_url(), handle.base_url);
        let devices = client
            .devices(&[("deviceCode".to_owned(), "ICLISTENHF6324".to_owned())].into())
            .await
            .unwrap();
        assert_eq!(devices[0]["deviceCode"], "ICLISTENHF6324");
        assert_eq!(handle.stats().requests_total, 1);
        handle.stop().await;
    }

    #[tokio::test]
    async fn a_real_server_needs_a_token() {
        let options = ConnectOptions {
            base_url: "https://data.oceannetworks.ca/".into(),
            timeout: Duration::from_secs(5),
            max_attempts: 2,
            simulator: SimConfig::default(),
        };
        let error = connect(&options, None).await.unwrap_err();
        assert!(error.to_string().contains("ONC_TOKEN"), "{error}");
    }
}
