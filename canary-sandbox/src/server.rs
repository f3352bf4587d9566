//! Serving an axum [`Router`] on `127.0.0.1:<free port>` until the handle
//! is dropped: the one way every sandbox service (and the test kit's fault
//! server) runs, so they all stop the same way.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A server running on the current Tokio runtime. Dropping it stops the
/// server: no new connections, idle ones closed, in-flight requests
/// finished.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Server {
    /// Binds a free loopback port, builds the router with `app(address)` (so
    /// it can name its own URL) and serves it.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound (a broken machine).
    pub async fn start(app: impl FnOnce(SocketAddr) -> Router) -> Self {
        let listener = bind_loopback().await;
        let addr = listener
            .local_addr()
            .expect("local address of a bound listener");
        let app = app(addr);
        Self::spawn(addr, move |shutdown| async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await;
        })
    }

    /// Spawns `serve(shutdown)`, a server already bound to `addr` that
    /// must stop when `shutdown` resolves (pass it to axum's
    /// `with_graceful_shutdown`). For servers that need their own listener,
    /// e.g. one whose connections a test can reset.
    pub fn spawn<F, S>(addr: SocketAddr, serve: S) -> Self
    where
        S: FnOnce(Shutdown) -> F,
        F: Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        tokio::spawn(serve(Shutdown(rx)));
        Self {
            addr,
            shutdown: Some(tx),
        }
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Resolves when the [`Server`] that handed it out is dropped.
#[derive(Debug)]
pub struct Shutdown(oneshot::Receiver<()>);

impl Future for Shutdown {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A send and a dropped sender both mean "stop".
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

/// A listener on `127.0.0.1` and a free port.
///
/// # Panics
///
/// When no loopback port can be bound (a broken machine).
pub async fn bind_loopback() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free loopback port (127.0.0.1:0)")
}
