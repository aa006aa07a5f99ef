//! Compiles `proto/` into Rust (tonic + prost) and writes the descriptor set
//! that server reflection serves. protox parses the protos in pure Rust, so
//! building roster never needs a `protoc` binary.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    // Served by reflection only, so clients can decode error details.
    "proto/google/rpc/error_details.proto",
    "proto/roster/v1/common.proto",
    "proto/roster/v1/organization.proto",
    "proto/roster/v1/membership.proto",
    "proto/roster/v1/event.proto",
    "proto/roster/v1/authorization.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    // The integration tests' PostgreSQL variants are ignored, and so
    // reported as such, unless TEST_DATABASE_URL is set when they are built.
    println!("cargo:rerun-if-env-changed=TEST_DATABASE_URL");
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    if env::var("TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=postgres_tests");
    }
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("roster_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
