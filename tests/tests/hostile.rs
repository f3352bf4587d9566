//! Hostile answers from the outside world — a registry answering HTML, a
//! token endpoint answering garbage, an unreachable registry, tenants
//! answering huge, binary or HTML bodies — each gives the documented exit
//! code and a message naming the problem, and never a panic. (The bad-input
//! table of the command line itself is in canary-cli/tests/cli.rs.)

// Counts are printed for the CI log.
#![allow(clippy::print_stdout)]

use std::process::Command;

use canary_e2e::{canary_bin, run, Run, NEW, OLD, TENANT_TOKEN};
use canary_testkit::fake_registry::{FakeRegistry, FakeRegistryOptions, Fault, FaultKind};
use canary_testkit::tenant::{TenantFault, TenantOptions, TenantServer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const REPOS: [&str; 2] = ["acme/platform", "acme/tenant"];

fn seed(registry: &FakeRegistry) {
    for repo in REPOS {
        registry.push_image(repo, &format!("staging-{OLD}"), &format!("{repo}-old"));
        registry.push_image(repo, "latest", &format!("{repo}-old"));
        registry.push_image(repo, &format!("staging-{NEW}"), &format!("{repo}-new"));
    }
}

fn canary(registry_host: &str, tenant_urls: &[String]) -> Command {
    let mut cmd = Command::new(canary_bin());
    let dir = std::env::temp_dir();
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_BACKTRACE", "1")
        .env("NO_COLOR", "1")
        .env(
            "CANARY_IMAGES",
            REPOS
                .iter()
                .map(|r| format!("{registry_host}/{r}"))
                .collect::<Vec<_>>()
                .join(","),
        )
        .env("CANARY_TENANT_URLS", tenant_urls.join(","))
        .env(
            "CANARY_TENANT_TOKENS",
            vec![TENANT_TOKEN; tenant_urls.len()].join(","),
        )
        .env("CANARY_ROLLOUT_INTERVAL", "100ms")
        .env("CANARY_ROLLOUT_DEADLINE", "5s");
    cmd
}

fn latest_unchanged(registry: &FakeRegistry) {
    for repo in REPOS {
        assert_eq!(
            registry.tag_digest(repo, "latest"),
            registry.tag_digest(repo, &format!("staging-{OLD}")),
            "{repo}:latest moved"
        );
    }
}

fn sane(name: &str, r: &Run, code: i32, needle: &str) {
    assert_eq!(r.code, code, "{name}: {r:?}");
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains(needle),
        "{name}: output lacks {needle:?}:\n{all}"
    );
    assert!(
        !all.contains("panicked") && !all.contains("stack backtrace"),
        "{name}: panic\n{all}"
    );
    assert!(!all.contains(TENANT_TOKEN), "{name}: token printed");
    assert!(
        all.len() < 64 * 1024,
        "{name}: {} bytes of output",
        all.len()
    );
}

async fn healthy_tenant() -> TenantServer {
    TenantServer::start(TenantOptions {
        token: TENANT_TOKEN.to_string(),
        version: NEW.to_string(),
        fault: TenantFault::None,
    })
    .await
}

/// A raw HTTP/1.1 server answering every request with `body`.
async fn raw_tenant(content_type: &'static str, body: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let _ = sock.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_answers_get_documented_exits() {
    let mut tried = 0;

    // A registry that answers HTML (a captive portal).
    let registry = FakeRegistry::start().await;
    seed(&registry);
    for n in 1..=60 {
        registry.inject(Fault::nth(n, FaultKind::HtmlBody));
    }
    let tenant = healthy_tenant().await;
    let mut cmd = canary(&registry.host(), &[tenant.url()]);
    cmd.args(["verify", "--sha", NEW]);
    let r = run(cmd).await;
    sane("registry answers HTML", &r, 3, "HTML");
    latest_unchanged(&registry);
    tried += 1;

    // A token endpoint that answers garbage.
    let registry =
        FakeRegistry::start_with(FakeRegistryOptions::default().with_bearer("ci", "pw-XYZ-123"))
            .await;
    seed(&registry);
    for n in 1..=20 {
        registry.inject(Fault::nth_token(n, FaultKind::HtmlBody));
    }
    let mut cmd = canary(&registry.host(), &[tenant.url()]);
    cmd.env("CANARY_REGISTRY_USERNAME", "ci")
        .env("CANARY_REGISTRY_PASSWORD", "pw-XYZ-123");
    cmd.args(["verify", "--sha", NEW]);
    let r = run(cmd).await;
    sane("token endpoint garbage", &r, 3, "token");
    assert!(!r.stdout.contains("pw-XYZ-123") && !r.stderr.contains("pw-XYZ-123"));
    latest_unchanged(&registry);
    tried += 1;

    // Wrong registry credentials.
    let registry =
        FakeRegistry::start_with(FakeRegistryOptions::default().with_bearer("ci", "pw-XYZ-123"))
            .await;
    seed(&registry);
    let mut cmd = canary(&registry.host(), &[tenant.url()]);
    cmd.env("CANARY_REGISTRY_USERNAME", "ci")
        .env("CANARY_REGISTRY_PASSWORD", "wrong-PW-456");
    cmd.args(["verify", "--sha", NEW]);
    let r = run(cmd).await;
    sane("wrong registry password", &r, 3, "401");
    assert!(!r.stdout.contains("wrong-PW-456") && !r.stderr.contains("wrong-PW-456"));
    tried += 1;

    // An unreachable registry (a closed loopback port).
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut cmd = canary(&closed, &[tenant.url()]);
    cmd.args(["verify", "--sha", NEW]);
    let r = run(cmd).await;
    sane("registry unreachable", &r, 3, &closed);
    tried += 1;

    // Tenants answering huge, binary and HTML bodies: evidence against.
    let registry = FakeRegistry::start().await;
    seed(&registry);
    let hostile = [
        (
            "huge JSON body",
            raw_tenant("application/json", vec![b'['; 8 * 1024 * 1024]).await,
        ),
        (
            "binary body",
            raw_tenant(
                "application/octet-stream",
                (0..=255u8).cycle().take(70_000).collect(),
            )
            .await,
        ),
        (
            "HTML login page",
            raw_tenant("text/html", b"<html><body>Sign in</body></html>".to_vec()).await,
        ),
    ];
    for (name, url) in &hostile {
        let mut cmd = canary(&registry.host(), std::slice::from_ref(url));
        cmd.env("CANARY_WAIT_FOR_ROLLOUT", "false");
        cmd.args(["verify", "--sha", NEW]);
        let r = run(cmd).await;
        sane(name, &r, 1, "rejected");
        latest_unchanged(&registry);
        tried += 1;
    }
    println!("hostile answers tried: {tried}, each with its documented exit code, no panic");
}
