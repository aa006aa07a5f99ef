//! Issue 9, item 6: a body that does not decode as the RPC's request
//! message (truncated, a string that is not UTF-8, a field sent with the
//! wrong wire type) is the caller's error, INVALID_ARGUMENT, and changes
//! nothing. Sent as raw HTTP/2 frames (hyper), since a generated client
//! cannot send bytes its message type would not produce.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use tonic::Code;

use crate::{
    backend_tests,
    helpers::{Backend, TestApp, bad_fields, reason},
};

backend_tests!(malformed_request_bodies_are_invalid_argument);

/// A gRPC message frame: not compressed, then the length, then the bytes.
fn frame(message: &[u8]) -> Bytes {
    let mut framed = vec![0];
    framed.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(message);
    Bytes::from(framed)
}

/// Sends `message` as the request body of `path` over plain HTTP/2 and
/// returns the gRPC status of the reply.
async fn call(app: &TestApp, path: &str, token: &str, message: &[u8]) -> tonic::Status {
    let stream = tokio::net::TcpStream::connect(app.address()).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = http::Request::post(format!("http://{}{path}", app.address()))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(frame(message)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    assert_eq!(
        parts.status,
        http::StatusCode::OK,
        "gRPC answers in HTTP 200"
    );
    let collected = body.collect().await.unwrap();
    // A reply with no messages carries its status in the headers
    // (trailers-only); otherwise in the trailers.
    let trailers = collected.trailers().cloned().unwrap_or_default();
    tonic::Status::from_header_map(&parts.headers)
        .or_else(|| tonic::Status::from_header_map(&trailers))
        .expect("a grpc-status")
}

async fn malformed_request_bodies_are_invalid_argument(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let token = app.token("alice");
    let create = "/roster.v1.OrganizationService/CreateOrganization";
    let malformed: [(&str, &[u8]); 4] = [
        // Field 1 (name) claims 16 bytes and brings 1.
        ("truncated", &[0x0a, 0x10, b'a']),
        // Field 1 (name, a string) holds bytes that are not UTF-8.
        ("not UTF-8", &[0x0a, 0x02, 0xff, 0xfe]),
        // Field 1 (name, length-delimited) sent as a varint.
        ("wrong wire type", &[0x08, 0x01]),
        // Not a protobuf at all: an invalid varint.
        ("garbage", &[0xff; 12]),
    ];
    for (what, bytes) in malformed {
        let status = call(&app, create, &token, bytes).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert_eq!(reason(&status), "INVALID_ARGUMENT", "{what}: {status:?}");
        assert_eq!(bad_fields(&status), ["request"], "{what}: {status:?}");
    }
    // The same path with a well-formed body works (the test's framing is right).
    let valid = {
        use prost::Message;
        roster::pb::CreateOrganizationRequest {
            name: "Acme".into(),
            slug: "acme".into(),
            ..Default::default()
        }
        .encode_to_vec()
    };
    assert_eq!(call(&app, create, &token, &valid).await.code(), Code::Ok);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM organizations").await,
        1
    );
}
