//! Keeps roster responsive under overload and during shutdown.
//!
//! - While the server is stopping, new calls are refused with
//!   `UNAVAILABLE` (`SHUTTING_DOWN`); calls already running finish.
//! - At most `max_concurrent` calls run at once; one more is refused at once
//!   with `RESOURCE_EXHAUSTED` (`SERVER_OVERLOADED`) rather than queued
//!   without bound, so a client can back off and retry.
//! - Each call gets a deadline: the client's `grpc-timeout`, capped by the
//!   configured maximum. A call past it is answered `DEADLINE_EXCEEDED`.
//!   (For a streaming call the deadline covers its start, not the stream.)
//!
//! Health checks and reflection are exempt, so operators and load balancers
//! can still see a busy or draining server.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Timeout,
};
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tower::{Layer, Service};

use crate::auth::is_public;
use crate::domain::{Error, Reason};

/// Settings of [`ProtectLayer`].
#[derive(Clone, Debug)]
pub struct ProtectLayer {
    /// One permit per call that may run at once.
    slots: Arc<Semaphore>,
    max_deadline: Duration,
    stopping: CancellationToken,
}

impl ProtectLayer {
    pub fn new(max_concurrent: usize, max_deadline: Duration, stopping: CancellationToken) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_concurrent.min(Semaphore::MAX_PERMITS))),
            max_deadline,
            stopping,
        }
    }
}

impl<S> Layer<S> for ProtectLayer {
    type Service = Protect<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Protect {
            inner,
            settings: self.clone(),
        }
    }
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct Protect<S> {
    inner: S,
    settings: ProtectLayer,
}

/// The deadline a `grpc-timeout` header asks for (`<digits><unit>`).
fn requested_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

fn refuse<B: Default>(err: Error) -> Response<B> {
    Status::from(err).into_http()
}

pin_project! {
    /// The reply of a protected call. (A named future rather than a boxed
    /// one: this sits on every call of the hot path.)
    #[project = Projected]
    pub enum ProtectFuture<F, B> {
        /// Exempt: passed through untouched.
        Passthrough { #[pin] inner: F },
        /// Refused before it started.
        Refused { response: Option<Response<B>> },
        /// Running, holding one of the permits (given back when the reply
        /// is dropped), under its deadline.
        Guarded { #[pin] inner: Timeout<F>, slot: OwnedSemaphorePermit },
    }
}

impl<F, B, E> Future for ProtectFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Projected::Passthrough { inner } => inner.poll(cx),
            Projected::Refused { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| refuse(Error::internal("reply polled twice"))))),
            Projected::Guarded { inner, .. } => match inner.poll(cx) {
                Poll::Ready(Ok(result)) => Poll::Ready(result),
                Poll::Ready(Err(_elapsed)) => Poll::Ready(Ok(refuse(Error::DeadlineExceeded(
                    Reason::DeadlineExceeded,
                )))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Protect<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ProtectFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if is_public(request.uri().path()) {
            return ProtectFuture::Passthrough {
                inner: self.inner.call(request),
            };
        }
        let refused = |err| ProtectFuture::Refused {
            response: Some(refuse(err)),
        };
        if self.settings.stopping.is_cancelled() {
            return refused(Error::Unavailable(Reason::ShuttingDown));
        }
        // Never waits: a call over the limit is refused, not queued.
        let Ok(slot) = self.settings.slots.clone().try_acquire_owned() else {
            return refused(Error::ResourceExhausted(Reason::ServerOverloaded));
        };
        let deadline = request
            .headers()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(requested_timeout)
            .map_or(self.settings.max_deadline, |asked| {
                asked.min(self.settings.max_deadline)
            });
        ProtectFuture::Guarded {
            inner: tokio::time::timeout(deadline, self.inner.call(request)),
            slot,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_are_read() {
        assert_eq!(requested_timeout("10S"), Some(Duration::from_secs(10)));
        assert_eq!(requested_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(requested_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(requested_timeout("x"), None);
        assert_eq!(requested_timeout(""), None);
        assert_eq!(requested_timeout("5X"), None);
    }
}
