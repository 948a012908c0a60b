//! The HTTP/1.1 server loop: hyper with a header-read timeout (which also bounds how long an
//! idle keep-alive connection is kept), a cap on open connections, and a graceful drain.
//!
//! `axum::serve` has neither the timeout nor the cap, so a client that opens connections and
//! sends nothing, or sends headers a byte at a time, could hold them until the process runs out
//! of file descriptors.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::config::HttpConfig;

/// Serves `router` on `listener` until `shutdown`, then lets open requests finish for up to
/// `grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    http: &HttpConfig,
    shutdown: CancellationToken,
    grace: Duration,
) -> anyhow::Result<()> {
    raise_open_files_limit();
    let max_connections = http.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(http.header_read_timeout_secs.max(1)));
    let draining = CancellationToken::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::error!(error = %e, "server.accept_failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // At the cap: close at once, so the descriptor is free again.
            metrics::counter!("sightline_http_connections_refused_total").increment(1);
            tracing::warn!(max_connections, "server.connection_refused_at_cap");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = per_connection(router.clone(), peer);
        let connection = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
        let draining = draining.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = draining.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    draining.cancel();
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, slots.acquire_many(all)).await.is_err() {
        tracing::warn!("server.drain_timed_out");
    }
    Ok(())
}

/// Raises the soft limit on open files to the hard one, so the connection cap (not the
/// default soft limit, often 1024) is what bounds connections.
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, "server.open_files_limit_unchanged");
        }
    }
}

/// The router as a hyper service for one connection, with the peer address where
/// `ConnectInfo<SocketAddr>` finds it.
fn per_connection(
    router: Router,
    peer: SocketAddr,
) -> TowerToHyperService<
    impl tower::Service<
            hyper::Request<Incoming>,
            Response = axum::response::Response,
            Error = Infallible,
            Future = impl Send,
        > + Clone,
> {
    TowerToHyperService::new(router.map_request(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req
    }))
}
