//! The gRPC xDS bootstrap parser against real and hand-written bootstraps (gRFC A27, A29, A36,
//! A47, A65, A71, A97), its errors, and robustness against arbitrary input.

use core::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};
use skiff_core::bootstrap::{
    Bootstrap, BootstrapError, CallCreds, CertificateProviderConfig, ChannelCreds,
    DEFAULT_REFRESH_INTERVAL, FileWatcherConfig, Locality, Problem, ServerUri,
};
use skiff_core::pb::envoy::config::core::v3 as core_pb;

const ISTIO_AGENT: &[u8] = include_bytes!("data/istio-grpc-agent-bootstrap.json");

fn parse(v: &Value) -> Result<Bootstrap, BootstrapError> {
    Bootstrap::from_json(v.to_string().as_bytes())
}

fn err(v: &Value) -> BootstrapError {
    match parse(v) {
        Ok(b) => panic!("expected an error, parsed {b:?}"),
        Err(e) => e,
    }
}

/// The grpc-simple form: istiod reached directly over plaintext 15010.
fn grpc_simple() -> Value {
    json!({
        "xds_servers": [{
            "server_uri": "dns:///istiod.istio-system.svc:15010",
            "channel_creds": [{"type": "insecure"}],
            "server_features": ["xds_v3"]
        }],
        "node": {
            "id": "sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local",
            "metadata": {"GENERATOR": "grpc"}
        }
    })
}

#[test]
fn istio_agent_bootstrap_every_field() {
    let b = Bootstrap::from_json(ISTIO_AGENT).unwrap();

    assert_eq!(b.xds_servers.len(), 1);
    let s = &b.xds_servers[0];
    assert_eq!(
        s.server_uri,
        ServerUri::Unix {
            path: "/etc/istio/XDS".into()
        }
    );
    assert_eq!(s.server_uri.to_string(), "unix:///etc/istio/XDS");
    assert_eq!(s.channel_creds, ChannelCreds::Insecure);
    assert!(s.call_creds.is_empty());
    assert!(s.server_features.xds_v3);
    assert!(!s.server_features.ignore_resource_deletion);
    assert!(!s.server_features.trusted_xds_server);
    assert!(s.server_features.other.is_empty());
    assert_eq!(b.primary_server(), Some(s));

    assert_eq!(
        b.node.id,
        "sidecar~127.0.0.1~pod1.fake-namespace~fake-namespace.svc.cluster.local"
    );
    assert_eq!(b.node.cluster, "");
    assert_eq!(b.node.locality, Some(Locality::default()));
    let md = &b.node.metadata;
    assert_eq!(md.len(), 5);
    assert_eq!(md["GENERATOR"], "grpc");
    assert_eq!(md["INSTANCE_IPS"], "127.0.0.1");
    assert_eq!(md["ISTIO_VERSION"], "version");
    assert_eq!(md["METADATA_DISCOVERY"], "false");
    assert_eq!(md["PILOT_SAN"], json!(["istiod.istio-system.svc"]));

    assert_eq!(b.certificate_providers.len(), 1);
    let p = &b.certificate_providers["default"];
    assert_eq!(p.plugin_name, "file_watcher");
    assert_eq!(
        p.config,
        CertificateProviderConfig::FileWatcher(FileWatcherConfig {
            certificate_file: Some("/cert/path/cert-chain.pem".into()),
            private_key_file: Some("/cert/path/key.pem".into()),
            ca_certificate_file: Some("/cert/path/root-cert.pem".into()),
            refresh_interval: Duration::from_secs(900),
        })
    );

    assert_eq!(
        b.server_listener_resource_name_template.as_deref(),
        Some("xds.istio.io/grpc/lds/inbound/%s")
    );
    assert_eq!(
        b.server_listener_name("10.0.0.1:8080").as_deref(),
        Some("xds.istio.io/grpc/lds/inbound/10.0.0.1:8080")
    );
    assert_eq!(b.client_default_listener_resource_name_template, "%s");
    assert!(b.authorities.is_empty());
    assert_eq!(
        b.client_listener_name(None, "echo.echo-grpc.svc.cluster.local:7070")
            .unwrap(),
        "echo.echo-grpc.svc.cluster.local:7070"
    );

    // istio writes `"UserAgentVersionType": null` inside node: tolerated, and reported.
    assert_eq!(b.ignored_fields, ["node.UserAgentVersionType"]);
}

#[test]
fn grpc_simple_bootstrap() {
    let b = parse(&grpc_simple()).unwrap();
    let s = &b.xds_servers[0];
    assert_eq!(
        s.server_uri,
        ServerUri::Dns {
            authority: None,
            host: "istiod.istio-system.svc".into(),
            port: 15010
        }
    );
    assert_eq!(s.channel_creds, ChannelCreds::Insecure);
    assert!(s.server_features.xds_v3);
    assert_eq!(b.node.id, "sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local");
    assert_eq!(b.node.metadata["GENERATOR"], "grpc");
    assert_eq!(b.node.locality, None);
    assert!(b.certificate_providers.is_empty());
    assert_eq!(b.server_listener_resource_name_template, None);
    assert_eq!(b.server_listener_name("10.0.0.1:8080"), None);
    assert!(b.ignored_fields.is_empty());
}

/// Straight to istiod's 15012 with TLS and a JWT (what A97 was written for), a fallback
/// server (A71), and two federation authorities (A47).
fn tls_federation() -> Value {
    json!({
        "xds_servers": [
            {
                "server_uri": "istiod.istio-system.svc:15012",
                "channel_creds": [
                    {"type": "google_default"},
                    {"type": "tls", "config": {
                        "ca_certificate_file": "/var/run/secrets/istio/root-cert.pem",
                        "certificate_file": "/etc/certs/cert-chain.pem",
                        "private_key_file": "/etc/certs/key.pem",
                        "refresh_interval": "0.5s"
                    }},
                    {"type": "insecure"}
                ],
                "call_creds": [
                    {"type": "sts"},
                    {"type": "jwt_token_file", "config": {
                        "jwt_token_file": "/var/run/secrets/tokens/istio-token"
                    }}
                ],
                "server_features": ["xds_v3", "ignore_resource_deletion", "trusted_xds_server",
                                    "fail_on_data_errors"]
            },
            {
                "server_uri": "[2001:db8::1]:15012",
                "channel_creds": [{"type": "tls"}]
            }
        ],
        "node": {
            "id": "sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local",
            "cluster": "echo.ns",
            "locality": {"region": "eu-west1", "zone": "eu-west1-b", "sub_zone": "rack7"},
            "metadata": {"GENERATOR": "grpc", "LABELS": {"app": "echo", "version": "v1"},
                         "REPLICAS": 3, "RATIO": 0.25, "ENABLED": true, "NOTHING": null,
                         "PORTS": [7070, "grpc"]}
        },
        "client_default_listener_resource_name_template":
            "xdstp://xds.authority.com/envoy.config.listener.v3.Listener/grpc/client/%s?project_id=1234",
        "server_listener_resource_name_template":
            "xdstp://xds.authority.com/envoy.config.listener.v3.Listener/grpc/server/%s",
        "authorities": {
            "xds.authority.com": {
                "client_listener_resource_name_template":
                    "xdstp://xds.authority.com/envoy.config.listener.v3.Listener/grpc/client/%s?project_id=1234"
            },
            "xds.other.com": {
                "xds_servers": [{
                    "server_uri": "unix:relative/xds.sock",
                    "channel_creds": [{"type": "insecure"}]
                }]
            }
        },
        "certificate_providers": {
            "default": {"plugin_name": "file_watcher", "config": {
                "ca_certificate_file": "/etc/certs/root-cert.pem"
            }},
            "spiffe": {"plugin_name": "meshca", "config": {"server": {"uri": "x"}}}
        },
        "future_field": {"x": 1}
    })
}

#[test]
fn tls_and_federation() {
    let b = parse(&tls_federation()).unwrap();
    assert_eq!(b.xds_servers.len(), 2);

    let primary = &b.xds_servers[0];
    assert_eq!(
        primary.server_uri,
        ServerUri::HostPort {
            host: "istiod.istio-system.svc".into(),
            port: 15012
        }
    );
    // google_default is skipped; tls is the first supported type and wins over insecure.
    assert_eq!(
        primary.channel_creds,
        ChannelCreds::Tls(FileWatcherConfig {
            certificate_file: Some("/etc/certs/cert-chain.pem".into()),
            private_key_file: Some("/etc/certs/key.pem".into()),
            ca_certificate_file: Some("/var/run/secrets/istio/root-cert.pem".into()),
            refresh_interval: Duration::from_millis(500),
        })
    );
    assert_eq!(
        primary.call_creds,
        [CallCreds::JwtTokenFile {
            jwt_token_file: "/var/run/secrets/tokens/istio-token".into()
        }]
    );
    let f = &primary.server_features;
    assert!(f.xds_v3 && f.ignore_resource_deletion && f.trusted_xds_server);
    assert_eq!(f.other, ["fail_on_data_errors"]);
    assert!(f.has("fail_on_data_errors") && f.has("trusted_xds_server") && !f.has("x"));

    // The fallback server (A71): TLS with no config = system roots, no client certificate.
    let fallback = &b.xds_servers[1];
    assert_eq!(fallback.server_uri.to_string(), "[2001:db8::1]:15012");
    assert_eq!(
        fallback.channel_creds,
        ChannelCreds::Tls(FileWatcherConfig {
            certificate_file: None,
            private_key_file: None,
            ca_certificate_file: None,
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
        })
    );
    assert!(!fallback.server_features.xds_v3);

    assert_eq!(b.node.cluster, "echo.ns");
    assert_eq!(
        b.node.locality,
        Some(Locality {
            region: "eu-west1".into(),
            zone: "eu-west1-b".into(),
            sub_zone: "rack7".into()
        })
    );

    // Authorities: one explicit template, one defaulted with its own servers.
    assert_eq!(b.authorities.len(), 2);
    let other = &b.authorities["xds.other.com"];
    assert_eq!(
        other.client_listener_resource_name_template,
        "xdstp://xds.other.com/envoy.config.listener.v3.Listener/%s"
    );
    assert_eq!(
        other.xds_servers[0].server_uri,
        ServerUri::Unix {
            path: "relative/xds.sock".into()
        }
    );
    assert!(b.authorities["xds.authority.com"].xds_servers.is_empty());

    // gRFC A47's worked examples.
    assert_eq!(
        b.client_listener_name(None, "server.example.com").unwrap(),
        "xdstp://xds.authority.com/envoy.config.listener.v3.Listener/grpc/client/server.example.com?project_id=1234"
    );
    assert_eq!(
        b.client_listener_name(Some("xds.authority.com"), "/server.example.com")
            .unwrap(),
        "xdstp://xds.authority.com/envoy.config.listener.v3.Listener/grpc/client/server.example.com?project_id=1234"
    );
    assert_eq!(
        b.client_listener_name(Some("xds.other.com"), "server.other.com")
            .unwrap(),
        "xdstp://xds.other.com/envoy.config.listener.v3.Listener/server.other.com"
    );
    // xdstp: templates percent-encode what is not allowed in a URI path; '/' and ':' stay.
    assert_eq!(
        b.client_listener_name(Some("xds.other.com"), "/a b/c:1?x#y%")
            .unwrap(),
        "xdstp://xds.other.com/envoy.config.listener.v3.Listener/a%20b/c:1%3Fx%23y%25"
    );
    assert_eq!(
        b.client_listener_name(Some("nope.com"), "x"),
        Err(BootstrapError::UnknownAuthority {
            authority: "nope.com".into()
        })
    );
    // An empty authority (`xds:///name`) is "no authority".
    assert!(
        b.client_listener_name(Some(""), "x")
            .unwrap()
            .starts_with("xdstp://xds.authority.com/")
    );
    assert_eq!(
        b.server_listener_name("[::1]:8080").as_deref(),
        Some(
            "xdstp://xds.authority.com/envoy.config.listener.v3.Listener/grpc/server/%5B::1%5D:8080"
        )
    );

    // Which servers serve which names.
    let top = b.servers_for("echo:7070").unwrap();
    assert_eq!(top.len(), 2);
    assert_eq!(
        b.servers_for("xdstp://xds.authority.com/envoy.config.listener.v3.Listener/x")
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        b.servers_for("xdstp://xds.other.com/envoy.config.listener.v3.Listener/x")
            .unwrap(),
        other.xds_servers.as_slice()
    );
    assert!(matches!(
        b.servers_for("xdstp://unknown/x"),
        Err(BootstrapError::UnknownAuthority { .. })
    ));

    assert_eq!(
        b.certificate_providers["default"].config,
        CertificateProviderConfig::FileWatcher(FileWatcherConfig {
            certificate_file: None,
            private_key_file: None,
            ca_certificate_file: Some("/etc/certs/root-cert.pem".into()),
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
        })
    );
    let meshca = &b.certificate_providers["spiffe"];
    assert_eq!(meshca.plugin_name, "meshca");
    assert_eq!(
        meshca.config,
        CertificateProviderConfig::Other(json!({"server": {"uri": "x"}}))
    );

    assert_eq!(
        b.ignored_fields,
        [
            "future_field",
            "xds_servers[0].channel_creds[0]",
            "xds_servers[0].call_creds[0]",
        ]
    );
}

#[test]
fn node_to_proto() {
    use prost_types::value::Kind;
    let b = parse(&tls_federation()).unwrap();
    let n = b.node.to_proto();
    assert_eq!(n.id, "sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local");
    assert_eq!(n.cluster, "echo.ns");
    assert_eq!(
        n.locality,
        Some(core_pb::Locality {
            region: "eu-west1".into(),
            zone: "eu-west1-b".into(),
            sub_zone: "rack7".into()
        })
    );
    assert_eq!(n.user_agent_name, "skiff");
    assert_eq!(
        n.user_agent_version_type,
        Some(core_pb::node::UserAgentVersionType::UserAgentVersion(
            "0.1.0".into()
        ))
    );
    assert_eq!(
        n.client_features,
        [
            "envoy.lb.does_not_support_overprovisioning",
            "xds.config.resource-in-sotw"
        ]
    );

    let fields = n.metadata.unwrap().fields;
    let kind = |k: &str| fields[k].kind.clone().unwrap();
    assert_eq!(kind("GENERATOR"), Kind::StringValue("grpc".into()));
    assert_eq!(kind("REPLICAS"), Kind::NumberValue(3.0));
    assert_eq!(kind("RATIO"), Kind::NumberValue(0.25));
    assert_eq!(kind("ENABLED"), Kind::BoolValue(true));
    assert_eq!(kind("NOTHING"), Kind::NullValue(0));
    let Kind::StructValue(labels) = kind("LABELS") else {
        panic!("LABELS is not a struct");
    };
    assert_eq!(
        labels.fields["version"].kind,
        Some(Kind::StringValue("v1".into()))
    );
    let Kind::ListValue(ports) = kind("PORTS") else {
        panic!("PORTS is not a list");
    };
    assert_eq!(
        ports
            .values
            .iter()
            .map(|v| v.kind.clone().unwrap())
            .collect::<Vec<_>>(),
        [Kind::NumberValue(7070.0), Kind::StringValue("grpc".into())]
    );

    // The encoded node decodes back to itself (the bytes istiod will see).
    let bytes = prost::Message::encode_to_vec(&b.node.to_proto());
    let back: core_pb::Node = prost::Message::decode(bytes.as_slice()).unwrap();
    assert_eq!(back, b.node.to_proto());

    // No metadata and no locality: both absent, not empty messages.
    let bare = Bootstrap::from_json(
        br#"{"xds_servers":[{"server_uri":"a:1","channel_creds":[{"type":"insecure"}]}]}"#,
    )
    .unwrap();
    let n = bare.node.to_proto();
    assert_eq!((n.id.as_str(), n.metadata, n.locality), ("", None, None));
    assert_eq!(n.user_agent_name, "skiff");
}

/// `(path, Display)` of a rejected bootstrap.
fn field_error(v: &Value) -> (String, String) {
    let e = err(v);
    (e.path().unwrap_or("<no path>").to_string(), e.to_string())
}

/// `base` with the field at `pointer` set (added if absent) to `value`.
fn with(mut base: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    match base.pointer_mut(parent).unwrap() {
        Value::Object(o) => {
            o.insert(key.to_string(), value);
        }
        Value::Array(a) => a[key.parse::<usize>().unwrap()] = value,
        other => panic!("cannot set {pointer} in {other}"),
    }
    base
}

fn without(mut base: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    base.pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key);
    base
}

#[test]
fn errors_name_the_field() {
    let base = grpc_simple();
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            without(base.clone(), "/xds_servers"),
            "xds_servers",
            "xds_servers: is required",
        ),
        (
            with(base.clone(), "/xds_servers", json!([])),
            "xds_servers",
            "xds_servers: must not be empty",
        ),
        (
            with(base.clone(), "/xds_servers", json!({})),
            "xds_servers",
            "xds_servers: expected an array",
        ),
        (
            with(
                base.clone(),
                "/xds_servers/0/server_uri",
                json!("http://istiod:15010"),
            ),
            "xds_servers[0].server_uri",
            "xds_servers[0].server_uri: unsupported scheme \"http\"",
        ),
        (
            with(
                base.clone(),
                "/xds_servers/0/server_uri",
                json!("istiod:99999"),
            ),
            "xds_servers[0].server_uri",
            "xds_servers[0].server_uri: port \"99999\" is out of range",
        ),
        (
            with(base.clone(), "/xds_servers/0/server_uri", json!("")),
            "xds_servers[0].server_uri",
            "xds_servers[0].server_uri: must not be empty",
        ),
        (
            without(base.clone(), "/xds_servers/0/server_uri"),
            "xds_servers[0].server_uri",
            "xds_servers[0].server_uri: is required",
        ),
        (
            with(
                base.clone(),
                "/xds_servers/0/channel_creds",
                json!([{"type": "google_default"}, {"type": "alts"}]),
            ),
            "xds_servers[0].channel_creds",
            "xds_servers[0].channel_creds: no supported credential type (found \"google_default\", \"alts\"",
        ),
        (
            with(base.clone(), "/xds_servers/0/channel_creds", json!([])),
            "xds_servers[0].channel_creds",
            "xds_servers[0].channel_creds: no supported credential type (found none",
        ),
        (
            without(base.clone(), "/xds_servers/0/channel_creds"),
            "xds_servers[0].channel_creds",
            "xds_servers[0].channel_creds: is required",
        ),
        (
            with(
                base.clone(),
                "/xds_servers/0/channel_creds",
                json!([{"config": {}}]),
            ),
            "xds_servers[0].channel_creds[0].type",
            "xds_servers[0].channel_creds[0].type: is required",
        ),
        (
            with(base.clone(), "/node/id", json!(42)),
            "node.id",
            "node.id: expected a string",
        ),
        (
            with(base.clone(), "/node/metadata", json!("GENERATOR=grpc")),
            "node.metadata",
            "node.metadata: expected an object",
        ),
        (
            with(base.clone(), "/node/locality", json!({"zone": 1})),
            "node.locality.zone",
            "node.locality.zone: expected a string",
        ),
        (
            with(
                base.clone(),
                "/xds_servers/0/server_features",
                json!(["xds_v3", 3]),
            ),
            "xds_servers[0].server_features[1]",
            "xds_servers[0].server_features[1]: expected a string",
        ),
        (
            with(
                base.clone(),
                "/xds_servers/0/channel_creds",
                json!([{"type": "tls", "config": {"refresh_interval": "15m"}}]),
            ),
            "xds_servers[0].channel_creds[0].config.refresh_interval",
            "xds_servers[0].channel_creds[0].config.refresh_interval: invalid duration \"15m\"",
        ),
        (
            with(
                base.clone(),
                "/xds_servers/0/channel_creds",
                json!([{"type": "tls", "config": {"certificate_file": "/c.pem"}}]),
            ),
            "xds_servers[0].channel_creds[0].config.private_key_file",
            "xds_servers[0].channel_creds[0].config.private_key_file: is required when certificate_file is set",
        ),
        (
            with(
                base.clone(),
                "/xds_servers/0/call_creds",
                json!([{"type": "jwt_token_file", "config": {}}]),
            ),
            "xds_servers[0].call_creds[0].config.jwt_token_file",
            "xds_servers[0].call_creds[0].config.jwt_token_file: is required",
        ),
        (
            with(
                base.clone(),
                "/xds_servers/0/call_creds",
                json!([{"type": "jwt_token_file", "config": {"jwt_token_file": ""}}]),
            ),
            "xds_servers[0].call_creds[0].config.jwt_token_file",
            "xds_servers[0].call_creds[0].config.jwt_token_file: must not be empty",
        ),
        (
            with(
                base.clone(),
                "/certificate_providers",
                json!({"default": {"plugin_name": "file_watcher", "config": {
                    "refresh_interval": "-1s", "ca_certificate_file": "/ca"}}}),
            ),
            "certificate_providers[\"default\"].config.refresh_interval",
            "certificate_providers[\"default\"].config.refresh_interval: invalid duration \"-1s\": must not be negative",
        ),
        (
            json!({
                "xds_servers": base["xds_servers"].clone(),
                "certificate_providers": {"default": {"plugin_name": "file_watcher", "config": {}}}
            }),
            "certificate_providers[\"default\"].config",
            "certificate_providers[\"default\"].config: needs certificate_file (with private_key_file) or ca_certificate_file",
        ),
        (
            json!({
                "xds_servers": base["xds_servers"].clone(),
                "certificate_providers": {"default": {"plugin_name": "file_watcher", "config": {"ca_certificate_file": "/ca", "refresh_interval": "0s"}}}
            }),
            "certificate_providers[\"default\"].config.refresh_interval",
            "must be greater than zero",
        ),
        (
            json!({
                "xds_servers": base["xds_servers"].clone(),
                "certificate_providers": {"default": {"config": {}}}
            }),
            "certificate_providers[\"default\"].plugin_name",
            "certificate_providers[\"default\"].plugin_name: is required",
        ),
        (
            json!({
                "xds_servers": base["xds_servers"].clone(),
                "authorities": {"a.com": {"client_listener_resource_name_template": "xdstp://b.com/L/%s"}}
            }),
            "authorities[\"a.com\"].client_listener_resource_name_template",
            "does not start with \"xdstp://a.com/\"",
        ),
        (
            json!({
                "xds_servers": base["xds_servers"].clone(),
                "authorities": {"a.com": {"xds_servers": [{"server_uri": "unix://host/x", "channel_creds": [{"type": "insecure"}]}]}}
            }),
            "authorities[\"a.com\"].xds_servers[0].server_uri",
            "unix URIs take no authority",
        ),
        (
            json!({
                "xds_servers": base["xds_servers"].clone(),
                "client_default_listener_resource_name_template": "xdstp://missing.com/L/%s"
            }),
            "client_default_listener_resource_name_template",
            "authority \"missing.com\"",
        ),
        (
            json!({
                "xds_servers": base["xds_servers"].clone(),
                "server_listener_resource_name_template": 7
            }),
            "server_listener_resource_name_template",
            "server_listener_resource_name_template: expected a string",
        ),
        (json!([1, 2]), "", "bootstrap: expected an object"),
    ];
    for (input, path, message) in cases {
        let (got_path, got_message) = field_error(&input);
        assert_eq!(got_path, path, "for {input}");
        assert!(
            got_message.contains(message),
            "{got_message:?} should contain {message:?}"
        );
    }
}

#[test]
fn not_json() {
    match Bootstrap::from_json(b"{\"xds_servers\": [") {
        Err(BootstrapError::Json { line: 1, .. }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Bootstrap::from_json(b"\xff\xfe"),
        Err(BootstrapError::Json { .. })
    ));
    assert!(matches!(
        Bootstrap::from_json(b""),
        Err(BootstrapError::Json { .. })
    ));
    // Deep nesting is refused by the JSON parser's depth limit, not by a stack overflow.
    let deep = format!(
        "{{\"xds_servers\": {}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(Bootstrap::from_json(deep.as_bytes()).is_err());
}

#[test]
fn nulls_are_absent_and_unknown_fields_are_listed() {
    let v = json!({
        "xds_servers": [{
            "server_uri": "localhost:15010",
            "channel_creds": [{"type": "insecure", "config": {"unused": true}}],
            "call_creds": null,
            "server_features": null,
            "ignore_resource_deletion": true
        }],
        "node": {"id": null, "metadata": null, "locality": {"subZone": "a"},
                 "user_agent_name": "app"},
        "authorities": null,
        "certificate_providers": {
            "p": {"plugin_name": "file_watcher", "config": {
                "ca_certificate_file": "/ca", "certificate_file": "", "private_key_file": "",
                "spiffe_trust_bundle_map_file": "/x"}}
        },
        "server_listener_resource_name_template": null
    });
    let b = parse(&v).unwrap();
    assert_eq!(b.node.id, "");
    assert!(b.node.metadata.is_empty());
    // Empty file paths count as unset, as in gRPC.
    let CertificateProviderConfig::FileWatcher(fw) = &b.certificate_providers["p"].config else {
        panic!("not a file watcher");
    };
    assert_eq!(
        (fw.certificate_file.as_ref(), fw.private_key_file.as_ref()),
        (None, None)
    );
    assert_eq!(
        b.ignored_fields,
        [
            "xds_servers[0].ignore_resource_deletion",
            "xds_servers[0].channel_creds[0].config",
            "node.user_agent_name",
            "node.locality.subZone",
            "certificate_providers[\"p\"].config.spiffe_trust_bundle_map_file",
        ]
    );
}

#[test]
fn server_listener_template_without_placeholder() {
    let v = with(
        grpc_simple(),
        "/server_listener_resource_name_template",
        json!("fixed-listener"),
    );
    let b = parse(&v).unwrap();
    assert_eq!(
        b.server_listener_name("1.2.3.4:5").as_deref(),
        Some("fixed-listener")
    );
}

// ---------------------------------------------------------------------------------------------
// Robustness
// ---------------------------------------------------------------------------------------------

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        prop_oneof![
            "[a-z_:/%.]{0,12}",
            Just("xds_servers".to_string()),
            Just("unix:///x".to_string()),
            Just("insecure".to_string()),
            Just("tls".to_string()),
            Just("900s".to_string()),
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "[a-z_]{0,8}",
                    Just("xds_servers".to_string()),
                    Just("server_uri".to_string()),
                    Just("channel_creds".to_string()),
                    Just("type".to_string()),
                    Just("config".to_string()),
                    Just("node".to_string()),
                    Just("authorities".to_string()),
                    Just("certificate_providers".to_string()),
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer inside `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                pointers(x, format!("{at}/{i}"), out);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                pointers(x, format!("{at}/{k}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn check_outcome(r: Result<Bootstrap, BootstrapError>) {
    match r {
        Ok(b) => {
            assert!(!b.xds_servers.is_empty());
            for s in &b.xds_servers {
                // Display is canonical: it parses back to the same URI.
                assert_eq!(
                    ServerUri::parse(&s.server_uri.to_string()).as_ref(),
                    Ok(&s.server_uri)
                );
            }
            let _ = b.node.to_proto();
            let _ = b.client_listener_name(None, "svc:80");
            let _ = b.server_listener_name("[::1]:80");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        check_outcome(Bootstrap::from_json(&bytes));
    }

    #[test]
    fn arbitrary_json_never_panics(v in any_json()) {
        check_outcome(parse(&v));
    }

    /// A real bootstrap with one value anywhere replaced by arbitrary JSON: reaches every
    /// validation branch, not just the top-level type check.
    #[test]
    fn mutated_bootstraps_never_panic(pick in any::<prop::sample::Index>(), v in any_json()) {
        for base in [tls_federation(), serde_json::from_slice(ISTIO_AGENT).unwrap()] {
            let mut ps = Vec::new();
            pointers(&base, String::new(), &mut ps);
            let mut mutated = base.clone();
            let at: &String = pick.get(&ps);
            *mutated.pointer_mut(at).unwrap() = v.clone();
            check_outcome(parse(&mutated));
        }
    }

    #[test]
    fn server_uri_never_panics_and_display_round_trips(s in "\\PC{0,24}") {
        if let Ok(u) = ServerUri::parse(&s) {
            prop_assert_eq!(ServerUri::parse(&u.to_string()), Ok(u));
        }
    }

    #[test]
    fn server_uri_structured_round_trip(
        host in "[a-z][a-z0-9-]{0,10}(\\.[a-z0-9-]{1,8}){0,3}",
        port in 1u16..,
        authority in proptest::option::of("[a-z0-9.]{1,10}(:[0-9]{1,4})?"),
        kind in 0..3u8,
    ) {
        prop_assume!(host != "dns" && host != "unix");
        let (text, want) = match kind {
            0 => (format!("{host}:{port}"), ServerUri::HostPort { host: host.clone(), port }),
            1 => (
                format!("dns://{}/{host}:{port}", authority.clone().unwrap_or_default()),
                ServerUri::Dns { authority: authority.clone(), host: host.clone(), port },
            ),
            _ => (format!("unix:///{host}"), ServerUri::Unix { path: format!("/{host}") }),
        };
        let got = ServerUri::parse(&text);
        prop_assert_eq!(got.as_ref(), Ok(&want));
        prop_assert_eq!(want.to_string(), text);
    }

    #[test]
    fn refresh_interval_parses_protobuf_durations(secs in 1u64..1_000_000, nanos in 0u32..1_000_000_000) {
        let text = if nanos == 0 { format!("{secs}s") } else { format!("{secs}.{nanos:09}s") };
        let v = json!({
            "xds_servers": [{"server_uri": "a:1", "channel_creds": [
                {"type": "tls", "config": {"refresh_interval": text}}
            ]}]
        });
        let b = parse(&v).unwrap();
        let ChannelCreds::Tls(cfg) = &b.xds_servers[0].channel_creds else {
            panic!("not tls");
        };
        prop_assert_eq!(cfg.refresh_interval, Duration::new(secs, nanos));
    }
}

#[test]
fn problem_is_matchable() {
    let e = err(&with(
        grpc_simple(),
        "/xds_servers/0/server_uri",
        json!("grpc://x"),
    ));
    assert_eq!(
        e,
        BootstrapError::Field {
            path: "xds_servers[0].server_uri".into(),
            problem: Problem::UnsupportedScheme("grpc".into()),
        }
    );
}
