//! Starts the `roster` binary as a child process, serving on `127.0.0.1:0`,
//! and reads back the address it bound: `roster bench` runs its server this
//! way, and so do the tests that need the real binary (logs, signals,
//! process-wide metrics, clients that take an address).
//!
//! Binding port 0 in the child itself leaves no window in which another
//! process could take the port (as "find a free port, then start" does).
//! The child logs JSON; the line `roster is serving` that roster logs once
//! it listens carries the bound `address`, and is always enabled, whatever
//! log level the caller chose. Everything the child prints, on stdout and
//! stderr, is kept for [`Server::log`].
//!
//! This crate does not depend on roster (the `roster` binary depends on it).

use std::{
    ffi::OsStr,
    fmt,
    io::{BufRead, BufReader, Read},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    thread::JoinHandle,
    time::{Duration, Instant},
};

/// The message of roster's startup line, whose `address` field is the bound address.
pub const SERVING_MESSAGE: &str = "roster is serving";

/// Why the server did not start.
#[derive(Debug)]
pub struct SpawnError {
    pub message: String,
    /// What the child printed before it failed.
    pub log: String,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.message)?;
        if !self.log.is_empty() {
            write!(f, "\n--- roster's output ---\n{}", self.log)?;
        }
        Ok(())
    }
}

impl std::error::Error for SpawnError {}

/// How to start `roster serve`; [`Spawn::start`] starts it.
pub struct Spawn {
    command: Command,
    log_filter: String,
}

impl Spawn {
    /// `exe serve --listen 127.0.0.1:0 --log-format json`, with nothing from
    /// this process's `ROSTER_*`, `OTEL_*` and `DATABASE_URL` variables: a
    /// secret, a database or a trace collector configured in the caller's
    /// shell must not leak in. Further
    /// flags come from [`Spawn::arg`]; `--listen` and `--log-format` are
    /// the spawner's.
    pub fn new(exe: impl AsRef<OsStr>) -> Self {
        let mut command = Command::new(exe);
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if name.starts_with("ROSTER_") || name.starts_with("OTEL_") || name == "DATABASE_URL" {
                command.env_remove(&key);
            }
        }
        command.args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"]);
        Self {
            command,
            log_filter: "info".to_owned(),
        }
    }

    #[must_use]
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.command.arg(arg);
        self
    }

    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    #[must_use]
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    /// The child's `RUST_LOG` (`info` unless set); the startup line is
    /// enabled on top of it.
    #[must_use]
    pub fn log_filter(mut self, filter: impl Into<String>) -> Self {
        self.log_filter = filter.into();
        self
    }

    /// Starts the child and waits, up to `within`, until it serves (it
    /// migrates its database first).
    pub fn start(mut self, within: Duration) -> Result<Server, SpawnError> {
        let filter = format!("{},roster::server=info", self.log_filter);
        let mut child = self
            .command
            .env("RUST_LOG", filter)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| SpawnError {
                message: format!("cannot start roster: {err}"),
                log: String::new(),
            })?;
        let output = Arc::new(Mutex::new(String::new()));
        let (bound, address) = mpsc::channel();
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(copy_lines(stdout, &output, Some(bound)));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(copy_lines(stderr, &output, None));
        }
        let mut server = Server {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            output,
            readers,
        };
        match address.recv_timeout(within) {
            Ok(address) => {
                server.address = address;
                Ok(server)
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                server.kill();
                Err(server.failed(format!("roster did not serve within {within:?}")))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = server.child.wait();
                server.join_readers();
                Err(server.failed(format!("roster exited before serving: {status:?}")))
            }
        }
    }
}

/// Appends each line of `pipe` to `output`; on the startup line, sends
/// the bound address once.
fn copy_lines(
    pipe: impl Read + Send + 'static,
    output: &Arc<Mutex<String>>,
    mut bound: Option<mpsc::Sender<SocketAddr>>,
) -> JoinHandle<()> {
    let output = output.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if bound.is_some()
                && let Some(address) = serving_address(&line)
                && let Some(sender) = bound.take()
            {
                let _ = sender.send(address);
            }
            if let Ok(mut output) = output.lock() {
                output.push_str(&line);
                output.push('\n');
            }
        }
    })
}

/// The `address` of roster's JSON startup line, if `line` is that line.
fn serving_address(line: &str) -> Option<SocketAddr> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    if event.get("message")?.as_str()? != SERVING_MESSAGE {
        return None;
    }
    event.get("address")?.as_str()?.parse().ok()
}

/// A running `roster serve`; killed when dropped (a panicking test too).
pub struct Server {
    child: Child,
    address: SocketAddr,
    output: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Server {
    /// Where it serves gRPC.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Everything it printed so far, stdout and stderr, line by line.
    pub fn log(&self) -> String {
        self.output
            .lock()
            .map(|output| output.clone())
            .unwrap_or_default()
    }

    /// Waits up to `within` for a line for which `wanted` holds; returns it.
    pub fn wait_for_line(&self, within: Duration, wanted: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.log().lines().find(|line| wanted(line)) {
                return Some(line.to_owned());
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM (a graceful stop) and waits up to `within` for the
    /// exit; `None` if it did not exit in time (it is then killed).
    pub fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        let deadline = Instant::now() + within;
        while sent && Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.join_readers();
                    return Some(status);
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
        self.kill();
        None
    }

    /// Stops it at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join_readers();
    }

    /// Resident memory in MiB, from `/proc` (Linux; `None` elsewhere).
    pub fn rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(
            Path::new("/proc")
                .join(self.id().to_string())
                .join("status"),
        )
        .ok()?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        Some(kib / 1024.0)
    }

    /// Once the child has exited, its pipes close: collect the last lines.
    fn join_readers(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    fn failed(&self, message: String) -> SpawnError {
        SpawnError {
            message,
            log: self.log(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_startup_line_gives_the_address() {
        let line = r#"{"timestamp":"2026-01-01T00:00:00Z","level":"INFO","message":"roster is serving","address":"127.0.0.1:40123"}"#;
        assert_eq!(serving_address(line), "127.0.0.1:40123".parse().ok());
        assert_eq!(
            serving_address(r#"{"message":"rpc finished","address":"127.0.0.1:1"}"#),
            None
        );
        assert_eq!(serving_address("roster is serving"), None);
    }
}
