//! A key–value cache the modules share: in memory by default, or Redis (`[cache] redis_url`, or
//! `REDIS_URL`) so several processes share one. Values are JSON with a time to live.
//!
//! - [`Cache::get_or_load`]: concurrent misses of one key in this process make one load; the
//!   others wait for it and read its value.
//! - Redis is asked within a time budget (`redis_timeout_ms`); when it fails or is gone, the
//!   cache carries on in memory and tries Redis again after `redis_retry_secs`, logging the
//!   change both ways. [`Cache::status`] says which it is using and why (`/health/ready` does not
//!   fail for it: a cache is not needed to answer).
//! - `sightline_cache_requests_total{result=hit|miss}`, `sightline_cache_sets_total`,
//!   `sightline_cache_errors_total{backend}` count what happens.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::Secret;

/// `[cache]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// `redis://host:port/db`; empty: the cache is in this process's memory.
    #[serde(skip_serializing_if = "Secret::is_empty")]
    pub redis_url: Secret,
    /// Entries kept in memory at most (least recently used go first).
    pub max_entries: u64,
    /// Time one Redis command may take before the cache falls back to memory.
    pub redis_timeout_ms: u64,
    /// How long the cache stays in memory after Redis failed before trying it again.
    pub redis_retry_secs: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            redis_url: Secret::default(),
            max_entries: 10_000,
            redis_timeout_ms: 500,
            redis_retry_secs: 10,
        }
    }
}

/// Which store answers, as `/debug/status` pages show it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CacheStatus {
    /// `memory` or `redis`: the store in use now.
    pub backend: &'static str,
    /// Whether Redis is configured.
    pub redis_configured: bool,
    /// The Redis server (no credentials), when configured.
    pub redis_url: Option<String>,
    /// Whether the last Redis command succeeded.
    pub redis_connected: bool,
    /// Why Redis is not in use, when it is configured but failing.
    pub redis_error: Option<String>,
    /// Entries held in this process's memory.
    pub memory_entries: u64,
}

/// GCRA on Redis: KEYS[1] holds the bucket's theoretical arrival time (ms); ARGV cost and
/// per-minute rate. Answers `{1, 0}` when taken, `{0, wait_ms}` when not.
const TAKE_TOKENS: &str = r"
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local cost = tonumber(ARGV[1])
local per_minute = tonumber(ARGV[2])
local interval = 60000 / per_minute
if cost > per_minute then return {0, 60000} end
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + cost * interval
local allowed_at = new_tat - 60000
if allowed_at > now then return {0, math.ceil(allowed_at - now)} end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil(new_tat - now) + 1)
return {1, 0}
";

#[derive(Clone)]
struct Entry {
    json: Arc<[u8]>,
    expires: Instant,
}

struct Redis {
    url_shown: String,
    client: redis::Client,
    connection: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
    timeout: Duration,
    retry_after: Duration,
    /// Set while failing: since when, and why.
    down: Mutex<Option<(Instant, String)>>,
}

/// What this process's cache has done since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CacheCounters {
    /// Reads that found a value.
    pub hits: u64,
    /// Reads that found none.
    pub misses: u64,
    /// Values stored.
    pub sets: u64,
    /// Values forgotten on request.
    pub deletes: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    sets: AtomicU64,
    deletes: AtomicU64,
}

struct Inner {
    counters: Counters,
    memory: moka::future::Cache<String, Entry>,
    redis: Option<Redis>,
    flights: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

/// The cache. Cheap to clone.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("redis", &self.inner.redis.is_some()).finish_non_exhaustive()
    }
}

impl Cache {
    /// A cache in this process's memory only.
    pub fn memory(max_entries: u64) -> Self {
        Self::build(max_entries, None)
    }

    /// The configured cache. A Redis URL that does not parse is an error naming the key; a Redis
    /// server that does not answer is not (the cache starts in memory and says so).
    pub fn from_config(config: &CacheConfig) -> anyhow::Result<Self> {
        let url = config.redis_url.expose();
        if url.is_empty() {
            return Ok(Self::memory(config.max_entries));
        }
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("configuration error: key `cache.redis_url`: {e}"))?;
        let redis = Redis {
            url_shown: crate::config::url_without_credentials(url),
            client,
            connection: tokio::sync::Mutex::new(None),
            timeout: Duration::from_millis(config.redis_timeout_ms.max(1)),
            retry_after: Duration::from_secs(config.redis_retry_secs),
            down: Mutex::new(None),
        };
        Ok(Self::build(config.max_entries, Some(redis)))
    }

    fn build(max_entries: u64, redis: Option<Redis>) -> Self {
        let memory = moka::future::Cache::builder().max_capacity(max_entries.max(1)).build();
        Self {
            inner: Arc::new(Inner {
                counters: Counters::default(),
                memory,
                redis,
                flights: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The value of `key`, if cached and alive.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let json = self.get_json(key).await;
        let (result, counter) = if json.is_some() {
            ("hit", &self.inner.counters.hits)
        } else {
            ("miss", &self.inner.counters.misses)
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("sightline_cache_requests_total", "result" => result).increment(1);
        serde_json::from_slice(&json?).ok()
    }

    /// Keeps `value` under `key` for `ttl`.
    pub async fn set<T: Serialize + ?Sized>(&self, key: &str, value: &T, ttl: Duration) {
        let Ok(json) = serde_json::to_vec(value) else { return };
        metrics::counter!("sightline_cache_sets_total").increment(1);
        self.inner.counters.sets.fetch_add(1, Ordering::Relaxed);
        if let Some(redis) = self.redis_in_use() {
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            let set = redis::cmd("SET").arg(key).arg(&json).arg("PX").arg(ms).to_owned();
            if redis.run::<()>(set).await.is_ok() {
                return;
            }
        }
        let entry = Entry { json: json.into(), expires: Instant::now() + ttl };
        self.inner.memory.insert(key.to_owned(), entry).await;
    }

    /// Takes `cost` tokens from the shared bucket `key` (capacity `per_minute`, refilled at
    /// `per_minute` a minute, full at first): `Some(Ok(()))` when taken, `Some(Err(wait))` when
    /// the bucket holds too few (a cost above the capacity waits a minute), `None` when Redis is
    /// not in use — the caller then counts in its own process. One atomic script on Redis
    /// (GCRA, on Redis's clock), so every process sharing the Redis shares the bucket.
    pub async fn take_tokens(&self, key: &str, cost: u32, per_minute: u32) -> Option<Result<(), Duration>> {
        let redis = self.redis_in_use()?;
        let script = redis::cmd("EVAL")
            .arg(TAKE_TOKENS)
            .arg(1)
            .arg(format!("limit:{key}"))
            .arg(cost)
            .arg(per_minute.max(1))
            .to_owned();
        match redis.run::<(i64, i64)>(script).await {
            Ok((1, _)) => Some(Ok(())),
            Ok((_, wait_ms)) => Some(Err(Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0)))),
            Err(()) => None,
        }
    }

    /// Forgets `key`.
    pub async fn delete(&self, key: &str) {
        self.inner.counters.deletes.fetch_add(1, Ordering::Relaxed);
        if let Some(redis) = self.redis_in_use() {
            let _ = redis.run::<i64>(redis::cmd("DEL").arg(key).to_owned()).await;
        }
        self.inner.memory.invalidate(key).await;
    }

    /// The cached value of `key`, or the one `load` makes (then kept for `ttl`); `true` when it
    /// came from the cache. Misses of one key in this process wait for one load. An error is not
    /// cached.
    pub async fn get_or_load<T, E, F, Fut>(&self, key: &str, ttl: Duration, load: F) -> Result<(T, bool), E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(value) = self.get(key).await {
            return Ok((value, true));
        }
        let flight = self.flight(key);
        let _turn = flight.lock().await;
        // Whoever held the turn before may have loaded it.
        if let Some(json) = self.get_json(key).await {
            if let Ok(value) = serde_json::from_slice(&json) {
                return Ok((value, true));
            }
        }
        let value = load().await?;
        self.set(key, &value, ttl).await;
        Ok((value, false))
    }

    /// What this process's cache has done.
    pub fn counters(&self) -> CacheCounters {
        let c = &self.inner.counters;
        CacheCounters {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            sets: c.sets.load(Ordering::Relaxed),
            deletes: c.deletes.load(Ordering::Relaxed),
        }
    }

    /// Which store answers, and Redis's state.
    pub async fn status(&self) -> CacheStatus {
        self.inner.memory.run_pending_tasks().await;
        let memory_entries = self.inner.memory.entry_count();
        let Some(redis) = &self.inner.redis else {
            return CacheStatus {
                backend: "memory",
                redis_configured: false,
                redis_url: None,
                redis_connected: false,
                redis_error: None,
                memory_entries,
            };
        };
        // A fresh probe, so the page tells the truth now.
        let probe = redis.run::<String>(redis::cmd("PING").to_owned()).await;
        let down = redis.down.lock().expect("cache lock").clone();
        CacheStatus {
            backend: if down.is_some() { "memory" } else { "redis" },
            redis_configured: true,
            redis_url: Some(redis.url_shown.clone()),
            redis_connected: probe.is_ok(),
            redis_error: down.map(|(_, why)| why),
            memory_entries,
        }
    }

    async fn get_json(&self, key: &str) -> Option<Arc<[u8]>> {
        if let Some(redis) = self.redis_in_use() {
            if let Ok(found) = redis.run::<Option<Vec<u8>>>(redis::cmd("GET").arg(key).to_owned()).await {
                return found.map(Into::into);
            }
        }
        let entry = self.inner.memory.get(key).await?;
        if entry.expires <= Instant::now() {
            self.inner.memory.invalidate(key).await;
            return None;
        }
        Some(entry.json)
    }

    /// Redis, unless it failed less than `retry_after` ago.
    fn redis_in_use(&self) -> Option<&Redis> {
        let redis = self.inner.redis.as_ref()?;
        let down = redis.down.lock().expect("cache lock");
        match &*down {
            Some((since, _)) if since.elapsed() < redis.retry_after => None,
            _ => Some(redis),
        }
    }

    fn flight(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self.inner.flights.lock().expect("cache lock");
        flights.retain(|_, f| f.strong_count() > 0);
        if let Some(flight) = flights.get(key).and_then(Weak::upgrade) {
            return flight;
        }
        let flight = Arc::new(tokio::sync::Mutex::new(()));
        flights.insert(key.to_owned(), Arc::downgrade(&flight));
        flight
    }
}

impl Redis {
    /// Runs `cmd` within the time budget; a failure switches the cache to memory for a while.
    async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, ()> {
        let attempt = async {
            let mut slot = self.connection.lock().await;
            if slot.is_none() {
                *slot = Some(self.client.get_multiplexed_async_connection().await?);
            }
            let mut connection = slot.clone().expect("connected above");
            drop(slot);
            cmd.query_async::<T>(&mut connection).await
        };
        let outcome = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", self.timeout.as_millis())),
        };
        let mut down = self.down.lock().expect("cache lock");
        match outcome {
            Ok(value) => {
                if down.take().is_some() {
                    tracing::info!(redis = %self.url_shown, "cache.redis_back");
                }
                Ok(value)
            }
            Err(why) => {
                metrics::counter!("sightline_cache_errors_total", "backend" => "redis").increment(1);
                if down.is_none() {
                    tracing::warn!(redis = %self.url_shown, error = %why, "cache.redis_down_using_memory");
                }
                *down = Some((Instant::now(), why));
                drop(down);
                // A broken connection is made anew next time.
                if let Ok(mut slot) = self.connection.try_lock() {
                    *slot = None;
                }
                Err(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[tokio::test]
    async fn values_expire_and_concurrent_misses_load_once() {
        let cache = Cache::memory(100);
        cache.set("k", &1, Duration::from_millis(50)).await;
        assert_eq!(cache.get::<i32>("k").await, Some(1));
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(cache.get::<i32>("k").await, None, "expired");

        let loads = Arc::new(AtomicU32::new(0));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (cache, loads) = (cache.clone(), loads.clone());
                tokio::spawn(async move {
                    cache
                        .get_or_load("slow", Duration::from_secs(60), || async {
                            loads.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok::<_, ()>(42)
                        })
                        .await
                })
            })
            .collect();
        let mut cached = 0;
        for task in tasks {
            let (value, hit) = task.await.unwrap().unwrap();
            assert_eq!(value, 42);
            cached += usize::from(hit);
        }
        assert_eq!((loads.load(Ordering::SeqCst), cached), (1, 9), "one load, nine waited and read it");
        let failed: Result<(i32, bool), &str> =
            cache.get_or_load("bad", Duration::from_secs(60), || async { Err("down") }).await;
        assert_eq!(failed, Err("down"));
        assert_eq!(cache.get::<i32>("bad").await, None, "an error is not cached");
        assert_eq!(cache.status().await.backend, "memory");
    }

    #[tokio::test]
    async fn an_unreachable_redis_falls_back_to_memory_and_says_why() {
        // Nothing listens on port 1.
        let config = CacheConfig {
            redis_url: Secret::new("redis://:hunter2@127.0.0.1:1/0"),
            redis_timeout_ms: 200,
            ..CacheConfig::default()
        };
        let cache = Cache::from_config(&config).unwrap();
        cache.set("k", &"v", Duration::from_secs(60)).await;
        assert_eq!(cache.get::<String>("k").await.as_deref(), Some("v"), "kept in memory meanwhile");
        let status = cache.status().await;
        assert_eq!((status.backend, status.redis_connected), ("memory", false), "{status:?}");
        assert!(status.redis_error.is_some());
        assert!(!status.redis_url.unwrap_or_default().contains("hunter2"), "no password shown");
    }
}
