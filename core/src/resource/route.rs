//! Route configuration: `envoy.config.route.v3.RouteConfiguration`, from RDS or inline in an HCM,
//! validated per gRFC A28 (routing), A31 (timeouts), A36 (server routes), A39 (filter overrides),
//! A42 (hash policies) and A44 (retries).
//!
//! What is rejected (NACK) and what is kept:
//! - a route with an action other than `route` / `non_forwarding_action` (redirect,
//!   direct_response, filter_action, unset) is **kept** as [`RouteAction::Unsupported`]: an RPC
//!   that matches it fails with UNAVAILABLE (gRFC A28/A36);
//! - a `route` action whose `cluster_specifier` is unset, or names an optional cluster-specifier
//!   plugin skiff does not implement, makes the route **skipped** (gRFC A28, RLS-in-xDS);
//! - a route with `query_parameters` matchers is kept but never matches (gRFC A28);
//! - invalid values (bad regex, zero total weight, unknown required filter override, required
//!   cluster-specifier plugin, ...) reject the whole resource.
#![deny(missing_docs)]

use core::fmt;
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};

pub(crate) mod index;

use self::index::RouteIndex;
use super::filter::{FilterOverride, Fraction, parse_filter_override};
use super::matcher::{HeaderMatcher, SafeRegex, build_regex, join_path};
use super::retry::RetryPolicy;
use super::{Ignored, ValidationError, duration};
use crate::pb::envoy::config::route::v3 as pb;
use crate::pb::envoy::r#type::matcher::v3 as matcher_pb;

/// The only `filter_state` hash key gRPC supports (gRFC A42).
pub const CHANNEL_ID_HASH_KEY: &str = "io.grpc.channel_id";

/// Filter-instance name → override, from a `typed_per_filter_config` map.
pub type FilterOverrides = BTreeMap<String, FilterOverride>;

/// A validated `RouteConfiguration`.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteConfig {
    /// `name` (for istiod: `outbound|PORT||HOST`).
    pub name: String,
    /// `virtual_hosts`, in order.
    pub virtual_hosts: Vec<VirtualHost>,
}

/// A validated `VirtualHost`.
#[derive(Clone, Debug, PartialEq)]
pub struct VirtualHost {
    /// `name`.
    pub name: String,
    /// `domains`, lowercased.
    pub domains: Vec<DomainPattern>,
    /// `routes` that were kept, in order (first match wins).
    ///
    /// The router finds candidate routes through an index built at validation. Adding or
    /// removing routes is detected (the router then scans them all); after replacing a route in
    /// place, call [`VirtualHost::reindex`].
    pub routes: Vec<Route>,
    /// The virtual host's own `retry_policy` (routes without one already inherited it).
    pub retry_policy: Option<RetryPolicy>,
    /// `typed_per_filter_config`.
    pub filter_overrides: FilterOverrides,
    /// `routes` grouped by gRPC service (a cache: ignored by `==`).
    index: RouteIndex,
}

impl VirtualHost {
    /// Rebuilds the route index after `routes` changed (validation builds it; only code that
    /// edits `routes` in place needs this).
    pub fn reindex(&mut self) {
        self.index = RouteIndex::build(&self.routes);
    }

    /// The routes that may match `path`, ascending: every other route's path matcher is known
    /// not to match it. `None` when the index is out of date (scan every route instead).
    #[inline]
    pub(crate) fn route_candidates(&self, path: &str) -> Option<index::Candidates<'_>> {
        self.index.candidates(path, self.routes.len())
    }
}

/// One entry of `VirtualHost.domains` (Envoy/gRFC A27 domain rules; compared ASCII
/// case-insensitively against the authority, port included).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DomainPattern {
    /// No wildcard: the authority must equal it.
    Exact(String),
    /// `*suffix`: the authority ends with the suffix and is longer than it.
    Suffix(String),
    /// `prefix*`: the authority starts with the prefix and is longer than it.
    Prefix(String),
    /// `*`: anything.
    Any,
}

impl DomainPattern {
    /// Parses one domain; a `*` anywhere but alone, first or last is an error.
    pub fn parse(domain: &str) -> Result<Self, String> {
        let lower = domain.to_ascii_lowercase();
        if lower.is_empty() {
            return Err("must not be empty".into());
        }
        if lower == "*" {
            return Ok(DomainPattern::Any);
        }
        let bad = || {
            Err(format!(
                "invalid domain {domain:?}: a wildcard '*' is only allowed alone, first or last"
            ))
        };
        if let Some(rest) = lower.strip_prefix('*') {
            if rest.contains('*') {
                return bad();
            }
            return Ok(DomainPattern::Suffix(rest.to_string()));
        }
        if let Some(rest) = lower.strip_suffix('*') {
            if rest.contains('*') {
                return bad();
            }
            return Ok(DomainPattern::Prefix(rest.to_string()));
        }
        if lower.contains('*') {
            return bad();
        }
        Ok(DomainPattern::Exact(lower))
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainPattern::Exact(d) => f.write_str(d),
            DomainPattern::Suffix(s) => write!(f, "*{s}"),
            DomainPattern::Prefix(p) => write!(f, "{p}*"),
            DomainPattern::Any => f.write_str("*"),
        }
    }
}

/// A validated `Route`.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    /// `name`.
    pub name: String,
    /// `match`.
    pub matcher: RouteMatch,
    /// The action.
    pub action: RouteAction,
    /// `typed_per_filter_config`.
    pub filter_overrides: FilterOverrides,
}

/// A validated `RouteMatch`: every criterion must hold.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteMatch {
    /// The path specifier.
    pub path: PathMatcher,
    /// `headers`: all must match.
    pub headers: Vec<HeaderMatcher>,
    /// `runtime_fraction.default_value` (the runtime key is ignored, gRFC A28); `None` = 100%.
    pub fraction: Option<Fraction>,
    /// Whether `query_parameters` were given: gRPC has no query parameters, so such a route
    /// never matches (gRFC A28).
    pub has_query_parameters: bool,
}

/// The path part of a route match.
#[derive(Clone, Debug, PartialEq)]
pub enum PathMatcher {
    /// `prefix` (`""` and `"/"` match every gRPC path).
    Prefix {
        /// The prefix.
        prefix: String,
        /// `case_sensitive: false`.
        ignore_case: bool,
    },
    /// `path`: the whole `/pkg.Service/Method`.
    Exact {
        /// The path.
        path: String,
        /// `case_sensitive: false`.
        ignore_case: bool,
    },
    /// `safe_regex`, full match; `case_sensitive` does not apply (Envoy, gRPC).
    Regex(SafeRegex),
}

impl PathMatcher {
    /// Whether `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatcher::Prefix {
                prefix,
                ignore_case: false,
            } => path.starts_with(prefix.as_str()),
            PathMatcher::Prefix {
                prefix,
                ignore_case: true,
            } => path
                .as_bytes()
                .get(..prefix.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(prefix.as_bytes())),
            PathMatcher::Exact {
                path: p,
                ignore_case: false,
            } => path == p,
            PathMatcher::Exact {
                path: p,
                ignore_case: true,
            } => path.eq_ignore_ascii_case(p),
            PathMatcher::Regex(r) => r.is_full_match(path),
        }
    }
}

/// Why a kept route cannot serve RPCs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnsupportedAction {
    /// `redirect`.
    Redirect,
    /// `direct_response`.
    DirectResponse,
    /// `filter_action`.
    FilterAction,
    /// No action set (or one this proto version does not know).
    Unset,
}

impl UnsupportedAction {
    /// The proto field name.
    pub fn as_str(self) -> &'static str {
        match self {
            UnsupportedAction::Redirect => "redirect",
            UnsupportedAction::DirectResponse => "direct_response",
            UnsupportedAction::FilterAction => "filter_action",
            UnsupportedAction::Unset => "unset",
        }
    }
}

/// What a matching route does.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RouteAction {
    /// `route`: forward to a cluster (client side).
    Forward(ForwardAction),
    /// `non_forwarding_action`: the server handles the RPC itself (gRFC A36, server side).
    NonForwarding,
    /// Kept, but an RPC that matches fails with UNAVAILABLE (gRFC A28).
    Unsupported(UnsupportedAction),
}

/// A validated `RouteAction`.
#[derive(Clone, Debug, PartialEq)]
pub struct ForwardAction {
    /// Where RPCs go.
    pub cluster: ClusterSpecifier,
    /// `max_stream_duration` (gRFC A31).
    pub timeout: RouteTimeout,
    /// The effective retry policy: the route's, else the virtual host's (gRFC A44).
    pub retry_policy: Option<RetryPolicy>,
    /// `hash_policy` (gRFC A42), in order.
    pub hash_policies: Vec<HashPolicy>,
}

/// Which cluster a forwarding route sends to.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ClusterSpecifier {
    /// `cluster`.
    Cluster(String),
    /// `weighted_clusters`.
    Weighted(WeightedClusters),
    /// `cluster_header`: the cluster named by this request header's first value (Envoy
    /// semantics). Clusters named this way are not known ahead of time.
    Header(String),
}

/// Validated `weighted_clusters`: entries with cumulative weights for O(log n) picks.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightedClusters {
    clusters: Vec<ClusterWeight>,
    total: u64,
}

impl WeightedClusters {
    /// The entries, in configured order.
    pub fn clusters(&self) -> &[ClusterWeight] {
        &self.clusters
    }

    /// The sum of the weights (`1..=u32::MAX`).
    pub fn total_weight(&self) -> u64 {
        self.total
    }

    /// The entry that owns point `r` of `0..total_weight()` (each entry owns a run of points as
    /// long as its weight, in order); `None` when `r` is out of range.
    pub fn pick(&self, r: u64) -> Option<(usize, &ClusterWeight)> {
        let i = self.clusters.partition_point(|c| c.end <= r);
        self.clusters.get(i).map(|c| (i, c))
    }
}

/// One validated `ClusterWeight`.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterWeight {
    /// `name`.
    pub name: String,
    /// `weight` (unset = 0: never picked).
    pub weight: u32,
    /// `typed_per_filter_config`: the most specific overrides (gRFC A39).
    pub filter_overrides: FilterOverrides,
    /// Exclusive end of this entry's run of points.
    end: u64,
}

/// The route's limit on RPC duration (gRFC A31).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteTimeout {
    /// No `max_stream_duration` on the route: the HCM's `max_stream_duration` applies.
    Inherit,
    /// Configured as zero (istiod's `0s`): the application's deadline is used unchanged.
    Unlimited,
    /// At most this long (never longer than the application's deadline).
    Max(Duration),
}

impl RouteTimeout {
    /// The route's cap given the HCM's `common_http_protocol_options.max_stream_duration`
    /// (zero meaning none); `None` = no cap.
    pub fn cap(self, hcm_max_stream_duration: Option<Duration>) -> Option<Duration> {
        match self {
            RouteTimeout::Inherit => hcm_max_stream_duration.filter(|d| !d.is_zero()),
            RouteTimeout::Unlimited => None,
            RouteTimeout::Max(d) => Some(d),
        }
    }

    /// The effective timeout: the smaller of the application's and the route's cap (gRFC A31
    /// table: the application's deadline is never exceeded).
    pub fn effective(
        self,
        hcm_max_stream_duration: Option<Duration>,
        app_timeout: Option<Duration>,
    ) -> Option<Duration> {
        match (self.cap(hcm_max_stream_duration), app_timeout) {
            (Some(c), Some(a)) => Some(c.min(a)),
            (c, a) => c.or(a),
        }
    }
}

/// A validated `RouteAction.HashPolicy` (gRFC A42).
#[derive(Clone, Debug, PartialEq)]
pub struct HashPolicy {
    /// What is hashed.
    pub kind: HashPolicyKind,
    /// `terminal`: once a hash exists after this policy, later policies are skipped.
    pub terminal: bool,
}

/// What a hash policy hashes.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum HashPolicyKind {
    /// `header`: the header's value as routing sees it (gRFC A28 view), optionally rewritten.
    Header {
        /// `header_name`, lowercased.
        name: String,
        /// `regex_rewrite`, applied to the whole joined value before hashing.
        rewrite: Option<RegexRewrite>,
    },
    /// `filter_state` with key `io.grpc.channel_id`: a per-channel constant.
    ChannelId,
    /// A policy gRPC does not support (`cookie`, `connection_properties`, `query_parameter`,
    /// other `filter_state` keys, unset): it never produces a hash (gRFC A42).
    Unsupported(&'static str),
}

/// One piece of a parsed RE2 rewrite string.
#[derive(Clone, Debug, PartialEq, Eq)]
enum SubstPart {
    Literal(String),
    Group(usize),
}

/// A validated `RegexMatchAndSubstitute`: every (non-overlapping) match of `pattern` is
/// replaced by `substitution`, RE2 `GlobalReplace` style (`\0`..`\9` refer to groups, `\\` is a
/// backslash).
#[derive(Clone)]
pub struct RegexRewrite {
    pattern: String,
    regex: regex::Regex,
    substitution: Vec<SubstPart>,
    uses_groups: bool,
}

impl PartialEq for RegexRewrite {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.substitution == other.substitution
    }
}

impl fmt::Debug for RegexRewrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegexRewrite")
            .field("pattern", &self.pattern)
            .field("substitution", &self.substitution)
            .finish()
    }
}

impl RegexRewrite {
    /// Validates a wire `RegexMatchAndSubstitute`. Errors are relative to it
    /// (`pattern.regex`, `substitution`).
    pub fn from_proto(
        m: &matcher_pb::RegexMatchAndSubstitute,
        at: &str,
        ignored: &mut Ignored,
    ) -> Result<Self, ValidationError> {
        let Some(p) = &m.pattern else {
            return Err(ValidationError::new("pattern", "is required"));
        };
        if p.engine_type.is_some() {
            ignored.note_in(&join_path(at, "pattern"), "google_re2");
        }
        Self::new(&p.regex, &m.substitution)
            .map_err(|(field, reason)| ValidationError::new(field, reason))
    }

    /// Compiles `pattern` (unanchored) and parses `substitution`; on error, the offending field
    /// (`pattern.regex` or `substitution`) and why.
    fn new(pattern: &str, substitution: &str) -> Result<Self, (&'static str, String)> {
        let regex = build_regex(pattern).map_err(|e| ("pattern.regex", e))?;
        let groups = regex.captures_len().saturating_sub(1);
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = substitution.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                literal.push(c);
                continue;
            }
            match chars.next() {
                Some('\\') => literal.push('\\'),
                Some(d) if d.is_ascii_digit() => {
                    let n = d.to_digit(10).unwrap_or(0) as usize;
                    if n > groups {
                        return Err((
                            "substitution",
                            format!(
                                "refers to group \\{n} but the pattern has {groups} capture groups"
                            ),
                        ));
                    }
                    if !literal.is_empty() {
                        parts.push(SubstPart::Literal(core::mem::take(&mut literal)));
                    }
                    parts.push(SubstPart::Group(n));
                }
                _ => {
                    return Err((
                        "substitution",
                        "a backslash must be followed by a digit or a backslash (RE2 rewrite)"
                            .to_string(),
                    ));
                }
            }
        }
        if !literal.is_empty() {
            parts.push(SubstPart::Literal(literal));
        }
        let uses_groups = parts.iter().any(|p| matches!(p, SubstPart::Group(_)));
        Ok(RegexRewrite {
            pattern: pattern.to_string(),
            regex,
            substitution: parts,
            uses_groups,
        })
    }

    /// Feeds the rewritten form of `input` to `sink`, piece by piece, without building it.
    /// Allocation-free unless the substitution refers to capture groups.
    pub fn for_each_piece(&self, input: &str, mut sink: impl FnMut(&str)) {
        let mut last = 0usize;
        if self.uses_groups {
            for caps in self.regex.captures_iter(input) {
                let Some(whole) = caps.get(0) else { continue };
                sink(input.get(last..whole.start()).unwrap_or(""));
                for part in &self.substitution {
                    match part {
                        SubstPart::Literal(s) => sink(s),
                        SubstPart::Group(g) => sink(caps.get(*g).map_or("", |m| m.as_str())),
                    }
                }
                last = whole.end();
            }
        } else {
            for m in self.regex.find_iter(input) {
                sink(input.get(last..m.start()).unwrap_or(""));
                for part in &self.substitution {
                    if let SubstPart::Literal(s) = part {
                        sink(s);
                    }
                }
                last = m.end();
            }
        }
        sink(input.get(last..).unwrap_or(""));
    }

    /// The rewritten string (diagnostics and tests; the router uses [`Self::for_each_piece`]).
    pub fn rewrite(&self, input: &str) -> String {
        let mut out = String::with_capacity(input.len());
        self.for_each_piece(input, |p| out.push_str(p));
        out
    }
}

impl RouteConfig {
    /// Validates a `RouteConfiguration`. Errors are relative to it
    /// (`virtual_hosts[0].routes[2].match.safe_regex.regex`); ignored notes likewise.
    pub fn from_proto(
        rc: &pb::RouteConfiguration,
        ignored: &mut Ignored,
    ) -> Result<Self, ValidationError> {
        Self::from_proto_at(rc, "", ignored)
    }

    /// As [`Self::from_proto`], with `at` prefixed to ignored notes (e.g. an HCM's inline
    /// `route_config`).
    pub fn from_proto_at(
        rc: &pb::RouteConfiguration,
        at: &str,
        ignored: &mut Ignored,
    ) -> Result<Self, ValidationError> {
        let plugins = optional_plugins(rc, at, ignored)?;
        note_route_config_fields(rc, at, ignored);
        let mut virtual_hosts = Vec::with_capacity(rc.virtual_hosts.len());
        for (i, vh) in rc.virtual_hosts.iter().enumerate() {
            let at_vh = join_path(at, &format!("virtual_hosts[{i}]"));
            virtual_hosts.push(
                parse_virtual_host(vh, &at_vh, &plugins, ignored)
                    .map_err(|e| e.within(&format!("[{i}]")).within("virtual_hosts"))?,
            );
        }
        Ok(RouteConfig {
            name: rc.name.clone(),
            virtual_hosts,
        })
    }

    /// Every cluster a route can send to by name (`cluster` and `weighted_clusters` entries),
    /// sorted and deduplicated: what the CDS cascade must subscribe to. Clusters chosen by
    /// `cluster_header` cannot be known ahead of time and are not included.
    pub fn cluster_names(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        for vh in &self.virtual_hosts {
            for r in &vh.routes {
                if let RouteAction::Forward(f) = &r.action {
                    match &f.cluster {
                        ClusterSpecifier::Cluster(c) => {
                            out.insert(c.as_str());
                        }
                        ClusterSpecifier::Weighted(w) => {
                            out.extend(w.clusters.iter().map(|c| c.name.as_str()));
                        }
                        ClusterSpecifier::Header(_) => {}
                    }
                }
            }
        }
        out
    }
}

/// Validates a `RouteConfiguration` (free-function form of [`RouteConfig::from_proto`], matching
/// the other resources' `validate_*` functions).
pub fn validate_route_configuration(
    rc: &pb::RouteConfiguration,
    ignored: &mut Ignored,
) -> Result<RouteConfig, ValidationError> {
    RouteConfig::from_proto(rc, ignored)
}

/// Validates `cluster_specifier_plugins`: skiff implements none, so a required plugin NACKs and
/// an optional one is remembered so routes naming it are skipped.
fn optional_plugins<'a>(
    rc: &'a pb::RouteConfiguration,
    at: &str,
    ignored: &mut Ignored,
) -> Result<BTreeSet<&'a str>, ValidationError> {
    let mut names = BTreeSet::new();
    for (i, p) in rc.cluster_specifier_plugins.iter().enumerate() {
        let field = format!("cluster_specifier_plugins[{i}]");
        let Some(ext) = &p.extension else {
            return Err(ValidationError::new(
                format!("{field}.extension"),
                "is required",
            ));
        };
        if ext.name.is_empty() {
            return Err(ValidationError::new(
                format!("{field}.extension.name"),
                "must not be empty",
            ));
        }
        if !names.insert(ext.name.as_str()) {
            return Err(ValidationError::new(
                format!("{field}.extension.name"),
                format!("duplicate cluster specifier plugin name {:?}", ext.name),
            ));
        }
        if !p.is_optional {
            let ty = ext
                .typed_config
                .as_ref()
                .map_or("", |a| a.type_url.as_str());
            return Err(ValidationError::new(
                format!("{field}.extension.typed_config"),
                format!("cluster specifier plugin type {ty:?} is not supported"),
            ));
        }
        ignored.note(join_path(at, &field));
    }
    Ok(names)
}

/// Records RouteConfiguration-level fields gRPC does not use.
fn note_route_config_fields(rc: &pb::RouteConfiguration, at: &str, ignored: &mut Ignored) {
    let mut note = |set: bool, field: &str| {
        if set {
            ignored.note_in(at, field);
        }
    };
    note(rc.vhds.is_some(), "vhds");
    note(
        !rc.internal_only_headers.is_empty(),
        "internal_only_headers",
    );
    note(
        !rc.response_headers_to_add.is_empty(),
        "response_headers_to_add",
    );
    note(
        !rc.response_headers_to_remove.is_empty(),
        "response_headers_to_remove",
    );
    note(
        !rc.request_headers_to_add.is_empty(),
        "request_headers_to_add",
    );
    note(
        !rc.request_headers_to_remove.is_empty(),
        "request_headers_to_remove",
    );
    note(rc.validate_clusters.is_some(), "validate_clusters");
    note(
        !rc.request_mirror_policies.is_empty(),
        "request_mirror_policies",
    );
    note(
        rc.ignore_port_in_host_matching,
        "ignore_port_in_host_matching",
    );
    note(!rc.vhost_header.is_empty(), "vhost_header");
    // gRFC A39 defines overrides on virtual hosts, routes and cluster weights only.
    note(
        !rc.typed_per_filter_config.is_empty(),
        "typed_per_filter_config",
    );
    note(!rc.route_specifiers.is_empty(), "route_specifiers");
}

/// Validates a `typed_per_filter_config` map, in key order so errors and notes are
/// deterministic whatever map type the generated code uses (today a `BTreeMap`).
fn parse_overrides<'a>(
    map: impl IntoIterator<Item = (&'a String, &'a prost_types::Any)>,
    at: &str,
    ignored: &mut Ignored,
) -> Result<FilterOverrides, ValidationError> {
    let mut entries: Vec<(&String, &prost_types::Any)> = map.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = FilterOverrides::new();
    for (name, any) in entries {
        if let Some(o) = parse_filter_override(name, any, at, ignored)? {
            out.insert(name.clone(), o);
        }
    }
    Ok(out)
}

fn parse_virtual_host(
    vh: &pb::VirtualHost,
    at: &str,
    plugins: &BTreeSet<&str>,
    ignored: &mut Ignored,
) -> Result<VirtualHost, ValidationError> {
    let mut domains = Vec::with_capacity(vh.domains.len());
    for (i, d) in vh.domains.iter().enumerate() {
        domains.push(
            DomainPattern::parse(d)
                .map_err(|e| ValidationError::new(format!("domains[{i}]"), e))?,
        );
    }
    // The virtual host's policy is validated even when every route has its own (gRFC A44).
    let retry_policy = match &vh.retry_policy {
        None => None,
        Some(p) => Some(
            RetryPolicy::from_proto(p, &join_path(at, "retry_policy"), ignored)
                .map_err(|e| e.within("retry_policy"))?,
        ),
    };
    let filter_overrides = parse_overrides(&vh.typed_per_filter_config, at, ignored)?;
    let mut routes = Vec::with_capacity(vh.routes.len());
    for (i, r) in vh.routes.iter().enumerate() {
        let at_r = join_path(at, &format!("routes[{i}]"));
        let parsed = parse_route(r, &at_r, retry_policy, plugins, ignored)
            .map_err(|e| e.within(&format!("[{i}]")).within("routes"))?;
        match parsed {
            Some(route) => routes.push(route),
            None => ignored.note(at_r),
        }
    }
    note_virtual_host_fields(vh, at, ignored);
    let index = RouteIndex::build(&routes);
    Ok(VirtualHost {
        name: vh.name.clone(),
        domains,
        routes,
        retry_policy,
        filter_overrides,
        index,
    })
}

#[allow(deprecated)]
fn note_virtual_host_fields(vh: &pb::VirtualHost, at: &str, ignored: &mut Ignored) {
    let mut note = |set: bool, field: &str| {
        if set {
            ignored.note_in(at, field);
        }
    };
    // Envoy would route with the matcher tree instead of `routes`; gRPC does not support it.
    note(vh.matcher.is_some(), "matcher");
    note(vh.require_tls != 0, "require_tls");
    note(!vh.virtual_clusters.is_empty(), "virtual_clusters");
    note(!vh.rate_limits.is_empty(), "rate_limits");
    note(
        !vh.request_headers_to_add.is_empty(),
        "request_headers_to_add",
    );
    note(
        !vh.request_headers_to_remove.is_empty(),
        "request_headers_to_remove",
    );
    note(
        !vh.response_headers_to_add.is_empty(),
        "response_headers_to_add",
    );
    note(
        !vh.response_headers_to_remove.is_empty(),
        "response_headers_to_remove",
    );
    note(vh.cors.is_some(), "cors");
    note(
        vh.include_request_attempt_count,
        "include_request_attempt_count",
    );
    note(
        vh.include_attempt_count_in_response,
        "include_attempt_count_in_response",
    );
    note(
        vh.retry_policy_typed_config.is_some(),
        "retry_policy_typed_config",
    );
    note(vh.hedge_policy.is_some(), "hedge_policy");
    note(
        vh.include_is_timeout_retry_header,
        "include_is_timeout_retry_header",
    );
    note(
        vh.per_request_buffer_limit_bytes.is_some(),
        "per_request_buffer_limit_bytes",
    );
    note(
        vh.request_body_buffer_limit.is_some(),
        "request_body_buffer_limit",
    );
    note(
        !vh.request_mirror_policies.is_empty(),
        "request_mirror_policies",
    );
    note(!vh.route_specifiers.is_empty(), "route_specifiers");
}

/// Validates one route; `Ok(None)` means it is skipped (gRFC A28).
fn parse_route(
    r: &pb::Route,
    at: &str,
    vhost_retry: Option<RetryPolicy>,
    plugins: &BTreeSet<&str>,
    ignored: &mut Ignored,
) -> Result<Option<Route>, ValidationError> {
    let Some(m) = &r.r#match else {
        return Err(ValidationError::new("match", "is required"));
    };
    let matcher =
        parse_match(m, &join_path(at, "match"), ignored).map_err(|e| e.within("match"))?;
    use pb::route::Action;
    let action = match &r.action {
        Some(Action::Route(ra)) => {
            match parse_route_action(ra, &join_path(at, "route"), vhost_retry, plugins, ignored)
                .map_err(|e| e.within("route"))?
            {
                Some(f) => RouteAction::Forward(f),
                None => return Ok(None),
            }
        }
        Some(Action::NonForwardingAction(_)) => RouteAction::NonForwarding,
        Some(Action::Redirect(_)) => RouteAction::Unsupported(UnsupportedAction::Redirect),
        Some(Action::DirectResponse(_)) => {
            RouteAction::Unsupported(UnsupportedAction::DirectResponse)
        }
        Some(Action::FilterAction(_)) => RouteAction::Unsupported(UnsupportedAction::FilterAction),
        None => RouteAction::Unsupported(UnsupportedAction::Unset),
    };
    let filter_overrides = parse_overrides(&r.typed_per_filter_config, at, ignored)?;
    note_route_fields(r, at, ignored);
    Ok(Some(Route {
        name: r.name.clone(),
        matcher,
        action,
        filter_overrides,
    }))
}

#[allow(deprecated)]
fn note_route_fields(r: &pb::Route, at: &str, ignored: &mut Ignored) {
    let mut note = |set: bool, field: &str| {
        if set {
            ignored.note_in(at, field);
        }
    };
    note(r.metadata.is_some(), "metadata");
    note(r.decorator.is_some(), "decorator");
    note(
        !r.request_headers_to_add.is_empty(),
        "request_headers_to_add",
    );
    note(
        !r.request_headers_to_remove.is_empty(),
        "request_headers_to_remove",
    );
    note(
        !r.response_headers_to_add.is_empty(),
        "response_headers_to_add",
    );
    note(
        !r.response_headers_to_remove.is_empty(),
        "response_headers_to_remove",
    );
    note(r.tracing.is_some(), "tracing");
    note(
        r.per_request_buffer_limit_bytes.is_some(),
        "per_request_buffer_limit_bytes",
    );
    note(!r.stat_prefix.is_empty(), "stat_prefix");
    note(
        r.request_body_buffer_limit.is_some(),
        "request_body_buffer_limit",
    );
    note(!r.route_specifiers.is_empty(), "route_specifiers");
}

fn parse_match(
    m: &pb::RouteMatch,
    at: &str,
    ignored: &mut Ignored,
) -> Result<RouteMatch, ValidationError> {
    use pb::route_match::PathSpecifier;
    // `case_sensitive` defaults to true; gRFC A28: false makes prefix/path matching
    // case-insensitive on the client only.
    let ignore_case = m.case_sensitive == Some(false);
    let path = match &m.path_specifier {
        Some(PathSpecifier::Prefix(p)) => PathMatcher::Prefix {
            prefix: p.clone(),
            ignore_case,
        },
        Some(PathSpecifier::Path(p)) => PathMatcher::Exact {
            path: p.clone(),
            ignore_case,
        },
        Some(PathSpecifier::SafeRegex(r)) => {
            if m.case_sensitive.is_some() {
                ignored.note_in(at, "case_sensitive");
            }
            PathMatcher::Regex(
                SafeRegex::from_proto(r, &join_path(at, "safe_regex"), ignored)
                    .map_err(|e| e.within("safe_regex"))?,
            )
        }
        Some(other) => {
            let which = match other {
                PathSpecifier::ConnectMatcher(_) => "connect_matcher",
                PathSpecifier::PathSeparatedPrefix(_) => "path_separated_prefix",
                PathSpecifier::PathMatchPolicy(_) => "path_match_policy",
                _ => "this path specifier",
            };
            return Err(ValidationError::new(
                which,
                "is not supported; use prefix, path or safe_regex",
            ));
        }
        None => {
            return Err(ValidationError::new(
                "path_specifier",
                "one of prefix, path or safe_regex is required",
            ));
        }
    };
    let mut headers = Vec::with_capacity(m.headers.len());
    for (i, h) in m.headers.iter().enumerate() {
        let field = format!("headers[{i}]");
        headers.push(
            HeaderMatcher::from_proto(h, &join_path(at, &field), ignored)
                .map_err(|e| e.within(&field))?,
        );
    }
    let fraction = match &m.runtime_fraction {
        None => None,
        Some(rf) => {
            if !rf.runtime_key.is_empty() {
                // gRPC has no runtime: only the default value counts (gRFC A28).
                ignored.note_in(at, "runtime_fraction.runtime_key");
            }
            let Some(dv) = &rf.default_value else {
                return Err(ValidationError::new(
                    "runtime_fraction.default_value",
                    "is required",
                ));
            };
            Some(Fraction::from_proto(dv).map_err(|e| e.within("runtime_fraction.default_value"))?)
        }
    };
    let mut note = |set: bool, field: &str| {
        if set {
            ignored.note_in(at, field);
        }
    };
    // gRFC A28: `grpc` and `tls_context` are ignored (other matchers still apply); the rest
    // are not part of gRPC's routing.
    note(m.grpc.is_some(), "grpc");
    note(m.tls_context.is_some(), "tls_context");
    note(!m.cookies.is_empty(), "cookies");
    note(!m.dynamic_metadata.is_empty(), "dynamic_metadata");
    note(!m.filter_state.is_empty(), "filter_state");
    Ok(RouteMatch {
        path,
        headers,
        fraction,
        has_query_parameters: !m.query_parameters.is_empty(),
    })
}

/// Validates a `RouteAction`; `Ok(None)` means the route is skipped.
fn parse_route_action(
    ra: &pb::RouteAction,
    at: &str,
    vhost_retry: Option<RetryPolicy>,
    plugins: &BTreeSet<&str>,
    ignored: &mut Ignored,
) -> Result<Option<ForwardAction>, ValidationError> {
    use pb::route_action::ClusterSpecifier as Cs;
    let cluster = match &ra.cluster_specifier {
        Some(Cs::Cluster(c)) => {
            if c.is_empty() {
                return Err(ValidationError::new("cluster", "must not be empty"));
            }
            ClusterSpecifier::Cluster(c.clone())
        }
        Some(Cs::ClusterHeader(h)) => {
            if h.is_empty() {
                return Err(ValidationError::new("cluster_header", "must not be empty"));
            }
            ClusterSpecifier::Header(h.to_ascii_lowercase())
        }
        Some(Cs::WeightedClusters(wc)) => ClusterSpecifier::Weighted(
            parse_weighted(wc, &join_path(at, "weighted_clusters"), ignored)
                .map_err(|e| e.within("weighted_clusters"))?,
        ),
        Some(Cs::ClusterSpecifierPlugin(name)) => {
            if plugins.contains(name.as_str()) {
                // An optional plugin skiff does not implement: the route is ignored.
                return Ok(None);
            }
            return Err(ValidationError::new(
                "cluster_specifier_plugin",
                format!("no cluster specifier plugin named {name:?} in the RouteConfiguration"),
            ));
        }
        Some(Cs::InlineClusterSpecifierPlugin(p)) => {
            if p.is_optional {
                return Ok(None);
            }
            let ty = p
                .extension
                .as_ref()
                .and_then(|e| e.typed_config.as_ref())
                .map_or("", |a| a.type_url.as_str());
            return Err(ValidationError::new(
                "inline_cluster_specifier_plugin",
                format!("cluster specifier plugin type {ty:?} is not supported"),
            ));
        }
        // gRFC A28: an unset (or future) cluster specifier makes the route ignored.
        None => return Ok(None),
    };

    let timeout = match &ra.max_stream_duration {
        None => RouteTimeout::Inherit,
        Some(msd) => {
            if msd.grpc_timeout_header_offset.is_some() {
                ignored.note_in(at, "max_stream_duration.grpc_timeout_header_offset");
            }
            // gRFC A31: grpc_timeout_header_max, when present, wins over max_stream_duration.
            let chosen = if let Some(d) = &msd.grpc_timeout_header_max {
                Some(duration("max_stream_duration.grpc_timeout_header_max", d)?)
            } else if let Some(d) = &msd.max_stream_duration {
                Some(duration("max_stream_duration.max_stream_duration", d)?)
            } else {
                None
            };
            match chosen {
                None => RouteTimeout::Inherit,
                Some(d) if d.is_zero() => RouteTimeout::Unlimited,
                Some(d) => RouteTimeout::Max(d),
            }
        }
    };

    let retry_policy = match &ra.retry_policy {
        Some(p) => Some(
            RetryPolicy::from_proto(p, &join_path(at, "retry_policy"), ignored)
                .map_err(|e| e.within("retry_policy"))?,
        ),
        None => vhost_retry,
    };

    let mut hash_policies = Vec::with_capacity(ra.hash_policy.len());
    for (i, h) in ra.hash_policy.iter().enumerate() {
        let field = format!("hash_policy[{i}]");
        hash_policies.push(
            parse_hash_policy(h, &join_path(at, &field), ignored).map_err(|e| e.within(&field))?,
        );
    }

    note_route_action_fields(ra, at, ignored);
    Ok(Some(ForwardAction {
        cluster,
        timeout,
        retry_policy,
        hash_policies,
    }))
}

#[allow(deprecated)]
fn note_route_action_fields(ra: &pb::RouteAction, at: &str, ignored: &mut Ignored) {
    let mut note = |set: bool, field: &str| {
        if set {
            ignored.note_in(at, field);
        }
    };
    note(
        ra.cluster_not_found_response_code != 0,
        "cluster_not_found_response_code",
    );
    note(ra.metadata_match.is_some(), "metadata_match");
    note(!ra.prefix_rewrite.is_empty(), "prefix_rewrite");
    note(ra.regex_rewrite.is_some(), "regex_rewrite");
    note(ra.path_rewrite_policy.is_some(), "path_rewrite_policy");
    note(!ra.path_rewrite.is_empty(), "path_rewrite");
    note(ra.append_x_forwarded_host, "append_x_forwarded_host");
    // gRFC A31: `timeout` starts counting at a point incompatible with gRPC deadlines.
    note(ra.timeout.is_some(), "timeout");
    note(ra.idle_timeout.is_some(), "idle_timeout");
    note(ra.flush_timeout.is_some(), "flush_timeout");
    note(ra.early_data_policy.is_some(), "early_data_policy");
    note(
        ra.retry_policy_typed_config.is_some(),
        "retry_policy_typed_config",
    );
    note(
        !ra.request_mirror_policies.is_empty(),
        "request_mirror_policies",
    );
    note(ra.priority != 0, "priority");
    note(!ra.rate_limits.is_empty(), "rate_limits");
    note(
        ra.include_vh_rate_limits.is_some(),
        "include_vh_rate_limits",
    );
    note(ra.cors.is_some(), "cors");
    note(ra.max_grpc_timeout.is_some(), "max_grpc_timeout");
    note(ra.grpc_timeout_offset.is_some(), "grpc_timeout_offset");
    note(!ra.upgrade_configs.is_empty(), "upgrade_configs");
    note(
        ra.internal_redirect_policy.is_some(),
        "internal_redirect_policy",
    );
    note(ra.internal_redirect_action != 0, "internal_redirect_action");
    note(
        ra.max_internal_redirects.is_some(),
        "max_internal_redirects",
    );
    note(ra.hedge_policy.is_some(), "hedge_policy");
    // gRFC A81 (authority rewrite) is not implemented.
    note(
        ra.host_rewrite_specifier.is_some(),
        "host_rewrite_specifier",
    );
}

fn parse_weighted(
    wc: &pb::WeightedCluster,
    at: &str,
    ignored: &mut Ignored,
) -> Result<WeightedClusters, ValidationError> {
    let mut clusters = Vec::with_capacity(wc.clusters.len());
    let mut total: u64 = 0;
    for (i, c) in wc.clusters.iter().enumerate() {
        let field = format!("clusters[{i}]");
        let at_c = join_path(at, &field);
        if !c.cluster_header.is_empty() {
            return Err(ValidationError::new(
                format!("{field}.cluster_header"),
                "is not supported in weighted clusters",
            ));
        }
        if c.name.is_empty() {
            return Err(ValidationError::new(
                format!("{field}.name"),
                "must not be empty",
            ));
        }
        let weight = c.weight.unwrap_or(0);
        total = total.saturating_add(u64::from(weight));
        let filter_overrides = parse_overrides(&c.typed_per_filter_config, &at_c, ignored)
            .map_err(|e| e.within(&field))?;
        let mut note = |set: bool, f: &str| {
            if set {
                ignored.note_in(&at_c, f);
            }
        };
        note(c.metadata_match.is_some(), "metadata_match");
        note(
            !c.request_headers_to_add.is_empty(),
            "request_headers_to_add",
        );
        note(
            !c.request_headers_to_remove.is_empty(),
            "request_headers_to_remove",
        );
        note(
            !c.response_headers_to_add.is_empty(),
            "response_headers_to_add",
        );
        note(
            !c.response_headers_to_remove.is_empty(),
            "response_headers_to_remove",
        );
        note(c.host_rewrite_specifier.is_some(), "host_rewrite_specifier");
        clusters.push(ClusterWeight {
            name: c.name.clone(),
            weight,
            filter_overrides,
            end: total,
        });
    }
    // gRFC A28 (as implemented by gRPC today): the sum must be positive and fit in a u32.
    if total == 0 {
        return Err(ValidationError::new(
            "clusters",
            "the sum of the weights must be greater than zero",
        ));
    }
    if total > u64::from(u32::MAX) {
        return Err(ValidationError::new(
            "clusters",
            format!("the sum of the weights {total} exceeds {}", u32::MAX),
        ));
    }
    #[allow(deprecated)]
    let total_weight_set = wc.total_weight.is_some();
    let mut note = |set: bool, f: &str| {
        if set {
            ignored.note_in(at, f);
        }
    };
    // Deprecated in Envoy; gRPC uses the sum of the weights.
    note(total_weight_set, "total_weight");
    note(!wc.runtime_key_prefix.is_empty(), "runtime_key_prefix");
    note(
        wc.random_value_specifier.is_some(),
        "random_value_specifier",
    );
    Ok(WeightedClusters { clusters, total })
}

fn parse_hash_policy(
    h: &pb::route_action::HashPolicy,
    at: &str,
    ignored: &mut Ignored,
) -> Result<HashPolicy, ValidationError> {
    use pb::route_action::hash_policy::PolicySpecifier as P;
    let kind = match &h.policy_specifier {
        Some(P::Header(hd)) => {
            if hd.header_name.is_empty() {
                return Err(ValidationError::new(
                    "header.header_name",
                    "must not be empty",
                ));
            }
            let rewrite = match &hd.regex_rewrite {
                None => None,
                Some(rr) => Some(
                    RegexRewrite::from_proto(rr, &join_path(at, "header.regex_rewrite"), ignored)
                        .map_err(|e| e.within("header.regex_rewrite"))?,
                ),
            };
            HashPolicyKind::Header {
                name: hd.header_name.to_ascii_lowercase(),
                rewrite,
            }
        }
        Some(P::FilterState(fs)) if fs.key == CHANNEL_ID_HASH_KEY => HashPolicyKind::ChannelId,
        other => {
            // gRFC A42: unsupported policies are kept and never produce a hash.
            let which = match other {
                Some(P::Cookie(_)) => "cookie",
                Some(P::ConnectionProperties(_)) => "connection_properties",
                Some(P::QueryParameter(_)) => "query_parameter",
                Some(P::FilterState(_)) => "filter_state",
                _ => "policy_specifier",
            };
            ignored.note_in(at, which);
            HashPolicyKind::Unsupported(which)
        }
    };
    Ok(HashPolicy {
        kind,
        terminal: h.terminal,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::pb::envoy::config::route::v3::route_action::ClusterSpecifier as Cs;
    use crate::pb::envoy::config::route::v3::route_match::PathSpecifier;
    use crate::pb::envoy::r#type::v3::FractionalPercent;

    pub(crate) fn dur(secs: i64) -> prost_types::Duration {
        prost_types::Duration {
            seconds: secs,
            nanos: 0,
        }
    }

    pub(crate) fn prefix_match(p: &str) -> Option<pb::RouteMatch> {
        Some(pb::RouteMatch {
            path_specifier: Some(PathSpecifier::Prefix(p.into())),
            ..Default::default()
        })
    }

    pub(crate) fn to_cluster(match_: Option<pb::RouteMatch>, cluster: &str) -> pb::Route {
        pb::Route {
            r#match: match_,
            action: Some(pb::route::Action::Route(pb::RouteAction {
                cluster_specifier: Some(Cs::Cluster(cluster.into())),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    pub(crate) fn rc(vhosts: Vec<pb::VirtualHost>) -> pb::RouteConfiguration {
        pb::RouteConfiguration {
            name: "rc".into(),
            virtual_hosts: vhosts,
            ..Default::default()
        }
    }

    pub(crate) fn vh(domains: &[&str], routes: Vec<pb::Route>) -> pb::VirtualHost {
        pb::VirtualHost {
            name: domains.first().copied().unwrap_or("").into(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            routes,
            ..Default::default()
        }
    }

    /// What istiod's grpcgen sends for `echo.default.svc.cluster.local:7000` with no
    /// VirtualService (pilot/pkg/networking/grpcgen/rds.go, core/route/route.go).
    pub(crate) fn istiod_route_config() -> pb::RouteConfiguration {
        let host = "echo.default.svc.cluster.local";
        let cluster = format!("outbound|7000||{host}");
        #[allow(deprecated)]
        let route = pb::Route {
            name: "default".into(),
            r#match: prefix_match("/"),
            decorator: Some(pb::Decorator {
                operation: format!("{host}:7000/*"),
                propagate: None,
            }),
            action: Some(pb::route::Action::Route(pb::RouteAction {
                cluster_specifier: Some(Cs::Cluster(cluster.clone())),
                timeout: Some(dur(0)),
                max_grpc_timeout: Some(dur(0)),
                retry_policy: Some(pb::RetryPolicy {
                    retry_on:
                        "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
                            .into(),
                    num_retries: Some(2),
                    retry_host_predicate: vec![pb::retry_policy::RetryHostPredicate {
                        name: "envoy.retry_host_predicates.previous_hosts".into(),
                        config_type: None,
                    }],
                    host_selection_retry_max_attempts: 5,
                    ..Default::default()
                }),
                ..Default::default()
            })),
            ..Default::default()
        };
        let domains = [
            host.to_string(),
            format!("{host}:7000"),
            format!("{host}."),
            format!("{host}.:7000"),
            "echo".into(),
            "echo:7000".into(),
            "echo.default".into(),
            "echo.default:7000".into(),
            "echo.default.svc".into(),
            "echo.default.svc:7000".into(),
            "10.96.0.12".into(),
            "10.96.0.12:7000".into(),
        ];
        pb::RouteConfiguration {
            name: cluster,
            virtual_hosts: vec![pb::VirtualHost {
                name: format!("{host}:7000"),
                domains: domains.to_vec(),
                routes: vec![route],
                ..Default::default()
            }],
            validate_clusters: Some(false),
            ..Default::default()
        }
    }

    fn parse(rc: &pb::RouteConfiguration) -> Result<RouteConfig, ValidationError> {
        RouteConfig::from_proto(rc, &mut Ignored::default())
    }

    fn weighted(ws: &[(&str, Option<u32>)]) -> pb::route::Action {
        pb::route::Action::Route(pb::RouteAction {
            cluster_specifier: Some(Cs::WeightedClusters(pb::WeightedCluster {
                clusters: ws
                    .iter()
                    .map(|(n, w)| pb::weighted_cluster::ClusterWeight {
                        name: n.to_string(),
                        weight: *w,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })),
            ..Default::default()
        })
    }

    #[test]
    fn istiod_route_config_validates() {
        let mut ignored = Ignored::default();
        let cfg = RouteConfig::from_proto(&istiod_route_config(), &mut ignored).unwrap();
        assert_eq!(cfg.name, "outbound|7000||echo.default.svc.cluster.local");
        let vh = &cfg.virtual_hosts[0];
        assert_eq!(vh.domains.len(), 12);
        assert!(vh.domains.contains(&DomainPattern::Exact(
            "echo.default.svc.cluster.local:7000".into()
        )));
        let RouteAction::Forward(f) = &vh.routes[0].action else {
            panic!("forward expected")
        };
        assert_eq!(
            f.cluster,
            ClusterSpecifier::Cluster("outbound|7000||echo.default.svc.cluster.local".into())
        );
        assert_eq!(f.timeout, RouteTimeout::Inherit);
        let rp = f.retry_policy.unwrap();
        assert_eq!(rp.max_attempts(), 3);
        assert_eq!(
            cfg.cluster_names().into_iter().collect::<Vec<_>>(),
            ["outbound|7000||echo.default.svc.cluster.local"]
        );
        let fields = ignored.fields();
        for f in [
            "virtual_hosts[0].routes[0].route.timeout",
            "virtual_hosts[0].routes[0].route.max_grpc_timeout",
            "virtual_hosts[0].routes[0].route.retry_policy.retry_host_predicate",
            "virtual_hosts[0].routes[0].decorator",
            "validate_clusters",
        ] {
            assert!(fields.contains(&f.to_string()), "{f} not in {fields:?}");
        }
    }

    #[test]
    fn domains_parse() {
        assert_eq!(DomainPattern::parse("*").unwrap(), DomainPattern::Any);
        assert_eq!(
            DomainPattern::parse("*.Foo.com").unwrap(),
            DomainPattern::Suffix(".foo.com".into())
        );
        assert_eq!(
            DomainPattern::parse("foo.*").unwrap(),
            DomainPattern::Prefix("foo.".into())
        );
        assert_eq!(
            DomainPattern::parse("Foo:80").unwrap(),
            DomainPattern::Exact("foo:80".into())
        );
        for bad in ["", "a*b", "**", "*a*", "a**"] {
            assert!(DomainPattern::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            DomainPattern::parse("*.foo.com").unwrap().to_string(),
            "*.foo.com"
        );
        let e = parse(&rc(vec![vh(&["ok", "a*b"], vec![])])).unwrap_err();
        assert_eq!(e.field, "virtual_hosts[0].domains[1]");
    }

    #[test]
    fn invalid_regex_names_the_field() {
        let route = pb::Route {
            r#match: Some(pb::RouteMatch {
                path_specifier: Some(PathSpecifier::SafeRegex(matcher_pb::RegexMatcher {
                    regex: "/pkg.Svc/(".into(),
                    engine_type: None,
                })),
                ..Default::default()
            }),
            ..to_cluster(None, "c")
        };
        let e = parse(&rc(vec![vh(
            &["*"],
            vec![to_cluster(prefix_match(""), "a"), route],
        )]))
        .unwrap_err();
        assert_eq!(e.field, "virtual_hosts[0].routes[1].match.safe_regex.regex");
        assert!(e.reason.contains("invalid regex"), "{e}");
    }

    #[test]
    fn weighted_cluster_sums() {
        let with = |a| pb::Route {
            action: Some(a),
            ..to_cluster(prefix_match(""), "x")
        };
        let e = parse(&rc(vec![vh(
            &["*"],
            vec![with(weighted(&[("a", Some(0)), ("b", None)]))],
        )]))
        .unwrap_err();
        assert_eq!(
            e.field,
            "virtual_hosts[0].routes[0].route.weighted_clusters.clusters"
        );
        let e = parse(&rc(vec![vh(
            &["*"],
            vec![with(weighted(&[("a", Some(u32::MAX)), ("b", Some(1))]))],
        )]))
        .unwrap_err();
        assert!(e.reason.contains("exceeds"), "{e}");
        let e = parse(&rc(vec![vh(
            &["*"],
            vec![with(weighted(&[("", Some(1))]))],
        )]))
        .unwrap_err();
        assert_eq!(
            e.field,
            "virtual_hosts[0].routes[0].route.weighted_clusters.clusters[0].name"
        );
        let cfg = parse(&rc(vec![vh(
            &["*"],
            vec![with(weighted(&[
                ("a", Some(80)),
                ("z", Some(0)),
                ("b", Some(20)),
            ]))],
        )]))
        .unwrap();
        let RouteAction::Forward(f) = &cfg.virtual_hosts[0].routes[0].action else {
            panic!()
        };
        let ClusterSpecifier::Weighted(w) = &f.cluster else {
            panic!()
        };
        assert_eq!(w.total_weight(), 100);
        assert_eq!(w.pick(0).unwrap().1.name, "a");
        assert_eq!(w.pick(79).unwrap().1.name, "a");
        assert_eq!(w.pick(80).unwrap().1.name, "b", "zero weight never picked");
        assert_eq!(w.pick(99).unwrap().0, 2);
        assert!(w.pick(100).is_none());
        assert_eq!(
            cfg.cluster_names().into_iter().collect::<Vec<_>>(),
            ["a", "b", "z"]
        );
    }

    #[test]
    fn unsupported_actions_are_kept_and_unset_specifiers_skipped() {
        let redirect = pb::Route {
            r#match: prefix_match("/a"),
            action: Some(pb::route::Action::Redirect(pb::RedirectAction::default())),
            ..Default::default()
        };
        let direct = pb::Route {
            r#match: prefix_match("/b"),
            action: Some(pb::route::Action::DirectResponse(
                pb::DirectResponseAction::default(),
            )),
            ..Default::default()
        };
        let no_action = pb::Route {
            r#match: prefix_match("/c"),
            action: None,
            ..Default::default()
        };
        let unset_cluster = pb::Route {
            r#match: prefix_match("/d"),
            action: Some(pb::route::Action::Route(pb::RouteAction::default())),
            ..Default::default()
        };
        let server = pb::Route {
            r#match: prefix_match("/e"),
            action: Some(pb::route::Action::NonForwardingAction(
                pb::NonForwardingAction {},
            )),
            ..Default::default()
        };
        let mut ignored = Ignored::default();
        let cfg = RouteConfig::from_proto(
            &rc(vec![vh(
                &["*"],
                vec![redirect, direct, no_action, unset_cluster, server],
            )]),
            &mut ignored,
        )
        .unwrap();
        let actions: Vec<_> = cfg.virtual_hosts[0]
            .routes
            .iter()
            .map(|r| r.action.clone())
            .collect();
        assert_eq!(
            actions,
            [
                RouteAction::Unsupported(UnsupportedAction::Redirect),
                RouteAction::Unsupported(UnsupportedAction::DirectResponse),
                RouteAction::Unsupported(UnsupportedAction::Unset),
                RouteAction::NonForwarding,
            ]
        );
        assert!(
            ignored
                .fields()
                .contains(&"virtual_hosts[0].routes[3]".to_string())
        );
    }

    #[test]
    fn cluster_specifier_plugins() {
        let plugin = |name: &str, optional| pb::ClusterSpecifierPlugin {
            extension: Some(crate::pb::envoy::config::core::v3::TypedExtensionConfig {
                name: name.into(),
                typed_config: Some(prost_types::Any {
                    type_url: "type.googleapis.com/grpc.lookup.v1.RouteLookupClusterSpecifier"
                        .into(),
                    value: vec![],
                }),
            }),
            is_optional: optional,
        };
        let uses = |name: &str| pb::Route {
            r#match: prefix_match(""),
            action: Some(pb::route::Action::Route(pb::RouteAction {
                cluster_specifier: Some(Cs::ClusterSpecifierPlugin(name.into())),
                ..Default::default()
            })),
            ..Default::default()
        };
        let mut cfg = rc(vec![vh(
            &["*"],
            vec![uses("rls"), to_cluster(prefix_match(""), "c")],
        )]);
        cfg.cluster_specifier_plugins = vec![plugin("rls", true)];
        let parsed = parse(&cfg).unwrap();
        assert_eq!(
            parsed.virtual_hosts[0].routes.len(),
            1,
            "route using it is skipped"
        );
        cfg.cluster_specifier_plugins = vec![plugin("rls", false)];
        let e = parse(&cfg).unwrap_err();
        assert_eq!(
            e.field,
            "cluster_specifier_plugins[0].extension.typed_config"
        );
        cfg.cluster_specifier_plugins = vec![];
        let e = parse(&cfg).unwrap_err();
        assert_eq!(
            e.field,
            "virtual_hosts[0].routes[0].route.cluster_specifier_plugin"
        );
    }

    #[test]
    fn timeouts_follow_a31() {
        let with = |msd: Option<pb::route_action::MaxStreamDuration>| {
            let route = pb::Route {
                action: Some(pb::route::Action::Route(pb::RouteAction {
                    cluster_specifier: Some(Cs::Cluster("c".into())),
                    max_stream_duration: msd,
                    ..Default::default()
                })),
                ..to_cluster(prefix_match(""), "c")
            };
            let cfg = parse(&rc(vec![vh(&["*"], vec![route])])).unwrap();
            let RouteAction::Forward(f) = &cfg.virtual_hosts[0].routes[0].action else {
                panic!()
            };
            f.timeout
        };
        let msd = |max: Option<i64>, header_max: Option<i64>| {
            Some(pb::route_action::MaxStreamDuration {
                max_stream_duration: max.map(dur),
                grpc_timeout_header_max: header_max.map(dur),
                grpc_timeout_header_offset: None,
            })
        };
        assert_eq!(with(None), RouteTimeout::Inherit);
        assert_eq!(
            with(msd(Some(0), None)),
            RouteTimeout::Unlimited,
            "istiod's 0s"
        );
        assert_eq!(
            with(msd(Some(10), None)),
            RouteTimeout::Max(Duration::from_secs(10))
        );
        assert_eq!(with(msd(Some(10), Some(0))), RouteTimeout::Unlimited);
        assert_eq!(
            with(msd(Some(10), Some(3))),
            RouteTimeout::Max(Duration::from_secs(3))
        );
        assert_eq!(with(msd(None, None)), RouteTimeout::Inherit);
        // The A31 table.
        let s = Duration::from_secs;
        assert_eq!(RouteTimeout::Inherit.effective(None, None), None);
        assert_eq!(RouteTimeout::Inherit.effective(Some(s(0)), None), None);
        assert_eq!(
            RouteTimeout::Inherit.effective(Some(s(10)), None),
            Some(s(10))
        );
        assert_eq!(RouteTimeout::Unlimited.effective(Some(s(10)), None), None);
        assert_eq!(RouteTimeout::Max(s(10)).effective(None, None), Some(s(10)));
        assert_eq!(
            RouteTimeout::Inherit.effective(None, Some(s(20))),
            Some(s(20))
        );
        assert_eq!(
            RouteTimeout::Inherit.effective(Some(s(10)), Some(s(20))),
            Some(s(10))
        );
        assert_eq!(
            RouteTimeout::Unlimited.effective(Some(s(10)), Some(s(20))),
            Some(s(20))
        );
        assert_eq!(
            RouteTimeout::Max(s(10)).effective(None, Some(s(20))),
            Some(s(10))
        );
        assert_eq!(
            RouteTimeout::Max(s(30)).effective(None, Some(s(20))),
            Some(s(20))
        );
    }

    #[test]
    fn retry_policy_route_wins_over_vhost() {
        let vh_policy = pb::RetryPolicy {
            retry_on: "internal".into(),
            num_retries: Some(4),
            ..Default::default()
        };
        let route_policy = pb::RetryPolicy {
            retry_on: "unavailable".into(),
            ..Default::default()
        };
        let mut own = to_cluster(prefix_match("/own"), "c");
        if let Some(pb::route::Action::Route(ra)) = &mut own.action {
            ra.retry_policy = Some(route_policy);
        }
        let inherit = to_cluster(prefix_match(""), "c");
        let mut v = vh(&["*"], vec![own, inherit]);
        v.retry_policy = Some(vh_policy);
        let cfg = parse(&rc(vec![v])).unwrap();
        let policy = |i: usize| match &cfg.virtual_hosts[0].routes[i].action {
            RouteAction::Forward(f) => f.retry_policy.unwrap(),
            _ => panic!(),
        };
        assert!(policy(0).retries_code(14) && !policy(0).retries_code(13));
        assert_eq!(policy(0).num_retries, 1);
        assert!(policy(1).retries_code(13));
        assert_eq!(policy(1).num_retries, 4);
        // An invalid vhost policy NACKs even if no route uses it.
        let mut v = vh(&["*"], vec![]);
        v.retry_policy = Some(pb::RetryPolicy {
            num_retries: Some(0),
            ..Default::default()
        });
        assert_eq!(
            parse(&rc(vec![v])).unwrap_err().field,
            "virtual_hosts[0].retry_policy.num_retries"
        );
    }

    #[test]
    fn match_details() {
        let m = pb::RouteMatch {
            case_sensitive: Some(false),
            path_specifier: Some(PathSpecifier::Path("/Pkg.Svc/Get".into())),
            runtime_fraction: Some(
                crate::pb::envoy::config::core::v3::RuntimeFractionalPercent {
                    default_value: Some(FractionalPercent {
                        numerator: 25,
                        denominator: 0,
                    }),
                    runtime_key: "k".into(),
                },
            ),
            query_parameters: vec![pb::QueryParameterMatcher::default()],
            grpc: Some(pb::route_match::GrpcRouteMatchOptions {}),
            ..Default::default()
        };
        let mut ignored = Ignored::default();
        let cfg = RouteConfig::from_proto(
            &rc(vec![vh(&["*"], vec![to_cluster(Some(m), "c")])]),
            &mut ignored,
        )
        .unwrap();
        let rm = &cfg.virtual_hosts[0].routes[0].matcher;
        assert!(rm.path.matches("/pkg.svc/GET"));
        assert_eq!(rm.fraction.unwrap().ppm(), 250_000);
        assert!(rm.has_query_parameters);
        assert_eq!(
            ignored.fields(),
            [
                "virtual_hosts[0].routes[0].match.runtime_fraction.runtime_key",
                "virtual_hosts[0].routes[0].match.grpc"
            ]
        );
        // Unsupported and missing path specifiers NACK.
        let bad = pb::RouteMatch {
            path_specifier: Some(PathSpecifier::PathSeparatedPrefix("/a".into())),
            ..Default::default()
        };
        let e = parse(&rc(vec![vh(&["*"], vec![to_cluster(Some(bad), "c")])])).unwrap_err();
        assert_eq!(
            e.field,
            "virtual_hosts[0].routes[0].match.path_separated_prefix"
        );
        let e = parse(&rc(vec![vh(
            &["*"],
            vec![to_cluster(Some(pb::RouteMatch::default()), "c")],
        )]))
        .unwrap_err();
        assert_eq!(e.field, "virtual_hosts[0].routes[0].match.path_specifier");
        let e = parse(&rc(vec![vh(&["*"], vec![to_cluster(None, "c")])])).unwrap_err();
        assert_eq!(e.field, "virtual_hosts[0].routes[0].match");
    }

    #[test]
    fn regex_rewrite_semantics() {
        let rw = |p: &str, s: &str| RegexRewrite::new(p, s).unwrap();
        assert_eq!(rw("[0-9]+", "#").rewrite("a1b22c"), "a#b#c");
        assert_eq!(rw("(a)(b)", r"\2\1").rewrite("xabyab"), "xbayba");
        assert_eq!(rw("x", r"\\").rewrite("axb"), r"a\b");
        assert_eq!(
            rw("^user-([a-z]+)-.*$", r"\1").rewrite("user-bob-123"),
            "bob"
        );
        assert_eq!(rw("nomatch", "q").rewrite("abc"), "abc");
        assert_eq!(
            RegexRewrite::new("(a)", r"\2").unwrap_err().0,
            "substitution"
        );
        assert_eq!(RegexRewrite::new("a", r"\n").unwrap_err().0, "substitution");
        assert_eq!(RegexRewrite::new("(", "").unwrap_err().0, "pattern.regex");
    }

    #[test]
    fn hash_policies_parse() {
        use pb::route_action::HashPolicy as H;
        use pb::route_action::hash_policy::{self as hp, PolicySpecifier as P};
        let policies = vec![
            H {
                terminal: false,
                policy_specifier: Some(P::Header(hp::Header {
                    header_name: "X-User".into(),
                    regex_rewrite: Some(matcher_pb::RegexMatchAndSubstitute {
                        pattern: Some(matcher_pb::RegexMatcher {
                            regex: "-.*".into(),
                            engine_type: None,
                        }),
                        substitution: String::new(),
                    }),
                })),
            },
            H {
                terminal: true,
                policy_specifier: Some(P::FilterState(hp::FilterState {
                    key: CHANNEL_ID_HASH_KEY.into(),
                })),
            },
            H {
                terminal: false,
                policy_specifier: Some(P::Cookie(hp::Cookie::default())),
            },
        ];
        let mut route = to_cluster(prefix_match(""), "c");
        if let Some(pb::route::Action::Route(ra)) = &mut route.action {
            ra.hash_policy = policies;
        }
        let mut ignored = Ignored::default();
        let cfg =
            RouteConfig::from_proto(&rc(vec![vh(&["*"], vec![route])]), &mut ignored).unwrap();
        let RouteAction::Forward(f) = &cfg.virtual_hosts[0].routes[0].action else {
            panic!()
        };
        assert!(
            matches!(&f.hash_policies[0].kind, HashPolicyKind::Header { name, rewrite: Some(_) } if name == "x-user")
        );
        assert_eq!(f.hash_policies[1].kind, HashPolicyKind::ChannelId);
        assert!(f.hash_policies[1].terminal);
        assert_eq!(
            f.hash_policies[2].kind,
            HashPolicyKind::Unsupported("cookie")
        );
        assert_eq!(
            ignored.fields(),
            ["virtual_hosts[0].routes[0].route.hash_policy[2].cookie"]
        );
    }

    #[test]
    fn filter_overrides_at_every_level() {
        use crate::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
        let fault = prost_types::Any::from_msg(&HttpFault::default()).unwrap();
        let unknown = prost_types::Any {
            type_url: "type.googleapis.com/acme.Unknown".into(),
            value: vec![],
        };
        let mut w = weighted(&[("a", Some(1))]);
        if let pb::route::Action::Route(ra) = &mut w
            && let Some(Cs::WeightedClusters(wc)) = &mut ra.cluster_specifier
        {
            wc.clusters[0]
                .typed_per_filter_config
                .insert("fault".into(), fault.clone());
        }
        let mut route = pb::Route {
            action: Some(w),
            ..to_cluster(prefix_match(""), "x")
        };
        route
            .typed_per_filter_config
            .insert("fault".into(), fault.clone());
        let mut v = vh(&["*"], vec![route]);
        v.typed_per_filter_config.insert("fault".into(), fault);
        let cfg = parse(&rc(vec![v.clone()])).unwrap();
        let vh0 = &cfg.virtual_hosts[0];
        assert!(vh0.filter_overrides.contains_key("fault"));
        assert!(vh0.routes[0].filter_overrides.contains_key("fault"));
        let RouteAction::Forward(f) = &vh0.routes[0].action else {
            panic!()
        };
        let ClusterSpecifier::Weighted(wc) = &f.cluster else {
            panic!()
        };
        assert!(wc.clusters()[0].filter_overrides.contains_key("fault"));
        // A required unknown override NACKs, naming where it was.
        v.routes[0]
            .typed_per_filter_config
            .insert("acme".into(), unknown);
        let e = parse(&rc(vec![v])).unwrap_err();
        assert_eq!(
            e.field,
            "virtual_hosts[0].routes[0].typed_per_filter_config[acme]"
        );
    }

    #[test]
    fn garbage_never_panics() {
        // Arbitrary bytes decoded as a RouteConfiguration either validate or fail cleanly.
        use prost::Message;
        let mut rng = crate::rng::Rng::new(crate::rng::Seed(11));
        for _ in 0..2000 {
            let len = rng.below(64) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
            if let Ok(m) = pb::RouteConfiguration::decode(bytes.as_slice()) {
                let _ = RouteConfig::from_proto(&m, &mut Ignored::default());
            }
        }
    }
}
