//! gRPC length-prefixed messages: a 1-byte compressed flag, a 4-byte big-endian length, the
//! payload (gRPC over HTTP/2 protocol, "Length-Prefixed-Message").

use bytes::{Buf, BufMut, Bytes, BytesMut};
use core::fmt;

/// Default maximum message size (gRPC's default receive limit).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// One decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The compressed flag.
    pub compressed: bool,
    /// The payload.
    pub data: Bytes,
}

/// Invalid framing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The flag byte is neither 0 nor 1.
    BadFlag(u8),
    /// The message is larger than the limit (RESOURCE_EXHAUSTED).
    TooLarge {
        /// Announced length.
        len: usize,
        /// Limit.
        max: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadFlag(b) => write!(f, "invalid compressed-flag byte {b}"),
            FrameError::TooLarge { len, max } => {
                write!(f, "message of {len} bytes exceeds the limit of {max}")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Encodes a message as one frame.
pub fn encode_frame(msg: &impl prost::Message, buf: &mut BytesMut) {
    let len = msg.encoded_len();
    buf.reserve(5 + len);
    buf.put_u8(0);
    buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    // Encoding into a BytesMut with reserved capacity cannot fail.
    let _ = msg.encode(buf);
}

/// Encodes a raw payload as one frame.
pub fn encode_raw(payload: &[u8], compressed: bool, buf: &mut BytesMut) {
    buf.reserve(5 + payload.len());
    buf.put_u8(u8::from(compressed));
    buf.put_u32(u32::try_from(payload.len()).unwrap_or(u32::MAX));
    buf.put_slice(payload);
}

/// A streaming decoder: push bytes as they arrive, take whole frames out.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max: usize,
}

impl FrameDecoder {
    /// A decoder that rejects messages larger than `max`.
    pub fn new(max: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::new(),
            max,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole frame, `Ok(None)` if more bytes are needed.
    pub fn decode_next(&mut self) -> Result<Option<Frame>, FrameError> {
        let Some(&flag) = self.buf.first() else {
            return Ok(None);
        };
        if flag > 1 {
            return Err(FrameError::BadFlag(flag));
        }
        let Some(len_bytes) = self.buf.get(1..5) else {
            return Ok(None);
        };
        let mut be = [0u8; 4];
        be.copy_from_slice(len_bytes);
        let len = u32::from_be_bytes(be) as usize;
        if len > self.max {
            return Err(FrameError::TooLarge { len, max: self.max });
        }
        if self.buf.len() < 5 + len {
            self.buf.reserve(5 + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(5);
        let data = self.buf.split_to(len).freeze();
        Ok(Some(Frame {
            compressed: flag == 1,
            data,
        }))
    }
}
