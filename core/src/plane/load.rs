//! Load-report counters per cluster and locality, shaped for LRS (gRFC A27) and metrics:
//! requests issued, succeeded, errored, in progress, and drops per category.
//!
//! Counters are indexed by the locality's position in the current `ClusterLoadAssignment`, so
//! counting an attempt is an index, never an allocation; an EDS update carries counters over by
//! locality name.

use std::collections::BTreeMap;

use crate::resource::endpoint::LocalityName;

/// Counters of one locality.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalityLoad {
    /// Attempts sent.
    pub issued: u64,
    /// Attempts that ended OK.
    pub succeeded: u64,
    /// Attempts that ended with another status.
    pub errored: u64,
    /// Attempts in flight now.
    pub in_progress: u64,
}

/// Counters of one cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterLoad {
    localities: Vec<(LocalityName, LocalityLoad)>,
    /// Counters of localities that left the assignment, kept until reported.
    retired: BTreeMap<LocalityName, LocalityLoad>,
    /// RPCs dropped by `drop_overloads`, per category.
    pub drops: BTreeMap<String, u64>,
    /// RPCs refused by the circuit breaker (reported as uncategorised drops in LRS).
    pub circuit_breaker_drops: u64,
}

impl ClusterLoad {
    /// Re-indexes the counters for a new list of localities (an EDS update).
    pub fn set_localities<'a>(&mut self, names: impl IntoIterator<Item = &'a LocalityName>) {
        let mut old: BTreeMap<LocalityName, LocalityLoad> =
            core::mem::take(&mut self.localities).into_iter().collect();
        for name in names {
            let load = old.remove(name).unwrap_or_default();
            self.localities.push((name.clone(), load));
        }
        for (name, load) in old {
            let r = self.retired.entry(name).or_default();
            r.issued += load.issued;
            r.succeeded += load.succeeded;
            r.errored += load.errored;
            r.in_progress += load.in_progress;
        }
    }

    /// An attempt was sent to an endpoint of locality `idx`.
    pub fn issued(&mut self, idx: usize) {
        if let Some((_, l)) = self.localities.get_mut(idx) {
            l.issued += 1;
            l.in_progress += 1;
        }
    }

    /// An attempt to locality `name` ended. Looked up by name: the assignment may have changed
    /// since the attempt started.
    pub fn finished(&mut self, name: &LocalityName, ok: bool) {
        let slot = match self.localities.iter_mut().find(|(n, _)| n == name) {
            Some((_, l)) => Some(l),
            None => self.retired.get_mut(name),
        };
        if let Some(l) = slot {
            l.in_progress = l.in_progress.saturating_sub(1);
            if ok {
                l.succeeded += 1;
            } else {
                l.errored += 1;
            }
        }
    }

    /// An RPC was dropped with `category`.
    pub fn dropped(&mut self, category: &str) {
        match self.drops.get_mut(category) {
            Some(n) => *n += 1,
            None => {
                self.drops.insert(category.to_string(), 1);
            }
        }
    }

    /// Counters per locality (current and retired), for reports.
    pub fn by_locality(&self) -> BTreeMap<LocalityName, LocalityLoad> {
        let mut out = self.retired.clone();
        for (n, l) in &self.localities {
            let e = out.entry(n.clone()).or_default();
            e.issued += l.issued;
            e.succeeded += l.succeeded;
            e.errored += l.errored;
            e.in_progress += l.in_progress;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_locality_and_survives_reassignment() {
        let mut c = ClusterLoad::default();
        let a = LocalityName {
            zone: "a".into(),
            ..Default::default()
        };
        let b = LocalityName {
            zone: "b".into(),
            ..Default::default()
        };
        c.set_localities([&a, &b]);
        c.issued(0);
        c.issued(0);
        c.issued(1);
        c.finished(&a, true);
        c.set_localities([&b]);
        c.finished(&a, false);
        c.finished(&b, true);
        c.dropped("lb");
        c.dropped("lb");
        let by = c.by_locality();
        let la = &by[&a];
        assert_eq!(
            (la.issued, la.succeeded, la.errored, la.in_progress),
            (2, 1, 1, 0)
        );
        let lb = &by[&b];
        assert_eq!((lb.issued, lb.succeeded, lb.in_progress), (1, 1, 0));
        assert_eq!(c.drops["lb"], 2);
    }
}
