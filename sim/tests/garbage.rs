//! Garbage from the control plane never panics the client: bad framing or undecodable messages
//! end the stream (and the client reconnects); undecodable resources are NACKed.

use std::time::Duration;

use bytes::Bytes;
use skiff_core::pb::envoy::service::discovery::v3 as disc;
use skiff_core::xds::{Protocol, ResourceStatus, ResourceType, XdsEvent};
use skiff_sim::{World, build};

fn setup(seed: u64) -> World {
    let mut w = World::new(seed, Protocol::StateOfTheWorld);
    w.server.set([build::pack(&build::eds_cluster("c"))]);
    w.client.watch(w.now(), ResourceType::Cluster, "c");
    w.run_for(Duration::from_secs(1));
    w
}

#[test]
fn bad_frame_flag_closes_the_stream_and_reconnects() {
    let mut w = setup(16);
    let first = w.client.open_stream().unwrap();
    w.server
        .send_raw_bytes(Bytes::from_static(&[7, 0, 0, 0, 1, 0]));
    w.run_for(Duration::from_secs(5));
    assert!(
        w.events
            .iter()
            .any(|(_, e)| matches!(e, XdsEvent::StreamClosed { stream, .. } if *stream == first))
    );
    let second = w.client.open_stream().expect("reconnected");
    assert_ne!(first, second);
    assert_eq!(
        w.client.entry(ResourceType::Cluster, "c").unwrap().status,
        ResourceStatus::Acked
    );
}

#[test]
fn undecodable_message_closes_the_stream() {
    let mut w = setup(17);
    // A well-framed message that is not a DiscoveryResponse.
    w.server
        .send_raw_bytes(Bytes::from_static(&[0, 0, 0, 0, 3, 0xff, 0xff, 0xff]));
    w.run_for(Duration::from_secs(5));
    assert!(w.events.iter().any(|(_, e)| matches!(e, XdsEvent::StreamClosed { reason, .. } if reason.contains("undecodable"))));
    assert!(
        w.client.resource(ResourceType::Cluster, "c").is_some(),
        "cache survives"
    );
}

#[test]
fn undecodable_resource_is_nacked_not_fatal() {
    let mut w = setup(18);
    let resp = disc::DiscoveryResponse {
        version_info: "bad".into(),
        resources: vec![prost_types::Any {
            type_url: ResourceType::Cluster.type_url().into(),
            value: vec![0xff, 0xff, 0xff],
        }],
        type_url: ResourceType::Cluster.type_url().into(),
        nonce: "garbage-1".into(),
        ..Default::default()
    };
    w.server.send_response(&resp);
    w.run_for(Duration::from_secs(1));
    let nack = w
        .requests
        .iter()
        .map(|(_, _, r)| r)
        .find(|r| r.response_nonce == "garbage-1")
        .expect("answered");
    assert!(nack.error_detail.is_some());
    assert_eq!(nack.version_info, "1");
    // An unnamed bad resource must not delete "c" (it may have been "c").
    assert_eq!(
        w.client.entry(ResourceType::Cluster, "c").unwrap().status,
        ResourceStatus::Acked
    );
}

#[test]
fn truncated_frame_waits_for_more_bytes() {
    let mut w = setup(19);
    // Half a frame header: nothing happens, the stream stays up.
    w.server.send_raw_bytes(Bytes::from_static(&[0, 0, 0]));
    w.run_for(Duration::from_secs(2));
    assert!(w.client.open_stream().is_some());
    assert!(
        !w.events
            .iter()
            .any(|(_, e)| matches!(e, XdsEvent::StreamClosed { .. }))
    );
}

#[test]
fn random_garbage_never_panics() {
    use skiff_core::rng::{Rng, Seed};
    for seed in 0..50u64 {
        let mut w = setup(100 + seed);
        let mut rng = Rng::new(Seed(seed));
        for _ in 0..5 {
            let len = rng.below(64) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
            if rng.chance(1, 2) && !bytes.is_empty() {
                bytes[0] = 0; // well-framed-ish
            }
            w.server.send_raw_bytes(Bytes::from(bytes));
            w.run_for(Duration::from_secs(3));
        }
        w.run_for(Duration::from_secs(200));
        assert!(w.client.resource(ResourceType::Cluster, "c").is_some());
    }
}
