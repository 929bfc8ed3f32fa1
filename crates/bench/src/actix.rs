//! actix-web: the same scenarios at the actix service level: bare, with actix-cors, and with
//! corsair's actix middleware.

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::test::{init_service, TestRequest};
use actix_web::{web, App, HttpResponse};

use crate::{exact_origins, pattern_parents, ready, Scenario};

/// One request, start to finish: shows the response's status and headers to the inspector
/// (which the benchmarks leave empty), then drops it as a server would, its head going back to
/// actix's pool. `false` if the service did not answer at once.
pub type Call = Box<dyn FnMut(&mut dyn FnMut(u16, &HeaderMap)) -> bool>;

/// Prepared actix services: call each once per request.
pub struct ActixBench {
    /// The actix system the services were built in; kept alive while they are used.
    pub system: actix_rt::SystemRunner,
    /// One request through the bare application.
    pub floor: Call,
    /// One request through the bare application, then inserting by hand exactly the headers
    /// corsair adds: the bare cost of the headers.
    pub insert_only: Call,
    /// One request through actix-cors.
    pub cors: Call,
    /// One request through corsair's actix middleware.
    pub corsair: Call,
}

fn show<B>(
    response: Option<Result<ServiceResponse<B>, actix_web::Error>>,
    inspect: &mut dyn FnMut(u16, &HeaderMap),
) -> bool {
    match response {
        Some(Ok(r)) => inspect(r.status().as_u16(), r.headers()),
        Some(Err(e)) => {
            let r = e.error_response();
            inspect(r.status().as_u16(), r.headers());
        }
        None => return false,
    }
    true
}

/// A scenario's request in actix's types, made once: each request clones its values, which
/// share their buffers as the values actix's HTTP/1 parser cuts out of its read buffer do.
#[derive(Clone)]
struct ActixRequest {
    method: actix_web::http::Method,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ActixRequest {
    fn new(s: &Scenario) -> Self {
        ActixRequest {
            method: actix_web::http::Method::from_bytes(s.method.as_str().as_bytes())
                .unwrap_or(actix_web::http::Method::GET),
            headers: s
                .headers
                .iter()
                .filter_map(|(k, v)| {
                    Some((
                        HeaderName::from_bytes(k.as_str().as_bytes()).ok()?,
                        HeaderValue::from_bytes(v.as_bytes()).ok()?,
                    ))
                })
                .collect(),
        }
    }

    fn build(&self) -> actix_http::Request {
        let mut r = TestRequest::default().method(self.method.clone());
        for (k, v) in &self.headers {
            r = r.append_header((k.clone(), v.clone()));
        }
        r.to_request()
    }
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

/// Builds the services for a scenario.
///
/// # Errors
/// Only if corsair refuses the scenario's policy.
pub fn prepare(s: &Scenario) -> Result<ActixBench, corsair::ConfigErrors> {
    let system = actix_rt::System::new();
    let hello = || web::to(|| async { HttpResponse::Ok().finish() });
    let floor_svc =
        std::rc::Rc::new(system.block_on(init_service(App::new().default_service(hello()))));
    let cors_svc = system.block_on(init_service(
        App::new().wrap(actix_cors(s)).default_service(hello()),
    ));
    let corsair_svc = system.block_on(init_service(
        App::new()
            .wrap(corsair::actix::Cors::new(crate::corsair_policy(s)?))
            .default_service(hello()),
    ));
    // corsair's headers for this scenario, in actix's types, made once.
    let added: Vec<(HeaderName, HeaderValue)> = crate::added_headers(s)?
        .into_iter()
        .filter_map(|(k, v)| {
            Some((
                HeaderName::from_bytes(k.as_str().as_bytes()).ok()?,
                HeaderValue::from_bytes(v.as_bytes()).ok()?,
            ))
        })
        .collect();
    let request = ActixRequest::new(s);
    let (s1, s2, s3, s4) = (request.clone(), request.clone(), request.clone(), request);
    let floor_svc2 = floor_svc.clone();
    Ok(ActixBench {
        system,
        floor: Box::new(move |inspect| show(ready(floor_svc.call(s1.build())), inspect)),
        insert_only: Box::new(move |inspect| {
            let response = ready(floor_svc2.call(s2.build())).map(|r| {
                r.map(|mut r| {
                    for (k, v) in &added {
                        r.headers_mut().append(k.clone(), v.clone());
                    }
                    r
                })
            });
            show(response, inspect)
        }),
        cors: Box::new(move |inspect| show(ready(cors_svc.call(s3.build())), inspect)),
        corsair: Box::new(move |inspect| show(ready(corsair_svc.call(s4.build())), inspect)),
    })
}
