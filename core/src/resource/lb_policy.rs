//! Validated load-balancing policy of a cluster: from `Cluster.lb_policy` + its `*_lb_config`, or
//! the first supported entry of `Cluster.load_balancing_policy.policies` (gRFC A52).

use super::{Ignored, ValidationError, duration};
use crate::pb::envoy::config::cluster::v3 as clusterpb;
use crate::pb::envoy::extensions::load_balancing_policies as lbpb;

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

// ---------------------------------------------------------------------------------------------
// Validation: `Cluster` wire fields -> `LbPolicy`.
// ---------------------------------------------------------------------------------------------

/// `minimum_ring_size` when unset (gRFC A42, Envoy).
pub const DEFAULT_MIN_RING_SIZE: u64 = 1024;
/// Largest ring accepted, and `maximum_ring_size` when unset: 8M entries (gRFC A42: "values
/// above 8M will be NACKed"). Runtime may cap rings lower; that is the balancer's business.
pub const MAX_RING_SIZE: u64 = 8 * 1024 * 1024;
/// `choice_count` when unset (gRFC A48).
pub const DEFAULT_CHOICE_COUNT: u32 = 2;
/// Larger `choice_count` values are clamped to this (gRFC A48).
pub const MAX_CHOICE_COUNT: u32 = 10;
/// Maglev `table_size` when unset (Envoy).
pub const DEFAULT_MAGLEV_TABLE_SIZE: u64 = 65537;
/// Largest Maglev `table_size` Envoy accepts (`maglev.proto`: lte 5000011).
pub const MAX_MAGLEV_TABLE_SIZE: u64 = 5_000_011;
/// Deepest nesting of `LoadBalancingPolicy` lists accepted: "Configurations that require more
/// than 16 levels of recursion are considered invalid" (gRFC A52).
pub const MAX_POLICY_DEPTH: usize = 16;

const ROUND_ROBIN: &str = "envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin";
const RING_HASH: &str = "envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash";
const LEAST_REQUEST: &str =
    "envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest";
const MAGLEV: &str = "envoy.extensions.load_balancing_policies.maglev.v3.Maglev";
const RANDOM: &str = "envoy.extensions.load_balancing_policies.random.v3.Random";
const PICK_FIRST: &str = "envoy.extensions.load_balancing_policies.pick_first.v3.PickFirst";
const WRR_LOCALITY: &str = "envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality";
const CLIENT_SIDE_WRR: &str = "envoy.extensions.load_balancing_policies.client_side_weighted_round_robin.v3.ClientSideWeightedRoundRobin";

/// The LB policy of a `Cluster` (paths relative to the `Cluster`).
///
/// `load_balancing_policy`, when present, takes precedence and `lb_policy` / `lb_config` are
/// recorded as ignored (gRFC A52: "If the load_balancing_policy field is provided, it will be
/// used instead of the lb_policy and lb_config fields"). Otherwise `lb_policy` picks the policy
/// and the matching `*_lb_config` configures it; a config for a different policy is recorded as
/// ignored.
///
/// Beyond gRPC, skiff accepts `RANDOM` and `MAGLEV` (gRPC NACKs both).
pub fn validate_cluster_lb_policy(
    cluster: &clusterpb::Cluster,
    ignored: &mut Ignored,
) -> Result<LbPolicy, ValidationError> {
    if let Some(lbp) = &cluster.load_balancing_policy {
        // ROUND_ROBIN is the unset default and LOAD_BALANCING_POLICY_CONFIG points at the
        // list itself; any other value is a choice that the list overrides.
        if cluster.lb_policy != clusterpb::cluster::LbPolicy::RoundRobin as i32
            && cluster.lb_policy != clusterpb::cluster::LbPolicy::LoadBalancingPolicyConfig as i32
        {
            ignored.note("lb_policy");
        }
        if let Some(cfg) = &cluster.lb_config {
            ignored.note(lb_config_field(cfg));
        }
        let mut inner = Ignored::default();
        let policy = validate_load_balancing_policy(lbp, &mut inner)
            .map_err(|e| e.within("load_balancing_policy"))?;
        super::tls::merge_ignored(ignored, "load_balancing_policy", &inner);
        return Ok(policy);
    }
    legacy_lb_policy(cluster, ignored)
}

/// The proto field name of the `lb_config` oneof member that is set.
fn lb_config_field(cfg: &clusterpb::cluster::LbConfig) -> &'static str {
    use clusterpb::cluster::LbConfig as C;
    match cfg {
        C::RingHashLbConfig(_) => "ring_hash_lb_config",
        C::MaglevLbConfig(_) => "maglev_lb_config",
        C::OriginalDstLbConfig(_) => "original_dst_lb_config",
        C::LeastRequestLbConfig(_) => "least_request_lb_config",
        C::RoundRobinLbConfig(_) => "round_robin_lb_config",
    }
}

fn legacy_lb_policy(
    cluster: &clusterpb::Cluster,
    ignored: &mut Ignored,
) -> Result<LbPolicy, ValidationError> {
    use clusterpb::cluster::LbConfig as C;
    use clusterpb::cluster::LbPolicy as P;
    let Ok(kind) = P::try_from(cluster.lb_policy) else {
        return Err(ValidationError::new(
            "lb_policy",
            format!("unknown value {}", cluster.lb_policy),
        ));
    };
    // The config that belongs to `kind`, if that is the one set; any other is ignored.
    let mut used_config = false;
    let policy = match kind {
        P::RoundRobin => {
            if let Some(C::RoundRobinLbConfig(c)) = &cluster.lb_config {
                used_config = true;
                if c.slow_start_config.is_some() {
                    ignored.note("round_robin_lb_config.slow_start_config");
                }
            }
            LbPolicy::RoundRobin
        }
        P::RingHash => {
            // A42: "The field is optional; if not present, defaults will be assumed".
            let (min, max, hash_ok) = match &cluster.lb_config {
                Some(C::RingHashLbConfig(c)) => {
                    used_config = true;
                    (
                        c.minimum_ring_size,
                        c.maximum_ring_size,
                        c.hash_function
                            == clusterpb::cluster::ring_hash_lb_config::HashFunction::XxHash as i32,
                    )
                }
                _ => (None, None, true),
            };
            if !hash_ok {
                return Err(ValidationError::new(
                    "ring_hash_lb_config.hash_function",
                    "only XX_HASH is supported (gRFC A42)",
                ));
            }
            ring_hash(min, max).map_err(|e| e.within("ring_hash_lb_config"))?
        }
        P::LeastRequest => {
            // istiod >= 1.29 sends LEAST_REQUEST with no least_request_lb_config: A48 says
            // defaults apply, so this must be accepted with choice_count 2.
            let count = match &cluster.lb_config {
                Some(C::LeastRequestLbConfig(c)) => {
                    used_config = true;
                    for (name, set) in [
                        (
                            "least_request_lb_config.active_request_bias",
                            c.active_request_bias.is_some(),
                        ),
                        (
                            "least_request_lb_config.slow_start_config",
                            c.slow_start_config.is_some(),
                        ),
                    ] {
                        if set {
                            ignored.note(name);
                        }
                    }
                    c.choice_count
                }
                _ => None,
            };
            least_request(count).map_err(|e| e.within("least_request_lb_config"))?
        }
        P::Random => LbPolicy::Random,
        P::Maglev => {
            let size = match &cluster.lb_config {
                Some(C::MaglevLbConfig(c)) => {
                    used_config = true;
                    c.table_size
                }
                _ => None,
            };
            maglev(size).map_err(|e| e.within("maglev_lb_config"))?
        }
        P::ClusterProvided => {
            return Err(ValidationError::new(
                "lb_policy",
                "CLUSTER_PROVIDED is not supported: skiff supports ROUND_ROBIN, LEAST_REQUEST, \
                 RING_HASH, MAGLEV, RANDOM or a load_balancing_policy list",
            ));
        }
        P::LoadBalancingPolicyConfig => {
            return Err(ValidationError::new(
                "lb_policy",
                "LOAD_BALANCING_POLICY_CONFIG requires load_balancing_policy to be set",
            ));
        }
    };
    if let (false, Some(cfg)) = (used_config, &cluster.lb_config) {
        ignored.note(lb_config_field(cfg));
    }
    Ok(policy)
}

/// Ring hash bounds shared by `ring_hash_lb_config` and the `RingHash` extension (paths
/// relative to either). gRFC A42 NACKs sizes above 8M; like gRPC C-core, 0 and min > max are
/// rejected too, since no ring can satisfy them.
fn ring_hash(min: Option<u64>, max: Option<u64>) -> Result<LbPolicy, ValidationError> {
    let min_ring_size = min.unwrap_or(DEFAULT_MIN_RING_SIZE);
    let max_ring_size = max.unwrap_or(MAX_RING_SIZE);
    for (field, v) in [
        ("minimum_ring_size", min_ring_size),
        ("maximum_ring_size", max_ring_size),
    ] {
        if v == 0 || v > MAX_RING_SIZE {
            return Err(ValidationError::new(
                field,
                format!("{v} is outside 1..={MAX_RING_SIZE} (gRFC A42)"),
            ));
        }
    }
    if min_ring_size > max_ring_size {
        return Err(ValidationError::new(
            "minimum_ring_size",
            format!("{min_ring_size} is greater than maximum_ring_size {max_ring_size}"),
        ));
    }
    Ok(LbPolicy::RingHash {
        min_ring_size,
        max_ring_size,
        // A76's request_hash_header is a gRPC service-config knob with no xDS field.
        request_hash_header: None,
    })
}

/// gRFC A48: default 2, below 2 rejected, above 10 clamped to 10.
fn least_request(choice_count: Option<u32>) -> Result<LbPolicy, ValidationError> {
    let n = choice_count.unwrap_or(DEFAULT_CHOICE_COUNT);
    if n < 2 {
        return Err(ValidationError::new(
            "choice_count",
            format!("{n} is less than 2 (gRFC A48)"),
        ));
    }
    Ok(LbPolicy::LeastRequest {
        choice_count: n.min(MAX_CHOICE_COUNT),
    })
}

/// Maglev's lookup table must have a prime size (the permutation needs it) no larger than
/// Envoy's limit.
fn maglev(table_size: Option<u64>) -> Result<LbPolicy, ValidationError> {
    let n = table_size.unwrap_or(DEFAULT_MAGLEV_TABLE_SIZE);
    if n > MAX_MAGLEV_TABLE_SIZE || !is_prime(n) {
        return Err(ValidationError::new(
            "table_size",
            format!("{n} must be a prime no larger than {MAX_MAGLEV_TABLE_SIZE}"),
        ));
    }
    Ok(LbPolicy::Maglev { table_size: n })
}

/// Trial division: `n` is at most 5000011 when called, so this is at most ~1100 steps.
fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let mut d = 3u64;
    while d.saturating_mul(d) <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 2;
    }
    true
}

/// Converts a `LoadBalancingPolicy` list (gRFC A52; paths relative to it): the first entry
/// skiff supports wins. Unsupported entries before it are skipped and recorded as ignored,
/// including `TypedStruct` custom policies, since skiff has no custom-policy registry. An error
/// in the chosen entry rejects the resource, as does a list with no supported entry.
///
/// Supported: `RoundRobin`, `RingHash`, `LeastRequest`, `Maglev`, `Random`, `PickFirst`,
/// `ClientSideWeightedRoundRobin` (as [`LbPolicy::WeightedRoundRobin`] over EDS weights: ORCA
/// load reports are not used, and that is recorded as ignored) and `WrrLocality`, which is
/// gRPC's locality-weighted wrapper: skiff always weights localities, so it unwraps to the
/// child policy.
pub fn validate_load_balancing_policy(
    lbp: &clusterpb::LoadBalancingPolicy,
    ignored: &mut Ignored,
) -> Result<LbPolicy, ValidationError> {
    convert_list(lbp, 1, ignored)
}

fn convert_list(
    lbp: &clusterpb::LoadBalancingPolicy,
    depth: usize,
    ignored: &mut Ignored,
) -> Result<LbPolicy, ValidationError> {
    if depth > MAX_POLICY_DEPTH {
        return Err(ValidationError::new(
            "",
            format!("load balancing policies nested more than {MAX_POLICY_DEPTH} deep (gRFC A52)"),
        ));
    }
    for (i, p) in lbp.policies.iter().enumerate() {
        let Some(any) = p
            .typed_extension_config
            .as_ref()
            .and_then(|t| t.typed_config.as_ref())
        else {
            ignored.note(format!("policies[{i}]"));
            continue;
        };
        let path = format!("policies[{i}].typed_extension_config.typed_config");
        let mut inner = Ignored::default();
        match convert_one(any, depth, &mut inner).map_err(|e| e.within(&path))? {
            Some(policy) => {
                // ClientSideWeightedRoundRobin's point is weights from ORCA backend load
                // reports (gRFC A58). skiff has no ORCA and schedules by EDS endpoint weights,
                // so the extension as a whole is recorded as not honoured, at its own path.
                if type_name(&any.type_url) == CLIENT_SIDE_WRR {
                    ignored.note(path.clone());
                }
                super::tls::merge_ignored(ignored, &path, &inner);
                return Ok(policy);
            }
            None => ignored.note(format!("policies[{i}]")),
        }
    }
    Err(ValidationError::new(
        "policies",
        "no supported policy: skiff supports round_robin, ring_hash, least_request, maglev, \
         random, pick_first, client_side_weighted_round_robin and wrr_locality (gRFC A52)",
    ))
}

/// The message name in a type URL: what follows the last `/` (gRFC A52 uses the same rule for
/// `TypedStruct.type_url`).
fn type_name(type_url: &str) -> &str {
    type_url.rsplit('/').next().unwrap_or_default()
}

fn decode<M: prost::Message + prost::Name + Default>(
    any: &prost_types::Any,
) -> Result<M, ValidationError> {
    any.to_msg::<M>()
        .map_err(|e| ValidationError::new("", format!("cannot decode {}: {e}", M::full_name())))
}

fn note_set(ignored: &mut Ignored, fields: &[(&str, bool)]) {
    for (name, set) in fields {
        if *set {
            ignored.note(*name);
        }
    }
}

/// One `typed_config` (paths relative to it). `Ok(None)` means "not supported, skip it".
#[allow(deprecated)] // Reads deprecated fields only to report them as ignored.
fn convert_one(
    any: &prost_types::Any,
    depth: usize,
    ignored: &mut Ignored,
) -> Result<Option<LbPolicy>, ValidationError> {
    let policy = match type_name(&any.type_url) {
        ROUND_ROBIN => {
            let c: lbpb::round_robin::v3::RoundRobin = decode(any)?;
            note_set(
                ignored,
                &[
                    ("slow_start_config", c.slow_start_config.is_some()),
                    ("locality_lb_config", c.locality_lb_config.is_some()),
                ],
            );
            LbPolicy::RoundRobin
        }
        RING_HASH => {
            use lbpb::ring_hash::v3::ring_hash::HashFunction;
            let c: lbpb::ring_hash::v3::RingHash = decode(any)?;
            // DEFAULT_HASH is documented as XX_HASH; gRPC C-core accepts both.
            if c.hash_function != HashFunction::XxHash as i32
                && c.hash_function != HashFunction::DefaultHash as i32
            {
                return Err(ValidationError::new(
                    "hash_function",
                    "only XX_HASH is supported (gRFC A42, A52)",
                ));
            }
            note_set(
                ignored,
                &[
                    ("use_hostname_for_hashing", c.use_hostname_for_hashing),
                    ("hash_balance_factor", c.hash_balance_factor.is_some()),
                    (
                        "consistent_hashing_lb_config",
                        c.consistent_hashing_lb_config.is_some(),
                    ),
                    (
                        "locality_weighted_lb_config",
                        c.locality_weighted_lb_config.is_some(),
                    ),
                ],
            );
            ring_hash(c.minimum_ring_size, c.maximum_ring_size)?
        }
        LEAST_REQUEST => {
            let c: lbpb::least_request::v3::LeastRequest = decode(any)?;
            note_set(
                ignored,
                &[
                    ("active_request_bias", c.active_request_bias.is_some()),
                    ("slow_start_config", c.slow_start_config.is_some()),
                    ("locality_lb_config", c.locality_lb_config.is_some()),
                    ("enable_full_scan", c.enable_full_scan.is_some()),
                    ("selection_method", c.selection_method != 0),
                ],
            );
            least_request(c.choice_count)?
        }
        MAGLEV => {
            let c: lbpb::maglev::v3::Maglev = decode(any)?;
            note_set(
                ignored,
                &[
                    (
                        "consistent_hashing_lb_config",
                        c.consistent_hashing_lb_config.is_some(),
                    ),
                    (
                        "locality_weighted_lb_config",
                        c.locality_weighted_lb_config.is_some(),
                    ),
                ],
            );
            maglev(c.table_size)?
        }
        RANDOM => {
            let c: lbpb::random::v3::Random = decode(any)?;
            note_set(
                ignored,
                &[("locality_lb_config", c.locality_lb_config.is_some())],
            );
            LbPolicy::Random
        }
        PICK_FIRST => {
            let c: lbpb::pick_first::v3::PickFirst = decode(any)?;
            LbPolicy::PickFirst {
                shuffle_address_list: c.shuffle_address_list,
            }
        }
        CLIENT_SIDE_WRR => {
            let c: lbpb::client_side_weighted_round_robin::v3::ClientSideWeightedRoundRobin =
                decode(any)?;
            // gRPC validates these even though skiff does not use them; keep NACKs aligned.
            for (field, d) in [
                ("oob_reporting_period", &c.oob_reporting_period),
                ("blackout_period", &c.blackout_period),
                ("weight_expiration_period", &c.weight_expiration_period),
                ("weight_update_period", &c.weight_update_period),
            ] {
                if let Some(d) = d {
                    duration(field, d)?;
                }
            }
            if let Some(p) = c.error_utilization_penalty
                && (p.is_nan() || p < 0.0)
            {
                return Err(ValidationError::new(
                    "error_utilization_penalty",
                    format!("{p} must be non-negative"),
                ));
            }
            note_set(
                ignored,
                &[
                    ("enable_oob_load_report", c.enable_oob_load_report.is_some()),
                    ("oob_reporting_period", c.oob_reporting_period.is_some()),
                    ("blackout_period", c.blackout_period.is_some()),
                    (
                        "weight_expiration_period",
                        c.weight_expiration_period.is_some(),
                    ),
                    ("weight_update_period", c.weight_update_period.is_some()),
                    (
                        "error_utilization_penalty",
                        c.error_utilization_penalty.is_some(),
                    ),
                    (
                        "metric_names_for_computing_utilization",
                        !c.metric_names_for_computing_utilization.is_empty(),
                    ),
                    ("slow_start_config", c.slow_start_config.is_some()),
                    ("oob_reporting_config", c.oob_reporting_config.is_some()),
                ],
            );
            LbPolicy::WeightedRoundRobin
        }
        WRR_LOCALITY => {
            let c: lbpb::wrr_locality::v3::WrrLocality = decode(any)?;
            let Some(child) = &c.endpoint_picking_policy else {
                return Err(ValidationError::new(
                    "endpoint_picking_policy",
                    "must be set (gRFC A52)",
                ));
            };
            let mut inner = Ignored::default();
            let policy = convert_list(child, depth + 1, &mut inner)
                .map_err(|e| e.within("endpoint_picking_policy"))?;
            super::tls::merge_ignored(ignored, "endpoint_picking_policy", &inner);
            policy
        }
        // `xds.type.v3.TypedStruct` / `udpa.type.v1.TypedStruct` name a custom policy from the
        // client's registry (A52); skiff has none, so, like any unknown type, skip it.
        _ => return Ok(None),
    };
    Ok(Some(policy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Name;

    #[test]
    fn type_name_constants_match_the_generated_types() {
        let pairs = [
            (ROUND_ROBIN, lbpb::round_robin::v3::RoundRobin::full_name()),
            (RING_HASH, lbpb::ring_hash::v3::RingHash::full_name()),
            (
                LEAST_REQUEST,
                lbpb::least_request::v3::LeastRequest::full_name(),
            ),
            (MAGLEV, lbpb::maglev::v3::Maglev::full_name()),
            (RANDOM, lbpb::random::v3::Random::full_name()),
            (PICK_FIRST, lbpb::pick_first::v3::PickFirst::full_name()),
            (
                WRR_LOCALITY,
                lbpb::wrr_locality::v3::WrrLocality::full_name(),
            ),
            (
                CLIENT_SIDE_WRR,
                lbpb::client_side_weighted_round_robin::v3::ClientSideWeightedRoundRobin::full_name(
                ),
            ),
        ];
        for (constant, generated) in pairs {
            assert_eq!(constant, generated);
        }
    }

    #[test]
    fn primes() {
        let small: Vec<u64> = (0..30).filter(|n| is_prime(*n)).collect();
        assert_eq!(small, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert!(is_prime(65537));
        assert!(is_prime(MAX_MAGLEV_TABLE_SIZE));
        assert!(!is_prime(65535));
    }
}
