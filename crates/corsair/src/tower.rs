//! tower middleware (feature `tower`), for axum, hyper and tonic.
//!
//! ```
//! use axum::{routing::get, Router};
//! use corsair::{tower::CorsLayer, Policy};
//!
//! let cors = Policy::builder()
//!     .allow_origins(["http://localhost:8000"])
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/api", get(|| async { "success" }))
//!     .layer(CorsLayer::new(cors));
//! # Ok::<(), corsair::ConfigErrors>(())
//! ```
//!
//! (This example only shows the wiring; the one of [`CorsLayer::reloadable`] sends requests
//! through a layer and checks the answers.)
//!
//! Deployment rules: put the layer outermost, before authentication (preflights carry no
//! credentials) and before anything that rejects `OPTIONS`; use one CORS layer, not two.
//! The layer answers preflights itself, and writes its headers on every response of the
//! application, errors (404, 500) included, replacing any CORS headers the application set.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::server::{ask, Action, CorsHeaders, Reasons, RequestInfo, Step, Upgrades};
use crate::{PolicyHandle, PolicySet};

/// Where a layer reads its policies from.
#[derive(Clone, Debug)]
enum Source {
    Fixed(Arc<PolicySet>),
    Reloadable(PolicyHandle),
}

/// A [`Layer`] that applies a CORS policy to a service.
#[derive(Clone, Debug)]
#[must_use]
pub struct CorsLayer {
    source: Source,
    upgrades: Upgrades,
}

impl CorsLayer {
    /// A layer enforcing a fixed policy ([`Policy`](crate::Policy)), or fixed policies by path
    /// ([`PolicySet`], e.g. from the same policy file as `corsair proxy`).
    ///
    /// ```
    /// use corsair::{tower::CorsLayer, Policy, PolicySet};
    ///
    /// let private = Policy::builder()
    ///     .allow_origins(["https://app.example.com"])
    ///     .allow_credentials(true)
    ///     .build()?;
    /// let public = Policy::builder().allow_origins(["*"]).build()?;
    /// let layer = CorsLayer::new(PolicySet::single(private).route("/public", public)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(policies: impl Into<PolicySet>) -> Self {
        CorsLayer {
            source: Source::Fixed(Arc::new(policies.into())),
            upgrades: Upgrades::AsRequests,
        }
    }

    /// A layer reading its policies from `handle` on every request, so that
    /// [`PolicyHandle::store`] takes effect at once.
    ///
    /// ```
    /// use corsair::{tower::CorsLayer, Policy, PolicyHandle};
    /// use tower::{Layer, ServiceExt};
    ///
    /// let handle = PolicyHandle::new(Policy::builder().allow_origins(["https://a.example"]).build()?);
    /// let layer = CorsLayer::reloadable(handle.clone());
    /// let app = layer.layer(tower::service_fn(|_: http::Request<String>| async {
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    /// }));
    /// let from_b = || http::Request::get("/").header("origin", "https://b.example").body(String::new());
    ///
    /// tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    ///     let response = app.clone().oneshot(from_b()?).await?;
    ///     assert_eq!(response.headers().get("access-control-allow-origin"), None);
    ///
    ///     handle.store(Policy::builder().allow_origins(["https://b.example"]).build()?);
    ///     let response = app.oneshot(from_b()?).await?;
    ///     assert_eq!(response.headers()["access-control-allow-origin"], "https://b.example");
    ///     Ok::<(), Box<dyn std::error::Error>>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reloadable(handle: PolicyHandle) -> Self {
        CorsLayer {
            source: Source::Reloadable(handle),
            upgrades: Upgrades::AsRequests,
        }
    }

    /// Also refuses upgrade requests (WebSocket handshakes) from origins the policy does not
    /// allow: `403`, traced with its reason, and the application never sees them
    /// ([`answer_upgrade`](crate::server::answer_upgrade) has the rule). Browsers apply no CORS
    /// check to WebSockets, so without this any page can open one with its visitors' cookies.
    /// Off by default: without it, upgrade requests are handled like any other request (CORS
    /// headers added, never refused).
    ///
    /// An origin that only the policy's origin source can admit is looked up as for any other
    /// request (its cache, coalesced misses, the timeout that fails closed), but the handshake
    /// waits for the verdict before it reaches the application: it then goes on, or is refused.
    ///
    /// ```
    /// use corsair::{tower::CorsLayer, Policy};
    /// use tower::{Layer, ServiceExt};
    ///
    /// let cors = Policy::builder().allow_origins(["https://app.example"]).build()?;
    /// let app = CorsLayer::new(cors).refuse_upgrades_from_disallowed_origins().layer(
    ///     tower::service_fn(|_: http::Request<String>| async {
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    ///     }),
    /// );
    /// let handshake = http::Request::get("/ws")
    ///     .header("connection", "Upgrade")
    ///     .header("upgrade", "websocket")
    ///     .header("origin", "https://evil.example")
    ///     .body(String::new())?;
    /// let response = tokio::runtime::Builder::new_current_thread()
    ///     .build()?
    ///     .block_on(app.oneshot(handshake))?;
    /// assert_eq!(response.status(), http::StatusCode::FORBIDDEN);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn refuse_upgrades_from_disallowed_origins(mut self) -> Self {
        self.upgrades = Upgrades::RefuseDisallowedOrigins;
        self
    }
}

impl<S> Layer<S> for CorsLayer {
    type Service = CorsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CorsService {
            inner,
            source: self.source.clone(),
            upgrades: self.upgrades,
        }
    }
}

/// The service [`CorsLayer`] wraps around an inner service.
#[derive(Clone, Debug)]
pub struct CorsService<S> {
    inner: S,
    source: Source,
    upgrades: Upgrades,
}

/// `S: Clone`: a handshake held while its origin is looked up is given to the application later,
/// by the ready service that `poll_ready` prepared; a clone takes its place in the layer.
impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for CorsService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, Held<S, ReqBody>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let guard;
        // One snapshot for the whole request: a lookup started in these policies is decided in
        // them, even when a reload swaps the handle's policies meanwhile.
        let policies: &Arc<PolicySet> = match &self.source {
            Source::Fixed(policies) => policies,
            Source::Reloadable(handle) => {
                guard = handle.guard();
                &guard
            }
        };
        let info =
            RequestInfo::at(req.uri().path()).authority(req.uri().authority().map(|a| a.as_str()));
        // What a request the source must decide waits on (a miss, `Resolve` or `Hold`).
        #[cfg(feature = "origin-source")]
        let wait = |lookup| {
            Pending::new(
                lookup,
                policies,
                req.method(),
                req.headers(),
                &info,
                self.upgrades,
            )
        };
        let (action, headers) = match ask(
            policies,
            req.method(),
            req.headers(),
            info,
            self.upgrades,
            Reasons::WhenTraced,
        ) {
            Step::Answer(answer) => answer.into_parts(),
            // A miss: ask the source, then decide. Whether the request is forwarded does not
            // depend on the answer, so an actual request goes on meanwhile.
            #[cfg(feature = "origin-source")]
            Step::Resolve { lookup, action } => {
                let pending = wait(lookup);
                let inner = match action {
                    Action::Forward => Some(Box::pin(self.inner.call(req))),
                    Action::Respond(_) => None,
                };
                return ResponseFuture {
                    state: State::Resolving {
                        pending,
                        inner,
                        response: None,
                        held: None,
                    },
                };
            }
            // An upgrade whose fate depends on the verdict: nothing reaches the application
            // until the lookup ends. The service made ready for it is kept for then.
            #[cfg(feature = "origin-source")]
            Step::Hold { lookup } => {
                let pending = wait(lookup);
                let ready = self.inner.clone();
                let service = std::mem::replace(&mut self.inner, ready);
                return ResponseFuture {
                    state: State::Resolving {
                        pending,
                        inner: None,
                        response: None,
                        held: Some(Held {
                            service,
                            request: req,
                        }),
                    },
                };
            }
            #[cfg(not(feature = "origin-source"))]
            Step::Never(never, _) => match never {},
        };
        let state = match action {
            Action::Forward => State::Inner {
                future: self.inner.call(req),
                headers: Some(headers),
            },
            Action::Respond(status) => {
                let mut response = Response::new(ResBody::default());
                *response.status_mut() = status;
                headers.apply(response.headers_mut());
                State::Answer {
                    answer: Some(response),
                }
            }
        };
        ResponseFuture { state }
    }
}

/// A request waiting for its origin's lookup (feature `origin-source`).
#[cfg(feature = "origin-source")]
type Pending = crate::server::Pending<http::HeaderMap>;

/// Without origin sources no request waits for one.
#[cfg(not(feature = "origin-source"))]
enum Pending {}

/// An upgrade request held while its origin is looked up (feature `origin-source`), with the
/// ready service it goes to if the origin is admitted: part of [`ResponseFuture`]'s type.
pub struct Held<S, ReqBody> {
    #[cfg(feature = "origin-source")]
    service: S,
    #[cfg(feature = "origin-source")]
    request: Request<ReqBody>,
    #[cfg(not(feature = "origin-source"))]
    _never: std::convert::Infallible,
    #[cfg(not(feature = "origin-source"))]
    _types: std::marker::PhantomData<fn() -> (S, ReqBody)>,
}

impl<S, ReqBody> std::fmt::Debug for Held<S, ReqBody> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held").finish_non_exhaustive()
    }
}

pin_project! {
    /// The future of [`CorsService`].
    pub struct ResponseFuture<F, B, H> {
        #[pin]
        state: State<F, B, H>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B, H> {
        Inner { #[pin] future: F, headers: Option<CorsHeaders> },
        Answer { answer: Option<Response<B>> },
        Resolving {
            pending: Box<Pending>,
            inner: Option<Pin<Box<F>>>,
            response: Option<Response<B>>,
            held: Option<H>,
        },
    }
}

/// What a resolved request becomes.
#[cfg_attr(not(feature = "origin-source"), allow(dead_code))]
enum Next<F, B> {
    Done(Response<B>),
    /// A held upgrade the engine lets through: the application's future, then these headers.
    Forward(F, CorsHeaders),
}

impl<S, ReqBody, F, B, E> Future for ResponseFuture<F, B, Held<S, ReqBody>>
where
    S: Service<Request<ReqBody>, Future = F>,
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    // Without origin sources nothing is resolved: the loop never goes round.
    #[cfg_attr(
        not(feature = "origin-source"),
        allow(unreachable_code, unused_variables, clippy::never_loop)
    )]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            let next = match state.as_mut().project() {
                StateProj::Inner { future, headers } => {
                    let mut response = ready!(future.poll(cx))?;
                    if let Some(h) = headers.take() {
                        h.apply(response.headers_mut());
                    }
                    return Poll::Ready(Ok(response));
                }
                StateProj::Answer { answer } => {
                    return Poll::Ready(Ok(answer.take().unwrap_or_default()))
                }
                #[cfg(not(feature = "origin-source"))]
                StateProj::Resolving { pending, .. } => match **pending {},
                #[cfg(feature = "origin-source")]
                StateProj::Resolving {
                    pending,
                    inner,
                    response,
                    held,
                } => {
                    let looked_up = pending.poll_lookup(cx);
                    if let Some(future) = inner {
                        let done = ready!(future.as_mut().poll(cx))?;
                        *response = Some(done);
                        *inner = None;
                    }
                    ready!(looked_up);
                    let (action, headers) = pending.answer().into_parts();
                    match (response.take(), held.take(), action) {
                        (Some(forwarded), _, _) => {
                            let mut out = forwarded;
                            headers.apply(out.headers_mut());
                            return Poll::Ready(Ok(out));
                        }
                        (None, Some(mut h), Action::Forward) => {
                            Next::Forward(h.service.call(h.request), headers)
                        }
                        (None, _, action) => {
                            let status = match action {
                                Action::Respond(status) => status,
                                // The engine forwards or answers an ordinary request whatever
                                // the origin's verdict, so one answered without the
                                // application cannot become a forward.
                                Action::Forward => http::StatusCode::INTERNAL_SERVER_ERROR,
                            };
                            let mut answer = Response::new(B::default());
                            *answer.status_mut() = status;
                            headers.apply(answer.headers_mut());
                            Next::Done(answer)
                        }
                    }
                }
            };
            match next {
                Next::Done(response) => return Poll::Ready(Ok(response)),
                Next::Forward(future, headers) => state.set(State::Inner {
                    future,
                    headers: Some(headers),
                }),
            }
        }
    }
}
