//! `refund sandbox`: both simulators on loopback, for people and non-Rust clients.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args as ClapArgs;

use crate::exit::Failure;
use crate::output::{self, Format, Success, err_line, out_line, shell_quote, shell_word};

#[derive(Debug, ClapArgs)]
pub(crate) struct Args {
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
    let message = format!(
        "SiPay simulator on {}, iyzico simulator on {}; SIGINT (Ctrl-C) or SIGTERM stops them",
        sipay.base_url, iyzico.base_url
    );
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
