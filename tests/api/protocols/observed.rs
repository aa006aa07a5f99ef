//! Every protocol is observed as the gRPC call it becomes: the request id
//! comes back, one `rpc finished` line is logged per call, and the metrics
//! count it under the same series.

use std::time::{Duration, Instant};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use prost::Message;
use roster::pb::{self, organization_service_client::OrganizationServiceClient};
use serde_json::{Value, json};
use tonic::transport::Channel;

use super::{Http, client};
use crate::production::{as_user, sample, scrape, start_with_metrics};

#[derive(Debug, Clone, Copy)]
enum Protocol {
    Grpc,
    GrpcWeb,
    GrpcWebText,
    ConnectJson,
    ConnectProto,
}

const PROTOCOLS: [Protocol; 5] = [
    Protocol::Grpc,
    Protocol::GrpcWeb,
    Protocol::GrpcWebText,
    Protocol::ConnectJson,
    Protocol::ConnectProto,
];

/// Calls `method` (CheckSlug or GetOrganization) with `message` over
/// `protocol`, as alice, with request id `request_id`; returns the reply's
/// request id.
async fn call(
    base: &str,
    protocol: Protocol,
    path: &str,
    message: &impl Message,
    json: Value,
    request_id: &str,
) -> String {
    let token = as_user::<()>("alice", ())
        .metadata()
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let framed = || {
        let encoded = message.encode_to_vec();
        let mut framed = vec![0];
        framed.extend_from_slice(&u32::try_from(encoded.len()).unwrap().to_be_bytes());
        framed.extend_from_slice(&encoded);
        framed
    };
    let (content_type, body, http) = match protocol {
        Protocol::Grpc => unreachable!("called with tonic"),
        Protocol::GrpcWeb => ("application/grpc-web+proto", framed(), Http::One),
        Protocol::GrpcWebText => (
            "application/grpc-web-text",
            STANDARD.encode(framed()).into_bytes(),
            Http::Two,
        ),
        Protocol::ConnectJson => ("application/json", json.to_string().into_bytes(), Http::One),
        Protocol::ConnectProto => ("application/proto", message.encode_to_vec(), Http::Two),
    };
    let reply = client(http)
        .post(format!("{base}{path}"))
        .header("content-type", content_type)
        .header("authorization", token)
        .header("x-request-id", request_id)
        .body(body)
        .send()
        .await
        .unwrap();
    let id = reply.headers()["x-request-id"].to_str().unwrap().to_owned();
    reply.bytes().await.unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protocol_has_the_request_id_log_line_and_metrics_of_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
    let (server, port) = start_with_metrics(&url);
    let base = format!("http://{}", server.address());
    let channel = Channel::from_shared(base.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let missing = uuid::Uuid::now_v7().to_string();
    let check = pb::CheckSlugRequest {
        slug: "free".into(),
    };
    let get = pb::GetOrganizationRequest {
        key: Some(pb::get_organization_request::Key::Id(missing.clone())),
    };
    let mut ids = Vec::new();
    for protocol in PROTOCOLS {
        for (method, n) in [("CheckSlug", 0), ("GetOrganization", 1)] {
            let request_id = format!("{protocol:?}-{method}");
            let echoed = match protocol {
                Protocol::Grpc => {
                    let mut orgs = OrganizationServiceClient::new(channel.clone());
                    let metadata = if n == 0 {
                        let mut request = as_user("alice", check.clone());
                        request
                            .metadata_mut()
                            .insert("x-request-id", request_id.parse().unwrap());
                        orgs.check_slug(request).await.unwrap().metadata().clone()
                    } else {
                        let mut request = as_user("alice", get.clone());
                        request
                            .metadata_mut()
                            .insert("x-request-id", request_id.parse().unwrap());
                        orgs.get_organization(request)
                            .await
                            .unwrap_err()
                            .metadata()
                            .clone()
                    };
                    metadata
                        .get("x-request-id")
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .to_owned()
                }
                _ if n == 0 => {
                    call(
                        &base,
                        protocol,
                        "/roster.v1.OrganizationService/CheckSlug",
                        &check,
                        json!({"slug": "free"}),
                        &request_id,
                    )
                    .await
                }
                _ => {
                    call(
                        &base,
                        protocol,
                        "/roster.v1.OrganizationService/GetOrganization",
                        &get,
                        json!({"id": missing}),
                        &request_id,
                    )
                    .await
                }
            };
            assert_eq!(echoed, request_id, "{protocol:?} {method}");
            ids.push((request_id, method, if n == 0 { "Ok" } else { "NotFound" }));
        }
    }

    // One `rpc finished` line per call, with its request id, method and code.
    for (request_id, method, code) in &ids {
        server
            .wait_for_line(Duration::from_secs(10), |line| {
                line.contains("rpc finished") && line.contains(request_id.as_str())
            })
            .unwrap_or_else(|| panic!("no line for {request_id}:\n{}", server.log()));
        let lines: Vec<Value> = server
            .log()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| {
                line["message"] == "rpc finished"
                    && line["span"]["request_id"] == request_id.as_str()
            })
            .collect();
        let [line] = &lines[..] else {
            panic!("not one line for {request_id}: {lines:?}");
        };
        let span = &line["span"];
        assert_eq!(span["rpc.service"], "roster.v1.OrganizationService");
        assert_eq!(span["rpc.method"], *method);
        assert_eq!(span["grpc.code"], *code, "{line}");
        assert_eq!(span["caller"], "alice", "{line}");
    }

    // This process served exactly these calls: one per protocol each.
    let wanted = PROTOCOLS.len() as f64;
    let series = [
        r#"roster_rpc_requests_total{service="roster.v1.OrganizationService",method="CheckSlug",code="Ok"}"#,
        r#"roster_rpc_requests_total{service="roster.v1.OrganizationService",method="GetOrganization",code="NotFound"}"#,
        r#"roster_rpc_request_duration_seconds_count{service="roster.v1.OrganizationService",method="CheckSlug"}"#,
    ];
    let started = Instant::now();
    let mut text = scrape(port);
    while series.iter().any(|s| sample(&text, s) != Some(wanted)) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{series:?} not all {wanted} in:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        text = scrape(port);
    }
}
