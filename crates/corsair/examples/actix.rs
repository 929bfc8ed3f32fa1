//! actix-web with a CORS policy per path: the explainer's API, `GET /api` answering
//! `{"msg":"success"}` to pages of `http://localhost:8000` (which may also send JSON with `PUT`
//! and `DELETE`), and files under `/public` readable by any page.
//!
//! ```text
//! cargo run -p corsair --example actix --features actix
//! curl -i http://localhost:9000/api -H 'Origin: http://localhost:8000'
//! corsair check http://localhost:9000/api --origin http://localhost:8000 -X PUT -H 'Content-Type: application/json'
//! ```

use std::process::ExitCode;

use actix_web::{web, App, HttpResponse, HttpServer};
use corsair::actix::Cors;
use corsair::{Policy, PolicySet};

/// The page that calls this API: scheme, host and port, as the browser sends it in `Origin`.
const APP_ORIGIN: &str = "http://localhost:8000";

/// The CORS middleware: a policy for the API, and one for `/public`. Each route is a policy
/// of its own (as a `[[route]]` of a policy file, which `PolicySet::from_toml` reads), matched
/// on whole path segments: `/public` and `/public/…`, never `/publicity`.
pub fn cors() -> Result<Cors, Box<dyn std::error::Error>> {
    let api = Policy::builder()
        .allow_origins([APP_ORIGIN])
        // GET, HEAD and POST are always allowed; list the others the page uses.
        .allow_methods(["PUT", "DELETE"])
        // `Content-Type: application/json` makes the browser ask first (a preflight).
        .allow_headers(["content-type"])
        .build()?;
    // Public data, no cookies: `Access-Control-Allow-Origin: *`.
    let public = Policy::builder().allow_origins(["*"]).build()?;
    Ok(Cors::new(PolicySet::single(api).route("/public", public)?))
}

/// The routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api",
        web::get().to(|| async {
            HttpResponse::Ok()
                .content_type("application/json")
                .body(r#"{"msg":"success"}"#)
        }),
    )
    .route(
        "/public/{file}",
        web::get().to(|| async { HttpResponse::Ok().body("public") }),
    );
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cors = match cors() {
        Ok(cors) => cors,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    // actix calls this factory once per worker thread: clone the middleware into each (its
    // clones share the policies). The last `wrap` is the outermost middleware: wrap CORS last,
    // so that preflights (which carry no credentials) are answered before anything can refuse
    // them.
    let server = HttpServer::new(move || App::new().configure(routes).wrap(cors.clone()));
    let server = match server.bind(("127.0.0.1", 9000)) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("error: cannot listen on 127.0.0.1:9000: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("http://localhost:9000/api, readable by pages of {APP_ORIGIN}; /public/… by any page");
    if let Err(e) = server.run().await {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
