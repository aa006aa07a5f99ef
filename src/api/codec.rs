//! The protobuf codec of roster's generated services and clients:
//! `tonic_prost::ProstCodec`, except that a message that does not decode
//! (a truncated or malformed body, a wrong wire type, a string that is not
//! UTF-8) is the caller's mistake, `INVALID_ARGUMENT`, and not prost's
//! default `INTERNAL` carrying the decoder's text: a client retrying on
//! `INTERNAL` would send the same bytes again, and alerts would call it a bug.
//!
//! `build.rs` names this codec (`codec_path`), so every RPC uses it.

use std::marker::PhantomData;

use prost::Message;
use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstCodec, ProstEncoder};

use crate::domain::Error;

/// `ProstCodec` with [`MessageDecoder`] as its decoder.
#[derive(Debug, Clone)]
pub struct RosterCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for RosterCodec<T, U> {
    fn default() -> Self {
        Self {
            _types: PhantomData,
        }
    }
}

impl<T, U> Codec for RosterCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = MessageDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        MessageDecoder {
            settings: BufferSettings::default(),
            _type: PhantomData,
        }
    }
}

/// Decodes with prost; a decode error becomes `INVALID_ARGUMENT` naming
/// the field `request` and saying what prost found.
#[derive(Debug)]
pub struct MessageDecoder<U> {
    settings: BufferSettings,
    _type: PhantomData<U>,
}

impl<U: Message + Default> Decoder for MessageDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(malformed)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.settings
    }
}

fn malformed(err: prost::DecodeError) -> Status {
    let text = err.to_string();
    let what = text
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(&text);
    Status::from(Error::invalid(
        "request",
        format!("is not a valid protobuf message for this RPC ({what})"),
    ))
}
