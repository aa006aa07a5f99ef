//! Connect bodies ↔ gRPC messages: the protobuf JSON mapping (from the
//! descriptors, with prost-reflect) or the binary encoding, and gRPC's
//! length-prefixed framing.

use bytes::{BufMut as _, Bytes, BytesMut};
use prost::Message as _;
use prost_reflect::{DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions};
use tonic::Status;

use crate::domain::{Error, FieldViolation};

/// How a Connect unary body is encoded, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// `application/json`: the canonical protobuf JSON mapping.
    Json,
    /// `application/proto`: the protobuf binary encoding.
    Proto,
}

impl Codec {
    pub fn content_type(self) -> &'static str {
        match self {
            Codec::Json => "application/json",
            Codec::Proto => "application/proto",
        }
    }

    /// The request `body` as a binary `desc` message, refused with
    /// INVALID_ARGUMENT if it is not one.
    ///
    /// JSON fields the message does not have are refused, as the protobuf
    /// JSON mapping's parsers do by default: a misspelt field is an error
    /// the caller sees at once rather than a value silently dropped.
    pub fn decode_request(self, desc: &MessageDescriptor, body: &[u8]) -> Result<Bytes, Status> {
        let message = match self {
            // An empty body is the empty message, as for binary; `curl -X POST` needs no `-d '{}'`.
            Codec::Json if body.iter().all(u8::is_ascii_whitespace) => {
                DynamicMessage::new(desc.clone())
            }
            Codec::Json => {
                let mut json = serde_json::Deserializer::from_slice(body);
                DynamicMessage::deserialize_with_options(
                    desc.clone(),
                    &mut json,
                    &DeserializeOptions::new(),
                )
                .and_then(|message| json.end().map(|()| message))
                .map_err(|err| invalid_body(desc, &err.to_string()))?
            }
            Codec::Proto => DynamicMessage::decode(desc.clone(), body)
                .map_err(|err| invalid_body(desc, &err.to_string()))?,
        };
        Ok(Bytes::from(message.encode_to_vec()))
    }

    /// The reply message `encoded` (binary `desc`) in this encoding.
    pub fn encode_reply(self, desc: &MessageDescriptor, encoded: Bytes) -> Result<Bytes, Status> {
        match self {
            Codec::Proto => Ok(encoded),
            Codec::Json => {
                let message = DynamicMessage::decode(desc.clone(), encoded)
                    .map_err(|err| Status::internal(format!("undecodable reply: {err}")))?;
                let mut out = Vec::new();
                let mut json = serde_json::Serializer::new(&mut out);
                message
                    .serialize_with_options(&mut json, &SerializeOptions::new())
                    .map_err(|err| Status::internal(format!("unencodable reply: {err}")))?;
                Ok(Bytes::from(out))
            }
        }
    }
}

/// INVALID_ARGUMENT for a body that is not a `desc`, in the shape of every
/// other invalid argument (ErrorInfo plus BadRequest), naming the field
/// when the decoder does (an unknown or mistyped JSON field) and the body
/// otherwise.
fn invalid_body(desc: &MessageDescriptor, why: &str) -> Status {
    let field = named_field(why).unwrap_or("body");
    Status::from(Error::InvalidArgument(vec![FieldViolation::new(
        field,
        format!("is not a valid {}: {why}", desc.full_name()),
    )]))
}

/// The field prost-reflect's JSON decoder names in
/// "unrecognized field name 'x' at ..." (or serde in "unknown field `x`").
fn named_field(why: &str) -> Option<&str> {
    if let Some(rest) = why.strip_prefix("unrecognized field name '") {
        return rest.split('\'').next();
    }
    why.strip_prefix("unknown field `")?.split('`').next()
}

/// One gRPC length-prefixed message (uncompressed).
pub fn frame(message: &[u8]) -> Result<Bytes, Status> {
    let length = u32::try_from(message.len())
        .map_err(|_| Status::out_of_range("the message is larger than 4 GiB"))?;
    let mut framed = BytesMut::with_capacity(5 + message.len());
    framed.put_u8(0);
    framed.put_u32(length);
    framed.put_slice(message);
    Ok(framed.freeze())
}

/// The one message of a unary gRPC reply body.
pub fn unframe(mut body: Bytes) -> Result<Bytes, Status> {
    if body.len() < 5 {
        return Err(Status::internal("a unary reply without a message"));
    }
    if body[0] != 0 {
        return Err(Status::internal(
            "a compressed reply, which was not asked for",
        ));
    }
    let length = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    if body.len() != 5 + length {
        return Err(Status::internal("a unary reply of other than one message"));
    }
    Ok(body.split_off(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let framed = frame(b"hello").unwrap();
        assert_eq!(&framed[..5], &[0, 0, 0, 0, 5]);
        assert_eq!(unframe(framed).unwrap(), Bytes::from_static(b"hello"));
        assert!(unframe(Bytes::from_static(&[0, 0, 0, 0, 9, 1])).is_err());
        assert!(unframe(Bytes::from_static(&[1, 0, 0, 0, 0])).is_err());
    }

    #[test]
    fn the_unknown_field_is_named() {
        assert_eq!(
            named_field("unrecognized field name 'idd' at line 1 column 6"),
            Some("idd")
        );
        assert_eq!(
            named_field("unknown field `idd`, expected `id` at line 1 column 6"),
            Some("idd")
        );
        assert_eq!(named_field("expected value at line 1 column 2"), None);
    }
}
