//! `envmod completions SHELL`: clap writes the script from the same definitions users see.

use clap::CommandFactory;

use crate::cli::Cli;

pub(crate) fn run(shell: clap_complete::Shell) {
    clap_complete::generate(shell, &mut Cli::command(), "envmod", &mut std::io::stdout());
}
