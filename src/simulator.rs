//! The built-in ONC simulator as the server of a run: `base_url = "simulator"` → an `onc-sim`
//! server on loopback, in this process, and a client for it.
//!
//! Input: the connection options, the token (a real server needs one; the simulator does not)
//! and the simulator's configuration. Output: a client, plus the simulator's handle when one was
//! started (stop it when the run ends). Errors: those of [`crate::onc::connect`], a simulator
//! that cannot bind, or a build without the simulator (cargo feature `simulator` off).
//!
//! The one place outside the command line that knows the simulator, so the lower layers
//! (`onc/` among them) never import it.

use onc_sim::SimConfig;

use crate::onc::{ConnectError, ConnectOptions, OncClient, SIMULATOR, Token, connect};

#[cfg(feature = "simulator")]
pub use onc_sim::SimHandle;

/// A running in-process simulator; this build has none (cargo feature `simulator` off), so no
/// value of this type exists.
#[cfg(not(feature = "simulator"))]
#[derive(Debug)]
pub enum SimHandle {}

#[cfg(not(feature = "simulator"))]
impl SimHandle {
    /// Stops the simulator (there is none to stop).
    pub async fn stop(self) {
        match self {}
    }
}

/// The token the in-process simulator is given: it accepts any token, and this one makes clear
/// in a captured request that no real credential was involved.
#[cfg(feature = "simulator")]
const SIMULATOR_TOKEN: &str = "00000000-0000-0000-0000-onc-pipe-sim";

/// Connects to `options.base_url`: a real server with `token`, or, for [`SIMULATOR`], a
/// simulator started in this process with `simulator`'s settings. Must be called inside a tokio
/// runtime.
pub async fn connect_or_simulate(
    options: &ConnectOptions,
    token: Option<Token>,
    simulator: &SimConfig,
) -> Result<(OncClient, Option<SimHandle>), ConnectError> {
    if options.base_url != SIMULATOR {
        return Ok((connect(options, token)?, None));
    }
    #[cfg(feature = "simulator")]
    {
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        let handle = onc_sim::start(simulator.clone(), address)
            .await
            .map_err(ConnectError::Simulator)?;
        let client = options.client(&handle.base_url, Token::new(SIMULATOR_TOKEN))?;
        Ok((client, Some(handle)))
    }
    #[cfg(not(feature = "simulator"))]
    {
        let _ = simulator;
        Err(ConnectError::NoSimulator)
    }
}

#[cfg(all(test, feature = "simulator"))]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn simulator_base_url_starts_one_in_process_and_needs_no_token() {
        let options = ConnectOptions {
            base_url: SIMULATOR.into(),
            timeout: Duration::from_secs(5),
            max_attempts: 2,
        };
        let config = SimConfig {
            sample_rate: 8_000,
            time_scale: 0.001,
            ..SimConfig::default()
        };
        let (client, handle) = connect_or_simulate(&options, None, &config).await.unwrap();
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
}
