//! The built-in ONC simulator: an HTTP server speaking ONC's protocol (`server`), its run model
//! (`runs`), fault injection (`faults`), and synthetic but realistic content: the archive's file
//! layout (`archive`), a content oracle (`oracle`), and FLAC, MAT and PNG file writers.

pub mod archive;
pub mod faults;
pub mod flac;
pub mod mat;
pub mod oracle;
pub mod picture;
pub mod runs;
pub mod server;

pub use server::{SimConfig, SimHandle, SimStats, start};
