//! The reference control plane: the one admin endpoint `canary fleet
//! enroll` calls, over an in-memory table of orgs.
//!
//! ```no_run
//! # async fn demo() {
//! use canary_sandbox::control_plane::ControlPlaneServer;
//!
//! let cp = ControlPlaneServer::start("cp-admin-secret").await;
//! cp.create_org("acme-canary");
//! println!("control plane at {}", cp.url());
//! // Dropping the server stops it.
//! # }
//! ```
//!
//! # Contract
//!
//! `POST /cp/admin/orgs/<slug>/canary` with `Authorization: Bearer <admin
//! token>` and the JSON body `{"is_canary": <bool>}` sets the org's
//! canary flag. Checked in this order, every answer JSON:
//!
//! | case | status | body |
//! |---|---|---|
//! | no bearer token, or not the admin token | 401 | `{"error": "unauthorized"}` |
//! | the body is not `{"is_canary": <bool>}` | 400 | `{"error": "…"}` |
//! | no org with that slug | 404 | `{"error": "org not found", "slug": …}` |
//! | the flag already has that value | 200 | `{"slug": …, "is_canary": …, "changed": false}` |
//! | the org is provisioned (its instance exists) | 409 | `{"error": "org already provisioned", "code": "already_provisioned", "slug": …}` |
//! | otherwise: the flag is set | 200 | `{"slug": …, "is_canary": …, "changed": true}` |
//!
//! An org already canary answers 200 with `"changed": false`, provisioned
//! or not: enrolling twice is safe. The flag of a provisioned org never
//! changes: its instance was created in the account the flag chose, so
//! flipping it now would leave a canary org running outside the canary
//! account. Any other method or path answers 404 `{"error": "not found"}`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::lock;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};

use crate::server::Server;

/// One org of the reference control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Org {
    /// Whether it is a canary org (new orgs are not).
    pub is_canary: bool,
    /// Whether its instance was provisioned.
    pub provisioned: bool,
}

struct Shared {
    token: String,
    orgs: Mutex<BTreeMap<String, Org>>,
    requests: AtomicU64,
}

/// A running reference control plane on `127.0.0.1` and a free port.
/// Dropping it stops the server.
pub struct ControlPlaneServer {
    server: Server,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ControlPlaneServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlaneServer")
            .field("url", &self.url())
            .field("orgs", &*lock(&self.shared.orgs))
            .finish_non_exhaustive()
    }
}

impl ControlPlaneServer {
    /// Starts a control plane that takes `admin_token` as `Authorization:
    /// Bearer …`, with no orgs, on the current Tokio runtime.
    ///
    /// # Panics
    ///
    /// When no loopback port can be bound (a broken machine).
    pub async fn start(admin_token: impl Into<String>) -> Self {
        let shared = Arc::new(Shared {
            token: admin_token.into(),
            orgs: Mutex::new(BTreeMap::new()),
            requests: AtomicU64::new(0),
        });
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let server = Server::start(|_| app).await;
        Self { server, shared }
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        self.server.base_url()
    }

    /// Creates an org as `POST /cp/orgs` does: not canary, not provisioned.
    pub fn create_org(&self, slug: &str) {
        self.set_org(slug, Org::default());
    }

    /// Sets an org's state (creating it when missing).
    pub fn set_org(&self, slug: &str, org: Org) {
        lock(&self.shared.orgs).insert(slug.to_string(), org);
    }

    /// Provisions an org's instance (creating the org when missing).
    pub fn provision(&self, slug: &str) {
        lock(&self.shared.orgs)
            .entry(slug.to_string())
            .or_default()
            .provisioned = true;
    }

    /// An org's state, if it exists.
    pub fn org(&self, slug: &str) -> Option<Org> {
        lock(&self.shared.orgs).get(slug).copied()
    }

    /// How many requests it has received.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }
}

fn answer(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let slug = uri
        .path()
        .strip_prefix("/cp/admin/orgs/")
        .and_then(|rest| rest.strip_suffix("/canary"))
        .filter(|s| !s.is_empty() && !s.contains('/'));
    let (Method::POST, Some(slug)) = (method, slug) else {
        return answer(StatusCode::NOT_FOUND, &json!({"error": "not found"}));
    };
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| !shared.token.is_empty() && t == shared.token);
    if !authorized {
        return answer(StatusCode::UNAUTHORIZED, &json!({"error": "unauthorized"}));
    }
    let Some(wanted) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("is_canary").and_then(Value::as_bool))
    else {
        return answer(
            StatusCode::BAD_REQUEST,
            &json!({"error": "expected a JSON body {\"is_canary\": true|false}"}),
        );
    };
    let mut orgs = lock(&shared.orgs);
    let Some(org) = orgs.get_mut(slug) else {
        return answer(
            StatusCode::NOT_FOUND,
            &json!({"error": "org not found", "slug": slug}),
        );
    };
    if org.is_canary == wanted {
        return answer(
            StatusCode::OK,
            &json!({"slug": slug, "is_canary": wanted, "changed": false}),
        );
    }
    if org.provisioned {
        return answer(
            StatusCode::CONFLICT,
            &json!({
                "error": "org already provisioned",
                "code": "already_provisioned",
                "slug": slug,
            }),
        );
    }
    org.is_canary = wanted;
    answer(
        StatusCode::OK,
        &json!({"slug": slug, "is_canary": wanted, "changed": true}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn flip(cp: &ControlPlaneServer, slug: &str, token: Option<&str>) -> (u16, Value) {
        let mut r = reqwest::Client::new()
            .post(format!("{}/cp/admin/orgs/{slug}/canary", cp.url()))
            .body(r#"{"is_canary": true}"#);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        (
            status,
            serde_json::from_str(&resp.text().await.unwrap()).unwrap(),
        )
    }

    #[tokio::test]
    async fn the_contract_case_by_case() {
        let cp = ControlPlaneServer::start("cp-secret").await;
        cp.create_org("fresh");
        cp.provision("old");
        cp.set_org(
            "done",
            Org {
                is_canary: true,
                provisioned: true,
            },
        );
        assert_eq!(flip(&cp, "fresh", None).await.0, 401);
        assert_eq!(flip(&cp, "fresh", Some("wrong")).await.0, 401);
        assert_eq!(cp.org("fresh"), Some(Org::default()), "nothing changed");
        let (status, body) = flip(&cp, "fresh", Some("cp-secret")).await;
        assert_eq!((status, &body["changed"]), (200, &json!(true)));
        assert!(cp.org("fresh").unwrap().is_canary);
        let (status, body) = flip(&cp, "fresh", Some("cp-secret")).await;
        assert_eq!((status, &body["changed"]), (200, &json!(false)));
        let (status, body) = flip(&cp, "old", Some("cp-secret")).await;
        assert_eq!(
            (status, &body["code"]),
            (409, &json!("already_provisioned"))
        );
        assert!(!cp.org("old").unwrap().is_canary);
        let (status, body) = flip(&cp, "done", Some("cp-secret")).await;
        assert_eq!((status, &body["changed"]), (200, &json!(false)));
        assert_eq!(flip(&cp, "nobody", Some("cp-secret")).await.0, 404);
        let bad = reqwest::Client::new()
            .post(format!("{}/cp/admin/orgs/fresh/canary", cp.url()))
            .bearer_auth("cp-secret")
            .body("yes please")
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status().as_u16(), 400);
        let get = reqwest::Client::new()
            .get(format!("{}/cp/admin/orgs/fresh/canary", cp.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(get.status().as_u16(), 404);
        assert_eq!(cp.requests(), 9);
    }
}
