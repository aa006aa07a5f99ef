//! The gRPC transport: thin handlers that read the caller, convert the
//! request, make one call into `service`, and convert the reply.

pub mod authorization;
pub mod codec;
pub mod convert;
pub mod event;
pub mod membership;
pub mod organization;
pub mod status;
