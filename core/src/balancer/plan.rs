//! The connectivity-independent half of a picker, rebuilt on EDS/CDS updates.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::drops::{DropCategory, DropRule};
use super::hash_table::{HashMember, HashTable};
use super::index::EndpointIndex;
use super::maglev::Maglev;
use super::ring_hash::{DEFAULT_RING_SIZE_CAP, Ring, RingSizes};
use crate::resource::endpoint::{Endpoint, EndpointsConfig, Locality};
use crate::resource::lb_policy::LbPolicy;
use crate::rng::Rng;

/// Local (not xDS) limits on what a plan may build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanOptions {
    /// The client-side cap on ring-hash ring size (gRFC A42: "a local option ... to set a cap for
    /// the ring size, which will also default to 4096"). Both `min_ring_size` and
    /// `max_ring_size` are lowered to it, so a control plane cannot make every client build
    /// 8M-entry rings. Values above [`MAX_RING_SIZE`](super::MAX_RING_SIZE) are treated as it.
    pub ring_size_cap: u64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            ring_size_cap: DEFAULT_RING_SIZE_CAP,
        }
    }
}

/// [`LbPolicy`] reduced to what picking needs, with its numbers already clamped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Policy {
    RoundRobin,
    WeightedRoundRobin,
    Random,
    PickFirst,
    /// `choices` is in `2..=10`.
    LeastRequest {
        choices: u32,
    },
    RingHash,
    Maglev,
}

/// An endpoint as a locality's child policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Member {
    pub(super) index: EndpointIndex,
    /// Endpoint `load_balancing_weight`, at least 1.
    pub(super) weight: u32,
}

/// One locality with a positive weight and at least one health-usable endpoint.
#[derive(Clone, Debug)]
pub(super) struct LocalityPlan {
    pub(super) weight: u32,
    /// In EDS order, or shuffled once here for `pick_first` with `shuffle_address_list`.
    pub(super) members: Box<[Member]>,
}

/// One priority level.
#[derive(Clone, Debug)]
pub(super) struct PriorityPlan {
    /// The EDS `priority` number (0 is the highest).
    pub(super) priority: u32,
    /// Used by the locality-picking policies.
    pub(super) localities: Box<[LocalityPlan]>,
    /// The ring or Maglev table over the whole priority, for the hash policies.
    pub(super) table: Option<Arc<HashTable>>,
}

/// Everything about picking that depends only on the EDS and CDS configuration.
///
/// Build one per EDS/CDS update and share it (`Arc`) between the pickers built from it as
/// connectivity changes; building it is where ring-hash rings and Maglev tables are computed,
/// so connectivity changes do not pay for them.
pub struct LbPlan {
    pub(super) policy: Policy,
    pub(super) endpoint_count: usize,
    pub(super) drops: Box<[DropRule]>,
    /// Ascending priority number; only priorities with at least one member.
    pub(super) priorities: Box<[PriorityPlan]>,
}

impl fmt::Debug for LbPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LbPlan")
            .field("policy", &self.policy)
            .field("endpoint_count", &self.endpoint_count)
            .field("drops", &self.drops)
            .field("priorities", &self.priorities)
            .finish()
    }
}

/// A priority while it is being gathered.
#[derive(Default)]
struct PriorityBuild {
    localities: Vec<LocalityPlan>,
    hash_members: Vec<HashMember>,
}

impl LbPlan {
    /// Precomputes picking for `config` under `policy`.
    ///
    /// `rng` is used only by `pick_first` with `shuffle_address_list` (gRFC A62 shuffles once per
    /// address-list update, which is why the shuffle lives here and not in the picker: a
    /// connectivity change must not move a `pick_first` channel to another endpoint).
    ///
    /// Never fails: validation has already rejected what it must, and anything odd that gets
    /// through (zero weights, `min_ring_size > max_ring_size`, a non-prime Maglev table size) is
    /// handled by a documented fallback rather than a panic.
    pub fn new(
        config: &EndpointsConfig,
        policy: &LbPolicy,
        options: &PlanOptions,
        rng: &mut Rng,
    ) -> LbPlan {
        let resolved = resolve(policy);
        let hashing = matches!(resolved, Policy::RingHash | Policy::Maglev);

        let mut by_priority: BTreeMap<u32, PriorityBuild> = BTreeMap::new();
        let mut base: usize = 0;
        for locality in &config.localities {
            let first = base;
            base = base.saturating_add(locality.endpoints.len());
            // gRFC A27: a locality of weight 0 gets no traffic (validation removes it; a picker
            // handed one anyway must not divide by it).
            if locality.weight == 0 {
                continue;
            }
            let members = usable_members(locality, first);
            if members.is_empty() {
                continue;
            }
            let build = by_priority.entry(locality.priority).or_default();
            if hashing {
                build
                    .hash_members
                    .extend(members.iter().map(|(m, endpoint)| HashMember {
                        index: m.index,
                        // gRFC A42: table weight = locality weight × endpoint weight.
                        weight: u64::from(locality.weight) * u64::from(m.weight),
                        key: HashMember::key_of(endpoint),
                    }));
            }
            let mut members: Vec<Member> = members.into_iter().map(|(m, _)| m).collect();
            if matches!(
                policy,
                LbPolicy::PickFirst {
                    shuffle_address_list: true
                }
            ) {
                shuffle(&mut members, rng);
            }
            build.localities.push(LocalityPlan {
                weight: locality.weight,
                members: members.into_boxed_slice(),
            });
        }

        let priorities = by_priority
            .into_iter()
            .map(|(priority, build)| {
                let table = match policy {
                    LbPolicy::RingHash {
                        min_ring_size,
                        max_ring_size,
                        ..
                    } => {
                        let sizes =
                            RingSizes::new(*min_ring_size, *max_ring_size, options.ring_size_cap);
                        Some(HashTable::Ring(Ring::build(build.hash_members, sizes)))
                    }
                    LbPolicy::Maglev { table_size } => Some(HashTable::Maglev(Maglev::build(
                        build.hash_members,
                        *table_size,
                    ))),
                    _ => None,
                };
                PriorityPlan {
                    priority,
                    localities: build.localities.into_boxed_slice(),
                    table: table.map(Arc::new),
                }
            })
            .collect();

        LbPlan {
            policy: resolved,
            endpoint_count: base.min(u32::MAX as usize),
            drops: config
                .drop_overloads
                .iter()
                .take(u32::MAX as usize)
                .map(DropRule::from_config)
                .collect(),
            priorities,
        }
    }

    /// How many endpoints the config has in flat order (the length the eligible mask should have).
    pub fn endpoint_count(&self) -> usize {
        self.endpoint_count
    }

    /// The name of a drop category returned in [`PickResult::Drop`](super::PickResult::Drop).
    pub fn drop_category(&self, category: DropCategory) -> Option<&str> {
        self.drops
            .get(category.0 as usize)
            .map(|rule| &*rule.category)
    }

    /// The EDS priority numbers that have at least one health-usable endpoint, highest first.
    pub fn priorities(&self) -> impl Iterator<Item = u32> + '_ {
        self.priorities.iter().map(|p| p.priority)
    }
}

fn resolve(policy: &LbPolicy) -> Policy {
    match policy {
        LbPolicy::RoundRobin => Policy::RoundRobin,
        LbPolicy::WeightedRoundRobin => Policy::WeightedRoundRobin,
        LbPolicy::Random => Policy::Random,
        LbPolicy::PickFirst { .. } => Policy::PickFirst,
        // gRFC A48: `choice_count` below 2 is invalid and above 10 is treated as 10; validation
        // handles the former, the clamp keeps the picker safe either way.
        LbPolicy::LeastRequest { choice_count } => Policy::LeastRequest {
            choices: (*choice_count).clamp(2, 10),
        },
        LbPolicy::RingHash { .. } => Policy::RingHash,
        LbPolicy::Maglev { .. } => Policy::Maglev,
    }
}

/// The endpoints of `locality` that EDS says may take RPCs (gRFC A27: HEALTHY or UNKNOWN), with
/// their flat indices (`first` is the locality's first index).
fn usable_members(locality: &Locality, first: usize) -> Vec<(Member, &Endpoint)> {
    locality
        .endpoints
        .iter()
        .enumerate()
        .filter(|(_, e)| e.health.is_usable())
        .filter_map(|(i, e)| {
            let member = Member {
                index: EndpointIndex::from_usize(first.checked_add(i)?)?,
                // Validation rejects weight 0; treat a stray 0 as protobuf's "unset" (1).
                weight: e.weight.max(1),
            };
            Some((member, e))
        })
        .collect()
}

/// Fisher–Yates with the plan's rng.
fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        // `below(i + 1)` is at most `i`, which is in range.
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}
