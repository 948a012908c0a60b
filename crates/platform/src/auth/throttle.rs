//! Throttling of password guesses and registrations: sliding-window counters in the process
//! (each `serve` process throttles on its own).
//!
//! Failed password checks count against three keys: the (account, address) pair, the address,
//! and the account. The pair's limit is low and the account's much higher, so one attacker is
//! stopped early without locking the account's owner out from elsewhere. An account is its user
//! id, so its username and email share one counter; unknown identifiers count per identifier.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys kept before expired ones are swept out.
const SWEEP_ABOVE: usize = 100_000;

/// Event times per key within a sliding window.
pub struct WindowCounter {
    window: Duration,
    events: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl WindowCounter {
    /// Counts events within `window`.
    pub fn new(window: Duration) -> Self {
        Self { window, events: Mutex::new(HashMap::new()) }
    }

    /// `Err(wait)` when any `(key, max)` has `max` events in the window: how long until the
    /// oldest of them leaves it (at least a second).
    pub fn check(&self, limits: &[(&str, usize)]) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.events.lock().expect("throttle lock");
        let mut wait = Duration::ZERO;
        for (key, max) in limits {
            let Some(times) = map.get_mut(*key) else { continue };
            while times.front().is_some_and(|t| now.duration_since(*t) > self.window) {
                times.pop_front();
            }
            if times.len() >= *max {
                let oldest = *times.front().expect("non-empty");
                wait = wait.max(self.window.saturating_sub(now.duration_since(oldest)));
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait.max(Duration::from_secs(1)))
        }
    }

    /// Counts an event against each key.
    pub fn record(&self, keys: &[&str]) {
        let now = Instant::now();
        let mut map = self.events.lock().expect("throttle lock");
        if map.len() > SWEEP_ABOVE {
            map.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) <= self.window));
        }
        for key in keys {
            let times = map.entry((*key).to_owned()).or_default();
            times.push_back(now);
            // A key never needs more than its highest limit; keep the deque bounded anyway.
            if times.len() > 10_000 {
                times.pop_front();
            }
        }
    }

    /// Forgets a key's events.
    pub fn clear(&self, key: &str) {
        self.events.lock().expect("throttle lock").remove(key);
    }
}

/// Limits on failed password checks within one window.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    /// The window.
    pub window: Duration,
    /// Failures per (account, address).
    pub per_account_address: usize,
    /// Failures per address, whatever the account.
    pub per_address: usize,
    /// Failures per account, whatever the address.
    pub per_account: usize,
}

/// Counters of failed password checks (login and change-password).
pub struct LoginThrottle {
    limits: LoginLimits,
    failures: WindowCounter,
    /// When each address last had a refusal audited.
    refusals_audited: Mutex<HashMap<String, Instant>>,
}

/// The counter keys of one attempt.
struct Keys {
    pair: String,
    address: String,
    account: String,
}

impl Keys {
    fn new(account: &str, address: &str) -> Self {
        Self {
            pair: format!("p:{account}|{address}"),
            address: format!("a:{address}"),
            account: format!("u:{account}"),
        }
    }
}

impl LoginThrottle {
    /// Counters under `limits`.
    pub fn new(limits: LoginLimits) -> Self {
        Self {
            limits,
            failures: WindowCounter::new(limits.window),
            refusals_audited: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a refused attempt from `address` is the first in this window (and so worth an
    /// audit row); the next `true` for the address comes a window later.
    pub fn first_refusal_in_window(&self, address: &str) -> bool {
        let now = Instant::now();
        let window = self.limits.window;
        let mut audited = self.refusals_audited.lock().expect("throttle lock");
        if audited.len() > SWEEP_ABOVE {
            audited.retain(|_, at| now.duration_since(*at) <= window);
        }
        match audited.get(address) {
            Some(at) if now.duration_since(*at) <= window => false,
            _ => {
                audited.insert(address.to_owned(), now);
                true
            }
        }
    }

    /// `Err(wait)` when the address alone is over its limit (checked before any lookup).
    pub fn check_address(&self, address: &str) -> Result<(), Duration> {
        self.failures.check(&[(&format!("a:{address}"), self.limits.per_address)])
    }

    /// `Err(wait)` when the attempt's pair, address or account is over its limit. `account` is
    /// the user id, or the normalised identifier when no account has it.
    pub fn check(&self, account: &str, address: &str) -> Result<(), Duration> {
        let k = Keys::new(account, address);
        self.failures.check(&[
            (&k.pair, self.limits.per_account_address),
            (&k.address, self.limits.per_address),
            (&k.account, self.limits.per_account),
        ])
    }

    /// Counts a failed password check against the pair, the address and the account.
    pub fn record_failure(&self, account: &str, address: &str) {
        let k = Keys::new(account, address);
        self.failures.record(&[&k.pair, &k.address, &k.account]);
    }

    /// Forgets the account's failures after its password was given right from `address`.
    pub fn clear(&self, account: &str, address: &str) {
        let k = Keys::new(account, address);
        self.failures.clear(&k.pair);
        self.failures.clear(&k.account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(per_account_address: usize, per_address: usize, per_account: usize) -> LoginThrottle {
        LoginThrottle::new(LoginLimits {
            window: Duration::from_secs(60),
            per_account_address,
            per_address,
            per_account,
        })
    }

    #[test]
    fn one_address_is_held_back_on_an_account_while_others_still_get_in() {
        let t = throttle(3, 100, 10);
        for _ in 0..3 {
            assert!(t.check("usr_ann", "1.2.3.4").is_ok());
            t.record_failure("usr_ann", "1.2.3.4");
        }
        assert!(t.check("usr_ann", "1.2.3.4").is_err(), "the guessing address is held back");
        assert!(t.check("usr_ann", "5.6.7.8").is_ok(), "the owner elsewhere is not");
        assert!(t.check("usr_bob", "1.2.3.4").is_ok(), "nor other accounts from there");
        t.clear("usr_ann", "1.2.3.4");
        assert!(t.check("usr_ann", "1.2.3.4").is_ok());
    }

    #[test]
    fn an_account_is_held_back_at_its_higher_ceiling_from_anywhere() {
        let t = throttle(3, 100, 6);
        for i in 0..6 {
            t.record_failure("usr_ann", &format!("10.0.0.{i}"));
        }
        assert!(t.check("usr_ann", "10.0.0.99").is_err());
        assert!(t.check("usr_bob", "10.0.0.99").is_ok());
    }

    #[test]
    fn one_refusal_per_address_and_window_is_audited() {
        let t = LoginThrottle::new(LoginLimits {
            window: Duration::from_millis(200),
            per_account_address: 1,
            per_address: 1,
            per_account: 1,
        });
        assert!(t.first_refusal_in_window("1.1.1.1"));
        assert!(!t.first_refusal_in_window("1.1.1.1"));
        assert!(t.first_refusal_in_window("2.2.2.2"), "per address");
        std::thread::sleep(Duration::from_millis(250));
        assert!(t.first_refusal_in_window("1.1.1.1"), "again in the next window");
    }

    #[test]
    fn an_address_is_held_back_across_accounts() {
        let t = throttle(100, 2, 100);
        t.record_failure("a", "9.9.9.9");
        t.record_failure("b", "9.9.9.9");
        assert!(t.check_address("9.9.9.9").is_err());
        assert!(t.check("c", "9.9.9.9").is_err());
        assert!(t.check_address("9.9.9.8").is_ok());
    }

    #[test]
    fn a_window_counter_forgets_old_events() {
        let c = WindowCounter::new(Duration::from_millis(100));
        c.record(&["k"]);
        assert!(c.check(&[("k", 1)]).is_err());
        std::thread::sleep(Duration::from_millis(150));
        assert!(c.check(&[("k", 1)]).is_ok());
    }
}
