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
    // Integration tests that need something from outside are compiled as
    // ignored, and so reported as such, unless the variable that provides
    // it is set when they are built; when it is, they run and fail if the
    // thing is missing.
    // - the PostgreSQL variants of every test: TEST_DATABASE_URL;
    test_cfg("postgres_tests", "TEST_DATABASE_URL", |url| !url.is_empty());
    // - SMTP and real-client tests: a Python with aiosmtpd, grpcio and
    //   grpcurl beside it, as `.ci/run` makes in `.venv`;
    test_cfg("python_tests", "ROSTER_TEST_PYTHON", |path| {
        !path.is_empty()
    });
    // - the import tests against real Better Auth data: the `node` that runs
    //   tests/better-auth (after `npm ci --prefix tests/better-auth`);
    test_cfg("better_auth_tests", "ROSTER_TEST_NODE", |path| {
        !path.is_empty()
    });
    // - the browser test: the same `node`, driving Chromium through
    //   tests/browser (after `npm ci --prefix tests/browser`);
    test_cfg("browser_tests", "ROSTER_TEST_NODE", |path| !path.is_empty());
    // - the portal proxy example: the same `node`, running
    //   examples/portal-proxy (after `npm ci --prefix examples/portal-proxy`);
    test_cfg("portal_proxy_tests", "ROSTER_TEST_NODE", |path| {
        !path.is_empty()
    });
    // - the health test with a PostgreSQL of its own (initdb, root).
    test_cfg(
        "private_postgres_tests",
        "ROSTER_REQUIRE_PRIVATE_POSTGRES",
        |value| value == "1",
    );
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("roster_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // A body that does not decode is INVALID_ARGUMENT, not INTERNAL.
        .codec_path("crate::api::codec::RosterCodec")
        .compile_fds(descriptors)?;
    Ok(())
}

/// Sets `cfg` when the environment variable `var` is set and `enabled`
/// holds for its value; rebuilds when the variable changes.
fn test_cfg(cfg: &str, var: &str, enabled: impl Fn(&str) -> bool) {
    println!("cargo:rerun-if-env-changed={var}");
    println!("cargo::rustc-check-cfg=cfg({cfg})");
    if env::var(var).is_ok_and(|value| enabled(&value)) {
        println!("cargo::rustc-cfg={cfg}");
    }
}
