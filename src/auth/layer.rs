//! The tower layer that authenticates every call.
//!
//! It runs before routing, so no RPC can be reached without it: health and
//! reflection are let through without a token (they reveal nothing about
//! organizations), everything else needs `authorization: Bearer <JWT>`. A
//! layer rather than a tonic interceptor, so it wraps every service at once
//! and an RPC added later is covered without anyone remembering to add it.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::{BoxFuture, Either, FutureExt, Ready, ready};
use http::{HeaderMap, Request, Response};
use tonic::Status;
use tower::{Layer, Service};

use super::{
    Caller,
    policy::{self, Action},
    token::TokenVerifier,
};
use crate::domain::{Error, Reason};

/// Adds [`Auth`] around a service.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    verifier: Arc<TokenVerifier>,
}

impl AuthLayer {
    pub fn new(verifier: Arc<TokenVerifier>) -> Self {
        Self { verifier }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// Verifies the bearer token and stores the [`Caller`] in the request's
/// extensions, or answers `UNAUTHENTICATED` without calling the service.
#[derive(Clone, Debug)]
pub struct Auth<S> {
    inner: S,
    verifier: Arc<TokenVerifier>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Auth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    /// Answered at once, except for a token whose `kid` the JWKS URL may
    /// have gained since the last fetch: that one waits for a refresh.
    type Future = Either<
        Either<S::Future, Ready<Result<S::Response, S::Error>>>,
        BoxFuture<'static, Result<S::Response, S::Error>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        if super::is_public(path) {
            return Either::Left(Either::Left(self.inner.call(request)));
        }
        let refused = |err: Error| Ok(Status::from(err).into_http());
        let token = match bearer_token(request.headers()) {
            Ok(token) => token.to_owned(),
            Err(err) => return Either::Left(Either::Right(ready(refused(err)))),
        };
        let action = Action::from_path(path);
        match self.verifier.verify_now(&token) {
            Ok(Some(caller)) => {
                crate::rpc_span::record_caller(caller.user_id.as_str());
                if let Err(err) = admitted(&caller, action) {
                    return Either::Left(Either::Right(ready(refused(err))));
                }
                request.extensions_mut().insert(caller);
                Either::Left(Either::Left(self.inner.call(request)))
            }
            Ok(None) => {
                // The service was readied for this call: take it, and
                // leave a clone for the next (the usual tower pattern).
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let verifier = self.verifier.clone();
                Either::Right(
                    async move {
                        match verifier.verify_refreshing(&token).await {
                            Ok(caller) => {
                                crate::rpc_span::record_caller(caller.user_id.as_str());
                                if let Err(err) = admitted(&caller, action) {
                                    return refused(err);
                                }
                                request.extensions_mut().insert(caller);
                                inner.call(request).await
                            }
                            Err(err) => refused(err),
                        }
                    }
                    .boxed(),
                )
            }
            Err(err) => Either::Left(Either::Right(ready(refused(err)))),
        }
    }
}

/// [`policy::admit`] for the RPC the path names. A path roster does not
/// serve is left to the router (`UNIMPLEMENTED`).
fn admitted(caller: &Caller, action: Option<Action>) -> Result<(), Error> {
    action.map_or(Ok(()), |action| policy::admit(caller, action))
}

/// The token of `authorization: Bearer <token>`.
fn bearer_token(headers: &HeaderMap) -> Result<&str, Error> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(Error::Unauthenticated(Reason::MissingCredentials))?
        .to_str()
        .map_err(|_| Error::Unauthenticated(Reason::InvalidToken))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(Error::Unauthenticated(Reason::MissingCredentials))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Error::Unauthenticated(Reason::MissingCredentials));
    }
    Ok(token.trim())
}
