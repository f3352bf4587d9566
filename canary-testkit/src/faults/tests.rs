//! The fault machinery on a router that is not a registry.

use crate::test_http::client;

use super::*;

#[tokio::test]
async fn fault_server_wraps_any_router() {
    let plan = FaultPlan::new();
    let server = FaultServer::start(plan.clone(), |addr| {
        Router::new().fallback(move || async move { format!("served by {addr}") })
    })
    .await;
    plan.inject(Fault::nth(2, FaultKind::Status(502)));
    let c = client();
    let url = format!("{}/v2/acme/x/manifests/latest", server.base_url());
    let first = c.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(
        first.text().await.unwrap(),
        format!("served by {}", server.addr())
    );
    assert_eq!(c.get(&url).send().await.unwrap().status(), 502);
    // Not under /v2: neither counted nor struck.
    plan.inject(Fault::nth(3, FaultKind::Status(500)));
    assert_eq!(
        c.get(format!("{}/other", server.base_url()))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(plan.pending().len(), 1);
    assert_eq!(c.get(&url).send().await.unwrap().status(), 500);
    let statuses: Vec<_> = server.plan().requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Some(200), Some(502), Some(200), Some(500)]);
}
