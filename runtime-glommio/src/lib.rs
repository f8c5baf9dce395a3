//! # skiff-glommio: skiff thread-per-core on glommio (Linux, io_uring)
//!
//! The same mesh client as skiff-tokio — [`Mesh`], [`MeshBuilder`], [`Channel`] (tonic clients
//! take it unchanged) — laid out thread-per-core:
//!
//! - **one xDS shard** ([`XdsShard`], on the first executor) holds the process's one ADS
//!   stream and one xDS client; whenever the configuration moves it builds the snapshot once
//!   and publishes the `Arc<Snapshot>` to every executor;
//! - **one data plane per executor**: a core `Mesh::data_plane` with its own balancers,
//!   subchannels and calls, and its own HTTP/2 connections over glommio's io_uring sockets,
//!   driven by local tasks. An RPC made on an executor is picked, sent and completed there: it
//!   never waits on another thread (the data plane's state is reached through a mutex that only
//!   its own executor takes, so it is never contended).
//!
//! ```no_run
//! use skiff_glommio::{Executors, Mesh, XdsServerTarget};
//! # fn demo() -> Result<(), skiff_glommio::Error> {
//! let replies = skiff_glommio::run_per_core(
//!     Executors::per_core(),
//!     || Mesh::builder().xds_server(XdsServerTarget::insecure("127.0.0.1:15010")),
//!     |core| async move {
//!         let channel = core.mesh.channel("xds:///helloworld.Greeter").expect("channel");
//!         // GreeterClient::new(channel).say_hello(..).await
//!         # let _ = channel;
//!         core.index
//!     },
//! )?;
//! # let _ = replies; Ok(()) }
//! ```
//!
//! Services serve with [`Server`], the xDS-enabled gRPC server (gRFC A36), one per executor
//! on the same port (`SO_REUSEPORT`): `Server::builder().serve(&core.mesh, listener, routes)`.
//! Each executor accepts, serves and routes its own connections; the server Listener comes
//! from the one shard.
//!
//! ## The run loop
//!
//! [`run_per_core`] starts `n` executors, each pinned to its own CPU. Executor 0 also starts the
//! shard: a driver task that waits for (ADS bytes | stream event | timer | a data plane
//! registering a listener), applies the input to the xDS client and publishes a new snapshot
//! when the configuration changed. Each executor's data-plane driver waits for (new snapshot |
//! timer | wake-up), installs the snapshot into its core and acts on the outputs: dialing
//! subchannels (a local task per connection: io_uring connect, hyper HTTP/2 handshake, then the
//! connection), waking queued RPCs. RPCs run in the application's tasks on that executor.
//!
//! ## Choosing the executor count
//!
//! [`Executors::per_core`] runs one executor per online CPU; [`Executors::new`]`(n)` runs `n`,
//! pinned to `n` distinct CPUs (at most the number of CPUs); [`Executors::unpinned`] lets the
//! OS place them (useful in containers with CPU quotas smaller than the CPU count).
//!
//! ## Requirements
//!
//! Linux with io_uring (5.8 or newer, not disabled by `kernel.io_uring_disabled`) and a locked
//! memory limit of at least 512 KiB per process (`ulimit -l 512`; many container runtimes
//! default to 64). [`check_environment`] reports both clearly; [`run_per_core`] calls it first.
//! glommio 0.9.0 is unmaintained upstream; it is pinned and used only by this crate.
//!
//! ## glommio 0.9 notes
//!
//! - It has no non-panicking "is this thread running an executor?" check (`executor().id()`
//!   panics outside one), so [`Glommio`] assumes it is on one: build meshes and shards inside
//!   an executor ([`run_per_core`] does).
//! - Its sockets and timers are `!Send`. Subchannel connections therefore live in local tasks
//!   and hand back only hyper's `Send` request sender; the adapter's timers are async-io's.
//! - It depends on `lockfree`, which has a RustSec unsoundness advisory, and on futures-lite 1
//!   (a second copy next to smol's futures-lite 2; both share the futures-io traits).
#![cfg(target_os = "linux")]

pub mod runtime;
pub mod server;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use runtime::Glommio;
pub use server::{Server, ServerBuilder, ServingMode};
use skiff_adapter::runtime::Rt;
pub use skiff_adapter::{
    BoxError, Channel, ConnectError, HeaderMapSource, MeshError, MeshEvent, MeshOptions,
    ResponseBody, TlsFiles, TransportSecurity, WaitForReady, XdsServerTarget, XdsShard, code_name,
    random_seed,
};

/// Interface-level clients: `mesh.client::<T>()` for a client bound with [`mesh_client!`].
pub use skiff_adapter::{MeshClient, mesh_client};
/// Which endpoint answered: [`ServedBy`] on responses to requests that carry [`ReportServedBy`].
pub use skiff_adapter::{ReportServedBy, ServedBy};

/// A data plane on the executor it was built on. See the crate docs.
pub type Mesh = skiff_adapter::Mesh<Glommio>;

/// Builds a [`Mesh`] (or an [`XdsShard`] with `build_shard`).
pub type MeshBuilder = skiff_adapter::MeshBuilder<Glommio>;

/// The runtime, for `MeshBuilder::build_shard` / `build_fed` on the current executor.
pub fn runtime() -> Rt {
    Arc::new(Glommio)
}

/// The smallest `RLIMIT_MEMLOCK` glommio starts an executor with (its `MemLockLimit` check).
pub const MIN_MEMLOCK: u64 = 512 * 1024;

/// Why skiff-glommio cannot run here.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The locked-memory limit is below [`MIN_MEMLOCK`].
    MemLock {
        /// The current soft limit, in bytes.
        limit: u64,
    },
    /// The limit could not be read.
    Rlimit(String),
    /// glommio could not start an executor (io_uring unavailable or refused, CPU placement).
    Executor(String),
    /// The xDS shard could not start (malformed control-plane target, TLS files).
    Mesh(MeshError),
    /// An executor's thread panicked or failed.
    Join(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::MemLock { limit } => write!(
                f,
                "the locked-memory limit is {} KiB; glommio needs at least {} KiB \
                 (raise it with `ulimit -l {}` or the container's memlock setting)",
                limit / 1024,
                MIN_MEMLOCK / 1024,
                MIN_MEMLOCK / 1024
            ),
            Error::Rlimit(e) => write!(f, "reading RLIMIT_MEMLOCK: {e}"),
            Error::Executor(e) => write!(
                f,
                "glommio could not start an executor ({e}); it needs io_uring (Linux 5.8+, \
                 kernel.io_uring_disabled=0, not blocked by seccomp)"
            ),
            Error::Mesh(e) => write!(f, "{e}"),
            Error::Join(e) => write!(f, "an executor failed: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// Checks what glommio needs: the locked-memory limit (and io_uring, by starting a probe
/// executor).
pub fn check_environment() -> Result<(), Error> {
    use nix::sys::resource::{Resource, getrlimit};
    let (soft, _hard) =
        getrlimit(Resource::RLIMIT_MEMLOCK).map_err(|e| Error::Rlimit(e.to_string()))?;
    if soft < MIN_MEMLOCK {
        return Err(Error::MemLock { limit: soft });
    }
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("skiff-probe")
        .spawn(|| async {})
        .map_err(|e| Error::Executor(e.to_string()))?
        .join()
        .map_err(|e| Error::Executor(e.to_string()))
}

/// How many executors [`run_per_core`] starts, and whether they are pinned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Executors {
    count: usize,
    pinned: bool,
}

impl Executors {
    /// One executor per online CPU, each pinned to its CPU.
    pub fn per_core() -> Self {
        Executors::new(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// `n` executors (at least one), pinned to `n` distinct CPUs.
    pub fn new(n: usize) -> Self {
        Executors {
            count: n.max(1),
            pinned: true,
        }
    }

    /// Lets the OS place the executors.
    pub fn unpinned(mut self) -> Self {
        self.pinned = false;
        self
    }

    /// The number of executors.
    pub fn count(&self) -> usize {
        self.count
    }
}

/// What [`run_per_core`] hands the application on each executor.
#[derive(Debug)]
pub struct Core {
    /// The executor's index, `0..count`.
    pub index: usize,
    /// This executor's data plane.
    pub mesh: Mesh,
    /// The process's xDS shard (status, config dump).
    pub shard: XdsShard,
}

impl Core {
    /// The whole mesh on the current executor: an xDS shard and one data plane fed by it (what
    /// [`run_per_core`] builds with a single executor), for an application that starts its own
    /// executor. `builder` configures both (it is called twice); stop them with
    /// `mesh.shutdown()` then `shard.shutdown()`.
    pub fn on_this_executor(builder: impl Fn() -> MeshBuilder) -> Result<Core, MeshError> {
        let shard = builder().build_shard(runtime())?;
        let mesh = builder().build_fed(runtime(), &shard)?;
        Ok(Core {
            index: 0,
            mesh,
            shard,
        })
    }
}

/// Runs `app` on every executor, thread-per-core: starts the executors, the xDS shard on the
/// first one, a data plane on each (both configured by `builder`, called once per mesh), and
/// returns each executor's result in executor order once all are done.
pub fn run_per_core<B, A, F, T>(executors: Executors, builder: B, app: A) -> Result<Vec<T>, Error>
where
    B: Fn() -> MeshBuilder + Clone + Send + Sync + 'static,
    A: Fn(Core) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = T> + 'static,
    T: Send + 'static,
{
    check_environment()?;
    let placement = if executors.pinned {
        glommio::PoolPlacement::MaxSpread(executors.count, None)
    } else {
        glommio::PoolPlacement::Unbound(executors.count)
    };
    // The shard is built on executor 0 and handed to the others (it is `Send`).
    let (shard_tx, shard_rx) =
        tokio::sync::watch::channel::<Option<Result<XdsShard, String>>>(None);
    let shard_tx = Arc::new(shard_tx);
    // Indices in start order; executor 0 stops the shard once every app is done.
    let next = Arc::new(AtomicUsize::new(0));
    let count = executors.count;
    let (done_tx, done_rx) = tokio::sync::watch::channel(0usize);
    let done_tx = Arc::new(done_tx);
    let handles = glommio::LocalExecutorPoolBuilder::new(placement)
        .name("skiff")
        .on_all_shards(move || async move {
            let index = next.fetch_add(1, Ordering::Relaxed);
            if index == 0 {
                let shard = builder().build_shard(runtime()).map_err(|e| e.to_string());
                shard_tx.send_replace(Some(shard));
            }
            let mut rx = shard_rx.clone();
            let shard = match rx.wait_for(Option::is_some).await {
                Ok(s) => s.clone(),
                Err(_) => None,
            };
            let shard = match shard {
                Some(Ok(s)) => s,
                Some(Err(e)) => return Err(e),
                None => return Err("the xDS shard did not start".into()),
            };
            let mesh = builder()
                .build_fed(runtime(), &shard)
                .map_err(|e| e.to_string())?;
            let out = app(Core {
                index,
                mesh: mesh.clone(),
                shard: shard.clone(),
            })
            .await;
            mesh.shutdown().await;
            done_tx.send_modify(|n| *n += 1);
            if index == 0 {
                let _ = done_rx.clone().wait_for(|n| *n >= count).await;
                shard.shutdown().await;
            }
            Ok((index, out))
        })
        .map_err(|e| Error::Executor(e.to_string()))?;
    let mut results = Vec::with_capacity(executors.count);
    for r in handles.join_all() {
        match r {
            Ok(Ok(x)) => results.push(x),
            Ok(Err(e)) => return Err(Error::Join(e)),
            Err(e) => return Err(Error::Executor(e.to_string())),
        }
    }
    results.sort_by_key(|(i, _)| *i);
    Ok(results.into_iter().map(|(_, t)| t).collect())
}
