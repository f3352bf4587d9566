//! The virtual fleet (`bench --fleet-host`): many tenants in one light
//! process, each on its own loopback port, answering the built-in
//! `workspace-server` suite's six checks like the reference tenant does
//! (same endpoints, same answers, `Authorization: Bearer <token>`), each
//! answer held for the added latency. A minimal HTTP/1.1 server on one
//! Tokio thread: the point is to cost the machine as little CPU per request
//! as possible, so what the benchmark measures is canary.
//!
//! `bench --fleet-host --count N --first I --latency-ms L [--dead i,j,…]`
//! binds N ports, prints one URL per line, then `ready`, and serves until
//! its stdin closes (the benchmark exiting or dropping its guard). Tenant
//! `k` (0-based, counting from `--first`) accepts the token `tok-k`. A dead
//! tenant accepts connections and reads requests but never answers.

use std::io::{BufRead as _, Write as _};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// The version every tenant reports.
pub(crate) const VERSION: &str = "4c1d56e0123456789abcdef0123456789abcdef0";

struct Tenant {
    auth: String,
    memories: Mutex<Vec<String>>,
}

pub(crate) fn main(args: &[String]) -> ! {
    let mut count = 1usize;
    let mut first = 0usize;
    let mut latency = Duration::from_millis(20);
    let mut dead: Vec<usize> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().expect("a value after the flag").clone();
        match a.as_str() {
            "--count" => count = value().parse().expect("--count N"),
            "--first" => first = value().parse().expect("--first I"),
            "--latency-ms" => {
                latency = Duration::from_millis(value().parse().expect("--latency-ms L"));
            }
            "--dead" => {
                dead = value()
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().expect("--dead i,j"))
                    .collect();
            }
            other => panic!("--fleet-host: unexpected {other}"),
        }
    }
    // A listener and a connection per tenant: raise the soft open-files
    // limit to the hard one.
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
    // The benchmark closes our stdin when it is done (or dies): exit then.
    std::thread::spawn(|| {
        let mut sink = String::new();
        let mut stdin = std::io::stdin().lock();
        while stdin.read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async move {
        let mut listeners = Vec::with_capacity(count);
        let mut stdout = std::io::stdout().lock();
        for _ in 0..count {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind a tenant port");
            let addr = listener.local_addr().expect("tenant address");
            writeln!(stdout, "http://{addr}").expect("stdout");
            listeners.push(listener);
        }
        writeln!(stdout, "ready").expect("stdout");
        stdout.flush().expect("stdout");
        drop(stdout);
        for (i, listener) in listeners.into_iter().enumerate() {
            let tenant = Arc::new(Tenant {
                auth: format!("Bearer tok-{}", first + i),
                memories: Mutex::new(Vec::new()),
            });
            let is_dead = dead.contains(&i);
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let tenant = tenant.clone();
                    tokio::spawn(async move {
                        let _ = if is_dead {
                            hold(stream).await
                        } else {
                            serve(stream, &tenant, latency).await
                        };
                    });
                }
            });
        }
        std::future::pending::<()>().await;
    });
    std::process::exit(0);
}

/// A dead tenant: reads whatever comes, never answers.
async fn hold(mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    while stream.read(&mut buf).await? > 0 {}
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Serves kept-alive HTTP/1.1 requests until the client closes.
async fn serve(mut stream: TcpStream, tenant: &Tenant, latency: Duration) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf: Vec<u8> = Vec::with_capacity(2048);
    loop {
        let head_end = loop {
            if let Some(p) = find(&buf, b"\r\n\r\n") {
                break p + 4;
            }
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split(' ');
        let method = first.next().unwrap_or_default().to_string();
        let target = first.next().unwrap_or_default().to_string();
        let mut length = 0usize;
        let mut authorized = false;
        for line in lines {
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("authorization") {
                    authorized = value == tenant.auth;
                }
            }
        }
        while buf.len() < head_end + length {
            if stream.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
        }
        let body = buf[head_end..head_end + length].to_vec();
        buf.drain(..head_end + length);
        tokio::time::sleep(latency).await;
        let (status, answer) = answer(tenant, &method, &target, authorized, &body);
        let reason = match status {
            200 => "OK",
            201 => "Created",
            400 => "Bad Request",
            401 => "Unauthorized",
            _ => "Not Found",
        };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        stream.write_all(response.as_bytes()).await?;
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                if let Ok(b) = u8::from_str_radix(hex, 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The reference tenant's answers (see canary-sandbox's tenant module).
fn answer(
    tenant: &Tenant,
    method: &str,
    target: &str,
    authorized: bool,
    body: &[u8],
) -> (u16, String) {
    if !authorized {
        return (401, r#"{"error":"unauthorized"}"#.into());
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    match (method, path) {
        ("GET", "/admin/liveness") => (
            200,
            format!(
                r#"{{"status":"ok","version":"{VERSION}","subsystems":{{"db":"ok","auth":"ok","memories":"ok"}}}}"#
            ),
        ),
        ("GET", "/workspaces") => (200, r#"[{"id":"ws-1","name":"default"}]"#.into()),
        ("POST", "/memories/commit") => {
            let content = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| {
                    v.get("content")
                        .and_then(|c| c.as_str().map(str::to_string))
                });
            let Some(content) = content else {
                return (400, r#"{"error":"expected {\"content\": \"…\"}"}"#.into());
            };
            let mut memories = lock(&tenant.memories);
            memories.push(content);
            (201, format!(r#"{{"id":{}}}"#, memories.len()))
        }
        ("GET", "/memories/search") => {
            let q = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("q="))
                .map(percent_decode)
                .unwrap_or_default();
            let found: Vec<serde_json::Value> = lock(&tenant.memories)
                .iter()
                .enumerate()
                .filter(|(_, m)| !q.is_empty() && m.contains(&q))
                .map(|(i, m)| serde_json::json!({"id": i + 1, "content": m}))
                .collect();
            (200, serde_json::Value::Array(found).to_string())
        }
        ("GET", "/events") => {
            let n = lock(&tenant.memories).len();
            let events: Vec<serde_json::Value> = (1..=n)
                .map(|id| serde_json::json!({"type": "memory.committed", "id": id}))
                .collect();
            (200, serde_json::Value::Array(events).to_string())
        }
        _ => (404, r#"{"error":"not found"}"#.into()),
    }
}
