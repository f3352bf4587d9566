//! A TCP proxy in front of the registry that delays every HTTP/1.1 request
//! by a fixed time and records it, so every tool pays the same round-trip
//! time a remote registry would cost and is counted the same way.
//!
//! The client → registry direction is parsed as HTTP/1.1: a request head is
//! read whole, recorded, held for the delay, then forwarded with its body
//! (`Content-Length` or chunked). The registry → client direction is copied
//! as it comes. Plain HTTP only; every client here speaks HTTP/1.1 to a
//! plain-HTTP registry.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One request seen by the proxy.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) path: String,
}

impl Seen {
    pub(crate) fn is_tls(&self) -> bool {
        self.method == "TLS"
    }

    pub(crate) fn is_ping(&self) -> bool {
        self.path == "/v2/" || self.path == "/v2"
    }

    pub(crate) fn is_manifest(&self) -> bool {
        self.path.contains("/manifests/")
    }

    pub(crate) fn is_blob(&self) -> bool {
        self.path.contains("/blobs/")
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// The running proxy; stopped (no new connections) on drop.
pub(crate) struct DelayProxy {
    addr: SocketAddr,
    log: Log,
    accept: JoinHandle<()>,
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl DelayProxy {
    pub(crate) async fn start(upstream: SocketAddr, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let log: Log = Arc::default();
        let accept_log = log.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let log = accept_log.clone();
                tokio::spawn(async move {
                    let _ = connection(client, upstream, delay, log).await;
                });
            }
        });
        Self { addr, log, accept }
    }

    /// `127.0.0.1:<port>`.
    pub(crate) fn host(&self) -> String {
        self.addr.to_string()
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn mark(&self) -> usize {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub(crate) fn since(&self, mark: usize) -> Vec<Seen> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)[mark..].to_vec()
    }
}

async fn connection(
    client: TcpStream,
    upstream: SocketAddr,
    delay: Duration,
    log: Log,
) -> std::io::Result<()> {
    client.set_nodelay(true)?;
    let server = TcpStream::connect(upstream).await?;
    server.set_nodelay(true)?;
    let (client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let back = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    });
    let mut reader = BufReader::new(client_read);
    // Clients try HTTPS first on a plain-HTTP registry (canary on
    // loopback, skopeo and crane when told the registry is insecure): a TLS
    // handshake (first byte 0x16) is delayed once and passed through, so
    // the attempt costs the round trip it would cost remotely.
    let result = if reader.fill_buf().await?.first() == Some(&0x16) {
        log.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Seen {
                method: "TLS".into(),
                path: "(https attempt)".into(),
            });
        tokio::time::sleep(delay).await;
        tokio::io::copy(&mut reader, &mut server_write)
            .await
            .map(drop)
    } else {
        requests(&mut reader, &mut server_write, delay, &log).await
    };
    let _ = server_write.shutdown().await;
    let _ = back.await;
    result
}

/// Forwards requests one by one until the client closes.
async fn requests(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    server: &mut OwnedWriteHalf,
    delay: Duration,
    log: &Log,
) -> std::io::Result<()> {
    let mut line = Vec::new();
    loop {
        let mut head = Vec::new();
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line).await? == 0 {
                return Ok(());
            }
            if head.is_empty() && (line == b"\r\n" || line == b"\n") {
                continue; // stray CRLF between requests
            }
            head.extend_from_slice(&line);
            if line == b"\r\n" || line == b"\n" {
                break;
            }
        }
        let text = String::from_utf8_lossy(&head);
        let mut lines = text.lines();
        let mut first = lines.next().unwrap_or_default().split_whitespace();
        let method = first.next().unwrap_or_default().to_string();
        let path = first.next().unwrap_or_default().to_string();
        let mut length = 0u64;
        let mut chunked = false;
        for header in lines {
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.to_ascii_lowercase().contains("chunked");
                }
            }
        }
        log.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Seen { method, path });
        tokio::time::sleep(delay).await;
        server.write_all(&head).await?;
        if chunked {
            forward_chunked(reader, server).await?;
        } else if length > 0 {
            let copied = tokio::io::copy(&mut (&mut *reader).take(length), server).await?;
            if copied < length {
                return Ok(());
            }
        }
    }
}

async fn forward_chunked(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    server: &mut OwnedWriteHalf,
) -> std::io::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        server.write_all(&line).await?;
        let size_text = String::from_utf8_lossy(&line);
        let size = u64::from_str_radix(size_text.split(';').next().unwrap_or_default().trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            // Trailers, then the empty line that ends the body.
            loop {
                line.clear();
                if reader.read_until(b'\n', &mut line).await? == 0 {
                    return Ok(());
                }
                server.write_all(&line).await?;
                if line == b"\r\n" || line == b"\n" {
                    return Ok(());
                }
            }
        }
        // The chunk's data and its CRLF.
        tokio::io::copy(&mut (&mut *reader).take(size + 2), server).await?;
    }
}

/// One plain HTTP/1.1 exchange on a fresh connection: the status and the
/// headers (lower-case names). The body is read and dropped.
pub(crate) async fn exchange(
    stream: &mut BufReader<TcpStream>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, Vec<(String, String)>)> {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: bench\r\n");
    for (k, v) in headers {
        let _ = write!(request, "{k}: {v}\r\n");
    }
    request.push_str("\r\n");
    stream.get_mut().write_all(request.as_bytes()).await?;
    let mut status_line = String::new();
    stream.read_line(&mut status_line).await?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut out = Vec::new();
    let mut length = 0u64;
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if k == "content-length" {
                length = v.parse().unwrap_or(0);
            }
            out.push((k, v));
        }
    }
    if method != "HEAD" && length > 0 {
        tokio::io::copy(&mut (&mut *stream).take(length), &mut tokio::io::sink()).await?;
    }
    Ok((status, out))
}

/// The median time of one `GET /v2/` round trip through `addr` on a
/// kept-alive connection: what one sequential request costs at least.
pub(crate) async fn round_trip(addr: SocketAddr, samples: usize) -> Duration {
    let mut stream = BufReader::new(TcpStream::connect(addr).await.expect("connect"));
    stream.get_ref().set_nodelay(true).expect("nodelay");
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let started = Instant::now();
        let (status, _) = exchange(&mut stream, "GET", "/v2/", &[])
            .await
            .expect("GET /v2/");
        assert_eq!(status, 200, "GET /v2/ through the proxy");
        times.push(started.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}
