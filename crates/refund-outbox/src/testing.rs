//! A throwaway PostgreSQL server for tests (feature `testing`): `initdb` into a directory of
//! your choosing, a free port on 127.0.0.1, and a clean stop when the test process ends.
//!
//! It uses the binaries of an installed PostgreSQL: `$REFUND_OUTBOX_PG_BIN` when set, else
//! the newest `/usr/lib/postgresql/<version>/bin` (Debian's `postgresql` package), else
//! `initdb` and `pg_ctl` on `PATH`. PostgreSQL refuses to run as root: as root, the server is
//! initialised and run as the `postgres` user (which Debian's package creates) through
//! `runuser`, and the directory is handed to that user (in the system's temporary directory
//! when that user cannot enter the one asked for).
//!
//! The server trusts every local connection (user `outbox`, no password), listens on
//! loopback only, has no Unix socket, and runs with `fsync` off: for tests, never for data.
//! [`TestPostgres::start_with`] turns TLS on with a certificate the test makes, or asks chosen
//! users for a password ([`TestOptions`]).
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use refund_outbox::testing::TestPostgres;
//!
//! let server = TestPostgres::start(std::path::Path::new("target/tmp"))?;
//! let client = server.create_database("my_test").await?;
//! client.execute("SELECT 1", &[]).await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tokio_postgres::{Client, NoTls};

/// Why a test server could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestPostgresError {
    /// No PostgreSQL binaries were found: install them (`apt-get install postgresql` on
    /// Debian) or point `REFUND_OUTBOX_PG_BIN` at the directory holding `initdb`.
    #[error(
        "no PostgreSQL binaries (initdb, pg_ctl) found in $REFUND_OUTBOX_PG_BIN, /usr/lib/postgresql/*/bin or PATH: install them (Debian: apt-get install postgresql)"
    )]
    NoBinaries,
    /// A step failed; the message says which, with its output.
    #[error("{0}")]
    Failed(String),
    /// Connecting to the server, or a statement on it, failed.
    #[error("test server: {0}")]
    Database(#[from] tokio_postgres::Error),
}

/// A running throwaway server. Dropping it stops the server and removes its directory; a
/// server kept for the whole test process (in a `static`) is stopped by a watchdog when the
/// process ends, however it ends.
pub struct TestPostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl fmt::Debug for TestPostgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestPostgres")
            .field("dir", &self.dir)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// The user the test server trusts.
pub const USER: &str = "outbox";

/// What a test server does beyond the defaults ([`TestPostgres::start_with`]).
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct TestOptions {
    tls: Option<(String, String)>,
    password_users: Vec<String>,
}

impl fmt::Debug for TestOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestOptions")
            .field("tls", &self.tls.is_some())
            .field("password_users", &self.password_users)
            .finish()
    }
}

impl TestOptions {
    /// The defaults: no TLS, every user trusted.
    pub fn new() -> TestOptions {
        TestOptions::default()
    }

    /// Turns TLS on (`ssl = on`) with this certificate chain and private key (PEM), for
    /// TLS tests with a certificate the test makes. Plain connections are still accepted.
    pub fn with_tls(mut self, cert_pem: &str, key_pem: &str) -> TestOptions {
        self.tls = Some((cert_pem.to_owned(), key_pem.to_owned()));
        self
    }

    /// Asks `user` for a password (SCRAM) instead of trusting it; create the role with its
    /// password yourself (`CREATE ROLE … LOGIN PASSWORD …` as [`USER`]).
    pub fn with_password_auth_for(mut self, user: &str) -> TestOptions {
        self.password_users.push(user.to_owned());
        self
    }
}

impl TestPostgres {
    /// Initialises a cluster in a new directory under `base` (created when missing) and
    /// starts it on a free loopback port. Takes about a second.
    pub fn start(base: &Path) -> Result<TestPostgres, TestPostgresError> {
        TestPostgres::start_with(base, &TestOptions::new())
    }

    /// [`start`](Self::start), with TLS or password authentication as `options` say.
    pub fn start_with(
        base: &Path,
        options: &TestOptions,
    ) -> Result<TestPostgres, TestPostgresError> {
        let bin = find_binaries().ok_or(TestPostgresError::NoBinaries)?;
        let as_postgres = is_root();
        std::fs::create_dir_all(base)
            .map_err(|e| TestPostgresError::Failed(format!("{}: {e}", base.display())))?;
        let base = base
            .canonicalize()
            .map_err(|e| TestPostgresError::Failed(format!("{}: {e}", base.display())))?;
        let name = format!("refund-outbox-pg-{}-{}", std::process::id(), unique());
        let mut dir = base.join(&name);
        make_dir(&dir, as_postgres)?;
        if as_postgres && !postgres_can_write(&dir) {
            // A parent directory the `postgres` user cannot enter (a 0700 checkout): the
            // system's temporary directory instead.
            let _ = std::fs::remove_dir_all(&dir);
            dir = std::env::temp_dir().join(&name);
            make_dir(&dir, as_postgres)?;
        }
        let mut server = TestPostgres {
            bin,
            dir,
            port: 0,
            as_postgres,
        };
        let data = server.data();
        run(server.pg("initdb").arg("-D").arg(&data).args([
            "-U",
            USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]))?;
        let conf = "\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n\
                    fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
                    max_connections = 200\n";
        append(&data.join("postgresql.conf"), conf)?;
        if let Some((cert, key)) = &options.tls {
            server.write_private(&data.join("server.crt"), cert)?;
            server.write_private(&data.join("server.key"), key)?;
            append(&data.join("postgresql.conf"), "ssl = on\n")?;
        }
        if !options.password_users.is_empty() {
            // First match wins: these users' lines before initdb's `trust` for everyone.
            let hba = data.join("pg_hba.conf");
            let was = std::fs::read_to_string(&hba)
                .map_err(|e| TestPostgresError::Failed(format!("{}: {e}", hba.display())))?;
            let mut lines = String::new();
            for user in &options.password_users {
                if !user.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(TestPostgresError::Failed(format!(
                        "user name {user:?}: letters, digits and _ only"
                    )));
                }
                lines.push_str(&format!("host all {user} 127.0.0.1/32 scram-sha-256\n"));
            }
            std::fs::write(&hba, lines + &was)
                .map_err(|e| TestPostgresError::Failed(format!("{}: {e}", hba.display())))?;
        }
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port()?;
            let log = server.dir.join("server.log");
            let started = run(server
                .pg("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-o"])
                .arg(format!("-p {port}"))
                .arg("start"));
            match started {
                Ok(()) => {
                    server.port = port;
                    server.watch()?;
                    return Ok(server);
                }
                // Most likely another process took the port meanwhile: try another.
                Err(e) => last = e.to_string(),
            }
        }
        Err(TestPostgresError::Failed(last))
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `database` (no password: the server trusts loopback).
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{USER}@127.0.0.1:{}/{database}?connect_timeout=10",
            self.port
        )
    }

    /// Connects to `database`, spawning the connection on the current tokio runtime.
    pub async fn connect(&self, database: &str) -> Result<Client, TestPostgresError> {
        let (client, connection) = tokio_postgres::connect(&self.url(database), NoTls).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// Creates database `name` (dropping one of that name first) and connects to it.
    pub async fn create_database(&self, name: &str) -> Result<Client, TestPostgresError> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(TestPostgresError::Failed(format!(
                "database name {name:?}: letters, digits and _ only"
            )));
        }
        let admin = self.connect("postgres").await?;
        // Two statements: neither may run inside a transaction block.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        self.connect(name).await
    }

    /// Writes a file only the server's user may read (PostgreSQL refuses a key others can).
    fn write_private(&self, path: &Path, text: &str) -> Result<(), TestPostgresError> {
        std::fs::write(path, text)
            .map_err(|e| TestPostgresError::Failed(format!("{}: {e}", path.display())))?;
        run(Command::new("chmod").arg("600").arg(path))?;
        if self.as_postgres {
            run(Command::new("chown").arg("postgres").arg(path))?;
        }
        Ok(())
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A command running `tool` from the server's binaries, as `postgres` when we are root.
    fn pg(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// Starts the watchdog: a detached shell that waits for this process to end, then stops
    /// the server and removes its directory.
    fn watch(&self) -> Result<(), TestPostgresError> {
        let as_postgres = if self.as_postgres {
            "runuser -u postgres -- "
        } else {
            ""
        };
        let script = format!(
            "while [ -d /proc/{pid} ]; do sleep 0.2; done; \
             {as_postgres}'{pg_ctl}' -D '{data}' -m immediate -w stop >/dev/null 2>&1; \
             rm -rf '{dir}'",
            pid = std::process::id(),
            pg_ctl = self.bin.join("pg_ctl").display(),
            data = self.data().display(),
            dir = self.dir.display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(drop)
            .map_err(|e| TestPostgresError::Failed(format!("starting the watchdog: {e}")))
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let _ = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn find_binaries() -> Option<PathBuf> {
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("REFUND_OUTBOX_PG_BIN") {
        let dir = PathBuf::from(dir);
        return has(&dir).then_some(dir);
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has(&bin).then_some((version, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| std::env::split_paths(&path).find(|dir| has(dir)))
}

/// Creates `dir` afresh, owned by `postgres` when we run as root.
fn make_dir(dir: &Path, as_postgres: bool) -> Result<(), TestPostgresError> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)
        .map_err(|e| TestPostgresError::Failed(format!("{}: {e}", dir.display())))?;
    if as_postgres {
        run(Command::new("chown").arg("postgres").arg(dir))?;
    }
    Ok(())
}

fn postgres_can_write(dir: &Path) -> bool {
    Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-w"])
        .arg(dir)
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn free_port() -> Result<u16, TestPostgresError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| TestPostgresError::Failed(format!("finding a free port: {e}")))
}

fn append(path: &Path, text: &str) -> Result<(), TestPostgresError> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| TestPostgresError::Failed(format!("{}: {e}", path.display())))
}

fn run(cmd: &mut Command) -> Result<(), TestPostgresError> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| TestPostgresError::Failed(format!("{shown}: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    Err(TestPostgresError::Failed(format!(
        "{shown} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )))
}
