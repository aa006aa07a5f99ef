//! Traces: a call that carries a W3C `traceparent` continues the caller's
//! trace, over gRPC, gRPC-Web and Connect alike; the real binary exports
//! its spans over OTLP/gRPC to a collector in this test (the collector's
//! own protocol, from opentelemetry-proto), and its log lines carry the
//! trace id.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, KeyValue, any_value::Value as Any},
    trace::v1::{Span, span::SpanKind},
};
use prost::Message;
use roster::pb::{self, organization_service_client::OrganizationServiceClient};
use roster_spawn::{Server, Spawn};
use serde_json::{Value, json};
use tonic::transport::{Channel, server::TcpIncoming};

use crate::production::as_user;

/// An OTLP/gRPC receiver that keeps every span it is sent, with the
/// `service.name` of its resource.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .as_ref()
                .and_then(|resource| string_attribute(&resource.attributes, "service.name"))
                .unwrap_or_default();
            for scope in resource.scope_spans {
                spans.extend(scope.spans.into_iter().map(|span| (service.clone(), span)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

impl Collector {
    /// Serves on an ephemeral loopback port; returns its `http://` URL.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpIncoming::from(listener))
                .await
        });
        format!("http://{address}")
    }

    /// The spans of trace `trace_id`, once one of them is an RPC's server
    /// span named `name` (waits up to 30 s).
    fn wait_for_trace(&self, trace_id: &[u8], name: &str) -> Vec<(String, Span)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let trace: Vec<(String, Span)> = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, span)| span.trace_id == trace_id)
                .cloned()
                .collect();
            if trace.iter().any(|(_, span)| span.name == name) {
                return trace;
            }
            assert!(
                Instant::now() < deadline,
                "no span {name} of trace {} arrived; received: {:?}",
                hex(trace_id),
                self.spans
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(_, span)| (&span.name, hex(&span.trace_id)))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attributes.iter().find(|kv| kv.key == key)?.value.as_ref()? {
        AnyValue {
            value: Some(Any::StringValue(value)),
        } => Some(value.clone()),
        _ => None,
    }
}

fn int_attribute(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match attributes.iter().find(|kv| kv.key == key)?.value.as_ref()? {
        AnyValue {
            value: Some(Any::IntValue(value)),
        } => Some(*value),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A caller's trace context: a trace id and the caller's span id.
struct Caller {
    trace_id: [u8; 16],
    span_id: [u8; 8],
}

impl Caller {
    fn new() -> Self {
        let id = uuid::Uuid::new_v4();
        let mut span_id = [0; 8];
        span_id.copy_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
        Self {
            trace_id: *id.as_bytes(),
            span_id,
        }
    }

    /// Sampled, as a caller that records its trace sends it.
    fn traceparent(&self) -> String {
        format!("00-{}-{}-01", hex(&self.trace_id), hex(&self.span_id))
    }
}

const TRACESTATE: &str = "portal=from-the-caller";

fn with_trace<T>(
    mut request: tonic::Request<T>,
    caller: &Caller,
    request_id: &str,
) -> tonic::Request<T> {
    let metadata = request.metadata_mut();
    metadata.insert("traceparent", caller.traceparent().parse().unwrap());
    metadata.insert("tracestate", TRACESTATE.parse().unwrap());
    metadata.insert("x-request-id", request_id.parse().unwrap());
    request
}

fn bearer() -> String {
    as_user("alice", ())
        .metadata()
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned()
}

/// A unary call over HTTP (gRPC-Web or Connect) with the caller's trace
/// context; returns the reply's HTTP status.
async fn http_call(
    base: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
    caller: &Caller,
    request_id: &str,
) -> reqwest::StatusCode {
    let reply = reqwest::Client::builder()
        .http1_only()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
        .post(format!("{base}{path}"))
        .header("content-type", content_type)
        .header("authorization", bearer())
        .header("traceparent", caller.traceparent())
        .header("tracestate", TRACESTATE)
        .header("x-request-id", request_id)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = reply.status();
    reply.bytes().await.unwrap();
    status
}

fn grpc_web_frame(message: &impl Message) -> Vec<u8> {
    let encoded = message.encode_to_vec();
    let mut framed = vec![0];
    framed.extend_from_slice(&u32::try_from(encoded.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(&encoded);
    framed
}

/// The `rpc finished` log line of the call with `request_id`. The line is
/// written when the call's span closes, which can be after the client has
/// read the whole answer, so it is waited for rather than expected at once.
fn finished_line(server: &Server, request_id: &str) -> Value {
    let parse = |line: &str| serde_json::from_str::<Value>(line).ok();
    let line = server.wait_for_line(Duration::from_secs(10), |line| {
        parse(line).is_some_and(|line| {
            line["message"] == "rpc finished" && line["span"]["request_id"] == request_id
        })
    });
    line.and_then(|line| parse(&line))
        .unwrap_or_else(|| panic!("no rpc line for {request_id}:\n{}", server.log()))
}

/// roster, exporting to `collector`, on a database in the returned directory.
async fn start_traced(collector: &Collector) -> (Server, tempfile::TempDir) {
    let endpoint = collector.start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
    let server = Spawn::new(env!("CARGO_BIN_EXE_roster"))
        .args(["--database-url", &url])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_SERVICE_NAME", "roster-under-test")
        // Export within a tenth of a second rather than five.
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .start(Duration::from_secs(60))
        .unwrap();
    (server, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_a_traceparent_continues_the_callers_trace_on_every_protocol() {
    let collector = Collector::default();
    let (server, _dir) = start_traced(&collector).await;
    let base = format!("http://{}", server.address());
    let channel = Channel::from_shared(base.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut orgs = OrganizationServiceClient::new(channel);

    // gRPC: a write (OK) and a read that is refused (NOT_FOUND).
    let create = Caller::new();
    orgs.create_organization(with_trace(
        as_user(
            "alice",
            pb::CreateOrganizationRequest {
                name: "Acme".into(),
                slug: "acme".into(),
                ..Default::default()
            },
        ),
        &create,
        "traced-create",
    ))
    .await
    .unwrap();
    let missing = Caller::new();
    let missing_id = uuid::Uuid::now_v7().to_string();
    let refused = orgs
        .get_organization(with_trace(
            as_user(
                "alice",
                pb::GetOrganizationRequest {
                    key: Some(pb::get_organization_request::Key::Id(missing_id.clone())),
                },
            ),
            &missing,
            "traced-missing",
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound);

    // gRPC-Web over HTTP/1.1, as a browser sends it.
    let web = Caller::new();
    let status = http_call(
        &base,
        "/roster.v1.OrganizationService/CheckSlug",
        "application/grpc-web+proto",
        grpc_web_frame(&pb::CheckSlugRequest {
            slug: "free".into(),
        }),
        &web,
        "traced-grpc-web",
    )
    .await;
    assert_eq!(status, 200);

    // Connect JSON, as curl or a Connect client sends it.
    let connect = Caller::new();
    let status = http_call(
        &base,
        "/roster.v1.OrganizationService/GetOrganization",
        "application/json",
        json!({ "slug": "acme" }).to_string().into_bytes(),
        &connect,
        "traced-connect",
    )
    .await;
    assert_eq!(status, 200);

    let cases = [
        (&create, "CreateOrganization", 0, "traced-create"),
        (&missing, "GetOrganization", 5, "traced-missing"),
        (&web, "CheckSlug", 0, "traced-grpc-web"),
        (&connect, "GetOrganization", 0, "traced-connect"),
    ];
    for (caller, method, code, request_id) in cases {
        let name = format!("roster.v1.OrganizationService/{method}");
        let trace = collector.wait_for_trace(&caller.trace_id, &name);
        let servers: Vec<&(String, Span)> =
            trace.iter().filter(|(_, span)| span.name == name).collect();
        let [(service, rpc)] = servers[..] else {
            panic!(
                "not one {name} span in trace {}: {trace:?}",
                hex(&caller.trace_id)
            );
        };
        assert_eq!(service, "roster-under-test");
        assert_eq!(
            rpc.parent_span_id, caller.span_id,
            "{name}: the caller's span is the parent"
        );
        assert_eq!(rpc.kind, SpanKind::Server as i32, "{name}");
        assert_eq!(rpc.trace_state, TRACESTATE, "{name}");
        assert_eq!(
            string_attribute(&rpc.attributes, "rpc.system").as_deref(),
            Some("grpc")
        );
        assert_eq!(
            string_attribute(&rpc.attributes, "rpc.service").as_deref(),
            Some("roster.v1.OrganizationService")
        );
        assert_eq!(
            string_attribute(&rpc.attributes, "rpc.method").as_deref(),
            Some(method)
        );
        assert_eq!(
            int_attribute(&rpc.attributes, "rpc.grpc.status_code"),
            Some(code),
            "{name}: {rpc:?}"
        );
        assert_eq!(
            string_attribute(&rpc.attributes, "request_id").as_deref(),
            Some(request_id)
        );
        // The log line of the same call carries the same trace id.
        let line = finished_line(&server, request_id);
        assert_eq!(line["span"]["trace_id"], hex(&caller.trace_id), "{line}");
    }

    // roster's own spans inside the call (the use-case, the event it
    // records) belong to the caller's trace, under the RPC's span.
    let trace = collector.wait_for_trace(
        &create.trace_id,
        "roster.v1.OrganizationService/CreateOrganization",
    );
    let rpc_span_id = trace
        .iter()
        .find(|(_, span)| span.name.ends_with("/CreateOrganization"))
        .map(|(_, span)| span.span_id.clone())
        .unwrap();
    let by_id: HashMap<&[u8], &Span> = trace
        .iter()
        .map(|(_, span)| (span.span_id.as_slice(), span))
        .collect();
    let inner: Vec<&str> = trace
        .iter()
        .filter(|(_, span)| span.span_id != rpc_span_id)
        .filter(|(_, span)| {
            // Walks up to the RPC's span.
            let mut parent = span.parent_span_id.as_slice();
            while let Some(up) = by_id.get(parent) {
                if up.span_id == rpc_span_id {
                    return true;
                }
                parent = up.parent_span_id.as_slice();
            }
            false
        })
        .map(|(_, span)| span.name.as_str())
        .collect();
    for name in ["create_organization", "record"] {
        assert!(
            inner.contains(&name),
            "the use-case and the event's write are spans under the RPC: {inner:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_a_traceparent_starts_a_trace_whose_id_is_in_its_log_line() {
    let collector = Collector::default();
    let (server, _dir) = start_traced(&collector).await;
    let base = format!("http://{}", server.address());
    let channel = Channel::from_shared(base).unwrap().connect().await.unwrap();
    let mut request = as_user(
        "alice",
        pb::CheckSlugRequest {
            slug: "free".into(),
        },
    );
    request
        .metadata_mut()
        .insert("x-request-id", "untraced".parse().unwrap());
    OrganizationServiceClient::new(channel)
        .check_slug(request)
        .await
        .unwrap();
    let line = finished_line(&server, "untraced");
    let trace_id = line["span"]["trace_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no trace id in {line}"))
        .to_owned();
    let bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let trace = collector.wait_for_trace(&bytes, "roster.v1.OrganizationService/CheckSlug");
    let (_, rpc) = trace
        .iter()
        .find(|(_, span)| span.name.ends_with("/CheckSlug"))
        .unwrap();
    assert!(rpc.parent_span_id.is_empty(), "a root span: {rpc:?}");
}
