//! The access log: one line per request, text or JSON.

use std::net::SocketAddr;
use std::time::Instant;

use corsair::server::Outcome;
use http::header::HeaderValue;
use http::StatusCode;

/// Access log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per request.
    Text,
    /// One JSON object per line.
    Json,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn access_log(
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
