//! Health and server reflection: always on, no token needed.

use std::collections::BTreeSet;

use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

use crate::{
    backend_tests,
    helpers::{Backend, TestApp},
};

/// Sends one reflection request and returns the answer.
async fn reflect(app: &TestApp, request: MessageRequest) -> MessageResponse {
    let mut client = ServerReflectionClient::new(app.channel());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    stream
        .message()
        .await
        .unwrap()
        .unwrap()
        .message_response
        .unwrap()
}

backend_tests!(
    health_reports_every_service_serving_without_a_token,
    reflection_lists_exactly_the_public_services,
    reflection_serves_the_error_detail_types,
);

async fn health_reports_every_service_serving_without_a_token(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let mut health = HealthClient::new(app.channel());
    for service in [
        "",
        "roster.v1.OrganizationService",
        "roster.v1.MembershipService",
        "roster.v1.EventService",
        "roster.v1.AuthorizationService",
    ] {
        let reply = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.status(), ServingStatus::Serving, "{service:?}");
    }
}

async fn reflection_lists_exactly_the_public_services(backend: Backend) {
    let app = TestApp::spawn(&backend).await;
    let MessageResponse::ListServicesResponse(list) =
        reflect(&app, MessageRequest::ListServices(String::new())).await
    else {
        panic!("expected a service list");
    };
    let names: BTreeSet<String> = list.service.into_iter().map(|s| s.name).collect();
    let expected: BTreeSet<String> = [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "roster.v1.AuthorizationService",
        "roster.v1.EventService",
        "roster.v1.MembershipService",
        "roster.v1.OrganizationService",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(names, expected);
}

async fn reflection_serves_the_error_detail_types(backend: Backend) {
    // grpcurl and dynamic clients decode google.rpc.ErrorInfo and
    // BadRequest only if reflection can describe them.
    let app = TestApp::spawn(&backend).await;
    for symbol in [
        "google.rpc.ErrorInfo",
        "google.rpc.BadRequest",
        "roster.v1.Organization",
    ] {
        let answer = reflect(&app, MessageRequest::FileContainingSymbol(symbol.into())).await;
        assert!(
            matches!(answer, MessageResponse::FileDescriptorResponse(_)),
            "{symbol}: {answer:?}"
        );
    }
}
