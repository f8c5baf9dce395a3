//! Random scenarios for the whole mesh: a sequence of actions (configuration changes, RPCs,
//! backend failures, control-plane resets, time passing) decoded from bytes, so the same
//! generator serves proptest (`sim/tests/call_properties.rs`) and the fuzzer
//! (`fuzz/fuzz_targets/mesh_scenario.rs`). The [`MeshWorld`] checks its invariants after every
//! step; [`run`] adds the end-of-run ones.

use std::time::Duration;

use skiff_core::ids::{CallId, ChannelId};
use skiff_core::mesh::ChannelState;

use crate::build::Service;
use crate::mesh_world::{Behavior, MeshWorld};

const HOST: &str = "echo.default.svc.cluster.local";
const TARGET: &str = "xds:///echo.default.svc.cluster.local:7000";
const ADDRS: [&str; 4] = [
    "10.0.0.1:7000",
    "10.0.0.2:7000",
    "10.0.0.3:7000",
    "10.0.0.4:7000",
];

/// One step of a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Publish a config whose endpoints are the addresses selected by `mask` (bit i = ADDRS[i]),
    /// with optional retries, circuit breaker and outlier detection.
    Config {
        /// Endpoint selection.
        mask: u8,
        /// `num_retries` (0 = no retry policy).
        retries: u8,
        /// `max_requests` (0 = default).
        max_requests: u8,
        /// Failure-percentage ejection on.
        outlier: bool,
        /// Route max_stream_duration in units of 100 ms (0 = none).
        msd: u8,
    },
    /// Start an RPC with an optional timeout (units of 50 ms; 0 = none).
    Call {
        /// Timeout.
        timeout: u8,
    },
    /// Change how backend `i` answers.
    Backend {
        /// Which.
        i: u8,
        /// How (see [`behavior`]).
        how: u8,
        /// Whether it accepts connections.
        up: bool,
    },
    /// Cancel the `k`-th unfinished call.
    Cancel {
        /// Which.
        k: u8,
    },
    /// The control plane resets the ADS stream.
    ResetStream,
    /// Time passes (units of 10 ms).
    Run {
        /// How long.
        ticks: u8,
    },
}

fn behavior(how: u8) -> Behavior {
    match how % 7 {
        0 | 1 => Behavior::Ok,
        2 => Behavior::Fail(14),
        3 => Behavior::FailCommitted(13),
        4 => Behavior::FailRatio(300_000, 14),
        5 => Behavior::Refuse,
        _ => Behavior::Hang,
    }
}

/// Decodes actions from bytes (any bytes decode to something).
pub fn decode(data: &[u8]) -> Vec<Action> {
    let mut out = Vec::new();
    let mut it = data.iter().copied();
    while let Some(op) = it.next() {
        let mut b = || it.next().unwrap_or(0);
        out.push(match op % 8 {
            0 => Action::Config {
                mask: b(),
                retries: b() % 4,
                max_requests: b() % 8,
                outlier: b() % 2 == 1,
                msd: b() % 8,
            },
            1 | 2 => Action::Call { timeout: b() % 10 },
            3 => Action::Backend {
                i: b() % 4,
                how: b(),
                up: b() % 4 != 0,
            },
            4 => Action::Cancel { k: b() },
            5 => Action::ResetStream,
            _ => Action::Run { ticks: b() },
        });
    }
    out
}

fn service(mask: u8, retries: u8, max_requests: u8, outlier: bool, msd: u8) -> Service {
    let addrs: Vec<&str> = ADDRS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, a)| *a)
        .collect();
    let mut s = Service::new(HOST, 7000, &addrs);
    if retries > 0 {
        s = s.with_retry("unavailable,cancelled,internal", u32::from(retries));
    }
    if max_requests > 0 {
        s = s.with_max_requests(u32::from(max_requests));
    }
    if outlier {
        s = s.with_failure_percentage_ejection(Duration::from_secs(1), 50);
    }
    if msd > 0 {
        s = s.with_max_stream_duration(Duration::from_millis(100 * u64::from(msd)));
    }
    s
}

/// Runs a scenario; panics (with the seed) when an invariant breaks.
pub fn run(seed: u64, actions: &[Action]) -> MeshWorld {
    let mut w = MeshWorld::new(seed);
    w.add_backends(&ADDRS);
    w.server.set(service(0b11, 1, 0, false, 0).pack());
    let ch: ChannelId = w.open_channel(TARGET);
    w.run_for(Duration::from_millis(50));
    for a in actions.iter().take(400) {
        match *a {
            Action::Config {
                mask,
                retries,
                max_requests,
                outlier,
                msd,
            } => w
                .server
                .set(service(mask, retries, max_requests, outlier, msd).pack()),
            Action::Call { timeout } => {
                let t = (timeout > 0).then(|| Duration::from_millis(50 * u64::from(timeout)));
                w.start_call(ch, "/echo.Echo/Say", &[("x-user", "sim")], t);
            }
            Action::Backend { i, how, up } => {
                if let Some(addr) = ADDRS.get(usize::from(i)) {
                    let b = w.backend(addr);
                    b.behavior = behavior(how);
                    b.up = up;
                }
            }
            Action::Cancel { k } => {
                let open: Vec<CallId> = w.unfinished();
                if !open.is_empty() {
                    let c = open[usize::from(k) % open.len()];
                    let now = w.now();
                    w.mesh.cancel_call(now, c);
                    w.drain();
                }
            }
            Action::ResetStream => w.server.reset_stream("scenario reset"),
            Action::Run { ticks } => w.run_for(Duration::from_millis(10 * u64::from(ticks))),
        }
    }
    // End of run: let everything settle, then cancel whatever still hangs; every call must
    // have ended exactly once (the world panics on a second end).
    w.run_for(Duration::from_secs(30));
    let now = w.now();
    for c in w.unfinished() {
        w.mesh.cancel_call(now, c);
    }
    w.drain();
    assert!(
        w.unfinished().is_empty(),
        "calls never ended: {:?} (seed {seed})",
        w.unfinished()
    );
    assert_eq!(
        w.mesh.active_calls(),
        0,
        "the mesh still tracks calls (seed {seed})"
    );
    let _ = w.mesh.channel_state(ch) == Some(ChannelState::Ready);
    w
}
