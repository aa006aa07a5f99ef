//! gRPC-Web (binary and text), with tonic-web, for requests that are
//! gRPC-Web; everything else goes past it untouched.
//!
//! tonic-web's own service answers HTTP/1.1 requests that are not gRPC-Web
//! with 400, which would shut out Connect over HTTP/1.1 (curl's default):
//! so only gRPC-Web requests are routed through it.

use std::task::{Context, Poll};

use futures::future::{Either, MapOk, TryFutureExt as _};
use http::{Request, Response, header::CONTENT_TYPE};
use tonic::body::Body;
use tonic_web::{GrpcWebLayer, GrpcWebService};
use tower::{Layer, Service};

/// Adds [`GrpcWeb`] around a service.
#[derive(Clone, Debug, Default)]
pub struct GrpcWebOnlyLayer;

impl<S> Layer<S> for GrpcWebOnlyLayer {
    type Service = GrpcWeb<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcWeb { inner }
    }
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct GrpcWeb<S> {
    inner: S,
}

/// Whether `request` is gRPC-Web: its content type is one of
/// `application/grpc-web`, `application/grpc-web+proto`,
/// `application/grpc-web-text` and `application/grpc-web-text+proto`.
fn is_grpc_web<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc-web"))
}

fn to_body<B>(response: Response<B>) -> Response<Body>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    response.map(Body::new)
}

impl<S, ResBody> Service<Request<Body>> for GrpcWeb<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>> + Clone,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError> + std::fmt::Display,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<
        <GrpcWebService<S> as Service<Request<Body>>>::Future,
        MapOk<S::Future, fn(Response<ResBody>) -> Response<Body>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if is_grpc_web(&request) {
            // Hand the service made ready above to tonic-web, keeping a
            // clone for the next call (tower's clone-and-swap idiom).
            let clone = self.inner.clone();
            let ready = std::mem::replace(&mut self.inner, clone);
            Either::Left(GrpcWebLayer::new().layer(ready).call(request))
        } else {
            let to_body: fn(Response<ResBody>) -> Response<Body> = to_body;
            Either::Right(self.inner.call(request).map_ok(to_body))
        }
    }
}
