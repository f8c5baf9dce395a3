//! Handles the core gives out. Each is an index plus a generation, so a stale handle (a call that
//! ended, a stream that was replaced) is recognised and ignored instead of aliasing a new one.

use core::fmt;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name {
            index: u32,
            generation: u32,
        }

        impl $name {
            /// Builds a handle from its parts (drivers and tests; the core allocates them).
            pub const fn new(index: u32, generation: u32) -> Self {
                $name { index, generation }
            }
            /// The slot index.
            pub const fn index(self) -> u32 {
                self.index
            }
            /// The slot's generation: bumped every time the slot is reused.
            pub const fn generation(self) -> u32 {
                self.generation
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}.{}"), self.index, self.generation)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }
    };
}

id!(
    /// A channel: one `open_channel` target (`xds:///name` or a plain address).
    ChannelId,
    "ch"
);
id!(
    /// One RPC started with `start_call`, across all of its attempts.
    CallId,
    "call"
);
id!(
    /// A connection slot to one endpoint address.
    SubchannelId,
    "sc"
);
id!(
    /// One ADS stream to the control plane. A reconnect gets a new generation.
    AdsStreamId,
    "ads"
);

/// Allocates ids with generation counting; a freed index comes back with the next generation.
#[derive(Debug, Default, Clone)]
pub struct IdAllocator {
    generations: Vec<u32>,
    free: Vec<u32>,
}

impl IdAllocator {
    /// Allocates `(index, generation)`.
    pub fn alloc(&mut self) -> (u32, u32) {
        if let Some(index) = self.free.pop() {
            let generation = self.generations.get(index as usize).copied().unwrap_or(0);
            (index, generation)
        } else {
            let index = u32::try_from(self.generations.len()).unwrap_or(u32::MAX);
            self.generations.push(0);
            (index, 0)
        }
    }

    /// Frees `(index, generation)`; a stale or double free is ignored.
    pub fn free(&mut self, index: u32, generation: u32) {
        if let Some(g) = self.generations.get_mut(index as usize)
            && *g == generation
        {
            *g = g.wrapping_add(1);
            self.free.push(index);
        }
    }

    /// Whether `(index, generation)` is currently allocated.
    pub fn is_live(&self, index: u32, generation: u32) -> bool {
        self.generations.get(index as usize) == Some(&generation) && !self.free.contains(&index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_bumps_generation() {
        let mut a = IdAllocator::default();
        let (i, g) = a.alloc();
        assert!(a.is_live(i, g));
        a.free(i, g);
        assert!(!a.is_live(i, g));
        a.free(i, g); // double free ignored
        let (i2, g2) = a.alloc();
        assert_eq!((i2, g2), (i, g + 1));
        let (i3, _) = a.alloc();
        assert_ne!(i3, i2);
        assert_eq!(format!("{:?}", CallId::new(3, 1)), "call3.1");
    }
}
