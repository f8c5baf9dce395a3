//! Per-document parsing: YAML value → model, with per-field errors and ignored-field warnings.

use std::collections::BTreeMap;

use yaml_serde::Value;

use super::yaml::{self, Ctx, Obj, Path, RawDoc};
use super::*;

pub(super) fn parse_file(
    file: &str,
    text: &str,
    config: &mut MeshConfig,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigWarning>,
) {
    for doc in yaml::split_documents(text) {
        let value: Value = match yaml_serde::from_str(&doc.padded) {
            Ok(v) => v,
            Err(e) => {
                let line = e.location().map_or(doc.start_line, |l| l.line());
                // The message carries its own "at line N column M", already file-relative
                // thanks to the padding; keep it, it names the column too.
                errors.push(ConfigError {
                    file: file.to_string(),
                    line,
                    kind: ConfigErrorKind::Syntax,
                    message: format!("invalid YAML: {e}"),
                });
                continue;
            }
        };
        let mut ctx = Ctx {
            file,
            doc: &doc,
            what: String::new(),
            errors,
            warnings,
        };
        parse_document(&mut ctx, &doc, &value, config);
    }
}

fn parse_document(ctx: &mut Ctx<'_>, doc: &RawDoc, value: &Value, config: &mut MeshConfig) {
    let root = Path::default();
    let Some(mut top) = Obj::new(ctx, value, root.clone()) else {
        return;
    };
    let api_version = top.str(ctx, "apiVersion");
    let kind = top.str(ctx, "kind");
    let (Some(api_version), Some(kind)) = (api_version, kind) else {
        ctx.error(
            ConfigErrorKind::Missing,
            &root,
            "every document needs apiVersion and kind",
        );
        return;
    };
    let source = Source {
        file: ctx.file.to_string(),
        line: doc.start_line,
    };
    let meta = parse_meta(ctx, &mut top, source);
    ctx.what = format!("{kind} {}", meta.name);

    let group = api_version.split('/').next().unwrap_or("");
    let version = api_version.split('/').nth(1).unwrap_or("");
    let expected_group = match kind.as_str() {
        "ServiceEntry" | "WorkloadEntry" | "VirtualService" | "DestinationRule" => {
            "networking.istio.io"
        }
        "PeerAuthentication" | "AuthorizationPolicy" => "security.istio.io",
        _ => {
            let p = root.key("kind");
            ctx.error(
                ConfigErrorKind::Unsupported,
                &p,
                format!(
                    "unsupported kind {kind:?} (supported: ServiceEntry, WorkloadEntry, \
                     VirtualService, DestinationRule, PeerAuthentication, AuthorizationPolicy)"
                ),
            );
            return;
        }
    };
    let version_ok = match expected_group {
        "networking.istio.io" => matches!(version, "v1" | "v1beta1" | "v1alpha3"),
        _ => matches!(version, "v1" | "v1beta1"),
    };
    if group != expected_group || !version_ok {
        let p = root.key("apiVersion");
        ctx.invalid(
            &p,
            format!("apiVersion {api_version:?} is not a {expected_group} version skiff reads (v1, v1beta1)"),
        );
        return;
    }
    let Some(mut spec) = top.obj(ctx, "spec") else {
        ctx.error(ConfigErrorKind::Missing, &root.key("spec"), "missing spec");
        return;
    };
    top.finish(ctx);
    match kind.as_str() {
        "ServiceEntry" => {
            if let Some(se) = parse_service_entry(ctx, meta, &mut spec) {
                config.service_entries.push(se);
            }
            spec.finish(ctx);
        }
        "WorkloadEntry" => {
            let endpoint = parse_endpoint(ctx, &mut spec, &meta.source, true);
            spec.finish(ctx);
            if let Some(endpoint) = endpoint {
                config
                    .workload_entries
                    .push(WorkloadEntry { meta, endpoint });
            }
        }
        "VirtualService" => {
            if let Some(vs) = parse_virtual_service(ctx, meta, &mut spec) {
                config.virtual_services.push(vs);
            }
            spec.finish(ctx);
        }
        "DestinationRule" => {
            if let Some(dr) = parse_destination_rule(ctx, meta, &mut spec) {
                config.destination_rules.push(dr);
            }
            spec.finish(ctx);
        }
        "PeerAuthentication" => {
            if let Some(pa) = parse_peer_authentication(ctx, meta, &mut spec) {
                config.peer_authentications.push(pa);
            }
            spec.finish_strict(ctx);
        }
        "AuthorizationPolicy" => {
            if let Some(ap) = parse_authorization_policy(ctx, meta, &mut spec) {
                config.authorization_policies.push(ap);
            }
            spec.finish_strict(ctx);
        }
        _ => {}
    }
}

fn parse_meta(ctx: &mut Ctx<'_>, top: &mut Obj<'_>, source: Source) -> Meta {
    let mut meta = Meta {
        namespace: "default".to_string(),
        source,
        ..Meta::default()
    };
    let Some(mut m) = top.obj(ctx, "metadata") else {
        ctx.error(
            ConfigErrorKind::Missing,
            &Path::default().key("metadata"),
            "missing metadata.name",
        );
        return meta;
    };
    match m.str(ctx, "name") {
        Some(n) if is_dns_label_ish(&n) => meta.name = n,
        Some(n) => {
            let p = m.path.key("name");
            ctx.invalid(&p, format!("invalid name {n:?}"));
            meta.name = n;
        }
        None => ctx.error(ConfigErrorKind::Missing, &m.path, "missing metadata.name"),
    }
    if let Some(ns) = m.str(ctx, "namespace") {
        if is_dns_label_ish(&ns) {
            meta.namespace = ns;
        } else {
            let p = m.path.key("namespace");
            ctx.invalid(&p, format!("invalid namespace {ns:?}"));
        }
    }
    meta.annotations = m.str_map(ctx, "annotations");
    // Labels on Istio config objects select nothing; accept them quietly.
    let _ = m.get("labels");
    m.finish(ctx);
    meta
}

fn is_dns_label_ish(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
}

/// A fully qualified host name (no wildcard, no port).
fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

fn valid_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

fn parse_service_entry(ctx: &mut Ctx<'_>, meta: Meta, spec: &mut Obj<'_>) -> Option<ServiceEntry> {
    let hosts_path = spec.path.key("hosts");
    let mut hosts = Vec::new();
    for (h, p) in spec.str_list(ctx, "hosts") {
        if h.contains('*') {
            ctx.error(
                ConfigErrorKind::Unsupported,
                &p,
                format!(
                    "wildcard host {h:?} is not supported (proxyless clients dial exact names)"
                ),
            );
        } else if !valid_host(&h) {
            ctx.invalid(&p, format!("invalid host {h:?}"));
        } else {
            hosts.push(h.to_ascii_lowercase());
        }
    }
    if hosts.is_empty() {
        ctx.error(
            ConfigErrorKind::Missing,
            &hosts_path,
            "at least one host is required",
        );
    }
    let mut addresses = Vec::new();
    for (a, p) in spec.str_list(ctx, "addresses") {
        if valid_ip(&a) {
            addresses.push(a);
        } else {
            ctx.invalid(
                &p,
                format!("address {a:?} must be an IP (CIDR ranges are not supported)"),
            );
        }
    }
    let ports_path = spec.path.key("ports");
    let mut ports: Vec<ServicePort> = Vec::new();
    let port_items = spec.seq(ctx, "ports");
    // Report "no port" only when none was written, not when every one was invalid.
    let declared_ports = port_items.len();
    for (v, p) in port_items {
        let Some(mut o) = Obj::new(ctx, v, p.clone()) else {
            continue;
        };
        let number = o.u32(ctx, "number");
        let name = o.str(ctx, "name").unwrap_or_default();
        let protocol = o.str(ctx, "protocol");
        let target_port = o.u32(ctx, "targetPort");
        o.finish(ctx);
        let Some(number) = number else {
            ctx.error(ConfigErrorKind::Missing, &p, "port number is required");
            continue;
        };
        if !(1..=65535).contains(&number) {
            ctx.invalid(
                &p.key("number"),
                format!("port {number} is out of range 1-65535"),
            );
            continue;
        }
        if let Some(t) = target_port
            && !(1..=65535).contains(&t)
        {
            ctx.invalid(
                &p.key("targetPort"),
                format!("port {t} is out of range 1-65535"),
            );
        }
        let protocol = match protocol.as_deref().map(str::to_ascii_uppercase).as_deref() {
            Some("GRPC") => Protocol::Grpc,
            Some("HTTP2") => Protocol::Http2,
            Some("HTTP") => Protocol::Http,
            Some("GRPC-WEB") => Protocol::GrpcWeb,
            Some(other) => {
                ctx.error(
                    ConfigErrorKind::Unsupported,
                    &p.key("protocol"),
                    format!("protocol {other} is not supported by proxyless gRPC (GRPC, HTTP2, HTTP, GRPC-WEB)"),
                );
                continue;
            }
            None => {
                let prefix = name.split('-').next().unwrap_or("").to_ascii_lowercase();
                match prefix.as_str() {
                    "grpc" => Protocol::Grpc,
                    "http2" => Protocol::Http2,
                    "http" => Protocol::Http,
                    "grpc-web" => Protocol::GrpcWeb,
                    _ => {
                        ctx.warn(&p, "no protocol and no protocol name prefix; assuming GRPC");
                        Protocol::Grpc
                    }
                }
            }
        };
        if ports.iter().any(|q| q.number == number) {
            ctx.error(
                ConfigErrorKind::Duplicate,
                &p.key("number"),
                format!("port {number} is declared twice"),
            );
            continue;
        }
        if !name.is_empty() && ports.iter().any(|q| q.name == name) {
            ctx.error(
                ConfigErrorKind::Duplicate,
                &p.key("name"),
                format!("port name {name:?} is declared twice"),
            );
            continue;
        }
        ports.push(ServicePort {
            number,
            name,
            protocol,
            target_port,
        });
    }
    if declared_ports == 0 {
        ctx.error(
            ConfigErrorKind::Missing,
            &ports_path,
            "at least one port is required",
        );
    }
    if let Some(r) = spec.str(ctx, "resolution")
        && r != "STATIC"
    {
        let p = spec.path.key("resolution");
        ctx.error(
            ConfigErrorKind::Unsupported,
            &p,
            format!("resolution {r} is not supported; skiff serves EDS endpoints, so only STATIC"),
        );
    }
    if let Some(l) = spec.str(ctx, "location")
        && l != "MESH_INTERNAL"
        && l != "MESH_EXTERNAL"
    {
        let p = spec.path.key("location");
        ctx.invalid(&p, format!("invalid location {l:?}"));
    }
    let mut endpoints = Vec::new();
    for (v, p) in spec.seq(ctx, "endpoints") {
        let Some(mut o) = Obj::new(ctx, v, p.clone()) else {
            continue;
        };
        if let Some(mut e) = parse_endpoint(ctx, &mut o, &meta.source, false) {
            e.source = meta.source.at(ctx.line(&p));
            for (name, pp) in e.ports.keys().map(|k| (k.clone(), p.key("ports").key(k))) {
                if !ports.iter().any(|q| q.name == name) {
                    ctx.error(
                        ConfigErrorKind::Reference,
                        &pp,
                        format!("endpoint port {name:?} does not name a service port"),
                    );
                }
            }
            endpoints.push(e);
        }
        o.finish(ctx);
    }
    let workload_selector = spec.obj(ctx, "workloadSelector").map(|mut o| {
        let labels = o.str_map(ctx, "labels");
        o.finish(ctx);
        labels
    });
    if workload_selector.is_some() && !endpoints.is_empty() {
        let p = spec.path.key("workloadSelector");
        ctx.invalid(&p, "workloadSelector and endpoints are mutually exclusive");
    }
    let subject_alt_names = spec
        .str_list(ctx, "subjectAltNames")
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    // `exportTo` scopes visibility; skiff serves one mesh-wide view, so it is ignored.
    let mut interfaces = Vec::new();
    if let Some(raw) = meta.annotations.get(INTERFACES_ANNOTATION) {
        let p = Path::default()
            .key("metadata")
            .key("annotations")
            .key(INTERFACES_ANNOTATION);
        let line = ctx.line(&p);
        for entry in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, port) = match entry.split_once('=') {
                Some((n, port)) => match port.trim().parse::<u32>() {
                    Ok(port) => (n.trim(), Some(port)),
                    Err(_) => {
                        ctx.invalid(&p, format!("interface {entry:?}: port must be a number"));
                        continue;
                    }
                },
                None => (entry, None),
            };
            if !valid_interface_name(name) {
                ctx.invalid(
                    &p,
                    format!("interface {name:?} is not a gRPC service name (package.Service)"),
                );
                continue;
            }
            match port {
                Some(port) if !ports.iter().any(|q| q.number == port) => {
                    ctx.error(
                        ConfigErrorKind::Reference,
                        &p,
                        format!("interface {name}: port {port} is not a port of this ServiceEntry"),
                    );
                    continue;
                }
                None if ports.len() > 1 => {
                    ctx.invalid(
                        &p,
                        format!(
                            "interface {name}: the service has {} ports; name one as {name}=PORT",
                            ports.len()
                        ),
                    );
                    continue;
                }
                _ => {}
            }
            interfaces.push(InterfaceDecl {
                name: name.to_string(),
                port,
                source: meta.source.at(line),
            });
        }
    }
    if hosts.is_empty() || ports.is_empty() {
        return None;
    }
    Some(ServiceEntry {
        meta,
        hosts,
        addresses,
        ports,
        endpoints,
        workload_selector,
        subject_alt_names,
        interfaces,
    })
}

/// A gRPC fully qualified service name: dot-separated identifiers (`helloworld.Greeter`).
pub(crate) fn valid_interface_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

fn parse_endpoint(
    ctx: &mut Ctx<'_>,
    o: &mut Obj<'_>,
    source: &Source,
    workload_entry: bool,
) -> Option<WorkloadEndpoint> {
    let address = o.str(ctx, "address");
    let ports = {
        let mut out = BTreeMap::new();
        if let Some(mut po) = o.obj(ctx, "ports") {
            for (name, v, p) in po.entries() {
                if let Some(n) = yaml::as_u32(ctx, v, &p) {
                    if (1..=65535).contains(&n) {
                        out.insert(name, n);
                    } else {
                        ctx.invalid(&p, format!("port {n} is out of range 1-65535"));
                    }
                }
            }
        }
        out
    };
    let labels = o.str_map(ctx, "labels");
    let locality = o.str(ctx, "locality").map(|l| {
        let mut parts = l.splitn(3, '/');
        Locality {
            region: parts.next().unwrap_or("").to_string(),
            zone: parts.next().unwrap_or("").to_string(),
            sub_zone: parts.next().unwrap_or("").to_string(),
        }
    });
    let weight = o.u32(ctx, "weight").unwrap_or(0);
    let service_account = o.str(ctx, "serviceAccount");
    // `network` only matters for multi-network gateways; not modelled.
    let Some(address) = address else {
        let p = o.path.key("address");
        ctx.error(ConfigErrorKind::Missing, &p, "address is required");
        return None;
    };
    if !valid_ip(&address) {
        let p = o.path.key("address");
        let what = if workload_entry {
            "WorkloadEntry"
        } else {
            "STATIC endpoint"
        };
        ctx.invalid(
            &p,
            format!("{what} address {address:?} must be an IP address"),
        );
        return None;
    }
    Some(WorkloadEndpoint {
        address,
        ports,
        labels,
        locality: locality.unwrap_or_default(),
        weight,
        service_account,
        source: source.clone(),
    })
}

fn parse_string_match(ctx: &mut Ctx<'_>, v: &Value, p: &Path) -> Option<StringMatch> {
    let mut o = Obj::new(ctx, v, p.clone())?;
    let exact = o.str(ctx, "exact");
    let prefix = o.str(ctx, "prefix");
    let regex = o.str(ctx, "regex");
    o.finish(ctx);
    match (exact, prefix, regex) {
        (None, None, None) => Some(StringMatch::Present),
        (Some(e), None, None) => Some(StringMatch::Exact(e)),
        (None, Some(pf), None) => Some(StringMatch::Prefix(pf)),
        // Istio treats the regex "*" as "present" (istio/istio#20629).
        (None, None, Some(r)) if r == "*" => Some(StringMatch::Present),
        (None, None, Some(r)) if r.is_empty() => {
            ctx.invalid(p, "empty regex");
            None
        }
        (None, None, Some(r)) => Some(StringMatch::Regex(r)),
        _ => {
            ctx.invalid(p, "set exactly one of exact, prefix, regex");
            None
        }
    }
}

fn parse_virtual_service(
    ctx: &mut Ctx<'_>,
    meta: Meta,
    spec: &mut Obj<'_>,
) -> Option<VirtualService> {
    let hosts_path = spec.path.key("hosts");
    let mut hosts = Vec::new();
    for (h, p) in spec.str_list(ctx, "hosts") {
        if h.contains('*') {
            ctx.error(
                ConfigErrorKind::Unsupported,
                &p,
                format!("wildcard host {h:?} is not supported"),
            );
        } else if !valid_host(&h) {
            ctx.invalid(&p, format!("invalid host {h:?}"));
        } else {
            hosts.push((h, meta.source.at(ctx.line(&p))));
        }
    }
    if hosts.is_empty() {
        ctx.error(
            ConfigErrorKind::Missing,
            &hosts_path,
            "at least one host is required",
        );
    }
    if !spec
        .str_list(ctx, "gateways")
        .iter()
        .all(|(g, _)| g == "mesh")
    {
        let p = spec.path.key("gateways");
        ctx.error(
            ConfigErrorKind::Unsupported,
            &p,
            "only the mesh gateway applies to proxyless clients",
        );
    }
    let mut http = Vec::new();
    for (v, p) in spec.seq(ctx, "http") {
        let Some(mut o) = Obj::new(ctx, v, p.clone()) else {
            continue;
        };
        let name = o.str(ctx, "name").unwrap_or_default();
        let mut matches = Vec::new();
        for (mv, mp) in o.seq(ctx, "match") {
            let Some(mut mo) = Obj::new(ctx, mv, mp.clone()) else {
                continue;
            };
            let mname = mo.str(ctx, "name").unwrap_or_default();
            let uri = mo
                .get("uri")
                .and_then(|(uv, up)| parse_string_match(ctx, uv, &up));
            if matches!(uri, Some(StringMatch::Present)) {
                ctx.invalid(&mp.key("uri"), "uri needs one of exact, prefix, regex");
            }
            let mut headers = Vec::new();
            if let Some(mut ho) = mo.obj(ctx, "headers") {
                for (hname, hv, hp) in ho.entries() {
                    if let Some(m) = parse_string_match(ctx, hv, &hp) {
                        headers.push((hname.to_ascii_lowercase(), m));
                    }
                }
            }
            mo.finish(ctx);
            matches.push(HttpMatch {
                name: mname,
                uri,
                headers,
            });
        }
        let route_path = p.key("route");
        let mut route = Vec::new();
        for (rv, rp) in o.seq(ctx, "route") {
            let Some(mut ro) = Obj::new(ctx, rv, rp.clone()) else {
                continue;
            };
            let weight = ro.u32(ctx, "weight").unwrap_or(0);
            let dest = ro.obj(ctx, "destination").and_then(|mut d| {
                let host = d.str(ctx, "host");
                let subset = d.str(ctx, "subset");
                let port = d.obj(ctx, "port").and_then(|mut po| {
                    let n = po.u32(ctx, "number");
                    po.finish(ctx);
                    n
                });
                let dpath = d.path.clone();
                d.finish(ctx);
                match host {
                    Some(h) if valid_host(&h) => Some(Destination {
                        host: h,
                        subset,
                        port,
                        source: meta.source.at(ctx.line(&dpath)),
                    }),
                    Some(h) => {
                        ctx.invalid(&dpath.key("host"), format!("invalid host {h:?}"));
                        None
                    }
                    None => {
                        ctx.error(
                            ConfigErrorKind::Missing,
                            &dpath,
                            "destination.host is required",
                        );
                        None
                    }
                }
            });
            if dest.is_none() && ro.get("destination").is_none() {
                ctx.error(ConfigErrorKind::Missing, &rp, "destination is required");
            }
            ro.finish(ctx);
            if let Some(destination) = dest {
                route.push(RouteDestination {
                    destination,
                    weight,
                });
            }
        }
        if route.is_empty() {
            // Redirects, direct responses and delegation are not honoured by gRPC (A28).
            ctx.error(
                ConfigErrorKind::Missing,
                &route_path,
                "a route destination is required (redirect and direct_response are not supported by gRPC)",
            );
        }
        let timeout = o.duration(ctx, "timeout");
        let retries = o.obj(ctx, "retries").map(|mut r| {
            let attempts = r.u32(ctx, "attempts").unwrap_or(0);
            let per_try_timeout = r.duration(ctx, "perTryTimeout");
            let retry_on = r.str(ctx, "retryOn");
            r.finish(ctx);
            Retries {
                attempts,
                per_try_timeout,
                retry_on,
            }
        });
        let fault = o.obj(ctx, "fault").and_then(|f| parse_fault(ctx, f));
        o.finish(ctx);
        http.push(HttpRoute {
            name,
            matches,
            route,
            timeout,
            retries,
            fault,
            route_source: meta.source.at(ctx.line(&route_path)),
        });
    }
    if hosts.is_empty() {
        return None;
    }
    Some(VirtualService { meta, hosts, http })
}

fn percentage(ctx: &mut Ctx<'_>, o: &mut Obj<'_>) -> Option<f64> {
    let mut p = o.obj(ctx, "percentage")?;
    let v = p.f64(ctx, "value").unwrap_or(0.0);
    let path = p.path.key("value");
    p.finish(ctx);
    if !(0.0..=100.0).contains(&v) {
        ctx.invalid(&path, format!("percentage {v} is outside 0-100"));
        return Some(0.0);
    }
    Some(v)
}

fn parse_fault(ctx: &mut Ctx<'_>, mut f: Obj<'_>) -> Option<Fault> {
    let delay = f.obj(ctx, "delay").and_then(|mut d| {
        let pct = percentage(ctx, &mut d);
        let fixed = d.duration(ctx, "fixedDelay");
        let dp = d.path.clone();
        d.finish(ctx);
        match fixed {
            Some(fixed) => Some((pct, fixed)),
            None => {
                ctx.error(
                    ConfigErrorKind::Missing,
                    &dp,
                    "fixedDelay is required (exponentialDelay is not supported)",
                );
                None
            }
        }
    });
    let abort = f.obj(ctx, "abort").and_then(|mut a| {
        let pct = percentage(ctx, &mut a);
        let http = a.u32(ctx, "httpStatus");
        let grpc = a.str(ctx, "grpcStatus");
        let ap = a.path.clone();
        a.finish(ctx);
        match (http, grpc) {
            (Some(h), None) if (200..600).contains(&h) => Some((pct, AbortStatus::Http(h))),
            (Some(h), None) => {
                ctx.invalid(
                    &ap.key("httpStatus"),
                    format!("HTTP status {h} is outside 200-599"),
                );
                None
            }
            (None, Some(g)) => match grpc_code(&g) {
                Some(code) => Some((pct, AbortStatus::Grpc(code))),
                None => {
                    ctx.invalid(
                        &ap.key("grpcStatus"),
                        format!("unknown gRPC status {g:?} (e.g. UNAVAILABLE)"),
                    );
                    None
                }
            },
            _ => {
                ctx.invalid(&ap, "set exactly one of httpStatus, grpcStatus");
                None
            }
        }
    });
    f.finish(ctx);
    if delay.is_none() && abort.is_none() {
        return None;
    }
    Some(Fault { delay, abort })
}

/// gRPC status code names (grpc/grpc doc/statuscodes.md), as Istio's `grpcStatus` takes them.
pub(crate) fn grpc_code(name: &str) -> Option<u32> {
    const CODES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    CODES
        .iter()
        .position(|c| *c == name)
        .and_then(|i| u32::try_from(i).ok())
}

fn parse_traffic_policy(ctx: &mut Ctx<'_>, mut o: Obj<'_>) -> TrafficPolicy {
    let mut tp = TrafficPolicy::default();
    if let Some(mut lb) = o.obj(ctx, "loadBalancer") {
        let simple = lb.str(ctx, "simple");
        let ch = lb.obj(ctx, "consistentHash");
        let lbp = lb.path.clone();
        lb.finish(ctx);
        tp.load_balancer = match (simple, ch) {
            (Some(_), Some(_)) => {
                ctx.invalid(&lbp, "set either simple or consistentHash, not both");
                None
            }
            (Some(s), None) => match s.as_str() {
                "ROUND_ROBIN" | "UNSPECIFIED" => Some(LoadBalancer::RoundRobin),
                "LEAST_REQUEST" | "LEAST_CONN" => Some(LoadBalancer::LeastRequest),
                "RANDOM" => Some(LoadBalancer::Random),
                "PASSTHROUGH" => Some(LoadBalancer::Passthrough),
                other => {
                    ctx.invalid(
                        &lbp.key("simple"),
                        format!("unknown load balancer {other:?}"),
                    );
                    None
                }
            },
            (None, Some(mut c)) => {
                let header = c.str(ctx, "httpHeaderName");
                let mut ring = c.u32(ctx, "minimumRingSize").map(u64::from);
                if let Some(mut rh) = c.obj(ctx, "ringHash") {
                    if let Some(n) = rh.u32(ctx, "minimumRingSize") {
                        ring = Some(u64::from(n));
                    }
                    rh.finish(ctx);
                }
                let cp = c.path.clone();
                for unsupported in [
                    "httpCookie",
                    "useSourceIp",
                    "httpQueryParameterName",
                    "maglev",
                ] {
                    if c.get(unsupported).is_some() {
                        ctx.error(
                            ConfigErrorKind::Unsupported,
                            &cp.key(unsupported),
                            "only httpHeaderName hashing is supported (gRPC hashes headers or channel id, gRFC A42)",
                        );
                    }
                }
                c.finish(ctx);
                match header {
                    Some(h) if !h.is_empty() => Some(LoadBalancer::ConsistentHash {
                        http_header_name: h.to_ascii_lowercase(),
                        minimum_ring_size: ring,
                    }),
                    _ => {
                        ctx.error(
                            ConfigErrorKind::Missing,
                            &cp,
                            "consistentHash needs httpHeaderName",
                        );
                        None
                    }
                }
            }
            (None, None) => None,
        };
    }
    if let Some(mut cp) = o.obj(ctx, "connectionPool") {
        if let Some(mut h) = cp.obj(ctx, "http") {
            tp.http2_max_requests = h.u32(ctx, "http2MaxRequests");
            h.finish(ctx);
        }
        cp.finish(ctx);
    }
    if let Some(mut od) = o.obj(ctx, "outlierDetection") {
        let det = OutlierDetection {
            consecutive_5xx_errors: od.u32(ctx, "consecutive5xxErrors"),
            interval: od.duration(ctx, "interval"),
            base_ejection_time: od.duration(ctx, "baseEjectionTime"),
            max_ejection_percent: od.u32(ctx, "maxEjectionPercent"),
        };
        if let Some(m) = det.max_ejection_percent
            && m > 100
        {
            let p = od.path.key("maxEjectionPercent");
            ctx.invalid(&p, format!("{m} is over 100"));
        }
        od.finish(ctx);
        tp.outlier_detection = Some(det);
    }
    if let Some(mut t) = o.obj(ctx, "tls") {
        let mode = t.str(ctx, "mode");
        let tpath = t.path.key("mode");
        t.finish(ctx);
        tp.tls = match mode.as_deref() {
            Some("DISABLE") | None => Some(ClientTlsMode::Disable),
            Some("ISTIO_MUTUAL") => Some(ClientTlsMode::IstioMutual),
            Some(m @ ("SIMPLE" | "MUTUAL")) => {
                // istiod's grpcgen leaves these as TODO; emitting nothing would silently send
                // plaintext where the user asked for TLS.
                ctx.error(
                    ConfigErrorKind::Unsupported,
                    &tpath,
                    format!("tls mode {m} is not supported for proxyless clients (DISABLE, ISTIO_MUTUAL)"),
                );
                None
            }
            Some(m) => {
                ctx.invalid(&tpath, format!("unknown tls mode {m:?}"));
                None
            }
        };
    }
    o.finish(ctx);
    tp
}

fn parse_destination_rule(
    ctx: &mut Ctx<'_>,
    meta: Meta,
    spec: &mut Obj<'_>,
) -> Option<DestinationRule> {
    let host_path = spec.path.key("host");
    let host = match spec.str(ctx, "host") {
        Some(h) if h.contains('*') => {
            ctx.error(
                ConfigErrorKind::Unsupported,
                &host_path,
                format!("wildcard host {h:?} is not supported"),
            );
            None
        }
        Some(h) if valid_host(&h) => Some(h),
        Some(h) => {
            ctx.invalid(&host_path, format!("invalid host {h:?}"));
            None
        }
        None => {
            ctx.error(ConfigErrorKind::Missing, &host_path, "host is required");
            None
        }
    };
    let traffic_policy = spec
        .obj(ctx, "trafficPolicy")
        .map(|o| parse_traffic_policy(ctx, o))
        .unwrap_or_default();
    let mut subsets: Vec<Subset> = Vec::new();
    for (v, p) in spec.seq(ctx, "subsets") {
        let Some(mut o) = Obj::new(ctx, v, p.clone()) else {
            continue;
        };
        let name = o.str(ctx, "name");
        let labels = o.str_map(ctx, "labels");
        let tp = o
            .obj(ctx, "trafficPolicy")
            .map(|t| parse_traffic_policy(ctx, t));
        o.finish(ctx);
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            ctx.error(ConfigErrorKind::Missing, &p, "subset name is required");
            continue;
        };
        if name.contains('|') {
            ctx.invalid(
                &p.key("name"),
                "subset names cannot contain '|' (cluster names use it)",
            );
            continue;
        }
        if subsets.iter().any(|s| s.name == name) {
            ctx.error(
                ConfigErrorKind::Duplicate,
                &p.key("name"),
                format!("subset {name:?} is declared twice"),
            );
            continue;
        }
        subsets.push(Subset {
            name,
            labels,
            traffic_policy: tp,
            source: meta.source.at(ctx.line(&p)),
        });
    }
    let host = host?;
    let line = ctx.line(&host_path);
    Some(DestinationRule {
        host: (host, meta.source.at(line)),
        meta,
        traffic_policy,
        subsets,
    })
}

fn parse_selector(ctx: &mut Ctx<'_>, spec: &mut Obj<'_>) -> Option<BTreeMap<String, String>> {
    let mut s = spec.obj(ctx, "selector")?;
    let labels = s.str_map(ctx, "matchLabels");
    s.finish_strict(ctx);
    Some(labels)
}

fn parse_peer_authentication(
    ctx: &mut Ctx<'_>,
    meta: Meta,
    spec: &mut Obj<'_>,
) -> Option<PeerAuthentication> {
    let selector = parse_selector(ctx, spec);
    let mode = match spec.obj(ctx, "mtls") {
        None => MtlsMode::Unset,
        Some(mut m) => {
            let mode = m.str(ctx, "mode");
            let mp = m.path.key("mode");
            m.finish_strict(ctx);
            match mode.as_deref() {
                None | Some("UNSET") => MtlsMode::Unset,
                Some("STRICT") => MtlsMode::Strict,
                Some("PERMISSIVE") => MtlsMode::Permissive,
                Some("DISABLE") => MtlsMode::Disable,
                Some(other) => {
                    ctx.invalid(&mp, format!("unknown mTLS mode {other:?}"));
                    return None;
                }
            }
        }
    };
    Some(PeerAuthentication {
        meta,
        selector,
        mode,
    })
}

fn parse_authorization_policy(
    ctx: &mut Ctx<'_>,
    meta: Meta,
    spec: &mut Obj<'_>,
) -> Option<AuthorizationPolicy> {
    let selector = parse_selector(ctx, spec);
    let action_path = spec.path.key("action");
    let action = match spec.str(ctx, "action").as_deref() {
        None | Some("ALLOW") => AuthzAction::Allow,
        Some("DENY") => AuthzAction::Deny,
        Some(other @ ("CUSTOM" | "AUDIT")) => {
            ctx.error(
                ConfigErrorKind::Unsupported,
                &action_path,
                format!("action {other} is not supported by gRPC RBAC (gRFC A41: ALLOW, DENY)"),
            );
            return None;
        }
        Some(other) => {
            ctx.invalid(&action_path, format!("unknown action {other:?}"));
            return None;
        }
    };
    let mut rules = Vec::new();
    for (v, p) in spec.seq(ctx, "rules") {
        let Some(mut r) = Obj::new(ctx, v, p) else {
            continue;
        };
        let mut rule = AuthzRule::default();
        for (fv, fp) in r.seq(ctx, "from") {
            let Some(mut f) = Obj::new(ctx, fv, fp) else {
                continue;
            };
            let mut principals = Vec::new();
            if let Some(mut s) = f.obj(ctx, "source") {
                for (pr, pp) in s.str_list(ctx, "principals") {
                    if pr.is_empty() {
                        ctx.invalid(&pp, "empty principal");
                    } else {
                        principals.push(pr);
                    }
                }
                s.finish_strict(ctx);
            }
            f.finish_strict(ctx);
            rule.from.push(principals);
        }
        for (tv, tp) in r.seq(ctx, "to") {
            let Some(mut t) = Obj::new(ctx, tv, tp) else {
                continue;
            };
            let mut paths = Vec::new();
            if let Some(mut op) = t.obj(ctx, "operation") {
                for (path, pp) in op.str_list(ctx, "paths") {
                    if path.is_empty() {
                        ctx.invalid(&pp, "empty path");
                    } else {
                        paths.push(path);
                    }
                }
                op.finish_strict(ctx);
            }
            t.finish_strict(ctx);
            rule.to.push(paths);
        }
        r.finish_strict(ctx);
        rules.push(rule);
    }
    Some(AuthorizationPolicy {
        meta,
        selector,
        action,
        rules,
    })
}
