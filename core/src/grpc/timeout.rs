//! The `grpc-timeout` request header (grpc `doc/PROTOCOL-HTTP2.md`):
//! `TimeoutValue TimeoutUnit`, where the value is at most 8 ASCII digits and the unit is one
//! of `H` (hours), `M` (minutes), `S` (seconds), `m` (milliseconds), `u` (microseconds),
//! `n` (nanoseconds).
//!
//! Encoding rounds *up*: the server must never see a deadline earlier than the client's, or
//! it would cut calls short that the client still waits for (gRFC A31 relies on the header
//! carrying the caller's remaining time). The finest unit whose value fits in 8 digits is
//! used, so the overshoot is below one unit of that size (at most 0.001 % of the timeout).
#![warn(missing_docs)]

use core::fmt;
use core::time::Duration;

/// The largest value the header can carry in any unit.
pub const MAX_VALUE: u64 = 99_999_999;

/// The largest timeout the header can express: 99,999,999 hours (about 11,400 years).
/// [`format_timeout`] caps longer durations at this.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(MAX_VALUE * 3600);

/// The units, finest first, with their length in nanoseconds.
const UNITS: [(u8, u128); 6] = [
    (b'n', 1),
    (b'u', 1_000),
    (b'm', 1_000_000),
    (b'S', 1_000_000_000),
    (b'M', 60_000_000_000),
    (b'H', 3_600_000_000_000),
];

/// Why a `grpc-timeout` value was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutError {
    /// The value is empty.
    Empty,
    /// No digits before the unit.
    NoDigits,
    /// More than 8 digits.
    TooManyDigits(usize),
    /// A character other than an ASCII digit in the value part.
    InvalidDigit(u8),
    /// The last character is not one of `H M S m u n`.
    InvalidUnit(u8),
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeoutError::Empty => f.write_str("grpc-timeout is empty"),
            TimeoutError::NoDigits => f.write_str("grpc-timeout has no digits before its unit"),
            TimeoutError::TooManyDigits(n) => {
                write!(f, "grpc-timeout has {n} digits; at most 8 are allowed")
            }
            TimeoutError::InvalidDigit(b) => {
                write!(
                    f,
                    "grpc-timeout has a non-digit byte 0x{b:02x} in its value"
                )
            }
            TimeoutError::InvalidUnit(b) => write!(
                f,
                "grpc-timeout unit 0x{b:02x} is not one of H, M, S, m, u, n"
            ),
        }
    }
}

impl std::error::Error for TimeoutError {}

/// Parses a `grpc-timeout` value. Leading zeros are fine; `0` is accepted (a deadline that
/// has already passed) although the spec says "positive", because senders do emit it.
pub fn parse_timeout(value: &[u8]) -> Result<Duration, TimeoutError> {
    let Some((&unit, digits)) = value.split_last() else {
        return Err(TimeoutError::Empty);
    };
    let nanos_per = UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, n)| *n)
        .ok_or(TimeoutError::InvalidUnit(unit))?;
    if digits.is_empty() {
        return Err(TimeoutError::NoDigits);
    }
    if let Some(&bad) = digits.iter().find(|b| !b.is_ascii_digit()) {
        return Err(TimeoutError::InvalidDigit(bad));
    }
    if digits.len() > 8 {
        return Err(TimeoutError::TooManyDigits(digits.len()));
    }
    let n = digits
        .iter()
        .fold(0u128, |acc, d| acc * 10 + u128::from(d - b'0'));
    // At most 99,999,999 h = 3.6e23 ns, far below u128::MAX, and its seconds fit in u64.
    let total = n * nanos_per;
    let secs = u64::try_from(total / 1_000_000_000).unwrap_or(u64::MAX);
    let sub = u32::try_from(total % 1_000_000_000).unwrap_or(0);
    Ok(Duration::new(secs, sub))
}

/// Formats a timeout for the `grpc-timeout` header: the finest unit whose value fits in 8
/// digits, rounded up. Durations above [`MAX_TIMEOUT`] are sent as `99999999H`.
pub fn format_timeout(timeout: Duration) -> String {
    let nanos = timeout.as_nanos();
    for (unit, per) in UNITS {
        let value = nanos.div_ceil(per);
        if value <= u128::from(MAX_VALUE) {
            return format!("{value}{}", char::from(unit));
        }
    }
    format!("{MAX_VALUE}H")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_every_unit() {
        let p = |s: &str| parse_timeout(s.as_bytes()).unwrap();
        assert_eq!(p("1H"), Duration::from_secs(3600));
        assert_eq!(p("2M"), Duration::from_secs(120));
        assert_eq!(p("3S"), Duration::from_secs(3));
        assert_eq!(p("100m"), Duration::from_millis(100));
        assert_eq!(p("250u"), Duration::from_micros(250));
        assert_eq!(p("999n"), Duration::from_nanos(999));
        assert_eq!(p("00000005S"), Duration::from_secs(5));
        assert_eq!(p("0n"), Duration::ZERO);
        assert_eq!(p("99999999H"), MAX_TIMEOUT);
    }

    #[test]
    fn typed_errors() {
        let e = |s: &[u8]| parse_timeout(s).unwrap_err();
        assert_eq!(e(b""), TimeoutError::Empty);
        assert_eq!(e(b"S"), TimeoutError::NoDigits);
        assert_eq!(e(b"123456789S"), TimeoutError::TooManyDigits(9));
        assert_eq!(e(b"1x0S"), TimeoutError::InvalidDigit(b'x'));
        assert_eq!(e(b"-1S"), TimeoutError::InvalidDigit(b'-'));
        assert_eq!(e(b" 1S"), TimeoutError::InvalidDigit(b' '));
        assert_eq!(e(b"10s"), TimeoutError::InvalidUnit(b's'));
        assert_eq!(e(b"10"), TimeoutError::InvalidUnit(b'0'));
        assert_eq!(e(b"10h"), TimeoutError::InvalidUnit(b'h'));
        assert_eq!(e(b"1S "), TimeoutError::InvalidUnit(b' '));
    }

    #[test]
    fn formats_finest_unit_rounding_up() {
        let f = |d: Duration| format_timeout(d);
        assert_eq!(f(Duration::ZERO), "0n");
        assert_eq!(f(Duration::from_nanos(1)), "1n");
        assert_eq!(f(Duration::from_nanos(99_999_999)), "99999999n");
        // 100 ms no longer fits in nanoseconds: microseconds.
        assert_eq!(f(Duration::from_millis(100)), "100000u");
        // One nanosecond over a microsecond boundary rounds up, never down.
        assert_eq!(f(Duration::new(0, 100_000_001)), "100001u");
        assert_eq!(f(Duration::from_secs(1)), "1000000u");
        assert_eq!(f(Duration::from_secs(100)), "100000m");
        assert_eq!(f(Duration::from_secs(3600)), "3600000m");
        assert_eq!(f(Duration::from_secs(100_000)), "100000S");
        assert_eq!(f(Duration::new(100_000, 1)), "100001S");
        assert_eq!(f(Duration::from_secs(100_000_000)), "1666667M");
        assert_eq!(f(Duration::from_secs(6_000_000_000)), "1666667H");
        assert_eq!(f(MAX_TIMEOUT), "99999999H");
        assert_eq!(f(Duration::MAX), "99999999H");
    }

    proptest! {
        #[test]
        fn never_shortens_and_overshoots_less_than_a_unit(secs in 0u64..(MAX_VALUE * 3600), nanos in 0u32..1_000_000_000) {
            let d = Duration::new(secs, nanos);
            let wire = format_timeout(d);
            prop_assert!(wire.len() <= 9);
            let back = parse_timeout(wire.as_bytes()).unwrap();
            prop_assert!(back >= d, "{wire} shortened {d:?} to {back:?}");
            let unit = UNITS.iter().find(|(u, _)| Some(u) == wire.as_bytes().last()).unwrap().1;
            prop_assert!((back - d).as_nanos() < unit);
            // Each value fits: a finer unit would have needed more than 8 digits.
            prop_assert!(back.as_nanos() / unit <= u128::from(MAX_VALUE));
        }

        #[test]
        fn small_durations_are_exact(n in 0u64..=MAX_VALUE) {
            let d = Duration::from_nanos(n);
            prop_assert_eq!(parse_timeout(format_timeout(d).as_bytes()).unwrap(), d);
        }

        #[test]
        fn reencoding_a_parsed_value_is_lossless(v in 0u64..=MAX_VALUE, unit in prop::sample::select(vec!['H', 'M', 'S', 'm', 'u', 'n'])) {
            let d = parse_timeout(format!("{v}{unit}").as_bytes()).unwrap();
            prop_assert_eq!(parse_timeout(format_timeout(d).as_bytes()).unwrap(), d);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..16)) {
            let _ = parse_timeout(&bytes);
        }
    }
}
