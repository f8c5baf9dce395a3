//! Custom metadata rules from the gRPC over HTTP/2 protocol (grpc `doc/PROTOCOL-HTTP2.md`,
//! "Custom-Metadata"): which names an application may set, what a name and an ASCII value
//! may contain, and the base64 form of `-bin` values.
//!
//! Header names are checked as the spec writes them: lowercase `0-9 a-z _ - .` only. Names
//! ending in `-bin` carry arbitrary bytes, base64-encoded on the wire; all others carry
//! printable ASCII.
//!
//! # Dubbo Triple
//!
//! Dubbo 3's Triple protocol is gRPC-compatible and puts its service routing on ordinary
//! request headers: `tri-service-version`, `tri-service-group`, `tri-req-id`,
//! `tri-consumer-appname`, `tri-unit-info`, `tri-trace-traceid`, `tri-trace-rpcid`,
//! `tri-attachment`, `tri-service-timeout`... (and `tri-trace-proto-bin`, a normal `-bin`
//! header). None is reserved here: they are valid custom metadata, an application (or a
//! Dubbo bridge) may set them, and a server hands them to the application unchanged. skiff
//! neither interprets nor rewrites them, so a skiff client can call a Dubbo Triple provider
//! and a skiff server can serve a Dubbo consumer with the group and version intact.
#![warn(missing_docs)]

use core::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// The suffix that marks a binary header.
pub const BINARY_SUFFIX: &str = "-bin";

/// Standard-alphabet base64 (RFC 4648 §4) as gRPC wants it for `-bin` values: emit without
/// padding, accept with or without ("Implementations MUST accept padded and un-padded values
/// and should emit un-padded values"). Non-zero trailing bits are tolerated, as grpc-go
/// tolerates them: being strict there would only reject a peer's slightly-off encoder.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Why a name is not for applications to set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reserved {
    /// An HTTP/2 pseudo-header (`:path`, `:authority`, ...).
    PseudoHeader,
    /// Written by the gRPC transport: `te`, `content-type`, `user-agent` (an application's
    /// user agent goes through the channel's option and is prefixed to gRPC's own).
    Transport,
    /// A `grpc-` header the gRPC library itself writes: timeout, encodings, status, message,
    /// status details, message type, previous retry attempts (gRFC A6).
    Grpc,
    /// A connection-specific header HTTP/2 forbids (RFC 9113 §8.2.2), plus `host`, which
    /// `:authority` replaces.
    ConnectionSpecific,
}

impl fmt::Display for Reserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reserved::PseudoHeader => "an HTTP/2 pseudo-header",
            Reserved::Transport => "set by the gRPC transport",
            Reserved::Grpc => "a gRPC protocol header",
            Reserved::ConnectionSpecific => "a connection-specific header HTTP/2 forbids",
        })
    }
}

/// Whether `name` is reserved, and why.
///
/// Not reserved, on purpose: `grpc-retry-pushback-ms` (servers send it through trailing
/// metadata, gRFC A6), `grpc-trace-bin` / `grpc-tags-bin` (set by tracing plugins), and any
/// other `grpc-` name. The spec reserves all of `grpc-*` for future use and asks applications
/// not to use them, but blocking the unknown ones would break those plugins; see
/// [`is_grpc_prefixed`].
pub fn reserved(name: &str) -> Option<Reserved> {
    if name.starts_with(':') {
        return Some(Reserved::PseudoHeader);
    }
    match name {
        "te" | "content-type" | "user-agent" => Some(Reserved::Transport),
        "grpc-timeout"
        | "grpc-encoding"
        | "grpc-accept-encoding"
        | "grpc-message-type"
        | "grpc-status"
        | "grpc-message"
        | "grpc-status-details-bin"
        | "grpc-previous-rpc-attempts" => Some(Reserved::Grpc),
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade"
        | "host" => Some(Reserved::ConnectionSpecific),
        _ => None,
    }
}

/// Whether `name` is reserved (see [`reserved`]).
pub fn is_reserved(name: &str) -> bool {
    reserved(name).is_some()
}

/// Whether `name` starts with `grpc-`, the prefix the spec keeps for gRPC's own use.
pub fn is_grpc_prefixed(name: &str) -> bool {
    name.starts_with("grpc-")
}

/// Whether a received header belongs to the application's metadata: everything that is not
/// reserved. Dubbo Triple's `tri-*` headers are included.
pub fn is_application_header(name: &str) -> bool {
    !is_reserved(name)
}

/// Whether `name` is a binary (`-bin`) header.
pub fn is_binary(name: &str) -> bool {
    name.ends_with(BINARY_SUFFIX)
}

/// What a valid metadata name carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// Printable ASCII.
    Ascii,
    /// Arbitrary bytes, base64 on the wire.
    Binary,
}

/// Invalid metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataError {
    /// The name is empty.
    EmptyName,
    /// The name has a character outside `0-9 a-z _ - .` (uppercase included: HTTP/2 names
    /// are lowercase).
    InvalidNameChar {
        /// The name.
        name: String,
        /// Byte offset of the first bad character.
        at: usize,
    },
    /// The name is reserved (see [`reserved`]).
    ReservedName {
        /// The name.
        name: String,
        /// Why.
        why: Reserved,
    },
    /// An ASCII value has a byte outside printable ASCII (0x20..=0x7E).
    InvalidValueByte {
        /// The byte.
        byte: u8,
        /// Its offset.
        at: usize,
    },
    /// A `-bin` value is not base64.
    InvalidBase64(String),
}

impl fmt::Display for MetadataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetadataError::EmptyName => f.write_str("metadata name is empty"),
            MetadataError::InvalidNameChar { name, at } => write!(
                f,
                "metadata name {name:?} has an invalid character at byte {at} (allowed: 0-9 a-z _ - .)"
            ),
            MetadataError::ReservedName { name, why } => {
                write!(f, "metadata name {name:?} is reserved: {why}")
            }
            MetadataError::InvalidValueByte { byte, at } => write!(
                f,
                "metadata value has byte 0x{byte:02x} at {at}; ASCII values must be printable (0x20-0x7E), use a -bin name for bytes"
            ),
            MetadataError::InvalidBase64(why) => {
                write!(f, "binary metadata value is not base64: {why}")
            }
        }
    }
}

impl std::error::Error for MetadataError {}

/// Checks a name's syntax (`1*( 0-9 / a-z / "_" / "-" / "." )`), not whether it is reserved.
pub fn validate_name(name: &str) -> Result<ValueKind, MetadataError> {
    if name.is_empty() {
        return Err(MetadataError::EmptyName);
    }
    if let Some(at) = name
        .bytes()
        .position(|b| !(b.is_ascii_digit() || b.is_ascii_lowercase() || b"_-.".contains(&b)))
    {
        return Err(MetadataError::InvalidNameChar {
            name: name.to_string(),
            at,
        });
    }
    Ok(if is_binary(name) {
        ValueKind::Binary
    } else {
        ValueKind::Ascii
    })
}

/// Checks a name an application wants to send: valid syntax and not reserved.
pub fn check_application_name(name: &str) -> Result<ValueKind, MetadataError> {
    // Pseudo-headers fail the syntax check on ':', but "reserved" is the better answer.
    if let Some(why) = reserved(name) {
        return Err(MetadataError::ReservedName {
            name: name.to_string(),
            why,
        });
    }
    validate_name(name)
}

/// Checks an ASCII value: printable ASCII, space included (0x20..=0x7E). Empty is allowed.
/// Leading or trailing spaces are allowed too; the spec says a peer may strip them.
pub fn validate_ascii_value(value: &[u8]) -> Result<(), MetadataError> {
    match value.iter().position(|b| !(0x20..=0x7E).contains(b)) {
        Some(at) => Err(MetadataError::InvalidValueByte {
            byte: value.get(at).copied().unwrap_or(0),
            at,
        }),
        None => Ok(()),
    }
}

/// Checks one application entry: the name (syntax, not reserved) and, for an ASCII name,
/// the value. Binary values may hold any bytes.
pub fn check_application_entry(name: &str, value: &[u8]) -> Result<ValueKind, MetadataError> {
    let kind = check_application_name(name)?;
    if kind == ValueKind::Ascii {
        validate_ascii_value(value)?;
    }
    Ok(kind)
}

/// The wire form of a `-bin` value: base64 without padding.
pub fn encode_binary(value: &[u8]) -> String {
    BASE64.encode(value)
}

/// Decodes one `-bin` value, padded or not.
pub fn decode_binary(value: &[u8]) -> Result<Vec<u8>, MetadataError> {
    BASE64
        .decode(value)
        .map_err(|e| MetadataError::InvalidBase64(e.to_string()))
}

/// Decodes a `-bin` header that may hold several values joined with `,` (the spec: "Duplicate
/// header names may have their values joined with "," ... Implementations must split
/// Binary-Headers on "," before decoding"). Spaces around each part are ignored.
pub fn decode_binary_values(value: &[u8]) -> Result<Vec<Vec<u8>>, MetadataError> {
    value
        .split(|&b| b == b',')
        .map(|part| decode_binary(part.trim_ascii()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names() {
        assert_eq!(validate_name("x-user-id"), Ok(ValueKind::Ascii));
        assert_eq!(validate_name("trace.v1_id"), Ok(ValueKind::Ascii));
        assert_eq!(validate_name("x-token-bin"), Ok(ValueKind::Binary));
        assert_eq!(validate_name(""), Err(MetadataError::EmptyName));
        for bad in ["X-User", "a b", "a:b", "é", "a/b", "a\0"] {
            assert!(
                matches!(
                    validate_name(bad),
                    Err(MetadataError::InvalidNameChar { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn reserved_names() {
        for (name, why) in [
            (":path", Reserved::PseudoHeader),
            (":authority", Reserved::PseudoHeader),
            ("te", Reserved::Transport),
            ("content-type", Reserved::Transport),
            ("user-agent", Reserved::Transport),
            ("grpc-timeout", Reserved::Grpc),
            ("grpc-encoding", Reserved::Grpc),
            ("grpc-accept-encoding", Reserved::Grpc),
            ("grpc-status", Reserved::Grpc),
            ("grpc-message", Reserved::Grpc),
            ("grpc-status-details-bin", Reserved::Grpc),
            ("grpc-message-type", Reserved::Grpc),
            ("grpc-previous-rpc-attempts", Reserved::Grpc),
            ("connection", Reserved::ConnectionSpecific),
            ("transfer-encoding", Reserved::ConnectionSpecific),
            ("host", Reserved::ConnectionSpecific),
        ] {
            assert_eq!(reserved(name), Some(why), "{name}");
            assert_eq!(
                check_application_name(name),
                Err(MetadataError::ReservedName {
                    name: name.into(),
                    why
                })
            );
            assert!(!is_application_header(name));
        }
        for free in [
            "grpc-retry-pushback-ms",
            "grpc-trace-bin",
            "grpc-tags-bin",
            "authorization",
            "x-b3-traceid",
        ] {
            assert_eq!(reserved(free), None, "{free}");
            assert!(check_application_name(free).is_ok());
        }
        assert!(is_grpc_prefixed("grpc-trace-bin") && !is_grpc_prefixed("x-grpc"));
    }

    /// Dubbo Triple's headers are ordinary metadata: sendable, received by the application,
    /// values untouched.
    #[test]
    fn dubbo_triple_headers_pass_through() {
        let request = [
            ("tri-service-version", &b"1.0.0"[..]),
            ("tri-service-group", b"blue"),
            ("tri-req-id", b"1f3a"),
            ("tri-consumer-appname", b"shop-frontend"),
            ("tri-unit-info", b"unit-a"),
            ("tri-trace-traceid", b"a1b2c3"),
            ("tri-trace-rpcid", b"0.1"),
            ("tri-attachment", b"k=v"),
            ("tri-service-timeout", b"3000"),
        ];
        for (name, value) in request {
            assert_eq!(
                check_application_entry(name, value),
                Ok(ValueKind::Ascii),
                "{name}"
            );
            assert!(is_application_header(name), "{name}");
            assert!(!is_reserved(name) && !is_grpc_prefixed(name));
        }
        // The one binary Triple header follows the normal -bin rules.
        let trace = [0x0a, 0x03, b'a', b'b', 0xff];
        assert_eq!(
            check_application_entry("tri-trace-proto-bin", &trace),
            Ok(ValueKind::Binary)
        );
        assert_eq!(
            decode_binary(encode_binary(&trace).as_bytes()).unwrap(),
            trace
        );
        // What a server passes on is exactly what arrived, including the gRPC-reserved ones
        // being held back.
        let received = [
            ("content-type", "application/grpc+proto"),
            ("grpc-timeout", "3S"),
            ("tri-service-version", "1.0.0"),
            ("tri-service-group", "blue"),
            ("x-user", "u1"),
        ];
        let app: Vec<_> = received
            .iter()
            .filter(|(n, _)| is_application_header(n))
            .collect();
        assert_eq!(
            app,
            [
                &("tri-service-version", "1.0.0"),
                &("tri-service-group", "blue"),
                &("x-user", "u1")
            ]
        );
    }

    #[test]
    fn ascii_values() {
        assert_eq!(validate_ascii_value(b""), Ok(()));
        assert_eq!(validate_ascii_value(b" a ~!"), Ok(()));
        assert_eq!(
            validate_ascii_value(b"a\tb"),
            Err(MetadataError::InvalidValueByte { byte: 9, at: 1 })
        );
        assert_eq!(
            validate_ascii_value(b"\x7f"),
            Err(MetadataError::InvalidValueByte { byte: 0x7f, at: 0 })
        );
        assert_eq!(
            validate_ascii_value("é".as_bytes()),
            Err(MetadataError::InvalidValueByte { byte: 0xc3, at: 0 })
        );
        assert!(check_application_entry("x-a", b"\n").is_err());
        assert!(check_application_entry("x-a-bin", b"\n").is_ok());
    }

    #[test]
    fn binary_values() {
        // grpc-go's vector: unpadded, 10 characters.
        assert_eq!(decode_binary(b"Zm9vAGJhcg").unwrap(), b"foo\0bar");
        assert_eq!(decode_binary(b"Zm9vAGJhcg==").unwrap(), b"foo\0bar");
        assert_eq!(encode_binary(b"foo\0bar"), "Zm9vAGJhcg");
        assert_eq!(encode_binary(b""), "");
        assert_eq!(decode_binary(b"").unwrap(), b"");
        assert!(decode_binary(b"Zm9v!").is_err());
        assert!(decode_binary(b"Z").is_err());
        assert!(
            decode_binary(b"Zm9v_-").is_err(),
            "URL-safe alphabet is not gRPC's"
        );
        assert_eq!(
            decode_binary_values(b"Zm9v, YQ==,AA").unwrap(),
            [b"foo".to_vec(), b"a".to_vec(), vec![0]]
        );
        assert!(decode_binary(b"Zm9v,YmFy").is_err());
    }

    proptest! {
        #[test]
        fn binary_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let wire = encode_binary(&bytes);
            prop_assert!(!wire.contains('='));
            prop_assert_eq!(validate_ascii_value(wire.as_bytes()), Ok(()));
            prop_assert_eq!(decode_binary(wire.as_bytes()).unwrap(), bytes.clone());
            // Padded, as some peers send it.
            let padded = format!("{wire}{}", "=".repeat((4 - wire.len() % 4) % 4));
            prop_assert_eq!(decode_binary(padded.as_bytes()).unwrap(), bytes);
        }

        #[test]
        fn joined_values_split(parts in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..16), 1..5)) {
            let joined = parts.iter().map(|p| encode_binary(p)).collect::<Vec<_>>().join(",");
            prop_assert_eq!(decode_binary_values(joined.as_bytes()).unwrap(), parts);
        }

        #[test]
        fn arbitrary_input_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64), s in "\\PC{0,16}") {
            let _ = decode_binary(&bytes);
            let _ = decode_binary_values(&bytes);
            let _ = validate_ascii_value(&bytes);
            let _ = validate_name(&s);
            let _ = check_application_entry(&s, &bytes);
        }

        #[test]
        fn spec_names_are_valid(name in "[0-9a-z_.-]{1,24}") {
            let kind = validate_name(&name).unwrap();
            prop_assert_eq!(kind == ValueKind::Binary, name.ends_with("-bin"));
        }
    }
}
