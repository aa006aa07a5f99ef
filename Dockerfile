# syntax=docker/dockerfile:1
#
# roster as a container image: build in the official Rust image, run in
# Debian slim as a non-root user.
#
#   docker build -t roster .
#   docker run --rm -p 50051:50051 -e ROSTER_JWT_SECRET=<at least 16 bytes> roster
#
# Without ROSTER_JWT_SECRET (or a JWKS: ROSTER_JWT_JWKS_FILE or ROSTER_JWKS_URL,
# with ROSTER_JWT_AUDIENCE) roster refuses to start:
# it listens on 0.0.0.0 here, and the built-in development secret is only
# accepted on loopback addresses.

FROM rust:1-bookworm AS builder
WORKDIR /src
# The whole workspace: the roster package, the `migration` member crate, and
# build.rs with proto/ (compiled by protox, so no protoc is needed).
COPY . .
# The cache mounts keep downloaded crates and compiled dependencies between
# builds (BuildKit). target/ is a cache mount, so the binary is copied out of
# it in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p roster --bin roster \
    && install -D -m 0755 target/release/roster /out/roster

FROM debian:bookworm-slim
# ca-certificates: for TLS to PostgreSQL and to anything else roster calls.
# curl: for the gRPC health check in docker-compose.yml.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --user-group --uid 10001 --home-dir /app --no-create-home roster \
    && mkdir -p /app/data \
    && chown roster:roster /app/data
COPY --from=builder /out/roster /usr/local/bin/roster
# The default DATABASE_URL is sqlite://data/roster.db?mode=rwc, relative to
# this directory; /app/data is writable by roster. Set DATABASE_URL to a
# postgres:// URL for production.
WORKDIR /app
USER roster
ENV ROSTER_LISTEN=0.0.0.0:50051
EXPOSE 50051
ENTRYPOINT ["/usr/local/bin/roster"]
