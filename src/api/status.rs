//! `domain::Error` → `tonic::Status`: the only place gRPC codes are chosen.
//!
//! Every status carries `google.rpc.ErrorInfo` (a stable `reason`, domain
//! `roster.dev`); invalid input also carries `google.rpc.BadRequest` naming
//! each bad field. Internal errors are logged here with their whole source
//! chain and sent without detail.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tracing::error;

use crate::domain::{Error, Reason};

/// `ErrorInfo.domain` of every roster error.
pub const ERROR_DOMAIN: &str = "roster.dev";

fn status(code: Code, reason: &str, message: &str) -> Status {
    let details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::new());
    Status::with_error_details(code, message, details)
}

impl From<Error> for Status {
    #[deny(clippy::wildcard_enum_match_arm)]
    fn from(err: Error) -> Self {
        match err {
            Error::InvalidArgument(violations) => {
                let message = err_message(&violations);
                let mut details = ErrorDetails::with_error_info(
                    Reason::InvalidArgument.as_str(),
                    ERROR_DOMAIN,
                    HashMap::new(),
                );
                for v in violations {
                    details.add_bad_request_violation(v.field, v.description);
                }
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            Error::Unauthenticated(r) => status(Code::Unauthenticated, r.as_str(), r.message()),
            Error::NotFound(r) => status(Code::NotFound, r.reason(), r.message()),
            Error::PermissionDenied(r) => status(Code::PermissionDenied, r.as_str(), r.message()),
            Error::AlreadyExists(r) => status(Code::AlreadyExists, r.as_str(), r.message()),
            Error::FailedPrecondition(r) => {
                status(Code::FailedPrecondition, r.as_str(), r.message())
            }
            Error::NewOwnerRequired(organizations) => {
                let reason = Reason::NewOwnerRequired;
                let ids = crate::domain::error::list(&organizations);
                // The ids go in ErrorInfo's metadata, for clients to act
                // on, and in the message, for people.
                let metadata = HashMap::from([("organization_ids".to_owned(), ids.clone())]);
                let details =
                    ErrorDetails::with_error_info(reason.as_str(), ERROR_DOMAIN, metadata);
                let message = format!("{}: {ids}", reason.message());
                Status::with_error_details(Code::FailedPrecondition, message, details)
            }
            Error::ResourceExhausted(r) => status(Code::ResourceExhausted, r.as_str(), r.message()),
            Error::Aborted(r) => status(Code::Aborted, r.as_str(), r.message()),
            Error::Unavailable(r) => status(Code::Unavailable, r.as_str(), r.message()),
            Error::DeadlineExceeded(r) => status(Code::DeadlineExceeded, r.as_str(), r.message()),
            Error::Internal(source) => {
                error!(error = %source, chain = ?source, "internal error");
                status(Code::Internal, "INTERNAL", "internal error")
            }
        }
    }
}

fn err_message(violations: &[crate::domain::FieldViolation]) -> String {
    let fields: Vec<String> = violations
        .iter()
        .map(|v| format!("{} {}", v.field, v.description))
        .collect();
    format!("invalid request: {}", fields.join("; "))
}
