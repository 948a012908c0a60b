//! Login throttling: failed attempts per username and per client address within a window.
//! Counters live in the process (each `serve` process throttles on its own).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sliding-window counters of failed logins.
pub struct LoginThrottle {
    window: Duration,
    max_per_user: usize,
    max_per_address: usize,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// When each address last had a refusal audited.
    refusals_audited: Mutex<HashMap<String, Instant>>,
}

impl LoginThrottle {
    /// At most `max_per_user` failures per username and `max_per_address` per address within
    /// `window`.
    pub fn new(window: Duration, max_per_user: usize, max_per_address: usize) -> Self {
        Self {
            window,
            max_per_user,
            max_per_address,
            failures: Mutex::new(HashMap::new()),
            refusals_audited: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a refused attempt from `address` is the first in this window (and so worth an
    /// audit row); the next `true` for the address comes a window later.
    pub fn first_refusal_in_window(&self, address: &str) -> bool {
        let now = Instant::now();
        let mut audited = self.refusals_audited.lock().expect("throttle lock");
        if audited.len() > 100_000 {
            audited.retain(|_, at| now.duration_since(*at) <= self.window);
        }
        match audited.get(address) {
            Some(at) if now.duration_since(*at) <= self.window => false,
            _ => {
                audited.insert(address.to_owned(), now);
                true
            }
        }
    }

    /// `Err(wait)` when either key is over its limit.
    pub fn check(&self, user: &str, address: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.failures.lock().expect("throttle lock");
        let mut wait = Duration::ZERO;
        for (key, max) in
            [(format!("u:{user}"), self.max_per_user), (format!("a:{address}"), self.max_per_address)]
        {
            if let Some(times) = map.get_mut(&key) {
                while times.front().is_some_and(|t| now.duration_since(*t) > self.window) {
                    times.pop_front();
                }
                if times.len() >= max {
                    let oldest = *times.front().expect("non-empty");
                    wait = wait.max(self.window.saturating_sub(now.duration_since(oldest)));
                }
            }
        }
        if wait.is_zero() {
            Ok(())
        } else {
            Err(wait.max(Duration::from_secs(1)))
        }
    }

    /// Counts a failure against both keys.
    pub fn record_failure(&self, user: &str, address: &str) {
        let now = Instant::now();
        let mut map = self.failures.lock().expect("throttle lock");
        if map.len() > 100_000 {
            map.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) <= self.window));
        }
        for key in [format!("u:{user}"), format!("a:{address}")] {
            map.entry(key).or_default().push_back(now);
        }
    }

    /// Forgets a username's failures after a successful login.
    pub fn clear_user(&self, user: &str) {
        self.failures.lock().expect("throttle lock").remove(&format!("u:{user}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_held_back_after_too_many_failures() {
        let t = LoginThrottle::new(Duration::from_secs(60), 3, 10);
        for _ in 0..3 {
            assert!(t.check("ann", "1.2.3.4").is_ok());
            t.record_failure("ann", "1.2.3.4");
        }
        assert!(t.check("ann", "5.6.7.8").is_err(), "per user, whatever the address");
        assert!(t.check("bob", "1.2.3.4").is_ok());
        t.clear_user("ann");
        assert!(t.check("ann", "1.2.3.4").is_ok());
    }

    #[test]
    fn one_refusal_per_address_and_window_is_audited() {
        let t = LoginThrottle::new(Duration::from_millis(200), 1, 1);
        assert!(t.first_refusal_in_window("1.1.1.1"));
        assert!(!t.first_refusal_in_window("1.1.1.1"));
        assert!(t.first_refusal_in_window("2.2.2.2"), "per address");
        std::thread::sleep(Duration::from_millis(250));
        assert!(t.first_refusal_in_window("1.1.1.1"), "again in the next window");
    }

    #[test]
    fn an_address_is_held_back_across_usernames() {
        let t = LoginThrottle::new(Duration::from_secs(60), 100, 2);
        t.record_failure("a", "9.9.9.9");
        t.record_failure("b", "9.9.9.9");
        assert!(t.check("c", "9.9.9.9").is_err());
    }
}
