//! `--metrics ADDR`: Prometheus text on `/metrics`, and `/healthz` and `/readyz`, on a listener
//! of their own. Counters are relaxed atomics in fixed arrays: counting costs a few adds per
//! request and no allocation.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use corsair::server::{Outcome, Rejection};
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::handle::text;
use super::Body;

/// The rejection reasons counted by name; any other (a future one) is counted as `other`.
const REASONS: [&str; 10] = [
    "origin-not-allowed",
    "origin-malformed",
    "multiple-origins",
    "method-not-allowed",
    "method-invalid",
    "header-not-allowed",
    "headers-invalid",
    "headers-too-long",
    "private-network-not-allowed",
    "other",
];

/// Upper bounds of the upstream latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Why the proxy answered without the upstream because of a limit.
#[derive(Debug, Clone, Copy)]
pub(super) enum Limit {
    /// `--max-connections` (503).
    Connections,
    /// `--max-header-bytes` (431).
    HeaderBytes,
}

/// An upstream failure.
#[derive(Debug, Clone, Copy)]
pub(super) enum UpstreamError {
    /// Unreachable or failing (502).
    Failed,
    /// No response head in time (504).
    Timeout,
}

/// The proxy's counters.
#[derive(Default)]
pub(super) struct Metrics {
    not_cors: AtomicU64,
    allowed: AtomicU64,
    rejected: [AtomicU64; REASONS.len()],
    preflights_allowed: AtomicU64,
    preflights_rejected: AtomicU64,
    upgrades_refused: AtomicU64,
    limited: [AtomicU64; 2],
    upstream_errors: [AtomicU64; 2],
    /// Requests by the first bucket that holds their latency (not cumulative).
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_micros: AtomicU64,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    last_reload_ok: AtomicBool,
    /// Client connections open now (the proxy's listener, not this one).
    pub(super) open: Arc<AtomicUsize>,
    /// Of those, the ones waiting for a byte with no HTTP state held.
    pub(super) idle: AtomicUsize,
    /// Of those, the ones held outside any task, in their worker's park (`park.rs`).
    pub(super) parked: AtomicUsize,
    /// Times a kept-alive HTTP/1.1 connection's HTTP state was released while it was idle.
    pub(super) releases: AtomicU64,
    /// Requests sent upstream again after a pooled connection closed under them (`pool.rs`).
    pub(super) resent: AtomicU64,
    /// Set when shutting down: `/readyz` answers 503.
    pub(super) draining: AtomicBool,
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub(super) fn new() -> Self {
        let m = Metrics::default();
        m.last_reload_ok.store(true, Ordering::Relaxed);
        m
    }

    /// A request answered by the CORS decision (forwarded, or answered by the proxy).
    pub(super) fn request(&self, outcome: Outcome) {
        match outcome {
            Outcome::NotCors => add(&self.not_cors),
            Outcome::Allowed => add(&self.allowed),
            Outcome::Rejected(r) => add(&self.rejected[reason_index(r)]),
        }
    }

    /// A connection parked (`park.rs`): idle, and parked.
    pub(super) fn parked_one(&self) {
        self.idle.fetch_add(1, Ordering::Relaxed);
        self.parked.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` parked connections woken or closed: no longer idle, nor parked.
    pub(super) fn unparked(&self, n: usize) {
        self.idle.fetch_sub(n, Ordering::Relaxed);
        self.parked.fetch_sub(n, Ordering::Relaxed);
    }

    /// A preflight answered by the proxy, allowed or not.
    pub(super) fn preflight(&self, allowed: bool) {
        add(if allowed {
            &self.preflights_allowed
        } else {
            &self.preflights_rejected
        });
    }

    /// An upgrade request refused for its origin (403).
    pub(super) fn upgrade_refused(&self) {
        add(&self.upgrades_refused);
    }

    pub(super) fn limited(&self, limit: Limit) {
        add(&self.limited[limit as usize]);
    }

    pub(super) fn upstream_error(&self, error: UpstreamError) {
        add(&self.upstream_errors[error as usize]);
    }

    /// The time from sending a request upstream to its response head.
    pub(super) fn upstream_latency(&self, took: Duration) {
        // One bucket counted per request (the first whose bound holds it): the exposition adds
        // them up into Prometheus's cumulative buckets.
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|bound| secs <= *bound) {
            add(&self.latency_buckets[i]);
        }
        add(&self.latency_count);
        self.latency_micros.fetch_add(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub(super) fn reload(&self, ok: bool) {
        add(if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        });
        self.last_reload_ok.store(ok, Ordering::Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub(super) fn render(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::with_capacity(4096);
        let name = "corsair_proxy_requests_total";
        let _ = writeln!(
            out,
            "# HELP {name} Requests, by CORS outcome (not-cors, allowed, rejected) and rejection reason.\n# TYPE {name} counter"
        );
        let mut lines = String::new();
        let _ = writeln!(
            lines,
            "corsair_proxy_requests_total{{outcome=\"not-cors\",reason=\"\"}} {}",
            get(&self.not_cors)
        );
        let _ = writeln!(
            lines,
            "corsair_proxy_requests_total{{outcome=\"allowed\",reason=\"\"}} {}",
            get(&self.allowed)
        );
        for (reason, c) in REASONS.iter().zip(&self.rejected) {
            let _ = writeln!(
                lines,
                "corsair_proxy_requests_total{{outcome=\"rejected\",reason=\"{reason}\"}} {}",
                get(c)
            );
        }
        out.push_str(&lines);
        let mut counter = |name: &str, help: &str, rows: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, v) in rows {
                if labels.is_empty() {
                    let _ = writeln!(out, "{name} {v}");
                } else {
                    let _ = writeln!(out, "{name}{{{labels}}} {v}");
                }
            }
        };
        counter(
            "corsair_proxy_preflights_total",
            "Preflights answered by the proxy, by result.",
            &[
                ("result=\"allowed\"", get(&self.preflights_allowed)),
                ("result=\"rejected\"", get(&self.preflights_rejected)),
            ],
        );
        counter(
            "corsair_proxy_upgrades_refused_total",
            "Upgrade requests (WebSocket handshakes) refused for their origin (403).",
            &[("", get(&self.upgrades_refused))],
        );
        counter(
            "corsair_proxy_limited_total",
            "Requests answered without the upstream because of a limit.",
            &[
                ("limit=\"connections\"", get(&self.limited[0])),
                ("limit=\"header-bytes\"", get(&self.limited[1])),
            ],
        );
        counter(
            "corsair_proxy_upstream_errors_total",
            "Upstream failures: failed (502) or timeout (504).",
            &[
                ("kind=\"failed\"", get(&self.upstream_errors[0])),
                ("kind=\"timeout\"", get(&self.upstream_errors[1])),
            ],
        );
        counter(
            "corsair_proxy_upstream_resent_total",
            "Requests sent upstream again, once, on a new connection, because the pooled connection they went out on closed before any byte of a response (the keep-alive race).",
            &[("", get(&self.resent))],
        );
        counter(
            "corsair_proxy_idle_releases_total",
            "Times a kept-alive HTTP/1.1 connection idle for 250 ms gave back its HTTP state (buffers and request state) until its next byte.",
            &[("", get(&self.releases))],
        );
        counter(
            "corsair_proxy_reloads_total",
            "Policy file reloads (SIGHUP or --watch), by result.",
            &[
                ("result=\"ok\"", get(&self.reloads_ok)),
                ("result=\"error\"", get(&self.reloads_failed)),
            ],
        );
        let name = "corsair_proxy_upstream_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from sending a request upstream to its response head.\n# TYPE {name} histogram"
        );
        let mut cumulative = 0;
        for (bound, c) in BUCKETS.iter().zip(&self.latency_buckets) {
            cumulative += get(c);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = get(&self.latency_count);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", get(&self.latency_micros) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {count}");
        let gauges = [
            (
                "corsair_proxy_last_reload_ok",
                "1 when the last reload succeeded (or none was tried), 0 when it was rejected.",
                u64::from(self.last_reload_ok.load(Ordering::Relaxed)),
            ),
            (
                "corsair_proxy_open_connections",
                "Client connections open now.",
                self.open.load(Ordering::Relaxed) as u64,
            ),
            (
                "corsair_proxy_idle_connections",
                "Client connections open and waiting for a byte with no HTTP state held: before their first request, or kept alive and idle for 250 ms (HTTP/1.1 without TLS).",
                self.idle.load(Ordering::Relaxed) as u64,
            ),
            (
                "corsair_proxy_parked_connections",
                "Of the idle connections, the ones silent for 250 ms, held outside any task until their next byte.",
                self.parked.load(Ordering::Relaxed) as u64,
            ),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        out
    }
}

fn reason_index(r: Rejection) -> usize {
    let name = r.as_str();
    REASONS
        .iter()
        .position(|x| *x == name)
        .unwrap_or(REASONS.len() - 1)
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until the process ends.
pub(super) fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let metrics = metrics.clone();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let metrics = metrics.clone();
                async move { Ok::<_, std::convert::Infallible>(answer(&metrics, &req)) }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
}

fn answer(metrics: &Metrics, req: &Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/metrics" => {
            let mut r = text(StatusCode::OK, metrics.render());
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        "/healthz" => text(StatusCode::OK, "ok\n".to_owned()),
        "/readyz" if metrics.draining.load(Ordering::Relaxed) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining: finishing requests in flight\n".to_owned(),
        ),
        "/readyz" => text(StatusCode::OK, "ready\n".to_owned()),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: /metrics, /healthz and /readyz are served here\n".to_owned(),
        ),
    }
}

/// Binds the metrics listener.
pub(super) async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} (--metrics): {e}"))
}
