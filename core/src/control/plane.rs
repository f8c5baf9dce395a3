//! The control plane: configuration, translation and the ADS server glued together.

use crate::ids::AdsStreamId;
use crate::time::Instant;

use super::ads::{AdsDump, AdsError, AdsRequest, AdsResponse, AdsServer};
use super::config::{ConfigErrors, ConfigWarning, MeshConfig};
use super::interfaces::ResolvedInterfaces;
use super::resources::Resources;
use super::translate::{Translation, translate};

/// The embedded control plane: holds the last good configuration, re-translates when the
/// configuration changes or a server announces (or withdraws) interfaces, and serves the result
/// on every ADS stream.
///
/// Same shape as the rest of the core: `handle_*` inputs with `now`, drain
/// [`ControlPlane::poll_output`] after each.
#[derive(Debug)]
pub struct ControlPlane {
    config: MeshConfig,
    translation: Translation,
    ads: AdsServer,
    seen_generation: u64,
    last_rejected: Option<ConfigErrors>,
}

/// Everything an operator wants to see (the `skiff config-dump` payload).
#[derive(Clone, Debug)]
pub struct ControlPlaneDump {
    /// Per stream: node, subscriptions, what was sent, acked, nacked.
    pub ads: AdsDump,
    /// The interface map in force, and announcement problems.
    pub interfaces: ResolvedInterfaces,
    /// Warnings of the configuration in force.
    pub warnings: Vec<ConfigWarning>,
    /// Why the last configuration update was rejected, if it was.
    pub last_rejected: Option<ConfigErrors>,
}

impl ControlPlane {
    /// Starts serving `config`.
    pub fn new(_now: Instant, config: MeshConfig) -> Result<Self, ConfigErrors> {
        let ads = AdsServer::default();
        let translation = translate(&config, ads.interfaces())?;
        let ads = AdsServer::new(translation.resources.clone());
        Ok(ControlPlane {
            config,
            translation,
            ads,
            seen_generation: 0,
            last_rejected: None,
        })
    }

    /// Replaces the configuration. On error nothing changes: the last good configuration keeps
    /// being served, and the errors are kept for the dump.
    pub fn set_config(&mut self, now: Instant, config: MeshConfig) -> Result<(), ConfigErrors> {
        match translate(&config, self.ads.interfaces()) {
            Ok(t) => {
                self.config = config;
                self.last_rejected = None;
                self.apply(now, t);
                Ok(())
            }
            Err(e) => {
                self.last_rejected = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Feeds one decoded request from a stream.
    pub fn handle_request(
        &mut self,
        now: Instant,
        stream: AdsStreamId,
        request: AdsRequest,
    ) -> Result<(), AdsError> {
        let r = self.ads.handle_request(now, stream, request);
        self.retranslate_if_announcements_changed(now);
        r
    }

    /// A stream ended; its interface announcements are withdrawn.
    pub fn handle_stream_closed(&mut self, now: Instant, stream: AdsStreamId) {
        self.ads.handle_stream_closed(now, stream);
        self.retranslate_if_announcements_changed(now);
    }

    /// The next response to send.
    pub fn poll_output(&mut self) -> Option<(AdsStreamId, AdsResponse)> {
        self.ads.poll_output()
    }

    /// The configuration in force.
    pub fn config(&self) -> &MeshConfig {
        &self.config
    }

    /// The resources being served.
    pub fn resources(&self) -> &Resources {
        self.ads.resources()
    }

    /// The interface map in force.
    pub fn interfaces(&self) -> &ResolvedInterfaces {
        &self.translation.interfaces
    }

    /// The ADS server (for its dump and announcements).
    pub fn ads(&self) -> &AdsServer {
        &self.ads
    }

    /// A snapshot for operators.
    pub fn config_dump(&self) -> ControlPlaneDump {
        ControlPlaneDump {
            ads: self.ads.config_dump(),
            interfaces: self.translation.interfaces.clone(),
            warnings: self.translation.warnings.clone(),
            last_rejected: self.last_rejected.clone(),
        }
    }

    fn apply(&mut self, now: Instant, t: Translation) {
        self.ads.set_resources(now, t.resources.clone());
        self.translation = t;
    }

    fn retranslate_if_announcements_changed(&mut self, now: Instant) {
        let generation = self.ads.interfaces_generation();
        if generation == self.seen_generation {
            return;
        }
        self.seen_generation = generation;
        // The configuration was accepted before, so this only fails if validation itself
        // changed; keep serving what we have in that case.
        match translate(&self.config, self.ads.interfaces()) {
            Ok(t) => self.apply(now, t),
            Err(e) => self.last_rejected = Some(e),
        }
    }
}
