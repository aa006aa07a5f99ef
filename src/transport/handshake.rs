//! One accepted connection as hyper reads and writes it: it holds its slot
//! under the connection cap until it closes, and it fails (so hyper closes
//! it) if it has not completed its handshake by its deadline.
//!
//! The handshake is done when the client has sent the HTTP/2 connection
//! preface, or the head of an HTTP/1 request (gRPC-Web and Connect from
//! browsers and curl). Until then a connection costs a descriptor and
//! memory while proving nothing; after it, HTTP/2 keepalive pings and the
//! RPC timeout take over.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use pin_project_lite::pin_project;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::OwnedSemaphorePermit,
    time::{Instant, Sleep},
};
use tokio_rustls::server::TlsStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Metric: connections open now (accepted, up to the connection cap).
pub const CONNECTIONS_OPEN: &str = "roster_connections_open";
/// Metric: connections closed because their handshake did not complete in
/// time (TLS or the HTTP preface).
pub const HANDSHAKE_TIMEOUTS: &str = "roster_connection_handshake_timeouts_total";

/// What an HTTP/2 client sends first (RFC 9113, section 3.4).
const HTTP2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The end of an HTTP/1 request head, as the last four bytes read.
const HEAD_END: u32 = u32::from_be_bytes(*b"\r\n\r\n");

/// The bytes a connection has sent so far, as far as the handshake goes.
#[derive(Debug, Default)]
struct Progress {
    /// The first bytes, up to the length of the HTTP/2 preface.
    start: Vec<u8>,
    /// The last four bytes read.
    last_four: u32,
}

impl Progress {
    /// Takes in `bytes`; true once the handshake is complete.
    fn read(&mut self, bytes: &[u8]) -> bool {
        for &byte in bytes {
            if self.start.len() < HTTP2_PREFACE.len() {
                self.start.push(byte);
                if self.start.as_slice() == HTTP2_PREFACE {
                    return true;
                }
            }
            self.last_four = self.last_four << 8 | u32::from(byte);
            if self.last_four == HEAD_END {
                return true;
            }
        }
        false
    }
}

/// A handshake still under way: what was read, and until when it may take.
struct Pending {
    progress: Progress,
    deadline: Pin<Box<Sleep>>,
    // Whether its timeout was counted: hyper may read again after the error.
    counted: bool,
}

impl Pending {
    /// The error that closes a connection past its deadline, counted once.
    fn timed_out(&mut self) -> io::Error {
        if !std::mem::replace(&mut self.counted, true) {
            metrics::counter!(HANDSHAKE_TIMEOUTS).increment(1);
        }
        io::Error::new(
            io::ErrorKind::TimedOut,
            "the client did not complete its handshake in time",
        )
    }
}

/// A place under the connection cap, held until the connection closes;
/// [`CONNECTIONS_OPEN`] counts the places held.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    pub fn taken(permit: OwnedSemaphorePermit) -> Self {
        metrics::gauge!(CONNECTIONS_OPEN).increment(1.0);
        Self { _permit: permit }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        metrics::gauge!(CONNECTIONS_OPEN).decrement(1.0);
    }
}

/// The transport under a connection: plain TCP, or TLS over it.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

pin_project! {
    /// An accepted connection (see the module documentation).
    pub struct Connection {
        #[pin]
        stream: Stream,
        // `None` once the handshake is complete.
        pending: Option<Pending>,
        // Released when the connection is dropped, i.e. closed.
        _slot: Slot,
    }
}

impl Connection {
    /// `stream`, holding `slot`, which must complete its handshake by `deadline`.
    pub fn new(stream: Stream, slot: Slot, deadline: Instant) -> Self {
        Self {
            stream,
            pending: Some(Pending {
                progress: Progress::default(),
                deadline: Box::pin(tokio::time::sleep_until(deadline)),
                counted: false,
            }),
            _slot: slot,
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        // Checked before reading too: a client trickling a byte at a time
        // never leaves a read pending.
        if let Some(pending) = this.pending.as_mut()
            && pending.deadline.is_elapsed()
        {
            return Poll::Ready(Err(pending.timed_out()));
        }
        let before = buf.filled().len();
        match this.stream.poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if let Some(pending) = this.pending.as_mut()
                    && pending.progress.read(&buf.filled()[before..])
                {
                    *this.pending = None;
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => {
                // Polling the timer registers it, so the deadline wakes the
                // reader.
                if let Some(pending) = this.pending.as_mut()
                    && pending.deadline.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Err(pending.timed_out()));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().stream.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().stream.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().stream.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().stream.poll_shutdown(cx)
    }
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        match &self.stream {
            Stream::Plain(tcp) => tcp.connect_info(),
            Stream::Tls(tls) => tls.get_ref().0.connect_info(),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(tcp) => tcp.is_write_vectored(),
            Stream::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http2_preface_completes_the_handshake_even_in_pieces() {
        let mut progress = Progress::default();
        assert!(!progress.read(b"PRI * HTTP/2.0\r\n"));
        assert!(progress.read(b"\r\nSM\r\n\r\n\x00\x00"));
    }

    #[test]
    fn an_http1_request_head_completes_the_handshake() {
        let mut progress = Progress::default();
        assert!(
            !progress.read(b"POST /roster.v1.OrganizationService/GetOrganization HTTP/1.1\r\n")
        );
        assert!(!progress.read(b"Host: x\r\n\r"));
        assert!(progress.read(b"\n"));
    }

    #[test]
    fn anything_else_does_not() {
        let mut progress = Progress::default();
        assert!(!progress.read(&[0; 4096]));
        assert!(!progress.read(b"GET / HTTP/1.1\r\nHost: x\r\n"));
    }
}
