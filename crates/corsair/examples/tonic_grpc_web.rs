//! A tonic gRPC service that browsers call through gRPC-Web, with corsair's CORS layer.
//!
//! Browsers cannot speak gRPC (HTTP/2 trailers are out of a script's reach); they speak
//! gRPC-Web, which `tonic_web::GrpcWebLayer` translates. A gRPC-Web call from a page on another
//! origin is a CORS request like any other, and never a simple one: its `Content-Type`
//! (`application/grpc-web+proto`, `application/grpc-web-text`) is not one a form could send, so
//! the browser first sends a preflight, and the client library adds headers of its own. The
//! policy must therefore:
//!
//! - allow the request headers gRPC-Web clients send: `content-type`, `x-grpc-web`,
//!   `x-user-agent`, and `grpc-timeout` when the call has a deadline (plus any metadata your
//!   own calls attach, such as `authorization`);
//! - expose the response headers the client must read to learn how the call ended:
//!   `grpc-status`, `grpc-message`, `grpc-status-details-bin`. A call that fails before any
//!   message is sent ("trailers-only") carries its status in these headers, and a script reads
//!   only the headers a policy exposes: without them every error reads as an unknown failure.
//!
//! POST, the only method gRPC-Web uses, is always allowed.
//!
//! The service here is written by hand so that the example needs neither `protoc` nor code
//! generation: `Greeter` plays the part of the `GreeterServer` that `tonic-build` generates
//! from a `.proto` file, and `TextCodec` (UTF-8 text messages) that of the protobuf codec. The
//! layers wrap a generated service the same way.
//!
//! ```text
//! cargo run -p corsair --example tonic_grpc_web --features tower
//! curl -i -X OPTIONS http://localhost:9000/hello.Greeter/SayHello -H 'Origin: http://localhost:8000' \
//!   -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: content-type,x-grpc-web'
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut};
use corsair::tower::CorsLayer;
use corsair::{ConfigErrors, Policy};
use hyper_util::rt::TokioIo;
use tonic::body::Body;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::NamedService;
use tonic::Status;
use tonic_web::GrpcWebLayer;
use tower::{Service, ServiceBuilder, ServiceExt};

/// The page allowed to call the service.
const APP_ORIGIN: &str = "http://localhost:8000";

/// The CORS policy a gRPC-Web service needs.
pub fn grpc_web_policy() -> Result<Policy, ConfigErrors> {
    Policy::builder()
        .allow_origins([APP_ORIGIN])
        .allow_headers(["content-type", "x-grpc-web", "x-user-agent", "grpc-timeout"])
        .expose_headers(["grpc-status", "grpc-message", "grpc-status-details-bin"])
        .max_age(Duration::from_secs(600))
        .build()
}

/// The whole stack, outermost first: CORS (answers preflights, decorates every response), then
/// the gRPC-Web translation, then the gRPC service. CORS must come before `GrpcWebLayer`,
/// which refuses an HTTP/1.1 request that is not gRPC-Web (a preflight is an `OPTIONS`
/// without a body) with 400.
pub fn stack(
    policy: Policy,
) -> impl Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<Body>,
    Error = Infallible,
    Future = impl Send,
> + Clone
       + Send {
    ServiceBuilder::new()
        .layer(CorsLayer::new(policy))
        .layer(GrpcWebLayer::new())
        .service(Greeter)
}

/// The gRPC service `hello.Greeter` with one unary method, `SayHello`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Greeter;

/// The method: a name in, a greeting out; an empty name is an `INVALID_ARGUMENT` error.
async fn say_hello(request: tonic::Request<String>) -> Result<tonic::Response<String>, Status> {
    let name = request.into_inner();
    if name.is_empty() {
        return Err(Status::invalid_argument("name is empty"));
    }
    Ok(tonic::Response::new(format!("Hello, {name}!")))
}

impl NamedService for Greeter {
    const NAME: &'static str = "hello.Greeter";
}

impl Service<http::Request<Body>> for Greeter {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // What tonic-build generates: route on the path, decode, call, encode.
        match request.uri().path() {
            "/hello.Greeter/SayHello" => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(TextCodec);
                Ok(grpc.unary(tower::service_fn(say_hello), request).await)
            }),
            _ => Box::pin(async { Ok(Status::unimplemented("no such method").into_http()) }),
        }
    }
}

/// Messages as UTF-8 text (stands in for the protobuf codec).
#[derive(Clone, Copy, Debug, Default)]
pub struct TextCodec;

/// Writes a message's bytes.
#[derive(Debug)]
pub struct TextEncoder;

/// Reads a message's bytes as UTF-8.
#[derive(Debug)]
pub struct TextDecoder;

impl Codec for TextCodec {
    type Encode = String;
    type Decode = String;
    type Encoder = TextEncoder;
    type Decoder = TextDecoder;

    fn encoder(&mut self) -> TextEncoder {
        TextEncoder
    }

    fn decoder(&mut self) -> TextDecoder {
        TextDecoder
    }
}

impl Encoder for TextEncoder {
    type Item = String;
    type Error = Status;

    fn encode(&mut self, item: String, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(item.as_bytes());
        Ok(())
    }
}

impl Decoder for TextDecoder {
    type Item = String;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<String>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| Status::invalid_argument("the message is not UTF-8"))
    }
}

/// Accepts HTTP/1.1 connections on `listener` forever (gRPC-Web works over HTTP/1.1, which is
/// all a browser needs without TLS).
pub async fn serve(listener: tokio::net::TcpListener, policy: Policy) {
    let stack = stack(policy);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                // Out of file descriptors, say: wait instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let stack = stack.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| stack.clone().oneshot(request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let policy = match grpc_web_policy() {
        Ok(policy) => policy,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 9000));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "gRPC-Web: POST http://localhost:9000/hello.Greeter/SayHello, from pages of {APP_ORIGIN}"
    );
    serve(listener, policy).await;
    ExitCode::SUCCESS
}
