//! `cargo bench -p skiff-benches --bench core`: micro-benchmarks of skiff-core's routing,
//! load balancing and xDS apply paths, plus allocation counts and memory held.
//!
//! Criterion measures the times; this file also counts allocations with a counting global
//! allocator (`stats_alloc`), takes the few very slow measurements by hand, and writes every
//! figure with its goal to `<target>/skiff-bench/core.json`, then prints a summary table.
//! See `benches/README.md`.

use std::alloc::System;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkGroup, Criterion, SamplingMode, measurement::WallTime};
use prost::Message;
use skiff_benches::report::{self, Goal, Measurement, Report};
use skiff_benches::table::{self, Requests, Table};
use skiff_benches::{fixtures, xds};
use skiff_core::balancer::{LbPlan, MAX_RING_SIZE, PickContext, PickResult, Picker, PlanOptions};
use skiff_core::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use skiff_core::resource::endpoint::EndpointsConfig;
use skiff_core::resource::endpoint_validate::validate_cluster_load_assignment;
use skiff_core::resource::lb_policy::LbPolicy;
use skiff_core::resource::{Ignored, Resource};
use skiff_core::rng::{Rng, Seed};
use skiff_core::router::{SliceHeaders, route, select_virtual_host};
use skiff_core::xds::ResourceType;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, Stats, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Endpoints in the big EDS update.
const EDS_N: usize = 100_000;
/// Clusters in the big CDS update.
const CDS_N: usize = 10_000;

// ---- harness ---------------------------------------------------------------------------------

struct Ctx {
    criterion: Criterion,
    report: Report,
    criterion_dir: PathBuf,
    started: SystemTime,
    filter: Option<regex::Regex>,
    /// `cargo test --benches` / `cargo bench -- --test`: run everything once, write nothing.
    test_mode: bool,
    /// `--list`: criterion lists, we do nothing.
    list_mode: bool,
}

impl Ctx {
    fn new() -> Ctx {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let has = |f: &str| args.iter().any(|a| a == f);
        let test_mode = has("--test") || !has("--bench");
        let list_mode = has("--list");
        // The positional filter, as criterion reads it (a regex over `group/name`).
        let mut filter = None;
        let mut skip_value = false;
        for a in &args {
            if skip_value {
                skip_value = false;
                continue;
            }
            if a.starts_with('-') {
                // Options of criterion's CLI that take a value.
                skip_value = matches!(
                    a.as_str(),
                    "--save-baseline"
                        | "--baseline"
                        | "--baseline-lenient"
                        | "--load-baseline"
                        | "--sample-size"
                        | "--warm-up-time"
                        | "--measurement-time"
                        | "--nresamples"
                        | "--noise-threshold"
                        | "--confidence-level"
                        | "--significance-level"
                        | "--profile-time"
                        | "--plotting-backend"
                        | "--output-format"
                        | "--format"
                        | "--color"
                        | "-c"
                        | "-s"
                );
                continue;
            }
            filter = regex::Regex::new(a).ok();
            break;
        }
        let criterion_dir = report::target_dir().join("criterion");
        let criterion = Criterion::default()
            .output_directory(&criterion_dir)
            .nresamples(20_000)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .sample_size(50)
            .without_plots()
            .configure_from_args();
        Ctx {
            criterion,
            report: Report::default(),
            criterion_dir,
            started: SystemTime::now(),
            filter,
            test_mode,
            list_mode,
        }
    }

    /// Whether the benchmark `name` runs under the command-line filter.
    fn selected(&self, name: &str) -> bool {
        !self.list_mode && self.filter.as_ref().is_none_or(|f| f.is_match(name))
    }

    fn any_selected(&self, names: &[&str]) -> bool {
        names.iter().any(|n| self.selected(n))
    }

    /// Records a criterion benchmark that just ran (if it did, and was not a `--test` run).
    fn record(&mut self, name: &str, m: Meta) {
        let Some((median, samples)) =
            report::criterion_median_ns(&self.criterion_dir, name, self.started)
        else {
            return;
        };
        let scale = m.divide_by.max(1.0);
        self.report.add(
            name,
            Measurement {
                median_ns: Some(median / scale),
                allocations: m.allocs.map(|(a, _)| a),
                bytes: m.allocs.map(|(_, b)| b),
                goal: m.goal,
                per: m.per.into(),
                method: format!("criterion, median of {samples} sample means"),
                note: m.note.into(),
            },
        );
    }

    /// Records `name` as `from`'s time divided by `m.divide_by` (same samples), if `from` ran.
    fn derive(&mut self, name: &str, from: &str, m: Meta) {
        let Some(base) = self.report.get(from).cloned() else {
            return;
        };
        let scale = m.divide_by.max(1.0);
        self.report.add(
            name,
            Measurement {
                median_ns: base.median_ns.map(|t| t / scale),
                allocations: m.allocs.map(|(a, _)| a),
                bytes: m.allocs.map(|(_, b)| b),
                goal: m.goal,
                per: m.per.into(),
                method: base.method,
                note: m.note.into(),
            },
        );
    }

    /// Records a measurement taken by hand (`runs` timed runs, median).
    fn record_manual(&mut self, name: &str, times: &[Duration], m: Meta) {
        if self.test_mode {
            return;
        }
        let scale = m.divide_by.max(1.0);
        self.report.add(
            name,
            Measurement {
                median_ns: report::median_duration_ns(times).map(|t| t / scale),
                allocations: m.allocs.map(|(a, _)| a),
                bytes: m.allocs.map(|(_, b)| b),
                goal: m.goal,
                per: m.per.into(),
                method: format!("manual, median of {} runs", times.len()),
                note: m.note.into(),
            },
        );
    }

    /// Records a memory figure (bytes live per item).
    fn record_memory(
        &mut self,
        name: &str,
        live: &Live,
        items: usize,
        goal: Goal,
        per: &str,
        note: &str,
    ) {
        if self.test_mode {
            return;
        }
        let n = items.max(1) as f64;
        self.report.add(
            name,
            Measurement {
                median_ns: None,
                allocations: Some(live.blocks as f64 / n),
                bytes: Some(live.bytes as f64 / n),
                goal,
                per: per.into(),
                method: "counting allocator: live bytes after minus before".into(),
                note: note.into(),
            },
        );
    }

    fn group(&mut self, name: &str) -> BenchmarkGroup<'_, WallTime> {
        self.criterion.benchmark_group(name)
    }
}

/// How to file a criterion result.
struct Meta {
    goal: Goal,
    per: &'static str,
    note: &'static str,
    /// (allocations, bytes allocated) per operation, counted separately.
    allocs: Option<(f64, f64)>,
    /// Divide the per-iteration time by this (e.g. endpoints per update).
    divide_by: f64,
}

impl Meta {
    fn new(goal: Goal, per: &'static str) -> Meta {
        Meta {
            goal,
            per,
            note: "",
            allocs: None,
            divide_by: 1.0,
        }
    }
    fn note(mut self, note: &'static str) -> Meta {
        self.note = note;
        self
    }
    fn allocs(mut self, a: (f64, f64)) -> Meta {
        self.allocs = Some(a);
        self
    }
    fn per_item(mut self, n: usize) -> Meta {
        self.divide_by = n as f64;
        self
    }
}

// ---- allocation counting ---------------------------------------------------------------------

fn allocs_of(s: &Stats) -> usize {
    s.allocations + s.reallocations
}

/// Allocations and bytes allocated per call of `f`, over `n` calls (after `f` ran warm).
fn count_allocs<R>(n: usize, mut f: impl FnMut() -> R) -> (f64, f64) {
    for _ in 0..n.min(1000) {
        black_box(f());
    }
    let region = Region::new(GLOBAL);
    for _ in 0..n {
        black_box(f());
    }
    let s = region.change();
    // `bytes_allocated` already includes what reallocations grew by.
    (
        allocs_of(&s) as f64 / n as f64,
        s.bytes_allocated as f64 / n as f64,
    )
}

/// Heap blocks and bytes live now, relative to a region's start.
#[derive(Debug, Clone, Copy)]
struct Live {
    bytes: i64,
    blocks: i64,
}

fn live_since(region: &Region<'_, System>) -> Live {
    let s = region.change();
    Live {
        // stats_alloc adds a reallocation's growth to `bytes_allocated` (and its shrinkage to
        // `bytes_deallocated`), so live bytes are simply the difference.
        bytes: s.bytes_allocated as i64 - s.bytes_deallocated as i64,
        blocks: s.allocations as i64 - s.deallocations as i64,
    }
}

/// Times `runs` calls of `f` (each returns the time of its measured part).
fn manual(runs: usize, mut f: impl FnMut() -> Duration) -> Vec<Duration> {
    (0..runs).map(|_| f()).collect()
}

fn heavy(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sampling_mode(SamplingMode::Flat);
}

// ---- helpers ---------------------------------------------------------------------------------

fn endpoints_of(any: &prost_types::Any) -> Arc<EndpointsConfig> {
    table::endpoints_config(any)
}

/// Plan + picker with every endpoint eligible: what an EDS/CDS update rebuilds.
fn plan_and_picker(
    eps: &EndpointsConfig,
    policy: &LbPolicy,
    opts: &PlanOptions,
    rng: &mut Rng,
) -> Picker {
    let plan = LbPlan::new(eps, policy, opts, rng);
    let eligible = vec![true; plan.endpoint_count()];
    Picker::new(Arc::new(plan), &eligible, rng)
}

fn hashes(n: usize) -> Vec<u64> {
    let mut rng = Rng::new(Seed(99));
    (0..n).map(|_| rng.next_u64()).collect()
}

// ---- routing decision ------------------------------------------------------------------------

fn bench_decision(ctx: &mut Ctx) {
    let names = [
        "decision/route_cluster_endpoint",
        "decision/route_cluster_endpoint_resolved",
        "decision/route_only",
        "decision/cluster_lookup_by_name",
        "router/select_virtual_host",
        "router/route_second_route",
        "router/route_catch_all",
        "memory/realistic_table",
    ];
    if !ctx.any_selected(&names) {
        return;
    }
    let (rc, clusters, endpoints) = table::encoded();
    let mut rng = Rng::new(Seed(1));

    // Memory held by the whole validated table and its pickers.
    let region = Region::new(GLOBAL);
    let table = Table::build(&rc, &clusters, &endpoints, &mut rng);
    let live = live_since(&region);
    ctx.record_memory(
        "memory/realistic_table",
        &live,
        1,
        Goal::MaxBytes(2.0 * 1024.0 * 1024.0),
        "whole table",
        "RouteConfig (100 routes) + 100 ClusterConfig + 100 EndpointsConfig (1,000 endpoints) + \
         100 LbPlan/Picker + in-flight counters, as live heap bytes (G6: <= 2 MiB)",
    );

    let requests = Requests::new(512);
    let slices = requests.header_slices();
    let headers: Vec<SliceHeaders<'_>> = slices.iter().map(|s| SliceHeaders::new(s)).collect();
    let paths = requests.paths();
    let n = paths.len();
    let vhost = table.vhost();
    let states: Vec<&table::ClusterState> = table.names.iter().map(|n| &table.by_name[n]).collect();

    // Every request of the mix routes and picks an endpoint, and both variants agree on the
    // cluster.
    let mut depth = 0usize;
    for k in 0..n {
        let got = table::decide(&table, vhost, paths[k], &headers[k], &mut rng);
        assert!(
            matches!(got, Some(PickResult::Pick(_))),
            "request {k} got {got:?}"
        );
        let got = table::decide_resolved(&table, &states, vhost, paths[k], &headers[k], &mut rng);
        assert!(
            matches!(got, Some(PickResult::Pick(_))),
            "request {k} got {got:?}"
        );
        let head = skiff_core::router::RequestHead {
            path: paths[k],
            headers: &headers[k],
            channel_id: 0x5eed,
        };
        depth += route(vhost, &head, &mut rng).map_or(0, |d| d.route_index + 1);
    }
    let mean_depth = depth as f64 / n as f64;
    eprintln!("decision: {n} requests in the mix, mean routes examined {mean_depth:.1}");

    let mut i = 0usize;
    let allocs = count_allocs(200_000, || {
        i = (i + 1) % n;
        table::decide(&table, vhost, paths[i], &headers[i], &mut rng)
    });
    let allocs_resolved = count_allocs(200_000, || {
        i = (i + 1) % n;
        table::decide_resolved(&table, &states, vhost, paths[i], &headers[i], &mut rng)
    });
    let allocs_route = count_allocs(200_000, || {
        i = (i + 1) % n;
        let head = skiff_core::router::RequestHead {
            path: paths[i],
            headers: &headers[i],
            channel_id: 0x5eed,
        };
        route(vhost, &head, &mut rng).map(|d| d.route_index).ok()
    });

    // The names the mix routes to, for the lookup-alone figure.
    let routed: Vec<&str> = (0..n)
        .filter_map(|k| {
            let head = skiff_core::router::RequestHead {
                path: paths[k],
                headers: &headers[k],
                channel_id: 0x5eed,
            };
            route(vhost, &head, &mut rng).ok()?.cluster()
        })
        .collect();
    let m = routed.len();

    let mut g = ctx.group("decision");
    g.bench_function("cluster_lookup_by_name", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % m;
            table
                .by_name
                .get(black_box(routed[i]))
                .map(|s| s.picker.has_usable_endpoint())
        })
    });
    g.bench_function("route_cluster_endpoint", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % n;
            table::decide(&table, vhost, paths[i], &headers[i], &mut rng)
        })
    });
    g.bench_function("route_cluster_endpoint_resolved", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % n;
            table::decide_resolved(&table, &states, vhost, paths[i], &headers[i], &mut rng)
        })
    });
    g.bench_function("route_only", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % n;
            let head = skiff_core::router::RequestHead {
                path: paths[i],
                headers: &headers[i],
                channel_id: 0x5eed,
            };
            route(vhost, &head, &mut rng).map(|d| d.route_index).ok()
        })
    });
    g.finish();
    ctx.record(
        "decision/route_cluster_endpoint",
        Meta::new(Goal::MaxNsAndAllocs(150.0, 0.0), "decision")
            .allocs(allocs)
            .note(
                "100 routes (path prefix/exact/regex + exact/prefix/present/regex header \
                 matchers, weighted splits, header hash policies), 100 clusters (60% RR, 20% \
                 least_request, 20% ring_hash), 1,000 endpoints in 2 zones per cluster; all built \
                 as xDS protobufs and validated. Per decision: route() + cluster lookup by name \
                 in a BTreeMap (as Snapshot keys clusters) + Picker::pick. 512 requests cycled, \
                 ~7 metadata entries each; median over sample means, not a per-call p50.",
            ),
    );
    ctx.record(
        "decision/route_cluster_endpoint_resolved",
        Meta::new(Goal::None, "decision")
            .allocs(allocs_resolved)
            .note(
                "Same, with the cluster pre-resolved per (route, weighted entry) instead of looked \
             up by name: what a data plane can precompute when the snapshot changes.",
            ),
    );
    ctx.record(
        "decision/cluster_lookup_by_name",
        Meta::new(Goal::None, "lookup").allocs((0.0, 0.0)).note(
            "BTreeMap<String, ClusterState>::get of the routed cluster name alone (100 names \
             sharing the `outbound|7000|` prefix).",
        ),
    );
    ctx.record(
        "decision/route_only",
        Meta::new(Goal::None, "decision").allocs(allocs_route).note(
            "route() alone (first-match scan, weighted cluster draw, request hash) over the same mix.",
        ),
    );

    // Where the time goes: the same route() call for a request that matches the second route
    // (the first service's default route) and for one that falls through to the catch-all
    // (route 100, after two regex routes).
    let shallow = ["/acme.pkg0.v1.Service0/Method1".to_string()];
    let deep = ["/acme.unknown.v1.Other/Call".to_string()];
    let plain: Vec<(&str, &str)> = slices[0]
        .iter()
        .filter(|(n, _)| !n.starts_with("x-tenant") && !n.starts_with("x-version"))
        .copied()
        .collect();
    let plain = SliceHeaders::new(&plain);
    for (label, path, want) in [
        ("route_second_route", &shallow[0], 1usize),
        ("route_catch_all", &deep[0], fixtures::ROUTES - 1),
    ] {
        let full = format!("router/{label}");
        if !ctx.selected(&full) {
            continue;
        }
        let head = skiff_core::router::RequestHead {
            path,
            headers: &plain,
            channel_id: 0x5eed,
        };
        let got = route(vhost, &head, &mut rng).map(|d| d.route_index);
        assert_eq!(got, Ok(want), "{label}");
        let allocs = count_allocs(100_000, || route(vhost, &head, &mut rng).is_ok());
        let mut g = ctx.group("router");
        g.bench_function(label, |b| {
            b.iter(|| route(vhost, black_box(&head), &mut rng).map(|d| d.route_index))
        });
        g.finish();
        ctx.record(
            &full,
            Meta::new(Goal::None, "decision")
                .allocs(allocs)
                .note(if want == 1 {
                    "route() for a request matched by the 2nd route: the fixed cost of a decision."
                } else {
                    "route() for a request no specific route matches: scans all 100 routes \
                 (98 literal path matchers, a regex path and a regex header matcher) to the \
                 catch-all; (this - route_second_route) / 98 ~ cost per route examined."
                }),
        );
    }

    let routes = Arc::clone(&table.routes);
    let allocs_vh = count_allocs(10_000, || select_virtual_host(&routes, fixtures::AUTHORITY));
    let mut g = ctx.group("router");
    g.bench_function("select_virtual_host", |b| {
        b.iter(|| select_virtual_host(&routes, black_box(fixtures::AUTHORITY)))
    });
    g.finish();
    ctx.record(
        "router/select_virtual_host",
        Meta::new(Goal::None, "channel")
            .allocs(allocs_vh)
            .note("Once per channel, not per RPC: 12 istiod-style domains."),
    );
}

// ---- per-balancer pick -----------------------------------------------------------------------

fn bench_pick(ctx: &mut Ctx) {
    let policies: [(&str, LbPolicy, f64); 7] = [
        ("round_robin", LbPolicy::RoundRobin, 40.0),
        ("weighted_round_robin", LbPolicy::WeightedRoundRobin, 0.0),
        ("random", LbPolicy::Random, 0.0),
        (
            "least_request_p2c",
            LbPolicy::LeastRequest { choice_count: 2 },
            40.0,
        ),
        (
            "pick_first",
            LbPolicy::PickFirst {
                shuffle_address_list: false,
            },
            0.0,
        ),
        (
            "ring_hash",
            LbPolicy::RingHash {
                min_ring_size: 1024,
                max_ring_size: MAX_RING_SIZE,
                request_hash_header: None,
            },
            60.0,
        ),
        (
            "maglev",
            LbPolicy::Maglev {
                table_size: skiff_core::balancer::DEFAULT_MAGLEV_TABLE_SIZE,
            },
            60.0,
        ),
    ];
    if !policies
        .iter()
        .any(|(n, _, _)| ctx.selected(&format!("pick/{n}")))
    {
        return;
    }
    // 1,000 endpoints in 4 zones of 250; weights 1..=4 (only WRR and the hash tables use them).
    let any = fixtures::pack(&fixtures::load_assignment(
        "outbound|7000||pick.default.svc.cluster.local",
        0,
        4,
        250,
        |i| 1 + (i % 4) as u32,
    ));
    let eps = endpoints_of(&any);
    let in_flight: Vec<AtomicU32> = (0..1000)
        .map(|i| AtomicU32::new((i * 7 % 5) as u32))
        .collect();
    let hs = hashes(1024);
    let mut rng = Rng::new(Seed(3));
    for (name, policy, goal_ns) in policies {
        let full = format!("pick/{name}");
        if !ctx.selected(&full) {
            continue;
        }
        let picker = plan_and_picker(&eps, &policy, &PlanOptions::default(), &mut rng);
        let hashing = matches!(policy, LbPolicy::RingHash { .. } | LbPolicy::Maglev { .. });
        let lr = matches!(policy, LbPolicy::LeastRequest { .. });
        let mut i = 0usize;
        let mut pick = |rng: &mut Rng| {
            i = (i + 1) & 1023;
            let mut c = PickContext::new(rng);
            if hashing {
                c = c.with_hash(Some(hs[i]));
            }
            if lr {
                c = c.with_in_flight(&in_flight[..]);
            }
            picker.pick(&mut c)
        };
        assert!(matches!(pick(&mut rng), PickResult::Pick(_)));
        let allocs = count_allocs(100_000, || pick(&mut rng));
        let mut g = ctx.group("pick");
        g.bench_function(name, |b| b.iter(|| pick(&mut rng)));
        g.finish();
        let goal = if goal_ns > 0.0 {
            Goal::MaxNs(goal_ns)
        } else {
            Goal::None
        };
        ctx.record(
            &full,
            Meta::new(goal, "pick").allocs(allocs).note(
                "Picker::pick alone: 1,000 eligible endpoints in 4 zones (locality pick + \
                 policy), weights 1..=4; hash policies get a precomputed request hash; \
                 least_request reads shared AtomicU32 in-flight counters.",
            ),
        );
    }
}

// ---- EDS -------------------------------------------------------------------------------------

fn bench_eds(ctx: &mut Ctx) {
    let names = [
        "eds_100k/apply",
        "eds_100k/decode",
        "eds_100k/validate",
        "eds_100k/plan_picker",
        "eds_100k/xds_client_apply",
        "eds_100k/xds_client_only",
        "eds_100k/one_endpoint_change",
        "memory/per_endpoint",
        "memory/per_endpoint_xds_cache",
    ];
    if !ctx.any_selected(&names) {
        return;
    }
    let t = Instant::now();
    let name = xds::big_eds_name();
    // A and C share no endpoint (C's addresses are all different); B is A with one endpoint
    // changed.
    let cla_a = xds::big_eds(EDS_N, 0);
    let cla_b = xds::big_eds(EDS_N, 1);
    let mut cla_c =
        fixtures::load_assignment(&name, 1, xds::EDS_ZONES, EDS_N / xds::EDS_ZONES, |_| 1);
    cla_c.cluster_name = name.clone();
    let any_a = fixtures::pack(&cla_a);
    let any_b = fixtures::pack(&cla_b);
    let any_c = fixtures::pack(&cla_c);
    drop((cla_a, cla_b, cla_c));
    let frame = |any: &prost_types::Any, v: &str| {
        xds::framed_response(ResourceType::ClusterLoadAssignment, vec![any.clone()], v)
    };
    let (resp_a, resp_b, resp_c) = (frame(&any_a, "a"), frame(&any_b, "b"), frame(&any_c, "c"));
    eprintln!(
        "eds_100k: {} endpoints, {} bytes encoded ({:.1} B/endpoint), fixtures built in {:.2?}; \
         size_of LbEndpoint (prost) = {} B, Endpoint (validated) = {} B",
        EDS_N,
        any_a.value.len(),
        any_a.value.len() as f64 / EDS_N as f64,
        t.elapsed(),
        std::mem::size_of::<skiff_core::pb::envoy::config::endpoint::v3::LbEndpoint>(),
        std::mem::size_of::<skiff_core::resource::endpoint::Endpoint>(),
    );
    let rr = LbPolicy::RoundRobin;
    let opts = PlanOptions::default();
    let mut rng = Rng::new(Seed(5));

    // Memory: validated endpoints + plan + picker, per endpoint.
    if ctx.selected("memory/per_endpoint") {
        let region = Region::new(GLOBAL);
        let eps = endpoints_of(&any_a);
        let after_eps = live_since(&region);
        let picker = plan_and_picker(&eps, &rr, &opts, &mut rng);
        let live = live_since(&region);
        eprintln!(
            "memory/per_endpoint: EndpointsConfig {:.1} B/endpoint, LbPlan+Picker {:.1} B/endpoint",
            after_eps.bytes as f64 / EDS_N as f64,
            (live.bytes - after_eps.bytes) as f64 / EDS_N as f64
        );
        drop((picker, eps));
        ctx.record_memory(
            "memory/per_endpoint",
            &live,
            EDS_N,
            Goal::MaxBytes(400.0),
            "endpoint",
            "Validated EndpointsConfig + round-robin LbPlan + Picker for 100k endpoints in 10 \
             zones, live heap bytes / 100k (allocations column = live heap blocks per endpoint). \
             A data plane adds its own per-endpoint state (eligible mask, in-flight counter, \
             subchannel).",
        );
    }
    if ctx.selected("memory/per_endpoint_xds_cache") {
        let mut c = xds::Client::watching(ResourceType::ClusterLoadAssignment, &name);
        let region = Region::new(GLOBAL);
        let d = c.feed(&resp_a);
        assert_eq!(d.updated, 1, "{:?}", d.nacks);
        let after_client = live_since(&region);
        let Some(Resource::ClusterLoadAssignment(eps)) = c
            .client
            .resource(ResourceType::ClusterLoadAssignment, &name)
            .cloned()
        else {
            panic!("no endpoints cached")
        };
        let picker = plan_and_picker(&eps, &rr, &opts, &mut rng);
        let live = live_since(&region);
        eprintln!(
            "memory/per_endpoint_xds_cache: XdsClient cache {:.1} B/endpoint (validated + raw Any \
             + decoder buffer), plus LbPlan+Picker {:.1} B/endpoint",
            after_client.bytes as f64 / EDS_N as f64,
            (live.bytes - after_client.bytes) as f64 / EDS_N as f64
        );
        drop((picker, eps));
        ctx.record_memory(
            "memory/per_endpoint_xds_cache",
            &live,
            EDS_N,
            Goal::MaxBytes(400.0),
            "endpoint",
            "What the process holds after receiving the 100k-endpoint EDS response through \
             XdsClient (cached validated config + the raw Any kept for CSDS + anything the stream \
             decoder keeps) plus LbPlan + Picker, per endpoint.",
        );
    }

    // Allocation counts (one warm run each).
    let allocs_apply = count_allocs(2, || {
        let eps = endpoints_of(&any_c);
        plan_and_picker(&eps, &rr, &opts, &mut rng)
    });
    let per_ep = |(a, b): (f64, f64)| (a / EDS_N as f64, b / EDS_N as f64);

    let mut g = ctx.group("eds_100k");
    heavy(&mut g);
    g.throughput(criterion::Throughput::Elements(EDS_N as u64));
    // decode + validate + LbPlan + Picker, replacing the previous state (which is dropped).
    g.bench_function("apply", |b| {
        b.iter_custom(|iters| {
            let mut state = Some((endpoints_of(&any_a), None::<Picker>));
            let mut total = Duration::ZERO;
            for k in 0..iters {
                let any = if k.is_multiple_of(2) { &any_c } else { &any_a };
                let t = Instant::now();
                let eps = endpoints_of(any);
                let picker = plan_and_picker(&eps, &rr, &opts, &mut rng);
                state = Some((eps, Some(picker)));
                total += t.elapsed();
            }
            drop(state);
            total
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| ClusterLoadAssignment::decode(any_a.value.as_slice()).map(|m| m.endpoints.len()))
    });
    let decoded = ClusterLoadAssignment::decode(any_a.value.as_slice()).expect("decodes");
    g.bench_function("validate", |b| {
        b.iter(|| {
            let mut ignored = Ignored::default();
            validate_cluster_load_assignment(&decoded, &mut ignored).map(|e| e.localities.len())
        })
    });
    let eps_a = endpoints_of(&any_a);
    g.bench_function("plan_picker", |b| {
        b.iter(|| plan_and_picker(&eps_a, &rr, &opts, &mut rng))
    });
    g.finish();

    // Through the real ADS path: gRPC-framed DiscoveryResponse into XdsClient::handle_ads_data.
    let mut client = xds::Client::watching(ResourceType::ClusterLoadAssignment, &name);
    let d = client.feed(&resp_a);
    assert_eq!(d.updated, 1, "EDS accepted: {:?}", d.nacks);
    let apply_via_client = |client: &mut xds::Client, bytes: &[u8], rng: &mut Rng, plan: bool| {
        let d = client.feed(bytes);
        debug_assert_eq!(d.updated, 1);
        if !plan {
            return None;
        }
        match client
            .client
            .resource(ResourceType::ClusterLoadAssignment, &name)
        {
            Some(Resource::ClusterLoadAssignment(eps)) => {
                Some(plan_and_picker(eps, &rr, &opts, rng))
            }
            _ => None,
        }
    };
    let mut flip = false;
    let allocs_client = count_allocs(2, || {
        flip = !flip;
        apply_via_client(
            &mut client,
            if flip { &resp_c } else { &resp_a },
            &mut rng,
            true,
        )
    });
    let allocs_one = count_allocs(2, || {
        flip = !flip;
        apply_via_client(
            &mut client,
            if flip { &resp_b } else { &resp_a },
            &mut rng,
            true,
        )
    });
    let mut g = ctx.group("eds_100k");
    heavy(&mut g);
    g.bench_function("xds_client_apply", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut keep = None;
            for _ in 0..iters {
                flip = !flip;
                let bytes = if flip { &resp_c } else { &resp_a };
                let t = Instant::now();
                keep = apply_via_client(&mut client, bytes, &mut rng, true);
                total += t.elapsed();
            }
            drop(keep);
            total
        })
    });
    g.bench_function("xds_client_only", |b| {
        b.iter(|| {
            flip = !flip;
            apply_via_client(
                &mut client,
                if flip { &resp_c } else { &resp_a },
                &mut rng,
                false,
            )
        })
    });
    g.bench_function("one_endpoint_change", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut keep = None;
            for _ in 0..iters {
                flip = !flip;
                let bytes = if flip { &resp_b } else { &resp_a };
                let t = Instant::now();
                keep = apply_via_client(&mut client, bytes, &mut rng, true);
                total += t.elapsed();
            }
            drop(keep);
            total
        })
    });
    g.finish();

    ctx.record(
        "eds_100k/apply",
        Meta::new(Goal::None, "update of 100k endpoints")
            .allocs(allocs_apply)
            .note(
                "resource::decode (protobuf decode + validate) + LbPlan::new + Picker::new (round \
             robin, all eligible) of a 100k-endpoint ClusterLoadAssignment (10 zones), replacing \
             and dropping the previous 100k-endpoint state.",
            ),
    );
    ctx.derive(
        "eds_100k/apply_per_endpoint",
        "eds_100k/apply",
        Meta::new(Goal::MaxNs(500.0), "endpoint")
            .allocs(per_ep(allocs_apply))
            .per_item(EDS_N)
            .note("eds_100k/apply divided by 100k (G8: <= 0.5 µs per endpoint incl. decode)."),
    );
    for (n, note) in [
        (
            "decode",
            "prost decode of the ClusterLoadAssignment bytes alone (and drop).",
        ),
        (
            "validate",
            "validate_cluster_load_assignment alone on the decoded message (and drop).",
        ),
        (
            "plan_picker",
            "LbPlan::new + Picker::new (round robin) alone from the validated config.",
        ),
    ] {
        ctx.record(
            &format!("eds_100k/{n}"),
            Meta::new(Goal::None, "update of 100k endpoints").note(note),
        );
    }
    ctx.record(
        "eds_100k/xds_client_apply",
        Meta::new(Goal::None, "update of 100k endpoints")
            .allocs(allocs_client)
            .note(
                "XdsClient::handle_ads_data of a gRPC-framed SotW DiscoveryResponse carrying the \
                 100k-endpoint ClusterLoadAssignment (every endpoint different from the cached \
                 one) + draining outputs (ACK) + LbPlan::new + Picker::new.",
            ),
    );
    ctx.derive(
        "eds_100k/xds_client_apply_per_endpoint",
        "eds_100k/xds_client_apply",
        Meta::new(Goal::MaxNs(500.0), "endpoint")
            .per_item(EDS_N)
            .allocs(per_ep(allocs_client))
            .note("eds_100k/xds_client_apply divided by 100k."),
    );
    ctx.record(
        "eds_100k/xds_client_only",
        Meta::new(Goal::None, "update of 100k endpoints").note(
            "XdsClient::handle_ads_data + drain alone (frame decode, DiscoveryResponse decode, \
             Any copy, CLA decode + validate, cache update, ACK), no balancer rebuild.",
        ),
    );
    ctx.record(
        "eds_100k/one_endpoint_change",
        Meta::new(Goal::MaxNs(50_000.0), "one-endpoint change")
            .allocs(allocs_one)
            .note(
                "A 100k-endpoint cluster where one endpoint changes, through XdsClient (SotW \
                 sends the whole resource) + LbPlan/Picker rebuild. There is no incremental \
                 path: the cost is a full decode + revalidation + rebuild.",
            ),
    );
}

// ---- CDS -------------------------------------------------------------------------------------

fn bench_cds(ctx: &mut Ctx) {
    let names = [
        "cds_10k/xds_client_apply",
        "cds_10k/decode_validate",
        "memory/per_cluster",
        "memory/per_cluster_xds_cache",
    ];
    if !ctx.any_selected(&names) {
        return;
    }
    let t = Instant::now();
    let cluster_names = xds::cds_names(CDS_N);
    let anys_a = xds::cds_clusters(&cluster_names, 0);
    let anys_b = xds::cds_clusters(&cluster_names, 1);
    let resp_a = xds::framed_response(ResourceType::Cluster, anys_a.clone(), "a");
    let resp_b = xds::framed_response(ResourceType::Cluster, anys_b.clone(), "b");
    let mut client = xds::cds_client(&cluster_names);
    eprintln!(
        "cds_10k: {} clusters, {} bytes framed ({:.0} B/cluster), fixtures + LDS/RDS in {:.2?}",
        CDS_N,
        resp_a.len(),
        resp_a.len() as f64 / CDS_N as f64,
        t.elapsed()
    );

    let decode_all =
        |anys: &[prost_types::Any]| -> Vec<Arc<skiff_core::resource::cluster::ClusterConfig>> {
            anys.iter().map(table::cluster_config).collect()
        };

    if ctx.selected("memory/per_cluster") {
        let region = Region::new(GLOBAL);
        let by_name: std::collections::BTreeMap<String, _> = decode_all(&anys_a)
            .into_iter()
            .map(|c| (c.name.clone(), c))
            .collect();
        let live = live_since(&region);
        drop(by_name);
        ctx.record_memory(
            "memory/per_cluster",
            &live,
            CDS_N,
            Goal::MaxBytes(4096.0),
            "cluster",
            "10k validated istiod-shaped clusters (EDS, mTLS via certificate providers, circuit \
             breaker, outlier detection; 20% ring hash, 20% least request) in a BTreeMap by name \
             (as Snapshot holds them), live heap bytes / 10k. Excludes the cluster's endpoints \
             and balancer (see memory/per_endpoint).",
        );
    }
    if ctx.selected("memory/per_cluster_xds_cache") {
        let region = Region::new(GLOBAL);
        let d = client.feed(&resp_a);
        assert_eq!(d.updated, CDS_N, "CDS accepted: {:?}", d.nacks.first());
        let live = live_since(&region);
        ctx.record_memory(
            "memory/per_cluster_xds_cache",
            &live,
            CDS_N,
            Goal::MaxBytes(4096.0),
            "cluster",
            "Heap growth of an XdsClient (subscribed to the 10k clusters through LDS -> RDS) when \
             it accepts the CDS response: cached validated cluster + raw Any + version strings + \
             the EDS subscription entry the cascade creates, per cluster.",
        );
    } else {
        let d = client.feed(&resp_a);
        assert_eq!(d.updated, CDS_N, "CDS accepted: {:?}", d.nacks.first());
    }

    let mut flip = false;
    let allocs_client = count_allocs(2, || {
        flip = !flip;
        client.feed(if flip { &resp_b } else { &resp_a }).updated
    });
    let allocs_dv = count_allocs(2, || decode_all(&anys_a).len());

    let mut g = ctx.group("cds_10k");
    heavy(&mut g);
    g.bench_function("xds_client_apply", |b| {
        b.iter(|| {
            flip = !flip;
            client.feed(if flip { &resp_b } else { &resp_a }).updated
        })
    });
    g.bench_function("decode_validate", |b| b.iter(|| decode_all(&anys_a).len()));
    g.finish();
    ctx.record(
        "cds_10k/xds_client_apply",
        Meta::new(Goal::MaxNs(100e6), "update of 10k clusters")
            .allocs(allocs_client)
            .note(
                "One gRPC-framed SotW DiscoveryResponse with 10k clusters (every one changed) into \
                 XdsClient::handle_ads_data: decode, validate, cache, cascade (10k EDS names), \
                 ACK with 10k resource names.",
            ),
    );
    ctx.record(
        "cds_10k/decode_validate",
        Meta::new(Goal::MaxNs(100e6), "update of 10k clusters")
            .allocs(allocs_dv)
            .note("resource::decode (protobuf decode + validate_cluster) in a loop over 10k Anys."),
    );
}

// ---- hash table rebuilds ---------------------------------------------------------------------

fn bench_rebuilds(ctx: &mut Ctx) {
    let names = [
        "rebuild/maglev_1000_hosts",
        "rebuild/ring_hash_default_1000_hosts",
        "rebuild/ring_hash_max_1000_hosts",
    ];
    if !ctx.any_selected(&names) {
        return;
    }
    let any = fixtures::pack(&fixtures::load_assignment(
        "outbound|7000||hash.default.svc.cluster.local",
        0,
        1,
        1000,
        |_| 1,
    ));
    let eps = endpoints_of(&any);
    let mut rng = Rng::new(Seed(11));
    let maglev = LbPolicy::Maglev {
        table_size: skiff_core::balancer::DEFAULT_MAGLEV_TABLE_SIZE,
    };
    let ring_default = LbPolicy::RingHash {
        min_ring_size: 1024,
        max_ring_size: MAX_RING_SIZE,
        request_hash_header: None,
    };
    let ring_max = LbPolicy::RingHash {
        min_ring_size: MAX_RING_SIZE,
        max_ring_size: MAX_RING_SIZE,
        request_hash_header: None,
    };
    let opts = PlanOptions::default();
    let uncapped = PlanOptions {
        ring_size_cap: MAX_RING_SIZE,
    };
    let allocs_maglev = count_allocs(3, || LbPlan::new(&eps, &maglev, &opts, &mut rng));
    let allocs_ring = count_allocs(3, || LbPlan::new(&eps, &ring_default, &opts, &mut rng));
    let mut g = ctx.group("rebuild");
    heavy(&mut g);
    g.bench_function("maglev_1000_hosts", |b| {
        b.iter(|| LbPlan::new(&eps, &maglev, &opts, &mut rng))
    });
    g.bench_function("ring_hash_default_1000_hosts", |b| {
        b.iter(|| LbPlan::new(&eps, &ring_default, &opts, &mut rng))
    });
    g.finish();
    ctx.record(
        "rebuild/maglev_1000_hosts",
        Meta::new(Goal::MaxNs(5e6), "rebuild")
            .allocs(allocs_maglev)
            .note("LbPlan::new for MAGLEV, table 65,537 entries, 1,000 hosts (G8: <= 5 ms)."),
    );
    ctx.record(
        "rebuild/ring_hash_default_1000_hosts",
        Meta::new(Goal::None, "rebuild").allocs(allocs_ring).note(
            "LbPlan::new for RING_HASH with the xDS defaults (min 1024, max 8M) under the default \
             local cap of 4096 (gRFC A42): 1,000 hosts -> 2,000 points.",
        ),
    );

    // The 8M-entry ring takes seconds: a few runs by hand instead of criterion's ten samples.
    if ctx.selected("rebuild/ring_hash_max_1000_hosts") {
        let runs = if ctx.test_mode { 1 } else { 3 };
        let mut allocs = (0.0, 0.0);
        let times = manual(runs, || {
            let region = Region::new(GLOBAL);
            let t = Instant::now();
            let plan = LbPlan::new(&eps, &ring_max, &uncapped, &mut rng);
            let el = t.elapsed();
            let s = region.change();
            allocs = (allocs_of(&s) as f64, s.bytes_allocated as f64);
            drop(plan);
            el
        });
        ctx.record_manual(
            "rebuild/ring_hash_max_1000_hosts",
            &times,
            Meta::new(Goal::None, "rebuild").allocs(allocs).note(
                "LbPlan::new for RING_HASH with min = max = 8M (the largest ring xDS may ask for) \
                 and the local cap raised to 8M: 8,388,608 points over 1,000 hosts.",
            ),
        );
    }
}

// ---- main ------------------------------------------------------------------------------------

fn main() {
    let started = Instant::now();
    let mut ctx = Ctx::new();
    bench_decision(&mut ctx);
    bench_pick(&mut ctx);
    bench_rebuilds(&mut ctx);
    bench_cds(&mut ctx);
    bench_eds(&mut ctx);
    ctx.criterion.final_summary();

    if ctx.test_mode || ctx.list_mode || ctx.report.is_empty() {
        return;
    }
    let machine = report::machine_info();
    let path = report::target_dir().join("skiff-bench").join("core.json");
    let mut doc = ctx.report.to_json(&machine);
    // A filtered run keeps the other results of the previous file.
    if ctx.filter.is_some()
        && let Ok(old) = std::fs::read(&path)
        && let Ok(old) = serde_json::from_slice::<serde_json::Value>(&old)
        && let (Some(old_results), Some(new_results)) = (
            old.get("results").and_then(|r| r.as_object()),
            doc.get_mut("results").and_then(|r| r.as_object_mut()),
        )
    {
        for (k, v) in old_results {
            new_results.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match serde_json::to_string_pretty(&doc) {
        Ok(s) => match std::fs::write(&path, s + "\n") {
            Ok(()) => println!("\nwrote {}", path.display()),
            Err(e) => eprintln!("could not write {}: {e}", path.display()),
        },
        Err(e) => eprintln!("could not serialise results: {e}"),
    }
    println!(
        "\nskiff-core benchmarks on {} ({} cores), {}, {}\n",
        machine["cpu_model"].as_str().unwrap_or("?"),
        machine["cores"],
        machine["rustc"].as_str().unwrap_or("?"),
        machine["date"].as_str().unwrap_or("?"),
    );
    print!("{}", ctx.report.table());
    println!("\ntotal run time {:.1?}", started.elapsed());
}
