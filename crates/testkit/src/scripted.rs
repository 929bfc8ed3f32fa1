//! A scripted server: for each case id, fixed answers to the preflight and to the actual request
//! (and to one redirect hop), so that browsers and corsair's engine see the same responses.
//!
//! Paths: `/c/{id}` is the first hop, `/c/{id}/r` the redirect target. `OPTIONS` gets the hop's
//! preflight script, any other method its actual script.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, Method, Response, StatusCode};
use axum::routing::any;
use axum::Router;

/// One scripted response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// The status.
    pub status: u16,
    /// Header lines, in order; repeated names give repeated lines.
    pub headers: Vec<(String, String)>,
}

/// The answers for one case.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// The answer to the first hop's preflight.
    pub preflight: Answer,
    /// The answer to the first hop's actual request.
    pub actual: Answer,
    /// The answer to the redirect target's preflight.
    pub hop_preflight: Answer,
    /// The answer to the redirect target's actual request.
    pub hop_actual: Answer,
}

type Scripts = Arc<RwLock<HashMap<String, Script>>>;

/// A running scripted server on 127.0.0.1.
pub struct ScriptedServer {
    port: u16,
    scripts: Scripts,
}

impl ScriptedServer {
    /// Starts the server on an ephemeral loopback port.
    ///
    /// # Errors
    /// When no port can be bound.
    pub async fn start() -> Result<ScriptedServer, String> {
        let scripts: Scripts = Arc::default();
        let app = Router::new()
            .route("/c/{id}", any(first))
            .route("/c/{id}/r", any(hop))
            .with_state(scripts.clone());
        let port = crate::serve_loopback(app, "scripted server").await?;
        Ok(ScriptedServer { port, scripts })
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sets the script of a case.
    pub fn set(&self, id: &str, script: Script) {
        self.scripts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.to_owned(), script);
    }
}

fn answer(a: &Answer) -> Response<Body> {
    let mut r = Response::new(Body::from("ok"));
    *r.status_mut() = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in &a.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            r.headers_mut().append(k, v);
        }
    }
    r
}

fn lookup(scripts: &Scripts, id: &str, pick: impl Fn(&Script) -> &Answer) -> Response<Body> {
    let guard = scripts
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match guard.get(id) {
        Some(s) => answer(pick(s)),
        None => {
            let mut r = Response::new(Body::from(format!("no script for {id}")));
            *r.status_mut() = StatusCode::NOT_FOUND;
            r
        }
    }
}

async fn first(State(s): State<Scripts>, method: Method, Path(id): Path<String>) -> Response<Body> {
    if method == Method::OPTIONS {
        lookup(&s, &id, |c| &c.preflight)
    } else {
        lookup(&s, &id, |c| &c.actual)
    }
}

async fn hop(State(s): State<Scripts>, method: Method, Path(id): Path<String>) -> Response<Body> {
    if method == Method::OPTIONS {
        lookup(&s, &id, |c| &c.hop_preflight)
    } else {
        lookup(&s, &id, |c| &c.hop_actual)
    }
}
