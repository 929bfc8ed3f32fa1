//! Real headless browsers from the system's packages: Chromium, Firefox ESR and WebKitGTK.
//!
//! Each run gets a fresh profile directory. Host names under `.test` resolve to 127.0.0.1
//! (Chromium: `--host-resolver-rules`; Firefox: `network.dns.forceResolve`; WebKitGTK, which
//! has no such switch: a forward proxy of this crate that connects every host to 127.0.0.1, see
//! [`crate::loopback_proxy`]), so pages can be served from several origins on loopback. A
//! missing browser is an error, never a skip.
//!
//! WebKitGTK is Debian's `MiniBrowser` (package `libwebkit2gtk-4.1-0`, brought by
//! `webkit2gtk-driver`), run on an `Xvfb` display of its own (package `xvfb`) with
//! `--enable-write-console-messages-to-stdout=true`: its console lines, CORS errors included,
//! arrive on stderr as `CONSOLE SECURITY ERROR …` and `CONSOLE JS ERROR …`. Each launch gets a
//! fresh `HOME`, `XDG_DATA_HOME`, `XDG_CACHE_HOME` and `XDG_CONFIG_HOME`.
//!
//! Firefox prints no CORS message on its standard streams: it is started with Marionette, which
//! registers a listener on its console service before the page loads (see
//! [`crate::marionette`]); [`Running::stop`] adds what the listener kept to the log, one line
//! per message, each after [`FIREFOX_CORS_TAG`] and the message's category in brackets.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::marionette::Marionette;

/// The tag before each of Firefox's CORS console messages in [`Running::stop`]'s log:
/// `FIREFOX CORS CONSOLE [CATEGORY] MESSAGE`.
pub const FIREFOX_CORS_TAG: &str = "FIREFOX CORS CONSOLE ";

/// A browser the tests drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headless {
    /// Debian's `chromium`.
    Chromium,
    /// Debian's `firefox-esr`.
    Firefox,
    /// WebKitGTK's `MiniBrowser` (Debian's `webkit2gtk-driver` brings it), Safari's engine,
    /// under `Xvfb`.
    WebKit,
}

/// Where Debian puts WebKitGTK's `MiniBrowser`: `/usr/lib/<multiarch>/<api>/MiniBrowser`.
fn minibrowser() -> Result<PathBuf, String> {
    let missing = || {
        "WebKitGTK's MiniBrowser is not installed; the browser tests need it: \
         apt-get update && apt-get install -y webkit2gtk-driver xvfb xauth"
            .to_owned()
    };
    let lib = fs::read_dir("/usr/lib").map_err(|_| missing())?;
    let mut found: Vec<PathBuf> = lib
        .flatten()
        .flat_map(|arch| {
            ["webkit2gtk-4.1", "webkit2gtk-4.0", "webkitgtk-6.0"]
                .map(|api| arch.path().join(api).join("MiniBrowser"))
        })
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.into_iter().next().ok_or_else(missing)
}

impl Headless {
    /// The three browsers.
    pub const ALL: [Headless; 3] = [Headless::Chromium, Headless::Firefox, Headless::WebKit];

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            Headless::Chromium => "chromium",
            Headless::Firefox => "firefox-esr",
            Headless::WebKit => "webkitgtk",
        }
    }

    /// The executable, found on `PATH` (WebKitGTK's `MiniBrowser` where Debian puts it).
    ///
    /// # Errors
    /// When the browser is not installed, with the command that installs it.
    pub fn executable(self) -> Result<PathBuf, String> {
        if self == Headless::WebKit {
            return minibrowser();
        }
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

    /// The browser's version line, e.g. `Chromium 156.0.8078.73` or `WebKitGTK 2.50.6`.
    pub fn version(self) -> String {
        let output = |cmd: &mut Command| {
            cmd.output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default()
        };
        let Ok(exe) = self.executable() else {
            return String::new();
        };
        if self != Headless::WebKit {
            return output(Command::new(exe).arg("--version"));
        }
        // MiniBrowser's --version needs a display: ask the package that holds it.
        let owner = output(Command::new("dpkg-query").arg("-S").arg(&exe));
        let package = owner.split(':').next().unwrap_or_default();
        let version = output(Command::new("dpkg-query").args(["-W", "-f", "${Version}", package]));
        format!(
            "WebKitGTK {}",
            version.split(['-', '+']).next().unwrap_or_default()
        )
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
        // WebKitGTK's display and proxy, stopped with the browser.
        let mut extra: Vec<Child> = Vec::new();
        let mut proxy_guard = None;
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
                // Marionette with system access: the console listener runs in the chrome
                // context. The page is loaded once the listener is in place.
                cmd.args([
                    "--headless",
                    "--marionette",
                    "-remote-allow-system-access",
                    "--no-remote",
                    "--profile",
                ])
                .arg(&profile);
                cmd.env("MOZ_CRASHREPORTER_DISABLE", "1");
            }
            Headless::WebKit => {
                // A display of its own, then the proxy that resolves every host to loopback.
                let (xvfb, display) = start_xvfb()?;
                extra.push(xvfb);
                let proxy = crate::loopback_proxy::LoopbackProxy::start()?;
                cmd.args([
                    "--enable-write-console-messages-to-stdout=true",
                    "--enable-developer-extras=false",
                ])
                .arg(format!("--proxy=http://127.0.0.1:{}", proxy.port()));
                proxy_guard = Some(proxy);
                if ca_pem.is_some() {
                    // Test-only, as Chromium's --ignore-certificate-errors.
                    cmd.arg("--ignore-tls-errors");
                }
                for (var, sub) in [
                    ("HOME", "home"),
                    ("XDG_DATA_HOME", "data"),
                    ("XDG_CACHE_HOME", "cache"),
                    ("XDG_CONFIG_HOME", "config"),
                    ("XDG_RUNTIME_DIR", "runtime"),
                ] {
                    let d = profile.join(sub);
                    fs::create_dir_all(&d).map_err(|e| format!("webkit dir: {e}"))?;
                    cmd.env(var, d);
                }
                cmd.env("DISPLAY", format!(":{display}"))
                    .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
                    .env("LIBGL_ALWAYS_SOFTWARE", "1")
                    .env_remove("WAYLAND_DISPLAY")
                    .env("GDK_BACKEND", "x11")
                    .env("NO_AT_BRIDGE", "1")
                    .env("GSETTINGS_BACKEND", "memory");
            }
        }
        let first = if self == Headless::Firefox {
            "about:blank"
        } else {
            url
        };
        cmd.arg(first)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                for mut x in extra {
                    stop_group(&mut x);
                }
                return Err(format!("starting {}: {e}", self.name()));
            }
        };
        let mut running = Running {
            child: Some(child),
            extra,
            _proxy: proxy_guard,
            dir,
            log,
            marionette: None,
        };
        if self == Headless::Firefox {
            let mut m = Marionette::connect(&profile, Duration::from_secs(60))?;
            m.capture_cors_console(url)?;
            running.marionette = Some(m);
        }
        Ok(running)
    }
}

/// Starts `Xvfb` on a display number it picks itself (`-displayfd`), loopback only; returns the
/// process (in a process group of its own) and the display number.
fn start_xvfb() -> Result<(Child, u32), String> {
    use std::io::{BufRead, BufReader};
    let mut xvfb = Command::new("Xvfb")
        .args([
            "-displayfd",
            "1",
            "-nolisten",
            "tcp",
            "-screen",
            "0",
            "1280x1024x24",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| {
            format!(
                "Xvfb ({e}); the WebKitGTK tests need it: \
                 apt-get update && apt-get install -y webkit2gtk-driver xvfb xauth"
            )
        })?;
    let mut line = String::new();
    let read = xvfb
        .stdout
        .take()
        .map(|out| BufReader::new(out).read_line(&mut line));
    match (read, line.trim().parse::<u32>()) {
        (Some(Ok(_)), Ok(display)) => Ok((xvfb, display)),
        _ => {
            stop_group(&mut xvfb);
            Err(format!("Xvfb did not report a display: {line:?}"))
        }
    }
}

/// Stops a process and its process group: TERM, up to 2 seconds, then KILL.
fn stop_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let kill = |signal: &str| {
        let _ = Command::new("kill")
            .args([signal, "--", &group])
            .stderr(Stdio::null())
            .status();
    };
    kill("-TERM");
    for _ in 0..50 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(40));
    }
    kill("-KILL");
    let _ = child.kill();
    let _ = child.wait();
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

/// Firefox preferences: loopback only, nothing phoning home; Marionette on a port it picks.
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
user_pref("marionette.port", 0);
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
    /// Processes the browser needs (WebKitGTK's `Xvfb`), stopped after it.
    extra: Vec<Child>,
    _proxy: Option<crate::loopback_proxy::LoopbackProxy>,
    dir: PathBuf,
    log: PathBuf,
    /// Firefox's Marionette connection, whose listener keeps the CORS console messages.
    marionette: Option<Marionette>,
}

impl Running {
    /// Stops the browser and returns what it wrote to stderr (console messages included; for
    /// Firefox, its CORS console messages after [`FIREFOX_CORS_TAG`], or a line saying why they
    /// could not be read).
    pub fn stop(mut self) -> String {
        let cors = self.marionette.take().map(|mut m| match m.cors_console() {
            Ok(messages) => messages
                .into_iter()
                .map(|(category, message)| format!("{FIREFOX_CORS_TAG}[{category}] {message}\n"))
                .collect::<String>(),
            Err(e) => format!("{FIREFOX_CORS_TAG}capture failed: {e}\n"),
        });
        self.kill();
        let mut log = fs::read_to_string(&self.log).unwrap_or_default();
        log.push_str(&cors.unwrap_or_default());
        log
    }

    /// The scratch directory of this run.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_group(&mut child);
        }
        for mut x in self.extra.drain(..) {
            stop_group(&mut x);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
