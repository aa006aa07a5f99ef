//! The Connect protocol (<https://connectrpc.com/docs/protocol/>), unary,
//! as a layer over roster's tonic services: a Connect request becomes the
//! gRPC request it stands for, goes through the same layers and service,
//! and the gRPC reply (message, or status with its details) becomes the
//! Connect reply.
//!
//! - `POST /roster.v1.OrganizationService/GetOrganization`, with
//!   `Content-Type: application/json` (protobuf JSON) or
//!   `application/proto` (binary); `Connect-Protocol-Version: 1` is
//!   optional (so plain curl works) but refused with another value.
//! - `Connect-Timeout-Ms` becomes `grpc-timeout`, so the protect layer
//!   enforces it like any gRPC deadline.
//! - Errors are `{"code", "message", "details"}` with the HTTP status the
//!   protocol gives each code; non-gRPC reply trailers become `trailer-`
//!   headers.
//! - Streaming Connect (`application/connect+json`, `+proto`) and
//!   compressed bodies are answered with `unimplemented`: StreamEvents is
//!   for gRPC and gRPC-Web clients.
//!
//! Requests of any other content type (gRPC, gRPC-Web after its layer) go
//! past untouched.

mod codec;
pub mod error;

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, header};
use http_body_util::{BodyExt as _, Full, Limited};
use prost_reflect::{DescriptorPool, MethodDescriptor};
use tonic::{Code, Status, body::Body};
use tower::{Layer, Service};

pub use self::codec::Codec;
use crate::middleware::observe::ReplyCode;

/// The Connect protocol version roster speaks.
const PROTOCOL_VERSION: &str = "connect-protocol-version";
const TIMEOUT_MS: &str = "connect-timeout-ms";

/// Adds [`Connect`] around a service.
#[derive(Clone, Debug)]
pub struct ConnectLayer {
    pool: DescriptorPool,
    max_message_bytes: usize,
}

impl ConnectLayer {
    /// Connect for the methods in `pool`, with request bodies of at most
    /// `max_message_bytes` (the gRPC message limit, so JSON, which is
    /// larger than the binary it stands for, never gets more room).
    pub fn new(pool: DescriptorPool, max_message_bytes: usize) -> Self {
        Self {
            pool,
            max_message_bytes,
        }
    }
}

impl<S> Layer<S> for ConnectLayer {
    type Service = Connect<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Connect {
            inner,
            pool: self.pool.clone(),
            max_message_bytes: self.max_message_bytes,
        }
    }
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct Connect<S> {
    inner: S,
    pool: DescriptorPool,
    max_message_bytes: usize,
}

/// What a request is, by its method and content type.
enum Kind {
    Unary(Codec),
    Streaming,
    Other,
}

fn kind<B>(request: &Request<B>) -> Kind {
    let Some(content_type) = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return Kind::Other;
    };
    // The media type without parameters (`; charset=utf-8`).
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        _ if request.method() != Method::POST => Kind::Other,
        "application/json" => Kind::Unary(Codec::Json),
        "application/proto" => Kind::Unary(Codec::Proto),
        _ if essence.starts_with("application/connect+") => Kind::Streaming,
        _ => Kind::Other,
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ResBody> Service<Request<Body>> for Connect<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let codec = match kind(&request) {
            Kind::Other => {
                let reply = self.inner.call(request);
                return Box::pin(async move { Ok(reply.await?.map(Body::new)) });
            }
            Kind::Streaming => {
                return Box::pin(std::future::ready(Ok(streaming_unimplemented())));
            }
            Kind::Unary(codec) => codec,
        };
        // The service made ready above goes into the future; a clone stays.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let call = UnaryCall {
            pool: self.pool.clone(),
            codec,
            max_message_bytes: self.max_message_bytes,
        };
        Box::pin(call.run(inner, request))
    }
}

/// One Connect unary call.
struct UnaryCall {
    pool: DescriptorPool,
    codec: Codec,
    max_message_bytes: usize,
}

impl UnaryCall {
    async fn run<S, ResBody>(
        self,
        mut inner: S,
        request: Request<Body>,
    ) -> Result<Response<Body>, S::Error>
    where
        S: Service<Request<Body>, Response = Response<ResBody>>,
        ResBody: http_body::Body<Data = Bytes>,
        ResBody::Error: Into<tonic::codegen::StdError>,
    {
        let (method, grpc_request) = match self.to_grpc(request).await {
            Ok(converted) => converted,
            Err(status) => return Ok(self.error(&status, HeaderMap::new())),
        };
        let reply = inner.call(grpc_request).await?;
        Ok(match self.to_connect(&method, reply).await {
            Ok(reply) => reply,
            Err((status, headers)) => self.error(&status, headers),
        })
    }

    /// The gRPC request a Connect request stands for, and its method.
    async fn to_grpc(
        &self,
        request: Request<Body>,
    ) -> Result<(MethodDescriptor, Request<Body>), Status> {
        let method = self.method(request.uri().path())?;
        let (mut parts, body) = request.into_parts();
        let headers = &mut parts.headers;
        if let Some(version) = headers.get(PROTOCOL_VERSION)
            && version != "1"
        {
            return Err(Status::from(crate::domain::Error::invalid(
                PROTOCOL_VERSION,
                "roster speaks Connect protocol version 1",
            )));
        }
        if let Some(encoding) = headers.get(header::CONTENT_ENCODING)
            && encoding != "identity"
        {
            return Err(Status::unimplemented(
                "compressed Connect requests are not supported: send the body uncompressed",
            ));
        }
        let timeout = headers.get(TIMEOUT_MS).map(grpc_timeout).transpose()?;
        let body = Limited::new(body, self.max_message_bytes)
            .collect()
            .await
            .map_err(
                |err| match err.downcast::<http_body_util::LengthLimitError>() {
                    Ok(_) => Status::out_of_range(format!(
                        "the request body is larger than the limit of {} bytes",
                        self.max_message_bytes
                    )),
                    Err(err) => {
                        Status::cancelled(format!("the request body could not be read: {err}"))
                    }
                },
            )?
            .to_bytes();
        let message = self.codec.decode_request(&method.input(), &body)?;
        for name in [
            header::CONTENT_TYPE,
            header::CONTENT_LENGTH,
            header::CONTENT_ENCODING,
            header::ACCEPT_ENCODING,
            HeaderName::from_static(PROTOCOL_VERSION),
            HeaderName::from_static(TIMEOUT_MS),
            HeaderName::from_static("connect-accept-encoding"),
        ] {
            headers.remove(name);
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        if let Some(timeout) = timeout {
            headers.insert("grpc-timeout", timeout);
        }
        let body = Body::new(Full::new(codec::frame(&message)?));
        Ok((method, Request::from_parts(parts, body)))
    }

    /// The unary method at `path` (`/package.Service/Method`).
    fn method(&self, path: &str) -> Result<MethodDescriptor, Status> {
        let (service, method) = crate::middleware::split_path(path);
        let method = self
            .pool
            .get_service_by_name(service)
            .and_then(|service| service.methods().find(|m| m.name() == method))
            .ok_or_else(|| Status::unimplemented(format!("no method {path}")))?;
        if method.is_client_streaming() || method.is_server_streaming() {
            return Err(Status::unimplemented(format!(
                "{path} streams: call it with gRPC or gRPC-Web (roster serves Connect unary calls only)"
            )));
        }
        Ok(method)
    }

    /// The Connect reply for a gRPC reply, or the status (and the headers
    /// to send with it) when the call failed.
    async fn to_connect<B>(
        &self,
        method: &MethodDescriptor,
        reply: Response<B>,
    ) -> Result<Response<Body>, (Status, HeaderMap)>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<tonic::codegen::StdError>,
    {
        let (parts, body) = reply.into_parts();
        let mut headers = connect_headers(parts.headers.clone());
        // A trailers-only reply carries its status in the headers.
        if let Some(status) = Status::from_header_map(&parts.headers)
            && status.code() != Code::Ok
        {
            return Err((status, headers));
        }
        let collected = body.collect().await.map_err(|err| {
            let err: tonic::codegen::StdError = err.into();
            (
                Status::internal(format!("the reply could not be read: {err}")),
                HeaderMap::new(),
            )
        })?;
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let status = Status::from_header_map(&trailers)
            .or_else(|| Status::from_header_map(&parts.headers))
            .unwrap_or_else(|| Status::internal("a reply without a gRPC status"));
        for (name, value) in connect_headers(trailers).iter() {
            if let Ok(name) = HeaderName::try_from(format!("trailer-{name}")) {
                headers.append(name, value.clone());
            }
        }
        if status.code() != Code::Ok {
            return Err((status, headers));
        }
        let message = codec::unframe(collected.to_bytes())
            .and_then(|message| self.codec.encode_reply(&method.output(), message))
            .map_err(|status| (status, HeaderMap::new()))?;
        let mut response = Response::new(Body::new(Full::new(message)));
        *response.headers_mut() = headers;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.codec.content_type()),
        );
        response.extensions_mut().insert(ReplyCode(Code::Ok));
        Ok(response)
    }

    /// A Connect error reply for `status`: always JSON, whatever the
    /// request's codec, as the protocol says.
    fn error(&self, status: &Status, headers: HeaderMap) -> Response<Body> {
        error_reply(status, headers, &self.pool)
    }
}

fn error_reply(status: &Status, headers: HeaderMap, pool: &DescriptorPool) -> Response<Body> {
    let body = error::body(status, pool).to_string();
    let mut response = Response::new(Body::new(Full::new(Bytes::from(body))));
    *response.status_mut() = error::http_status(status.code());
    *response.headers_mut() = headers;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response.extensions_mut().insert(ReplyCode(status.code()));
    response
}

/// Streaming Connect is not served: an end-of-stream message carrying
/// `unimplemented`, the form a streaming Connect client reads errors in.
fn streaming_unimplemented() -> Response<Body> {
    let status = Status::unimplemented(
        "roster serves Connect unary calls only: follow StreamEvents with gRPC or gRPC-Web",
    );
    let end = serde_json::json!({ "error": {
        "code": error::code_name(status.code()),
        "message": status.message(),
    }})
    .to_string();
    let mut envelope = Vec::with_capacity(5 + end.len());
    // Flag 0b10: the end-of-stream message.
    envelope.push(0b10);
    envelope.extend_from_slice(&u32::try_from(end.len()).unwrap_or(u32::MAX).to_be_bytes());
    envelope.extend_from_slice(end.as_bytes());
    let mut response = Response::new(Body::new(Full::new(Bytes::from(envelope))));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/connect+json"),
    );
    response.extensions_mut().insert(ReplyCode(status.code()));
    response
}

/// The headers of a gRPC reply a Connect client may see: all but gRPC's
/// own (its status, content type and encodings).
fn connect_headers(mut headers: HeaderMap) -> HeaderMap {
    let grpc: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("grpc-") || *name == header::CONTENT_TYPE)
        .cloned()
        .collect();
    for name in grpc {
        headers.remove(name);
    }
    headers.remove(header::CONTENT_LENGTH);
    headers
}

/// `Connect-Timeout-Ms` (1 to 10 digits of milliseconds) as `grpc-timeout`.
fn grpc_timeout(value: &HeaderValue) -> Result<HeaderValue, Status> {
    let invalid = || {
        Status::from(crate::domain::Error::invalid(
            TIMEOUT_MS,
            "must be a positive number of milliseconds, at most 10 digits",
        ))
    };
    let text = value.to_str().map_err(|_| invalid())?;
    if text.is_empty() || text.len() > 10 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    // grpc-timeout allows at most 8 digits: larger values in seconds.
    let millis: u64 = text.parse().map_err(|_| invalid())?;
    let value = if millis < 100_000_000 {
        format!("{millis}m")
    } else {
        format!("{}S", millis / 1000)
    };
    HeaderValue::from_str(&value).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_timeouts_become_grpc_timeouts() {
        for (connect, grpc) in [("1", "1m"), ("2500", "2500m"), ("9999999999", "9999999S")] {
            let value = grpc_timeout(&HeaderValue::from_static(connect)).unwrap();
            assert_eq!(value, grpc, "{connect}");
        }
        for bad in ["", "-1", "1.5", "12345678901", "soon"] {
            let value = HeaderValue::from_str(bad).unwrap();
            assert!(grpc_timeout(&value).is_err(), "{bad:?}");
        }
    }
}
