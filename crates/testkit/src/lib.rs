//! Test harness for corsair: real headless browsers (Chromium, Firefox ESR, WebKitGTK) run `fetch()`
//! matrices from pages on several loopback origins against corsair-protected servers, and report
//! what scripts could see.
//!
//! - [`browser`]: finding, starting and stopping the browsers;
//! - [`loopback_proxy`]: the forward proxy that resolves every host to 127.0.0.1 for WebKitGTK;
//! - [`marionette`]: Firefox's CORS console messages, read through its remote protocol;
//! - [`pages`]: the page server that hands each origin its cases and collects the outcomes;
//! - [`matrix`]: the foundation's matrix of policies, requests and expected outcomes;
//! - [`proxy`]: a `corsair proxy` process on a loopback port;
//! - [`scripted`]: a server that answers each case as scripted and logs what browsers sent;
//! - [`tls`]: a local CA for `https` page origins.

pub mod browser;
pub mod loopback_proxy;
pub mod marionette;
pub mod matrix;
pub mod pages;
pub mod proxy;
pub mod scripted;
pub mod tls;

pub use browser::Headless;
pub use pages::{Case, Frame, PageOptions, PageServer, Run, Seen};
pub use proxy::ProxyProcess;

/// The `corsair` binary a test runs: the one `CORSAIR_BIN` names when it is set (another build
/// of the same source, such as the profile-guided one of `scripts/build-pgo.sh`, which runs the
/// proxy's tests against it), else `built`, the test's `env!("CARGO_BIN_EXE_corsair")`.
///
/// ```
/// let bin = corsair_testkit::corsair_bin("target/debug/corsair");
/// assert!(!bin.is_empty());
/// ```
#[must_use]
pub fn corsair_bin(built: &str) -> std::ffi::OsString {
    std::env::var_os("CORSAIR_BIN").unwrap_or_else(|| built.into())
}

/// Serves `app` on an ephemeral 127.0.0.1 port in the background; returns the port.
///
/// # Errors
/// When no port can be bound (`what` names the server in the message).
pub async fn serve_loopback(app: axum::Router, what: &str) -> Result<u16, String> {
    let listener = tokio::net::TcpListener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| format!("bind {what}: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("{what} address: {e}"))?
        .port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(port)
}
