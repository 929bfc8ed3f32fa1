//! Real headless browsers from the system's packages: Chromium and Firefox ESR.
//!
//! Each run gets a fresh profile directory. Host names under `.test` resolve to 127.0.0.1
//! (Chromium: `--host-resolver-rules`; Firefox: `network.dns.forceResolve`), so pages can be
//! served from several origins on loopback. A missing browser is an error, never a skip.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A browser the tests drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headless {
    /// Debian's `chromium`.
    Chromium,
    /// Debian's `firefox-esr`.
    Firefox,
}

impl Headless {
    /// Both browsers.
    pub const ALL: [Headless; 2] = [Headless::Chromium, Headless::Firefox];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Headless::Chromium => "chromium",
            Headless::Firefox => "firefox-esr",
        }
    }

    /// The executable, found on `PATH`.
    ///
    /// # Errors
    /// When the browser is not installed, with the command that installs it.
    pub fn executable(self) -> Result<PathBuf, String> {
        let name = self.name();
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                format!(
                    "{name} is not installed; the browser tests need it: \
                     apt-get update && apt-get install -y chromium firefox-esr"
                )
            })
    }

    /// The browser's version line, e.g. `Chromium 156.0.8078.73`.
    pub fn version(self) -> String {
        self.executable()
            .ok()
            .and_then(|exe| Command::new(exe).arg("--version").output().ok())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    }

    /// Starts the browser headless on `url`, logging console messages to a file.
    ///
    /// # Errors
    /// When the browser is missing or cannot be started.
    pub fn launch(self, url: &str) -> Result<Running, String> {
        self.launch_trusting(url, None)
    }

    /// Starts the browser headless on `url`, trusting the certificates of a local CA (PEM) if
    /// given: Chromium ignores certificate errors (`--ignore-certificate-errors`, a test-only
    /// switch); Firefox gets the CA in its profile's certificate database, through NSS's
    /// `certutil` (Debian's `libnss3-tools`).
    ///
    /// # Errors
    /// When the browser (or, with a CA, `certutil` for Firefox) is missing or cannot be started.
    pub fn launch_trusting(self, url: &str, ca_pem: Option<&str>) -> Result<Running, String> {
        let exe = self.executable()?;
        let dir = scratch_dir(self.name())?;
        let profile = dir.join("profile");
        fs::create_dir_all(&profile).map_err(|e| format!("profile dir: {e}"))?;
        let log = dir.join("stderr.log");
        let stderr = fs::File::create(&log).map_err(|e| format!("log file: {e}"))?;
        // Firefox prints console messages on stdout: both streams go to the log.
        let stdout = stderr.try_clone().map_err(|e| format!("log file: {e}"))?;
        let mut cmd = Command::new(exe);
        match self {
            Headless::Chromium => {
                cmd.args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-extensions",
                    "--enable-logging=stderr",
                    "--v=0",
                    "--host-resolver-rules=MAP *.test 127.0.0.1",
                ])
                .arg(format!("--user-data-dir={}", profile.display()));
                if ca_pem.is_some() {
                    cmd.arg("--ignore-certificate-errors");
                }
            }
            Headless::Firefox => {
                fs::write(profile.join("user.js"), FIREFOX_PREFS)
                    .map_err(|e| format!("firefox prefs: {e}"))?;
                if let Some(pem) = ca_pem {
                    trust_in_profile(&profile, &dir, pem)?;
                }
                cmd.args(["--headless", "--no-remote", "--profile"])
                    .arg(&profile);
                cmd.env("MOZ_CRASHREPORTER_DISABLE", "1");
            }
        }
        cmd.arg(url)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.name()))?;
        Ok(Running {
            child: Some(child),
            dir,
            log,
        })
    }
}

/// Adds a CA to a Firefox profile's NSS certificate database, trusted for TLS servers.
fn trust_in_profile(profile: &Path, scratch: &Path, pem: &str) -> Result<(), String> {
    let ca = scratch.join("ca.pem");
    fs::write(&ca, pem).map_err(|e| format!("CA file: {e}"))?;
    let db = format!("sql:{}", profile.display());
    let certutil = |args: &[&str]| -> Result<(), String> {
        let out = Command::new("certutil").args(args).output().map_err(|e| {
            format!(
                "certutil ({e}); the https browser tests need it: \
                 apt-get update && apt-get install -y libnss3-tools"
            )
        })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "certutil {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    certutil(&["-N", "-d", &db, "--empty-password"])?;
    let ca = ca.display().to_string();
    certutil(&[
        "-A",
        "-d",
        &db,
        "-n",
        "corsair test CA",
        "-t",
        "C,,",
        "-i",
        &ca,
    ])
}

/// Firefox preferences: loopback only, nothing phoning home.
const FIREFOX_PREFS: &str = r#"
user_pref("network.dns.forceResolve", "127.0.0.1");
user_pref("network.proxy.type", 0);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("app.update.enabled", false);
user_pref("app.normandy.enabled", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("datareporting.healthreport.uploadEnabled", false);
user_pref("toolkit.telemetry.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("extensions.update.enabled", false);
user_pref("devtools.console.stdout.content", true);
"#;

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn scratch_dir(name: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!(
        "corsair-{name}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("scratch dir {}: {e}", dir.display()))?;
    Ok(dir)
}

/// A running browser; stopped (with all its processes) when dropped.
#[derive(Debug)]
pub struct Running {
    child: Option<Child>,
    dir: PathBuf,
    log: PathBuf,
}

impl Running {
    /// Stops the browser and returns what it wrote to stderr (console messages included).
    pub fn stop(mut self) -> String {
        self.kill();
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The scratch directory of this run.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
            for _ in 0..50 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(40));
            }
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
