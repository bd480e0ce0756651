//! Request budgets per API key and per client address, shared by Vigil's two HTTP APIs (feature
//! `ratelimit`); each API's middleware turns the answers into HTTP.
//!
//! Each limit is a GCRA (governor): a sustained rate with a burst allowance. A request counts
//! against its client address and, when it carries a known API key, against that key. The
//! answer names the tighter limit with what is left of it, for the IETF RateLimit fields
//! (draft-ietf-httpapi-ratelimit-headers): `RateLimit-Policy: "<name>";q=<burst>;w=<seconds to
//! refill it>` and `RateLimit: "<name>";r=<requests left>;t=<seconds until full again>`. Idle
//! entries are dropped as requests go by, so memory follows the active clients.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::{NoOpMiddleware, StateInformationMiddleware};
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};

/// Budgets. `0` turns a limit off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct RateLimitConfig {
    /// Requests per second one API key may make, sustained.
    pub per_key: u32,
    /// Requests one API key may make at once above that.
    pub per_key_burst: u32,
    /// Requests per second from one client address, keys or not.
    pub per_address: u32,
    /// Requests from one client address at once above that.
    pub per_address_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            per_key: 100,
            per_key_burst: 200,
            per_address: 200,
            per_address_burst: 400,
        }
    }
}

impl RateLimitConfig {
    /// No limits.
    pub const OFF: Self = Self {
        per_key: 0,
        per_key_burst: 0,
        per_address: 0,
        per_address_burst: 0,
    };
}

type Keyed<K> =
    RateLimiter<K, DashMapStateStore<K, FxBuildHasher>, DefaultClock, StateInformationMiddleware>;

struct Limit<K: std::hash::Hash + Eq + Clone> {
    name: &'static str,
    limiter: Keyed<K>,
    rate: u32,
    burst: u32,
    policy: String,
}

/// A request within its budgets: the tighter limit and what is left of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// `per-key` or `per-address`.
    pub name: &'static str,
    burst: u32,
    rate: u32,
    /// Requests left right now.
    pub remaining: u32,
    /// The `RateLimit-Policy` field.
    pub policy: String,
}

impl Allowed {
    /// The `RateLimit` field.
    pub fn state(&self) -> String {
        let refill = (self.burst - self.remaining.min(self.burst)).div_ceil(self.rate.max(1));
        format!("\"{}\";r={};t={refill}", self.name, self.remaining)
    }
}

/// A request over a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// What was limited: `API key` or `client address`.
    pub scope: &'static str,
    /// When the next request would be allowed.
    pub retry_after: Duration,
}

impl<K: std::hash::Hash + Eq + Clone> Limit<K> {
    fn new(name: &'static str, rate: u32, burst: u32) -> Option<Self> {
        let per_second = NonZeroU32::new(rate)?;
        let burst = burst.max(1);
        let quota = Quota::per_second(per_second).allow_burst(NonZeroU32::new(burst)?);
        let store = DashMapStateStore::with_hasher(FxBuildHasher);
        let limiter =
            RateLimiter::<_, _, _, NoOpMiddleware<_>>::new(quota, store, DefaultClock::default())
                .with_middleware::<StateInformationMiddleware>();
        Some(Self {
            name,
            limiter,
            rate,
            burst,
            policy: format!("\"{name}\";q={burst};w={}", burst.div_ceil(rate)),
        })
    }

    fn check(&self, key: &K, scope: &'static str) -> Result<Allowed, Limited> {
        match self.limiter.check_key(key) {
            Ok(snapshot) => Ok(Allowed {
                name: self.name,
                burst: self.burst,
                rate: self.rate,
                remaining: snapshot.remaining_burst_capacity(),
                policy: self.policy.clone(),
            }),
            Err(not_until) => Err(Limited {
                scope,
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            }),
        }
    }

    fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// The budgets of one service.
pub struct RateLimits {
    /// By a hash of the key's name (no allocation per request).
    per_key: Option<Limit<u64>>,
    per_address: Option<Limit<IpAddr>>,
    requests: AtomicU64,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |l: Option<(u32, u32)>| l.map(|(r, b)| format!("{r}/s burst {b}"));
        f.debug_struct("RateLimits")
            .field(
                "per_key",
                &show(self.per_key.as_ref().map(|l| (l.rate, l.burst))),
            )
            .field(
                "per_address",
                &show(self.per_address.as_ref().map(|l| (l.rate, l.burst))),
            )
            .finish()
    }
}

/// Requests between two sweeps of idle entries.
const SWEEP_EVERY: u64 = 10_000;

impl RateLimits {
    /// The budgets of `config`.
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            per_key: Limit::new("per-key", config.per_key, config.per_key_burst),
            per_address: Limit::new("per-address", config.per_address, config.per_address_burst),
            requests: AtomicU64::new(0),
        }
    }

    /// Whether no limit is set.
    pub fn is_off(&self) -> bool {
        self.per_key.is_none() && self.per_address.is_none()
    }

    /// Counts a request from `address` with the API key named `key`: the tighter limit that
    /// applied (`None` when none did), or the limit it is over.
    pub fn check(
        &self,
        key: Option<&str>,
        address: Option<IpAddr>,
    ) -> Result<Option<Allowed>, Limited> {
        if self.requests.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            if let Some(l) = &self.per_key {
                l.sweep();
            }
            if let Some(l) = &self.per_address {
                l.sweep();
            }
        }
        let mut tightest: Option<Allowed> = None;
        let mut keep = |a: Allowed| {
            let tighter = tightest.as_ref().is_none_or(|t| {
                u64::from(a.remaining) * u64::from(t.burst)
                    < u64::from(t.remaining) * u64::from(a.burst)
            });
            if tighter {
                tightest = Some(a);
            }
        };
        if let (Some(limit), Some(ip)) = (&self.per_address, address) {
            keep(limit.check(&ip, "client address")?);
        }
        if let (Some(limit), Some(key)) = (&self.per_key, key) {
            let hashed = std::hash::BuildHasher::hash_one(&FxBuildHasher, key);
            keep(limit.check(&hashed, "API key")?);
        }
        Ok(tightest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_and_address_has_its_own_budget() {
        let limits = RateLimits::new(&RateLimitConfig {
            per_key: 1,
            per_key_burst: 3,
            per_address: 1,
            per_address_burst: 5,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for left in [2, 1, 0] {
            let got = limits.check(Some("ops"), Some(a)).unwrap().unwrap();
            assert_eq!((got.name, got.remaining), ("per-key", left));
        }
        let err = limits.check(Some("ops"), Some(a)).unwrap_err();
        assert_eq!(err.scope, "API key");
        // Another key from the same address has its own budget, until the address's runs out
        // (the refused request above counted against the address too).
        assert!(limits.check(Some("ci"), Some(a)).is_ok());
        let err = limits.check(Some("ci"), Some(a)).unwrap_err();
        assert_eq!(err.scope, "client address");
        assert!(err.retry_after > Duration::ZERO && err.retry_after <= Duration::from_secs(1));
        assert!(limits.check(None, Some(b)).is_ok());
        let off = RateLimits::new(&RateLimitConfig::OFF);
        assert!(off.is_off());
        for _ in 0..1000 {
            assert_eq!(off.check(Some("ops"), Some(a)), Ok(None));
        }
    }

    #[test]
    fn fields_follow_the_draft() {
        let limits = RateLimits::new(&RateLimitConfig {
            per_key: 50,
            per_key_burst: 100,
            per_address: 0,
            per_address_burst: 0,
        });
        let mut last = None;
        for _ in 0..60 {
            last = limits.check(Some("ops"), None).unwrap();
        }
        let a = last.unwrap();
        assert_eq!(a.policy, "\"per-key\";q=100;w=2");
        assert!(a.remaining <= 41 && a.remaining >= 40, "{}", a.remaining);
        assert_eq!(a.state(), format!("\"per-key\";r={};t=2", a.remaining));
    }
}
