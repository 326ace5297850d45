//! The signals that interrupt a run, heard as one stream: SIGINT (Ctrl-C), SIGTERM (a Slurm time
//! limit, `timeout`, a shutdown) and SIGHUP (a closed terminal) on Unix; Ctrl-C elsewhere.
//!
//! Input: the process's signals, once [`Signals::listen`] has installed handlers (inside a tokio
//! runtime). Output: each [`Interrupt`] as it arrives, with the exit code it means (128 + the
//! signal's number, the shell's convention, so `sbatch`, `timeout` and shells read the cause).
//! Errors: installing a handler can fail (I/O), reported by [`Signals::listen`].
//!
//! All three are handled alike by the run (stop scheduling, remove partial files, keep the
//! journal, write the run record, say how to resume); a second one exits at once. Once a handler
//! is installed the signal's default action (ending the process) is gone for the life of the
//! process: that is what lets the first one stop the run cleanly.

use crate::error::{EXIT_HANGUP, EXIT_INTERRUPTED, EXIT_TERMINATED};

/// A signal that stops a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// SIGINT: Ctrl-C.
    Int,
    /// SIGTERM: a batch scheduler's time limit, `timeout`, `kill`, a shutdown.
    Term,
    /// SIGHUP: the terminal was closed.
    Hup,
}

impl Interrupt {
    /// 128 + the signal's number: 130, 143, 129.
    pub fn exit_code(self) -> i32 {
        match self {
            Interrupt::Int => EXIT_INTERRUPTED,
            Interrupt::Term => EXIT_TERMINATED,
            Interrupt::Hup => EXIT_HANGUP,
        }
    }

    /// The signal's name, as the run record and messages give it.
    pub fn name(self) -> &'static str {
        match self {
            Interrupt::Int => "SIGINT",
            Interrupt::Term => "SIGTERM",
            Interrupt::Hup => "SIGHUP",
        }
    }

    /// What a person does to send it again (to quit at once).
    pub fn again(self) -> &'static str {
        match self {
            Interrupt::Int => "Ctrl-C again",
            Interrupt::Term | Interrupt::Hup => "send it again, or Ctrl-C,",
        }
    }
}

/// The installed handlers.
#[derive(Debug)]
pub struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers; from now on these signals no longer end the process by
    /// themselves. Must be called inside a tokio runtime. Errors: the OS refused a handler.
    pub fn listen() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
                hup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// The next signal; `None` when none can arrive any more.
    pub async fn next(&mut self) -> Option<Interrupt> {
        #[cfg(unix)]
        {
            tokio::select! {
                Some(()) = self.int.recv() => Some(Interrupt::Int),
                Some(()) = self.term.recv() => Some(Interrupt::Term),
                Some(()) = self.hup.recv() => Some(Interrupt::Hup),
                else => None,
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.ok().map(|()| Interrupt::Int)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_128_plus_the_signal_number() {
        assert_eq!(Interrupt::Int.exit_code(), 128 + 2);
        assert_eq!(Interrupt::Hup.exit_code(), 128 + 1);
        assert_eq!(Interrupt::Term.exit_code(), 128 + 15);
    }
}
