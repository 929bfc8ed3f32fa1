//! Firefox's console, read through Marionette, Firefox's own remote protocol (Debian ships no
//! `geckodriver`; Marionette is what geckodriver itself speaks).
//!
//! Headless Firefox ESR prints no CORS message on its standard streams: its
//! `devtools.console.stdout.*` preferences carry only the pages' own `console` calls, and the
//! CORS errors (`nsIScriptError`s of categories `CORS…`, logged by Gecko's
//! `nsCORSListenerProxy`) go only to its console service. So the harness starts Firefox with
//! `--marionette -remote-allow-system-access` and `marionette.port` 0 (Firefox writes the port
//! it picked to `MarionetteActivePort` in the profile), and, before the page is loaded:
//!
//! 1. `WebDriver:NewSession`, then `Marionette:SetContext` `chrome` (the browser's own,
//!    privileged script context, which `-remote-allow-system-access` opens);
//! 2. `WebDriver:ExecuteScript` registers an `nsIConsoleListener` with `Services.console` that
//!    keeps every error (not warning) `nsIScriptError` whose category starts with `CORS`, as `[category,
//!    errorMessage]`, on the chrome window (the console service's own buffer keeps only the
//!    last 250 messages, too few for the differential suite);
//! 3. back in the `content` context, `WebDriver:Navigate` loads the page;
//! 4. when the page has posted its results, another script returns what the listener kept
//!    (once two reads 100 ms apart agree, since the console service notifies its listeners
//!    asynchronously).
//!
//! The protocol: each message is `LENGTH:JSON`; a command is `[0, id, name, params]`, its
//! answer `[1, id, error, result]`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A Marionette connection.
#[derive(Debug)]
pub struct Marionette {
    reader: BufReader<TcpStream>,
    id: u64,
}

/// Registers the console listener (chrome context).
const LISTEN: &str = r#"
const kept = [];
const listener = {
  observe(m) {
    if (m instanceof Ci.nsIScriptError && m.category.startsWith("CORS")
        && !(m.flags & Ci.nsIScriptError.warningFlag)) {
      kept.push([m.category, m.errorMessage]);
    }
  },
};
Services.console.registerListener(listener);
window.corsairCors = { kept, listener };
return true;
"#;

/// Returns what the listener kept (chrome context).
const READ: &str = r#"
const c = window.corsairCors;
return c ? c.kept : null;
"#;

impl Marionette {
    /// Connects to the Firefox whose profile is `profile`, once it has written the port it
    /// listens on, and opens a session (page loads not awaited: `pageLoadStrategy` `none`).
    ///
    /// # Errors
    /// When no port appears within `timeout`, or the connection or session fails.
    pub fn connect(profile: &Path, timeout: Duration) -> Result<Marionette, String> {
        let deadline = Instant::now() + timeout;
        let file = profile.join("MarionetteActivePort");
        let stream = loop {
            let port = std::fs::read_to_string(&file)
                .ok()
                .and_then(|s| s.trim().parse::<u16>().ok())
                .filter(|p| *p != 0);
            if let Some(port) = port {
                if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                    break s;
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "firefox's Marionette did not start within {timeout:?} ({} not written)",
                    file.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| format!("marionette socket: {e}"))?;
        let mut m = Marionette {
            reader: BufReader::new(stream),
            id: 0,
        };
        let hello = m.read()?;
        if hello["marionetteProtocol"] != 3 {
            return Err(format!("unexpected Marionette greeting: {hello}"));
        }
        m.call(
            "WebDriver:NewSession",
            json!({"capabilities": {"alwaysMatch": {"pageLoadStrategy": "none"}}}),
        )?;
        Ok(m)
    }

    fn read(&mut self) -> Result<Value, String> {
        let mut len = Vec::new();
        self.reader
            .read_until(b':', &mut len)
            .map_err(|e| format!("marionette read: {e}"))?;
        len.pop();
        let len: usize = std::str::from_utf8(&len)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| format!("marionette: bad length prefix {len:?}"))?;
        let mut body = vec![0; len];
        self.reader
            .read_exact(&mut body)
            .map_err(|e| format!("marionette read: {e}"))?;
        serde_json::from_slice(&body).map_err(|e| format!("marionette: bad JSON: {e}"))
    }

    /// Sends a command and returns its result.
    ///
    /// # Errors
    /// When the connection fails or Firefox answers with an error.
    pub fn call(&mut self, name: &str, params: Value) -> Result<Value, String> {
        self.id += 1;
        let body = json!([0, self.id, name, params]).to_string();
        self.reader
            .get_mut()
            .write_all(format!("{}:{body}", body.len()).as_bytes())
            .map_err(|e| format!("marionette write: {e}"))?;
        loop {
            let reply = self.read()?;
            if reply[0] == 1 && reply[1] == self.id {
                if !reply[2].is_null() {
                    return Err(format!("Marionette {name}: {}", reply[2]));
                }
                return Ok(reply[3].clone());
            }
        }
    }

    /// Runs `script` in `context` (`chrome` or `content`) and returns its value.
    fn execute(&mut self, context: &str, script: &str) -> Result<Value, String> {
        self.call("Marionette:SetContext", json!({ "value": context }))?;
        Ok(self
            .call(
                "WebDriver:ExecuteScript",
                json!({ "script": script, "args": [] }),
            )?
            .get("value")
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// Starts keeping Firefox's CORS console messages, then loads `url`.
    ///
    /// # Errors
    /// When a command fails (without `-remote-allow-system-access`, the chrome context is
    /// refused).
    pub fn capture_cors_console(&mut self, url: &str) -> Result<(), String> {
        if self.execute("chrome", LISTEN)? != Value::Bool(true) {
            return Err("the console listener did not register".to_owned());
        }
        self.call("Marionette:SetContext", json!({ "value": "content" }))?;
        self.call("WebDriver:Navigate", json!({ "url": url }))?;
        Ok(())
    }

    /// The CORS console messages kept so far, `(category, message)`, in the order logged.
    ///
    /// # Errors
    /// When a command fails or the listener is gone.
    pub fn cors_console(&mut self) -> Result<Vec<(String, String)>, String> {
        let mut last: Option<Value> = None;
        for _ in 0..20 {
            let now = self.execute("chrome", READ)?;
            if now.is_null() {
                return Err("the console listener is gone".to_owned());
            }
            if last.as_ref() == Some(&now) {
                break;
            }
            last = Some(now);
            std::thread::sleep(Duration::from_millis(100));
        }
        let kept = last.unwrap_or(Value::Null);
        let entries = kept
            .as_array()
            .ok_or_else(|| format!("unexpected console read: {kept}"))?;
        Ok(entries
            .iter()
            .map(|e| {
                let s = |i: usize| e[i].as_str().unwrap_or_default().to_owned();
                (s(0), s(1))
            })
            .collect())
    }
}
