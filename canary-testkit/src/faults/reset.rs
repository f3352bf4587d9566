//! Connections that a fault can reset: [`FaultKind::ResetConnection`]
//! needs the server's side of the TCP connection, which axum does not hand
//! to a handler, so the listener gives each connection a switch.
//!
//! [`FaultKind::ResetConnection`]: super::FaultKind::ResetConnection

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The listener: a `TcpListener` whose connections carry a reset switch.
pub(super) struct ResettableListener(pub(super) TcpListener);

impl Listener for ResettableListener {
    type Io = ResettableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (
                        ResettableStream {
                            stream,
                            reset: Arc::new(AtomicBool::new(false)),
                        },
                        addr,
                    );
                }
                // Out of file descriptors and the like: wait, try again.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection that fails every read and write once its switch is on,
/// with `SO_LINGER` 0 so that closing it sends a TCP reset.
pub(super) struct ResettableStream {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl ResettableStream {
    fn check(&self) -> io::Result<()> {
        if self.reset.load(Ordering::SeqCst) {
            // A zero linger does not block on close; it turns FIN into RST.
            #[allow(deprecated)]
            let _ = self.stream.set_linger(Some(Duration::ZERO));
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "fault: connection reset",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The reset switch of the connection a request came in on.
#[derive(Clone)]
pub(super) struct ConnectionHandle(Arc<AtomicBool>);

impl ConnectionHandle {
    /// Makes the connection fail its next read or write with a reset.
    pub(super) fn reset(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, ResettableListener>> for ConnectionHandle {
    fn connect_info(stream: IncomingStream<'_, ResettableListener>) -> Self {
        Self(stream.io().reset.clone())
    }
}
