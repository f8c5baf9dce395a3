//! Subchannels: one connection slot per endpoint address, shared by every cluster that lists
//! the address. The core decides when to connect and when to give up on an address; the driver
//! owns the sockets and reports connectivity. After a failure the core waits a jittered
//! exponential backoff (gRPC's connection backoff) before asking to connect again.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::ids::{IdAllocator, SubchannelId};
use crate::plane::Connectivity;
use crate::rng::Rng;
use crate::time::Instant;
use crate::xds::backoff::{Backoff, BackoffConfig};

/// One subchannel.
#[derive(Clone, Debug)]
pub struct Subchannel {
    /// Its id.
    pub id: SubchannelId,
    /// The endpoint address.
    pub address: SocketAddr,
    /// Last reported connectivity.
    pub state: Connectivity,
    backoff: Backoff,
    /// When to ask for a reconnect (after a failure).
    pub reconnect_at: Option<Instant>,
}

/// The subchannel table.
#[derive(Debug)]
pub struct Subchannels {
    by_addr: BTreeMap<SocketAddr, Subchannel>,
    ids: IdAllocator,
    backoff: BackoffConfig,
}

impl Subchannels {
    /// An empty table.
    pub fn new(backoff: BackoffConfig) -> Self {
        Subchannels {
            by_addr: BTreeMap::new(),
            ids: IdAllocator::default(),
            backoff,
        }
    }

    /// The subchannel for `addr`, if any.
    pub fn get(&self, addr: &SocketAddr) -> Option<&Subchannel> {
        self.by_addr.get(addr)
    }

    /// Finds a subchannel by id.
    pub fn by_id(&self, id: SubchannelId) -> Option<&Subchannel> {
        self.by_addr.values().find(|s| s.id == id)
    }

    /// All subchannels.
    pub fn iter(&self) -> impl Iterator<Item = &Subchannel> {
        self.by_addr.values()
    }

    /// Makes the table hold exactly `wanted`. Returns (created, removed) so the caller can
    /// emit `Connect` / `Disconnect`.
    pub fn sync(
        &mut self,
        wanted: &std::collections::BTreeSet<SocketAddr>,
    ) -> (Vec<(SubchannelId, SocketAddr)>, Vec<SubchannelId>) {
        let mut removed = Vec::new();
        let ids = &mut self.ids;
        self.by_addr.retain(|addr, sc| {
            if wanted.contains(addr) {
                true
            } else {
                ids.free(sc.id.index(), sc.id.generation());
                removed.push(sc.id);
                false
            }
        });
        let mut created = Vec::new();
        for addr in wanted {
            if !self.by_addr.contains_key(addr) {
                let (i, g) = self.ids.alloc();
                let id = SubchannelId::new(i, g);
                self.by_addr.insert(
                    *addr,
                    Subchannel {
                        id,
                        address: *addr,
                        state: Connectivity::Connecting,
                        backoff: Backoff::new(self.backoff),
                        reconnect_at: None,
                    },
                );
                created.push((id, *addr));
            }
        }
        (created, removed)
    }

    /// The driver reports connectivity. Returns `true` if the state changed. On a failure the
    /// reconnect time is set from the backoff; on `Ready` the backoff resets.
    pub fn set_state(
        &mut self,
        now: Instant,
        id: SubchannelId,
        state: Connectivity,
        rng: &mut Rng,
    ) -> bool {
        let Some(sc) = self.by_addr.values_mut().find(|s| s.id == id) else {
            return false;
        };
        if sc.state == state {
            return false;
        }
        sc.state = state;
        match state {
            Connectivity::Ready => {
                sc.backoff.reset();
                sc.reconnect_at = None;
            }
            Connectivity::TransientFailure => {
                sc.reconnect_at = Some(now.saturating_add(sc.backoff.next_delay(rng)));
            }
            // An idle connection (closed by the peer or by idleness) reconnects at once:
            // skiff's balancers want every endpoint connected.
            Connectivity::Idle => sc.reconnect_at = Some(now),
            Connectivity::Connecting => sc.reconnect_at = None,
        }
        true
    }

    /// Subchannels whose reconnect time has come; they move to `Connecting`.
    pub fn due_reconnects(&mut self, now: Instant) -> Vec<(SubchannelId, SocketAddr)> {
        let mut out = Vec::new();
        for sc in self.by_addr.values_mut() {
            if sc.reconnect_at.is_some_and(|t| t <= now) {
                sc.reconnect_at = None;
                sc.state = Connectivity::Connecting;
                out.push((sc.id, sc.address));
            }
        }
        out
    }

    /// The earliest reconnect time.
    pub fn next_reconnect(&self) -> Option<Instant> {
        self.by_addr.values().filter_map(|s| s.reconnect_at).min()
    }
}
