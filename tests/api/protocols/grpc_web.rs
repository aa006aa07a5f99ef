//! gRPC-Web, binary and text, over HTTP/1.1 and HTTP/2: framing per the
//! gRPC-Web spec, with the status in a trailers frame.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use prost::Message;
use roster::pb;
use tonic_types::{ErrorDetail, StatusExt};

use super::{Http, client, url};
use crate::{
    backend_tests,
    helpers::{Backend, TestApp},
};

#[derive(Debug, Clone, Copy)]
enum Mode {
    Binary,
    Text,
}

impl Mode {
    fn content_type(self) -> &'static str {
        match self {
            Mode::Binary => "application/grpc-web+proto",
            Mode::Text => "application/grpc-web-text+proto",
        }
    }
}

/// A gRPC-Web reply: its messages, and its status with the headers or
/// trailers that carried it.
#[derive(Debug)]
struct WebReply {
    content_type: String,
    messages: Vec<Vec<u8>>,
    trailers: http::HeaderMap,
}

impl WebReply {
    fn status(&self) -> tonic::Status {
        tonic::Status::from_header_map(&self.trailers).expect("a grpc-status")
    }
}

async fn call(
    app: &TestApp,
    http: Http,
    mode: Mode,
    path: &str,
    token: &str,
    message: &impl Message,
) -> WebReply {
    let mut framed = vec![0u8];
    let encoded = message.encode_to_vec();
    framed.extend_from_slice(&u32::try_from(encoded.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(&encoded);
    let body = match mode {
        Mode::Binary => framed,
        Mode::Text => STANDARD.encode(framed).into_bytes(),
    };
    let reply = client(http)
        .post(url(app, path))
        .header("content-type", mode.content_type())
        // What a browser's gRPC-Web client sends: the reply in the same encoding.
        .header("accept", mode.content_type())
        .header("x-grpc-web", "1")
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        reply.status(),
        200,
        "gRPC-Web answers 200 and puts the status in trailers"
    );
    let version = reply.version();
    assert_eq!(
        version,
        match http {
            Http::One => reqwest::Version::HTTP_11,
            Http::Two => reqwest::Version::HTTP_2,
        }
    );
    let headers = reply.headers().clone();
    let content_type = headers["content-type"].to_str().unwrap().to_owned();
    let bytes = reply.bytes().await.unwrap().to_vec();
    let mut rest = match mode {
        Mode::Binary => bytes,
        // A text reply is base64 chunks, each padded on its own: decode
        // them group by group.
        Mode::Text => bytes
            .chunks(4)
            .flat_map(|group| STANDARD.decode(group).unwrap())
            .collect(),
    };
    let mut messages = Vec::new();
    // A trailers-only reply has its status in the headers and no body.
    let mut trailers = headers.clone();
    let mut saw_trailers_frame = false;
    while !rest.is_empty() {
        let flag = rest[0];
        let length = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        let payload = rest[5..5 + length].to_vec();
        rest.drain(..5 + length);
        if flag & 0x80 != 0 {
            assert!(rest.is_empty(), "the trailers frame comes last");
            saw_trailers_frame = true;
            trailers = http::HeaderMap::new();
            for line in String::from_utf8(payload).unwrap().split("\r\n") {
                if let Some((name, value)) = line.split_once(':') {
                    trailers.append(
                        http::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                        value.trim().parse().unwrap(),
                    );
                }
            }
        } else {
            assert!(!saw_trailers_frame);
            messages.push(payload);
        }
    }
    assert!(
        saw_trailers_frame || headers.contains_key("grpc-status"),
        "no status in {headers:?}"
    );
    WebReply {
        content_type,
        messages,
        trailers,
    }
}

backend_tests!(grpc_web_binary_and_text_serve_calls_over_http1_and_http2);

async fn grpc_web_binary_and_text_serve_calls_over_http1_and_http2(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let alice = app.token("alice");
    for (n, (http, mode)) in [
        (Http::One, Mode::Binary),
        (Http::One, Mode::Text),
        (Http::Two, Mode::Binary),
        (Http::Two, Mode::Text),
    ]
    .into_iter()
    .enumerate()
    {
        let slug = format!("web-{n}");
        let created = call(
            &app,
            http,
            mode,
            "/roster.v1.OrganizationService/CreateOrganization",
            &alice,
            &pb::CreateOrganizationRequest {
                name: "Web".into(),
                slug: slug.clone(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            created.status().code(),
            tonic::Code::Ok,
            "{http:?} {mode:?}: {created:?}"
        );
        assert!(
            created
                .content_type
                .starts_with(mode.content_type().trim_end_matches("+proto"))
        );
        assert_eq!(created.messages.len(), 1);
        let org = pb::CreateOrganizationResponse::decode(created.messages[0].as_slice())
            .unwrap()
            .organization
            .unwrap();
        assert_eq!(org.slug, slug);

        let members = call(
            &app,
            http,
            mode,
            "/roster.v1.MembershipService/ListMembers",
            &alice,
            &pb::ListMembersRequest {
                organization_id: org.id.clone(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(members.status().code(), tonic::Code::Ok);
        let members = pb::ListMembersResponse::decode(members.messages[0].as_slice()).unwrap();
        assert_eq!(members.members[0].user_id, "alice");
        assert_eq!(members.members[0].role(), pb::Role::Owner);

        // An error: the status and its details, as gRPC has them.
        let missing = call(
            &app,
            http,
            mode,
            "/roster.v1.OrganizationService/GetOrganization",
            &app.token("mallory"),
            &pb::GetOrganizationRequest {
                key: Some(pb::get_organization_request::Key::Id(org.id.clone())),
            },
        )
        .await;
        let status = missing.status();
        assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
        assert!(missing.messages.is_empty());
        let info = status
            .get_error_details_vec()
            .into_iter()
            .find_map(|d| match d {
                ErrorDetail::ErrorInfo(info) => Some(info),
                _ => None,
            })
            .expect("ErrorInfo");
        assert_eq!(info.domain, "roster.dev");
    }
}
