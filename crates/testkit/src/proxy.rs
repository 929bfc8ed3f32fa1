//! A `corsair proxy` process for tests: started on an ephemeral loopback port, its output
//! collected line by line, killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running `corsair proxy`; killed when dropped.
pub struct ProxyProcess {
    /// The process.
    pub child: Child,
    /// The address it listens on, `127.0.0.1:PORT`.
    pub addr: String,
    /// Its standard output so far, one entry a line.
    pub stdout: Arc<Mutex<Vec<String>>>,
    /// Its standard error so far, one entry a line.
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl ProxyProcess {
    /// Runs `corsair proxy --listen 127.0.0.1:0 ARGS…` with the binary at `corsair` (a test's
    /// [`corsair_bin`](crate::corsair_bin)) and waits up to 10 s for it to say where it listens.
    ///
    /// # Errors
    /// When it cannot be started or does not start listening, with what it printed.
    pub fn start(corsair: impl AsRef<Path>, args: &[&str]) -> Result<ProxyProcess, String> {
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        Self::start_listening_as_given(corsair, &all)
    }

    /// Like [`start`](Self::start), with `--listen` among `args` (a test of how it is read).
    ///
    /// # Errors
    /// When it cannot be started or does not start listening, with what it printed.
    pub fn start_listening_as_given(
        corsair: impl AsRef<Path>,
        args: &[&str],
    ) -> Result<ProxyProcess, String> {
        let mut child = Command::new(corsair.as_ref())
            .arg("proxy")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", corsair.as_ref().display()))?;
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        if let Some(out) = child.stdout.take() {
            let lines = stdout.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(rest) = line.strip_prefix("corsair proxy listening on http://") {
                        let _ = tx.send(rest.split(' ').next().unwrap_or_default().to_owned());
                    }
                    lines
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(line);
                }
            });
        }
        if let Some(err) = child.stderr.take() {
            let lines = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    lines
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(line);
                }
            });
        }
        let mut proxy = ProxyProcess {
            child,
            addr: String::new(),
            stdout,
            stderr,
        };
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(addr) => {
                proxy.addr = addr;
                Ok(proxy)
            }
            Err(_) => Err(format!(
                "corsair proxy did not start: {:?}",
                proxy.stderr_lines()
            )),
        }
    }

    /// `http://ADDR` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// Its standard error so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The `--metrics` listener's `ADDR`, as the proxy printed it (`corsair proxy metrics on
    /// http://ADDR/metrics`, before its listening line), if it serves metrics.
    pub fn metrics_addr(&self) -> Option<String> {
        self.stdout
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find_map(|l| {
                l.strip_prefix("corsair proxy metrics on http://")?
                    .strip_suffix("/metrics")
                    .map(str::to_owned)
            })
    }

    /// The value of the unlabelled metric `name` on the `--metrics` listener now.
    ///
    /// # Errors
    /// No metrics listener, a failed scrape, or no such metric (with the text scraped).
    pub async fn metric(&self, name: &str) -> Result<u64, String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self
            .metrics_addr()
            .ok_or("the proxy printed no metrics address (no --metrics?)")?;
        let mut tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        tcp.write_all(b"GET /metrics HTTP/1.1\r\nhost: metrics\r\nconnection: close\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut text = String::new();
        tcp.read_to_string(&mut text)
            .await
            .map_err(|e| e.to_string())?;
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no {name} in:\n{text}"))
    }

    /// Waits up to 5 s until standard error has a line containing `needle`.
    pub async fn stderr_contains(&self, needle: &str) -> bool {
        for _ in 0..100 {
            if self.stderr_lines().iter().any(|l| l.contains(needle)) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }
}

/// Runs `cmd` with its output collected and waits at most `limit` for it to exit: a command
/// expected to stop (a start-up check refusing) that stopped refusing would run until killed,
/// and the test must then fail, not hang.
///
/// # Errors
/// When it cannot be started, or is still running after `limit` (then killed; the error has
/// what it printed).
pub fn output_within(cmd: &mut Command, limit: Duration) -> Result<std::process::Output, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let deadline = std::time::Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() > deadline => {
                let _ = child.kill();
                let out = child.wait_with_output().map_err(|e| e.to_string())?;
                return Err(format!(
                    "{cmd:?} was still running after {limit:?} (killed); stdout {:?}, stderr {:?}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e.to_string()),
        }
    }
    child.wait_with_output().map_err(|e| e.to_string())
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
