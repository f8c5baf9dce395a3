//! `Mesh::from_env`: the gRPC xDS bootstrap from `GRPC_XDS_BOOTSTRAP` (a file) or
//! `GRPC_XDS_BOOTSTRAP_CONFIG` (the JSON itself), read minimally.
//!
//! TODO(bootstrap): switch to `skiff_core::bootstrap` once it lands; it parses the whole format
//! (gRFC A27/A47/A65/A97: authorities, certificate providers, the server listener template,
//! several servers). Until then this reads only `xds_servers[0]` (`server_uri`, the first
//! supported `channel_creds`, `server_features`) and `node`, and everything else is ignored.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use skiff_core::pb::envoy::config::core::v3::{Locality, Node};

use crate::connect::{TlsFiles, XdsServerTarget};

/// What `from_env` needs from a bootstrap.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EnvBootstrap {
    pub(crate) server: XdsServerTarget,
    pub(crate) node: Node,
    pub(crate) ignore_resource_deletion: bool,
}

/// Reads the bootstrap the environment names (`GRPC_XDS_BOOTSTRAP` first, as gRPC does).
pub(crate) fn from_env() -> Result<EnvBootstrap, String> {
    let (source, text) = if let Some(path) = std::env::var_os("GRPC_XDS_BOOTSTRAP") {
        let path = PathBuf::from(path);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading GRPC_XDS_BOOTSTRAP file {}: {e}", path.display()))?;
        (path.display().to_string(), text)
    } else if let Ok(text) = std::env::var("GRPC_XDS_BOOTSTRAP_CONFIG") {
        ("GRPC_XDS_BOOTSTRAP_CONFIG".to_string(), text)
    } else {
        return Err("neither GRPC_XDS_BOOTSTRAP nor GRPC_XDS_BOOTSTRAP_CONFIG is set".into());
    };
    parse(&text).map_err(|e| format!("{source}: {e}"))
}

/// Parses the parts of a bootstrap document skiff-tokio uses today.
pub(crate) fn parse(text: &str) -> Result<EnvBootstrap, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let server = doc
        .get("xds_servers")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .ok_or("xds_servers must list at least one server")?;
    let uri = server
        .get("server_uri")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("xds_servers[0].server_uri is missing")?;
    let creds = server
        .get("channel_creds")
        .and_then(Value::as_array)
        .ok_or("xds_servers[0].channel_creds is missing")?;
    // gRFC A27: use the first supported type.
    let mut target = None;
    for c in creds {
        match c.get("type").and_then(Value::as_str) {
            Some("insecure") => {
                target = Some(XdsServerTarget::insecure(uri));
                break;
            }
            Some("tls") => {
                let cfg = c.get("config");
                let file = |k: &str| {
                    cfg.and_then(|c| c.get(k))
                        .and_then(Value::as_str)
                        .map(PathBuf::from)
                };
                target = Some(XdsServerTarget::tls(
                    uri,
                    TlsFiles {
                        ca: file("ca_certificate_file"),
                        cert: file("certificate_file"),
                        key: file("private_key_file"),
                    },
                ));
                break;
            }
            _ => {}
        }
    }
    let server_target = target.ok_or(
        "xds_servers[0].channel_creds has no supported type (skiff supports insecure and tls)",
    )?;
    let ignore_resource_deletion = server
        .get("server_features")
        .and_then(Value::as_array)
        .is_some_and(|f| {
            f.iter()
                .any(|x| x.as_str() == Some("ignore_resource_deletion"))
        });
    let mut node = Node::default();
    if let Some(n) = doc.get("node") {
        let s = |k: &str| n.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        node.id = s("id");
        node.cluster = s("cluster");
        if let Some(Value::Object(m)) = n.get("metadata") {
            node.metadata = Some(prost_types::Struct {
                fields: m
                    .iter()
                    .map(|(k, v)| (k.clone(), json_to_value(v)))
                    .collect::<BTreeMap<_, _>>(),
            });
        }
        if let Some(l) = n.get("locality") {
            let s = |k: &str| l.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            node.locality = Some(Locality {
                region: s("region"),
                zone: s("zone"),
                sub_zone: s("sub_zone"),
            });
        }
    }
    Ok(EnvBootstrap {
        server: server_target,
        node,
        ignore_resource_deletion,
    })
}

/// JSON → `google.protobuf.Value`.
pub(crate) fn json_to_value(v: &Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.iter().map(json_to_value).collect(),
        }),
        Value::Object(m) => Kind::StructValue(prost_types::Struct {
            fields: m
                .iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_skiff_bootstrap_writes() {
        let b = parse(
            r#"{
              "xds_servers": [{"server_uri": "127.0.0.1:15010",
                               "channel_creds": [{"type": "google_default"}, {"type": "insecure"}],
                               "server_features": ["xds_v3", "ignore_resource_deletion"]}],
              "node": {"id": "app-1", "cluster": "c", "metadata": {"GENERATOR": "grpc", "N": 2, "L": ["a"]},
                       "locality": {"zone": "z1"}},
              "server_listener_resource_name_template": "xds.istio.io/grpc/lds/inbound/%s"
            }"#,
        )
        .unwrap();
        assert_eq!(b.server, XdsServerTarget::insecure("127.0.0.1:15010"));
        assert!(b.ignore_resource_deletion);
        assert_eq!(b.node.id, "app-1");
        assert_eq!(b.node.cluster, "c");
        assert_eq!(b.node.locality.as_ref().unwrap().zone, "z1");
        let md = b.node.metadata.unwrap().fields;
        assert_eq!(
            md["GENERATOR"].kind,
            Some(prost_types::value::Kind::StringValue("grpc".into()))
        );
        assert_eq!(
            md["N"].kind,
            Some(prost_types::value::Kind::NumberValue(2.0))
        );
    }

    #[test]
    fn tls_creds_and_errors() {
        let b = parse(
            r#"{"xds_servers": [{"server_uri": "unix:///etc/istio/proxy/XDS",
                "channel_creds": [{"type": "tls", "config": {"ca_certificate_file": "/ca.pem"}}]}]}"#,
        )
        .unwrap();
        assert_eq!(b.server.tls.unwrap().ca, Some(PathBuf::from("/ca.pem")));
        for (bad, why) in [
            ("{", "invalid JSON"),
            (r#"{"xds_servers": []}"#, "at least one server"),
            (r#"{"xds_servers": [{"channel_creds": []}]}"#, "server_uri"),
            (
                r#"{"xds_servers": [{"server_uri": "x:1", "channel_creds": [{"type": "google_default"}]}]}"#,
                "no supported type",
            ),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
