//! `-v`/`-vv`: one line on stderr per request to ONC (`-v`) and to a team store (`-vv`), each
//! with its UTC time, so a long unattended run's log shows what it asked and what came back.
//!
//! Input: the level, set once from the command line; the lines, from the ONC client and the
//! store. Output: lines on stderr. No errors. The ONC token never appears: the client passes
//! the parameters without it.

use std::sync::atomic::{AtomicU8, Ordering};

static LEVEL: AtomicU8 = AtomicU8::new(0);

/// How much to trace: 0 nothing (the default), 1 ONC's requests, 2 the store's too.
pub fn set_level(level: u8) {
    LEVEL.store(level, Ordering::Relaxed);
}

/// Whether requests to ONC are traced (`-v`).
pub fn onc() -> bool {
    LEVEL.load(Ordering::Relaxed) >= 1
}

/// Whether requests to a team store are traced (`-vv`).
pub fn store() -> bool {
    LEVEL.load(Ordering::Relaxed) >= 2
}

/// Prints one trace line, starting with the UTC time.
pub fn line(text: &str) {
    eprintln!("{} {text}", chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"));
}
