//! One xDS client feeding many data planes: the configuration half of a thread-per-core mesh.
//!
//! An [`XdsShard`] runs a [`ShardMachine`] (an [`XdsClient`] plus the set of listener names the
//! data planes use) on one driver task, with the one ADS stream of the process. Whenever the
//! xDS cache or the set of names changes it builds the A74 snapshot once and publishes the
//! `Arc<Snapshot>` on a watch channel. Each data plane
//! ([`MeshBuilder::build_fed`](crate::MeshBuilder::build_fed)) is a core `Mesh::data_plane`
//! with its own balancers, subchannels and calls: it installs every published snapshot and
//! registers the names its channels open. Nothing on a data plane's RPC path touches the shard.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use skiff_core::ids::AdsStreamId;
use skiff_core::mesh::parse_xds_target;
use skiff_core::resource::snapshot::Snapshot;
use skiff_core::rng::Rng;
use skiff_core::time::{Deadline, Instant};
use skiff_core::xds::snapshot::build_snapshot;
use skiff_core::xds::{ResourceType, XdsClient, XdsClientConfig, XdsEvent};
use tokio::sync::watch;

use crate::ads::{AdsAction, AdsMachine, DriverClosed, DriverHandle};

/// An [`XdsClient`] that builds one snapshot for many data planes.
#[derive(Debug)]
pub struct ShardMachine {
    xds: XdsClient,
    roots: BTreeSet<String>,
    /// Server Listeners watched, with how many servers watch each (one per executor when every
    /// executor serves the same port).
    servers: BTreeMap<String, usize>,
    built_from: Option<u64>,
    snapshot: Arc<Snapshot>,
    generation: u64,
    publish: watch::Sender<Arc<Snapshot>>,
}

impl ShardMachine {
    /// A shard publishing on `publish`.
    pub fn new(
        config: XdsClientConfig,
        rng: Rng,
        now: Instant,
        publish: watch::Sender<Arc<Snapshot>>,
    ) -> Self {
        ShardMachine {
            xds: XdsClient::new(config, rng, now),
            roots: BTreeSet::new(),
            servers: BTreeMap::new(),
            built_from: None,
            snapshot: Arc::new(Snapshot::default()),
            generation: 0,
            publish,
        }
    }

    /// The xDS client (config dump, cache).
    pub fn xds(&self) -> &XdsClient {
        &self.xds
    }

    /// The last snapshot built.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    /// Adds a listener name (`name` of `xds:///name`) to the snapshot: watched from now on,
    /// for as long as the shard runs (data planes come and go; names are not reference-counted
    /// across them).
    pub fn add_root(&mut self, now: Instant, name: &str) {
        if self.roots.insert(name.to_string()) {
            self.xds.watch(now, ResourceType::Listener, name);
            self.built_from = None;
            self.refresh();
        }
    }

    /// Watches the server Listener `name` (gRFC A36) for one more server.
    pub fn watch_server_listener(&mut self, now: Instant, name: &str) {
        let n = self.servers.entry(name.to_string()).or_insert(0);
        *n += 1;
        if *n == 1 {
            self.xds.watch(now, ResourceType::Listener, name);
        }
    }

    /// One server stopped watching `name`; the last one unsubscribes it.
    pub fn unwatch_server_listener(&mut self, now: Instant, name: &str) {
        if let Some(n) = self.servers.get_mut(name) {
            *n -= 1;
            if *n == 0 {
                self.servers.remove(name);
                if !self.roots.contains(name) {
                    self.xds.unwatch(now, ResourceType::Listener, name);
                }
            }
        }
    }

    /// Rebuilds and publishes the snapshot if the cache or the names moved.
    fn refresh(&mut self) {
        let g = self.xds.generation();
        if self.built_from == Some(g) {
            return;
        }
        self.built_from = Some(g);
        let snap = build_snapshot(
            &self.xds,
            self.roots.iter().map(String::as_str),
            Some(&self.snapshot),
        );
        self.snapshot = snap;
        self.generation += 1;
        self.publish.send_replace(Arc::clone(&self.snapshot));
    }
}

impl AdsMachine for ShardMachine {
    type Event = XdsEvent;

    fn ads_method(&self) -> &'static str {
        self.xds.config().protocol.method()
    }
    fn handle_ads_open(&mut self, now: Instant, stream: AdsStreamId) {
        self.xds.handle_ads_open(now, stream);
        self.refresh();
    }
    fn handle_ads_data(&mut self, now: Instant, stream: AdsStreamId, data: &[u8]) {
        self.xds.handle_ads_data(now, stream, data);
        self.refresh();
    }
    fn handle_ads_closed(&mut self, now: Instant, stream: AdsStreamId, reason: &str) {
        self.xds.handle_ads_closed(now, stream, reason);
        self.refresh();
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.xds.handle_timeout(now);
        self.refresh();
    }
    fn poll_action(&mut self) -> Option<AdsAction<XdsEvent>> {
        AdsMachine::poll_action(&mut self.xds)
    }
    fn poll_timeout(&self) -> Option<Deadline> {
        self.xds.poll_timeout()
    }
    fn generation(&self) -> u64 {
        self.generation
    }
    fn trace_event(event: &XdsEvent) {
        <XdsClient as AdsMachine>::trace_event(event);
    }
}

/// A running shard: its driver handle and the snapshots it publishes. Cheap to clone and
/// `Send`: hand a clone to every data plane.
#[derive(Clone, Debug)]
pub struct XdsShard {
    handle: DriverHandle<ShardMachine>,
    snapshots: watch::Receiver<Arc<Snapshot>>,
}

impl XdsShard {
    pub(crate) fn new(
        handle: DriverHandle<ShardMachine>,
        snapshots: watch::Receiver<Arc<Snapshot>>,
    ) -> Self {
        XdsShard { handle, snapshots }
    }

    /// The driver of the shard's xDS client (config dump, events, status, shutdown).
    pub fn driver(&self) -> &DriverHandle<ShardMachine> {
        &self.handle
    }

    /// The published snapshots.
    pub fn snapshots(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    /// Asks the shard to watch the listener of an `xds:` target (without waiting).
    pub fn register(&self, target: &str) -> Result<(), DriverClosed> {
        let Ok(name) = parse_xds_target(target) else {
            return Ok(());
        };
        let name = name.to_string();
        self.handle.post(move |m, now| m.add_root(now, &name))
    }

    /// Stops the shard's driver (closing the ADS stream) and waits for it.
    pub async fn shutdown(&self) {
        self.handle.shutdown().await;
    }
}
