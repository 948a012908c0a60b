//! Throttling of password guesses and registrations: sliding-window counters in the process
//! (each `serve` process throttles on its own).
//!
//! Failed password checks count against three keys: the (account, address) pair, the address,
//! and the account. The pair's limit is low and the account's much higher, so one attacker is
//! stopped early without locking the account's owner out from elsewhere. An account is its user
//! id, so its username and email share one counter; unknown identifiers count per identifier.
//!
//! An attempt is counted when it starts ([`WindowCounter::try_record`] checks and records under
//! one lock), so guesses sent at once cannot all pass the check before any is counted; a right
//! password takes its count back. IPv6 addresses count per /64, the block one subscriber holds.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys kept before expired ones are swept out (at most once a second).
const SWEEP_ABOVE: usize = 100_000;

/// Event times per key within a sliding window.
pub struct WindowCounter {
    window: Duration,
    state: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    events: HashMap<String, VecDeque<Instant>>,
    swept_at: Option<Instant>,
}

impl Counts {
    /// Drops keys with no event in the window, when there are many and not too often.
    fn sweep(&mut self, now: Instant, window: Duration) {
        let due = self.swept_at.is_none_or(|at| now.duration_since(at) > Duration::from_secs(1));
        if self.events.len() > SWEEP_ABOVE && due {
            self.events.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) <= window));
            self.swept_at = Some(now);
        }
    }

    fn wait(&mut self, now: Instant, window: Duration, limits: &[(&str, usize)]) -> Duration {
        let mut wait = Duration::ZERO;
        for (key, max) in limits {
            let Some(times) = self.events.get_mut(*key) else { continue };
            while times.front().is_some_and(|t| now.duration_since(*t) > window) {
                times.pop_front();
            }
            if times.len() >= *max {
                let oldest = *times.front().expect("non-empty");
                wait = wait.max(window.saturating_sub(now.duration_since(oldest)));
            }
        }
        wait
    }
}

impl WindowCounter {
    /// Counts events within `window`.
    pub fn new(window: Duration) -> Self {
        Self { window, state: Mutex::new(Counts::default()) }
    }

    /// `Err(wait)` when any `(key, max)` has `max` events in the window: how long until the
    /// oldest of them leaves it (at least a second).
    pub fn check(&self, limits: &[(&str, usize)]) -> Result<(), Duration> {
        let now = Instant::now();
        let wait = self.state.lock().expect("throttle lock").wait(now, self.window, limits);
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait.max(Duration::from_secs(1)))
        }
    }

    /// Checks `limits` and, when none is reached, counts an event against each of their keys,
    /// under one lock; answers the event's time (for [`WindowCounter::forget`]).
    pub fn try_record(&self, limits: &[(&str, usize)]) -> Result<Instant, Duration> {
        let now = Instant::now();
        let mut counts = self.state.lock().expect("throttle lock");
        counts.sweep(now, self.window);
        let wait = counts.wait(now, self.window, limits);
        if !wait.is_zero() {
            return Err(wait.max(Duration::from_secs(1)));
        }
        for (key, max) in limits {
            let times = counts.events.entry((*key).to_owned()).or_default();
            times.push_back(now);
            // Never more than the limit needs, whatever happens.
            while times.len() > (*max).max(1) {
                times.pop_front();
            }
        }
        Ok(now)
    }

    /// Takes back the event recorded at `at` from `key`.
    pub fn forget(&self, key: &str, at: Instant) {
        let mut counts = self.state.lock().expect("throttle lock");
        if let Some(times) = counts.events.get_mut(key) {
            if let Some(i) = times.iter().rposition(|t| *t == at) {
                times.remove(i);
            }
        }
    }

    /// Forgets a key's events.
    pub fn clear(&self, key: &str) {
        self.state.lock().expect("throttle lock").events.remove(key);
    }
}

/// The throttling key of a client address: itself, or its /64 for IPv6.
pub fn address_key(address: &str) -> String {
    match address.parse::<IpAddr>().map(|ip| ip.to_canonical()) {
        Ok(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(ip) => ip.to_string(),
        Err(_) => address.to_owned(),
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
    /// Refusals audited, one per address and window.
    refusals: WindowCounter,
}

/// The counter keys of one attempt.
struct Keys {
    pair: String,
    address: String,
    account: String,
}

impl Keys {
    fn new(account: &str, address: &str) -> Self {
        let address = address_key(address);
        Self {
            pair: format!("p:{account}|{address}"),
            address: format!("a:{address}"),
            account: format!("u:{account}"),
        }
    }
}

/// A password check under way, already counted as a failure until [`LoginThrottle::succeeded`].
pub struct Attempt {
    keys: Keys,
    at: Instant,
}

impl LoginThrottle {
    /// Counters under `limits`.
    pub fn new(limits: LoginLimits) -> Self {
        Self {
            limits,
            failures: WindowCounter::new(limits.window),
            refusals: WindowCounter::new(limits.window),
        }
    }

    /// Whether a refused attempt from `address` is the first in this window (and so worth an
    /// audit row); the next `true` for the address comes a window later.
    pub fn first_refusal_in_window(&self, address: &str) -> bool {
        self.refusals.try_record(&[(&address_key(address), 1)]).is_ok()
    }

    /// `Err(wait)` when the address alone is over its limit (checked before any lookup).
    pub fn check_address(&self, address: &str) -> Result<(), Duration> {
        self.failures.check(&[(&format!("a:{}", address_key(address)), self.limits.per_address)])
    }

    /// Starts a password check for `account` (the user id, or the normalised identifier when
    /// no account has it) from `address`, counting it as a failure at once; `Err(wait)` when the
    /// pair, the address or the account is over its limit.
    pub fn begin_login(&self, account: &str, address: &str) -> Result<Attempt, Duration> {
        let keys = Keys::new(account, address);
        let at = self.failures.try_record(&[
            (&keys.pair, self.limits.per_account_address),
            (&keys.address, self.limits.per_address),
            (&keys.account, self.limits.per_account),
        ])?;
        Ok(Attempt { keys, at })
    }

    /// Starts a check of a signed-in user's current password: counted per (account, address)
    /// and per address only, so guesses from elsewhere cannot stop the owner changing it.
    pub fn begin_reauthentication(&self, account: &str, address: &str) -> Result<Attempt, Duration> {
        let keys = Keys::new(account, address);
        let at = self.failures.try_record(&[
            (&keys.pair, self.limits.per_account_address),
            (&keys.address, self.limits.per_address),
        ])?;
        Ok(Attempt { keys, at })
    }

    /// The password was right: the attempt is no failure, and the account's and the pair's
    /// earlier failures are forgotten.
    pub fn succeeded(&self, attempt: Attempt) {
        self.failures.forget(&attempt.keys.address, attempt.at);
        self.failures.clear(&attempt.keys.pair);
        self.failures.clear(&attempt.keys.account);
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
            assert!(t.begin_login("usr_ann", "1.2.3.4").is_ok(), "a failure each");
        }
        assert!(t.begin_login("usr_ann", "1.2.3.4").is_err(), "the guessing address is held back");
        let owner = t.begin_login("usr_ann", "5.6.7.8").expect("the owner elsewhere is not");
        assert!(t.begin_login("usr_bob", "1.2.3.4").is_ok(), "nor other accounts from there");
        t.succeeded(owner);
        assert!(t.begin_login("usr_ann", "1.2.3.4").is_err(), "the owner's success frees no guesser");
        for _ in 0..2 {
            let _failed = t.begin_login("usr_ann", "5.6.7.8").unwrap();
        }
        let right = t.begin_login("usr_ann", "5.6.7.8").unwrap();
        t.succeeded(right);
        assert!(t.begin_login("usr_ann", "5.6.7.8").is_ok(), "a right password forgets the pair's failures");
    }

    #[test]
    fn an_account_is_held_back_at_its_higher_ceiling_from_anywhere() {
        let t = throttle(3, 100, 6);
        for i in 0..6 {
            assert!(t.begin_login("usr_ann", &format!("10.0.0.{i}")).is_ok());
        }
        assert!(t.begin_login("usr_ann", "10.0.0.99").is_err());
        assert!(
            t.begin_reauthentication("usr_ann", "10.0.0.99").is_ok(),
            "but the owner may re-authenticate"
        );
        assert!(t.begin_login("usr_bob", "10.0.0.99").is_ok());
    }

    #[test]
    fn attempts_at_once_are_counted_as_they_start() {
        let t = std::sync::Arc::new(throttle(5, 100, 100));
        let started: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..50)
                .map(|_| s.spawn(|| usize::from(t.begin_login("usr_ann", "1.2.3.4").is_ok())))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(started, 5);
    }

    #[test]
    fn ipv6_addresses_count_per_64() {
        let t = throttle(2, 100, 100);
        assert!(t.begin_login("usr_ann", "2001:db8:1:2::1").is_ok());
        assert!(t.begin_login("usr_ann", "2001:db8:1:2:ffff::9").is_ok());
        assert!(t.begin_login("usr_ann", "2001:db8:1:2:abcd::1").is_err(), "same /64");
        assert!(t.begin_login("usr_ann", "2001:db8:1:3::1").is_ok(), "another /64");
        assert_eq!(address_key("::ffff:10.1.2.3"), "10.1.2.3");
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
        assert!(t.begin_login("a", "9.9.9.9").is_ok());
        assert!(t.begin_login("b", "9.9.9.9").is_ok());
        assert!(t.check_address("9.9.9.9").is_err());
        assert!(t.begin_login("c", "9.9.9.9").is_err());
        assert!(t.check_address("9.9.9.8").is_ok());
    }

    #[test]
    fn a_window_counter_forgets_old_events() {
        let c = WindowCounter::new(Duration::from_millis(100));
        assert!(c.try_record(&[("k", 1)]).is_ok());
        assert!(c.check(&[("k", 1)]).is_err());
        std::thread::sleep(Duration::from_millis(150));
        assert!(c.check(&[("k", 1)]).is_ok());
    }
}
