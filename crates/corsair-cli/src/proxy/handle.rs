//! One request: the CORS decision, then the answer, the upstream's response, or a tunnel for
//! an upgraded connection (WebSocket).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use corsair::server::{answer, answer_upgrade, is_upgrade, Action, Outcome, Reasons};
use http::header::{HeaderName, HeaderValue, CONNECTION, HOST, UPGRADE};
use http::{HeaderMap, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::log::access_log;
use super::metrics::{Limit, UpstreamError};
use super::{Body, State};

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

pub(super) fn text(status: StatusCode, message: String) -> Response<Body> {
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

pub(super) async fn handle(
    state: Arc<State>,
    peer: SocketAddr,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let size = head_size(&req);
    let too_big = size > state.max_header_bytes;
    let reasons = if state.exact {
        Reasons::Always
    } else {
        Reasons::WhenTraced
    };
    let routing = state.routing.load_full();
    // `Upgrade: h2c` asks for HTTP/2 on this connection: the proxy speaks HTTP/2 itself (with
    // prior knowledge, or by ALPN over TLS), so that offer is declined, never passed on.
    let upgrade = is_upgrade(req.headers())
        && req
            .headers()
            .get(UPGRADE)
            .is_some_and(|p| !p.as_bytes().eq_ignore_ascii_case(b"h2c"));
    let decision = if upgrade {
        // A WebSocket handshake from a page the policy does not allow: refused (403) here,
        // since browsers apply no CORS check to the connection.
        answer_upgrade(
            &routing.policies,
            req.method(),
            req.uri().path(),
            req.headers(),
        )
    } else {
        answer(
            &routing.policies,
            req.method(),
            req.uri().path(),
            req.headers(),
            reasons,
        )
    };
    let outcome = decision.outcome();
    let method = req.method().clone();
    let path = req
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), ToString::to_string);
    let origin = req.headers().get(http::header::ORIGIN).cloned();
    let (action, cors_headers) = decision.into_parts();
    if too_big {
        state.metrics.limited(Limit::HeaderBytes);
    } else if let Some(outcome) = outcome {
        state.metrics.request(outcome);
        match action {
            Action::Respond(_) if upgrade && matches!(outcome, Outcome::Rejected(_)) => {
                state.metrics.upgrade_refused();
            }
            Action::Respond(_) => state.metrics.preflight(outcome == Outcome::Allowed),
            Action::Forward => {}
        }
    }
    let mut response = match action {
        // Answered here, with the CORS headers an allowed origin needs to read why.
        _ if too_big => text(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "corsair proxy: the request line and headers are {size} bytes, over the limit of {} (--max-header-bytes)\n",
                state.max_header_bytes
            ),
        ),
        Action::Respond(status) => {
            let mut r = Response::new(http_body_util::Empty::new().map_err(|e| match e {}).boxed());
            *r.status_mut() = status;
            r
        }
        Action::Forward => {
            let upstream = routing.upstream(req.uri().path(), &state.upstream).clone();
            let client_side = upgrade.then(|| hyper::upgrade::on(&mut req));
            forward(&state, &upstream, peer, req, client_side).await
        }
    };
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    let protocol = response.headers().get(UPGRADE).cloned();
    strip_hop_by_hop(response.headers_mut());
    if switching {
        // The one hop-by-hop exchange that passes: the upstream accepted the upgrade.
        if let Some(p) = protocol {
            response.headers_mut().insert(UPGRADE, p);
        }
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
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

/// The request head's size as sent in HTTP/1.1: request line, then each `name: value` line.
fn head_size(req: &Request<Incoming>) -> usize {
    let line = req.method().as_str().len()
        + req.uri().path_and_query().map_or(1, |p| p.as_str().len())
        + " HTTP/1.1\r\n".len()
        + 1;
    req.headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + line
}

async fn forward(
    state: &State,
    upstream: &Uri,
    peer: SocketAddr,
    req: Request<Incoming>,
    client_side: Option<hyper::upgrade::OnUpgrade>,
) -> Response<Body> {
    let (mut parts, body) = req.into_parts();
    let base = upstream.path().trim_end_matches('/');
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let target = format!(
        "{}://{}{base}{pq}",
        upstream.scheme_str().unwrap_or("http"),
        upstream.authority().map_or("", |a| a.as_str())
    );
    let Ok(uri) = target.parse::<Uri>() else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("cannot forward to {target}\n"),
        );
    };
    // HTTP/2 clients name the host in the URI's authority, not in Host.
    let original_host = parts.headers.get(HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
    });
    let proto = if state.tls.is_some() { "https" } else { "http" };
    let protocol = parts.headers.get(UPGRADE).cloned();
    strip_hop_by_hop(&mut parts.headers);
    if let (Some(_), Some(p)) = (&client_side, protocol) {
        // An upgrade asks the upstream to switch protocols: the two headers that say so pass.
        parts.headers.insert(UPGRADE, p);
        parts
            .headers
            .insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
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
    let mut forwarded = format!("for={for_value};proto={proto}");
    if let Some(h) = original_host.as_ref().and_then(|h| h.to_str().ok()) {
        forwarded.push_str(&format!(";host=\"{h}\""));
    }
    let h = &mut parts.headers;
    if let Ok(v) = HeaderValue::from_str(&xff) {
        h.insert("x-forwarded-for", v);
    }
    h.insert("x-forwarded-proto", HeaderValue::from_static(proto));
    if let Some(host) = original_host {
        h.insert("x-forwarded-host", host);
    }
    if let Ok(v) = HeaderValue::from_str(&forwarded) {
        h.append("forwarded", v);
    }
    h.remove(HOST);
    parts.uri = uri;
    // The upstream is spoken to in HTTP/1.1, whatever the client spoke to the proxy.
    parts.version = http::Version::HTTP_11;
    let upstream_req = Request::from_parts(parts, body.boxed());
    let sent = Instant::now();
    let (status, message) =
        match tokio::time::timeout(state.timeout, state.client.request(upstream_req)).await {
            Ok(Ok(mut resp)) => {
                state.metrics.upstream_latency(sent.elapsed());
                if let Some(client_side) = client_side {
                    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                        tunnel(client_side, hyper::upgrade::on(&mut resp), target);
                    }
                }
                return resp.map(BodyExt::boxed);
            }
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
    state
        .metrics
        .upstream_error(if status == StatusCode::GATEWAY_TIMEOUT {
            UpstreamError::Timeout
        } else {
            UpstreamError::Failed
        });
    // Logged whether or not --log is on: the page sees only a 502 or 504.
    eprintln!("{message} ({})", status.as_u16());
    text(status, format!("{message}\n"))
}

/// Once both sides have switched protocols, copies bytes both ways until either closes.
fn tunnel(
    client_side: hyper::upgrade::OnUpgrade,
    upstream_side: hyper::upgrade::OnUpgrade,
    target: String,
) {
    tokio::spawn(async move {
        match tokio::try_join!(client_side, upstream_side) {
            Ok((client, upstream)) => {
                let mut client = TokioIo::new(client);
                let mut upstream = TokioIo::new(upstream);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
            Err(e) => eprintln!("corsair proxy: upgrade to {target} failed: {e}"),
        }
    });
}
