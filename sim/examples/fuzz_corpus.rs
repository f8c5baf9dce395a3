//! Writes the seed corpora of the fuzz targets (`fuzz/corpus/`) from the simulator's
//! istiod-shaped resources: `cargo run -p skiff-sim --example fuzz_corpus`.

use std::fs;
use std::io;
use std::path::Path;

use bytes::BytesMut;
use prost::Message;
use skiff_core::grpc::codec::encode_frame;
use skiff_core::pb::envoy::service::discovery::v3 as disc;
use skiff_core::xds::ResourceType;
use skiff_sim::build;

fn write(dir: &Path, name: &str, data: &[u8]) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::write(dir.join(name), data)
}

/// Writes the corpora under `fuzz/corpus/`. Returns the number of files.
fn generate(root: &Path) -> io::Result<usize> {
    let corpus = root.join("fuzz/corpus");
    let mut n = 0;
    let service = build::service(
        "echo.default.svc.cluster.local",
        7000,
        &["10.0.0.1:7000", "10.0.0.2:7000"],
    );

    // ads_response: mode byte (0 = SotW, 1 = Delta) + gRPC frames.
    let dir = corpus.join("ads_response");
    let mut all = BytesMut::new();
    for (i, any) in service.iter().enumerate() {
        let resp = disc::DiscoveryResponse {
            version_info: "1".into(),
            resources: vec![any.clone()],
            type_url: any.type_url.clone(),
            nonce: format!("n{i}"),
            ..Default::default()
        };
        let mut buf = BytesMut::from(&[0u8][..]);
        encode_frame(&resp, &mut buf);
        write(&dir, &format!("sotw-{i}"), &buf)?;
        encode_frame(&resp, &mut all);
        n += 1;
    }
    let mut sotw_all = vec![0u8];
    sotw_all.extend_from_slice(&all);
    write(&dir, "sotw-cascade", &sotw_all)?;
    n += 1;
    let mut delta = BytesMut::from(&[1u8][..]);
    for (i, any) in service.iter().enumerate() {
        let resp = disc::DeltaDiscoveryResponse {
            system_version_info: "1".into(),
            resources: vec![disc::Resource {
                name: skiff_sim::server::resource_name(any).unwrap_or_default(),
                version: "1".into(),
                resource: Some(any.clone()),
                ..Default::default()
            }],
            type_url: any.type_url.clone(),
            removed_resources: if i == 3 { vec!["gone".into()] } else { vec![] },
            nonce: format!("d{i}"),
            ..Default::default()
        };
        encode_frame(&resp, &mut delta);
    }
    write(&dir, "delta-cascade", &delta)?;
    write(&dir, "garbage", &[0, 0, 0, 0, 3, 0xff, 0xff, 0xff])?;
    n += 2;

    // resource: selector byte (index in ResourceType::ALL) + the encoded resource.
    let dir = corpus.join("resource");
    for any in &service {
        let ty = ResourceType::from_type_url(&any.type_url).unwrap_or(ResourceType::Listener);
        let sel = ResourceType::ALL.iter().position(|t| *t == ty).unwrap_or(0) as u8;
        let mut data = vec![sel];
        data.extend_from_slice(&any.value);
        write(&dir, ty.short_name(), &data)?;
        n += 1;
    }
    let mut bad = vec![2u8];
    bad.extend(build::invalid_cluster("bad").encode_to_vec());
    write(&dir, "invalid-cluster", &bad)?;
    n += 1;

    // mesh_scenario: action bytes (see skiff_sim::scenario::decode).
    let dir = corpus.join("mesh_scenario");
    // Config with retries and a breaker, calls, a failing backend, a reset, time.
    write(
        &dir,
        "retries-and-reset",
        &[
            0, 0b0111, 2, 3, 0, 0, 1, 0, 1, 4, 3, 0, 2, 1, 1, 0, 5, 6, 100, 1, 3, 6, 200,
        ],
    )?;
    write(
        &dir,
        "outlier-and-deadlines",
        &[
            0, 0b1111, 0, 0, 1, 3, 3, 2, 2, 1, 1, 5, 1, 9, 6, 255, 6, 255, 4, 0, 6, 50,
        ],
    )?;
    n += 2;

    // bootstrap: istio-agent's and the minimal direct form.
    let dir = corpus.join("bootstrap");
    let istio = root.join("core/tests/data/istio-grpc-agent-bootstrap.json");
    if let Ok(b) = fs::read(&istio) {
        write(&dir, "istio-grpc-agent", &b)?;
        n += 1;
    }
    write(
        &dir,
        "grpc-simple",
        br#"{"xds_servers":[{"server_uri":"dns:///istiod.istio-system.svc:15010","channel_creds":[{"type":"insecure"}],"server_features":["xds_v3"]}],"node":{"id":"sidecar~10.0.0.1~pod.ns~ns.svc.cluster.local","metadata":{"GENERATOR":"grpc"}}}"#,
    )?;
    write(&dir, "empty-object", b"{}")?;
    n += 2;
    Ok(n)
}

fn main() -> io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let n = generate(&root)?;
    eprintln!("wrote {n} corpus files to fuzz/corpus");
    Ok(())
}
