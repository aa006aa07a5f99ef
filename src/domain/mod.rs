//! Plain Rust types and rules: no gRPC and no SQL in here.
//!
//! Inputs are parsed into newtypes at the edge ([`input`]), so everything
//! past the transport layer holds values that already obey the input rules.

pub mod clock;
pub mod email;
pub mod error;
pub mod event;
pub mod identity;
pub mod ids;
pub mod input;
pub mod link;
pub mod logo;
pub mod model;
pub mod page;
pub mod permission;
pub mod rules;

pub use clock::now;
pub use error::{Error, FieldViolation, Reason, Resource};
