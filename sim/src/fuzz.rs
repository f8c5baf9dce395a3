//! Fuzz harnesses, shared by the cargo-fuzz targets in `fuzz/` and by the corpus replay test
//! (`sim/tests/fuzz_corpus.rs`), so the normal test run exercises every committed corpus file.
//! Each harness must never panic, whatever the bytes.

use skiff_core::ids::AdsStreamId;
use skiff_core::rng::{Rng, Seed};
use skiff_core::time::Instant;
use skiff_core::xds::{Protocol, ResourceType, XdsClient, XdsClientConfig, XdsOutput};

use crate::world::test_node;

/// Control-plane bytes into a client watching a listener and its cascade. The first byte picks
/// SotW or Delta.
pub fn ads_response(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut config = XdsClientConfig::new(test_node());
    if mode & 1 == 1 {
        config.protocol = Protocol::Delta;
    }
    let now = Instant::from_secs(1);
    let mut client = XdsClient::new(config, Rng::new(Seed(1)), now);
    client.watch(
        now,
        ResourceType::Listener,
        "echo.default.svc.cluster.local:7000",
    );
    client.watch(
        now,
        ResourceType::Cluster,
        "outbound|7000||echo.default.svc.cluster.local",
    );
    let mut stream = None;
    while let Some(o) = client.poll_output() {
        if let XdsOutput::AdsOpen(id) = o {
            stream = Some(id);
        }
    }
    let id = stream.unwrap_or(AdsStreamId::new(0, 0));
    client.handle_ads_open(now, id);
    // Feed in a few chunks so partial-frame handling is exercised too.
    let mut t = now;
    for chunk in rest.chunks(97) {
        t = t.saturating_add(core::time::Duration::from_millis(10));
        client.handle_ads_data(t, id, chunk);
        while client.poll_output().is_some() {}
    }
    client.handle_timeout(Instant::from_secs(100));
    while client.poll_output().is_some() {}
    let _ = client.config_dump();
}

/// One byte selects the type, the rest is its protobuf encoding.
pub fn resource(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let ty = ResourceType::ALL[usize::from(sel) % 4];
    let any = prost_types::Any {
        type_url: ty.type_url().to_string(),
        value: rest.to_vec(),
    };
    let _ = skiff_core::resource::decode(ty, &any);
}

/// A whole-mesh scenario decoded from bytes (see [`crate::scenario`]).
pub fn mesh_scenario(data: &[u8]) {
    let actions = crate::scenario::decode(data);
    let _ = crate::scenario::run(1, &actions);
}

/// Bootstrap JSON.
pub fn bootstrap(data: &[u8]) {
    let _ = skiff_core::bootstrap::Bootstrap::from_json(data);
}
