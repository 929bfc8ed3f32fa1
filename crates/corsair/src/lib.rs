//! # corsair
//!
//! Cross-Origin Resource Sharing, both sides, as browsers do it.
//!
//! - [`Policy`]: a policy, validated and compiled once by [`Policy::builder`]. Every configuration
//!   problem comes back at once as [`ConfigErrors`], each with a stable [`ErrorCode`] and a fix.
//! - [`PolicySet`]: policies by path prefix (routes), for a service or a proxy.
//! - [`server`]: the engine that turns a request into a [`server::Decision`]: forward and decorate,
//!   or answer a preflight. Pure, allocation-free on the paths browsers take. Library users call
//!   [`Policy::decide`]; middleware calls [`server::ask`], the one entry point for adapters,
//!   which picks the route's policy, applies the rules for WebSocket handshakes and origin
//!   sources, and traces refusals.
//! - [`tower`] (feature `tower`): middleware for axum, hyper and tonic: a complete adapter.
//! - `actix` (feature `actix`): middleware for actix-web 4, the same behaviour; the engine reads
//!   actix's `http` 0.2 headers in place through [`server::Headers`].
//! - [`PolicyHandle`]: replace a policy or a whole [`PolicySet`] atomically while serving.
//! - `config` (feature `serde`): policy files in TOML, read into a [`PolicySet`].
//! - [`browser`]: the browser side, evaluating a fetch as Chromium and Firefox do, with
//!   Chromium's console messages.
//! - [`audit`]: finding CORS misconfigurations in a live server's answers, judged by what a
//!   browser would let an attacker's page read (the classes, probes and verdicts; no I/O).
//! - [`origin`]: request origins, parsed as browsers serialize them.
//!
//! # Example: the explainer's server
//!
//! A server on `localhost:9000` that lets pages from `http://localhost:8000` read `/api`:
//!
//! ```
//! # #[cfg(feature = "tower")] {
//! use axum::{routing::get, Json, Router};
//! use corsair::{tower::CorsLayer, Policy};
//!
//! let cors = Policy::builder()
//!     .allow_origins(["http://localhost:8000"])
//!     .build()
//!     .expect("a valid policy");
//! let app: Router = Router::new()
//!     .route("/api", get(|| async { Json(serde_json::json!({ "msg": "success" })) }))
//!     .layer(CorsLayer::new(cors));
//! # }
//! ```
//!
//! # Example: the same server in actix-web
//!
//! The same policy type, the same answers (feature `actix`):
//!
//! ```
//! # #[cfg(feature = "actix")] {
//! use actix_web::{test, web, App, HttpResponse};
//! use corsair::{actix::Cors, Policy};
//!
//! let cors = Cors::new(Policy::builder().allow_origins(["http://localhost:8000"]).build().expect("a valid policy"));
//! // `HttpServer::new(factory)` calls the factory once per worker: clone the middleware into it.
//! let factory = move || {
//!     App::new()
//!         .wrap(cors.clone())
//!         .route("/api", web::get().to(|| async { HttpResponse::Ok().json(serde_json::json!({ "msg": "success" })) }))
//! };
//! actix_web::rt::System::new().block_on(async {
//!     let app = test::init_service(factory()).await;
//!     let request = test::TestRequest::get()
//!         .uri("/api")
//!         .insert_header(("origin", "http://localhost:8000"))
//!         .to_request();
//!     let response = test::call_service(&app, request).await;
//!     let allowed = response.headers().get("access-control-allow-origin");
//!     assert_eq!(allowed.and_then(|v| v.to_str().ok()), Some("http://localhost:8000"));
//! });
//! # }
//! ```
//!
//! # Example: a configuration mistake
//!
//! ```
//! use corsair::{Policy, ErrorCode};
//!
//! let err = Policy::builder()
//!     .allow_origins(["*"])
//!     .allow_credentials(true)
//!     .build()
//!     .unwrap_err();
//! assert_eq!(err.codes(), [ErrorCode::CredentialsWithAnyOrigin]);
//! println!("{err}");
//! ```

#[cfg(feature = "actix")]
pub mod actix;
pub mod audit;
pub mod browser;
#[cfg(feature = "serde")]
pub mod config;
mod error;
pub mod origin;
#[cfg(feature = "origin-source")]
pub mod origin_source;
mod policy;
mod reload;
pub mod server;
mod syntax;
#[cfg(feature = "tower")]
pub mod tower;

pub use error::{ConfigError, ConfigErrors, ConfigNote, ErrorCode, NoteCode};
pub use policy::set::PolicySet;
pub use policy::{OriginRequest, Policy, PolicyBuilder};
pub use reload::PolicyHandle;
