//! The checked-in OpenAPI description is the one the descriptors give, and
//! it describes every unary RPC.

use std::collections::BTreeSet;

use roster::transport::{self, openapi};
use serde_json::Value;

#[test]
fn the_checked_in_openapi_description_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/roster.v1.json");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    let current = openapi::json().unwrap();
    assert!(
        checked_in == current,
        "{} is stale (or missing): regenerate it with `{}`",
        openapi::CHECKED_IN,
        openapi::REGENERATE
    );
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, found: &mut BTreeSet<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                found.insert(target);
            }
            map.values().for_each(|v| refs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

#[test]
fn the_openapi_description_has_every_unary_rpc_and_resolves() {
    let pool = transport::descriptors().unwrap();
    let document = openapi::document(&pool);
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    let mut unary = 0;
    for service in pool.services().filter(|s| s.package_name() == "roster.v1") {
        for method in service.methods() {
            let path = format!("/{}/{}", service.full_name(), method.name());
            if method.is_server_streaming() {
                assert!(!paths.contains_key(&path), "{path} streams");
                continue;
            }
            unary += 1;
            let post = &paths[&path]["post"];
            let request = &post["requestBody"]["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(
                request.as_str().unwrap(),
                format!("#/components/schemas/{}", method.input().full_name())
            );
            assert!(post["responses"]["default"].is_object(), "{path}");
        }
    }
    assert_eq!(paths.len(), unary);
    let schemas = document["components"]["schemas"].as_object().unwrap();
    let mut found = BTreeSet::new();
    refs(&document, &mut found);
    for target in found {
        let name = target.strip_prefix("#/components/schemas/").unwrap();
        assert!(schemas[name].is_object(), "{target} does not resolve");
    }
    // The mapping's forms: camelCase names, Timestamps, enums by name.
    let organization = &schemas["roster.v1.Organization"]["properties"];
    assert_eq!(organization["createTime"]["format"], "date-time");
    assert!(organization.get("create_time").is_none());
    assert!(
        schemas["roster.v1.Role"]["enum"]
            .as_array()
            .unwrap()
            .contains(&"ROLE_OWNER".into())
    );
    let update = &schemas["roster.v1.UpdateOrganizationRequest"]["properties"];
    assert_eq!(update["updateMask"]["type"], "string");
}
