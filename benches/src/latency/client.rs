//! Role `client`: one measurement in a fresh process (so its CPU time and peak RSS belong to
//! one variant), pinned to the client CPU. Writes one JSON object to `--out`.
//!
//! * service time: 1 call in flight, `warmup` calls, then `calls` timed calls;
//! * open loop: a dedicated pacing thread releases calls at constant spacing (sleep with a
//!   1 µs timer slack, then `yield` for the last ~100 µs, never tokio's 1 ms timer); latency is
//!   recorded from the *intended* send time, so a stalled client or server is charged for every
//!   call it delayed (no coordinated omission).

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use tonic::codegen::{Body, StdError};

use super::echo::{self, EchoClient};
use super::procs;
use super::stats::{self, new_hist};
use super::variant::Variant;

#[derive(Debug, Clone)]
pub struct ClientOpts {
    pub variant: Variant,
    /// Where the calls go (echo server for D, nghttpx for S2; unused by P).
    pub target: Option<SocketAddr>,
    /// skiff's control plane (P).
    pub xds: Option<String>,
    pub payload: usize,
    pub open: bool,
    pub warmup: u64,
    pub calls: u64,
    pub rate: u64,
    pub ramp: Duration,
    pub duration: Duration,
}

/// Runs the measurement, returns the JSON result (or an error message).
pub fn run(opts: &ClientOpts) -> Result<Value, String> {
    let other_runtime = match opts.variant {
        Variant::SkiffSmol => Some(run_smol(opts)),
        Variant::SkiffGlommio => Some(run_glommio(opts)),
        _ => None,
    };
    if let Some(result) = other_runtime {
        let mut out = result?;
        out["vm_hwm_kib"] = json!(procs::self_vm_hwm_kib());
        return Ok(out);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let local = tokio::task::LocalSet::new();
    let mut out = local.block_on(&rt, async {
        match opts.variant {
            Variant::Direct | Variant::Sidecar2 => {
                let target = opts.target.ok_or("no --target")?;
                let channel = echo::tonic_channel(target)
                    .await
                    .map_err(|e| format!("connect {target}: {e}"))?;
                measure(EchoClient::new(channel), opts).await
            }
            Variant::SkiffSmol | Variant::SkiffGlommio => Err("not a tokio client".to_string()),
            Variant::Skiff => {
                let xds = opts.xds.as_deref().ok_or("no --xds")?;
                let mesh = skiff_tokio::Mesh::builder()
                    .xds_server(skiff_tokio::XdsServerTarget::insecure(xds))
                    .build()
                    .map_err(|e| format!("skiff mesh: {e}"))?;
                let channel = mesh
                    .channel(super::skiff::TARGET)
                    .map_err(|e| format!("skiff channel: {e}"))?;
                let mut client = EchoClient::new(channel);
                // The route, cluster and endpoint arrive over ADS: wait (bounded) for the first
                // call to succeed before the warm-up proper.
                let deadline = Instant::now() + Duration::from_secs(10);
                while let Err(status) = client.echo(Bytes::from_static(b"ready")).await {
                    if Instant::now() > deadline {
                        return Err(format!("P never became ready: {status}"));
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let result = measure(client, opts).await;
                mesh.shutdown().await;
                result
            }
        }
    })?;
    drop(local);
    drop(rt);
    out["vm_hwm_kib"] = json!(procs::self_vm_hwm_kib());
    Ok(out)
}

/// Waits (≤ 10 s) for the first echo through a fresh mesh client: configuration arrives over ADS.
async fn until_ready<T, S, F>(client: &mut EchoClient<T>, sleep: S) -> Result<(), String>
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + 'static,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
    S: Fn(Duration) -> F,
    F: std::future::Future<Output = ()>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(status) = client.echo(Bytes::from_static(b"ready")).await {
        if Instant::now() > deadline {
            return Err(format!("never became ready: {status}"));
        }
        sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// The P client on skiff-smol: the caller under `smol::block_on`, the mesh on smol's executor.
fn run_smol(opts: &ClientOpts) -> Result<Value, String> {
    if opts.open {
        return Err("the open-loop regime runs on tokio only".into());
    }
    let xds = opts.xds.clone().ok_or("no --xds")?;
    smol::block_on(async {
        let mesh = skiff_smol::Mesh::builder()
            .xds_server(skiff_smol::XdsServerTarget::insecure(xds.as_str()))
            .build()
            .map_err(|e| format!("skiff-smol mesh: {e}"))?;
        let channel = mesh
            .channel(super::skiff::TARGET)
            .map_err(|e| format!("skiff-smol channel: {e}"))?;
        let mut client = EchoClient::new(channel);
        until_ready(&mut client, |d| async move {
            async_io::Timer::after(d).await;
        })
        .await?;
        // `opts.open` is false here (refused above): `measure` runs the service-time regime.
        let result = measure(client, opts).await;
        mesh.shutdown().await;
        result
    })
}

/// The P client on skiff-glommio: one executor (pinned by the orchestrator's CPU affinity)
/// running the xDS shard and the data plane over io_uring sockets.
#[cfg(target_os = "linux")]
fn run_glommio(opts: &ClientOpts) -> Result<Value, String> {
    if opts.open {
        return Err("the open-loop regime runs on tokio only".into());
    }
    skiff_glommio::check_environment().map_err(|e| format!("glommio unavailable: {e}"))?;
    let xds = opts.xds.clone().ok_or("no --xds")?;
    let opts = opts.clone();
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("latency")
        .spawn(move || async move {
            let builder = || {
                skiff_glommio::Mesh::builder()
                    .xds_server(skiff_glommio::XdsServerTarget::insecure(xds.as_str()))
            };
            let skiff_glommio::Core { mesh, shard, .. } =
                skiff_glommio::Core::on_this_executor(builder)
                    .map_err(|e| format!("skiff-glommio mesh: {e}"))?;
            let channel = mesh
                .channel(super::skiff::TARGET)
                .map_err(|e| format!("skiff-glommio channel: {e}"))?;
            let mut client = EchoClient::new(channel);
            until_ready(&mut client, glommio::timer::sleep).await?;
            let result = measure(client, &opts).await;
            mesh.shutdown().await;
            shard.shutdown().await;
            result
        })
        .map_err(|e| format!("glommio executor: {e}"))?
        .join()
        .map_err(|e| format!("glommio executor: {e}"))?
}

#[cfg(not(target_os = "linux"))]
fn run_glommio(_opts: &ClientOpts) -> Result<Value, String> {
    Err("skiff-glommio runs on Linux only".into())
}

async fn measure<T>(client: EchoClient<T>, opts: &ClientOpts) -> Result<Value, String>
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + 'static,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    let payload = Bytes::from(vec![0x5a; opts.payload]);
    let mut client = client;
    // Warm-up (also the connection/route/balancer set-up): sequential calls.
    let mut warm_errors = 0u64;
    for _ in 0..opts.warmup {
        if let Err(status) = client.echo(payload.clone()).await {
            warm_errors += 1;
            if warm_errors > 10 {
                return Err(format!("warm-up failing: {status}"));
            }
        }
    }
    if opts.open {
        open_loop(client, payload, opts, warm_errors).await
    } else {
        service_time(client, payload, opts, warm_errors).await
    }
}

async fn service_time<T>(
    mut client: EchoClient<T>,
    payload: Bytes,
    opts: &ClientOpts,
    warm_errors: u64,
) -> Result<Value, String>
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + 'static,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    let mut hist = new_hist();
    let mut errors = 0u64;
    let mut first_error = None;
    let cpu0 = procs::self_cpu_ns();
    let t0 = Instant::now();
    for _ in 0..opts.calls {
        let start = Instant::now();
        let reply = client.echo(payload.clone()).await;
        let elapsed = start.elapsed();
        match reply {
            Ok(body) if body.len() == payload.len() => {
                hist.saturating_record(elapsed.as_nanos() as u64);
            }
            Ok(body) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("echo returned {} bytes", body.len()));
            }
            Err(status) => {
                errors += 1;
                first_error.get_or_insert_with(|| status.to_string());
            }
        }
    }
    let wall = t0.elapsed();
    let cpu = procs::self_cpu_ns().saturating_sub(cpu0);
    Ok(json!({
        "mode": "service",
        "variant": opts.variant.label(),
        "payload": opts.payload,
        "requests_total": opts.warmup + opts.calls,
        "measured": hist.len(),
        "errors": errors + warm_errors,
        "first_error": first_error,
        "cpu_ns": cpu,
        "cpu_requests": opts.calls,
        "wall_ns": wall.as_nanos() as u64,
        "hist": stats::encode(&hist),
    }))
}

/// Sleeps with a fine timer slack until ~100 µs before `t`, then yields until `t`.
fn pace_until(t: Instant) {
    const SPIN: Duration = Duration::from_micros(100);
    loop {
        let now = Instant::now();
        if now >= t {
            return;
        }
        let left = t - now;
        if left > SPIN + Duration::from_micros(20) {
            std::thread::sleep(left - SPIN);
        } else {
            std::thread::yield_now();
        }
    }
}

struct PacerReport {
    cpu_ns: u64,
    late: u64,
}

async fn open_loop<T>(
    client: EchoClient<T>,
    payload: Bytes,
    opts: &ClientOpts,
    warm_errors: u64,
) -> Result<Value, String>
where
    T: tonic::client::GrpcService<tonic::body::Body> + Clone + 'static,
    T::Error: Into<StdError>,
    T::ResponseBody: Body<Data = Bytes> + Send + 'static,
    <T::ResponseBody as Body>::Error: Into<StdError> + Send,
{
    let rate = opts.rate.max(1);
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let total = ((opts.ramp + opts.duration).as_secs_f64() * rate as f64).round() as u64;
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = start + opts.ramp;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let pacer = std::thread::Builder::new()
        .name("pacer".into())
        .spawn(move || {
            // 1 µs timer slack so `sleep` wakes when asked (default slack is 50 µs).
            let _ = nix::sys::prctl::set_timerslack(1_000);
            let cpu0 = procs::thread_cpu_ns();
            let mut late = 0u64;
            for i in 0..total {
                let intended = start + interval * (i as u32);
                pace_until(intended);
                if intended.elapsed() > interval {
                    late += 1;
                }
                if tx.send(intended).is_err() {
                    break;
                }
            }
            PacerReport {
                cpu_ns: procs::thread_cpu_ns().saturating_sub(cpu0),
                late,
            }
        })
        .map_err(|e| e.to_string())?;

    let hist = Rc::new(RefCell::new(new_hist()));
    let lag = Rc::new(RefCell::new(new_hist()));
    let errors = Rc::new(Cell::new(0u64));
    let first_error: Rc<RefCell<Option<String>>> = Rc::new(RefCell::new(None));
    let in_flight = Rc::new(Cell::new(0u64));
    let max_in_flight = Rc::new(Cell::new(0u64));
    let last_done: Rc<Cell<Option<Instant>>> = Rc::new(Cell::new(None));
    let mut sent = 0u64;
    let cpu0 = procs::self_cpu_ns();

    while let Some(intended) = rx.recv().await {
        sent += 1;
        let mut c = client.clone();
        let p = payload.clone();
        let (hist, lag, errors, first_error, in_flight, max_in_flight, last_done) = (
            hist.clone(),
            lag.clone(),
            errors.clone(),
            first_error.clone(),
            in_flight.clone(),
            max_in_flight.clone(),
            last_done.clone(),
        );
        in_flight.set(in_flight.get() + 1);
        max_in_flight.set(max_in_flight.get().max(in_flight.get()));
        tokio::task::spawn_local(async move {
            let dispatched = Instant::now();
            let reply = c.echo(p.clone()).await;
            let done = Instant::now();
            in_flight.set(in_flight.get() - 1);
            let measured = intended >= measure_from;
            match reply {
                Ok(body) if body.len() == p.len() => {
                    if measured {
                        hist.borrow_mut()
                            .saturating_record((done - intended).as_nanos() as u64);
                        lag.borrow_mut()
                            .saturating_record((dispatched - intended).as_nanos() as u64);
                        last_done.set(Some(done));
                    }
                }
                Ok(body) => {
                    errors.set(errors.get() + 1);
                    first_error
                        .borrow_mut()
                        .get_or_insert_with(|| format!("echo returned {} bytes", body.len()));
                }
                Err(status) => {
                    errors.set(errors.get() + 1);
                    first_error
                        .borrow_mut()
                        .get_or_insert_with(|| status.to_string());
                }
            }
        });
    }
    // Drain: wait (bounded) for the calls still in flight.
    let drain_deadline = Instant::now() + Duration::from_secs(5);
    while in_flight.get() > 0 && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let cpu = procs::self_cpu_ns().saturating_sub(cpu0);
    let pacer = pacer
        .join()
        .map_err(|_| "pacer thread panicked".to_string())?;
    let unfinished = in_flight.get();
    let measured_target = (opts.duration.as_secs_f64() * rate as f64).round() as u64;
    let h = hist.borrow();
    // Throughput actually delivered: measured completions over the time they took to arrive.
    let span = last_done
        .get()
        .map_or(opts.duration, |t| t.saturating_duration_since(measure_from))
        .max(opts.duration);
    let achieved = h.len() as f64 / span.as_secs_f64();
    Ok(json!({
        "mode": "open",
        "variant": opts.variant.label(),
        "payload": opts.payload,
        "rate": rate,
        "requests_total": opts.warmup + sent,
        "sent": sent,
        "measured": h.len(),
        "measured_target": measured_target,
        "achieved_rps": achieved,
        "errors": errors.get() + warm_errors + unfinished,
        "unfinished": unfinished,
        "first_error": first_error.borrow().clone(),
        "max_in_flight": max_in_flight.get(),
        "pacer_late": pacer.late,
        // Client CPU without the pacing thread (it burns CPU by design).
        "cpu_ns": cpu.saturating_sub(pacer.cpu_ns),
        "cpu_requests": sent,
        "pacer_cpu_ns": pacer.cpu_ns,
        "wall_ns": (opts.ramp + opts.duration).as_nanos() as u64,
        "hist": stats::encode(&h),
        "lag": stats::encode(&lag.borrow()),
    }))
}
