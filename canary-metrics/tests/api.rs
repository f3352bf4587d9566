//! `PrometheusSource` against a scripted Prometheus HTTP API (wiremock):
//! every result type, every failing answer, auth, retries and URLs.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use canary_core::analysis::{judge, read, Cohorts, Metric, MetricSource, Rule, VerdictStatus};
use canary_core::{ErrorKind, Secret};
use canary_metrics::{Point, PrometheusAuth, PrometheusOptions, PrometheusSource};
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "prom-t0ken-9f8e7d";

fn source(url: &str, auth: PrometheusAuth) -> PrometheusSource {
    PrometheusSource::new(PrometheusOptions {
        auth,
        retry_delay: Duration::ZERO,
        ..PrometheusOptions::new(url)
    })
    .unwrap()
}

fn open(server: &MockServer) -> PrometheusSource {
    source(&server.uri(), PrometheusAuth::None)
}

fn vector(items: &[(&str, &str)]) -> Value {
    let result: Vec<Value> = items
        .iter()
        .map(|(release, v)| json!({"metric": {"release": release}, "value": [1_700_000_000.5, v]}))
        .collect();
    json!({"status": "success", "data": {"resultType": "vector", "result": result}})
}

async fn answer(server: &MockServer, query: &str, status: u16, body: Value) {
    Mock::given(method("GET"))
        .and(path("/api/v1/query"))
        .and(query_param("query", query))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_vector_gives_one_value_per_series() {
    let server = MockServer::start().await;
    answer(
        &server,
        "up",
        200,
        vector(&[("canary", "1"), ("baseline", "0.5")]),
    )
    .await;
    let p = open(&server);
    assert_eq!(p.query("up").await.unwrap(), vec![1.0, 0.5]);
}

#[tokio::test]
async fn instant_queries_at_a_time_keep_labels_and_times() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/query"))
        .and(query_param("time", "1700000000.250"))
        .respond_with(ResponseTemplate::new(200).set_body_json(vector(&[("canary", "3")])))
        .expect(2)
        .mount(&server)
        .await;
    let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
    // A source pinned to one instant evaluates every query there.
    let pinned = open(&server).at(at);
    assert_eq!(pinned.time(), Some(at));
    assert_eq!(pinned.query("x").await.unwrap(), vec![3.0]);
    let series = open(&server).instant("x", Some(at)).await.unwrap();
    assert_eq!(series[0].labels["release"], "canary");
    assert_eq!(
        series[0].points,
        [Point {
            time: 1_700_000_000.5,
            value: 3.0
        }]
    );
}

#[tokio::test]
async fn a_scalar_gives_one_value() {
    let server = MockServer::start().await;
    let body =
        json!({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "0.02"]}});
    answer(&server, "scalar(x)", 200, body).await;
    assert_eq!(open(&server).query("scalar(x)").await.unwrap(), vec![0.02]);
}

fn error_rate() -> Metric {
    let c = |a: &str, b: &str| Cohorts {
        canary: a.into(),
        baseline: b.into(),
    };
    Metric {
        name: "http-errors".into(),
        rule: Rule::ErrorRate {
            errors: c("ce", "be"),
            total: c("cn", "bn"),
            max_increase: 0.01,
            max_rate: None,
        },
        min_requests: 200.0,
        confidence: 0.95,
    }
}

#[tokio::test]
async fn no_series_is_an_empty_vector_and_no_verdict() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/query"))
        .respond_with(ResponseTemplate::new(200).set_body_json(vector(&[])))
        .expect(5)
        .mount(&server)
        .await;
    let p = open(&server);
    assert_eq!(p.query("ce").await.unwrap(), Vec::<f64>::new());
    let v = judge(&error_rate(), &read(&p, &error_rate(), None).await);
    assert_eq!(v.status, VerdictStatus::Inconclusive, "{}", v.detail);
    assert!(!v.query_error);
    assert!(v.detail.contains("no data"), "{}", v.detail);
}

#[tokio::test]
async fn nan_and_infinities_are_kept() {
    let server = MockServer::start().await;
    answer(
        &server,
        "x",
        200,
        vector(&[("a", "NaN"), ("b", "+Inf"), ("c", "-Inf"), ("d", "1e-3")]),
    )
    .await;
    let values = open(&server).query("x").await.unwrap();
    assert!(values[0].is_nan());
    assert_eq!(&values[1..], &[f64::INFINITY, f64::NEG_INFINITY, 0.001]);
}

#[tokio::test]
async fn an_error_status_carries_error_type_and_error() {
    let server = MockServer::start().await;
    let body = json!({"status": "error", "errorType": "bad_data",
        "error": "invalid parameter \"query\": 1:17: parse error: unclosed left parenthesis"});
    answer(&server, "sum(rate(x[5m]", 400, body).await;
    let e = open(&server).query("sum(rate(x[5m]").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    let text = e.chain();
    assert!(text.contains(&server.uri()), "{text}");
    assert!(text.contains("`sum(rate(x[5m]`"), "{text}");
    assert!(
        text.contains("(400): bad_data: invalid parameter \"query\": 1:17: parse error"),
        "{text}"
    );
    assert!(e.hint().unwrap().contains("PromQL"));
}

#[tokio::test]
async fn a_query_timeout_is_not_retried() {
    let server = MockServer::start().await;
    let body = json!({"status": "error", "errorType": "timeout", "error": "query timed out in expression evaluation"});
    answer(&server, "heavy", 503, body).await;
    let e = open(&server).query("heavy").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(e.message().contains("timeout: query timed out"), "{e}");
}

#[tokio::test]
async fn a_refused_token_is_named_never_shown() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/query"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        // A careless proxy echoing the header back.
        .respond_with(ResponseTemplate::new(401).set_body_string(format!("bad token {TOKEN}")))
        .expect(1)
        .mount(&server)
        .await;
    let p = source(&server.uri(), PrometheusAuth::Bearer(Secret::new(TOKEN)));
    let e = p.query("up").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    let all = format!("{} {:?} {:?} {p:?}", e.chain(), e.hint(), e);
    assert!(!all.contains(TOKEN), "{all}");
    assert!(
        e.message()
            .ends_with("401 Unauthorized: the bearer token was refused"),
        "{e}"
    );
}

#[tokio::test]
async fn a_401_without_credentials_says_so() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/query"))
        .respond_with(ResponseTemplate::new(401))
        .expect(1)
        .mount(&server)
        .await;
    let e = open(&server).query("up").await.unwrap_err();
    assert!(
        e.message()
            .contains("asks for credentials and none were given"),
        "{e}"
    );
    assert!(e.hint().unwrap().contains("bearer token"));
}

#[tokio::test]
async fn basic_auth_is_sent_and_scrubbed() {
    let server = MockServer::start().await;
    // reader:hunter2
    Mock::given(path("/api/v1/query"))
        .and(header("authorization", "Basic cmVhZGVyOmh1bnRlcjI="))
        .respond_with(
            ResponseTemplate::new(502)
                .set_body_string("upstream saw cmVhZGVyOmh1bnRlcjI= and hunter2"),
        )
        .expect(2)
        .mount(&server)
        .await;
    let p = PrometheusSource::new(PrometheusOptions {
        auth: PrometheusAuth::Basic {
            username: "reader".into(),
            password: Secret::new("hunter2"),
        },
        retries: 1,
        retry_delay: Duration::ZERO,
        ..PrometheusOptions::new(server.uri())
    })
    .unwrap();
    let e = p.query("up").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    let text = e.chain();
    assert!(text.contains("upstream saw *** and ***"), "{text}");
    assert!(text.contains("(after 2 attempts)"), "{text}");
}

#[tokio::test]
async fn a_path_prefix_is_kept() {
    let server = MockServer::start().await;
    Mock::given(path("/prometheus/api/v1/query"))
        .respond_with(ResponseTemplate::new(200).set_body_json(vector(&[("x", "7")])))
        .expect(2)
        .mount(&server)
        .await;
    for base in ["/prometheus", "/prometheus/"] {
        let p = open_at(&format!("{}{base}", server.uri()));
        assert_eq!(p.url(), format!("{}/prometheus", server.uri()));
        assert_eq!(p.query("up").await.unwrap(), vec![7.0]);
    }
}

fn open_at(url: &str) -> PrometheusSource {
    source(url, PrometheusAuth::None)
}

#[tokio::test]
async fn queries_are_url_encoded() {
    let server = MockServer::start().await;
    let q =
        r#"sum(increase(http_requests_total{code=~"5..", release="canary"}[5m])) + 1 / 2 & x # y"#;
    Mock::given(path("/api/v1/query"))
        .and(query_param("query", q))
        .respond_with(ResponseTemplate::new(200).set_body_json(vector(&[("x", "1")])))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(open(&server).query(q).await.unwrap(), vec![1.0]);
    let requests: Vec<Request> = server.received_requests().await.unwrap();
    let raw = requests[0].url.query().unwrap().to_string();
    assert!(
        raw.contains("%2B") && raw.contains("%26") && raw.contains("%23"),
        "{raw}"
    );
    assert!(!raw.contains('"') && !raw.contains('{'), "{raw}");
}

#[tokio::test]
async fn server_errors_are_retried_a_few_times() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/query"))
        .respond_with(ResponseTemplate::new(503).set_body_string("warming up"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/query"))
        .respond_with(ResponseTemplate::new(200).set_body_json(vector(&[("x", "2")])))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(open(&server).query("up").await.unwrap(), vec![2.0]);

    let server = MockServer::start().await;
    Mock::given(path("/api/v1/query"))
        .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
        .expect(3)
        .mount(&server)
        .await;
    let e = open(&server).query("up").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(
        e.message()
            .contains("answered 500: boom (after 3 attempts)"),
        "{e}"
    );
}

#[tokio::test]
async fn answers_that_are_not_the_api() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/query"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string("<html><body>Grafana</body></html>"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let e = open(&server).query("up").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(e.message().contains("not its JSON): <html>"), "{e}");

    let server = MockServer::start().await;
    let e = open(&server).query("up").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.hint().unwrap().contains("path prefix"), "{e:?}");

    let server = MockServer::start().await;
    Mock::given(path("/api/v1/query"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "https://sso.example/"))
        .expect(1)
        .mount(&server)
        .await;
    let e = open(&server).query("up").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(e.message().contains("redirect (302)"), "{e}");

    let server = MockServer::start().await;
    let body =
        json!({"status": "success", "data": {"resultType": "string", "result": [1.0, "hi"]}});
    answer(&server, "\"hi\"", 200, body).await;
    let e = open(&server).query("\"hi\"").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(e.message().contains("returns a string"), "{e}");
}

#[tokio::test]
async fn an_unreachable_prometheus_is_a_transient_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let e = open_at(&url).query("up").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Transient);
    assert!(e.message().contains("could not connect"), "{e}");
    assert!(e.message().contains("(after 3 attempts)"), "{e}");
    assert!(e.hint().unwrap().contains("is Prometheus running"));
}

#[tokio::test]
async fn range_queries_give_points() {
    let server = MockServer::start().await;
    let body = json!({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"release": "canary"}, "values": [[100.0, "1"], [160.0, "2"], [220.0, "NaN"]]}
    ]}});
    Mock::given(path("/api/v1/query_range"))
        .and(query_param("query", "x"))
        .and(query_param("start", "100.000"))
        .and(query_param("end", "220.000"))
        .and(query_param("step", "60.000"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .mount(&server)
        .await;
    let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
    let p = open(&server);
    let series = p
        .query_range("x", at(100), at(220), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(series.len(), 1);
    let points: Vec<(f64, f64)> = series[0].points.iter().map(|p| (p.time, p.value)).collect();
    assert_eq!(&points[..2], &[(100.0, 1.0), (160.0, 2.0)]);
    assert!(points[2].1.is_nan());
    let e = p
        .query_range("x", at(220), at(100), Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
}

#[tokio::test]
async fn works_behind_arc_and_box_dyn() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/query"))
        .respond_with(ResponseTemplate::new(200).set_body_json(vector(&[("x", "1")])))
        .expect(2)
        .mount(&server)
        .await;
    let arc: Arc<dyn MetricSource> = Arc::new(open(&server));
    let boxed: Box<dyn MetricSource> = Box::new(open(&server));
    assert_eq!(arc.query("up").await.unwrap(), vec![1.0]);
    assert_eq!(boxed.query("up").await.unwrap(), vec![1.0]);
}

#[test]
fn bad_settings_are_usage_errors() {
    let e = PrometheusSource::new(PrometheusOptions::new("prometheus:9090")).unwrap_err();
    assert!(e.input().contains("analysis.prometheus"), "{e}");
    let e = PrometheusSource::new(PrometheusOptions {
        timeout: Duration::ZERO,
        ..PrometheusOptions::new("http://127.0.0.1:9090")
    })
    .unwrap_err();
    assert!(e.problem().contains("zero"), "{e}");
    let e = PrometheusSource::new(PrometheusOptions {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..PrometheusOptions::new("https://prometheus")
    })
    .unwrap_err();
    assert!(e.input().contains("ca_file"), "{e}");
}
