//! gRPC status: the 17 codes (grpc `doc/statuscodes.md`), and the trailers that carry a status
//! on the wire (grpc `doc/PROTOCOL-HTTP2.md`): `grpc-status` (decimal code), `grpc-message`
//! (percent-encoded UTF-8) and `grpc-status-details-bin` (a base64 `google.rpc.Status`).
//! Responses that are not gRPC at all get a code from their HTTP status
//! (grpc `doc/http-grpc-status-mapping.md`).
#![warn(missing_docs)]

use core::fmt;

use bytes::Bytes;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode, percent_encode};

use super::metadata::{self, MetadataError};

/// A gRPC status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
pub enum Code {
    /// Not an error.
    Ok = 0,
    /// Cancelled, typically by the caller.
    Cancelled = 1,
    /// Unknown error, including codes this table does not know.
    Unknown = 2,
    /// The client sent an invalid argument.
    InvalidArgument = 3,
    /// The deadline expired before the operation completed.
    DeadlineExceeded = 4,
    /// Some requested entity was not found.
    NotFound = 5,
    /// The entity the client tried to create already exists.
    AlreadyExists = 6,
    /// The caller may not execute the operation.
    PermissionDenied = 7,
    /// A resource (quota, memory, message size) is exhausted.
    ResourceExhausted = 8,
    /// The system is not in a state required for the operation.
    FailedPrecondition = 9,
    /// The operation was aborted (concurrency conflict).
    Aborted = 10,
    /// The operation went past the valid range.
    OutOfRange = 11,
    /// The operation is not implemented or supported.
    Unimplemented = 12,
    /// An internal invariant broke.
    Internal = 13,
    /// The service is currently unavailable; retrying may help.
    Unavailable = 14,
    /// Unrecoverable data loss or corruption.
    DataLoss = 15,
    /// The request lacks valid authentication credentials.
    Unauthenticated = 16,
}

impl Code {
    /// Every code, in numeric order.
    pub const ALL: [Code; 17] = [
        Code::Ok,
        Code::Cancelled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];

    /// The code for a number; numbers outside 0..=16 are [`Code::Unknown`]
    /// (statuscodes.md: unknown codes are treated as UNKNOWN).
    pub const fn from_i32(value: i32) -> Code {
        match value {
            0 => Code::Ok,
            1 => Code::Cancelled,
            3 => Code::InvalidArgument,
            4 => Code::DeadlineExceeded,
            5 => Code::NotFound,
            6 => Code::AlreadyExists,
            7 => Code::PermissionDenied,
            8 => Code::ResourceExhausted,
            9 => Code::FailedPrecondition,
            10 => Code::Aborted,
            11 => Code::OutOfRange,
            12 => Code::Unimplemented,
            13 => Code::Internal,
            14 => Code::Unavailable,
            15 => Code::DataLoss,
            16 => Code::Unauthenticated,
            _ => Code::Unknown,
        }
    }

    /// The code's number.
    pub const fn as_i32(self) -> i32 {
        self as i32
    }

    /// The canonical name, as in statuscodes.md (`"DEADLINE_EXCEEDED"`).
    pub const fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The code with this canonical name (`"UNAVAILABLE"`), if any.
    pub fn from_name(name: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The code for a response that is not gRPC (no `grpc-status`), from its HTTP status,
    /// per grpc `doc/http-grpc-status-mapping.md`: 400 → INTERNAL, 401 → UNAUTHENTICATED,
    /// 403 → PERMISSION_DENIED, 404 → UNIMPLEMENTED, 429/502/503/504 → UNAVAILABLE, anything
    /// else → UNKNOWN. (1xx responses are informational: a client keeps waiting for the final
    /// headers rather than mapping them.)
    pub const fn from_http_status(http_status: u16) -> Code {
        match http_status {
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502 | 503 | 504 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }
}

impl From<i32> for Code {
    fn from(value: i32) -> Code {
        Code::from_i32(value)
    }
}

impl From<Code> for i32 {
    fn from(code: Code) -> i32 {
        code.as_i32()
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a `grpc-status` value was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusCodeError {
    /// The value is empty.
    Empty,
    /// The value is not all ASCII digits.
    NotDecimal(String),
}

impl fmt::Display for StatusCodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusCodeError::Empty => f.write_str("grpc-status is empty"),
            StatusCodeError::NotDecimal(v) => write!(f, "grpc-status {v:?} is not a decimal code"),
        }
    }
}

impl std::error::Error for StatusCodeError {}

/// Parses a `grpc-status` value: one or more ASCII digits. Well-formed numbers gRPC does not
/// define (including ones too large for an `i32`) are [`Code::Unknown`].
pub fn parse_grpc_status(value: &[u8]) -> Result<Code, StatusCodeError> {
    if value.is_empty() {
        return Err(StatusCodeError::Empty);
    }
    if !value.iter().all(u8::is_ascii_digit) {
        return Err(StatusCodeError::NotDecimal(
            String::from_utf8_lossy(value).into_owned(),
        ));
    }
    // Leading zeros are allowed; anything longer than that is out of range anyway.
    let significant = value
        .iter()
        .position(|&b| b != b'0')
        .and_then(|i| value.get(i..))
        .unwrap_or(&[]);
    if significant.len() > 2 {
        return Ok(Code::Unknown);
    }
    let n = significant
        .iter()
        .fold(0i32, |acc, d| acc * 10 + i32::from(d - b'0'));
    Ok(Code::from_i32(n))
}

/// What `grpc-message` leaves as is: printable ASCII (0x20..=0x7E) except `%`
/// (PROTOCOL-HTTP2.md, "Percent-Byte-Unencoded"). Controls, DEL and every non-ASCII byte of
/// the UTF-8 text are encoded as `%XX` with uppercase hex.
const GRPC_MESSAGE: &AsciiSet = &CONTROLS.add(b'%');

/// Encodes a status message for the `grpc-message` header.
pub fn encode_grpc_message(message: &str) -> String {
    percent_encode(message.as_bytes(), GRPC_MESSAGE).to_string()
}

/// Decodes a `grpc-message` header. Never fails (the spec: "When decoding invalid values,
/// implementations MUST NOT error or throw away the message"): a `%` not followed by two hex
/// digits passes through as written, lowercase hex is accepted, and bytes that are not valid
/// UTF-8 after decoding become U+FFFD.
pub fn decode_grpc_message(value: &[u8]) -> String {
    let bytes: Vec<u8> = percent_decode(value).collect();
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Encodes status details (a serialized `google.rpc.Status`) for `grpc-status-details-bin`:
/// unpadded base64.
pub fn encode_status_details(details: &[u8]) -> String {
    metadata::encode_binary(details)
}

/// Decodes a `grpc-status-details-bin` header, padded or not.
pub fn decode_status_details(value: &[u8]) -> Result<Bytes, MetadataError> {
    metadata::decode_binary(value).map(Bytes::from)
}

/// A gRPC status: a code, a message and optional details.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The code.
    pub code: Code,
    /// The message (plain text; percent-encoding is the wire's business).
    pub message: String,
    /// A serialized `google.rpc.Status` from `grpc-status-details-bin`, kept as bytes. Its
    /// code should match [`Status::code`] (the spec says a sender MUST NOT contradict it).
    pub details: Option<Bytes>,
}

/// The trailers that carry a [`Status`], ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusTrailers {
    /// `grpc-status`.
    pub grpc_status: String,
    /// `grpc-message`, when the message is not empty.
    pub grpc_message: Option<String>,
    /// `grpc-status-details-bin`, when there are details.
    pub grpc_status_details_bin: Option<String>,
}

impl Status {
    /// A status with no details.
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
            details: None,
        }
    }

    /// `OK` with no message.
    pub fn ok() -> Status {
        Status::new(Code::Ok, "")
    }

    /// Whether the code is `OK`.
    pub fn is_ok(&self) -> bool {
        self.code == Code::Ok
    }

    /// Adds details (a serialized `google.rpc.Status`).
    pub fn with_details(mut self, details: impl Into<Bytes>) -> Status {
        self.details = Some(details.into());
        self
    }

    /// The status of a response that is not gRPC (it has no `grpc-status`), from its HTTP
    /// status (see [`Code::from_http_status`]).
    pub fn from_http_status(http_status: u16) -> Status {
        Status::new(
            Code::from_http_status(http_status),
            format!("received HTTP status {http_status} without grpc-status (not a gRPC response)"),
        )
    }

    /// The status carried by the trailers (or a trailers-only response) of a gRPC response.
    ///
    /// - no `grpc-status`: UNKNOWN, as grpc-go and grpc-java report it;
    /// - a malformed `grpc-status`: INTERNAL (grpc-go's "malformed grpc-status");
    /// - a code gRPC does not define: UNKNOWN;
    /// - `grpc-message` is percent-decoded leniently ([`decode_grpc_message`]);
    /// - an undecodable `grpc-status-details-bin` is dropped: details are extra context, and
    ///   losing them beats turning the server's code (which drives retries) into another.
    pub fn from_trailers(
        grpc_status: Option<&[u8]>,
        grpc_message: Option<&[u8]>,
        grpc_status_details_bin: Option<&[u8]>,
    ) -> Status {
        let message = grpc_message.map(decode_grpc_message).unwrap_or_default();
        let details = grpc_status_details_bin.and_then(|v| decode_status_details(v).ok());
        let (code, message) = match grpc_status.map(parse_grpc_status) {
            None => (
                Code::Unknown,
                if message.is_empty() {
                    "missing grpc-status".to_string()
                } else {
                    message
                },
            ),
            Some(Err(e)) => (Code::Internal, e.to_string()),
            Some(Ok(code)) => (code, message),
        };
        Status {
            code,
            message,
            details,
        }
    }

    /// The trailers to send for this status.
    pub fn to_trailers(&self) -> StatusTrailers {
        StatusTrailers {
            grpc_status: self.code.as_i32().to_string(),
            grpc_message: (!self.message.is_empty()).then(|| encode_grpc_message(&self.message)),
            grpc_status_details_bin: self.details.as_deref().map(encode_status_details),
        }
    }

    /// The details decoded as a `google.rpc.Status`, when there are any.
    pub fn details_proto(
        &self,
    ) -> Option<Result<crate::pb::google::rpc::Status, prost::DecodeError>> {
        self.details
            .as_deref()
            .map(<crate::pb::google::rpc::Status as prost::Message>::decode)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{}: {}", self.code, self.message)
        }
    }
}

impl std::error::Error for Status {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn codes() {
        for (i, c) in Code::ALL.iter().enumerate() {
            let n = i32::try_from(i).unwrap();
            assert_eq!(c.as_i32(), n);
            assert_eq!(Code::from_i32(n), *c);
            assert_eq!(Code::from_name(c.name()), Some(*c));
        }
        assert_eq!(Code::DeadlineExceeded.name(), "DEADLINE_EXCEEDED");
        assert_eq!(Code::Unauthenticated.as_i32(), 16);
        for unknown in [-1, 17, 99, i32::MAX, i32::MIN] {
            assert_eq!(Code::from_i32(unknown), Code::Unknown);
        }
        assert_eq!(Code::from_name("unavailable"), None);
        assert_eq!(Code::Unavailable.to_string(), "UNAVAILABLE");
    }

    #[test]
    fn http_mapping() {
        let table = [
            (400, Code::Internal),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::Unimplemented),
            (429, Code::Unavailable),
            (502, Code::Unavailable),
            (503, Code::Unavailable),
            (504, Code::Unavailable),
            (200, Code::Unknown),
            (302, Code::Unknown),
            (405, Code::Unknown),
            (500, Code::Unknown),
            (0, Code::Unknown),
        ];
        for (http, code) in table {
            assert_eq!(Code::from_http_status(http), code, "{http}");
        }
        let s = Status::from_http_status(503);
        assert_eq!(s.code, Code::Unavailable);
        assert!(s.message.contains("503"));
    }

    #[test]
    fn grpc_status_values() {
        assert_eq!(parse_grpc_status(b"0"), Ok(Code::Ok));
        assert_eq!(parse_grpc_status(b"14"), Ok(Code::Unavailable));
        assert_eq!(parse_grpc_status(b"0014"), Ok(Code::Unavailable));
        assert_eq!(parse_grpc_status(b"17"), Ok(Code::Unknown));
        assert_eq!(
            parse_grpc_status(b"99999999999999999999"),
            Ok(Code::Unknown)
        );
        assert_eq!(parse_grpc_status(b""), Err(StatusCodeError::Empty));
        for bad in [&b"-1"[..], b"+1", b" 1", b"1 ", b"0x1", b"UNAVAILABLE"] {
            assert!(
                matches!(parse_grpc_status(bad), Err(StatusCodeError::NotDecimal(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn message_encoding() {
        assert_eq!(encode_grpc_message(""), "");
        assert_eq!(
            encode_grpc_message("no such user: bob ~!"),
            "no such user: bob ~!"
        );
        assert_eq!(encode_grpc_message("50% off"), "50%25 off");
        assert_eq!(encode_grpc_message("a\nb\tc\x7f"), "a%0Ab%09c%7F");
        assert_eq!(encode_grpc_message("café ☕"), "caf%C3%A9 %E2%98%95");
    }

    #[test]
    fn message_decoding_is_lenient() {
        assert_eq!(decode_grpc_message(b"caf%C3%A9"), "café");
        assert_eq!(decode_grpc_message(b"caf%c3%a9"), "café");
        assert_eq!(decode_grpc_message(b"50%25"), "50%");
        // Broken escapes pass through as written.
        assert_eq!(decode_grpc_message(b"100%"), "100%");
        assert_eq!(decode_grpc_message(b"%zz%4"), "%zz%4");
        assert_eq!(decode_grpc_message(b"%%41"), "%A");
        // Invalid UTF-8 becomes the replacement character; the rest survives.
        assert_eq!(decode_grpc_message(b"bad %FF byte"), "bad \u{FFFD} byte");
        assert_eq!(decode_grpc_message(b"raw \xff"), "raw \u{FFFD}");
    }

    #[test]
    fn trailers() {
        let details = crate::pb::google::rpc::Status {
            code: 14,
            message: "try later".into(),
            details: vec![],
        };
        let bytes = prost::Message::encode_to_vec(&details);
        let s = Status::new(Code::Unavailable, "try later: 100%").with_details(bytes.clone());
        let t = s.to_trailers();
        assert_eq!(t.grpc_status, "14");
        assert_eq!(t.grpc_message.as_deref(), Some("try later: 100%25"));
        let wire = t.grpc_status_details_bin.clone().unwrap();
        assert!(!wire.ends_with('='));
        let back = Status::from_trailers(
            Some(t.grpc_status.as_bytes()),
            t.grpc_message.as_deref().map(str::as_bytes),
            Some(wire.as_bytes()),
        );
        assert_eq!(back, s);
        assert_eq!(back.details_proto().unwrap().unwrap(), details);
        assert_eq!(back.to_string(), "UNAVAILABLE: try later: 100%");

        assert_eq!(
            Status::ok().to_trailers(),
            StatusTrailers {
                grpc_status: "0".into(),
                grpc_message: None,
                grpc_status_details_bin: None
            }
        );
    }

    #[test]
    fn odd_trailers() {
        let missing = Status::from_trailers(None, None, None);
        assert_eq!(missing.code, Code::Unknown);
        assert_eq!(missing.message, "missing grpc-status");
        let missing_with_message = Status::from_trailers(None, Some(b"boom"), None);
        assert_eq!(
            (
                missing_with_message.code,
                missing_with_message.message.as_str()
            ),
            (Code::Unknown, "boom")
        );
        let malformed = Status::from_trailers(Some(b"abc"), Some(b"x"), None);
        assert_eq!(malformed.code, Code::Internal);
        assert!(malformed.message.contains("abc"));
        let undefined = Status::from_trailers(Some(b"42"), None, None);
        assert_eq!(undefined.code, Code::Unknown);
        // Undecodable details are dropped; the code stands.
        let bad_details = Status::from_trailers(Some(b"14"), None, Some(b"!!!"));
        assert_eq!(
            (bad_details.code, bad_details.details),
            (Code::Unavailable, None)
        );
        // Padded details are accepted.
        let padded = Status::from_trailers(Some(b"2"), None, Some(b"AAE="));
        assert_eq!(padded.details.as_deref(), Some(&[0u8, 1][..]));
    }

    proptest! {
        #[test]
        fn message_round_trip(msg in "\\PC*|[\\x00-\\x7f]*") {
            let wire = encode_grpc_message(&msg);
            prop_assert!(wire.bytes().all(|b| (0x20..=0x7e).contains(&b)));
            prop_assert_eq!(decode_grpc_message(wire.as_bytes()), msg);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_grpc_message(&bytes);
            let _ = parse_grpc_status(&bytes);
            let _ = decode_status_details(&bytes);
            let _ = Status::from_trailers(Some(&bytes), Some(&bytes), Some(&bytes));
        }

        #[test]
        fn status_round_trip(code in 0i32..17, msg in "\\PC{0,32}", details in proptest::option::of(prop::collection::vec(any::<u8>(), 0..32))) {
            let mut s = Status::new(Code::from_i32(code), msg);
            s.details = details.map(Bytes::from);
            let t = s.to_trailers();
            let back = Status::from_trailers(
                Some(t.grpc_status.as_bytes()),
                t.grpc_message.as_deref().map(str::as_bytes),
                t.grpc_status_details_bin.as_deref().map(str::as_bytes),
            );
            prop_assert_eq!(back, s);
        }

        #[test]
        fn grpc_status_of_any_number(n in any::<u64>()) {
            let code = parse_grpc_status(n.to_string().as_bytes()).unwrap();
            let want = if n <= 16 { Code::ALL[n as usize] } else { Code::Unknown };
            prop_assert_eq!(code, want);
        }
    }
}
