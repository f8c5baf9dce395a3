//! Losing the ADS stream: jittered exponential backoff, resubscription of everything on the new
//! stream with the last accepted versions, and the cached config serving throughout.

use std::time::Duration;

use skiff_core::resource::snapshot::ListenerStatus;
use skiff_core::xds::snapshot::build_snapshot;
use skiff_core::xds::{Protocol, ResourceStatus, ResourceType, XdsEvent};
use skiff_sim::{World, build};

const LISTENER: &str = "echo.default.svc.cluster.local:7000";

#[test]
fn reconnects_with_backoff_and_resubscribes_while_cache_serves() {
    let mut w = World::new(12, Protocol::StateOfTheWorld);
    w.server.set(build::service(
        "echo.default.svc.cluster.local",
        7000,
        &["10.0.0.1:7000"],
    ));
    w.client.watch(w.now(), ResourceType::Listener, LISTENER);
    w.run_for(Duration::from_secs(1));
    let first = w.client.open_stream().expect("stream open");
    let snap = build_snapshot(&w.client, [LISTENER], None);
    assert_eq!(snap.status.get(LISTENER), Some(&ListenerStatus::Ready));

    // The control plane goes away for 10 s.
    w.server.refuse = true;
    w.server.reset_stream("control plane restarting");
    let down = w.now();
    w.run_for(Duration::from_secs(10));
    assert!(w.client.open_stream().is_none());
    // Reconnect attempts back off: 1 s, 1.6 s, 2.56 s... each ±20 %.
    let retries: Vec<Duration> = w
        .events_since(down)
        .filter_map(|e| match e {
            XdsEvent::StreamClosed { retry_in, .. } => Some(*retry_in),
            _ => None,
        })
        .collect();
    assert!(retries.len() >= 3, "{retries:?}");
    let mut expected = 1.0f64;
    for r in &retries {
        let s = r.as_secs_f64();
        assert!(
            s >= expected * 0.8 - 1e-6 && s <= expected * 1.2 + 1e-6,
            "{retries:?}"
        );
        expected *= 1.6;
    }
    // The cached config keeps serving during the outage.
    let during = build_snapshot(&w.client, [LISTENER], Some(&snap));
    assert_eq!(during.status.get(LISTENER), Some(&ListenerStatus::Ready));
    assert!(during.endpoints.values().next().is_some());
    for ty in ResourceType::ALL {
        let (_, e) = w.client.entries(ty).next().unwrap();
        assert_eq!(
            e.status,
            ResourceStatus::Acked,
            "{ty} still acked from cache"
        );
    }

    // It comes back: one new stream, every type resubscribed with its last version.
    w.server.refuse = false;
    let back = w.now();
    w.run_for(Duration::from_secs(30));
    let second = w.client.open_stream().expect("reconnected");
    assert_ne!(first, second);
    for ty in ResourceType::ALL {
        let r = w
            .requests
            .iter()
            .find(|(at, s, r)| *at >= back && *s == second && r.type_url == ty.type_url())
            .map(|(_, _, r)| r.clone())
            .unwrap_or_else(|| panic!("{ty} resubscribed"));
        assert_eq!(
            r.version_info, "1",
            "{ty} resubscribes with its last version"
        );
        assert_eq!(r.response_nonce, "", "nonces do not cross streams");
        assert_eq!(r.resource_names.len(), 1);
    }
    assert!(
        w.requests
            .iter()
            .filter(|(_, s, r)| *s == second && r.node.is_some())
            .count()
            == 1,
        "the node is sent again on the new stream"
    );
}

#[test]
fn a_healthy_stream_resets_the_backoff() {
    let mut w = World::new(13, Protocol::StateOfTheWorld);
    w.server.set([build::pack(&build::eds_cluster("c"))]);
    w.client.watch(w.now(), ResourceType::Cluster, "c");
    for _ in 0..5 {
        w.run_for(Duration::from_secs(5));
        w.server.reset_stream("bye");
    }
    w.run_for(Duration::from_secs(5));
    // Each stream got a response before it was reset, so no delay grew past the first step.
    for e in w.events.iter().map(|(_, e)| e) {
        if let XdsEvent::StreamClosed { retry_in, .. } = e {
            assert!(*retry_in <= Duration::from_millis(1200), "{retry_in:?}");
        }
    }
}
