//! gRPC statuses as Connect errors: the code's name, the HTTP status the
//! Connect protocol gives it, and the status's details (ErrorInfo,
//! BadRequest...) as `{"type", "value", "debug"}`.

use base64::{Engine as _, engine::general_purpose::STANDARD_NO_PAD};
use http::StatusCode;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Map, Value, json};
use tonic::{Code, Status};

/// The prefix of a detail's type URL that Connect leaves out of `type`.
const TYPE_URL_PREFIX: &str = "type.googleapis.com/";

/// The Connect name of a gRPC code (`not_found`; note `canceled`).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The HTTP status of a Connect unary error with `code`, from the
/// protocol's table.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        // 499 "Client Closed Request", as the protocol says.
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
    }
}

/// The Connect error object for `status`: `code`, `message` (left out when
/// empty) and `details`. A detail whose type roster knows (every
/// `google.rpc` error detail) also carries its JSON form as `debug`.
pub fn body(status: &Status, pool: &DescriptorPool) -> Value {
    let mut error = Map::new();
    error.insert("code".into(), json!(code_name(status.code())));
    if !status.message().is_empty() {
        error.insert("message".into(), json!(status.message()));
    }
    let details = details(status.details(), pool);
    if !details.is_empty() {
        error.insert("details".into(), Value::Array(details));
    }
    Value::Object(error)
}

fn details(encoded: &[u8], pool: &DescriptorPool) -> Vec<Value> {
    if encoded.is_empty() {
        return Vec::new();
    }
    // tonic has already base64-decoded `grpc-status-details-bin`; what
    // is left is a `google.rpc.Status` whose details are `Any`s.
    let Ok(rich) = tonic_types::Status::decode(encoded) else {
        return Vec::new();
    };
    rich.details
        .into_iter()
        .map(|any| {
            let name = any
                .type_url
                .strip_prefix(TYPE_URL_PREFIX)
                .unwrap_or(&any.type_url)
                .to_owned();
            let mut detail = Map::new();
            detail.insert("type".into(), json!(name));
            detail.insert("value".into(), json!(STANDARD_NO_PAD.encode(&any.value)));
            if let Some(debug) = pool
                .get_message_by_name(&name)
                .and_then(|desc| DynamicMessage::decode(desc, any.value.as_slice()).ok())
                .and_then(|message| serde_json::to_value(message).ok())
            {
                detail.insert("debug".into(), debug);
            }
            Value::Object(detail)
        })
        .collect()
}
