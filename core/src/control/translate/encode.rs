//! Encoding helpers: `Any` packing, and deterministic encoding of protobuf maps.
//!
//! prost generates `std::collections::HashMap` for proto `map<>` fields and encodes entries in
//! the map's (randomly seeded) iteration order. A resource whose bytes change from run to run
//! would get a new content version on every translation and be pushed for nothing, and would
//! break the core's byte-for-byte determinism. The only multi-entry map skiff emits is
//! `RBAC.policies`, so that one is encoded by hand, entries sorted by key.

use std::collections::BTreeMap;

use prost::encoding::{self, WireType};
use prost::{Message, Name};
use prost_types::Any;

use crate::pb::envoy::config::rbac::v3 as rbac;
use crate::pb::envoy::extensions::filters::http::rbac::v3 as rbac_filter;

/// Packs a message into an `Any` with its `type.googleapis.com/...` URL.
pub fn any<M: Message + Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}

/// `envoy.extensions.filters.http.rbac.v3.RBAC { rules: { action, policies } }` with the
/// policies map encoded in key order.
pub(crate) fn rbac_filter_any(
    action: rbac::rbac::Action,
    policies: &BTreeMap<String, rbac::Policy>,
) -> Any {
    let mut inner = rbac::Rbac {
        action: action as i32,
        ..Default::default()
    }
    .encode_to_vec();
    for (name, policy) in policies {
        // A map entry is a message { key = 1; value = 2; } in repeated field 2 (`policies`).
        let mut entry = Vec::new();
        encoding::string::encode(1, name, &mut entry);
        encoding::message::encode(2, policy, &mut entry);
        encoding::encode_key(2, WireType::LengthDelimited, &mut inner);
        encoding::encode_varint(entry.len() as u64, &mut inner);
        inner.extend_from_slice(&entry);
    }
    // The outer filter config has only `rules` (field 1) set.
    let mut outer = rbac_filter::Rbac::default().encode_to_vec();
    encoding::encode_key(1, WireType::LengthDelimited, &mut outer);
    encoding::encode_varint(inner.len() as u64, &mut outer);
    outer.extend_from_slice(&inner);
    Any {
        type_url: rbac_filter::Rbac::type_url(),
        value: outer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_rbac_decodes_to_the_same_message() {
        let mut policies = BTreeMap::new();
        for n in ["b", "a", "c"] {
            policies.insert(
                n.to_string(),
                rbac::Policy {
                    permissions: vec![rbac::Permission {
                        rule: Some(rbac::permission::Rule::Any(true)),
                    }],
                    ..Default::default()
                },
            );
        }
        let a = rbac_filter_any(rbac::rbac::Action::Deny, &policies);
        let decoded = rbac_filter::Rbac::decode(a.value.as_slice()).unwrap();
        let rules = decoded.rules.unwrap();
        assert_eq!(rules.action, rbac::rbac::Action::Deny as i32);
        assert_eq!(rules.policies.len(), 3);
        assert_eq!(rules.policies["a"], policies["a"]);
        // Same input, same bytes.
        assert_eq!(a, rbac_filter_any(rbac::rbac::Action::Deny, &policies));
    }
}
