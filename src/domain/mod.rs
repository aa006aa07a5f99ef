//! Plain Rust types and rules: no gRPC and no SQL in here.
//!
//! Inputs are parsed into newtypes at the edge ([`input`]), so everything
//! past the transport layer holds values that already obey the input rules.

/// `as_str` and `from_db` for an enum whose names strum derives
/// (`IntoStaticStr`, `EnumString`).
macro_rules! stored_names {
    ($($name:ident),+ $(,)?) => {$(
        impl $name {
            /// The stored (and logged, and sent) name.
            pub fn as_str(self) -> &'static str {
                self.into()
            }

            /// Reads a stored name; `None` for anything the schema's CHECK would refuse.
            pub fn from_db(value: &str) -> Option<Self> {
                value.parse().ok()
            }
        }
    )+};
}

pub mod clock;
pub mod email;
pub mod erasure;
pub mod error;
pub mod event;
pub mod identity;
pub mod ids;
pub mod input;
pub mod lifecycle;
pub mod link;
pub mod logo;
pub mod model;
pub mod page;
pub mod permission;
pub mod rules;

pub use clock::now;
pub use error::{Error, FieldViolation, Reason, Resource};
