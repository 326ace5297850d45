//! The ONC simulator: an HTTP server speaking Ocean Networks Canada's protocol, strict as ONC is,
//! with synthetic but realistic content — used by onc-pipe's tests, benchmarks and demo, and by
//! `onc-pipe simulate`.
//!
//! Always built (plain data and arithmetic, no I/O): [`config`] (how the simulated ONC behaves),
//! [`faults`] (fault injection, parsed from `5xx=0.1,reset=0.05,…`), [`runs`] (the run model:
//! capacity, queueing, processing time), [`registry`] (locations, devices and their
//! deployments), [`archive`] (the archive's file layout), [`spect_files`] (its pre-generated
//! spectrogram files) and [`oracle`]
//! (what every sample and spectrogram cell is). With the `server` feature (the default): the
//! FLAC, MAT and PNG file writers ([`flac`], [`mat`], [`picture`]) and the HTTP server
//! ([`server`], axum on loopback).

pub mod archive;
pub mod config;
pub mod faults;
pub mod oracle;
pub mod registry;
pub mod runs;
pub mod spect_files;

#[cfg(feature = "server")]
pub mod flac;
#[cfg(feature = "server")]
pub mod mat;
#[cfg(feature = "server")]
pub mod picture;
#[cfg(feature = "server")]
pub mod server;

pub use config::SimConfig;
#[cfg(feature = "server")]
pub use server::{SimHandle, SimStats, TokenStats, start, token_label};
