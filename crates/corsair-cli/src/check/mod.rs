//! `corsair check`: make the requests a browser would make, apply the browser's rules, and say
//! what the browser would say and what to change.

mod fix;
mod render;

use std::time::Duration;

use corsair::browser::{Blocked, Browser, Credentials, Fetch, RequestInit};

use crate::error::{self, Error, Verdict};
use crate::net;

pub use render::{human, json};

/// `corsair check`'s command line.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The URL the page's script fetches.
    pub url: String,
    /// The page's origin, e.g. http://localhost:8000.
    #[arg(long)]
    pub origin: String,
    /// The method, as the script writes it (`patch` stays lowercase).
    #[arg(long, short = 'X', default_value = "GET")]
    pub method: String,
    /// A request header the script sets, 'Name: value'; repeatable.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// The credentials mode: omit, same-origin or include.
    #[arg(long, default_value = "same-origin", value_parser = parse_credentials)]
    pub credentials: Credentials,
    /// Whose rules to follow where browsers differ: chromium, firefox or safari.
    #[arg(long, default_value = "chromium", value_parser = parse_browser)]
    pub browser: Browser,
    /// Seconds each request may take.
    #[arg(long, default_value = "10", value_parser = error::seconds)]
    pub timeout: Duration,
    /// Also trust the CA certificates of this PEM file (e.g. mkcert's rootCA.pem).
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<std::path::PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_credentials(s: &str) -> Result<Credentials, String> {
    s.parse()
}

fn parse_browser(s: &str) -> Result<Browser, String> {
    match s {
        "chromium" | "chrome" => Ok(Browser::Chromium),
        "firefox" => Ok(Browser::Firefox),
        "safari" => Ok(Browser::Safari),
        other => Err(format!(
            "{other:?} is not a browser: use chromium, firefox or safari"
        )),
    }
}

/// Runs `corsair check` and prints its report: [`Verdict::Pass`] when the browser would allow
/// the request, [`Verdict::Fail`] when it would block it.
///
/// # Errors
/// Bad arguments or a network failure (with `--json`, also printed as a JSON object).
pub fn main(args: Args) -> Result<Verdict, Error> {
    let json = args.json;
    let result = (|| {
        let mut headers = Vec::new();
        for h in &args.headers {
            let Some((name, value)) = h.split_once(':') else {
                return Err(Error::Usage(format!("--header {h:?} is not 'Name: value'")));
            };
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let client = match &args.cacert {
            Some(path) => net::client_with_ca_file(path).map_err(Error::Config)?,
            None => net::client(),
        };
        let check = CheckArgs {
            url: args.url,
            origin: args.origin,
            method: args.method,
            headers,
            credentials: args.credentials,
            browser: args.browser,
            timeout: args.timeout,
        };
        error::runtime(false)?.block_on(run(&check, &client))
    })();
    match result {
        Ok(report) => {
            if json {
                println!("{}", render::json(&report));
            } else {
                print!("{}", render::human(&report));
            }
            Ok(if report.allowed {
                Verdict::Pass
            } else {
                Verdict::Fail
            })
        }
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "allowed": false, "error": "usage-or-network", "message": e.to_string() })
                );
            }
            Err(e)
        }
    }
}

/// What to check.
#[derive(Debug, Clone)]
pub struct CheckArgs {
    /// The URL the script fetches.
    pub url: String,
    /// The page's origin.
    pub origin: String,
    /// The method, as the script writes it.
    pub method: String,
    /// Request headers the script sets.
    pub headers: Vec<(String, String)>,
    /// The credentials mode.
    pub credentials: Credentials,
    /// Whose rules to follow where browsers differ.
    pub browser: Browser,
    /// How long each request may take.
    pub timeout: Duration,
}

/// One request sent and what came back.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Whether this was the preflight.
    pub preflight: bool,
    /// The method sent.
    pub method: String,
    /// The URL.
    pub url: String,
    /// The request headers sent.
    pub request_headers: Vec<(String, String)>,
    /// The response status.
    pub status: u16,
    /// The response headers, lowercase names, in order.
    pub response_headers: Vec<(String, String)>,
}

/// The outcome of a check.
#[derive(Debug, Clone)]
pub struct Report {
    /// Would the script be allowed to read the response?
    pub allowed: bool,
    /// Was a preflight sent?
    pub preflight: bool,
    /// Chromium's console message, when blocked by CORS.
    pub message: Option<String>,
    /// The error kind, when blocked (`network` for failures other than CORS).
    pub error: Option<String>,
    /// The final status, when allowed.
    pub status: Option<u16>,
    /// The response headers the script can read, when allowed.
    pub exposed: Vec<String>,
    /// Every request and response.
    pub exchanges: Vec<Exchange>,
    /// The response header at fault: (exchange index, lowercase name).
    pub culprit: Option<(usize, String)>,
    /// What to change on the server.
    pub server_fix: Vec<String>,
    /// What to change in the request instead, where that avoids the problem.
    pub request_fix: Vec<String>,
    /// The request as checked, for the summary line.
    pub summary: String,
}

/// Runs the check: the preflight when needed, the actual request, redirects, as a browser would.
///
/// # Errors
/// An invalid request (what the browser would throw on: [`Error::Usage`]) or a network failure.
pub async fn run(args: &CheckArgs, client: &net::HttpClient) -> Result<Report, Error> {
    let init = RequestInit {
        method: args.method.clone(),
        headers: args.headers.clone(),
        credentials: args.credentials,
    };
    let mut fetch =
        Fetch::new(args.browser, &args.origin, &args.url, init).map_err(|e| Error::Usage(e.0))?;
    let summary = format!(
        "{} {} from {} (credentials: {}, rules: {:?})",
        fetch.method(),
        args.url,
        args.origin,
        match args.credentials {
            Credentials::Omit => "omit",
            Credentials::SameOrigin => "same-origin",
            Credentials::Include => "include",
        },
        args.browser
    );
    let unsafe_names = fetch.unsafe_header_names();
    let method = fetch.method().to_owned();
    let mut exchanges = Vec::new();
    while let Some(out) = fetch.request() {
        let head = net::send(
            client,
            &out.method,
            out.url.as_str(),
            &out.headers,
            args.timeout,
        )
        .await?;
        exchanges.push(Exchange {
            preflight: out.preflight,
            method: out.method.clone(),
            url: out.url.to_string(),
            request_headers: out.headers.clone(),
            status: head.status.as_u16(),
            response_headers: head
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        });
        let Some(verdict) = fetch.receive(head.status.as_u16(), &head.headers) else {
            continue;
        };
        let preflight = exchanges.iter().any(|e| e.preflight);
        let request_fix = fix::request_side(
            &method,
            &args.headers,
            &unsafe_names,
            args.credentials,
            preflight,
        );
        return Ok(match verdict {
            Ok(allowed) => Report {
                allowed: true,
                preflight,
                message: None,
                error: None,
                status: Some(allowed.status),
                exposed: allowed.exposed,
                culprit: None,
                server_fix: Vec::new(),
                request_fix: if preflight { request_fix } else { Vec::new() },
                exchanges,
                summary,
            },
            Err(Blocked::Cors(e)) => {
                let last = exchanges.len().saturating_sub(1);
                Report {
                    allowed: false,
                    preflight,
                    message: Some(e.to_string()),
                    error: Some(e.kind().as_str().to_owned()),
                    status: None,
                    exposed: Vec::new(),
                    culprit: e.kind().header().map(|h| (last, h.to_owned())),
                    server_fix: fix::server_side(
                        &e,
                        fetch.request_origin(),
                        args.credentials,
                        &method,
                        &unsafe_names,
                    ),
                    request_fix,
                    exchanges,
                    summary,
                }
            }
            Err(Blocked::Network(m)) => Report {
                allowed: false,
                preflight,
                // Not a CORS failure: the browser reports a network error (TypeError).
                message: Some(format!("TypeError: Failed to fetch ({m})")),
                error: Some("network".to_owned()),
                status: None,
                exposed: Vec::new(),
                culprit: Some((exchanges.len().saturating_sub(1), "location".to_owned())),
                server_fix: Vec::new(),
                request_fix: Vec::new(),
                exchanges,
                summary,
            },
        });
    }
    Err(Error::System(
        "the fetch ended without a verdict".to_owned(),
    ))
}
