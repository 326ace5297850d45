//! The `onc-pipe` binary: parse arguments, run, exit with the command's code.

use clap::Parser;

fn main() {
    let cli = onc_pipe::cli::Cli::parse();
    std::process::exit(onc_pipe::cli::run(cli));
}
