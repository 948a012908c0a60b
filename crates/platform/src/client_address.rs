//! The client's address: the TCP peer, or, when the peer is a configured trusted proxy, the
//! address its `X-Forwarded-For` names. From any other peer the header is ignored, so a client
//! cannot choose the address it is throttled and audited under.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

/// The address a request came from, as [`client_address`] resolved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// Proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// From addresses (`10.0.0.5`, `::1`) and CIDR blocks (`10.0.0.0/8`).
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| {
                let e = e.trim();
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("`{e}` is not an IP address or CIDR block"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`: walking `X-Forwarded-For` from the right while each hop is a
    /// trusted proxy, the first hop that is not (or the last one that could be read).
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>();
        for hop in hops.into_iter().rev() {
            let Ok(ip) = hop.trim().parse::<IpAddr>() else { break };
            client = ip.to_canonical();
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

impl std::fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The address the middleware resolved, else the TCP peer, else `0.0.0.0` (a request that
/// came through no socket, as in a router called directly).
impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if let Some(address) = parts.extensions.get::<ClientAddress>() {
            return Ok(*address);
        }
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_canonical());
        Ok(Self(peer.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))))
    }
}

/// Middleware: puts the request's [`ClientAddress`] on it.
pub async fn client_address(
    State(proxies): State<Arc<TrustedProxies>>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some(peer) = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()) {
        let client = proxies.resolve(peer, req.headers());
        req.extensions_mut().insert(ClientAddress(client));
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_header_is_ignored_from_an_untrusted_peer() {
        let p = TrustedProxies::parse(&["10.0.0.1".into()]).unwrap();
        assert_eq!(p.resolve(ip("192.0.2.7"), &headers(&["203.0.113.9"])), ip("192.0.2.7"));
        let none = TrustedProxies::default();
        assert_eq!(none.resolve(ip("10.0.0.1"), &headers(&["203.0.113.9"])), ip("10.0.0.1"));
    }

    #[test]
    fn the_first_untrusted_hop_from_the_right_is_the_client() {
        let p = TrustedProxies::parse(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
        // The client put a forged entry first; the proxies appended what they saw.
        let h = headers(&["198.51.100.1, 203.0.113.9", "10.1.1.1"]);
        assert_eq!(p.resolve(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        assert_eq!(p.resolve(ip("::1"), &headers(&["203.0.113.9"])), ip("203.0.113.9"));
        assert_eq!(p.resolve(ip("::ffff:10.0.0.1"), &headers(&["203.0.113.9"])), ip("203.0.113.9"));
    }

    #[test]
    fn an_unreadable_hop_stops_the_walk_at_the_last_trusted_one() {
        let p = TrustedProxies::parse(&["10.0.0.1".into()]).unwrap();
        assert_eq!(p.resolve(ip("10.0.0.1"), &headers(&["garbage"])), ip("10.0.0.1"));
        assert_eq!(p.resolve(ip("10.0.0.1"), &headers(&[])), ip("10.0.0.1"));
    }

    #[test]
    fn bad_entries_are_named() {
        let e = TrustedProxies::parse(&["10.0.0.0/33".into()]).unwrap_err();
        assert!(e.contains("10.0.0.0/33"), "{e}");
    }
}
