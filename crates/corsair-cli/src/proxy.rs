//! `corsair proxy`: a corsair policy in front of any HTTP service.
//!
//! - The policy decides the CORS headers: preflights are answered here, and any
//!   `Access-Control-*` response headers of the upstream are replaced by the policy's.
//! - Bodies stream both ways (bounded memory); HTTP/1.1 keep-alive and a pooled upstream client;
//!   everything is forwarded except hop-by-hop headers; `Forwarded`, `X-Forwarded-For`,
//!   `X-Forwarded-Proto` and `X-Forwarded-Host` are added.
//! - An unreachable or failing upstream gives 502, a slow one 504, both with the CORS headers an
//!   allowed origin needs, so the browser shows the real error rather than a CORS error.
//! - SIGTERM or SIGINT: stop accepting, finish the requests in flight, exit. SIGHUP: reload the
//!   policy file; an invalid new file is logged and the old policy kept.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use corsair::config::PolicySet;
use corsair::server::{answer, Action, Outcome, Reasons};
use corsair::{Policy, PolicyHandle};
use http::header::{HeaderName, HeaderValue, HOST};
use http::{HeaderMap, Request, Response, StatusCode, Uri};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};

use crate::error::{self, Error, Verdict};

/// `corsair proxy`'s command line.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on: 127.0.0.1:8080, localhost:8080, or a port alone (8080) for
    /// 127.0.0.1:8080.
    #[arg(long, value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// The service behind the proxy, e.g. http://127.0.0.1:9000.
    #[arg(long)]
    pub upstream: Uri,
    /// A policy file (TOML); reloaded on SIGHUP.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// An origin to allow (repeatable), instead of a policy file.
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,
    /// With --allow-origin: a method scripts may use besides GET, HEAD and POST (repeatable),
    /// written as browsers send it (PUT, PATCH).
    #[arg(long = "allow-method", value_name = "METHOD")]
    pub allow_method: Vec<String>,
    /// With --allow-origin: a request header scripts may send (repeatable), e.g. x-token.
    #[arg(long = "allow-header", value_name = "NAME")]
    pub allow_header: Vec<String>,
    /// With --allow-origin: a response header scripts may read (repeatable), e.g. x-request-id.
    #[arg(long = "expose-header", value_name = "NAME")]
    pub expose_header: Vec<String>,
    /// With --allow-origin: let the pages send cookies and read the credentialed response.
    #[arg(long)]
    pub allow_credentials: bool,
    /// Local development: the --allow-origin origins with any method and header, credentials,
    /// and every response header readable. Announced with a warning.
    #[arg(long)]
    pub dev: bool,
    /// Write an access line per request, with the CORS decision and its reason.
    #[arg(long)]
    pub log: bool,
    /// The access log format: text or json.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Seconds to connect to the upstream.
    #[arg(long, default_value = "5", value_parser = error::seconds)]
    pub connect_timeout: Duration,
    /// Seconds for the upstream to start answering (then 504).
    #[arg(long, default_value = "60", value_parser = error::seconds)]
    pub timeout: Duration,
    /// Seconds to finish requests in flight on SIGTERM/SIGINT.
    #[arg(long, default_value = "30", value_parser = error::seconds)]
    pub drain_timeout: Duration,
}

/// Runs `corsair proxy` until SIGTERM or SIGINT.
///
/// # Errors
/// An invalid policy or upstream, or an address that cannot be bound.
pub fn main(args: Args) -> Result<Verdict, Error> {
    let args = ProxyArgs {
        listen: args.listen,
        upstream: args.upstream,
        config: args.config,
        allow_origins: args.allow_origin,
        allow_methods: args.allow_method,
        allow_headers: args.allow_header,
        expose_headers: args.expose_header,
        allow_credentials: args.allow_credentials,
        dev: args.dev,
        log: args.log.then_some(if args.log_format == "json" {
            LogFormat::Json
        } else {
            LogFormat::Text
        }),
        connect_timeout: args.connect_timeout,
        timeout: args.timeout,
        drain_timeout: args.drain_timeout,
    };
    error::runtime(true)?.block_on(run(args))?;
    Ok(Verdict::Pass)
}

/// `--listen`: an address, `localhost:PORT`, or a port alone, both on 127.0.0.1.
///
/// # Errors
/// Anything else, answered with the forms accepted.
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let port = s.strip_prefix("localhost:").unwrap_or(s);
    match port.parse::<u16>() {
        Ok(p) => Ok(SocketAddr::from(([127, 0, 0, 1], p))),
        Err(_) => Err(format!(
            "{s:?} is not an address to listen on: write a port (8080, meaning 127.0.0.1:8080), localhost:8080, 127.0.0.1:8080, or 0.0.0.0:8080 for every interface"
        )),
    }
}

/// The body type both directions use: streamed, boxed.
type Body = BoxBody<Bytes, hyper::Error>;
type Upstream = Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>;

/// How to run the proxy.
#[derive(Debug, Clone)]
pub struct ProxyArgs {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The upstream's base URL (`http://` or `https://`, optionally with a path prefix).
    pub upstream: Uri,
    /// A policy file, reloaded on SIGHUP.
    pub config: Option<PathBuf>,
    /// Origins to allow, without a file.
    pub allow_origins: Vec<String>,
    /// Methods to allow, with `allow_origins`.
    pub allow_methods: Vec<String>,
    /// Request headers to allow, with `allow_origins`.
    pub allow_headers: Vec<String>,
    /// Response headers to expose, with `allow_origins`.
    pub expose_headers: Vec<String>,
    /// Whether to allow credentials, with `allow_origins`.
    pub allow_credentials: bool,
    /// Development mode: the given origins with any method and header, and credentials.
    pub dev: bool,
    /// Access log format, if any.
    pub log: Option<LogFormat>,
    /// Time to connect to the upstream.
    pub connect_timeout: Duration,
    /// Time for the upstream to send its response head.
    pub timeout: Duration,
    /// Time to finish requests in flight on shutdown.
    pub drain_timeout: Duration,
}

/// Access log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per request.
    Text,
    /// One JSON object per line.
    Json,
}

/// The policy from the arguments.
///
/// # Errors
/// The policy file's or the origins' problems, printable as they are.
pub fn policy(args: &ProxyArgs) -> Result<PolicySet, Error> {
    let flags: Vec<(&str, &str)> = [
        (
            !args.allow_methods.is_empty(),
            "--allow-method",
            "allow_methods",
        ),
        (
            !args.allow_headers.is_empty(),
            "--allow-header",
            "allow_headers",
        ),
        (
            !args.expose_headers.is_empty(),
            "--expose-header",
            "expose_headers",
        ),
        (
            args.allow_credentials,
            "--allow-credentials",
            "allow_credentials",
        ),
    ]
    .into_iter()
    .filter(|(on, _, _)| *on)
    .map(|(_, flag, key)| (flag, key))
    .collect();
    match (&args.config, args.allow_origins.is_empty()) {
        (Some(path), _) if args.dev => Err(Error::Usage(format!(
            "--dev works with --allow-origin, not with --config: keep --config {} and set allow_methods = [\"*\"], allow_headers = [\"*\"] and allow_credentials = true in the file, or keep --dev with --allow-origin ORIGIN and drop --config",
            path.display()
        ))),
        (Some(path), false) => Err(Error::Usage(format!(
            "give either --config or --allow-origin, not both: keep --config {} and list the origins in its allow_origins, or keep --allow-origin and drop --config",
            path.display()
        ))),
        (Some(path), true) if !flags.is_empty() => Err(Error::Usage(format!(
            "{} work with --allow-origin, not with --config: set {} in {} instead",
            flags.iter().map(|(f, _)| *f).collect::<Vec<_>>().join(", "),
            flags.iter().map(|(_, k)| *k).collect::<Vec<_>>().join(", "),
            path.display()
        ))),
        (Some(path), true) => PolicySet::load(path)
            .map_err(|e| Error::Config(e.with_file(&path.display().to_string()).to_string())),
        (None, true) => Err(Error::Usage(if args.dev {
            "--dev needs the page's origin: add --allow-origin ORIGIN, e.g. --allow-origin http://localhost:8000".to_owned()
        } else {
            "give a policy: --config FILE or --allow-origin ORIGIN (the page's origin, e.g. --allow-origin http://localhost:8000)".to_owned()
        })),
        (None, false) => {
            let mut b = Policy::builder()
                .allow_origins(args.allow_origins.iter().cloned())
                .allow_methods(args.allow_methods.iter().cloned())
                .allow_headers(args.allow_headers.iter().cloned())
                .expose_headers(args.expose_headers.iter().cloned())
                .allow_credentials(args.allow_credentials);
            if args.dev {
                b = b
                    .allow_methods(["*"])
                    .allow_headers(["*"])
                    .allow_credentials(true);
            }
            let built = b
                .build()
                .map(PolicySet::single)
                .map_err(|e| Error::Config(flag_errors(&e)))?;
            // Accepted but worth a look, e.g. --allow-method patch: on standard error.
            for n in b.notes() {
                let value = n.value().map(|v| format!("{v:?}: ")).unwrap_or_default();
                eprintln!(
                    "note: {} [{}]: {value}{}",
                    flag_of(n.setting()),
                    n.code(),
                    n.message()
                );
            }
            Ok(built)
        }
    }
}

/// The flag that sets a builder setting, or the setting's name when no flag does.
fn flag_of(setting: &str) -> &str {
    match setting {
        "allow_origins" => "--allow-origin",
        "allow_methods" => "--allow-method",
        "allow_headers" => "--allow-header",
        "expose_headers" => "--expose-header",
        "allow_credentials" => "--allow-credentials",
        other => other,
    }
}

/// A policy's problems, then which flag sets each setting named, and what to do about a
/// `dangerously_` option (which has no flag).
fn flag_errors(errors: &corsair::ConfigErrors) -> String {
    let mut out = errors.to_string();
    let mut named: Vec<&str> = Vec::new();
    for e in errors.errors() {
        if !named.contains(&e.setting()) {
            named.push(e.setting());
        }
    }
    for setting in named {
        let flag = flag_of(setting);
        if flag != setting {
            out.push_str(&format!("\n{setting} is {flag} on the command line"));
        }
    }
    if errors
        .errors()
        .iter()
        .any(|e| e.fix().contains("dangerously_"))
    {
        out.push_str("\ndangerously_ options have no flag: write a policy file with that key set to true and pass it with --config FILE");
    }
    out
}

struct State {
    policies: PolicyHandle,
    upstream: Uri,
    client: Upstream,
    log: Option<LogFormat>,
    timeout: Duration,
    dev: bool,
}

/// Runs the proxy until SIGTERM or SIGINT. Prints `listening on http://ADDR` once bound.
///
/// # Errors
/// An invalid policy or an address that cannot be bound.
pub async fn run(args: ProxyArgs) -> Result<(), Error> {
    use tokio::signal::unix::{signal, SignalKind};
    let policies = policy(&args)?;
    if !matches!(args.upstream.scheme_str(), Some("http" | "https"))
        || args.upstream.host().is_none()
    {
        return Err(Error::Usage(format!(
            "--upstream {} is not an http(s) URL",
            args.upstream
        )));
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Error::System(format!("cannot listen on {}: {e}", args.listen)))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::System(e.to_string()))?;
    if args.dev {
        eprintln!(
            "WARNING: --dev allows {} with ANY method and header, and credentials, and lets them read every response header the upstream sends (except Set-Cookie). For local development only.",
            args.allow_origins.join(", ")
        );
    }
    if let Some(warning) = probe(&args.upstream, args.connect_timeout).await {
        eprintln!("WARNING: {warning}; starting anyway, requests get 502 until it is up");
    }
    println!(
        "corsair proxy listening on http://{local} -> {}",
        args.upstream
    );
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(crate::net::https_connector(Some(args.connect_timeout)));
    let state = Arc::new(State {
        policies: PolicyHandle::new(policies),
        upstream: args.upstream.clone(),
        client,
        log: args.log,
        timeout: args.timeout,
        dev: args.dev,
    });

    let signal = |kind| signal(kind).map_err(|e| Error::System(format!("signals: {e}")));
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, peer)) = accepted else { continue };
                let state = state.clone();
                let service = hyper::service::service_fn(move |req| handle(state.clone(), peer, req));
                let conn = http.serve_connection_with_upgrades(TokioIo::new(tcp), service).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                });
            }
            _ = hup.recv() => reload(&state, args.config.as_deref()),
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    drop(listener);
    eprintln!("corsair proxy: shutting down, finishing requests in flight");
    match tokio::time::timeout(args.drain_timeout, graceful.shutdown()).await {
        Ok(()) => eprintln!("corsair proxy: stopped"),
        Err(_) => eprintln!(
            "corsair proxy: stopped with requests still in flight after {:?}",
            args.drain_timeout
        ),
    }
    Ok(())
}

/// Whether the upstream resolves and accepts a connection: a warning if not.
async fn probe(upstream: &Uri, timeout: Duration) -> Option<String> {
    let host = upstream
        .host()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = upstream
        .port_u16()
        .unwrap_or(if upstream.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host, port)).await {
        Ok(a) => a.collect(),
        Err(_) => Vec::new(),
    };
    if addrs.is_empty() {
        return Some(format!(
            "the upstream {upstream} does not resolve: no address for {host}"
        ));
    }
    let mut last = String::new();
    for addr in addrs {
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => return None,
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = format!("no answer within {}s", timeout.as_secs_f64()),
        }
    }
    Some(format!(
        "the upstream {upstream} refuses connections ({last}): is the service running?"
    ))
}

fn reload(state: &State, path: Option<&std::path::Path>) {
    let Some(path) = path else {
        eprintln!("corsair proxy: SIGHUP ignored: no --config file to reload");
        return;
    };
    match PolicySet::load(path) {
        Ok(set) => {
            state.policies.store(set);
            eprintln!("corsair proxy: policy reloaded from {}", path.display());
        }
        Err(e) => eprintln!(
            "corsair proxy: {} rejected, keeping the current policy:\n{}",
            path.display(),
            e.with_file(&path.display().to_string())
        ),
    }
}

/// `--dev`: an allowed origin may read every header the upstream sent, except those scripts
/// can never read (Set-Cookie, Set-Cookie2), those they can always read, and CORS's own.
fn expose_all(headers: &mut HeaderMap, upstream: &[HeaderName]) {
    if !headers.contains_key(http::header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        return;
    }
    let mut names: Vec<&str> = Vec::new();
    for n in upstream {
        let n = n.as_str();
        if !corsair::browser::safelist::is_exposure_moot(n)
            && !n.starts_with("access-control-")
            && !names.contains(&n)
        {
            names.push(n);
        }
    }
    if names.is_empty() {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(&names.join(", ")) {
        headers.insert(http::header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
    }
}

/// Hop-by-hop headers, never forwarded (RFC 9110 §7.6.1), plus those `Connection` names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in [
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(n);
    }
}

fn text(status: StatusCode, message: String) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(message))
            .map_err(|e| match e {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn handle(
    state: Arc<State>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let reasons = if state.log.is_some() {
        Reasons::Always
    } else {
        Reasons::WhenTraced
    };
    let decision = answer(
        &state.policies.load(),
        req.method(),
        req.uri().path(),
        req.headers(),
        reasons,
    );
    let outcome = decision.outcome();
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), ToString::to_string);
    let origin = req.headers().get(http::header::ORIGIN).cloned();
    let (action, cors_headers) = decision.into_parts();
    let mut response = match action {
        Action::Respond(status) => {
            let mut r = Response::new(http_body_util::Empty::new().map_err(|e| match e {}).boxed());
            *r.status_mut() = status;
            r
        }
        Action::Forward => forward(&state, peer, req).await,
    };
    strip_hop_by_hop(response.headers_mut());
    let upstream_names: Vec<HeaderName> = if state.dev {
        response.headers().keys().cloned().collect()
    } else {
        Vec::new()
    };
    cors_headers.apply(response.headers_mut());
    if state.dev {
        expose_all(response.headers_mut(), &upstream_names);
    }
    // RFC 9110 §7.6.3: an intermediary adds itself to Via; `corsair check` recognizes it.
    response
        .headers_mut()
        .append(http::header::VIA, HeaderValue::from_static("1.1 corsair"));
    // With a log, the reason was always worked out (Reasons::Always), so the outcome is there.
    if let (Some(format), Some(outcome)) = (state.log, outcome) {
        access_log(
            format,
            peer,
            &method,
            &path,
            origin.as_ref(),
            response.status(),
            started,
            outcome,
        );
    }
    Ok(response)
}

async fn forward(state: &State, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    let base = state.upstream.path().trim_end_matches('/');
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let target = format!(
        "{}://{}{base}{pq}",
        state.upstream.scheme_str().unwrap_or("http"),
        state.upstream.authority().map_or("", |a| a.as_str())
    );
    let Ok(uri) = target.parse::<Uri>() else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("cannot forward to {target}\n"),
        );
    };
    let original_host = parts.headers.get(HOST).cloned();
    strip_hop_by_hop(&mut parts.headers);
    let client_ip = peer.ip().to_string();
    let xff = match parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
    {
        Some(prev) => format!("{prev}, {client_ip}"),
        None => client_ip.clone(),
    };
    let for_value = if peer.is_ipv6() {
        format!("\"[{client_ip}]\"")
    } else {
        client_ip
    };
    let mut forwarded = format!("for={for_value};proto=http");
    if let Some(h) = original_host.as_ref().and_then(|h| h.to_str().ok()) {
        forwarded.push_str(&format!(";host=\"{h}\""));
    }
    let h = &mut parts.headers;
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert("x-forwarded-for", v);
    }
    h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if let Some(host) = original_host {
        h.insert("x-forwarded-host", host);
    }
    if let Ok(v) = HeaderValue::from_str(&forwarded) {
        h.append("forwarded", v);
    }
    h.remove(HOST);
    parts.uri = uri;
    let upstream_req = Request::from_parts(parts, body.boxed());
    let (status, message) =
        match tokio::time::timeout(state.timeout, state.client.request(upstream_req)).await {
            Ok(Ok(resp)) => return resp.map(BodyExt::boxed),
            Ok(Err(e)) => (
                StatusCode::BAD_GATEWAY,
                format!(
                    "corsair proxy: upstream failed: {}",
                    crate::net::classify(&e, &target)
                ),
            ),
            Err(_) => (
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "corsair proxy: upstream did not answer within {}s: {target}",
                    state.timeout.as_secs_f64()
                ),
            ),
        };
    // Logged whether or not --log is on: the page sees only a 502 or 504.
    eprintln!("{message} ({})", status.as_u16());
    text(status, format!("{message}\n"))
}

#[allow(clippy::too_many_arguments)]
fn access_log(
    format: LogFormat,
    peer: SocketAddr,
    method: &http::Method,
    path: &str,
    origin: Option<&HeaderValue>,
    status: StatusCode,
    started: Instant,
    outcome: Outcome,
) {
    let (cors, reason) = match outcome {
        Outcome::NotCors => ("not-cors", None),
        Outcome::Allowed => ("allowed", None),
        Outcome::Rejected(r) => ("rejected", Some(r.as_str())),
    };
    let origin = origin.map(|o| String::from_utf8_lossy(o.as_bytes()).into_owned());
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match format {
        LogFormat::Json => println!(
            "{}",
            serde_json::json!({
                "client": peer.to_string(),
                "method": method.as_str(),
                "path": path,
                "origin": origin,
                "status": status.as_u16(),
                "ms": (ms * 1000.0).round() / 1000.0,
                "cors": cors,
                "reason": reason,
            })
        ),
        LogFormat::Text => println!(
            "{peer} \"{method} {path}\" {} {ms:.3}ms origin={} cors={cors}{}",
            status.as_u16(),
            origin.as_deref().unwrap_or("-"),
            reason.map(|r| format!(" reason={r}")).unwrap_or_default()
        ),
    }
}
