//! Load balancing: from validated endpoints and per-endpoint state to one endpoint per RPC.
//!
//! The data plane owns connectivity, outlier ejection and in-flight counters; this module owns
//! the arithmetic. It works in two stages so that the expensive part runs only when the
//! configuration changes:
//!
//! 1. [`LbPlan::new`] takes an [`EndpointsConfig`](crate::resource::endpoint::EndpointsConfig)
//!    (EDS) and an [`LbPolicy`](crate::resource::lb_policy::LbPolicy) (CDS) and precomputes
//!    everything that does not depend on connectivity: priorities and their localities, endpoints
//!    whose EDS `health_status` is usable (gRFC A27), the `pick_first` shuffle (gRFC A62), the
//!    ring-hash ring (gRFC A42/A76) or Maglev table of each priority, and the `drop_overloads`.
//!    Rebuild it on every EDS or CDS update.
//! 2. [`Picker::new`] takes a shared plan plus the *eligible mask* — one `bool` per
//!    [`EndpointIndex`], `false` for endpoints that are not connected or are ejected by outlier
//!    detection — and builds the picker for the highest priority that has an eligible endpoint
//!    (gRFC A56). It is cheap; rebuild it whenever connectivity or ejection changes. Failing over
//!    to a lower priority, and back when the higher one recovers, is simply the result of
//!    rebuilding with the new mask.
//!
//! [`Picker::pick`] is the hot path: it takes `&self` (a picker is shared by every thread that
//! starts RPCs, so its few counters are atomics with `Relaxed` ordering), never allocates, and
//! returns a [`PickResult`]: an endpoint, a drop with its category (gRFC A27 `drop_overloads`),
//! or "no usable endpoint" (the data plane decides whether to queue or fail).
//!
//! ```ignore
//! // On an EDS or CDS update:
//! let plan = Arc::new(LbPlan::new(&endpoints, &policy, &PlanOptions::default(), &mut rng));
//! // On that, and on every connectivity / ejection change (mask indexed by EndpointIndex):
//! let picker = Arc::new(Picker::new(Arc::clone(&plan), &eligible, &mut rng));
//! // For every RPC, on any thread, with that thread's Rng:
//! let mut ctx = PickContext::new(&mut thread_rng)
//!     .with_hash(route_hash)
//!     .with_in_flight(&in_flight[..]);
//! match picker.pick(&mut ctx) {
//!     PickResult::Pick(endpoint) => { /* send to endpoints[endpoint] */ }
//!     PickResult::Drop { category } => { /* UNAVAILABLE; count picker.drop_category(category) */ }
//!     PickResult::NoUsableEndpoint => { /* queue or fail */ }
//! }
//! ```
//! (`tests::usage_example` runs this.)
//!
//! ## Policies
//!
//! | [`LbPolicy`](crate::resource::lb_policy::LbPolicy) | inside a priority |
//! |---|---|
//! | `RoundRobin`, `WeightedRoundRobin`, `Random`, `PickFirst`, `LeastRequest` | pick a locality by `load_balancing_weight` among localities with an eligible endpoint, then the policy picks inside it (gRFC A27 `weighted_target` + child) |
//! | `RingHash`, `Maglev` | one table over all endpoints of the priority, weight = locality weight × endpoint weight (gRFC A42) |
//!
//! Hash tables hold every health-usable endpoint of the priority, eligible or not, so that an
//! endpoint that disconnects moves only its own keys: a pick that lands on an ineligible endpoint
//! walks forward to the next eligible one (gRFC A42 picker behaviour).
//!
//! ## Determinism
//!
//! Every random choice draws from the caller's [`Rng`](crate::rng::Rng): the plan (shuffles), the
//! picker (round-robin start offsets) and each pick (drops, locality choice, P2C samples, random
//! hashes). The same seed and inputs give the same picks, as long as one thread picks; with
//! several threads the interleaving of the shared round-robin counters is theirs to decide.
#![deny(missing_docs)]

mod drops;
mod hash_table;
mod index;
mod least_request;
mod maglev;
mod pick_first;
mod picker;
mod plan;
mod priority;
mod random;
mod ring_hash;
mod round_robin;
mod weighted_round_robin;

#[cfg(test)]
mod tests;

pub use drops::DropCategory;
pub use index::{EndpointIndex, endpoint_count, flat_endpoints};
pub use maglev::{DEFAULT_MAGLEV_TABLE_SIZE, MAX_MAGLEV_TABLE_SIZE};
pub use picker::{InFlight, PickContext, PickResult, Picker};
pub use plan::{LbPlan, PlanOptions};
pub use ring_hash::{DEFAULT_RING_SIZE_CAP, MAX_RING_SIZE};
pub use weighted_round_robin::MAX_SCHEDULE_LEN;
