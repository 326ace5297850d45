//! MAT-file Level 5 reader and writer, and ONC's spectrogram layout on top of it: the
//! `onc-mat` crate (`crates/onc-mat`), shared with the simulator, which writes its HSD `mat`
//! files with it. Its tests here read the simulator's files.

pub use onc_mat::*;

#[cfg(test)]
mod tests;
