//! Priorities and localities (gRFC A27 `priority` + `weighted_target`, gRFC A56).
//!
//! A picker serves from one priority: the highest (lowest number) with at least one eligible
//! endpoint. gRFC A56's priority policy fails over when a child reports TRANSIENT_FAILURE and
//! fails back as soon as a higher child is READY again; with the data plane rebuilding the picker
//! on every connectivity change, "has an eligible endpoint" is that same test, evaluated at build.
//! (A56's failover *timer* — give a CONNECTING priority 10 s before trying the next — concerns
//! endpoints that are not connected yet, i.e. not eligible; it belongs to the data plane, which
//! decides what the mask says while connections are being established.)

use std::sync::Arc;

use super::hash_table::{HashPicker, HashTable};
use super::index::{EndpointIndex, is_eligible};
use super::least_request::LeastRequest;
use super::pick_first::PickFirst;
use super::picker::PickContext;
use super::plan::{LbPlan, LocalityPlan, Policy, PriorityPlan};
use super::random::Random;
use super::round_robin::RoundRobin;
use super::weighted_round_robin::WeightedRoundRobin;
use crate::rng::Rng;

/// What a picker picks from.
#[derive(Debug)]
pub(super) enum Active {
    /// No priority has an eligible endpoint.
    Empty,
    /// Locality-weighted choice, then a child policy.
    Localities(LocalityPicker),
    /// Ring hash or Maglev over the whole priority.
    Hash(HashPicker),
}

/// Chooses the priority and builds what picks from it; the priority number comes back with it.
pub(super) fn select(plan: &LbPlan, eligible: &[bool], rng: &mut Rng) -> (Active, Option<u32>) {
    for priority in plan.priorities.iter() {
        let active = match &priority.table {
            Some(table) => hash_picker(table, eligible),
            None => {
                LocalityPicker::new(priority, plan.policy, eligible, rng).map(Active::Localities)
            }
        };
        if let Some(active) = active {
            return (active, Some(priority.priority));
        }
    }
    (Active::Empty, None)
}

fn hash_picker(table: &Arc<HashTable>, eligible: &[bool]) -> Option<Active> {
    HashPicker::new(table, eligible).map(Active::Hash)
}

/// A locality's child policy, over its eligible endpoints.
#[derive(Debug)]
pub(super) enum Child {
    RoundRobin(RoundRobin),
    WeightedRoundRobin(WeightedRoundRobin),
    Random(Random),
    PickFirst(PickFirst),
    LeastRequest(LeastRequest),
}

impl Child {
    fn new(
        locality: &LocalityPlan,
        policy: Policy,
        eligible: &[bool],
        rng: &mut Rng,
    ) -> Option<Child> {
        let endpoints = || -> Box<[EndpointIndex]> {
            locality
                .members
                .iter()
                .map(|m| m.index)
                .filter(|&i| is_eligible(eligible, i))
                .collect()
        };
        match policy {
            Policy::RoundRobin => RoundRobin::new(endpoints(), rng).map(Child::RoundRobin),
            Policy::WeightedRoundRobin => {
                let members: Vec<_> = locality
                    .members
                    .iter()
                    .filter(|m| is_eligible(eligible, m.index))
                    .copied()
                    .collect();
                WeightedRoundRobin::new(&members, rng).map(Child::WeightedRoundRobin)
            }
            Policy::Random => Random::new(endpoints()).map(Child::Random),
            Policy::PickFirst => PickFirst::new(&locality.members, eligible).map(Child::PickFirst),
            Policy::LeastRequest { choices } => {
                LeastRequest::new(endpoints(), choices).map(Child::LeastRequest)
            }
            // The plan gives hash policies a table, so `select` never gets here with them.
            Policy::RingHash | Policy::Maglev => None,
        }
    }

    #[inline]
    fn pick(&self, ctx: &mut PickContext<'_>) -> Option<EndpointIndex> {
        match self {
            Child::RoundRobin(p) => p.pick(),
            Child::WeightedRoundRobin(p) => p.pick(),
            Child::Random(p) => p.pick(ctx.rng),
            Child::PickFirst(p) => Some(p.pick()),
            Child::LeastRequest(p) => p.pick(ctx.rng, ctx.in_flight),
        }
    }
}

/// Weighted choice of a locality, then its child.
#[derive(Debug)]
pub(super) struct LocalityPicker {
    /// Running sums of the weights of `children`' localities: child `i` owns
    /// `cumulative[i-1]..cumulative[i]`. Localities without an eligible endpoint are left out,
    /// as `weighted_target` only picks among READY children (gRFC A27).
    cumulative: Box<[u64]>,
    children: Box<[Child]>,
}

impl LocalityPicker {
    /// `None` when no locality of `priority` has an eligible endpoint.
    fn new(
        priority: &PriorityPlan,
        policy: Policy,
        eligible: &[bool],
        rng: &mut Rng,
    ) -> Option<LocalityPicker> {
        let mut cumulative = Vec::new();
        let mut children = Vec::new();
        let mut total: u64 = 0;
        for locality in priority.localities.iter() {
            // The plan already left out weight-0 localities; this guards the sum regardless.
            if locality.weight == 0 {
                continue;
            }
            if let Some(child) = Child::new(locality, policy, eligible, rng) {
                total += u64::from(locality.weight);
                cumulative.push(total);
                children.push(child);
            }
        }
        (!children.is_empty()).then(|| LocalityPicker {
            cumulative: cumulative.into_boxed_slice(),
            children: children.into_boxed_slice(),
        })
    }

    #[inline]
    pub(super) fn pick(&self, ctx: &mut PickContext<'_>) -> Option<EndpointIndex> {
        let child = if let [only] = &*self.children {
            // One locality (the common case): no draw needed.
            only
        } else {
            let total = self.cumulative.last().copied().unwrap_or(0);
            let r = ctx.rng.below(total);
            let i = self.cumulative.partition_point(|&c| c <= r);
            self.children.get(i)?
        };
        child.pick(ctx)
    }
}
