//! The picker: what the data plane calls for every RPC.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::drops::{self, DropCategory};
use super::index::EndpointIndex;
use super::plan::{LbPlan, PlanOptions};
use super::priority::{self, Active};
use crate::resource::endpoint::EndpointsConfig;
use crate::resource::lb_policy::LbPolicy;
use crate::rng::Rng;

/// In-flight RPC counts per [`EndpointIndex`], read by `least_request` (gRFC A48). Endpoints
/// past the end of the slice count as 0.
///
/// The data plane increments an endpoint's count when it sends an RPC there and decrements it
/// when the RPC ends, whatever its status (gRFC A48 "Outstanding request counters"); the picker
/// only reads. Counters shared between threads are `AtomicU32`s and can be passed as they are.
#[derive(Clone, Copy, Debug, Default)]
pub enum InFlight<'a> {
    /// Not tracked: every endpoint counts as 0 (P2C then degenerates to random).
    #[default]
    None,
    /// Plain counts, e.g. from a single-threaded driver or a test.
    Counts(&'a [u32]),
    /// Shared counters, read with `Relaxed` ordering (a slightly stale count only makes the
    /// choice slightly less informed).
    Shared(&'a [AtomicU32]),
}

impl InFlight<'_> {
    /// The count for `endpoint`.
    #[inline]
    pub fn get(&self, endpoint: EndpointIndex) -> u32 {
        match self {
            InFlight::None => 0,
            InFlight::Counts(c) => c.get(endpoint.get()).copied().unwrap_or(0),
            InFlight::Shared(c) => c
                .get(endpoint.get())
                .map_or(0, |c| c.load(Ordering::Relaxed)),
        }
    }
}

impl<'a> From<&'a [u32]> for InFlight<'a> {
    fn from(counts: &'a [u32]) -> Self {
        InFlight::Counts(counts)
    }
}

impl<'a> From<&'a [AtomicU32]> for InFlight<'a> {
    fn from(counts: &'a [AtomicU32]) -> Self {
        InFlight::Shared(counts)
    }
}

/// Per-RPC inputs to [`Picker::pick`].
#[derive(Debug)]
pub struct PickContext<'a> {
    /// The picking thread's random stream (drops, locality choice, P2C samples, random hashes).
    pub rng: &'a mut Rng,
    /// The request hash from the route's hash policy (gRFC A42), or from `request_hash_header`
    /// (gRFC A76). `None` when there is none, in which case the hash policies use a random hash,
    /// which sends the RPC to a random endpoint (gRFC A42).
    pub hash: Option<u64>,
    /// In-flight counts for `least_request`.
    pub in_flight: InFlight<'a>,
}

impl<'a> PickContext<'a> {
    /// A context with no request hash and no in-flight counts.
    pub fn new(rng: &'a mut Rng) -> Self {
        PickContext {
            rng,
            hash: None,
            in_flight: InFlight::None,
        }
    }

    /// Sets the request hash.
    pub fn with_hash(mut self, hash: Option<u64>) -> Self {
        self.hash = hash;
        self
    }

    /// Sets the in-flight counts.
    pub fn with_in_flight(mut self, in_flight: impl Into<InFlight<'a>>) -> Self {
        self.in_flight = in_flight.into();
        self
    }
}

/// The outcome of one pick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PickResult {
    /// Send the RPC to this endpoint. It was eligible when the picker was built.
    Pick(EndpointIndex),
    /// Drop the RPC (gRFC A27 `drop_overloads`): fail it with UNAVAILABLE and count it under
    /// `category` in load reports.
    Drop {
        /// Which entry of `drop_overloads` dropped it.
        category: DropCategory,
    },
    /// No priority has an eligible endpoint. The data plane queues the RPC (wait-for-ready, or
    /// while connections are coming up) or fails it with UNAVAILABLE.
    NoUsableEndpoint,
}

/// Picks an endpoint for each RPC. Immutable once built apart from its round-robin counters;
/// `Send + Sync`, meant to be shared (`Arc<Picker>`) by every thread that starts RPCs and
/// replaced wholesale when endpoints, health, connectivity or ejection change.
#[derive(Debug)]
pub struct Picker {
    plan: Arc<LbPlan>,
    active: Active,
    priority: Option<u32>,
}

impl Picker {
    /// Builds a picker from a plan and the eligible mask.
    ///
    /// `eligible[i]` says whether endpoint [`EndpointIndex`]`(i)` may take RPCs now: connected
    /// and not ejected by outlier detection. Endpoints past the end of the mask are ineligible,
    /// and so is every endpoint whose EDS health status is not usable (the plan already left
    /// those out). `rng` supplies round-robin start offsets.
    pub fn new(plan: Arc<LbPlan>, eligible: &[bool], rng: &mut Rng) -> Picker {
        let (active, priority) = priority::select(&plan, eligible, rng);
        Picker {
            plan,
            active,
            priority,
        }
    }

    /// Builds the plan and the picker in one go, with default [`PlanOptions`]. Convenient for
    /// tests and one-off picks; the data plane should keep the plan and call [`Picker::new`] on
    /// connectivity changes, so that rings are not rebuilt and a `pick_first` shuffle holds.
    pub fn build(
        config: &EndpointsConfig,
        policy: &LbPolicy,
        eligible: &[bool],
        rng: &mut Rng,
    ) -> Picker {
        let plan = LbPlan::new(config, policy, &PlanOptions::default(), rng);
        Picker::new(Arc::new(plan), eligible, rng)
    }

    /// Picks for one RPC: first the drop categories in order, then the endpoint.
    ///
    /// Never allocates and never blocks; takes `&self` so one picker serves every thread.
    #[inline]
    pub fn pick(&self, ctx: &mut PickContext<'_>) -> PickResult {
        if let Some(category) = drops::check(&self.plan.drops, ctx.rng) {
            return PickResult::Drop { category };
        }
        let picked = match &self.active {
            Active::Empty => None,
            Active::Localities(localities) => localities.pick(ctx),
            Active::Hash(table) => {
                let hash = match ctx.hash {
                    Some(hash) => hash,
                    None => ctx.rng.next_u64(),
                };
                table.pick(hash)
            }
        };
        picked.map_or(PickResult::NoUsableEndpoint, PickResult::Pick)
    }

    /// The EDS priority this picker serves from, or `None` when no endpoint is usable.
    pub fn priority(&self) -> Option<u32> {
        self.priority
    }

    /// Whether some endpoint can be picked (drops aside).
    pub fn has_usable_endpoint(&self) -> bool {
        !matches!(self.active, Active::Empty)
    }

    /// The plan this picker was built from.
    pub fn plan(&self) -> &Arc<LbPlan> {
        &self.plan
    }

    /// The name of a drop category returned in [`PickResult::Drop`].
    pub fn drop_category(&self, category: DropCategory) -> Option<&str> {
        self.plan.drop_category(category)
    }
}
