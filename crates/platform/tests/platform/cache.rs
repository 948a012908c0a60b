//! The shared cache on a real Redis server: two processes' caches see one value; when Redis
//! goes away the cache carries on in memory and says so, and takes Redis up again once it is
//! back.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sightline_platform::cache::{Cache, CacheConfig};
use sightline_platform::config::Secret;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A redis-server of our own on `port`, without persistence.
fn redis_server(port: u16) -> Child {
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (apt-get install redis-server)");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn config(url: &str) -> CacheConfig {
    CacheConfig {
        redis_url: Secret::new(url),
        redis_timeout_ms: 300,
        redis_retry_secs: 1,
        ..CacheConfig::default()
    }
}

#[tokio::test]
#[ignore = "needs Redis: scripts/test.sh, or SIGHTLINE_TEST_REDIS_URL and --run-ignored all"]
async fn two_caches_share_redis_and_fall_back_to_memory_while_it_is_gone() {
    let shared =
        std::env::var("SIGHTLINE_TEST_REDIS_URL").expect("SIGHTLINE_TEST_REDIS_URL (scripts/lib/redis.sh)");
    let (one, two) =
        (Cache::from_config(&config(&shared)).unwrap(), Cache::from_config(&config(&shared)).unwrap());
    let key = format!("test:{}", uuid::Uuid::new_v4());
    one.set(&key, &vec![1, 2, 3], Duration::from_secs(60)).await;
    assert_eq!(two.get::<Vec<i32>>(&key).await, Some(vec![1, 2, 3]), "the other process sees it");
    let (value, cached) =
        two.get_or_load(&key, Duration::from_secs(60), || async { Ok::<_, ()>(vec![9]) }).await.unwrap();
    assert_eq!((value, cached), (vec![1, 2, 3], true));
    let status = one.status().await;
    assert_eq!((status.backend, status.redis_connected), ("redis", true), "{status:?}");
    one.delete(&key).await;
    assert_eq!(two.get::<Vec<i32>>(&key).await, None);

    // A server of our own, to stop and start again.
    let port = free_port();
    let mut server = redis_server(port);
    let cache = Cache::from_config(&config(&format!("redis://127.0.0.1:{port}"))).unwrap();
    cache.set("k", &"in redis", Duration::from_secs(60)).await;
    assert_eq!(cache.status().await.backend, "redis");
    server.kill().unwrap();
    server.wait().unwrap();
    let started = Instant::now();
    assert_eq!(cache.get::<String>("k").await, None, "Redis is gone and memory never had it");
    assert!(
        started.elapsed() < Duration::from_millis(1_000),
        "within the Redis budget: {:?}",
        started.elapsed()
    );
    cache.set("k", &"in memory", Duration::from_secs(60)).await;
    assert_eq!(cache.get::<String>("k").await.as_deref(), Some("in memory"));
    let status = cache.status().await;
    assert_eq!((status.backend, status.redis_connected), ("memory", false), "{status:?}");
    assert!(status.redis_error.is_some());

    // Back: after the retry interval the cache uses Redis again.
    let mut server = redis_server(port);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    cache.set("k2", &"redis again", Duration::from_secs(60)).await;
    let other = Cache::from_config(&config(&format!("redis://127.0.0.1:{port}"))).unwrap();
    assert_eq!(other.get::<String>("k2").await.as_deref(), Some("redis again"));
    assert_eq!(cache.status().await.backend, "redis");
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test]
#[ignore = "needs Redis: scripts/test.sh, or SIGHTLINE_TEST_REDIS_URL and --run-ignored all"]
async fn a_shared_limit_is_one_bucket_for_every_process_on_the_redis() {
    let shared =
        std::env::var("SIGHTLINE_TEST_REDIS_URL").expect("SIGHTLINE_TEST_REDIS_URL (scripts/lib/redis.sh)");
    let (one, two) =
        (Cache::from_config(&config(&shared)).unwrap(), Cache::from_config(&config(&shared)).unwrap());
    let key = format!("test:{}", uuid::Uuid::new_v4());
    // 60 a minute: one a second, 60 at first.
    assert_eq!(one.take_tokens(&key, 40, 60).await, Some(Ok(())));
    match two.take_tokens(&key, 30, 60).await {
        Some(Err(wait)) => {
            // 10 short: about ten seconds until they are back.
            assert!(wait > Duration::from_secs(8) && wait <= Duration::from_secs(10), "{wait:?}");
        }
        other => panic!("the other process shares the bucket: {other:?}"),
    }
    assert_eq!(two.take_tokens(&key, 20, 60).await, Some(Ok(())), "what is left is there");
    assert!(matches!(one.take_tokens(&key, 1, 60).await, Some(Err(_))), "empty now");
    assert_eq!(
        one.take_tokens(&format!("{key}:big"), 61, 60).await,
        Some(Err(Duration::from_secs(60))),
        "more than the bucket holds"
    );
    assert_eq!(Cache::memory(10).take_tokens(&key, 1, 60).await, None, "no Redis: the caller counts");
}
