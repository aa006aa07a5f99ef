//! Generated protobuf and gRPC code, reached through this one path.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

tonic::include_proto!("roster.v1");

/// The encoded descriptor set of every roster proto and its imports,
/// served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("roster_descriptor");
