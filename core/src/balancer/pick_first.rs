//! `pick_first` (gRFC A62): the first eligible endpoint in (possibly shuffled) order.
//!
//! The shuffle for `shuffle_address_list` happens once per EDS update, in
//! [`LbPlan::new`](super::LbPlan::new); here the order is fixed and the picker only skips what
//! the data plane marked ineligible. So the channel stays on its endpoint across unrelated
//! connectivity changes and moves on only when that endpoint stops being eligible.

use super::index::{EndpointIndex, is_eligible};
use super::plan::Member;

/// The chosen endpoint, decided at build time.
#[derive(Debug)]
pub(super) struct PickFirst {
    endpoint: EndpointIndex,
}

impl PickFirst {
    /// The first eligible member; `None` when none is.
    pub(super) fn new(members: &[Member], eligible: &[bool]) -> Option<PickFirst> {
        members
            .iter()
            .find(|m| is_eligible(eligible, m.index))
            .map(|m| PickFirst { endpoint: m.index })
    }

    #[inline]
    pub(super) fn pick(&self) -> EndpointIndex {
        self.endpoint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_eligible_in_order() {
        let members: Vec<Member> = [3, 1, 2]
            .map(|i| Member {
                index: EndpointIndex(i),
                weight: 1,
            })
            .to_vec();
        let pf = PickFirst::new(&members, &[true, true, true, true]).unwrap();
        assert_eq!(pf.pick(), EndpointIndex(3));
        let pf = PickFirst::new(&members, &[true, true, true, false]).unwrap();
        assert_eq!(pf.pick(), EndpointIndex(1));
        assert!(PickFirst::new(&members, &[true]).is_none());
    }
}
