//! Secrets come from the environment or from files, never from the command line: a flag's value
//! lands in shell history and in every `ps` listing.
//!
//! Each secret has a `--…-file PATH` option (the file's content, surrounding whitespace
//! trimmed) that takes precedence over its environment variable. The old flags that took a
//! secret's value (`--app-secret`, `--merchant-key`, `--secret-key`) are gone; a command line
//! that still uses one is refused with a message that says how to pass the secret instead
//! ([`refused_flag`]), and the value given is never printed.

use std::path::{Path, PathBuf};

use clap::Args;
use secrecy::SecretString;

use crate::exit::Failure;

/// The removed flags that took a secret's value: the flag, its variable, its file option.
const REMOVED: [(&str, &str, &str); 3] = [
    ("--app-secret", "SIPAY_APP_SECRET", "--app-secret-file"),
    (
        "--merchant-key",
        "SIPAY_MERCHANT_KEY",
        "--merchant-key-file",
    ),
    ("--secret-key", "IYZICO_SECRET_KEY", "--secret-key-file"),
];

/// When a command line clap refused uses a removed secret flag, the failure that says how to
/// pass the secret instead (without the value).
pub(crate) fn refused_flag(args: &[String]) -> Option<Failure> {
    let (flag, var, file_flag) = args.iter().take_while(|a| *a != "--").find_map(|arg| {
        REMOVED.into_iter().find(|(flag, ..)| {
            arg == flag
                || arg
                    .strip_prefix(flag)
                    .is_some_and(|rest| rest.starts_with('='))
        })
    })?;
    Some(Failure::usage(format!(
        "{flag} is refused: a secret on the command line lands in shell history and in `ps`. \
         Set {var} in the environment, or put the secret in a file and pass {file_flag} PATH"
    )))
}

/// One secret: where it may come from.
struct Source<'a> {
    /// The environment variable.
    var: &'static str,
    /// The file option, without dashes.
    file_flag: &'static str,
    file: Option<&'a Path>,
}

impl Source<'_> {
    /// The secret from its file, else its environment variable; `None` when neither is set.
    fn read(&self) -> Result<Option<SecretString>, Failure> {
        if let Some(path) = self.file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::configuration(format!("--{} {}: {e}", self.file_flag, path.display()))
            })?;
            let value = text.trim();
            if value.is_empty() {
                return Err(Failure::configuration(format!(
                    "--{} {}: the file is empty",
                    self.file_flag,
                    path.display()
                )));
            }
            return Ok(Some(SecretString::from(value.to_owned())));
        }
        Ok(std::env::var(self.var)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .map(SecretString::from))
    }

    /// [`read`](Self::read), failing when the secret is missing.
    fn require(&self) -> Result<SecretString, Failure> {
        self.read()?.ok_or_else(|| {
            Failure::configuration(format!(
                "{} is not set: set it in the environment, or pass --{} PATH",
                self.var, self.file_flag
            ))
        })
    }
}

/// SiPay's app secret (`SIPAY_APP_SECRET`).
#[derive(Debug, Clone, Args)]
pub(crate) struct AppSecret {
    /// Read SiPay's app secret from this file instead of SIPAY_APP_SECRET.
    #[arg(long, value_name = "PATH")]
    app_secret_file: Option<PathBuf>,
}

impl AppSecret {
    fn source(&self) -> Source<'_> {
        Source {
            var: "SIPAY_APP_SECRET",
            file_flag: "app-secret-file",
            file: self.app_secret_file.as_deref(),
        }
    }

    pub(crate) fn require(&self) -> Result<SecretString, Failure> {
        self.source().require()
    }
}

/// SiPay's merchant key (`SIPAY_MERCHANT_KEY`).
#[derive(Debug, Clone, Args)]
pub(crate) struct MerchantKey {
    /// Read SiPay's merchant key from this file instead of SIPAY_MERCHANT_KEY.
    #[arg(long, value_name = "PATH")]
    merchant_key_file: Option<PathBuf>,
}

impl MerchantKey {
    fn source(&self) -> Source<'_> {
        Source {
            var: "SIPAY_MERCHANT_KEY",
            file_flag: "merchant-key-file",
            file: self.merchant_key_file.as_deref(),
        }
    }

    pub(crate) fn require(&self) -> Result<SecretString, Failure> {
        self.source().require()
    }
}

/// Both SiPay secrets, for the commands that call SiPay.
#[derive(Debug, Clone, Args)]
pub(crate) struct SipaySecrets {
    #[command(flatten)]
    pub(crate) app_secret: AppSecret,
    #[command(flatten)]
    pub(crate) merchant_key: MerchantKey,
}

impl SipaySecrets {
    /// The file options given, as they go on a command line that must use the same secrets.
    pub(crate) fn file_args(&self) -> Vec<String> {
        file_args([
            ("--app-secret-file", &self.app_secret.app_secret_file),
            ("--merchant-key-file", &self.merchant_key.merchant_key_file),
        ])
    }
}

/// iyzico's secret key (`IYZICO_SECRET_KEY`).
#[derive(Debug, Clone, Args)]
pub(crate) struct SecretKey {
    /// Read iyzico's secret key from this file instead of IYZICO_SECRET_KEY.
    #[arg(long, value_name = "PATH")]
    secret_key_file: Option<PathBuf>,
}

impl SecretKey {
    fn source(&self) -> Source<'_> {
        Source {
            var: "IYZICO_SECRET_KEY",
            file_flag: "secret-key-file",
            file: self.secret_key_file.as_deref(),
        }
    }

    pub(crate) fn require(&self) -> Result<SecretString, Failure> {
        self.source().require()
    }

    /// The file option given, as it goes on a command line that must use the same secret.
    pub(crate) fn file_args(&self) -> Vec<String> {
        file_args([("--secret-key-file", &self.secret_key_file)])
    }
}

fn file_args<'a>(options: impl IntoIterator<Item = (&'a str, &'a Option<PathBuf>)>) -> Vec<String> {
    options
        .into_iter()
        .filter_map(|(flag, path)| Some([flag.to_owned(), path.as_ref()?.display().to_string()]))
        .flatten()
        .collect()
}
