//! Circuit breaking (gRFC A32): a cap on concurrent RPCs per cluster
//! (`circuit_breakers.thresholds[DEFAULT].max_requests`, default 1024). An RPC that would exceed
//! it fails with UNAVAILABLE at pick time, before any attempt is made.

/// gRFC A32's default `max_requests`.
pub const DEFAULT_MAX_REQUESTS: u32 = 1024;

/// In-flight request accounting for one cluster.
#[derive(Clone, Debug)]
pub struct CircuitBreaker {
    max_requests: u32,
    in_flight: u32,
    /// RPCs refused since creation (for load reports and dumps).
    pub refused: u64,
}

impl CircuitBreaker {
    /// A breaker with the given limit.
    pub fn new(max_requests: u32) -> Self {
        CircuitBreaker {
            max_requests,
            in_flight: 0,
            refused: 0,
        }
    }

    /// Changes the limit (a CDS update); in-flight counts carry over.
    pub fn set_max_requests(&mut self, max: u32) {
        self.max_requests = max;
    }

    /// Tries to start a request. `false` (and counted) when the limit is reached.
    pub fn try_acquire(&mut self) -> bool {
        if self.in_flight >= self.max_requests {
            self.refused += 1;
            return false;
        }
        self.in_flight += 1;
        true
    }

    /// A request ended.
    pub fn release(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> u32 {
        self.in_flight
    }

    /// The limit.
    pub fn max_requests(&self) -> u32 {
        self.max_requests
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_at_the_limit_and_recovers() {
        let mut cb = CircuitBreaker::new(2);
        assert!(cb.try_acquire());
        assert!(cb.try_acquire());
        assert!(!cb.try_acquire());
        assert_eq!(cb.refused, 1);
        cb.release();
        assert!(cb.try_acquire());
        cb.release();
        cb.release();
        cb.release(); // extra releases never underflow
        assert_eq!(cb.in_flight(), 0);
        cb.set_max_requests(0);
        assert!(!cb.try_acquire());
    }
}
