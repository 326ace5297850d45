//! The routes, one file per ONC service family (as mini-redis keeps one file per command).
//!
//! Input: a request's query parameters and the shared state, after the router has accounted the
//! request, injected faults and checked the token. Output: the answer ONC would give.
//! Errors: each route answers bad parameters with ONC's error envelope (see `protocol`).
//!
//! Files: `delivery` (`dataProductDelivery`: request, run, status, cancel, restart, download),
//! `archive` (`archivefile`: listings by device or location, and file download), `spect_files`
//! (the archived `-spect.mat`/`-spect.png` files within those listings and downloads), `discovery`
//! (`deployments`, `locations`, `devices`, `dataProducts`), `availability`
//! (`dataAvailability/dataproducts`), `sim` (the simulator's own `/_sim/` routes: stats
//! and the content oracle).

pub(crate) mod archive;
pub(crate) mod availability;
pub(crate) mod delivery;
pub(crate) mod discovery;
pub(crate) mod sim;
pub(crate) mod spect_files;
