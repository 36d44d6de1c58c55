//! `refund completions SHELL`: the completion script for a shell, from the command definition
//! itself, so it can never drift from the options.

use std::io::Write;
use std::process::ExitCode;

use clap::Args as ClapArgs;
use clap_complete::Shell;

use crate::exit::Failure;

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// Prints the script for `args.shell` that completes `command` (the whole `refund` command).
pub(crate) fn run(args: &Args, mut command: clap::Command) -> Result<ExitCode, Failure> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "refund", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .map_err(Failure::other)?;
    Ok(ExitCode::SUCCESS)
}
