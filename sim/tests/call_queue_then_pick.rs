//! An RPC started before any configuration is queued, then picked once the whole xDS tree and a
//! connection are ready; round robin spreads later RPCs over every endpoint.

use std::time::Duration;

use skiff_core::mesh::ChannelState;
use skiff_core::plane::Output;
use skiff_sim::MeshWorld;
use skiff_sim::build::Service;

const TARGET: &str = "xds:///echo.default.svc.cluster.local:7000";

#[test]
fn first_rpc_waits_for_config_then_goes_out() {
    let mut w = MeshWorld::new(21);
    w.add_backends(&["10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"]);
    let ch = w.open_channel(TARGET);
    // The RPC starts before the control plane has said anything.
    let call = w.start_call(ch, "/echo.Echo/Say", &[], None);
    assert!(w.attempts.is_empty());
    assert_eq!(w.mesh.channel_state(ch), Some(ChannelState::Connecting));

    w.server.set(
        Service::new(
            "echo.default.svc.cluster.local",
            7000,
            &["10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"],
        )
        .pack(),
    );
    w.run_for(Duration::from_secs(1));
    assert_eq!(w.mesh.channel_state(ch), Some(ChannelState::Ready));
    assert_eq!(
        w.attempts_of(call).len(),
        1,
        "picked once config and a connection were ready"
    );
    assert_eq!(w.result(call), Some(&Ok(())));

    // Round robin over the three endpoints.
    let calls: Vec<_> = (0..30)
        .map(|_| w.start_call(ch, "/echo.Echo/Say", &[], None))
        .collect();
    w.run_for(Duration::from_secs(1));
    let mut per = std::collections::BTreeMap::new();
    for c in &calls {
        assert_eq!(w.result(*c), Some(&Ok(())));
        *per.entry(w.attempts_of(*c)[0].address).or_insert(0) += 1;
    }
    assert_eq!(per.values().copied().collect::<Vec<_>>(), vec![10, 10, 10]);
}

#[test]
fn missing_listener_fails_queued_rpcs_after_the_timer() {
    let mut w = MeshWorld::new(22);
    let ch = w.open_channel("xds:///nowhere:80");
    let call = w.start_call(ch, "/a.B/C", &[], None);
    w.server.stalled = true;
    w.run_for(Duration::from_secs(16));
    let err = w.result(call).expect("ended").clone().unwrap_err();
    assert_eq!(err.code, 14);
    assert!(err.message.contains("does not exist"), "{err}");
    assert!(matches!(
        w.mesh.channel_state(ch),
        Some(ChannelState::Failing(_))
    ));
    // Nothing leaks.
    assert!(w.unfinished().is_empty());
    let _ = Output::AdsClose;
}
