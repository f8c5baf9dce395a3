//! The flat endpoint index shared by the balancer and the data plane.

use crate::resource::endpoint::{Endpoint, EndpointsConfig, Locality};

/// The position of an endpoint in the flat order of an [`EndpointsConfig`].
///
/// The flat order is: localities in the order `EndpointsConfig::localities` lists them
/// (whatever their priority), and inside each locality its endpoints in the order listed. So the
/// first endpoint of the first locality is 0, and the first endpoint of the second locality comes
/// right after the last endpoint of the first. Every endpoint has an index, including unhealthy
/// ones and those of weight-0 localities, so that the index is a pure function of the config and
/// the data plane can keep per-endpoint arrays (eligible mask, in-flight counters) without
/// knowing what the balancer filters out. [`flat_endpoints`] walks the same order.
///
/// Indices fit in a `u32` to keep hash tables compact; an `EndpointsConfig` with more than
/// `u32::MAX - 1` endpoints has its excess endpoints ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointIndex(pub u32);

impl EndpointIndex {
    /// The index as a `usize`, for indexing per-endpoint arrays.
    #[inline]
    pub const fn get(self) -> usize {
        self.0 as usize
    }

    /// The index of flat position `i`, if it can be represented.
    pub fn from_usize(i: usize) -> Option<EndpointIndex> {
        u32::try_from(i)
            .ok()
            .filter(|&i| i != u32::MAX)
            .map(EndpointIndex)
    }

    /// The locality and endpoint this index names in `config`, if it is in range.
    pub fn lookup(self, config: &EndpointsConfig) -> Option<(&Locality, &Endpoint)> {
        let mut rest = self.get();
        for locality in &config.localities {
            match locality.endpoints.get(rest) {
                Some(endpoint) => return Some((locality, endpoint)),
                None => rest -= locality.endpoints.len(),
            }
        }
        None
    }
}

/// Every endpoint of `config` with its [`EndpointIndex`], in flat order.
pub fn flat_endpoints(
    config: &EndpointsConfig,
) -> impl Iterator<Item = (EndpointIndex, &Locality, &Endpoint)> + '_ {
    config
        .localities
        .iter()
        .flat_map(|locality| locality.endpoints.iter().map(move |e| (locality, e)))
        // `0..u32::MAX` stops before u32::MAX, which no index may take.
        .zip((0..u32::MAX).map(EndpointIndex))
        .map(|((locality, endpoint), index)| (index, locality, endpoint))
}

/// How many endpoints `config` has in flat order: the length a per-endpoint mask should have.
pub fn endpoint_count(config: &EndpointsConfig) -> usize {
    let n: usize = config.localities.iter().map(|l| l.endpoints.len()).sum();
    n.min(u32::MAX as usize)
}

/// Whether the data plane marked `index` eligible. Entries past the end of the mask are not: an
/// endpoint the data plane has not told us about must not receive RPCs.
#[inline]
pub(super) fn is_eligible(eligible: &[bool], index: EndpointIndex) -> bool {
    eligible.get(index.get()).copied().unwrap_or(false)
}
