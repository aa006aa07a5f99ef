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
use tokio::sync::{Semaphore, watch};
use tonic::Status;
use tower::{Layer, Service};

use super::is_infrastructure;
use crate::domain::{Error, Reason};

/// Settings of [`ProtectLayer`].
#[derive(Clone, Debug)]
pub struct ProtectLayer {
    permits: Arc<Semaphore>,
    max_deadline: Duration,
    stopping: watch::Receiver<bool>,
}

impl ProtectLayer {
    pub fn new(
        max_concurrent: usize,
        max_deadline: Duration,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent)),
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

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Protect<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if is_infrastructure(request.uri().path()) {
            let future = self.inner.call(request);
            return Box::pin(future);
        }
        if *self.settings.stopping.borrow() {
            return Box::pin(std::future::ready(Ok(refuse(Error::Unavailable(
                Reason::ShuttingDown,
            )))));
        }
        let Ok(permit) = self.settings.permits.clone().try_acquire_owned() else {
            return Box::pin(std::future::ready(Ok(refuse(Error::ResourceExhausted(
                Reason::ServerOverloaded,
            )))));
        };
        let deadline = request
            .headers()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(requested_timeout)
            .map_or(self.settings.max_deadline, |asked| {
                asked.min(self.settings.max_deadline)
            });
        let future = self.inner.call(request);
        Box::pin(async move {
            let outcome = tokio::time::timeout(deadline, future).await;
            drop(permit);
            match outcome {
                Ok(result) => result,
                Err(_) => Ok(refuse(Error::DeadlineExceeded(Reason::DeadlineExceeded))),
            }
        })
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
