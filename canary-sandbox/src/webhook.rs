//! The reference webhook receiver: what a team's endpoint for canary's
//! notifications does. It checks `X-Canary-Signature` (HMAC-SHA256 over the
//! exact body, compared in constant time) and keeps every event, so the
//! demo can show them and tests can assert on them.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Router;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::lock;
use crate::server::Server;

/// One notification received.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The body, parsed.
    pub body: Value,
    /// The raw body.
    pub raw: Vec<u8>,
    /// Whether the signature header was present and matched the secret.
    pub signature_valid: bool,
    /// The signature header as sent, if any.
    pub signature: Option<String>,
}

impl Received {
    /// The `event` field of a canary JSON body (the outcome).
    pub fn event(&self) -> Option<&str> {
        self.body.get("event").and_then(Value::as_str)
    }
}

struct Shared {
    secret: Vec<u8>,
    received: Mutex<Vec<Received>>,
    /// Answer this many requests with 503 first (to exercise retries).
    fail_first: Mutex<u32>,
}

/// A running receiver on `127.0.0.1`. Dropping it stops the server.
pub struct WebhookReceiver {
    server: Server,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for WebhookReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookReceiver")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl WebhookReceiver {
    /// Starts a receiver that checks signatures with `secret`.
    pub async fn start(secret: &str) -> Self {
        let shared = Arc::new(Shared {
            secret: secret.as_bytes().to_vec(),
            received: Mutex::new(Vec::new()),
            fail_first: Mutex::new(0),
        });
        let app = Router::new().fallback(receive).with_state(shared.clone());
        let server = Server::start(|_| app).await;
        Self { server, shared }
    }

    /// The URL to post to.
    pub fn url(&self) -> String {
        format!("{}/hooks/canary", self.server.base_url())
    }

    /// Every notification received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.shared.received).clone()
    }

    /// Answers the next `n` requests with 503 (they are not kept).
    pub fn fail_next(&self, n: u32) {
        *lock(&self.shared.fail_first) = n;
    }
}

/// Whether `header` is `sha256=<hex>` of HMAC-SHA256(`secret`, `body`).
pub fn signature_matches(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    {
        let mut fail = lock(&shared.fail_first);
        if *fail > 0 {
            *fail -= 1;
            return StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    let signature = headers
        .get("x-canary-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let signature_valid = signature
        .as_deref()
        .is_some_and(|s| signature_matches(&shared.secret, &body, s));
    let parsed = serde_json::from_slice(&body).unwrap_or(Value::Null);
    lock(&shared.received).push(Received {
        body: parsed,
        raw: body.to_vec(),
        signature_valid,
        signature,
    });
    StatusCode::NO_CONTENT
}
