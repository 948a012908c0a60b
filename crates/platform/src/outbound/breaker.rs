//! The circuit breaker of one outbound client: it opens after N consecutive failures, fails
//! calls fast while open, and after a cool-down lets exactly one probe through, whose outcome
//! closes it again or re-opens it.
//!
//! Written here rather than taken from a crate: the ring-buffer breakers on crates.io
//! (`recloser`) trip on a failure *rate* and let a window of calls through half-open, while
//! this contract is consecutive failures and a single probe, with the state readable for the
//! `sightline_outbound_breaker_state` gauge.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; consecutive failures are counted.
    Closed,
    /// Calls fail fast until the cool-down ends.
    Open,
    /// One probe call is under way; others fail fast.
    HalfOpen,
}

impl BreakerState {
    /// The gauge value: 0 closed, 1 open, 2 half-open.
    pub fn gauge(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::Open => 1.0,
            Self::HalfOpen => 2.0,
        }
    }
}

#[derive(Debug)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

/// A consecutive-failure circuit breaker. A threshold of 0 disables it.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<Inner>,
}

/// Leave to make one call; report its outcome with [`Permit::record`]. A probe dropped without
/// an outcome (its call was cancelled) counts as a failure, so the breaker never stays
/// half-open for ever.
#[must_use]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    recorded: bool,
}

impl Breaker {
    /// A closed breaker opening after `threshold` consecutive failures for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self { threshold, cooldown, inner: Mutex::new(Inner::Closed { failures: 0 }) }
    }

    /// The current state (an open breaker whose cool-down is over reads as open until the next
    /// call probes).
    pub fn state(&self) -> BreakerState {
        match *self.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen => BreakerState::HalfOpen,
        }
    }

    /// A permit for one call, or `None` when calls must fail fast.
    pub fn admit(&self) -> Option<Permit<'_>> {
        if self.threshold == 0 {
            return Some(Permit { breaker: self, probe: false, recorded: false });
        }
        let mut inner = self.lock();
        let probe = match *inner {
            Inner::Closed { .. } => false,
            Inner::Open { until } if Instant::now() >= until => {
                *inner = Inner::HalfOpen;
                true
            }
            Inner::Open { .. } | Inner::HalfOpen => return None,
        };
        Some(Permit { breaker: self, probe, recorded: false })
    }

    fn settle(&self, success: bool) {
        if self.threshold == 0 {
            return;
        }
        let mut inner = self.lock();
        *inner = match (&*inner, success) {
            (_, true) => Inner::Closed { failures: 0 },
            (Inner::Closed { failures }, false) if failures + 1 < self.threshold => {
                Inner::Closed { failures: failures + 1 }
            }
            (Inner::Open { until }, false) => Inner::Open { until: *until },
            (_, false) => Inner::Open { until: Instant::now() + self.cooldown },
        };
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Permit<'_> {
    /// Records the call's outcome: `true` when the service answered as a healthy one does.
    pub fn record(mut self, success: bool) {
        self.recorded = true;
        self.breaker.settle(success);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.recorded && self.probe {
            self.breaker.settle(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn it_opens_after_n_consecutive_failures_and_probes_once_after_the_cooldown() {
        let b = Breaker::new(3, Duration::from_secs(10));
        for _ in 0..2 {
            b.admit().unwrap().record(false);
        }
        b.admit().unwrap().record(true);
        assert_eq!(b.state(), BreakerState::Closed, "a success resets the count");
        for _ in 0..3 {
            b.admit().unwrap().record(false);
        }
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.admit().is_none(), "open fails fast");
        tokio::time::advance(Duration::from_secs(10)).await;
        let probe = b.admit().expect("one probe after the cool-down");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(b.admit().is_none(), "only one probe at a time");
        probe.record(false);
        assert_eq!(b.state(), BreakerState::Open, "a failed probe re-opens");
        tokio::time::advance(Duration::from_secs(10)).await;
        b.admit().unwrap().record(true);
        assert_eq!(b.state(), BreakerState::Closed, "a good probe closes");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_counts_as_a_failure() {
        let b = Breaker::new(1, Duration::from_secs(1));
        b.admit().unwrap().record(false);
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(b.admit().unwrap());
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn a_zero_threshold_never_opens() {
        let b = Breaker::new(0, Duration::from_secs(1));
        for _ in 0..10 {
            b.admit().unwrap().record(false);
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
