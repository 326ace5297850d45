//! Integration tests: the manifest compiler and the real `onc-pipe` binary.
//!
//! One test binary (faster to link than one per file), modules by topic.

// Test code panics on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod annotations;
mod architecture;
mod archived;
mod catalog;
mod clean;
mod cli;
mod clips;
mod deployments;
mod estimates;
mod examples;
mod failfast;
mod faults;
mod gc;
mod golden;
mod hostile;
mod keys;
mod kill_suite;
mod readme;
mod recipes;
mod robustness;
mod run;
mod s3;
mod scenarios;
mod shards;
mod signals;
mod sim;
mod support;
mod team;
mod user_config;
