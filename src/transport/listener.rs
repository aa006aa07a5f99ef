//! Accepts connections for tonic: at most the connection cap at once, each
//! with its handshake deadline (TLS, when configured, and then the HTTP
//! preface; see [`handshake`]), and through running out of file
//! descriptors.
//!
//! Without this, a client that opens TCP connections and sends nothing
//! holds each of them forever; enough of them exhaust the descriptors, and
//! roster stops accepting anyone without a word. Here a connection that
//! has not completed its handshake in time is closed; once the cap is
//! reached further connections wait in the kernel's listen backlog until
//! one closes (so a client is held, not refused, through a burst); and an
//! accept that fails for lack of descriptors is logged and tried again
//! shortly, so roster serves again as soon as descriptors are free.

use std::{io, net::SocketAddr, pin::Pin, sync::Arc, time::Duration};

use futures::Stream;
use rustix::io::Errno;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Semaphore, mpsc},
    time::Instant,
};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::handshake::{self, Connection, HANDSHAKE_TIMEOUTS, Slot};

/// Metric: times the accept loop found every place under the connection
/// cap taken and held new connections back.
pub const CONNECTION_CAP_REACHED: &str = "roster_connection_cap_reached_total";
/// Metric: accepts that failed for lack of file descriptors.
pub const OUT_OF_DESCRIPTORS: &str = "roster_accept_out_of_descriptors_total";

/// How connections are accepted.
#[derive(Clone)]
pub struct Settings {
    /// Connections open at once.
    pub max_connections: usize,
    /// From accept to a complete handshake.
    pub handshake_timeout: Duration,
    /// TLS, or plaintext.
    pub tls: Option<TlsAcceptor>,
}

/// How long to wait before accepting again after running out of descriptors.
const OUT_OF_DESCRIPTORS_PAUSE: Duration = Duration::from_millis(100);
/// At most one warning of each kind this often; the rest are counted.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// TCP keepalive on accepted connections: finds peers that vanished
/// without closing.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// The connections tonic serves, accepted from `listener` under `settings`.
/// Accepting stops, and the listener closes, when the stream is dropped.
pub fn incoming(
    listener: TcpListener,
    settings: Settings,
) -> Pin<Box<dyn Stream<Item = io::Result<Connection>> + Send>> {
    let (ready, mut connections) = mpsc::channel(64);
    tokio::spawn(accept(listener, settings, ready));
    Box::pin(futures::stream::poll_fn(move |cx| {
        connections.poll_recv(cx).map(|next| next.map(Ok))
    }))
}

/// A warning logged at most once per [`WARN_EVERY`].
struct Throttled {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttled {
    fn new() -> Self {
        Self {
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(how many were suppressed since the last one)` if it is time to
    /// log again.
    fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < WARN_EVERY => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// The accept loop; ends when the server stops taking connections.
async fn accept(listener: TcpListener, settings: Settings, ready: mpsc::Sender<Connection>) {
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let mut cap_reached = Throttled::new();
    let mut out_of_descriptors = Throttled::new();
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                metrics::counter!(CONNECTION_CAP_REACHED).increment(1);
                if let Some(suppressed) = cap_reached.due() {
                    warn!(
                        max_connections = settings.max_connections,
                        suppressed,
                        "connection cap reached (ROSTER_MAX_CONNECTIONS): new connections wait until one closes"
                    );
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => return,
                    },
                    () = ready.closed() => return,
                }
            }
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = ready.closed() => return,
        };
        match accepted {
            Ok((tcp, peer)) => {
                let slot = Slot::taken(slot);
                tokio::spawn(handshake(tcp, peer, slot, settings.clone(), ready.clone()));
            }
            Err(err) if is_out_of_descriptors(&err) => {
                metrics::counter!(OUT_OF_DESCRIPTORS).increment(1);
                if let Some(suppressed) = out_of_descriptors.due() {
                    warn!(
                        error = %err,
                        suppressed,
                        "cannot accept connections: out of file descriptors (raise ulimit -n, or lower ROSTER_MAX_CONNECTIONS); trying again"
                    );
                }
                // The connection stays in the backlog; accepting again at
                // once would only spin.
                tokio::select! {
                    () = tokio::time::sleep(OUT_OF_DESCRIPTORS_PAUSE) => {}
                    () = ready.closed() => return,
                }
            }
            // A client that gave up before it was accepted, and the like.
            Err(err) => debug!(error = %err, "accept failed"),
        }
    }
}

/// EMFILE (this process) or ENFILE (the whole system).
fn is_out_of_descriptors(err: &io::Error) -> bool {
    matches!(Errno::from_io_error(err), Some(Errno::MFILE | Errno::NFILE))
}

/// Prepares one accepted connection and hands it to tonic: the TLS
/// handshake, if any, within the deadline; the rest of the handshake is
/// watched by the [`Connection`].
async fn handshake(
    tcp: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    settings: Settings,
    ready: mpsc::Sender<Connection>,
) {
    let deadline = Instant::now() + settings.handshake_timeout;
    // Replies larger than one segment would otherwise wait on Nagle's
    // algorithm and the client's delayed ACK: 40 ms each.
    let _ = tcp.set_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
    let _ = socket2::SockRef::from(&tcp).set_tcp_keepalive(&keepalive);
    let stream = match settings.tls {
        None => handshake::Stream::Plain(tcp),
        Some(tls) => match tokio::time::timeout_at(deadline, tls.accept(tcp)).await {
            Ok(Ok(tls)) => handshake::Stream::Tls(Box::new(tls)),
            Ok(Err(err)) => {
                debug!(%peer, error = %err, "TLS handshake failed");
                return;
            }
            Err(_) => {
                metrics::counter!(HANDSHAKE_TIMEOUTS).increment(1);
                debug!(%peer, "TLS handshake not completed in time: closed");
                return;
            }
        },
    };
    let _ = ready.send(Connection::new(stream, slot, deadline)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_descriptors_is_told_from_other_accept_errors() {
        assert!(is_out_of_descriptors(&Errno::MFILE.into()));
        assert!(is_out_of_descriptors(&Errno::NFILE.into()));
        assert!(!is_out_of_descriptors(&Errno::CONNABORTED.into()));
    }

    #[test]
    fn a_throttled_warning_counts_what_it_suppressed() {
        let mut warning = Throttled::new();
        assert_eq!(warning.due(), Some(0));
        assert_eq!(warning.due(), None);
        assert_eq!(warning.due(), None);
        warning.last = Instant::now().checked_sub(WARN_EVERY);
        assert_eq!(warning.due(), Some(2));
    }
}
