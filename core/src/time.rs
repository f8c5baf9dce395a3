//! Time as data.
//!
//! The core never reads a clock. The driver picks a timeline (usually `epoch = now()` when it
//! starts), converts its clock readings to [`Instant`]s on that timeline and passes them into every
//! `handle_*` call. The core answers with [`Deadline`]s: "call `handle_timeout` no later than this".
//! `skiff-sim` drives the same API with a fake clock that jumps straight to the next deadline.

use core::fmt;
use core::time::Duration;

/// A point on the driver's timeline, in nanoseconds since the driver's epoch.
///
/// Monotonic by contract: the core clamps readings that go backwards (see
/// [`Instant::max`]) instead of trusting them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The driver's epoch.
    pub const ZERO: Instant = Instant(0);
    /// The end of time; a deadline here never fires.
    pub const MAX: Instant = Instant(u64::MAX);

    /// An instant `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    /// An instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis.saturating_mul(1_000_000))
    }

    /// An instant `secs` seconds after the epoch.
    pub const fn from_secs(secs: u64) -> Self {
        Instant(secs.saturating_mul(1_000_000_000))
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating at [`Instant::MAX`].
    pub fn saturating_add(self, d: Duration) -> Instant {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(nanos))
    }

    /// `self - d`, saturating at the epoch.
    pub fn saturating_sub(self, d: Duration) -> Instant {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_sub(nanos))
    }

    /// Time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl core::ops::Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        self.saturating_add(d)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / 1_000_000_000;
        let nanos = self.0 % 1_000_000_000;
        write!(f, "t+{secs}.{nanos:09}s")
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What a timer is for. Drivers only need `at`; the kind makes traces and tests readable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TimerKind {
    /// Reconnect the ADS stream after backoff.
    AdsReconnect,
    /// A requested xDS resource did not arrive in time (gRFC A57: 15 s).
    ResourceDoesNotExist,
    /// A call's deadline (gRFC A31).
    CallDeadline,
    /// A retry attempt's backoff ran out (gRFC A44).
    RetryBackoff,
    /// A fault-injection delay ended (gRFC A33).
    FaultDelay,
    /// Outlier detection interval (gRFC A50).
    OutlierDetection,
    /// Reconnect a subchannel after backoff.
    SubchannelBackoff,
    /// Some other internal timer.
    Other,
}

/// "Call `handle_timeout` no later than `at`." Spurious or early calls are harmless no-ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline {
    /// When the timer fires.
    pub at: Instant,
    /// What it is for.
    pub kind: TimerKind,
}

impl Deadline {
    /// A deadline of `kind` at `at`.
    pub const fn new(at: Instant, kind: TimerKind) -> Self {
        Deadline { at, kind }
    }

    /// The earlier of two optional deadlines.
    pub fn earliest(a: Option<Deadline>, b: Option<Deadline>) -> Option<Deadline> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.at < a.at { b } else { a }),
            (a, None) => a,
            (None, b) => b,
        }
    }
}

/// Keeps time monotonic: drivers may pass readings that go backwards (clock bugs, replay), the
/// core never does.
#[derive(Clone, Copy, Debug, Default)]
pub struct Clock {
    last: Instant,
}

impl Clock {
    /// A clock that starts at `now`.
    pub const fn new(now: Instant) -> Self {
        Clock { last: now }
    }

    /// Accept a reading; returns it, or the last reading if it went backwards.
    pub fn observe(&mut self, now: Instant) -> Instant {
        if now > self.last {
            self.last = now;
        }
        self.last
    }

    /// The latest accepted reading.
    pub const fn now(&self) -> Instant {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(
            Instant::ZERO.saturating_sub(Duration::from_secs(1)),
            Instant::ZERO
        );
        assert_eq!(
            Instant::from_secs(2).saturating_duration_since(Instant::from_secs(3)),
            Duration::ZERO
        );
        assert_eq!(Instant::from_millis(1500).as_nanos(), 1_500_000_000);
    }

    #[test]
    fn clock_clamps_backwards_time() {
        let mut c = Clock::new(Instant::from_secs(10));
        assert_eq!(c.observe(Instant::from_secs(5)), Instant::from_secs(10));
        assert_eq!(c.observe(Instant::from_secs(11)), Instant::from_secs(11));
    }

    #[test]
    fn earliest_picks_the_first() {
        let a = Deadline::new(Instant::from_secs(2), TimerKind::Other);
        let b = Deadline::new(Instant::from_secs(1), TimerKind::AdsReconnect);
        assert_eq!(Deadline::earliest(Some(a), Some(b)), Some(b));
        assert_eq!(Deadline::earliest(None, Some(a)), Some(a));
        assert_eq!(Deadline::earliest(None, None), None);
    }
}
