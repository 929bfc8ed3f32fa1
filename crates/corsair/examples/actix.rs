//! The explainer's API on actix-web: `GET /api` answers `{"msg":"success"}` to pages from
//! `http://localhost:8000`, and everything under `/public` is readable from any origin.
//!
//! ```sh
//! cargo run -p corsair --features actix --example actix      # serves http://127.0.0.1:9000
//! curl -i http://127.0.0.1:9000/api -H 'Origin: http://localhost:8000'
//! ```

use actix_web::{web, App, HttpResponse, HttpServer};
use corsair::actix::Cors;
use corsair::{Policy, PolicySet};

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Each route of a policy file (`[[route]]`) is a policy of its own; so here.
    let api = Policy::builder()
        .allow_origins(["http://localhost:8000"])
        .allow_methods(["GET", "POST", "PUT", "DELETE"])
        .allow_headers(["content-type"])
        .build()?;
    let public = Policy::builder().allow_origins(["*"]).build()?;
    let cors = Cors::new(PolicySet::single(api).route("/public", public)?);

    println!("API on http://127.0.0.1:9000/api, public files under /public");
    HttpServer::new(move || {
        App::new()
            // The last `wrap` runs first: keep the CORS middleware outermost.
            .wrap(cors.clone())
            .route(
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
            )
    })
    .bind(("127.0.0.1", 9000))?
    .run()
    .await?;
    Ok(())
}
