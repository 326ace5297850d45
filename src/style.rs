//! Colour on stderr for people: `error` red, `warning` yellow, as compilers show them.
//!
//! Input: `--color auto|always|never` (default `auto`) and the environment: `auto` colours only
//! when stderr is a terminal, `NO_COLOR` is unset or empty (no-color.org) and `TERM` is not
//! `dumb`. Output: words wrapped in ANSI escapes, or left as they are. No errors. Machine
//! output (`--json`, `--format github`, stdout) is never coloured.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// When to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set or `TERM=dumb`.
    #[default]
    Auto,
    Always,
    Never,
}

/// Decides once, from the choice and the environment (see the module doc).
pub fn set(choice: ColorChoice) {
    let enabled = match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
            let dumb = std::env::var_os("TERM").is_some_and(|term| term == "dumb");
            std::io::stderr().is_terminal() && !no_color && !dumb
        }
    };
    ENABLED.store(enabled, Ordering::Relaxed);
}

fn paint(text: &str, code: &str) -> String {
    if ENABLED.load(Ordering::Relaxed) {
        format!("\u{1b}[{code}m{text}\u{1b}[0m")
    } else {
        text.to_owned()
    }
}

/// `error` (or any failure word) in bold red.
pub fn error(text: &str) -> String {
    paint(text, "1;31")
}

/// `warning` in bold yellow.
pub fn warning(text: &str) -> String {
    paint(text, "1;33")
}
