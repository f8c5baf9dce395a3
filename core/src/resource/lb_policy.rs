//! Validated load-balancing policy of a cluster: from `Cluster.lb_policy` + its `*_lb_config`, or
//! the first supported entry of `Cluster.load_balancing_policy.policies` (gRFC A52).

/// Which balancer picks the endpoint inside a locality (or over the flattened list for hash
/// policies), with its configuration.
#[derive(Clone, Debug, PartialEq, Default)]
#[non_exhaustive]
pub enum LbPolicy {
    /// `ROUND_ROBIN` (the default): rotate through usable endpoints, starting at a random offset.
    #[default]
    RoundRobin,
    /// Round robin weighted by endpoint `load_balancing_weight`, scheduled with EDF.
    WeightedRoundRobin,
    /// `RANDOM`: uniform over usable endpoints.
    Random,
    /// `pick_first` (gRFC A62): the first reachable endpoint, optionally after a shuffle.
    PickFirst {
        /// `shuffle_address_list`.
        shuffle_address_list: bool,
    },
    /// `LEAST_REQUEST` (gRFC A48): power of `choice_count` choices on in-flight RPCs.
    LeastRequest {
        /// `choice_count`, default 2, clamped to `2..=10`.
        choice_count: u32,
    },
    /// `RING_HASH` (gRFC A42/A76): consistent hashing on a ring of xxHash64 points.
    RingHash {
        /// `minimum_ring_size`, default 1024.
        min_ring_size: u64,
        /// `maximum_ring_size`, default 8M (gRPC caps at 8M, gRFC A42).
        max_ring_size: u64,
        /// `request_hash_header` (gRFC A76): hash this header when the route has no hash policy.
        request_hash_header: Option<String>,
    },
    /// `MAGLEV`: consistent hashing with a lookup table.
    Maglev {
        /// `table_size`, a prime; default 65537.
        table_size: u64,
    },
}
