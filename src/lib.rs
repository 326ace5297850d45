//! onc-pipe: declarative, resumable pipelines for Ocean Networks Canada hydrophone data.
//!
//! The data flows one way: `manifest` (TOML or request file → [`manifest::Loaded`]) →
//! `plan` (typed, validated windows → [`plan::Plan`]) → `dag` (content-hashed nodes →
//! [`dag::Dag`]). `cli` maps commands onto these stages and errors onto exit codes.

pub mod cache;
pub mod cli;
pub mod clip;
pub mod compile;
pub mod dag;
pub mod exec;
pub mod manifest;
pub mod onc;
pub mod plan;
pub mod report;
pub mod sim;
