//! `corsair demo`: the explainer's scenario, live. A page on the app origin calls an API on
//! another port, protected by corsair; the page shows each request's preflight and actual
//! exchange, the server's decision, the browser's verdict and the console message corsair's
//! browser engine predicts, and a policy panel breaks the API's policy on purpose.
//!
//! - [`scenario`]: the policies the API can serve, and what each teaches (pure);
//! - [`predict`]: what the browser will do with a request (pure: corsair's browser engine against
//!   the API's own answers);
//! - [`server`]: the two servers.

pub mod predict;
pub mod scenario;
pub mod server;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};

use corsair::browser::Credentials;

use crate::error::{self, Error, Verdict};
use predict::PageRequest;

/// `corsair demo` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// The app origin's port (the page); 0 picks a free one.
    #[arg(long, default_value_t = 8000)]
    pub app_port: u16,
    /// The API's port (corsair in front); 0 picks a free one.
    #[arg(long, default_value_t = 9000)]
    pub api_port: u16,
    /// Open the page in the default browser (with xdg-open, where it exists).
    #[arg(long)]
    pub open: bool,
}

/// The page's preset requests: id, label, request. The page builds its buttons from these.
pub fn presets() -> Vec<(&'static str, &'static str, PageRequest)> {
    let req = |method: &str, headers: &[(&str, &str)], credentials| PageRequest {
        method: method.to_owned(),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        credentials,
    };
    vec![
        (
            "simple-get",
            "Simple GET",
            req("GET", &[], Credentials::SameOrigin),
        ),
        (
            "post-json",
            "POST with JSON (preflighted)",
            req(
                "POST",
                &[("Content-Type", "application/json")],
                Credentials::SameOrigin,
            ),
        ),
        (
            "put",
            "PUT",
            req(
                "PUT",
                &[("Content-Type", "application/json")],
                Credentials::SameOrigin,
            ),
        ),
        (
            "delete-header",
            "DELETE with X-Request-Id",
            req("DELETE", &[("X-Request-Id", "42")], Credentials::SameOrigin),
        ),
        (
            "credentialed",
            "GET with credentials",
            req("GET", &[], Credentials::Include),
        ),
    ]
}

/// Binds a loopback port, or says which flag to change.
fn bind(port: u16, flag: &str) -> Result<TcpListener, Error> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = TcpListener::bind(addr).map_err(|e| match e.kind() {
        ErrorKind::AddrInUse => Error::Usage(format!(
            "port {port} is taken ({flag} {port}): stop what listens there, or pick another port with {flag} (0 picks a free one)"
        )),
        _ => Error::System(format!("cannot listen on {addr} ({flag}): {e}")),
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::System(format!("cannot listen on {addr} ({flag}): {e}")))?;
    Ok(listener)
}

/// Where `program` is on `PATH`, if it is.
fn on_path(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| Path::new(p).is_file())
}

/// Starts both servers and runs until Ctrl-C or SIGTERM.
///
/// # Errors
/// A port that is taken (exit status 2, naming the port and its flag), or a runtime that cannot
/// start.
pub fn main(args: Args) -> Result<Verdict, Error> {
    let app = bind(args.app_port, "--app-port")?;
    let api = bind(args.api_port, "--api-port")?;
    let port = |l: &TcpListener| {
        l.local_addr()
            .map(|a| a.port())
            .map_err(|e| Error::System(e.to_string()))
    };
    let (app_port, api_port) = (port(&app)?, port(&api)?);
    let demo = server::Demo::new(app_port, api_port).map_err(Error::Config)?;
    let page = format!("http://localhost:{app_port}/");
    println!("corsair demo: the explainer's scenario, live in your browser");
    println!("  the page (app origin):   {page}");
    println!(
        "  the API (behind corsair): http://localhost:{api_port}{}",
        server::API_PATH
    );
    println!("Open the page in a browser; stop with Ctrl-C.");
    if args.open {
        match on_path("xdg-open") {
            Some(opener) => {
                let spawned = Command::new(opener)
                    .arg(&page)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn();
                match spawned {
                    // Reaped in the background so that it leaves no zombie.
                    Ok(mut child) => {
                        std::thread::spawn(move || child.wait());
                    }
                    Err(e) => {
                        println!("--open: could not run xdg-open ({e}); open {page} yourself")
                    }
                }
            }
            None => println!("--open: xdg-open is not installed here; open {page} yourself"),
        }
    }
    let rt = error::runtime(true)?;
    rt.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let tokio_listener = |l| {
            tokio::net::TcpListener::from_std(l)
                .map_err(|e| Error::System(format!("cannot listen: {e}")))
        };
        let (app, api) = (tokio_listener(app)?, tokio_listener(api)?);
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| Error::System(format!("signals: {e}")))?;
        let app = axum::serve(app, server::app(demo.clone()));
        let api = axum::serve(api, server::api(demo));
        tokio::select! {
            r = app => r.map_err(|e| Error::System(format!("the app server stopped: {e}")))?,
            r = api => r.map_err(|e| Error::System(format!("the API server stopped: {e}")))?,
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        println!("corsair demo: stopped");
        Ok(Verdict::Pass)
    })
}
