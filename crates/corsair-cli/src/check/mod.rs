//! `corsair check`: make the requests a browser would make, apply the browser's rules, and say
//! what the browser would say and what to change.

mod fix;
mod render;

use std::time::Duration;

use corsair::browser::{network_words, Blocked, Browser, Credentials, Fetch, RequestInit};

use crate::error::{self, Error, Verdict};
use crate::net;

pub use render::{human, json, json_error, visible, JSON_VERSION};

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
    /// A request header the script sets, 'Name: value'; repeatable. The value is taken as
    /// fetch() takes it: leading and trailing spaces, tabs, CR and LF removed, every other byte
    /// kept (type control bytes with the shell, e.g. $'X-A: \x01'); NUL, CR or LF inside is
    /// refused, as fetch() throws.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Cookies the browser holds for the URL, 'name=value; other=value': sent on the actual
    /// request (never on the preflight) with --credentials include, as a browser would.
    #[arg(long, value_name = "NAME=VALUE")]
    pub cookie: Option<String>,
    /// The credentials mode: omit, same-origin or include.
    #[arg(long, default_value = "same-origin", value_parser = parse_credentials)]
    pub credentials: Credentials,
    /// Whose rules to follow where browsers differ: chromium, firefox or safari. Without it,
    /// all three are checked: one verdict each, Chromium's in detail.
    #[arg(long, value_parser = parse_browser)]
    pub browser: Option<Browser>,
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

/// The `--header 'Name: value'` arguments of `check` and `audit`, as a script passes them to
/// `fetch()`: the name without the spaces and tabs around it, the value as typed (the engine
/// normalizes it as `fetch()` does, with [`corsair::browser::normalize_header_value`]: only
/// tabs, spaces, CR and LF around it are removed; a vertical tab or a form feed stays).
///
/// # Errors
/// An argument without a colon.
pub fn header_args(args: &[String]) -> Result<Vec<(String, String)>, Error> {
    args.iter()
        .map(|h| {
            let Some((name, value)) = h.split_once(':') else {
                return Err(Error::Usage(format!("--header {h:?} is not 'Name: value'")));
            };
            Ok((name.trim_matches([' ', '\t']).to_owned(), value.to_owned()))
        })
        .collect()
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
        let headers = header_args(&args.headers)?;
        check_url(&args.url)?;
        check_origin(&args.origin)?;
        let client = match &args.cacert {
            Some(path) => net::RawClient::with_ca_file(path).map_err(Error::Config)?,
            None => net::RawClient::new(),
        };
        let engines = match args.browser {
            Some(b) => vec![b],
            None => ENGINES.to_vec(),
        };
        let mut check = CheckArgs {
            url: args.url,
            origin: args.origin,
            method: args.method,
            headers,
            cookie: args.cookie,
            credentials: args.credentials,
            browser: engines[0],
            timeout: args.timeout,
        };
        let runtime = error::runtime(false)?;
        // A request the engines send alike goes to the server once.
        let mut answers = Answers::new();
        let mut report = runtime.block_on(run_sharing(&check, &client, &mut answers))?;
        for &b in &engines[1..] {
            check.browser = b;
            match runtime.block_on(run_sharing(&check, &client, &mut answers)) {
                Ok(other) => report.engines.extend(other.engines),
                // This engine's fetch() throws before sending anything (Safari's mixed-content
                // rule, say): blocked, with why.
                Err(Error::Usage(why)) => report.engines.push(EngineVerdict {
                    browser: b,
                    allowed: false,
                    status: None,
                    exposed: Vec::new(),
                    error: Some("invalid-request".to_owned()),
                    message: Some(format!("TypeError: {why}")),
                }),
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    })();
    match result {
        Ok(report) => {
            if json {
                println!("{}", render::json(&report));
            } else {
                print!("{}", render::human(&report));
            }
            Ok(if report.engines.iter().all(|e| e.allowed) {
                Verdict::Pass
            } else {
                Verdict::Fail
            })
        }
        Err(e) => {
            if json {
                println!("{}", render::json_error(&e.to_string()));
            }
            Err(e)
        }
    }
}

/// A URL without a scheme (`localhost:9000/api`) is refused with the URL to type instead.
fn check_url(url: &str) -> Result<(), Error> {
    if url.contains("://") || !looks_like_host(url) {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "{url:?} is not a URL: it has no scheme; did you mean http://{url}?"
    )))
}

/// `localhost:9000/api`, `127.0.0.1`, `api.example.com/x`: a host (and port, path) without a
/// scheme.
fn looks_like_host(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(['/', ':'])
        && !s.contains(char::is_whitespace)
        && s.split(['/', '?', '#']).next().is_some_and(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
}

/// A page origin without a scheme (`localhost:8000`) is refused with the origin to type.
fn check_origin(origin: &str) -> Result<(), Error> {
    let scheme = origin.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    if matches!(scheme.as_deref(), Some("file" | "data" | "about" | "blob")) {
        return Err(Error::Usage(format!(
            "--origin {origin:?}: such a page has no origin of its own, and browsers send `null` for it: use --origin null"
        )));
    }
    // Anything else that is not an origin is refused by the engine, with the parser's reason.
    if origin == "null" || origin.contains("://") || !looks_like_host(origin) {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "--origin {origin:?} is not an origin: did you mean --origin http://{}?",
        origin.trim_end_matches('/')
    )))
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
    /// The cookies the browser holds for the URL (`Cookie` header value), if any.
    pub cookie: Option<String>,
    /// The credentials mode.
    pub credentials: Credentials,
    /// Whose rules to follow where browsers differ.
    pub browser: Browser,
    /// How long each request may take.
    pub timeout: Duration,
}

/// The engines `corsair check` answers for when `--browser` does not narrow it, in this order
/// (the first one's report is the detailed one).
pub const ENGINES: [Browser; 3] = Browser::ALL;

/// One engine's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineVerdict {
    /// The engine.
    pub browser: Browser,
    /// Whether it lets the script read the response.
    pub allowed: bool,
    /// The status the script sees, when allowed.
    pub status: Option<u16>,
    /// The readable response headers, when allowed.
    pub exposed: Vec<String>,
    /// The failure's code, when blocked (`network` for failures other than CORS).
    pub error: Option<String>,
    /// The console message, when blocked: this engine's own words for a CORS failure
    /// (WebKit's two lines joined by a newline); for a network error, the exception the page's
    /// script gets (see [`network_words`]).
    pub message: Option<String>,
}

/// The engine's name as people write it.
pub fn engine_name(b: Browser) -> &'static str {
    match b {
        Browser::Chromium => "Chromium",
        Browser::Firefox => "Firefox",
        Browser::Safari => "Safari",
    }
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
    /// What was asked for but not sent, as a browser would not send it: (header name, why).
    pub dropped: Vec<(String, String)>,
    /// Explanations that are not fixes: what a `null` origin usually is, origins that look
    /// alike, an error page of corsair proxy itself.
    pub notes: Vec<String>,
    /// The server recognized from the answers: `corsair-proxy` (by `Via: 1.1 corsair`).
    pub server: Option<&'static str>,
    /// Each engine's verdict: this report's own first, then the other engines checked.
    pub engines: Vec<EngineVerdict>,
}

/// The `Via` token corsair proxy adds to every response (RFC 9110 §7.6.3).
pub const PROXY_VIA: &str = "1.1 corsair";

/// Headers asked for that the browser would not send, with the reason.
fn dropped(args: &CheckArgs) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, _) in &args.headers {
        if !corsair::browser::safelist::is_forbidden_request_header(name) {
            continue;
        }
        let lower = name.to_ascii_lowercase();
        let reason = match lower.as_str() {
            "cookie" => "scripts cannot set Cookie: the browser sends the cookies it holds, cross-origin only with credentials: 'include'; use --cookie 'name=value' --credentials include".to_owned(),
            "origin" => "scripts cannot set Origin: the browser sends the page's origin; use --origin".to_owned(),
            "host" => "scripts cannot set Host: the browser sends the URL's host".to_owned(),
            _ => format!("{name} is a forbidden request header: fetch() drops it and the browser sends its own value, if any"),
        };
        if !out.iter().any(|(n, _)| *n == lower) {
            out.push((lower, reason));
        }
    }
    if args.cookie.is_some() && args.credentials != Credentials::Include {
        out.push((
            "cookie".to_owned(),
            "--cookie is sent only with --credentials include: cross-origin, a browser sends cookies only in that mode".to_owned(),
        ));
    }
    out
}

fn via_corsair(e: &Exchange) -> bool {
    e.response_headers.iter().any(|(k, v)| {
        k == "via"
            && v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(PROXY_VIA))
    })
}

/// Explanations for the page origin and the allowed one.
fn origin_notes(origin: &str, exchanges: &[Exchange], proxy_error: Option<String>) -> Vec<String> {
    let mut notes = Vec::new();
    if origin == "null" {
        notes.push("the origin `null` is what a sandboxed iframe, a page opened from a file: URL, or a request after a cross-origin redirect sends; allowing `null` allows every such page of any site, so serve the page from a real origin instead".to_owned());
    }
    let allowed = exchanges.last().and_then(|e| {
        e.response_headers
            .iter()
            .find(|(k, _)| k == "access-control-allow-origin")
            .map(|(_, v)| v.trim().to_owned())
    });
    if let Some(allowed) = allowed {
        if let Some(why) = look_alike(origin, &allowed) {
            notes.push(format!(
                "the page's origin {origin} and the allowed origin {allowed} {why}: they are different origins, so the browser refuses it; allow {origin}, or open the page at {allowed}"
            ));
        }
    }
    notes.extend(proxy_error);
    notes
}

/// Whether two origins differ only by a loopback name (`localhost`, `127.0.0.1`, `[::1]`) or
/// only by the port, and how. Something that is not an origin (`http://localhost:*`, a
/// template left unfilled) is no look-alike: opening the page there is no fix.
fn look_alike(a: &str, b: &str) -> Option<&'static str> {
    fn parts(o: &str) -> Option<(&str, &str, &str)> {
        let (scheme, rest) = o.split_once("://")?;
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, p),
            _ => (rest, ""),
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-.[]:".contains(&c));
        (host_ok && port.bytes().all(|c| c.is_ascii_digit())).then_some((scheme, host, port))
    }
    let loopback = |h: &str| matches!(h, "localhost" | "127.0.0.1" | "[::1]");
    let ((sa, ha, pa), (sb, hb, pb)) = (parts(a)?, parts(b)?);
    if a == b || sa != sb {
        return None;
    }
    if ha != hb && loopback(ha) && loopback(hb) {
        return Some(if pa == pb {
            "differ only by the host name of the loopback address (localhost is not 127.0.0.1)"
        } else {
            "differ by the host name of the loopback address (localhost is not 127.0.0.1) and by the port"
        });
    }
    (ha == hb && pa != pb).then_some("differ only by the port")
}

/// The hint for a 502 or 504 that corsair proxy wrote itself.
fn proxy_error(e: &Exchange, body: &[u8]) -> Option<String> {
    let body = String::from_utf8_lossy(body);
    let line = body.lines().next()?.trim();
    if !(matches!(e.status, 502 | 504) && via_corsair(e) && line.starts_with("corsair proxy:")) {
        return None;
    }
    Some(format!(
        "this {} is corsair proxy's own answer, not the service's: \"{line}\"; start the service behind the proxy, or check the proxy's --upstream",
        e.status
    ))
}

/// What marks, explains and fixes a network error: the header at fault, a note, the fix.
fn network_failure(
    failure: &str,
    exchanges: &[Exchange],
) -> (Option<String>, Option<String>, Vec<String>) {
    let Some(last) = exchanges.last() else {
        return (None, None, Vec::new());
    };
    let what = if last.preflight {
        "the OPTIONS preflight"
    } else {
        "the request"
    };
    match failure {
        "net::ERR_INVALID_HTTP_RESPONSE" => {
            let name = last
                .response_headers
                .iter()
                .find(|(n, v)| n.contains('\0') || v.contains('\0'))
                .map(|(n, _)| n.clone());
            let shown = name.clone().unwrap_or_default();
            (
                name,
                Some(format!(
                    "the answer to {what} has a NUL byte in its {shown} header: Chromium refuses the whole response as net::ERR_INVALID_HTTP_RESPONSE before any CORS check (Firefox fails it too, with a NetworkError, and Safari with \"Load failed\"); the page's script gets a TypeError and the console no CORS message"
                )),
                vec![format!("remove the NUL byte from the {shown} header")],
            )
        }
        "net::ERR_UNEXPECTED_PROXY_AUTH" => (
            None,
            Some(format!(
                "{what} was answered 407 Proxy Authentication Required, which only a proxy may send: Chromium fails the request as net::ERR_UNEXPECTED_PROXY_AUTH before any CORS check, and the console shows no CORS message (Firefox reads the 407 as any other status; so does Safari, a 407 preflight being a preflight that did not succeed, though WebKitGTK asks the user for proxy credentials when the 407 carries a Proxy-Authenticate challenge)"
            )),
            vec![format!(
                "answer {what} with another status than 407: a server that wants credentials answers 401{}",
                if last.preflight {
                    ", and a preflight, which never carries credentials, is answered 204 without asking for them"
                } else {
                    ""
                }
            )],
        ),
        // A redirect that cannot be followed.
        _ => (Some("location".to_owned()), None, Vec::new()),
    }
}

/// Runs the check: the preflight when needed, the actual request, redirects, as a browser would.
///
/// # Errors
/// An invalid request (what the browser would throw on: [`Error::Usage`]) or a network failure.
pub async fn run(args: &CheckArgs, client: &net::RawClient) -> Result<Report, Error> {
    run_sharing(args, client, &mut Answers::new()).await
}

/// The answers received, by request (method, URL, headers as sent): engines that send the
/// same request share its answer, so that the server sees it once.
pub type Answers = std::collections::HashMap<(String, String, Vec<(String, String)>), net::RawHead>;

/// As [`run`], reusing the answers of requests already sent (and recording the new ones).
///
/// # Errors
/// As [`run`].
pub async fn run_sharing(
    args: &CheckArgs,
    client: &net::RawClient,
    answers: &mut Answers,
) -> Result<Report, Error> {
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
    let dropped = dropped(args);
    let mut exchanges = Vec::new();
    while let Some(out) = fetch.request() {
        let mut headers = out.headers.clone();
        if let (false, Credentials::Include, Some(cookie)) =
            (out.preflight, args.credentials, &args.cookie)
        {
            headers.push(("Cookie".to_owned(), cookie.clone()));
        }
        let key = (out.method.clone(), out.url.to_string(), headers.clone());
        let head = match answers.get(&key) {
            Some(head) => head.clone(),
            None => {
                let head = client
                    .exchange(&out.method, out.url.as_str(), &headers, args.timeout)
                    .await?;
                answers.insert(key, head.clone());
                head
            }
        };
        let last_body = head.body_start.clone();
        exchanges.push(Exchange {
            preflight: out.preflight,
            method: out.method.clone(),
            url: out.url.to_string(),
            request_headers: headers,
            status: head.status,
            // One character per byte, as browsers show header values.
            response_headers: head
                .fields
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_ascii_lowercase(),
                        v.iter().map(|&b| char::from(b)).collect(),
                    )
                })
                .collect(),
        });
        let fields: Vec<(&str, &[u8])> = head
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        let Some(verdict) = fetch.receive_fields(head.status, &fields) else {
            continue;
        };
        let preflight = exchanges.iter().any(|e| e.preflight);
        let server = exchanges.iter().any(via_corsair).then_some("corsair-proxy");
        let notes = origin_notes(
            fetch.request_origin(),
            &exchanges,
            exchanges.last().and_then(|e| proxy_error(e, &last_body)),
        );
        let request_fix = fix::request_side(
            &method,
            &args.headers,
            &unsafe_names,
            args.credentials,
            preflight,
        );
        // What every verdict shares; each verdict sets only what is its own.
        let last = exchanges.len().saturating_sub(1);
        let base = Report {
            allowed: false,
            preflight,
            message: None,
            error: None,
            status: None,
            exposed: Vec::new(),
            culprit: None,
            server_fix: Vec::new(),
            request_fix: Vec::new(),
            exchanges,
            summary,
            dropped,
            notes,
            server,
            engines: Vec::new(),
        };
        let cors_error = match &verdict {
            Err(Blocked::Cors(e)) => Some(e.clone()),
            _ => None,
        };
        let mut verdict_network = None;
        let mut report = match verdict {
            Ok(readable) => Report {
                allowed: true,
                status: Some(readable.status),
                exposed: readable.exposed,
                request_fix: if preflight { request_fix } else { Vec::new() },
                ..base
            },
            Err(Blocked::Cors(e)) => Report {
                message: Some(e.to_string()),
                error: Some(e.kind().as_str().to_owned()),
                culprit: e.kind().header().map(|h| (last, h.to_owned())),
                server_fix: fix::server_side(
                    &e,
                    fetch.request_origin(),
                    args.credentials,
                    &method,
                    &unsafe_names,
                    server.is_some(),
                    args.origin != "null",
                ),
                request_fix,
                ..base
            },
            // Not a CORS failure: the browser reports a network error (TypeError).
            Err(Blocked::Network(m)) => {
                verdict_network = Some(m.clone());
                let (culprit, note, fix) = network_failure(&m, &base.exchanges);
                let mut notes = base.notes.clone();
                notes.extend(note);
                Report {
                    message: Some(network_words(Browser::Chromium, &m)),
                    error: Some("network".to_owned()),
                    culprit: culprit.map(|h| (last, h)),
                    server_fix: fix,
                    notes,
                    ..base
                }
            }
        };
        report.engines = vec![EngineVerdict {
            browser: args.browser,
            allowed: report.allowed,
            status: report.status,
            exposed: report.exposed.clone(),
            error: report.error.clone(),
            message: match (&cors_error, &verdict_network) {
                (Some(e), _) => Some(e.console_message(args.browser)),
                (None, Some(m)) => Some(network_words(args.browser, m)),
                (None, None) => report.message.clone(),
            },
        }];
        return Ok(report);
    }
    Err(Error::System(
        "the fetch ended without a verdict".to_owned(),
    ))
}
