//! `refund sandbox`: both simulators on loopback, for people and non-Rust clients.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args as ClapArgs;
use refund_testkit::sim::PendingVisibility;

use crate::exit::Failure;
use crate::output::{self, Format, Success, err_line, out_line, shell_quote, shell_word};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
    /// Start with no payments. Without it the simulators start with demo payments: SiPay
    /// invoices INV-1, INV-2 and INV-3, paid 100.00 TRY each; iyzico payment 25180001
    /// (100.00 TRY in basket lines 26120002 of 60.00 and 26120003 of 40.00) and payment
    /// 25180004 (one line, 26120005, of 50.00 TRY; paid today, so it can be cancelled).
    #[arg(long)]
    empty: bool,
    /// The loopback address to listen on (the simulators accept published demo credentials,
    /// so they never listen beyond this machine).
    #[arg(long, default_value = "127.0.0.1")]
    listen: IpAddr,
    /// The SiPay simulator's port (default: a free port).
    #[arg(long)]
    sipay_port: Option<u16>,
    /// The iyzico simulator's port (default: a free port).
    #[arg(long)]
    iyzico_port: Option<u16>,
    /// Write the variables to this file (mode 0600) instead of stdout, once both simulators
    /// listen; the file is replaced whole, and removed when the sandbox stops (its ports are
    /// good only while it runs). Load it with `. PATH` or `eval "$(cat PATH)"`.
    #[arg(long, value_name = "PATH")]
    env_file: Option<PathBuf>,
    /// SiPay's 30-second rule: a refund of an invoice refunded less than this many seconds
    /// before is refused with 49 "Refund Failed", as SiPay does (0 turns it off).
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=3600))]
    refund_spacing: u64,
    /// Lookup lag: both simulators hide each refund from their lookups (SiPay check status,
    /// iyzico's payment report) until it is this many milliseconds old, as real providers'
    /// lookups lag behind their refunds.
    #[arg(long, value_name = "MS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=86_400_000))]
    lookup_lag_ms: u64,
    /// Late application: both simulators process every refund and lookup this many
    /// milliseconds after it arrived and answer then, so a client with a shorter timeout
    /// gives up on a refund that is applied anyway.
    #[arg(long, value_name = "MS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=600_000))]
    late_application_ms: u64,
    /// SiPay: a refusal that leaves no failed entry (the 30-second rule, an over-refund) uses
    /// its refund_transaction_id up, so a resend with the same reference answers 104.
    #[arg(long)]
    refusals_use_reference: bool,
    /// SiPay: answer refunds 101 (pending) instead of 100; they complete through
    /// POST /__sandbox/complete_pending.
    #[arg(long)]
    pending_refunds: bool,
    /// SiPay: how check status shows pending refunds: counted in the total and listed,
    /// listed only, or hidden altogether.
    #[arg(long, value_enum, default_value_t = Pending::Counted)]
    pending_visibility: Pending,
    /// SiPay: check status's refund_info leaves out the oldest completed refund while
    /// total_refunded_amount counts it.
    #[arg(long)]
    refund_info_short: bool,
    /// SiPay: the refund_info status word of a completed refund (a word outside the client's
    /// mapping, such as `cancelled`, tests that it is never read as failed).
    #[arg(long, value_name = "WORD", default_value = "success", value_parser = status_word)]
    completed_status_word: String,
    /// SiPay: accept requests without `Accept: application/json` (SiPay requires it).
    #[arg(long)]
    allow_missing_accept: bool,
    /// SiPay: accept refunds without a refund_transaction_id (SiPay requires one).
    #[arg(long)]
    allow_missing_refund_transaction_id: bool,
    /// iyzico: the refundStatus the payment report gives a completed refund or cancel
    /// (no source documents the values; 1 unless set).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        allow_negative_numbers = true
    )]
    refund_status_completed: i64,
    /// iyzico: the refundStatus of a failed refund or cancel (0 unless set).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    refund_status_failed: i64,
    /// iyzico: cancel payments of any day (iyzico cancels only on the day of the payment).
    #[arg(long)]
    any_day_cancel: bool,
}

/// How SiPay's check status shows pending refunds (`--pending-visibility`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Pending {
    /// Counted in total_refunded_amount and listed as pending.
    Counted,
    /// Listed as pending, left out of the total.
    Listed,
    /// Neither counted nor listed.
    Hidden,
}

/// A status word of 1 to 64 bytes.
fn status_word(word: &str) -> Result<String, String> {
    if word.is_empty() || word.len() > 64 {
        return Err("a word of 1 to 64 bytes".to_owned());
    }
    Ok(word.to_owned())
}

impl Args {
    /// The provider-like behaviours, in words for the banner.
    fn behaviour_note(&self) -> String {
        let mut notes = Vec::new();
        if self.refund_spacing > 0 {
            notes.push(format!(
                "SiPay refuses a second refund of an invoice within {} s (--refund-spacing 0 turns it off)",
                self.refund_spacing
            ));
        }
        if self.lookup_lag_ms > 0 {
            notes.push(format!("lookups lag {} ms", self.lookup_lag_ms));
        }
        if self.late_application_ms > 0 {
            notes.push(format!(
                "every request is applied and answered after {} ms",
                self.late_application_ms
            ));
        }
        let switches = [
            (self.refusals_use_reference, "--refusals-use-reference"),
            (self.pending_refunds, "--pending-refunds"),
            (
                self.pending_visibility != Pending::Counted,
                "--pending-visibility",
            ),
            (self.refund_info_short, "--refund-info-short"),
            (
                self.completed_status_word != "success",
                "--completed-status-word",
            ),
            (self.allow_missing_accept, "--allow-missing-accept"),
            (
                self.allow_missing_refund_transaction_id,
                "--allow-missing-refund-transaction-id",
            ),
            (
                (self.refund_status_completed, self.refund_status_failed) != (1, 0),
                "--refund-status-*",
            ),
            (self.any_day_cancel, "--any-day-cancel"),
        ];
        let on: Vec<&str> = switches
            .iter()
            .filter(|(set, _)| *set)
            .map(|(_, name)| *name)
            .collect();
        if !on.is_empty() {
            notes.push(format!("also {}", on.join(" ")));
        }
        notes.join("; ")
    }
}

/// Applies the provider-like behaviours of `args` to both simulators.
fn apply_behaviour(args: &Args, sandbox: &refund_testkit::sandbox::Sandbox) {
    let spacing = (args.refund_spacing > 0).then(|| Duration::from_secs(args.refund_spacing));
    sandbox.sipay.set_refund_spacing(spacing);
    let lag = Duration::from_millis(args.lookup_lag_ms);
    sandbox.sipay.set_lookup_lag(lag);
    sandbox.iyzico.set_lookup_lag(lag);
    let delay = Duration::from_millis(args.late_application_ms);
    sandbox.sipay.set_response_delay(delay);
    sandbox.iyzico.set_response_delay(delay);
    let sipay = &sandbox.sipay;
    sipay.set_refusals_use_reference(args.refusals_use_reference);
    sipay.set_pending_refunds(args.pending_refunds);
    sipay.set_pending_visibility(match args.pending_visibility {
        Pending::Counted => PendingVisibility::Counted,
        Pending::Listed => PendingVisibility::Listed,
        Pending::Hidden => PendingVisibility::Hidden,
    });
    sipay.set_refund_info_short(args.refund_info_short);
    sipay.set_completed_status_word(&args.completed_status_word);
    sipay.set_require_accept(!args.allow_missing_accept);
    sipay.set_require_refund_transaction_id(!args.allow_missing_refund_transaction_id);
    let iyzico = &sandbox.iyzico;
    iyzico.set_refund_status_values(args.refund_status_completed, args.refund_status_failed);
    iyzico.set_same_day_cancel(!args.any_day_cancel);
}

pub(crate) async fn run(args: Args, format: Format) -> Result<ExitCode, Failure> {
    if !args.listen.is_loopback() {
        return Err(Failure::invalid(format!(
            "--listen {}: the sandbox listens on loopback addresses only",
            args.listen
        )));
    }
    // Listen for SIGINT/SIGTERM before anything is printed or written: a supervisor that reads
    // the variables and stops the sandbox at once must find it stopping cleanly, not killed
    // by the signal's default action.
    let stop = Stop::listen()?;
    // A file left by an earlier run names ports nobody listens on: gone before anything waits
    // for the new one.
    if let Some(path) = &args.env_file {
        remove(path)?;
    }
    let sandbox = refund_testkit::sandbox::run(args.listen, args.sipay_port, args.iyzico_port)
        .await
        .map_err(|e| Failure::other(format!("cannot start the simulators: {e}")))?;
    apply_behaviour(&args, &sandbox);
    if !args.empty {
        sandbox
            .seed_demo()
            .map_err(|e| Failure::other(format!("cannot add the demo payments: {e}")))?;
    }
    let sipay = sandbox.sipay_credentials();
    let iyzico = sandbox.iyzico_credentials();
    let vars = [
        ("SIPAY_BASE_URL", sipay.base_url.clone()),
        ("SIPAY_APP_ID", sipay.app_id.to_string()),
        ("SIPAY_APP_SECRET", sipay.app_secret.to_string()),
        ("SIPAY_MERCHANT_KEY", sipay.merchant_key.to_string()),
        ("IYZICO_BASE_URL", iyzico.base_url.clone()),
        ("IYZICO_API_KEY", iyzico.api_key.to_string()),
        ("IYZICO_SECRET_KEY", iyzico.secret_key.to_string()),
    ];
    let mut message = format!(
        "SiPay simulator on {}, iyzico simulator on {}; SIGINT (Ctrl-C) or SIGTERM stops them",
        sipay.base_url, iyzico.base_url
    );
    message.push_str(if args.empty {
        "; no payments (--empty)"
    } else {
        "; demo payments: SiPay INV-1, INV-2, INV-3 (100.00 TRY each), iyzico 25180001 \
         (lines 26120002 60.00, 26120003 40.00 TRY) and 25180004 (line 26120005, 50.00 TRY)"
    });
    let note = args.behaviour_note();
    if !note.is_empty() {
        message.push_str("; ");
        message.push_str(&note);
    }
    let script = env_script(&message, &vars);
    if let Some(path) = &args.env_file {
        write_private(path, &script)?;
    }
    match (format, &args.env_file) {
        (Format::Json, _) => {
            let env: serde_json::Map<String, serde_json::Value> = vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.as_str().into()))
                .collect();
            let file = args.env_file.as_ref().map(|p| p.display().to_string());
            let success = Success {
                kind: "sandbox",
                provider: None,
                message,
                reference: None,
                text: String::new(),
                data: vec![("env", env.into()), ("env_file", file.into())],
            };
            output::success(format, &success)?;
        }
        (Format::Text, None) => out_line(&script).map_err(Failure::other)?,
        (Format::Text, Some(path)) => {
            // `.` looks a bare name up on PATH: name the file with a directory.
            let shown = match path.parent() {
                Some(dir) if dir.as_os_str().is_empty() => Path::new(".").join(path),
                _ => path.clone(),
            };
            let shown = shell_word(&shown.display().to_string());
            err_line(&format!(
                "{message}\nvariables in {shown}: load them with . {shown}  or  eval \"$(cat {shown})\""
            ))
            .map_err(Failure::other)?;
        }
    }
    let waited = stop.wait().await;
    drop(sandbox);
    if let Some(path) = &args.env_file {
        remove(path)?;
    }
    waited.map(|()| ExitCode::SUCCESS)
}

/// `export NAME='value'` lines under a comment: what `eval`, `.` and a pasting person all read
/// back exactly (a SiPay merchant key such as `$2y$10$…` would otherwise expand). Exported, so
/// the `refund` commands run next see them.
fn env_script(comment: &str, vars: &[(&str, String)]) -> String {
    let mut script = format!("# refund sandbox: {comment}");
    for (name, value) in vars {
        script.push_str(&format!("\nexport {name}={}", shell_quote(value)));
    }
    script
}

/// Writes `text` to `path` as a whole: to a private temporary file beside it, then renamed
/// over it, so a reader sees either no file or all of it.
fn write_private(path: &Path, text: &str) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::other(format!("--env-file {}: {e}", path.display()));
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(fail(e))
        }
    }
}

fn remove(path: &Path) -> Result<(), Failure> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Failure::other(format!(
            "--env-file {}: {e}",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// SIGINT (Ctrl-C) or SIGTERM, listened for from the moment it is made.
struct Stop {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Stop {
    fn listen() -> Result<Stop, Failure> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind, name: &str| {
                signal(kind).map_err(|e| Failure::other(format!("cannot listen for {name}: {e}")))
            };
            Ok(Stop {
                interrupt: listen(SignalKind::interrupt(), "SIGINT")?,
                terminate: listen(SignalKind::terminate(), "SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Stop {})
    }

    async fn wait(mut self) -> Result<(), Failure> {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        tokio::signal::ctrl_c()
            .await
            .map_err(|e| Failure::other(format!("signal: {e}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::{IpAddr, Ipv4Addr};

    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Args {
        Cli::try_parse_from(std::iter::once("sandbox").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    #[tokio::test]
    async fn the_sandbox_runs_the_thirty_second_rule_by_default_and_takes_lag_and_late_application()
    {
        let sandbox = refund_testkit::sandbox::run(IpAddr::V4(Ipv4Addr::LOCALHOST), None, None)
            .await
            .unwrap();
        let defaults = parse(&[]);
        apply_behaviour(&defaults, &sandbox);
        assert_eq!(
            sandbox.sipay.refund_spacing(),
            Some(Duration::from_secs(30))
        );
        assert_eq!(sandbox.sipay.lookup_lag(), Duration::ZERO);
        assert!(defaults.behaviour_note().contains("within 30 s"));

        let args = parse(&[
            "--refund-spacing",
            "0",
            "--lookup-lag-ms",
            "1500",
            "--late-application-ms",
            "2000",
        ]);
        apply_behaviour(&args, &sandbox);
        assert_eq!(sandbox.sipay.refund_spacing(), None);
        for lag in [sandbox.sipay.lookup_lag(), sandbox.iyzico.lookup_lag()] {
            assert_eq!(lag, Duration::from_millis(1500));
        }
        for delay in [
            sandbox.sipay.response_delay(),
            sandbox.iyzico.response_delay(),
        ] {
            assert_eq!(delay, Duration::from_secs(2));
        }
        let note = args.behaviour_note();
        assert!(note.contains("lookups lag 1500 ms"), "{note}");
        assert!(note.contains("after 2000 ms"), "{note}");
        assert!(!note.contains("within"), "{note}");
    }

    /// `GET path` on a simulator, the JSON answer.
    fn get(base_url: &str, path: &str) -> serde_json::Value {
        use std::io::{Read, Write as _};
        let host = base_url.strip_prefix("http://").unwrap();
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let body = answer.split_once("\r\n\r\n").unwrap().1;
        serde_json::from_str(body).unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn every_simulator_switch_is_a_sandbox_option() {
        let sandbox = refund_testkit::sandbox::run(IpAddr::V4(Ipv4Addr::LOCALHOST), None, None)
            .await
            .unwrap();
        let defaults = parse(&[]);
        apply_behaviour(&defaults, &sandbox);
        let sipay_url = sandbox.sipay.base_url();
        let iyzico_url = sandbox.iyzico.base_url();
        let sipay = tokio::task::spawn_blocking({
            let url = sipay_url.clone();
            move || get(&url, "/__sandbox/ledger")
        })
        .await
        .unwrap();
        assert_eq!(sipay["require_accept"], true);
        assert_eq!(sipay["pending_visibility"], "counted");
        assert!(!defaults.behaviour_note().contains("also"));

        let args = parse(&[
            "--refusals-use-reference",
            "--pending-refunds",
            "--pending-visibility",
            "hidden",
            "--refund-info-short",
            "--completed-status-word",
            "cancelled",
            "--allow-missing-accept",
            "--allow-missing-refund-transaction-id",
            "--refund-status-completed",
            "2",
            "--refund-status-failed",
            "-1",
            "--any-day-cancel",
        ]);
        apply_behaviour(&args, &sandbox);
        let (sipay, iyzico) = tokio::task::spawn_blocking(move || {
            (
                get(&sipay_url, "/__sandbox/ledger"),
                get(&iyzico_url, "/__sandbox/ledger"),
            )
        })
        .await
        .unwrap();
        assert_eq!(sipay["refusals_use_reference"], true, "{sipay}");
        assert_eq!(sipay["pending_refunds"], true);
        assert_eq!(sipay["pending_visibility"], "hidden");
        assert_eq!(sipay["refund_info_short"], true);
        assert_eq!(sipay["completed_status_word"], "cancelled");
        assert_eq!(sipay["require_accept"], false);
        assert_eq!(sipay["require_refund_transaction_id"], false);
        assert_eq!(iyzico["refund_status_completed"], 2, "{iyzico}");
        assert_eq!(iyzico["refund_status_failed"], -1);
        assert_eq!(iyzico["same_day_cancel"], false);
        let note = args.behaviour_note();
        assert!(note.contains("--any-day-cancel"), "{note}");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_demo_payments_are_the_ones_the_help_names() {
        use refund_testkit::sandbox::demo;
        let sandbox = refund_testkit::sandbox::run(IpAddr::V4(Ipv4Addr::LOCALHOST), None, None)
            .await
            .unwrap();
        sandbox.seed_demo().unwrap();
        for invoice in demo::SIPAY_INVOICES {
            let paid = sandbox.sipay.payment(invoice).unwrap();
            assert_eq!(paid.amount.to_string(), demo::SIPAY_AMOUNT);
        }
        let first = sandbox.iyzico.payment(demo::IYZICO_PAYMENT).unwrap();
        let lines: Vec<&str> = first
            .items
            .iter()
            .map(|i| i.payment_transaction_id.as_str())
            .collect();
        assert_eq!(lines, demo::IYZICO_LINES);
        assert!(
            sandbox
                .iyzico
                .payment(demo::IYZICO_CANCEL_PAYMENT)
                .is_some()
        );
        // What --help says is what was seeded.
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        for id in demo::SIPAY_INVOICES
            .iter()
            .chain(&demo::IYZICO_LINES)
            .chain(&[
                demo::IYZICO_PAYMENT,
                demo::IYZICO_CANCEL_PAYMENT,
                demo::IYZICO_CANCEL_LINE,
            ])
        {
            assert!(help.contains(id), "{id} not in --help");
        }
        // A second seeding cannot give the documented ids: it says so instead.
        assert!(sandbox.seed_demo().is_err());
    }

    #[test]
    fn out_of_range_behaviours_are_usage_errors() {
        for argv in [
            &["--refund-spacing", "-1"][..],
            &["--refund-spacing", "3601"],
            &["--lookup-lag-ms", "soon"],
            &["--late-application-ms", "600001"],
            &["--pending-visibility", "sometimes"],
            &["--completed-status-word", ""],
        ] {
            let parsed =
                Cli::try_parse_from(std::iter::once("sandbox").chain(argv.iter().copied()));
            assert!(parsed.is_err(), "{argv:?}");
        }
    }
}
