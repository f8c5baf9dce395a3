//! Fault injection decisions (gRFC A33): given a route's effective fault filter config and the
//! request's headers, decide whether this RPC is delayed, aborted, both (delay first), or left
//! alone. `max_active_faults` caps how many RPCs carry an injected fault at once.

use core::time::Duration;

use crate::resource::filter::{AbortSource, DelaySource, FaultConfig, fault_headers};
use crate::resource::matcher::HeaderSource;
use crate::rng::Rng;

/// What to do with an RPC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FaultAction {
    /// Hold the RPC this long before picking.
    pub delay: Option<Duration>,
    /// Then fail it with this gRPC status code.
    pub abort: Option<u32>,
}

impl FaultAction {
    /// Whether any fault applies.
    pub fn is_active(&self) -> bool {
        self.delay.is_some() || self.abort.is_some()
    }
}

fn header_u32(headers: &dyn HeaderSource, name: &str) -> Option<u32> {
    headers.header_value(name, 0)?.trim().parse().ok()
}

/// Decides the fault for one RPC. `active_faults` is the number of RPCs of this channel that
/// currently carry a fault.
pub fn decide(
    config: &FaultConfig,
    headers: &dyn HeaderSource,
    active_faults: u32,
    rng: &mut Rng,
) -> FaultAction {
    // A33: no new fault once max_active_faults RPCs carry one.
    if config.max_active_faults.is_some_and(|m| active_faults >= m) {
        return FaultAction::default();
    }
    if !config.selects(headers) {
        return FaultAction::default();
    }
    let mut action = FaultAction::default();
    if let Some(d) = &config.delay {
        let (delay, pct) = match d.source {
            DelaySource::Fixed(dur) => (Some(dur), d.percentage),
            DelaySource::Header => (
                header_u32(headers, fault_headers::DELAY)
                    .map(|ms| Duration::from_millis(ms.into())),
                match header_u32(headers, fault_headers::DELAY_PERCENTAGE) {
                    Some(n) => d.percentage.capped_by_header(n),
                    None => d.percentage,
                },
            ),
        };
        if let Some(delay) = delay
            && pct.sample(rng)
        {
            action.delay = Some(delay);
        }
    }
    if let Some(a) = &config.abort {
        let (code, pct) = match a.source {
            AbortSource::Header => {
                let code = header_u32(headers, fault_headers::ABORT_GRPC).or_else(|| {
                    header_u32(headers, fault_headers::ABORT_HTTP)
                        .filter(|h| (200..600).contains(h))
                        .map(crate::resource::filter::http_status_to_grpc)
                });
                let pct = match header_u32(headers, fault_headers::ABORT_PERCENTAGE) {
                    Some(n) => a.percentage.capped_by_header(n),
                    None => a.percentage,
                };
                (code, pct)
            }
            other => (other.grpc_code(), a.percentage),
        };
        if let Some(code) = code
            && pct.sample(rng)
        {
            // Codes outside gRPC's range become UNKNOWN.
            action.abort = Some(if code > 16 { 2 } else { code });
        }
    }
    action
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::filter::{FaultAbort, FaultDelay, Fraction};
    use crate::resource::matcher::SliceHeaders;
    use crate::rng::Seed;

    fn pct(ppm: u32) -> Fraction {
        use crate::pb::envoy::r#type::v3::FractionalPercent;
        // Denominator 2 = MILLION.
        Fraction::from_proto(&FractionalPercent {
            numerator: ppm,
            denominator: 2,
        })
        .unwrap()
    }

    #[test]
    fn abort_ratio_follows_percentage() {
        let cfg = FaultConfig {
            abort: Some(FaultAbort {
                source: AbortSource::Grpc(14),
                percentage: pct(250_000),
            }),
            ..Default::default()
        };
        let mut rng = Rng::new(Seed(1));
        let h = SliceHeaders::new(&[]);
        let n = (0..10_000)
            .filter(|_| decide(&cfg, &h, 0, &mut rng).abort == Some(14))
            .count();
        assert!((2_300..2_700).contains(&n), "{n}");
    }

    #[test]
    fn delay_then_abort_and_header_driven() {
        let cfg = FaultConfig {
            delay: Some(FaultDelay {
                source: DelaySource::Header,
                percentage: pct(1_000_000),
            }),
            abort: Some(FaultAbort {
                source: AbortSource::Header,
                percentage: pct(1_000_000),
            }),
            ..Default::default()
        };
        let mut rng = Rng::new(Seed(2));
        let h = SliceHeaders::new(&[
            ("x-envoy-fault-delay-request", "150"),
            ("x-envoy-fault-abort-request", "503"),
        ]);
        let a = decide(&cfg, &h, 0, &mut rng);
        assert_eq!(a.delay, Some(Duration::from_millis(150)));
        assert_eq!(a.abort, Some(14), "HTTP 503 maps to UNAVAILABLE");
        let none = decide(&cfg, &SliceHeaders::new(&[]), 0, &mut rng);
        assert!(
            !none.is_active(),
            "header mode without headers injects nothing"
        );
        let grpc = decide(
            &cfg,
            &SliceHeaders::new(&[("x-envoy-fault-abort-grpc-request", "8")]),
            0,
            &mut rng,
        );
        assert_eq!(grpc.abort, Some(8));
    }

    #[test]
    fn max_active_faults_caps_injection() {
        let cfg = FaultConfig {
            abort: Some(FaultAbort {
                source: AbortSource::Http(500),
                percentage: pct(1_000_000),
            }),
            max_active_faults: Some(2),
            ..Default::default()
        };
        let mut rng = Rng::new(Seed(3));
        let h = SliceHeaders::new(&[]);
        assert_eq!(
            decide(&cfg, &h, 1, &mut rng).abort,
            Some(2),
            "HTTP 500 maps to UNKNOWN"
        );
        assert!(!decide(&cfg, &h, 2, &mut rng).is_active());
    }
}
