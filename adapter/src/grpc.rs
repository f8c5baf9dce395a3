//! The bits of gRPC-over-HTTP/2 the adapter needs around the core's message codec: status codes
//! in trailers, `grpc-message` percent-encoding, and writing under HTTP/2 flow control.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};

/// gRPC status codes used by the adapter.
#[allow(dead_code)] // not every code is used by every module
pub mod code {
    pub const OK: u32 = 0;
    pub const CANCELLED: u32 = 1;
    pub const UNKNOWN: u32 = 2;
    pub const INVALID_ARGUMENT: u32 = 3;
    pub const DEADLINE_EXCEEDED: u32 = 4;
    pub const PERMISSION_DENIED: u32 = 7;
    pub const UNAUTHENTICATED: u32 = 16;
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
pub fn status_of(headers: &HeaderMap) -> Option<(u32, String)> {
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
pub fn describe_status(code: u32, message: &str) -> String {
    if message.is_empty() {
        format!("grpc-status {code} ({})", code_name(code))
    } else {
        format!("grpc-status {code} ({}): {message}", code_name(code))
    }
}

/// Trailers (or trailers-only headers) carrying a status.
pub fn status_trailers(code: u32, message: &str) -> HeaderMap {
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
pub fn percent_encode(s: &str) -> String {
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
pub fn percent_decode(s: &[u8]) -> String {
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

/// Parses a `grpc-timeout` value: 1 to 8 ASCII digits and a unit (`H`, `M`, `S`, `m`, `u`,
/// `n`). `None` when malformed (the header is then ignored, as gRPC servers do).
pub fn parse_timeout(v: &[u8]) -> Option<Duration> {
    let (&unit, digits) = v.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n.saturating_mul(3600)),
        b'M' => Duration::from_secs(n.saturating_mul(60)),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Encodes a timeout for `grpc-timeout` in the finest unit that fits 8 digits, rounding up
/// (a deadline is never extended by encoding, only by at most one unit of the chosen scale).
pub fn encode_timeout(d: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let nanos = d.as_nanos();
    let units: [(u128, char); 6] = [
        (1, 'n'),
        (1_000, 'u'),
        (1_000_000, 'm'),
        (1_000_000_000, 'S'),
        (60_000_000_000, 'M'),
        (3_600_000_000_000, 'H'),
    ];
    for (scale, unit) in units {
        let n = nanos.div_ceil(scale);
        if n <= MAX {
            // Never send 0: an expired deadline still reaches the server as "now".
            let n = n.max(1);
            if let Ok(v) = HeaderValue::from_str(&format!("{n}{unit}")) {
                return v;
            }
        }
    }
    HeaderValue::from_static("99999999H")
}

/// The gRPC status a non-200 HTTP response maps to (gRPC's HTTP-to-gRPC status mapping).
pub fn code_for_http_status(status: http::StatusCode) -> u32 {
    match status.as_u16() {
        400 => code::INTERNAL,
        401 => code::UNAUTHENTICATED,
        403 => code::PERMISSION_DENIED,
        404 => code::UNIMPLEMENTED,
        429 | 502 | 503 | 504 => code::UNAVAILABLE,
        _ => code::UNKNOWN,
    }
}

/// Sends `data` on an HTTP/2 stream, respecting flow control: reserve capacity, wait for the
/// peer's window, send what fits, repeat. Never buffers more than the window in h2.
pub async fn send_all(stream: &mut h2::SendStream<Bytes>, mut data: Bytes) -> Result<(), String> {
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
    fn timeouts() {
        assert_eq!(parse_timeout(b"100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_timeout(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_timeout(b"2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_timeout(b"7S"), Some(Duration::from_secs(7)));
        assert_eq!(parse_timeout(b"5u"), Some(Duration::from_micros(5)));
        assert_eq!(
            parse_timeout(b"99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in [&b""[..], b"m", b"123456789m", b"1x", b"-1m", b"1.5S"] {
            assert_eq!(parse_timeout(bad), None, "{bad:?}");
        }
        assert_eq!(encode_timeout(Duration::from_millis(250)), "250000u");
        assert_eq!(encode_timeout(Duration::from_millis(50)), "50000000n");
        assert_eq!(encode_timeout(Duration::from_secs(2)), "2000000u");
        assert_eq!(encode_timeout(Duration::from_secs(500)), "500000m");
        assert_eq!(encode_timeout(Duration::ZERO), "1n");
        assert_eq!(
            encode_timeout(Duration::from_nanos(1_000_000_001)),
            "1000001u"
        );
        for d in [1u64, 999, 123_456_789, 86_400_000_000_000, u64::MAX] {
            let d = Duration::from_nanos(d);
            let back = parse_timeout(encode_timeout(d).as_bytes()).unwrap();
            assert!(
                back >= d.min(Duration::from_secs(99_999_999 * 3600)),
                "{d:?} -> {back:?}"
            );
        }
    }

    #[test]
    fn http_status_mapping() {
        assert_eq!(
            code_for_http_status(http::StatusCode::NOT_FOUND),
            code::UNIMPLEMENTED
        );
        assert_eq!(
            code_for_http_status(http::StatusCode::SERVICE_UNAVAILABLE),
            code::UNAVAILABLE
        );
        assert_eq!(
            code_for_http_status(http::StatusCode::IM_A_TEAPOT),
            code::UNKNOWN
        );
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
