//! `refund`: refunds through SiPay and iyzico from the command line, the signing tools a
//! developer needs when a provider says "invalid hash", crash-safe batch refunds, and the
//! sandbox server with both simulators.
//!
//! Every outcome is printed for people (`--output text`, the default) or as one JSON object
//! on stdout (`--output json` or `REFUND_OUTPUT=json`), failures included. Exit codes: 0
//! refunded; 2 invalid input or usage; 3 declined by the provider; 4 outcome unknown (reconcile
//! before retrying); 5 any other failure; 75 nothing happened, try again later (rate limited,
//! unreachable, a temporary decline).

mod commands;
mod exit;
mod journal;
mod output;
mod secrets;

use std::process::ExitCode;

use clap::{ArgAction, CommandFactory, Parser, Subcommand};

use crate::exit::Failure;
use crate::output::Format;

#[derive(Debug, Parser)]
#[command(
    name = "refund",
    version,
    about = "Refunds through Turkish payment providers (SiPay, iyzico).",
    long_about = None,
    after_help = "Example:\n  refund --output json sipay refund --invoice-id INV-2026-0001 --amount 25.00"
)]
struct Cli {
    /// More output on stderr: -v for each provider call, -vv for everything (secrets are never
    /// printed). RUST_LOG, when set, decides instead (e.g. RUST_LOG=refund_sipay=debug).
    #[arg(short, long, action = ArgAction::Count, global = true, display_order = 900)]
    verbose: u8,
    /// How outcomes are printed: text for people; json for scripts, every outcome (failures
    /// too) one JSON object on stdout. Default: REFUND_OUTPUT when set, else text.
    #[arg(long, value_enum, global = true, display_order = 901)]
    output: Option<Format>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the SiPay and iyzico simulators on loopback until SIGINT or SIGTERM.
    #[command(after_help = "Example:\n  \
        refund sandbox --env-file sandbox.env &   # then: eval \"$(cat sandbox.env)\"")]
    Sandbox(commands::sandbox::Args),
    /// SiPay: refunds, status lookups and hash_key tools.
    #[command(
        subcommand,
        after_help = "Example:\n  refund sipay refund --invoice-id INV-2026-0001 --amount 25.00"
    )]
    Sipay(commands::sipay::Command),
    /// iyzico: refunds, cancels, status lookups and the IYZWSv2 header tool.
    #[command(
        subcommand,
        after_help = "Example:\n  refund iyzico cancel --payment-id 25180158"
    )]
    Iyzico(commands::iyzico::Command),
    /// Refund every row of a CSV file, with a journal that makes a rerun never refund a row twice.
    #[command(after_help = "Example:\n  \
        refund batch --input refunds.csv --journal refunds.journal   # rerun after a crash: no row twice")]
    Batch(commands::batch::Args),
    /// Record what a person decided for a row of a batch journal: refunded, not refunded, or
    /// retry now. A row whose request may be in flight is looked up first.
    #[command(after_help = "Example:\n  \
        refund decide --journal refunds.journal --reference r-17 --refunded --refund-id 8812 \\\n    \
        --by ayse --why 'seen in the panel'")]
    Decide(commands::decide::Args),
    /// Load test: N refunds through the provider trait against a simulator; prints rate, latency, RSS.
    #[command(after_help = "Example:\n  refund bench --provider sipay --requests 10000")]
    Bench(commands::bench::Args),
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  \
        refund completions bash > ~/.local/share/bash-completion/completions/refund")]
    Completions(commands::completions::Args),
    /// The refund outbox on PostgreSQL: intents by state and the stuck ones.
    #[command(
        subcommand,
        after_help = "Example:\n  refund outbox status --database-url postgres://app@127.0.0.1/shop"
    )]
    Outbox(commands::outbox::Command),
}

fn main() -> ExitCode {
    // A panic is a bug; say so in one line instead of a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let _ = output::err_line(&format!("internal error: {info}"));
    }));

    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    init_tracing(cli.verbose);
    let format = match cli.output {
        Some(format) => format,
        None => match format_from_env() {
            Ok(format) => format,
            Err(failure) => return output::failure(Format::Text, &failure),
        },
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let failure = Failure::other(format!("cannot start the runtime: {e}"));
            return output::failure(format, &failure);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Sandbox(args) => commands::sandbox::run(args, format).await,
            Command::Sipay(cmd) => commands::sipay::run(cmd)
                .await
                .and_then(|s| output::success(format, &s)),
            Command::Iyzico(cmd) => commands::iyzico::run(cmd)
                .await
                .and_then(|s| output::success(format, &s)),
            Command::Batch(args) => commands::batch::run(args, format).await,
            Command::Decide(args) => commands::decide::run(args, format).await,
            Command::Bench(args) => commands::bench::run(args).await,
            Command::Completions(args) => commands::completions::run(&args, Cli::command()),
            Command::Outbox(cmd) => commands::outbox::run(cmd, format).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(failure) => output::failure(format, &failure),
    }
}

/// A command line clap refused (or `--help`, `--version`): clap prints it, unless JSON output
/// was asked for, where a refused command line is one JSON object like any other failure. A
/// removed secret flag (`--app-secret` …) gets a message that says how to pass the secret.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let informational = matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let format = if json_requested(&args) {
        Format::Json
    } else {
        Format::Text
    };
    if !informational && let Some(failure) = secrets::refused_flag(&args) {
        return output::failure(format, &failure);
    }
    if informational || format == Format::Text {
        e.exit();
    }
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    let message = first.strip_prefix("error: ").unwrap_or(first);
    output::failure(Format::Json, &Failure::usage(message))
}

/// Whether the command line (which clap refused) or `REFUND_OUTPUT` asks for JSON.
fn json_requested(args: &[String]) -> bool {
    let mut asked = None;
    for (i, arg) in args.iter().enumerate() {
        if arg == "--" {
            break;
        } else if arg == "--output" {
            asked = args.get(i + 1).map(|v| v == "json");
        } else if let Some(v) = arg.strip_prefix("--output=") {
            asked = Some(v == "json");
        }
    }
    asked.unwrap_or_else(|| format_from_env().is_ok_and(|f| f == Format::Json))
}

/// `REFUND_OUTPUT`: `text` or `json` in any case; unset or empty means text.
fn format_from_env() -> Result<Format, Failure> {
    let value = std::env::var("REFUND_OUTPUT").unwrap_or_default();
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "text" => Ok(Format::Text),
        "json" => Ok(Format::Json),
        // The value is not echoed: whatever was put there by mistake (a password) stays out of
        // the terminal and the logs.
        _ => Err(Failure::usage(format!(
            "REFUND_OUTPUT is set to a value of {} characters that is neither text nor json: \
             expected text or json",
            value.chars().count()
        ))),
    }
}

/// Logs on stderr: `RUST_LOG` when it is set, else `-v` (info) or `-vv` (trace), else none.
/// Secrets never reach a log at any level: the provider crates keep them in `SecretString`s
/// and log no request bodies or headers.
fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let from_flags = || match verbose {
        0 => None,
        1 => Some(EnvFilter::new("info")),
        _ => Some(EnvFilter::new("trace")),
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => match EnvFilter::try_new(&spec) {
            Ok(filter) => Some(filter),
            Err(e) => {
                let _ = output::err_line(&format!(
                    "warning: RUST_LOG ignored ({e}); using -v/-vv instead"
                ));
                from_flags()
            }
        },
        _ => from_flags(),
    };
    let Some(filter) = filter else { return };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
