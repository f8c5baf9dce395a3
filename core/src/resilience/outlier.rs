//! Outlier detection (gRFC A50), plus Envoy's consecutive-failure ejection as a skiff extension.
//!
//! Every `interval`, the detector swaps each endpoint's call counters, runs success-rate and
//! failure-percentage ejection over the last interval's counts, and un-ejects endpoints whose
//! ejection time (`base_ejection_time × multiplier`, capped by `max_ejection_time`) is over.
//! Consecutive-5xx / consecutive-gateway-failure ejection happens as outcomes arrive. Ejected
//! endpoints are masked out of the balancer; at most `max_ejection_percent` of the endpoints are
//! ejected at once.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use core::time::Duration;

use crate::resource::outlier::OutlierDetection;
use crate::rng::Rng;
use crate::time::Instant;

/// How an RPC attempt to an endpoint ended, as outlier detection sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptResult {
    /// Status OK.
    Success,
    /// Any other status (A50 counts every non-OK status as a failure).
    Failure {
        /// The status is a server-side error (UNKNOWN, INTERNAL, UNAVAILABLE, DATA_LOSS,
        /// DEADLINE_EXCEEDED, UNIMPLEMENTED) — what Envoy's `consecutive_5xx` counts.
        server_error: bool,
        /// The status means the endpoint was unreachable or overloaded (UNAVAILABLE,
        /// DEADLINE_EXCEEDED) — what `consecutive_gateway_failure` counts.
        gateway: bool,
    },
}

impl AttemptResult {
    /// Classifies a gRPC status code (numeric, as on the wire).
    pub fn from_code(code: i32) -> Self {
        match code {
            0 => AttemptResult::Success,
            // UNAVAILABLE (14) and DEADLINE_EXCEEDED (4) map to HTTP 503/504.
            14 | 4 => AttemptResult::Failure {
                server_error: true,
                gateway: true,
            },
            // UNKNOWN, UNIMPLEMENTED, INTERNAL, DATA_LOSS map to HTTP 500/501.
            2 | 12 | 13 | 15 => AttemptResult::Failure {
                server_error: true,
                gateway: false,
            },
            _ => AttemptResult::Failure {
                server_error: false,
                gateway: false,
            },
        }
    }
}

/// Why an endpoint was ejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EjectionReason {
    /// Success rate below mean − stdev × factor.
    SuccessRate,
    /// Failure percentage above the threshold.
    FailurePercentage,
    /// Consecutive server errors (Envoy's `consecutive_5xx`).
    Consecutive5xx,
    /// Consecutive gateway failures (Envoy's `consecutive_gateway_failure`).
    ConsecutiveGatewayFailure,
}

/// A change the data plane must apply to the picker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutlierChange {
    /// Stop picking this endpoint.
    Ejected(SocketAddr, EjectionReason),
    /// Pick it again.
    Unejected(SocketAddr),
}

#[derive(Clone, Debug, Default)]
struct Stats {
    active: (u64, u64),
    inactive: (u64, u64),
    ejected_at: Option<Instant>,
    multiplier: u32,
    consecutive_5xx: u32,
    consecutive_gateway: u32,
}

/// Outlier detection state of one cluster.
#[derive(Clone, Debug)]
pub struct OutlierDetector {
    config: OutlierDetection,
    endpoints: BTreeMap<SocketAddr, Stats>,
    next_run: Instant,
    last_run: Instant,
}

impl OutlierDetector {
    /// A detector whose first interval starts `now`.
    pub fn new(config: OutlierDetection, now: Instant) -> Self {
        let interval = Self::interval_of(&config);
        OutlierDetector {
            config,
            endpoints: BTreeMap::new(),
            next_run: now.saturating_add(interval),
            last_run: now,
        }
    }

    /// The interval has a floor: a zero interval would make the timer fire continuously.
    fn interval_of(c: &OutlierDetection) -> Duration {
        c.interval.max(Duration::from_millis(1))
    }

    /// A new configuration (CDS update). A50: the next run is `interval` after the last one.
    pub fn set_config(&mut self, config: OutlierDetection) {
        self.next_run = self.last_run.saturating_add(Self::interval_of(&config));
        self.config = config;
    }

    /// The endpoints of the cluster changed: keep stats of survivors, drop the rest.
    pub fn set_endpoints(&mut self, addrs: impl IntoIterator<Item = SocketAddr>) {
        let mut next = BTreeMap::new();
        for a in addrs {
            let s = self.endpoints.remove(&a).unwrap_or_default();
            next.insert(a, s);
        }
        self.endpoints = next;
    }

    /// Whether `addr` is ejected now.
    pub fn is_ejected(&self, addr: &SocketAddr) -> bool {
        self.endpoints
            .get(addr)
            .is_some_and(|s| s.ejected_at.is_some())
    }

    /// Number of ejected endpoints.
    pub fn ejected_count(&self) -> usize {
        self.endpoints
            .values()
            .filter(|s| s.ejected_at.is_some())
            .count()
    }

    /// When [`OutlierDetector::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.config.any_enabled().then_some(self.next_run)
    }

    fn may_eject_one_more(&self) -> bool {
        let total = self.endpoints.len() as u64;
        if total == 0 {
            return false;
        }
        // A50: stop when ejected / total ≥ max_ejection_percent.
        (self.ejected_count() as u64) * 100 < u64::from(self.config.max_ejection_percent) * total
    }

    fn eject(
        &mut self,
        addr: SocketAddr,
        now: Instant,
        why: EjectionReason,
        out: &mut Vec<OutlierChange>,
    ) {
        if let Some(s) = self.endpoints.get_mut(&addr)
            && s.ejected_at.is_none()
        {
            s.ejected_at = Some(now);
            s.multiplier = s.multiplier.saturating_add(1);
            s.consecutive_5xx = 0;
            s.consecutive_gateway = 0;
            out.push(OutlierChange::Ejected(addr, why));
        }
    }

    /// Records an attempt's result. Consecutive-failure ejection may happen at once.
    pub fn record(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        result: AttemptResult,
        rng: &mut Rng,
    ) -> Option<OutlierChange> {
        let c5 = self.config.consecutive_5xx;
        let cg = self.config.consecutive_gateway_failure;
        let s = self.endpoints.get_mut(&addr)?;
        let mut trip = None;
        match result {
            AttemptResult::Success => {
                s.active.0 += 1;
                s.consecutive_5xx = 0;
                s.consecutive_gateway = 0;
            }
            AttemptResult::Failure {
                server_error,
                gateway,
            } => {
                s.active.1 += 1;
                if server_error {
                    s.consecutive_5xx = s.consecutive_5xx.saturating_add(1);
                } else {
                    s.consecutive_5xx = 0;
                }
                if gateway {
                    s.consecutive_gateway = s.consecutive_gateway.saturating_add(1);
                } else {
                    s.consecutive_gateway = 0;
                }
                if s.ejected_at.is_none() {
                    if let Some(c) =
                        c5.filter(|c| c.consecutive > 0 && s.consecutive_5xx >= c.consecutive)
                    {
                        trip = Some((EjectionReason::Consecutive5xx, c.enforcement_percentage));
                    } else if let Some(c) =
                        cg.filter(|c| c.consecutive > 0 && s.consecutive_gateway >= c.consecutive)
                    {
                        trip = Some((
                            EjectionReason::ConsecutiveGatewayFailure,
                            c.enforcement_percentage,
                        ));
                    }
                }
            }
        }
        let (why, enforcement) = trip?;
        if !self.may_eject_one_more() || !rng.chance(u64::from(enforcement), 100) {
            return None;
        }
        let mut out = Vec::with_capacity(1);
        self.eject(addr, now, why, &mut out);
        out.pop()
    }

    /// Runs the interval algorithm if it is due. Spurious calls are no-ops.
    pub fn handle_timeout(&mut self, now: Instant, rng: &mut Rng) -> Vec<OutlierChange> {
        let mut out = Vec::new();
        if now < self.next_run || !self.config.any_enabled() {
            return out;
        }
        self.last_run = now;
        self.next_run = now.saturating_add(Self::interval_of(&self.config));
        for s in self.endpoints.values_mut() {
            s.inactive = core::mem::take(&mut s.active);
        }
        if let Some(sr) = self.config.success_rate {
            let candidates: Vec<(SocketAddr, f64)> = self
                .endpoints
                .iter()
                .filter(|(_, s)| s.inactive.0 + s.inactive.1 >= u64::from(sr.request_volume))
                .map(|(a, s)| {
                    (
                        *a,
                        s.inactive.0 as f64 / (s.inactive.0 + s.inactive.1) as f64,
                    )
                })
                .collect();
            if candidates.len() >= sr.minimum_hosts as usize && !candidates.is_empty() {
                let n = candidates.len() as f64;
                let mean = candidates.iter().map(|(_, r)| r).sum::<f64>() / n;
                let var = candidates
                    .iter()
                    .map(|(_, r)| (r - mean).powi(2))
                    .sum::<f64>()
                    / n;
                let threshold = mean - var.sqrt() * (f64::from(sr.stdev_factor) / 1000.0);
                for (addr, rate) in candidates {
                    if rate < threshold {
                        if !self.may_eject_one_more() {
                            break;
                        }
                        if rng.chance(u64::from(sr.enforcement_percentage), 100) {
                            self.eject(addr, now, EjectionReason::SuccessRate, &mut out);
                        }
                    }
                }
            }
        }
        if let Some(fp) = self.config.failure_percentage {
            let candidates: Vec<(SocketAddr, u64)> = self
                .endpoints
                .iter()
                .filter(|(_, s)| s.inactive.0 + s.inactive.1 >= u64::from(fp.request_volume))
                .map(|(a, s)| {
                    (
                        *a,
                        s.inactive.1 * 100 / (s.inactive.0 + s.inactive.1).max(1),
                    )
                })
                .collect();
            if candidates.len() >= fp.minimum_hosts as usize {
                for (addr, pct) in candidates {
                    if pct > u64::from(fp.threshold) {
                        if !self.may_eject_one_more() {
                            break;
                        }
                        if rng.chance(u64::from(fp.enforcement_percentage), 100) {
                            self.eject(addr, now, EjectionReason::FailurePercentage, &mut out);
                        }
                    }
                }
            }
        }
        let base = self.config.base_ejection_time;
        let max = self.config.effective_max_ejection_time();
        for (addr, s) in &mut self.endpoints {
            match s.ejected_at {
                None => s.multiplier = s.multiplier.saturating_sub(1),
                Some(at) => {
                    let ejected_for = base.saturating_mul(s.multiplier.max(1)).min(max.max(base));
                    if now >= at.saturating_add(ejected_for) {
                        s.ejected_at = None;
                        out.push(OutlierChange::Unejected(*addr));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::outlier::{
        ConsecutiveFailureEjection, FailurePercentageEjection, SuccessRateEjection,
    };
    use crate::rng::Seed;

    fn addr(i: u8) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, i], 80))
    }

    fn config() -> OutlierDetection {
        OutlierDetection {
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 50,
            success_rate: None,
            failure_percentage: None,
            consecutive_5xx: None,
            consecutive_gateway_failure: None,
        }
    }

    fn feed(
        d: &mut OutlierDetector,
        rng: &mut Rng,
        now: Instant,
        a: SocketAddr,
        ok: u32,
        bad: u32,
    ) {
        for _ in 0..ok {
            d.record(now, a, AttemptResult::Success, rng);
        }
        for _ in 0..bad {
            d.record(now, a, AttemptResult::from_code(14), rng);
        }
    }

    #[test]
    fn failure_percentage_ejects_and_unejects() {
        let mut c = config();
        c.failure_percentage = Some(FailurePercentageEjection {
            threshold: 50,
            enforcement_percentage: 100,
            minimum_hosts: 3,
            request_volume: 10,
        });
        let mut rng = Rng::new(Seed(1));
        let t0 = Instant::from_secs(100);
        let mut d = OutlierDetector::new(c, t0);
        d.set_endpoints((1..=4).map(addr));
        for i in 1..=3 {
            feed(&mut d, &mut rng, t0, addr(i), 20, 0);
        }
        feed(&mut d, &mut rng, t0, addr(4), 2, 18);
        assert!(
            d.handle_timeout(t0 + Duration::from_secs(5), &mut rng)
                .is_empty(),
            "not due"
        );
        let changes = d.handle_timeout(t0 + Duration::from_secs(10), &mut rng);
        assert_eq!(
            changes,
            vec![OutlierChange::Ejected(
                addr(4),
                EjectionReason::FailurePercentage
            )]
        );
        assert!(d.is_ejected(&addr(4)));
        // Un-ejected once base_ejection_time (× multiplier 1) has passed, at an interval run.
        let mut t = t0 + Duration::from_secs(10);
        let mut back = None;
        for _ in 0..5 {
            t = t + Duration::from_secs(10);
            if d.handle_timeout(t, &mut rng)
                .contains(&OutlierChange::Unejected(addr(4)))
            {
                back = Some(t);
                break;
            }
        }
        assert_eq!(back, Some(t0 + Duration::from_secs(40)));
    }

    #[test]
    fn success_rate_ejects_the_statistical_outlier_only() {
        let mut c = config();
        c.success_rate = Some(SuccessRateEjection {
            stdev_factor: 1900,
            enforcement_percentage: 100,
            minimum_hosts: 5,
            request_volume: 100,
        });
        let mut rng = Rng::new(Seed(2));
        let t0 = Instant::from_secs(1);
        let mut d = OutlierDetector::new(c, t0);
        d.set_endpoints((1..=10).map(addr));
        for i in 1..=9 {
            feed(&mut d, &mut rng, t0, addr(i), 99, 1);
        }
        feed(&mut d, &mut rng, t0, addr(10), 40, 60);
        let changes = d.handle_timeout(t0 + Duration::from_secs(10), &mut rng);
        assert_eq!(
            changes,
            vec![OutlierChange::Ejected(
                addr(10),
                EjectionReason::SuccessRate
            )]
        );
    }

    #[test]
    fn too_few_hosts_or_requests_means_no_ejection() {
        let mut c = config();
        c.failure_percentage = Some(FailurePercentageEjection {
            threshold: 50,
            enforcement_percentage: 100,
            minimum_hosts: 5,
            request_volume: 10,
        });
        let mut rng = Rng::new(Seed(3));
        let t0 = Instant::from_secs(1);
        let mut d = OutlierDetector::new(c, t0);
        d.set_endpoints((1..=4).map(addr));
        feed(&mut d, &mut rng, t0, addr(1), 0, 20);
        assert!(
            d.handle_timeout(t0 + Duration::from_secs(10), &mut rng)
                .is_empty()
        );
    }

    #[test]
    fn max_ejection_percent_is_respected() {
        let mut c = config();
        c.max_ejection_percent = 25;
        c.failure_percentage = Some(FailurePercentageEjection {
            threshold: 10,
            enforcement_percentage: 100,
            minimum_hosts: 1,
            request_volume: 1,
        });
        let mut rng = Rng::new(Seed(4));
        let t0 = Instant::from_secs(1);
        let mut d = OutlierDetector::new(c, t0);
        d.set_endpoints((1..=4).map(addr));
        for i in 1..=4 {
            feed(&mut d, &mut rng, t0, addr(i), 0, 10);
        }
        let changes = d.handle_timeout(t0 + Duration::from_secs(10), &mut rng);
        assert_eq!(changes.len(), 1, "25% of 4 endpoints is one");
        assert_eq!(d.ejected_count(), 1);
    }

    #[test]
    fn consecutive_5xx_ejects_immediately_and_success_resets_the_count() {
        let mut c = config();
        c.consecutive_5xx = Some(ConsecutiveFailureEjection {
            consecutive: 3,
            enforcement_percentage: 100,
        });
        let mut rng = Rng::new(Seed(5));
        let t0 = Instant::from_secs(1);
        let mut d = OutlierDetector::new(c, t0);
        d.set_endpoints([addr(1), addr(2)]);
        let bad = AttemptResult::from_code(13);
        assert_eq!(d.record(t0, addr(1), bad, &mut rng), None);
        assert_eq!(d.record(t0, addr(1), bad, &mut rng), None);
        assert_eq!(
            d.record(t0, addr(1), AttemptResult::Success, &mut rng),
            None
        );
        assert_eq!(d.record(t0, addr(1), bad, &mut rng), None);
        assert_eq!(d.record(t0, addr(1), bad, &mut rng), None);
        assert_eq!(
            d.record(t0, addr(1), bad, &mut rng),
            Some(OutlierChange::Ejected(
                addr(1),
                EjectionReason::Consecutive5xx
            ))
        );
        // Client-side errors (e.g. INVALID_ARGUMENT) are not server errors.
        let client_err = AttemptResult::from_code(3);
        for _ in 0..10 {
            assert_eq!(d.record(t0, addr(2), client_err, &mut rng), None);
        }
    }

    #[test]
    fn repeated_ejections_grow_and_cap_the_ejection_time() {
        let mut c = config();
        c.max_ejection_time = Duration::from_secs(60);
        c.max_ejection_percent = 100;
        c.failure_percentage = Some(FailurePercentageEjection {
            threshold: 50,
            enforcement_percentage: 100,
            minimum_hosts: 1,
            request_volume: 1,
        });
        let mut rng = Rng::new(Seed(6));
        let mut t = Instant::from_secs(0);
        let mut d = OutlierDetector::new(c, t);
        d.set_endpoints([addr(1)]);
        let mut durations = Vec::new();
        for _ in 0..3 {
            feed(&mut d, &mut rng, t, addr(1), 0, 10);
            t = t + Duration::from_secs(10);
            let ev = d.handle_timeout(t, &mut rng);
            assert!(
                matches!(ev.as_slice(), [OutlierChange::Ejected(..)]),
                "{ev:?}"
            );
            let ejected = t;
            loop {
                t = t + Duration::from_secs(10);
                if !d.handle_timeout(t, &mut rng).is_empty() {
                    break;
                }
            }
            durations.push(t.saturating_duration_since(ejected));
        }
        // 30 s, 60 s, then capped at max(base, max_ejection_time) = 60 s.
        assert_eq!(
            durations,
            vec![
                Duration::from_secs(30),
                Duration::from_secs(60),
                Duration::from_secs(60)
            ]
        );
    }
}
