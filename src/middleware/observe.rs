//! A request id, a span and metrics for every RPC.
//!
//! The request id comes from the caller's `x-request-id` (if it is a sane
//! token) or is generated, is recorded on the span, and is sent back in the
//! reply's `x-request-id`. The span (`rpc`) carries the method, the request
//! id, and later the caller (set by the auth layer), the organization (set
//! where requests are converted), the gRPC status code and the latency; one
//! `rpc finished` event is logged per call. Tokens, email addresses and
//! secrets are never recorded. The span continues the caller's W3C trace
//! (`traceparent`) and carries its `trace_id`, so every log line of the
//! call has it; when traces are exported, it is the exported server span
//! (`telemetry::traces`).
//!
//! The status code of a unary call is known only from the reply's trailers
//! (or, for errors, its headers), so the reply body is wrapped and the call
//! is recorded when the trailers pass (or the body ends or is dropped).

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use http::{HeaderValue, Request, Response};
use http_body::{Body, Frame};
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::{Instrument, Span, field::Empty, info, info_span, instrument::Instrumented};

use super::split_path;
use crate::telemetry::traces;

/// The header carrying the request id, both ways.
pub const REQUEST_ID: &str = "x-request-id";

/// Metric: calls by service, method and status code.
pub const REQUESTS_TOTAL: &str = "roster_rpc_requests_total";
/// Metric: call latency by service and method, in seconds.
pub const REQUEST_DURATION: &str = "roster_rpc_request_duration_seconds";

/// The status code of a reply whose protocol does not carry it in a
/// `grpc-status` header or trailer (a Connect reply), put in the reply's
/// extensions by the layer that knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyCode(pub tonic::Code);

/// A caller-supplied id is kept only if it is short and plain.
fn usable_request_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let plain = !text.is_empty()
        && text.len() <= 128
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    plain.then(|| text.to_owned())
}

/// Adds [`Observe`] around a service.
#[derive(Clone, Debug, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner }
    }
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct Observe<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Observe<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
{
    type Response = Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let started = Instant::now();
        let (service, method) = split_path(request.uri().path());
        let request_id = request
            .headers()
            .get(REQUEST_ID)
            .and_then(usable_request_id)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let span = info_span!(
            "rpc",
            rpc.service = %service,
            rpc.method = %method,
            request_id = %request_id,
            trace_id = Empty,
            caller = Empty,
            org_id = Empty,
            grpc.code = Empty,
            latency_ms = Empty,
            // For the exported span only (recorded when exporting): its
            // name and kind, and the status in OpenTelemetry's terms.
            otel.name = Empty,
            otel.kind = Empty,
            otel.status_code = Empty,
            rpc.system = Empty,
            rpc.grpc.status_code = Empty,
        );
        let exporting = traces::exporting();
        if exporting && !span.is_disabled() {
            span.record("otel.name", format!("{service}/{method}"));
            span.record("otel.kind", "server");
            span.record("rpc.system", "grpc");
        }
        if let Some(trace_id) = traces::continue_trace(&span, request.headers()) {
            span.record("trace_id", tracing::field::display(trace_id));
        }
        // Labels are only built when metrics are on: this is the hot path.
        let labels =
            crate::telemetry::metrics_enabled().then(|| (service.to_owned(), method.to_owned()));
        let header = HeaderValue::from_str(&request_id).ok();
        // Entered while the inner layers' `call` runs, so the auth layer can
        // record the caller on this span.
        let inner = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        ObserveFuture {
            call: Some(Call {
                span: span.clone(),
                started,
                labels,
                code: None,
                exporting,
            }),
            inner: inner.instrument(span),
            header,
        }
    }
}

pin_project! {
    /// The reply of an observed call: adds the request id and wraps the body.
    pub struct ObserveFuture<F> {
        #[pin]
        inner: Instrumented<F>,
        call: Option<Call>,
        header: Option<HeaderValue>,
    }
}

impl<F, B, E> Future for ObserveFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ObservedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.inner.poll(cx) {
            Poll::Ready(Ok(response)) => response,
            Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(header) = this.header.take() {
            response.headers_mut().insert(REQUEST_ID, header);
        }
        let code = response
            .headers()
            .get("grpc-status")
            .and_then(code_of)
            .or_else(|| {
                let ReplyCode(code) = response.extensions().get::<ReplyCode>()?;
                Some(*code as i32)
            });
        let call = this.call.take().map(|call| Call { code, ..call });
        Poll::Ready(Ok(response.map(|body| ObservedBody { inner: body, call })))
    }
}

/// The status code's name, as metrics label and log field (`Ok`, `NotFound`, ...).
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "Ok",
        Code::Cancelled => "Cancelled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// The codes that make a server span an error in OpenTelemetry's gRPC
/// conventions: roster failed, not the caller.
fn is_server_error(code: tonic::Code) -> bool {
    use tonic::Code;
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

fn code_of(value: &HeaderValue) -> Option<i32> {
    value.to_str().ok()?.parse().ok()
}

/// What is needed to record a call once its status is known.
struct Call {
    span: Span,
    started: Instant,
    /// (service, method), when metrics are on.
    labels: Option<(String, String)>,
    /// From the headers (a trailers-only reply), if there.
    code: Option<i32>,
    /// Whether the span is exported (see `telemetry::traces`).
    exporting: bool,
}

impl Call {
    fn finish(self, code: tonic::Code) {
        let latency = self.started.elapsed();
        let code_name = code_name(code);
        if let Some((service, method)) = &self.labels {
            metrics::counter!(REQUESTS_TOTAL, "service" => service.clone(), "method" => method.clone(), "code" => code_name)
                .increment(1);
            metrics::histogram!(REQUEST_DURATION, "service" => service.clone(), "method" => method.clone())
                .record(latency.as_secs_f64());
        }
        if !self.span.is_disabled() {
            self.span.record("grpc.code", code_name);
            if self.exporting {
                self.span.record("rpc.grpc.status_code", code as i64);
                if is_server_error(code) {
                    self.span.record("otel.status_code", "ERROR");
                }
            }
            self.span
                .record("latency_ms", latency.as_secs_f64() * 1_000.0);
            info!(parent: &self.span, "rpc finished");
        }
    }
}

pin_project! {
    /// A reply body that records its call when the status is known.
    pub struct ObservedBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
    }

    impl<B> PinnedDrop for ObservedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            // The reply was dropped before its end: the client went away
            // (or the server is stopping).
            if let Some(call) = this.project().call.take() {
                let code = call.code.map_or(tonic::Code::Cancelled, tonic::Code::from_i32);
                call.finish(code);
            }
        }
    }
}

impl<B: Body> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(call) = this.call.take()
                {
                    let code = trailers
                        .get("grpc-status")
                        .and_then(code_of)
                        .or(call.code)
                        .map_or(tonic::Code::Unknown, tonic::Code::from_i32);
                    call.finish(code);
                }
            }
            Poll::Ready(None) => {
                if let Some(call) = this.call.take() {
                    let code = call.code.map_or(tonic::Code::Ok, tonic::Code::from_i32);
                    call.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(call) = this.call.take() {
                    call.finish(tonic::Code::Internal);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
