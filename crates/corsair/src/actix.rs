//! actix-web 4 middleware (feature `actix`): [`Cors`], the same policies and the same behaviour
//! as the tower layer.
//!
//! ```
//! use actix_web::{web, App, HttpResponse};
//! use corsair::{actix::Cors, Policy};
//!
//! let cors = Cors::new(Policy::builder().allow_origins(["http://localhost:8000"]).build()?);
//! // `HttpServer::new` calls this factory once per worker thread: clone the middleware into it.
//! let app = move || {
//!     App::new()
//!         .wrap(cors.clone())
//!         .route("/api", web::get().to(|| async { HttpResponse::Ok().body("success") }))
//! };
//! # let _ = app;
//! # Ok::<(), corsair::ConfigErrors>(())
//! ```
//!
//! (The example of [`Cors::reloadable`] sends requests through the middleware and checks the
//! answers.)
//!
//! The middleware is named `Cors`, as actix-cors's is, so that `App::new().wrap(Cors::…)` reads
//! the same after a migration; the tower layer keeps tower's `…Layer` naming.
//!
//! Deployment rules: wrap it last, so that it is the outermost middleware (actix runs the last
//! `wrap` first), before authentication (preflights carry no credentials) and before anything
//! that rejects `OPTIONS`; use one CORS middleware, not two. It answers preflights itself, and
//! writes its headers on every response of the application, errors included: a handler's error
//! response (404, 500), and the response actix makes later from an error that an inner
//! middleware or service returned (through [`actix_web::Error::add_response_mapper`], so the
//! error still reaches the loggers outside). Any CORS headers the application set are replaced.
//!
//! The engine reads actix's `HeaderMap` and `Method` (`http` 0.2) as they are, through
//! [`Headers`](crate::server::Headers): no header is converted or copied, and the policy's values are written from
//! `'static` buffers prepared when it was built.

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{Error, HttpResponse};
use pin_project_lite::pin_project;

use crate::server::{
    ask, impl_headers, Action, CorsHeaders, Name, Reasons, RequestInfo, Step, Upgrades,
};
use crate::{PolicyHandle, PolicySet};

/// Where a middleware reads its policies from.
#[derive(Clone, Debug)]
enum Source {
    Fixed(Arc<PolicySet>),
    Reloadable(PolicyHandle),
}

/// actix-web middleware applying a CORS policy: give it to [`App::wrap`](actix_web::App::wrap)
/// (or a scope's or resource's `wrap`). Cheap to clone: clones share the policies.
#[derive(Clone, Debug)]
#[must_use]
pub struct Cors {
    source: Source,
    upgrades: Upgrades,
}

impl Cors {
    /// Middleware enforcing a fixed policy ([`Policy`](crate::Policy)), or fixed policies by path
    /// ([`PolicySet`], e.g. from the same policy file as `corsair proxy`).
    ///
    /// ```
    /// use corsair::{actix::Cors, Policy, PolicySet};
    ///
    /// let private = Policy::builder()
    ///     .allow_origins(["https://app.example.com"])
    ///     .allow_credentials(true)
    ///     .build()?;
    /// let public = Policy::builder().allow_origins(["*"]).build()?;
    /// let cors = Cors::new(PolicySet::single(private).route("/public", public)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(policies: impl Into<PolicySet>) -> Self {
        Cors {
            source: Source::Fixed(Arc::new(policies.into())),
            upgrades: Upgrades::AsRequests,
        }
    }

    /// Middleware reading its policies from `handle` on every request, so that
    /// [`PolicyHandle::store`] takes effect at once, in every worker.
    ///
    /// ```
    /// use actix_web::{test, web, App, HttpResponse};
    /// use corsair::{actix::Cors, Policy, PolicyHandle};
    ///
    /// let handle = PolicyHandle::new(Policy::builder().allow_origins(["https://a.example"]).build()?);
    /// let cors = Cors::reloadable(handle.clone());
    ///
    /// actix_web::rt::System::new().block_on(async {
    ///     let app = test::init_service(
    ///         App::new().wrap(cors).default_service(web::to(HttpResponse::Ok)),
    ///     )
    ///     .await;
    ///     let from_b = || test::TestRequest::get().insert_header(("origin", "https://b.example"));
    ///
    ///     let response = test::call_service(&app, from_b().to_request()).await;
    ///     assert_eq!(response.headers().get("access-control-allow-origin"), None);
    ///
    ///     handle.store(Policy::builder().allow_origins(["https://b.example"]).build()?);
    ///     let response = test::call_service(&app, from_b().to_request()).await;
    ///     let allowed = response.headers().get("access-control-allow-origin");
    ///     assert_eq!(allowed.unwrap(), "https://b.example");
    ///     Ok::<(), Box<dyn std::error::Error>>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reloadable(handle: PolicyHandle) -> Self {
        Cors {
            source: Source::Reloadable(handle),
            upgrades: Upgrades::AsRequests,
        }
    }

    /// Also refuses upgrade requests (WebSocket handshakes) from origins the policy does not
    /// allow: `403`, traced with its reason, and the application never sees them
    /// ([`answer_upgrade`](crate::server::answer_upgrade) has the rule), as the tower layer's
    /// option of the same name. Browsers apply no CORS check to WebSockets, so without this
    /// any page can open one with its visitors' cookies. Off by default: without it, upgrade
    /// requests are handled like any other request (CORS headers added, never refused).
    ///
    /// An origin that only the policy's origin source can admit is looked up as for any other
    /// request (its cache, coalesced misses, the timeout that fails closed), but the handshake
    /// waits for the verdict before it reaches the application: it then goes on, or is refused.
    ///
    /// ```
    /// use actix_web::{test, web, App, HttpResponse};
    /// use corsair::{actix::Cors, Policy};
    ///
    /// let cors = Policy::builder().allow_origins(["https://app.example"]).build()?;
    /// let cors = Cors::new(cors).refuse_upgrades_from_disallowed_origins();
    ///
    /// actix_web::rt::System::new().block_on(async {
    ///     let app = test::init_service(App::new().wrap(cors).default_service(web::to(HttpResponse::Ok))).await;
    ///     let handshake = test::TestRequest::get()
    ///         .uri("/ws")
    ///         .insert_header(("connection", "Upgrade"))
    ///         .insert_header(("upgrade", "websocket"))
    ///         .insert_header(("origin", "https://evil.example"))
    ///         .to_request();
    ///     let response = test::call_service(&app, handshake).await;
    ///     assert_eq!(response.status(), actix_web::http::StatusCode::FORBIDDEN);
    /// });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn refuse_upgrades_from_disallowed_origins(mut self) -> Self {
        self.upgrades = Upgrades::RefuseDisallowedOrigins;
        self
    }
}

impl<S, B> Transform<S, ServiceRequest> for Cors
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = CorsMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<CorsMiddleware<S>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(CorsMiddleware {
            service: Rc::new(service),
            source: self.source.clone(),
            upgrades: self.upgrades,
        }))
    }
}

/// The service [`Cors`] wraps around the application (or an inner middleware).
#[derive(Debug)]
pub struct CorsMiddleware<S> {
    // Shared with the handshakes held while their origin is looked up.
    service: Rc<S>,
    source: Source,
    upgrades: Upgrades,
}

/// `S: 'static`: a handshake held while its origin is looked up is given to the application
/// later, by the future, which shares the service.
impl<S, B> Service<ServiceRequest> for CorsMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = CorsFuture<S::Future, B>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
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
        let info = RequestInfo::at(req.path()).authority(req.uri().authority().map(|a| a.as_str()));
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
                let (inner, request) = match action {
                    Action::Forward => (Some(Box::pin(self.service.call(req))), None),
                    Action::Respond(_) => (None, Some(req)),
                };
                let state = State::Resolving {
                    pending,
                    inner,
                    result: None,
                    request,
                    held: None,
                };
                return CorsFuture { state };
            }
            // An upgrade whose fate depends on the verdict: nothing reaches the application
            // until the lookup ends, then the request goes to it or is refused.
            #[cfg(feature = "origin-source")]
            Step::Hold { lookup } => {
                let pending = wait(lookup);
                let service = Rc::clone(&self.service);
                let state = State::Resolving {
                    pending,
                    inner: None,
                    result: None,
                    request: Some(req),
                    held: Some(Box::new(move |req| service.call(req))),
                };
                return CorsFuture { state };
            }
            #[cfg(not(feature = "origin-source"))]
            Step::Never(never, _) => match never {},
        };
        let state = match action {
            Action::Forward => State::Inner {
                future: self.service.call(req),
                headers: Some(headers),
            },
            Action::Respond(status) => {
                let mut response = HttpResponse::new(actix_status(status));
                headers.apply(response.headers_mut());
                State::Answer {
                    answer: Some(req.into_response(response).map_into_right_body()),
                }
            }
        };
        CorsFuture { state }
    }
}

/// The engine's status in actix's type. Both crates accept exactly the codes 100 to 999, so
/// this conversion never fails.
fn actix_status(status: http::StatusCode) -> StatusCode {
    StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A request waiting for its origin's lookup (feature `origin-source`).
#[cfg(feature = "origin-source")]
type Pending = crate::server::Pending<HeaderMap>;

/// A held handshake's way to the application, once its origin is admitted.
type Held<F> = Box<dyn FnOnce(ServiceRequest) -> F>;

/// Without origin sources no request waits for one.
#[cfg(not(feature = "origin-source"))]
enum Pending {}

pin_project! {
    /// The future of [`CorsMiddleware`].
    pub struct CorsFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Inner { #[pin] future: F, headers: Option<CorsHeaders<HeaderValue>> },
        Answer { answer: Option<ServiceResponse<EitherBody<B>>> },
        Resolving {
            pending: Box<Pending>,
            // The application's future while it runs, then its result.
            inner: Option<Pin<Box<F>>>,
            result: Option<Result<ServiceResponse<B>, Error>>,
            // A request the middleware answers itself, or a held handshake, until the origin
            // is resolved.
            request: Option<ServiceRequest>,
            held: Option<Held<F>>,
        },
    }
}

impl<F, B> Future for CorsFuture<F, B>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, Error>;

    // Without origin sources nothing is resolved: the loop never goes round.
    #[cfg_attr(
        not(feature = "origin-source"),
        allow(unreachable_code, unused_variables, clippy::never_loop)
    )]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            // A held handshake the engine lets through: the application's future, and the
            // headers to write on its response.
            let (future, headers) = match state.as_mut().project() {
                StateProj::Inner { future, headers } => {
                    let result = std::task::ready!(future.poll(cx));
                    return Poll::Ready(match headers.take() {
                        Some(cors) => decorate(result, cors),
                        None => result.map(ServiceResponse::map_into_left_body),
                    });
                }
                StateProj::Answer { answer } => {
                    return Poll::Ready(match answer.take() {
                        Some(response) => Ok(response),
                        None => Err(polled_after_completion()),
                    })
                }
                #[cfg(not(feature = "origin-source"))]
                StateProj::Resolving { pending, .. } => match **pending {},
                #[cfg(feature = "origin-source")]
                StateProj::Resolving {
                    pending,
                    inner,
                    result,
                    request,
                    held,
                } => {
                    let looked_up = pending.poll_lookup(cx);
                    if let Some(future) = inner {
                        *result = Some(std::task::ready!(future.as_mut().poll(cx)));
                        *inner = None;
                    }
                    std::task::ready!(looked_up);
                    let (action, cors) = pending.answer().into_parts();
                    match (result.take(), request.take(), held.take(), action) {
                        (Some(forwarded), _, _, _) => {
                            return Poll::Ready(decorate(forwarded, cors))
                        }
                        (None, Some(req), Some(call), Action::Forward) => (call(req), cors),
                        (None, Some(req), _, action) => {
                            // The engine forwards or answers an ordinary request whatever the
                            // origin's verdict, so one answered without the application stays
                            // answered.
                            let status = match action {
                                Action::Respond(status) => actix_status(status),
                                Action::Forward => StatusCode::INTERNAL_SERVER_ERROR,
                            };
                            let mut response = HttpResponse::new(status);
                            cors.apply(response.headers_mut());
                            return Poll::Ready(Ok(req
                                .into_response(response)
                                .map_into_right_body()));
                        }
                        (None, None, _, _) => return Poll::Ready(Err(polled_after_completion())),
                    }
                }
            };
            state.set(State::Inner {
                future,
                headers: Some(headers),
            });
        }
    }
}

/// The application's result with the CORS headers written on it: on its response, or, for an
/// error, on the response actix makes of it later, outside this middleware (the mapper writes
/// the headers then, and on every copy it makes).
fn decorate<B>(
    result: Result<ServiceResponse<B>, Error>,
    cors: CorsHeaders<HeaderValue>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    match result {
        Ok(mut response) => {
            cors.apply(response.headers_mut());
            Ok(response.map_into_left_body())
        }
        Err(mut error) => {
            error.add_response_mapper(move |mut response| {
                cors.clone().apply(response.headers_mut());
                response
            });
            Err(error)
        }
    }
}

fn polled_after_completion() -> Error {
    actix_web::error::ErrorInternalServerError(
        "corsair: the CORS future was polled after it completed",
    )
}

// actix-web's header map and method (`http` 0.2), read and written in place.
impl_headers!(HeaderMap, HeaderValue, Method, actix_name, actix);

/// `Access-Control-Request-Private-Network`, in `http` 0.2's type.
const REQUEST_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-request-private-network");
/// `Access-Control-Allow-Private-Network`, in `http` 0.2's type.
const ALLOW_PRIVATE_NETWORK: HeaderName =
    HeaderName::from_static("access-control-allow-private-network");

/// actix's (`http` 0.2's) name for a header the engine reads or writes.
#[inline]
fn actix_name(name: Name) -> HeaderName {
    match name {
        Name::Origin => header::ORIGIN,
        Name::RequestMethod => header::ACCESS_CONTROL_REQUEST_METHOD,
        Name::RequestHeaders => header::ACCESS_CONTROL_REQUEST_HEADERS,
        Name::RequestPrivateNetwork => REQUEST_PRIVATE_NETWORK,
        Name::AllowOrigin => header::ACCESS_CONTROL_ALLOW_ORIGIN,
        Name::AllowCredentials => header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        Name::ExposeHeaders => header::ACCESS_CONTROL_EXPOSE_HEADERS,
        Name::AllowMethods => header::ACCESS_CONTROL_ALLOW_METHODS,
        Name::AllowHeaders => header::ACCESS_CONTROL_ALLOW_HEADERS,
        Name::MaxAge => header::ACCESS_CONTROL_MAX_AGE,
        Name::AllowPrivateNetwork => ALLOW_PRIVATE_NETWORK,
        Name::Vary => header::VARY,
        Name::Host => header::HOST,
        Name::Upgrade => header::UPGRADE,
        Name::Connection => header::CONNECTION,
    }
}
