//! Instruction-count driver for the hot paths of `benches/core.rs`, for runs under callgrind
//! (performance.md §5.6: instruction counts are the stable measure on a shared machine).
//!
//! ```sh
//! cargo build --profile bench -p skiff-benches --example icount
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='icount::measured_*' \
//!     <target>/release/examples/icount decision 10000
//! ```
//!
//! Each scenario builds its inputs first (not collected), then runs the measured part inside a
//! `measured_*` function, `n` times where that makes sense; divide the collected instructions by
//! `n`. Run without valgrind, it prints the wall time of the measured part.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Instant;

use skiff_benches::table::{self, Requests, Table};
use skiff_benches::{fixtures, xds};
use skiff_core::balancer::{LbPlan, MAX_RING_SIZE, PickContext, Picker, PlanOptions};
use skiff_core::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use skiff_core::resource::endpoint::EndpointsConfig;
use skiff_core::resource::endpoint_validate::validate_cluster_load_assignment;
use skiff_core::resource::lb_policy::LbPolicy;
use skiff_core::resource::{Ignored, decode};
use skiff_core::rng::{Rng, Seed};
use skiff_core::router::{RequestHead, SliceHeaders, route};
use skiff_core::xds::ResourceType;

#[inline(never)]
fn measured_decision(
    table: &Table,
    paths: &[&str],
    headers: &[SliceHeaders<'_>],
    n: usize,
    rng: &mut Rng,
) -> usize {
    let vhost = table.vhost();
    let mut ok = 0;
    for i in 0..n {
        let k = i % paths.len();
        ok += usize::from(table::decide(table, vhost, paths[k], &headers[k], rng).is_some());
    }
    ok
}

#[inline(never)]
fn measured_route(
    table: &Table,
    paths: &[&str],
    headers: &[SliceHeaders<'_>],
    n: usize,
    rng: &mut Rng,
) -> usize {
    let vhost = table.vhost();
    let mut sum = 0;
    for i in 0..n {
        let k = i % paths.len();
        let head = RequestHead {
            path: paths[k],
            headers: &headers[k],
            channel_id: 0x5eed,
        };
        sum += route(vhost, &head, rng).map_or(0, |d| d.route_index);
    }
    sum
}

#[inline(never)]
fn measured_pick(picker: &Picker, in_flight: &[AtomicU32], n: usize, rng: &mut Rng) -> usize {
    let mut sum = 0;
    for _ in 0..n {
        let mut c = PickContext::new(rng).with_in_flight(in_flight);
        if let skiff_core::balancer::PickResult::Pick(e) = picker.pick(&mut c) {
            sum += e.get();
        }
    }
    sum
}

#[inline(never)]
fn measured_plan(eps: &EndpointsConfig, policy: &LbPolicy, opts: &PlanOptions, rng: &mut Rng) {
    black_box(LbPlan::new(eps, policy, opts, rng));
}

#[inline(never)]
fn measured_validate(cla: &ClusterLoadAssignment) -> usize {
    let mut ignored = Ignored::default();
    validate_cluster_load_assignment(cla, &mut ignored).map_or(0, |c| c.localities.len())
}

#[inline(never)]
fn measured_decode(any: &prost_types::Any) -> bool {
    decode(ResourceType::ClusterLoadAssignment, any).is_ok()
}

#[inline(never)]
fn measured_feed(client: &mut xds::Client, bytes: &[u8]) -> usize {
    client.feed(bytes).updated
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let what = args.first().map_or("decision", String::as_str);
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let mut rng = Rng::new(Seed(1));
    let t;
    match what {
        "decision" | "route" => {
            let (rc, clusters, endpoints) = table::encoded();
            let table = Table::build(&rc, &clusters, &endpoints, &mut rng);
            let requests = Requests::new(512);
            let slices = requests.header_slices();
            let headers: Vec<SliceHeaders<'_>> =
                slices.iter().map(|s| SliceHeaders::new(s)).collect();
            let paths = requests.paths();
            t = Instant::now();
            let r = if what == "decision" {
                measured_decision(&table, &paths, &headers, n, &mut rng)
            } else {
                measured_route(&table, &paths, &headers, n, &mut rng)
            };
            black_box(r);
        }
        "p2c" | "rr" | "random" => {
            let any = fixtures::pack(&fixtures::load_assignment(
                "outbound|7000||pick.default.svc.cluster.local",
                0,
                4,
                250,
                |i| 1 + (i % 4) as u32,
            ));
            let eps = table::endpoints_config(&any);
            let policy = match what {
                "p2c" => LbPolicy::LeastRequest { choice_count: 2 },
                "rr" => LbPolicy::RoundRobin,
                _ => LbPolicy::Random,
            };
            let plan = LbPlan::new(&eps, &policy, &PlanOptions::default(), &mut rng);
            let eligible = vec![true; plan.endpoint_count()];
            let picker = Picker::new(Arc::new(plan), &eligible, &mut rng);
            let in_flight: Vec<AtomicU32> = (0..1000)
                .map(|i| AtomicU32::new((i * 7 % 5) as u32))
                .collect();
            t = Instant::now();
            black_box(measured_pick(&picker, &in_flight, n, &mut rng));
        }
        "maglev" | "ring_default" | "ring_max" => {
            let any = fixtures::pack(&fixtures::load_assignment(
                "outbound|7000||hash.default.svc.cluster.local",
                0,
                1,
                1000,
                |_| 1,
            ));
            let eps = table::endpoints_config(&any);
            let (policy, opts) = match what {
                "maglev" => (
                    LbPolicy::Maglev {
                        table_size: skiff_core::balancer::DEFAULT_MAGLEV_TABLE_SIZE,
                    },
                    PlanOptions::default(),
                ),
                "ring_default" => (
                    LbPolicy::RingHash {
                        min_ring_size: 1024,
                        max_ring_size: MAX_RING_SIZE,
                        request_hash_header: None,
                    },
                    PlanOptions::default(),
                ),
                _ => (
                    LbPolicy::RingHash {
                        min_ring_size: n as u64,
                        max_ring_size: n as u64,
                        request_hash_header: None,
                    },
                    PlanOptions {
                        ring_size_cap: MAX_RING_SIZE,
                    },
                ),
            };
            t = Instant::now();
            measured_plan(&eps, &policy, &opts, &mut rng);
        }
        "eds_validate" | "eds_decode" => {
            let cla = xds::big_eds(n, 0);
            let any = fixtures::pack(&cla);
            t = Instant::now();
            if what == "eds_validate" {
                black_box(measured_validate(&cla));
            } else {
                black_box(measured_decode(&any));
            }
        }
        "eds_client" => {
            let name = xds::big_eds_name();
            let a = xds::framed_response(
                ResourceType::ClusterLoadAssignment,
                vec![fixtures::pack(&xds::big_eds(n, 0))],
                "a",
            );
            let b = xds::framed_response(
                ResourceType::ClusterLoadAssignment,
                vec![fixtures::pack(&xds::big_eds(n, 1))],
                "b",
            );
            let mut c = xds::Client::watching(ResourceType::ClusterLoadAssignment, &name);
            black_box(c.feed(&a));
            t = Instant::now();
            black_box(measured_feed(&mut c, &b));
        }
        "cds_client" => {
            let names = xds::cds_names(n);
            let a = xds::framed_response(ResourceType::Cluster, xds::cds_clusters(&names, 0), "a");
            let b = xds::framed_response(ResourceType::Cluster, xds::cds_clusters(&names, 1), "b");
            let mut c = xds::cds_client(&names);
            black_box(c.feed(&a));
            t = Instant::now();
            black_box(measured_feed(&mut c, &b));
        }
        other => {
            eprintln!(
                "unknown scenario {other:?}: decision, route, p2c, rr, random, maglev, \
                 ring_default, ring_max, eds_validate, eds_decode, eds_client, cds_client"
            );
            std::process::exit(2);
        }
    }
    eprintln!("{what} {n}: measured part took {:.3?}", t.elapsed());
}
