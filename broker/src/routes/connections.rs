//! A limit on the connections one client (one IP address) may hold open on the OSB listener
//! at once. Every accepted connection takes a slot in the [`ConnectionLimiter`] (the slot lives
//! in the connection's data and is freed when the connection closes); a connection beyond the
//! limit is answered 429 and closed at its first request, so a client that keeps many
//! connections (or slow bodies) open cannot starve the others.

use crate::error::BrokerError;
use actix_web::dev::Extensions;
use std::any::Any;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open connections per client address.
#[derive(Debug)]
pub struct ConnectionLimiter {
    per_client: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// A connection's place in the limiter: counted while it lives, unless it is over the limit.
#[derive(Debug)]
pub struct ConnectionSlot {
    limiter: Arc<ConnectionLimiter>,
    client: IpAddr,
    /// The limit, when this connection is over it (and so not counted).
    refused: Option<usize>,
}

impl ConnectionLimiter {
    /// A limiter allowing `per_client` connections per address; 0 means no limit.
    pub fn new(per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            per_client,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// The slot of a new connection from `client`.
    pub fn admit(self: &Arc<Self>, client: IpAddr) -> ConnectionSlot {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(client).or_insert(0);
        let refused = (self.per_client > 0 && *count >= self.per_client).then_some(self.per_client);
        if refused.is_none() {
            *count += 1;
        } else if *count == 0 {
            open.remove(&client);
        }
        ConnectionSlot {
            limiter: Arc::clone(self),
            client,
            refused,
        }
    }

    /// Connections counted for `client` now.
    pub fn open_for(&self, client: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&client).copied().unwrap_or(0)
    }

    /// The `on_connect` hook of the HTTP server: gives every TCP connection its slot.
    pub fn on_connect(self: Arc<Self>) -> impl Fn(&dyn Any, &mut Extensions) + Send + Sync {
        move |io, data| {
            let peer = io
                .downcast_ref::<actix_web::rt::net::TcpStream>()
                .and_then(|tcp| tcp.peer_addr().ok());
            if let Some(peer) = peer {
                data.insert(self.admit(peer.ip()));
            }
        }
    }
}

impl ConnectionSlot {
    /// 429 when this connection is over its client's limit.
    pub fn check(&self) -> Result<(), BrokerError> {
        match self.refused {
            Some(limit) => Err(BrokerError::TooManyConnections(limit)),
            None => Ok(()),
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        if self.refused.is_some() {
            return;
        }
        let mut open = self.limiter.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_beyond_the_limit_are_refused_until_one_closes() {
        let limiter = ConnectionLimiter::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = limiter.admit(a);
        let second = limiter.admit(a);
        let third = limiter.admit(a);
        assert!(first.check().is_ok() && second.check().is_ok());
        assert!(matches!(
            third.check(),
            Err(BrokerError::TooManyConnections(2))
        ));
        assert!(
            limiter.admit(b).check().is_ok(),
            "another client is not limited"
        );
        drop(third);
        assert_eq!(limiter.open_for(a), 2);
        drop(first);
        assert!(limiter.admit(a).check().is_ok());
        drop(second);
        assert_eq!(limiter.open_for(a), 0, "every slot was freed");
        assert_eq!(limiter.open_for(b), 0);
    }

    #[test]
    fn zero_means_no_limit() {
        let limiter = ConnectionLimiter::new(0);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let slots: Vec<_> = (0..100).map(|_| limiter.admit(a)).collect();
        assert!(slots.iter().all(|s| s.check().is_ok()));
    }
}
