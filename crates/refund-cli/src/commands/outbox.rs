//! `refund outbox`: the refund outbox on PostgreSQL (crate `refund-outbox`).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args as ClapArgs, Subcommand};
use refund_outbox::tokio_postgres::{self, Client};

use crate::exit::{Code, Failure};
use crate::output::{Format, err_line, out_line};

/// Where the outbox lives.
#[derive(Debug, Clone, ClapArgs)]
pub(crate) struct Database {
    /// The PostgreSQL URL (`postgres://user@host/db?sslmode=verify-full`): TLS as its `sslmode`
    /// says (`disable`, `prefer` by default, `require`, `verify-ca`, `verify-full`;
    /// `sslrootcert=/path/ca.pem` or the system's roots). Never printed.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub(crate) database_url: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Intents by state and the stuck ones, as one JSON object on stdout (the stuck ones also on
    /// stderr). Exit 0 when nothing is stuck, 4 when something is.
    #[command(after_help = "Example:\n  \
        refund outbox status --database-url postgres://app@127.0.0.1/shop --stuck-after 600")]
    Status(StatusArgs),
}

#[derive(Debug, ClapArgs)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    database: Database,
    /// An intent not final this many seconds after it was enqueued is stuck (failed ones
    /// always are).
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    stuck_after: u64,
    /// List at most this many stuck intents.
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

pub(crate) async fn run(command: Command, format: Format) -> Result<ExitCode, Failure> {
    match command {
        Command::Status(args) => status(args, format).await,
    }
}

/// Connects with TLS as the URL's `sslmode` says (`disable`, `prefer` — the default, as in
/// libpq —, `require`, `verify-ca`, `verify-full`, with `sslrootcert=` or the system's roots;
/// see `refund_outbox::tls`); the connection runs on the current runtime. Errors never carry
/// the URL or its password, and do carry the server's or the TLS handshake's reason.
pub(crate) async fn connect(url: &str) -> Result<Client, Failure> {
    let (client, _connection) = refund_outbox::connect(url).await?;
    Ok(client)
}

impl From<refund_outbox::OutboxError> for Failure {
    fn from(e: refund_outbox::OutboxError) -> Failure {
        Failure::other(format!("the outbox database: {e}"))
    }
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Failure {
        Failure::other(format!("the outbox database: {e}"))
    }
}

/// With `--output json` the status is in the envelope every command has (`ok`, `kind`
/// `outbox_status`, `exit_code`, …), its counts and `stuck` list in it; in text mode the status
/// object alone.
async fn status(args: StatusArgs, format: Format) -> Result<ExitCode, Failure> {
    let db = connect(&args.database.database_url).await?;
    let status =
        refund_outbox::status(&db, Duration::from_secs(args.stuck_after), args.limit).await?;
    err_line(&format!(
        "outbox, {} intents: {} pending, {} unknown, {} retry later, {} refunded, {} declined, \
         {} failed; {} claimed now, {} with an expired lease",
        status.total(),
        status.pending,
        status.unknown,
        status.retry_later,
        status.refunded,
        status.declined,
        status.failed,
        status.claimed,
        status.expired_leases
    ))
    .map_err(Failure::other)?;
    for s in &status.stuck {
        err_line(&format!(
            "stuck: intent {} {} {} {} reference {} ({}, {} sends, since {}): {}",
            s.id,
            s.provider,
            s.payment,
            s.amount,
            s.reference,
            s.state,
            s.sends,
            s.created_at,
            s.why
        ))
        .map_err(Failure::other)?;
    }
    let exit_code = if status.stuck.is_empty() {
        0
    } else {
        Code::Unknown as u8
    };
    let line = match format {
        Format::Text => serde_json::to_string(&status).map_err(Failure::other)?,
        Format::Json => crate::output::summary_json(
            "outbox_status",
            &format!(
                "outbox, {} intents, {} stuck",
                status.total(),
                status.stuck.len()
            ),
            exit_code,
            status.unknown == 0,
            serde_json::to_value(&status).map_err(Failure::other)?,
        ),
    };
    out_line(&line).map_err(Failure::other)?;
    Ok(ExitCode::from(exit_code))
}
