//! Configuration loading: line-accurate errors, warnings for ignored fields, last good config kept.

use skiff_core::control::ControlPlane;
use skiff_core::control::config::{self, ConfigErrorKind};
use skiff_core::time::Instant;

const SE: &str = "\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: reviews
  namespace: default
spec:
  hosts: [reviews.default.svc.cluster.local]
  ports:
  - {number: 9080, name: grpc, protocol: GRPC}
  endpoints:
  - {address: 10.1.0.1, labels: {version: v1}}
---
";

fn errors(text: &str) -> Vec<String> {
    match config::parse_str("mesh.yaml", text) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn weight_sum_error_points_at_the_route() {
    let text = format!(
        "{SE}\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {{host: reviews}}
      weight: 50
    - destination: {{host: reviews}}
      weight: 40
"
    );
    // The VirtualService starts on line 13; line 20 holds `- route:`.
    assert_eq!(
        errors(&text),
        ["mesh.yaml:20: VirtualService reviews: route weight sum 90 != 100"]
    );
}

#[test]
fn syntax_errors_carry_the_file_line() {
    let text = format!("{SE}apiVersion: v1\nkind: [unclosed\n");
    let errs = config::parse_str("mesh.yaml", &text).unwrap_err();
    assert_eq!(errs.0.len(), 1);
    assert_eq!(errs.0[0].kind, ConfigErrorKind::Syntax);
    assert!(errs.0[0].line >= 13, "{}", errs.0[0]);
    assert!(
        errs.0[0].to_string().starts_with("mesh.yaml:1"),
        "{}",
        errs.0[0]
    );
}

#[test]
fn field_errors_point_at_the_field() {
    let text = format!(
        "{SE}\
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - timeout: soon
    route:
    - destination:
        host: ratings
        subset: v9
"
    );
    let errs = errors(&text);
    assert_eq!(
        errs,
        [
            "mesh.yaml:21: VirtualService reviews: spec.http[0].timeout: invalid duration \"soon\" (examples: 10s, 1.5s, 250ms, 1m30s)",
        ]
    );
    // Reference errors are found once the documents parse.
    let text = text.replace("timeout: soon", "timeout: 1s");
    assert_eq!(
        errors(&text),
        [
            "mesh.yaml:23: VirtualService reviews: destination host ratings.default.svc.cluster.local is not declared by any ServiceEntry"
        ]
    );
    let text = text.replace("host: ratings", "host: reviews");
    assert_eq!(
        errors(&text),
        [
            "mesh.yaml:23: VirtualService reviews: subset v9 of reviews.default.svc.cluster.local is not defined by any DestinationRule"
        ]
    );
}

#[test]
fn several_errors_are_all_reported_in_order() {
    let text = format!(
        "{SE}\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews}}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      simple: FASTEST
    tls:
      mode: SIMPLE
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: gw}}
spec: {{}}
"
    );
    let errs = errors(&text);
    assert_eq!(
        errs,
        [
            "mesh.yaml:20: DestinationRule reviews: spec.trafficPolicy.loadBalancer.simple: unknown load balancer \"FASTEST\"",
            "mesh.yaml:22: DestinationRule reviews: spec.trafficPolicy.tls.mode: tls mode SIMPLE is not supported for proxyless clients (DISABLE, ISTIO_MUTUAL)",
            "mesh.yaml:25: Gateway gw: kind: unsupported kind \"Gateway\" (supported: ServiceEntry, WorkloadEntry, VirtualService, DestinationRule, PeerAuthentication, AuthorizationPolicy)",
        ]
    );
}

#[test]
fn duplicates_name_both_places() {
    let text = format!("{SE}{}", SE.replace("name: reviews", "name: reviews-again"));
    assert_eq!(
        errors(&text),
        [
            "mesh.yaml:13: ServiceEntry reviews-again: host reviews.default.svc.cluster.local is already declared by ServiceEntry reviews (mesh.yaml:1)"
        ]
    );
}

#[test]
fn unknown_fields_warn_but_security_fields_fail() {
    let text = format!(
        "{SE}\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: reviews}}
spec:
  host: reviews
  exportTo: [\".\"]
"
    );
    let loaded = config::parse_str("mesh.yaml", &text).unwrap();
    let warnings: Vec<String> = loaded.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "mesh.yaml:18: warning: DestinationRule reviews: spec.exportTo: not supported by skiff; ignored"
        ]
    );

    let text = format!(
        "{SE}\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: allow}}
spec:
  rules:
  - from:
    - source:
        namespaces: [prod]
"
    );
    let errs = config::parse_str("mesh.yaml", &text).unwrap_err();
    assert_eq!(errs.0[0].kind, ConfigErrorKind::Unsupported);
    assert_eq!(
        errs.0[0].to_string(),
        "mesh.yaml:20: AuthorizationPolicy allow: spec.rules[0].from[0].source.namespaces: not supported by skiff, and ignoring it would change access decisions"
    );
}

#[test]
fn interface_annotation_is_validated() {
    let text = SE.replace(
        "  namespace: default\n",
        "  namespace: default\n  annotations:\n    skiff.dev/interfaces: \"helloworld.Greeter=9999, 1bad\"\n",
    );
    assert_eq!(
        errors(&text),
        [
            "mesh.yaml:7: ServiceEntry reviews: metadata.annotations.skiff.dev/interfaces: interface helloworld.Greeter: port 9999 is not a port of this ServiceEntry",
            "mesh.yaml:7: ServiceEntry reviews: metadata.annotations.skiff.dev/interfaces: interface \"1bad\" is not a gRPC service name (package.Service)",
        ]
    );
}

#[test]
fn bad_config_never_replaces_the_last_good_one() {
    let good = config::parse_str("mesh.yaml", SE).unwrap().config;
    let mut cp = ControlPlane::new(Instant::ZERO, good.clone()).unwrap();
    let before = cp.resources().clone();
    // Built in code, so only translation's own validation can catch it.
    let mut bad = good.clone();
    bad.service_entries.push(bad.service_entries[0].clone());
    let err = cp.set_config(Instant::from_secs(1), bad).unwrap_err();
    assert_eq!(err.0[0].kind, ConfigErrorKind::Duplicate);
    assert_eq!(cp.resources(), &before);
    assert_eq!(cp.config(), &good);
    assert!(cp.config_dump().last_rejected.is_some());
}

/// Bad input is an error, never a panic: every single-line deletion and truncation of the
/// golden mesh either loads and translates, or reports errors with a line inside the file.
#[test]
fn mutilated_inputs_never_panic() {
    use skiff_core::control::interfaces::InterfaceRegistry;
    use skiff_core::control::translate;
    let mesh = include_str!("data/control/mesh.yaml");
    let lines: Vec<&str> = mesh.lines().collect();
    let mut variants: Vec<String> = Vec::new();
    for i in 0..lines.len() {
        let mut v = lines.clone();
        v.remove(i);
        variants.push(v.join("\n"));
        variants.push(lines[..i].join("\n"));
        let mut w = lines.clone();
        w[i] = w[i].trim_start();
        variants.push(w.join("\n"));
    }
    for text in &variants {
        match config::parse_str("mesh.yaml", text) {
            Ok(loaded) => {
                translate(&loaded.config, &InterfaceRegistry::new()).unwrap();
            }
            Err(errs) => {
                assert!(!errs.0.is_empty());
                for e in &errs.0 {
                    assert!(e.line >= 1 && e.line <= lines.len(), "{e}");
                }
            }
        }
    }
}

proptest::proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "[ -~\n]{0,400}") {
        let _ = config::parse_str("x.yaml", &text);
    }

    #[test]
    fn arbitrary_yamlish_never_panics(
        text in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::strategy::Just("apiVersion: networking.istio.io/v1\n"),
                proptest::strategy::Just("kind: VirtualService\n"),
                proptest::strategy::Just("kind: ServiceEntry\n"),
                proptest::strategy::Just("metadata: {name: a}\n"),
                proptest::strategy::Just("spec:\n"),
                proptest::strategy::Just("  hosts: [a.b]\n"),
                proptest::strategy::Just("  http:\n  - route:\n    - destination: {host: a.b}\n"),
                proptest::strategy::Just("      weight: 101\n"),
                proptest::strategy::Just("  ports: [{number: 1, name: g}]\n"),
                proptest::strategy::Just("---\n"),
                proptest::strategy::Just("- \n"),
                proptest::strategy::Just("  x: {\n"),
            ],
            0..24,
        )
    ) {
        let text: String = text.concat();
        if let Ok(loaded) = config::parse_str("x.yaml", &text) {
            let _ = skiff_core::control::translate(&loaded.config, &Default::default());
        }
    }
}
