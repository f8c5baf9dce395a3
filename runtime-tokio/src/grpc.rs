//! The bits of gRPC-over-HTTP/2 the adapter needs around the core's message codec: status codes
//! in trailers, `grpc-message` percent-encoding, and writing under HTTP/2 flow control.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

/// gRPC status codes used by the adapter.
pub(crate) mod code {
    pub const OK: u32 = 0;
    pub const INVALID_ARGUMENT: u32 = 3;
    pub const RESOURCE_EXHAUSTED: u32 = 8;
    pub const UNIMPLEMENTED: u32 = 12;
    pub const INTERNAL: u32 = 13;
    pub const UNAVAILABLE: u32 = 14;
}

/// The canonical name of a gRPC status code.
pub fn code_name(code: u32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

/// `grpc-status` and `grpc-message` from headers or trailers, if `grpc-status` is there.
pub(crate) fn status_of(headers: &HeaderMap) -> Option<(u32, String)> {
    let code = headers.get("grpc-status")?;
    let code = code
        .to_str()
        .ok()
        .and_then(|c| c.trim().parse::<u32>().ok())
        .unwrap_or(2); // unparseable status: UNKNOWN
    let message = headers
        .get("grpc-message")
        .map(|m| percent_decode(m.as_bytes()))
        .unwrap_or_default();
    Some((code, message))
}

/// A human-readable close reason, `grpc-status 14 (UNAVAILABLE): going away`.
pub(crate) fn describe_status(code: u32, message: &str) -> String {
    if message.is_empty() {
        format!("grpc-status {code} ({})", code_name(code))
    } else {
        format!("grpc-status {code} ({}): {message}", code_name(code))
    }
}

/// Trailers (or trailers-only headers) carrying a status.
pub(crate) fn status_trailers(code: u32, message: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("grpc-status", HeaderValue::from(code));
    if !message.is_empty()
        && let Ok(v) = HeaderValue::from_str(&percent_encode(message))
    {
        h.insert("grpc-message", v);
    }
    h
}

/// gRPC's `grpc-message` encoding: bytes outside printable ASCII, and `%`, as `%XX`.
pub(crate) fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` sequences; malformed ones are kept as they are.
pub(crate) fn percent_decode(s: &[u8]) -> String {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b == b'%'
            && let (Some(h), Some(l)) = (
                s.get(i + 1).copied().and_then(hex),
                s.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends `data` on an HTTP/2 stream, respecting flow control: reserve capacity, wait for the
/// peer's window, send what fits, repeat. Never buffers more than the window in h2.
pub(crate) async fn send_all(
    stream: &mut h2::SendStream<Bytes>,
    mut data: Bytes,
) -> Result<(), String> {
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        let available = match std::future::poll_fn(|cx| stream.poll_capacity(cx)).await {
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(format!("sending: {e}")),
            None => return Err("sending: stream closed".to_string()),
        };
        if available == 0 {
            continue;
        }
        let chunk = data.split_to(available.min(data.len()));
        stream
            .send_data(chunk, false)
            .map_err(|e| format!("sending: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_round_trip() {
        let s = "bad: 100% wrong\nnext ✓";
        let enc = percent_encode(s);
        assert!(enc.is_ascii());
        assert!(!enc.contains('\n'));
        assert_eq!(percent_decode(enc.as_bytes()), s);
        assert_eq!(percent_decode(b"50%"), "50%");
        assert_eq!(percent_decode(b"%zz"), "%zz");
    }

    #[test]
    fn status_from_trailers() {
        let t = status_trailers(14, "going away");
        assert_eq!(status_of(&t), Some((14, "going away".to_string())));
        assert_eq!(status_of(&HeaderMap::new()), None);
        assert_eq!(
            describe_status(14, "x"),
            "grpc-status 14 (UNAVAILABLE): x".to_string()
        );
        assert_eq!(describe_status(0, ""), "grpc-status 0 (OK)");
    }
}
