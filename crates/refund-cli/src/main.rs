//! `refund`: refunds through SiPay and iyzico from the command line, the signing tools a
//! developer needs when a provider says "invalid hash", crash-safe batch refunds, and the
//! sandbox server with both simulators.
//!
//! Exit codes: 0 refunded; 2 invalid input or usage; 3 declined by the provider; 4 outcome
//! unknown (reconcile before retrying); 5 any other failure.

mod commands;
mod exit;
mod journal;
mod output;

use std::process::ExitCode;

use clap::{ArgAction, Parser, Subcommand};

use crate::exit::Failure;

#[derive(Debug, Parser)]
#[command(name = "refund", version, about = "Refunds through Turkish payment providers (SiPay, iyzico).", long_about = None)]
struct Cli {
    /// More output on stderr: -v for each provider call, -vv for everything (secrets are never printed).
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the SiPay and iyzico simulators on loopback until SIGINT or SIGTERM.
    Sandbox(commands::sandbox::Args),
    /// SiPay: refunds, status lookups and hash_key tools.
    #[command(subcommand)]
    Sipay(commands::sipay::Command),
    /// iyzico: refunds, cancels, status lookups and the IYZWSv2 header tool.
    #[command(subcommand)]
    Iyzico(commands::iyzico::Command),
    /// Refund every row of a CSV file, with a journal that makes a rerun never refund a row twice.
    Batch(commands::batch::Args),
    /// Load test: N refunds through the provider trait against a simulator; prints rate, latency, RSS.
    Bench(commands::bench::Args),
}

fn main() -> ExitCode {
    // A panic is a bug; say so in one line instead of a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let _ = output::err_line(&format!("internal error: {info}"));
    }));

    let cli = Cli::parse();
    init_tracing(cli.verbose);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&Failure::other(format!("cannot start the runtime: {e}"))),
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Sandbox(args) => commands::sandbox::run(args).await,
            Command::Sipay(cmd) => commands::sipay::run(cmd).await,
            Command::Iyzico(cmd) => commands::iyzico::run(cmd).await,
            Command::Batch(args) => commands::batch::run(args).await,
            Command::Bench(args) => commands::bench::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(failure) => fail(&failure),
    }
}

fn fail(failure: &Failure) -> ExitCode {
    let _ = output::err_line(&format!("error: {}", failure.message));
    failure.code.into()
}

fn init_tracing(verbose: u8) {
    let filter = match verbose {
        0 => return,
        1 => "info",
        _ => "trace",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
