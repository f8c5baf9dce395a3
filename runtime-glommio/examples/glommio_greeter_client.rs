//! skiff-tokio's Greeter client example, thread-per-core on glommio: every executor makes its
//! share of the calls through its own data plane; one xDS shard feeds them all.
//!
//! ```text
//! cargo run -p skiff-glommio --example glommio_greeter_client -- --xds 127.0.0.1:15010 xds:///helloworld.Greeter 20
//! ```
//!
//! Arguments as in skiff-tokio's example, plus `--executors N` (default: one per CPU).
#![cfg_attr(not(target_os = "linux"), allow(unused))]

#[cfg(target_os = "linux")]
#[path = "../../runtime-tokio/tests/support/greeter.rs"]
mod greeter;

#[cfg(target_os = "linux")]
#[path = "../../runtime-tokio/examples/common/demo.rs"]
mod demo;

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("skiff-glommio runs on Linux only");
}

#[cfg(target_os = "linux")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use skiff_glommio::{Executors, Mesh, XdsServerTarget};

    demo::init_logs();
    let args = demo::Args::from_env()?;
    let xds = args.xds.unwrap_or_else(|| "127.0.0.1:15010".into());
    let executors = args
        .executors
        .map_or_else(Executors::per_core, Executors::new);
    let per_executor = args.calls.div_ceil(executors.count());
    let target = args.target;

    let answered = skiff_glommio::run_per_core(
        executors,
        move || {
            Mesh::builder()
                .xds_server(XdsServerTarget::insecure(xds.as_str()))
                .node_id(demo::NODE_ID)
        },
        move |core| {
            let target = target.clone();
            async move {
                let Ok(channel) = core.mesh.channel(&target) else {
                    return Default::default();
                };
                let label = format!("executor {} ", core.index);
                demo::greet(channel, &label, per_executor, true).await
            }
        },
    )?;
    for (i, by) in answered.iter().enumerate() {
        println!("executor {i}: answered by {by:?}");
    }
    Ok(())
}
