//! The OpenAPI 3.1 description of the Connect JSON surface, generated from
//! the same descriptors that serve it: one `POST` path per unary roster
//! RPC, request and reply schemas in the protobuf JSON mapping, the
//! comments of the protos as descriptions, and the Connect error.
//!
//! `roster openapi` prints it; `openapi/roster.v1.json` is its checked-in
//! copy, and a test fails when that copy is stale.

use std::collections::BTreeMap;

use prost_reflect::{
    DescriptorPool, EnumDescriptor, FieldDescriptor, FileDescriptor, Kind, MessageDescriptor,
    MethodDescriptor,
};
use serde_json::{Map, Value, json};
use tonic::Code;

use super::connect::error::code_name;

/// The package whose services are described.
const PACKAGE: &str = "roster.v1";
/// The component name of the Connect error schema.
const ERROR_SCHEMA: &str = "connect.Error";

/// The checked-in copy of [`json`], relative to the repository's root.
pub const CHECKED_IN: &str = "openapi/roster.v1.json";
/// The command that regenerates [`CHECKED_IN`].
pub const REGENERATE: &str = "cargo run -q -- openapi > openapi/roster.v1.json";

/// The OpenAPI document of roster's own descriptors, as pretty-printed
/// JSON with a final newline: the text of [`CHECKED_IN`].
///
/// # Errors
/// Only if the built-in descriptors do not decode, a bug.
pub fn json() -> Result<String, prost_reflect::DescriptorError> {
    let document = document(&super::descriptors()?);
    // Serializing a `Value` cannot fail.
    Ok(format!("{document:#}\n"))
}

/// The OpenAPI document for the roster services in `pool`.
pub fn document(pool: &DescriptorPool) -> Value {
    let mut schemas = Schemas::default();
    let mut paths = Map::new();
    for service in pool.services().filter(|s| s.package_name() == PACKAGE) {
        for method in service.methods() {
            if method.is_client_streaming() || method.is_server_streaming() {
                continue;
            }
            paths.insert(
                format!("/{}/{}", service.full_name(), method.name()),
                json!({ "post": operation(&method, &mut schemas) }),
            );
        }
    }
    let mut components = schemas.done();
    components.insert(ERROR_SCHEMA.into(), error_schema());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "roster",
            "version": PACKAGE,
            "description": "The organization service of the Developer Portal over the Connect \
                protocol (https://connectrpc.com/docs/protocol/), unary calls with JSON bodies in \
                the protobuf JSON mapping. The same calls are served over gRPC and gRPC-Web on \
                the same port. Generated from proto/ by `roster openapi`: do not edit.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" },
            },
            "schemas": components,
        },
        "security": [ { "bearer": [] } ],
    })
}

fn operation(method: &MethodDescriptor, schemas: &mut Schemas) -> Value {
    let input = schemas.message_ref(&method.input());
    let output = schemas.message_ref(&method.output());
    let mut operation = Map::new();
    operation.insert(
        "operationId".into(),
        json!(format!(
            "{}.{}",
            method.parent_service().name(),
            method.name()
        )),
    );
    operation.insert("tags".into(), json!([method.parent_service().name()]));
    if let Some(text) = comments(&method.parent_file(), method.path()) {
        operation.insert(
            "summary".into(),
            json!(text.lines().next().unwrap_or_default()),
        );
        operation.insert("description".into(), json!(text));
    }
    operation.insert(
        "parameters".into(),
        json!([
            {
                "name": "Connect-Protocol-Version",
                "in": "header",
                "description": "The Connect protocol version; optional, and 1 if sent.",
                "schema": { "type": "string", "const": "1" },
            },
            {
                "name": "Connect-Timeout-Ms",
                "in": "header",
                "description": "The call's deadline in milliseconds (capped by the server's).",
                "schema": { "type": "string", "pattern": "^[0-9]{1,10}$" },
            },
        ]),
    );
    operation.insert(
        "requestBody".into(),
        json!({
            "required": true,
            "content": { "application/json": { "schema": input } },
        }),
    );
    operation.insert(
        "responses".into(),
        json!({
            "200": {
                "description": "Success.",
                "content": { "application/json": { "schema": output } },
            },
            "default": {
                "description": "A Connect error; the HTTP status follows its code.",
                "content": { "application/json": {
                    "schema": { "$ref": format!("#/components/schemas/{ERROR_SCHEMA}") },
                } },
            },
        }),
    );
    Value::Object(operation)
}

/// The named schemas a document needs, collected as they are referred to.
#[derive(Default)]
struct Schemas {
    done: BTreeMap<String, Value>,
}

impl Schemas {
    fn done(self) -> Map<String, Value> {
        self.done.into_iter().collect()
    }

    fn reference(name: &str) -> Value {
        json!({ "$ref": format!("#/components/schemas/{name}") })
    }

    /// A schema for `message`: inline for the well-known types that have a
    /// JSON form of their own, a reference (and a component) otherwise.
    fn message_ref(&mut self, message: &MessageDescriptor) -> Value {
        if let Some(schema) = well_known(message) {
            return schema;
        }
        let name = message.full_name().to_owned();
        if !self.done.contains_key(&name) {
            // Reserve the name first: messages may refer to themselves.
            self.done.insert(name.clone(), Value::Null);
            let schema = self.message(message);
            self.done.insert(name.clone(), schema);
        }
        Self::reference(&name)
    }

    fn enum_ref(&mut self, descriptor: &EnumDescriptor) -> Value {
        let name = descriptor.full_name().to_owned();
        if !self.done.contains_key(&name) {
            let mut schema = Map::new();
            schema.insert("type".into(), json!("string"));
            schema.insert(
                "enum".into(),
                json!(
                    descriptor
                        .values()
                        .map(|v| v.name().to_owned())
                        .collect::<Vec<_>>()
                ),
            );
            if let Some(text) = comments(&descriptor.parent_file(), descriptor.path()) {
                schema.insert("description".into(), json!(text));
            }
            self.done.insert(name.clone(), Value::Object(schema));
        }
        Self::reference(&name)
    }

    fn message(&mut self, message: &MessageDescriptor) -> Value {
        let mut properties = Map::new();
        for field in message.fields() {
            let mut schema = self.field(&field);
            if let Some(text) = comments(&field.parent_file(), field.path())
                && let Value::Object(object) = &mut schema
            {
                object.insert("description".into(), json!(text));
            }
            properties.insert(field.json_name().to_owned(), schema);
        }
        let mut schema = Map::new();
        schema.insert("type".into(), json!("object"));
        if let Some(text) = comments(&message.parent_file(), message.path()) {
            schema.insert("description".into(), json!(text));
        }
        schema.insert("properties".into(), Value::Object(properties));
        // Unknown fields are refused (see `connect::codec`).
        schema.insert("additionalProperties".into(), json!(false));
        Value::Object(schema)
    }

    fn field(&mut self, field: &FieldDescriptor) -> Value {
        if let Kind::Message(entry) = field.kind()
            && field.is_map()
        {
            let value = entry.map_entry_value_field();
            return json!({
                "type": "object",
                "additionalProperties": self.single(&value.kind()),
            });
        }
        let single = self.single(&field.kind());
        if field.is_list() {
            json!({ "type": "array", "items": single })
        } else {
            single
        }
    }

    /// The schema of one value of `kind`, in the protobuf JSON mapping.
    fn single(&mut self, kind: &Kind) -> Value {
        match kind {
            Kind::Double | Kind::Float => json!({ "type": "number" }),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({ "type": "integer", "format": "int32" })
            }
            Kind::Uint32 | Kind::Fixed32 => json!({ "type": "integer", "minimum": 0 }),
            // 64-bit integers are JSON strings, so no precision is lost.
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({ "type": "string", "format": "int64" })
            }
            Kind::Uint64 | Kind::Fixed64 => json!({ "type": "string", "format": "uint64" }),
            Kind::Bool => json!({ "type": "boolean" }),
            Kind::String => json!({ "type": "string" }),
            Kind::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
            Kind::Message(message) => self.message_ref(message),
            Kind::Enum(descriptor) => self.enum_ref(descriptor),
        }
    }
}

/// The JSON forms the protobuf JSON mapping gives well-known types.
fn well_known(message: &MessageDescriptor) -> Option<Value> {
    Some(match message.full_name() {
        "google.protobuf.Timestamp" => json!({ "type": "string", "format": "date-time" }),
        "google.protobuf.Duration" => {
            json!({ "type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$" })
        }
        "google.protobuf.FieldMask" => json!({
            "type": "string",
            "description": "Field paths in lowerCamelCase, comma-separated.",
        }),
        "google.protobuf.Empty" => json!({ "type": "object", "additionalProperties": false }),
        "google.protobuf.Struct" => json!({ "type": "object" }),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({ "type": "array" }),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": { "@type": { "type": "string" } },
            "required": ["@type"],
        }),
        "google.protobuf.StringValue" => json!({ "type": ["string", "null"] }),
        "google.protobuf.BytesValue" => {
            json!({ "type": ["string", "null"], "contentEncoding": "base64" })
        }
        "google.protobuf.BoolValue" => json!({ "type": ["boolean", "null"] }),
        "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => {
            json!({ "type": ["number", "null"] })
        }
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => {
            json!({ "type": ["integer", "null"] })
        }
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => {
            json!({ "type": ["string", "null"], "format": "int64" })
        }
        _ => return None,
    })
}

/// The Connect error object (`connect::error::body`).
fn error_schema() -> Value {
    let codes: Vec<&str> = (1..=16).map(|n| code_name(Code::from_i32(n))).collect();
    json!({
        "type": "object",
        "description": "A Connect error: the code, a message for people, and typed details \
            (google.rpc.ErrorInfo with roster's reason, google.rpc.BadRequest naming bad fields).",
        "required": ["code"],
        "properties": {
            "code": { "type": "string", "enum": codes },
            "message": { "type": "string" },
            "details": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["type", "value"],
                    "properties": {
                        "type": {
                            "type": "string",
                            "description": "The detail's full message name, e.g. google.rpc.ErrorInfo.",
                        },
                        "value": {
                            "type": "string",
                            "contentEncoding": "base64",
                            "description": "The detail, protobuf-encoded.",
                        },
                        "debug": {
                            "type": "object",
                            "description": "The detail in the protobuf JSON mapping.",
                        },
                    },
                },
            },
        },
    })
}

/// The comments written before the element at `path` in `file`.
fn comments(file: &FileDescriptor, path: &[i32]) -> Option<String> {
    let info = file.file_descriptor_proto().source_code_info.as_ref()?;
    let location = info.location.iter().find(|l| l.path == path)?;
    let text = location.leading_comments.as_deref()?;
    let text = text
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned();
    (!text.is_empty()).then_some(text)
}
