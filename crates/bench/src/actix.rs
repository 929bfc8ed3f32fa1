//! actix-web: the same scenarios at the actix service level, with and without actix-cors.

use actix_web::dev::Service;
use actix_web::test::{init_service, TestRequest};
use actix_web::{web, App, HttpResponse};

use crate::{exact_origins, pattern_parents, ready, Scenario};

/// A prepared actix service: call it once per request.
pub struct ActixBench {
    /// The actix system the services were built in; kept alive while they are used.
    pub system: actix_rt::SystemRunner,
    /// One request through the bare application; returns the status.
    pub floor: Box<dyn FnMut() -> Option<u16>>,
    /// One request through actix-cors; returns the status.
    pub cors: Box<dyn FnMut() -> Option<u16>>,
}

fn actix_request(s: &Scenario) -> actix_http::Request {
    let mut r = TestRequest::default().method(
        actix_web::http::Method::from_bytes(s.method.as_str().as_bytes())
            .unwrap_or(actix_web::http::Method::GET),
    );
    for (k, v) in &s.headers {
        r = r.insert_header((k.as_str(), v.as_bytes()));
    }
    r.to_request()
}

fn actix_cors(s: &Scenario) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default();
    if s.patterns > 0 {
        let suffixes: Vec<String> = pattern_parents(s.patterns)
            .into_iter()
            .map(|p| format!(".{p}"))
            .collect();
        cors = cors.allowed_origin_fn(move |origin, _| {
            origin.to_str().is_ok_and(|o| {
                o.starts_with("https://")
                    && suffixes.iter().any(|suffix| o.ends_with(suffix.as_str()))
            })
        });
    } else {
        for o in exact_origins(s.exact_origins) {
            cors = cors.allowed_origin(&o);
        }
    }
    cors.allowed_methods(["GET", "POST", "PUT", "DELETE"])
        .allowed_headers(["content-type", "authorization", "x-request-id"])
        .expose_headers(["x-request-id"])
        .supports_credentials()
        .max_age(600)
}

/// Builds both services for a scenario.
pub fn prepare(s: &Scenario) -> ActixBench {
    let system = actix_rt::System::new();
    let floor_svc = system.block_on(init_service(
        App::new().default_service(web::to(|| async { HttpResponse::Ok().finish() })),
    ));
    let cors_svc = system.block_on(init_service(
        App::new()
            .wrap(actix_cors(s))
            .default_service(web::to(|| async { HttpResponse::Ok().finish() })),
    ));
    let (s1, s2) = (s.clone(), s.clone());
    ActixBench {
        system,
        floor: Box::new(move || {
            ready(floor_svc.call(actix_request(&s1)))
                .and_then(Result::ok)
                .map(|r| r.status().as_u16())
        }),
        cors: Box::new(move || {
            ready(cors_svc.call(actix_request(&s2))).map(|r| match r {
                Ok(r) => r.status().as_u16(),
                Err(e) => e.as_response_error().status_code().as_u16(),
            })
        }),
    }
}
