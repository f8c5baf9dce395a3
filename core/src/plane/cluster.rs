//! Runtime state of one cluster: its balancer plan and picker, per-endpoint in-flight counts,
//! circuit breaker (gRFC A32), outlier detector (A50) and load counters.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::balancer::{EndpointIndex, LbPlan, Picker, PlanOptions, flat_endpoints};
use crate::plane::Connectivity;
use crate::plane::load::ClusterLoad;
use crate::plane::subchannel::Subchannels;
use crate::resilience::circuit_breaker::CircuitBreaker;
use crate::resilience::outlier::OutlierDetector;
use crate::resource::cluster::ClusterConfig;
use crate::resource::endpoint::{EndpointsConfig, LocalityName};
use crate::rng::Rng;
use crate::time::Instant;

/// What the cluster's endpoints can do for a new RPC right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reachability {
    /// At least one endpoint is eligible.
    Ready,
    /// None eligible, but some are connecting: wait.
    Connecting,
    /// Every endpoint failed its last connection attempt, or all are ejected/unhealthy.
    Failing,
    /// The cluster has no endpoints (empty or missing assignment).
    NoEndpoints,
}

/// One cluster in use by the data plane.
#[derive(Debug)]
pub struct ClusterRuntime {
    /// The validated cluster.
    pub config: Arc<ClusterConfig>,
    /// Its endpoints, once known.
    pub endpoints: Option<Arc<EndpointsConfig>>,
    plan: Option<Arc<LbPlan>>,
    /// The current picker.
    pub picker: Option<Picker>,
    /// Address of each endpoint, by [`EndpointIndex`].
    pub addrs: Vec<SocketAddr>,
    locality_of: Vec<usize>,
    /// Attempts in flight per endpoint (least_request reads them).
    pub in_flight: Vec<u32>,
    /// The circuit breaker.
    pub breaker: CircuitBreaker,
    /// Outlier detection, when configured.
    pub outlier: Option<OutlierDetector>,
    /// Load counters.
    pub load: ClusterLoad,
}

impl ClusterRuntime {
    /// A runtime for `config`.
    pub fn new(config: Arc<ClusterConfig>, now: Instant) -> Self {
        let outlier = config
            .outlier_detection
            .clone()
            .filter(|o| o.any_enabled())
            .map(|o| OutlierDetector::new(o, now));
        ClusterRuntime {
            breaker: CircuitBreaker::new(config.max_requests),
            config,
            endpoints: None,
            plan: None,
            picker: None,
            addrs: Vec::new(),
            locality_of: Vec::new(),
            in_flight: Vec::new(),
            outlier,
            load: ClusterLoad::default(),
        }
    }

    /// Applies a (possibly) new cluster and endpoints. Returns whether anything changed; the
    /// plan is rebuilt only when the cluster or the endpoints are new values.
    pub fn update(
        &mut self,
        now: Instant,
        config: &Arc<ClusterConfig>,
        endpoints: Option<&Arc<EndpointsConfig>>,
        options: &PlanOptions,
        rng: &mut Rng,
    ) -> bool {
        let config_changed = !Arc::ptr_eq(&self.config, config);
        let eps_changed = match (&self.endpoints, endpoints) {
            (Some(a), Some(b)) => !Arc::ptr_eq(a, b),
            (None, None) => false,
            _ => true,
        };
        if !config_changed && !eps_changed && self.plan.is_some() == self.endpoints.is_some() {
            return false;
        }
        if config_changed {
            self.breaker.set_max_requests(config.max_requests);
            match (
                &mut self.outlier,
                config.outlier_detection.clone().filter(|o| o.any_enabled()),
            ) {
                (Some(d), Some(o)) => d.set_config(o),
                (slot, o) => *slot = o.map(|o| OutlierDetector::new(o, now)),
            }
            self.config = Arc::clone(config);
        }
        self.endpoints = endpoints.cloned();
        let old: BTreeMap<SocketAddr, u32> = self
            .addrs
            .iter()
            .copied()
            .zip(self.in_flight.iter().copied())
            .collect();
        self.addrs.clear();
        self.locality_of.clear();
        if let Some(eps) = &self.endpoints {
            // EndpointIndex order: localities as listed, then their endpoints (see
            // `balancer::flat_endpoints`).
            for (li, loc) in eps.localities.iter().enumerate() {
                for ep in &loc.endpoints {
                    self.addrs.push(ep.address);
                    self.locality_of.push(li);
                }
            }
            debug_assert_eq!(self.addrs.len(), flat_endpoints(eps).count());
            self.load
                .set_localities(eps.localities.iter().map(|l| &l.name));
            self.plan = Some(Arc::new(LbPlan::new(
                eps,
                &self.config.lb_policy,
                options,
                rng,
            )));
        } else {
            self.plan = None;
        }
        self.in_flight = self
            .addrs
            .iter()
            .map(|a| old.get(a).copied().unwrap_or(0))
            .collect();
        if let Some(o) = &mut self.outlier {
            o.set_endpoints(self.addrs.iter().copied());
        }
        true
    }

    /// Rebuilds the picker from connectivity and ejections.
    pub fn rebuild_picker(&mut self, subchannels: &Subchannels, rng: &mut Rng) {
        let Some(plan) = &self.plan else {
            self.picker = None;
            return;
        };
        let mask: Vec<bool> = self
            .addrs
            .iter()
            .map(|a| {
                subchannels
                    .get(a)
                    .is_some_and(|s| s.state == Connectivity::Ready)
                    && !self.outlier.as_ref().is_some_and(|o| o.is_ejected(a))
            })
            .collect();
        self.picker = Some(Picker::new(Arc::clone(plan), &mask, rng));
    }

    /// What a new RPC can expect (see [`Reachability`]).
    pub fn reachability(&self, subchannels: &Subchannels) -> Reachability {
        if self.addrs.is_empty() {
            return Reachability::NoEndpoints;
        }
        if self
            .picker
            .as_ref()
            .is_some_and(|p| p.has_usable_endpoint())
        {
            return Reachability::Ready;
        }
        let connecting = self.addrs.iter().any(|a| {
            subchannels
                .get(a)
                .is_some_and(|s| matches!(s.state, Connectivity::Connecting | Connectivity::Idle))
        });
        if connecting {
            Reachability::Connecting
        } else {
            Reachability::Failing
        }
    }

    /// The locality of endpoint `i`.
    pub fn locality(&self, i: EndpointIndex) -> Option<&LocalityName> {
        let idx = *self.locality_of.get(i.get())?;
        self.endpoints
            .as_ref()
            .and_then(|e| e.localities.get(idx))
            .map(|l| &l.name)
    }

    /// The locality slot of endpoint `i` (for load counters).
    pub fn locality_slot(&self, i: EndpointIndex) -> Option<usize> {
        self.locality_of.get(i.get()).copied()
    }
}
