//! onc-pipe: declarative, resumable pipelines for Ocean Networks Canada hydrophone data.
//!
//! The data flows one way, each stage's output the next one's input:
//!
//! ```text
//! manifest/   TOML manifest or request file ──► manifest::Loaded (spans kept for diagnostics)
//! plan/       checked, typed windows, fetch and clip stages ──► plan::Plan
//! dag/        content-hashed nodes (window → ONC query → file → clip) ──► dag::Dag
//! compile     the three above in one call ──► compile::Compiled (or every diagnostic)
//! exec/       the only async code: limits, ONC jobs, downloads, clips ──► exec::RunSummary
//!   ├─ onc/     the only code that talks to ONC: typed client, retries, token redaction
//!   ├─ cache/   content-addressed store, coverage, journal, node records, lock
//!   └─ clip/    synchronous decoders and writers (MAT, FLAC, WAV, NPZ, PNG)
//! estimate    plan + DAG + node states + sample rates + free space ──► bytes, ONC time, wall time
//! report/     plans, states, events and summaries ──► text and JSON; nothing else formats
//! discover    ONC's deployments of a plan's devices and sites, cached with an expiry
//! interrupt   SIGINT, SIGTERM, SIGHUP ──► which one stopped a run, and its exit code
//! preflight   writable folders and free space, checked before anything is ordered
//! run         `onc-pipe run` as one call: cache lock, token, connection, reporter, record
//! config      the user config file (cache, token, keep_runs) ──► config::UserConfig
//! housekeeping  manifests + cache ──► what `gc` removes (under the exclusive lock); `cache dir|size`
//! shard       DAG + `--shard k/N` ──► the nodes one shard runs, and its share of the limits
//! simulator   `base_url = "simulator"` ──► an in-process onc-sim server and a client for it
//! error       what stops a command before its work, with its exit code
//! cli         command line ──► the calls above ──► exit code
//! ```
//!
//! ONC's conventions (file-name stamps, the five-minute grid, query parameters, options) live in
//! the `onc-format` crate; the simulator in `onc-sim` (its server behind the default-on
//! `simulator` feature).

pub mod annotations;
pub mod cache;
pub mod catalog;
pub mod cli;
pub mod clip;
pub mod compile;
pub mod config;
pub mod dag;
pub mod discover;
pub mod error;
pub mod estimate;
pub mod exec;
pub mod housekeeping;
pub mod interrupt;
pub mod manifest;
pub mod onc;
pub mod plan;
pub mod preflight;
pub mod report;
pub mod run;
pub mod shard;
pub mod simulator;
pub mod style;
pub mod temp;
pub mod trace;
