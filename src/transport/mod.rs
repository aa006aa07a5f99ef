//! The protocols browsers, curl and TypeScript services call roster with,
//! besides gRPC, all on the gRPC port, outside in:
//!
//! 1. [`cors`]: answers CORS preflights and marks replies for the
//!    configured origins (off when none are).
//! 2. [`grpc_web`]: translates gRPC-Web (binary and text) to gRPC and back.
//! 3. `middleware::observe`: request id, span, log line and metrics (so
//!    gRPC-Web calls are seen as the gRPC calls they became).
//! 4. [`connect`]: translates Connect unary calls (JSON or binary) to gRPC
//!    and back; inside observe, which takes its status code from the reply.
//! 5. `middleware::protect` and `auth::layer`, then the tonic services.
//!
//! Every protocol ends up as a gRPC call to the same tonic services, so
//! authentication, limits, deadlines and errors are those of gRPC.
//! [`openapi`] describes the Connect JSON surface from the same
//! descriptors.
//!
//! Beneath them all, [`listener`] accepts the connections (TLS, the
//! connection cap, the handshake deadline of [`handshake`]).

pub mod connect;
pub mod cors;
pub mod grpc_web;
pub mod handshake;
pub mod listener;
pub mod openapi;

use std::sync::OnceLock;

use prost_reflect::DescriptorPool;

use crate::pb::FILE_DESCRIPTOR_SET;

/// roster's protos and their imports, and gRPC health, as reflection serves
/// them: where the Connect JSON mapping and the OpenAPI description find
/// their messages.
///
/// # Errors
/// Only if the descriptor set built by `build.rs` does not decode, a bug.
pub fn descriptors() -> Result<DescriptorPool, prost_reflect::DescriptorError> {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    if let Some(pool) = POOL.get() {
        return Ok(pool.clone());
    }
    let mut pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET)?;
    pool.decode_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)?;
    Ok(POOL.get_or_init(|| pool).clone())
}
