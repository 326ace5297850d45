//! The simulator's HTTP server: ONC's web API on loopback, backed by the synthetic archive.
//!
//! Input: [`SimConfig`] and a bind address. Output: a running server ([`SimHandle`]) that answers
//! ONC's endpoints in path style (`/api/dataProductDelivery/run`) and legacy `?method=` style,
//! GET and HEAD, with ONC's error envelopes, plus `/_sim/stats` (request accounting for tests).
//! Errors: only binding the port can fail; every bad request gets the HTTP answer ONC would give.
//!
//! Protocol choices where ONC is silent (see `shared/onc-api.md`, "UNCONFIRMED"): a failed run
//! answers `run` with HTTP 200 and status `error` and `download` with 202 `{"status":"error"}`;
//! a valid token is any non-empty token not starting with `invalid` (missing or empty: 401/128,
//! rejected: 401/127); archive listings page at `rowLimit` (default 500) files with
//! `next.parameters` carrying `dateFrom` past the last file; a product request whose window
//! misses every deployment of its device or location is refused with 400/127 on
//! `dateFrom,dateTo` (see `sources`), while one in an outage within a deployment runs with 0 files
//! (download 204); files straddling a deployment's begin or end do not exist;
//! `dataAvailability/dataproducts` covers the archived `AD` flac/wav files (see
//! `routes::availability`).
//!
//! Files: `state` (the shared state: request accounting [`SimStats`], global and per token, the
//! requests held, the [`SimHandle`] and [`start`]), `router` (every request: accounting, fault
//! injection, authentication, dispatch to a route), `protocol` (ONC's error envelope and the
//! parameter readers routes share), `sources` (a request's device or location and the archived
//! files its deployments hold in a window), `files` (the generated-file cache and file answers,
//! faults included, each download counted in flight until its body is sent or dropped), and
//! `routes/`, one file per ONC service family.
//!
//! [`SimConfig`]: crate::config::SimConfig

// Helpers return `Err(Response)` to answer early with ONC's error; a Response is large, but
// boxing it on a loopback test server's error path would buy nothing.
#![allow(clippy::result_large_err)]

mod files;
mod protocol;
mod router;
mod routes;
mod sources;
mod state;

pub use state::{SimHandle, SimStats, TokenStats, start, token_label};
