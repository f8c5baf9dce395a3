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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn partial_input_waits_for_more() {
        let mut buf = BytesMut::new();
        encode_raw(b"hello", true, &mut buf);
        assert_eq!(&buf[..], b"\x01\x00\x00\x00\x05hello");
        let mut d = FrameDecoder::new(DEFAULT_MAX_MESSAGE_SIZE);
        for (i, b) in buf.iter().enumerate() {
            assert_eq!(d.decode_next(), Ok(None), "after {i} bytes");
            d.push(&[*b]);
        }
        assert_eq!(
            d.decode_next(),
            Ok(Some(Frame {
                compressed: true,
                data: Bytes::from_static(b"hello")
            }))
        );
        assert_eq!((d.decode_next(), d.buffered()), (Ok(None), 0));
    }

    #[test]
    fn bad_flag_and_size_limit() {
        let mut d = FrameDecoder::new(4);
        d.push(b"\x02");
        assert_eq!(d.decode_next(), Err(FrameError::BadFlag(2)));
        let mut d = FrameDecoder::new(4);
        d.push(b"\x00\x00\x00\x00\x05");
        assert_eq!(
            d.decode_next(),
            Err(FrameError::TooLarge { len: 5, max: 4 })
        );
        // The limit is checked from the header alone, before the payload arrives.
        let mut d = FrameDecoder::new(4);
        d.push(b"\x00\xff\xff\xff\xff");
        assert!(matches!(d.decode_next(), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn prost_messages_frame() {
        let msg = prost_types::Duration {
            seconds: 3,
            nanos: 5,
        };
        let mut buf = BytesMut::new();
        encode_frame(&msg, &mut buf);
        let mut d = FrameDecoder::new(DEFAULT_MAX_MESSAGE_SIZE);
        d.push(&buf);
        let f = d.decode_next().unwrap().unwrap();
        assert!(!f.compressed);
        assert_eq!(
            <prost_types::Duration as prost::Message>::decode(f.data).unwrap(),
            msg
        );
    }

    proptest! {
        /// Frames survive any split of the byte stream into chunks.
        #[test]
        fn round_trip_any_chunking(
            msgs in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..64), any::<bool>()), 0..6),
            cuts in prop::collection::vec(1usize..16, 0..64),
        ) {
            let mut wire = BytesMut::new();
            for (m, c) in &msgs {
                encode_raw(m, *c, &mut wire);
            }
            let mut d = FrameDecoder::new(64);
            let mut got = Vec::new();
            let mut rest = &wire[..];
            let mut cuts = cuts.into_iter().chain(core::iter::repeat(7));
            while !rest.is_empty() {
                let n = cuts.next().unwrap_or(7).min(rest.len());
                let (chunk, tail) = rest.split_at(n);
                d.push(chunk);
                rest = tail;
                while let Some(f) = d.decode_next().unwrap() {
                    got.push((f.data.to_vec(), f.compressed));
                }
            }
            prop_assert_eq!(got, msgs);
            prop_assert_eq!(d.buffered(), 0);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..128), max in 0usize..64) {
            let mut d = FrameDecoder::new(max);
            d.push(&bytes);
            for _ in 0..bytes.len() + 1 {
                match d.decode_next() {
                    Ok(Some(f)) => prop_assert!(f.data.len() <= max),
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
