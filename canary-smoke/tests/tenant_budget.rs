//! What one tenant may cost: a dead tenant (it accepts connections and
//! never answers) costs its own timeouts once, not once per check; a
//! per-tenant deadline bounds the worst case; and a tenant's connections
//! are closed when its suite ends, so a fleet larger than the open-files
//! limit does not run out of descriptors. (Before: 5 checks × 3 attempts of
//! 10 s each — 160 s — per dead tenant, and every tenant's connection kept
//! for the pool's 30 s idle timeout.)

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use canary_core::{CheckStatus, SmokeSuite};
use canary_smoke::{HttpOptions, HttpSuite, Suite};
use common::context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const THREE_GETS: &str = r#"
[[check]]
name = "one"
path = "/one"
auth = "none"
expect.status = 200
retries = 2
interval = "10ms"
timeout = "300ms"

[[check]]
name = "two"
path = "/two"
auth = "none"
expect.status = 200
retries = 2
interval = "10ms"
timeout = "300ms"

[[check]]
name = "three"
path = "/three"
auth = "none"
expect.status = 200
retries = 2
interval = "10ms"
timeout = "300ms"
"#;

fn suite() -> Suite {
    Suite::from_toml(THREE_GETS, "test").unwrap()
}

/// A server that accepts every connection, holds it, and never answers.
async fn dead_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (url, task)
}

/// A keep-alive HTTP/1.1 server answering `200 {}` to every GET, counting
/// the connections open right now.
async fn counting_server(open: Arc<AtomicUsize>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let open = open.clone();
            open.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                }
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (url, task)
}

fn tenant(url: &str) -> canary_core::Tenant {
    canary_core::Tenant::new(url, canary_core::Secret::new("tok-budget-8c1f"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_tenant_costs_its_timeouts_once() {
    let (url, server) = dead_server().await;
    let runner = HttpSuite::new(suite(), HttpOptions::default()).unwrap();
    let results = runner.run(&tenant(&url), &context()).await;
    server.abort();
    let statuses: Vec<CheckStatus> = results.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [CheckStatus::Error, CheckStatus::NotRun, CheckStatus::NotRun],
        "{results:#?}"
    );
    assert_eq!(results[0].attempts, 3);
    assert!(
        results[0].actual.contains("no answer within 300ms"),
        "{results:#?}"
    );
    for r in &results[1..] {
        assert_eq!(r.attempts, 0);
        assert!(
            r.actual
                .contains("not run: the tenant did not answer `one`"),
            "{r:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_deadline_bounds_the_whole_suite() {
    let (url, server) = dead_server().await;
    // Each check alone would take 3 × 300 ms; the deadline allows 400 ms
    // for the tenant in all.
    let options = HttpOptions {
        tenant_deadline: Duration::from_millis(400),
        ..HttpOptions::default()
    };
    let runner = HttpSuite::new(suite(), options).unwrap();
    let started = Instant::now();
    let results = runner.run(&tenant(&url), &context()).await;
    let spent = started.elapsed();
    server.abort();
    assert_eq!(results[0].status, CheckStatus::Error, "{results:#?}");
    assert!(
        results[0].actual.contains("the tenant's deadline of 400ms"),
        "{results:#?}"
    );
    assert!(results[0].attempts < 3, "{results:#?}");
    // Generous bound: the point is 400 ms, not 900 ms or more.
    assert!(spent < Duration::from_millis(850), "{spent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_connections_are_closed_when_its_suite_ends() {
    let open = Arc::new(AtomicUsize::new(0));
    let (url, server) = counting_server(open.clone()).await;
    let runner = HttpSuite::new(suite(), HttpOptions::default()).unwrap();
    let results = runner.run(&tenant(&url), &context()).await;
    assert!(
        results.iter().all(|r| r.status == CheckStatus::Passed),
        "{results:#?}"
    );
    // The pool would keep the connection for its 30 s idle timeout; a
    // released one is closed at once. Allow a few seconds for the close
    // to reach the server on a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(5);
    while open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(open.load(Ordering::SeqCst), 0, "connection still open");
    // The runner is still usable for the next tenant.
    let again = runner.run(&tenant(&url), &context()).await;
    assert!(again.iter().all(|r| r.status == CheckStatus::Passed));
    server.abort();
}
