//! A stand-in for Prometheus's HTTP API, for the demo, which needs nothing
//! installed: it answers the instant queries it was given
//! (`GET /api/v1/query?query=…`), each from a function of the live fleet
//! (say, the sum of its tenants' error counters), in Prometheus's JSON
//! shape. It parses no PromQL: a query it was not given answers
//! `bad_data`, as one Prometheus cannot parse would. Tests use a real
//! Prometheus (canary-testkit).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::lock;
use crate::server::Server;

type Answer = Box<dyn Fn() -> f64 + Send + Sync>;

#[derive(Default)]
struct Answers(Mutex<HashMap<String, Answer>>);

/// A running stand-in on `127.0.0.1` and a free port; dropping it stops it.
pub struct MetricsApi {
    server: Server,
    answers: Arc<Answers>,
}

impl std::fmt::Debug for MetricsApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsApi")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl MetricsApi {
    /// Starts it with no query known.
    pub async fn start() -> Self {
        let answers = Arc::new(Answers::default());
        let state = Arc::clone(&answers);
        let server = Server::start(move |_| {
            Router::new()
                .route("/api/v1/query", get(query))
                .with_state(state)
        })
        .await;
        Self { server, answers }
    }

    /// `query` answers one series whose value is `value()` at the time of
    /// the request.
    pub fn answer(&self, query: &str, value: impl Fn() -> f64 + Send + Sync + 'static) {
        lock(&self.answers.0).insert(query.to_string(), Box::new(value));
    }

    /// Its base URL (what `[analysis] prometheus` names).
    pub fn url(&self) -> String {
        self.server.base_url()
    }
}

async fn query(
    State(answers): State<Arc<Answers>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let q = params.get("query").cloned().unwrap_or_default();
    let value = lock(&answers.0).get(&q).map(|f| f());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    match value {
        Some(v) => Json(json!({
            "status": "success",
            "data": {
                "resultType": "vector",
                "result": [{"metric": {}, "value": [now, v.to_string()]}]
            }
        }))
        .into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "status": "error",
                "errorType": "bad_data",
                "error": format!("the demo's stand-in knows no query `{q}`")
            })),
        )
            .into_response(),
    }
}

/// Sends `requests` plain `GET /work` requests to `tenant` (the traffic a
/// real tenant serves between deploys), one connection each; returns how
/// many were answered with a 5xx.
pub async fn drive_traffic(tenant: &crate::tenant::TenantServer, requests: usize) -> usize {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut errors = 0;
    for _ in 0..requests {
        let Ok(mut stream) = tokio::net::TcpStream::connect(tenant.addr()).await else {
            continue;
        };
        let request = b"GET /work HTTP/1.1\r\nHost: tenant\r\nConnection: close\r\n\r\n";
        if stream.write_all(request).await.is_err() {
            continue;
        }
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        if answer.starts_with(b"HTTP/1.1 5") {
            errors += 1;
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_known_queries_and_refuses_others() {
        let api = MetricsApi::start().await;
        api.answer("sum(x)", || 42.0);
        let client = reqwest::Client::new();
        let ok = client
            .get(format!("{}/api/v1/query", api.url()))
            .query(&[("query", "sum(x)")])
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let ok: serde_json::Value = serde_json::from_str(&ok).unwrap();
        assert_eq!(ok["data"]["result"][0]["value"][1], "42");
        let bad = client
            .get(format!("{}/api/v1/query", api.url()))
            .query(&[("query", "sum(y)")])
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
    }

    #[tokio::test]
    async fn traffic_is_counted_with_its_errors() {
        use crate::tenant::{TenantFault, TenantOptions, TenantServer};
        let t = TenantServer::start(TenantOptions {
            token: "t".into(),
            version: "v".into(),
            fault: TenantFault::error_rate(0.1),
        })
        .await;
        assert_eq!(drive_traffic(&t, 100).await, 10);
        assert_eq!(t.served(), (100, 10));
    }
}
