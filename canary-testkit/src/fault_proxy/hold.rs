//! Held requests (a request waits at the proxy, on arrival or after the
//! registry answered, until the test lets it go on or refuses it), the
//! arrival log, and the requests in flight — what a test needs to stop a
//! client at an exact request and then read a registry that no request is
//! still changing (see the fault proxy's decisions).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};
use tokio::sync::oneshot;

use super::{text, FaultProxy};

/// Where a held request waits (see [`FaultProxy::hold_nth`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldAt {
    /// On arrival, before it is forwarded: the registry has not seen it.
    Arrival,
    /// After the registry answered, before the answer is passed on: the
    /// request took effect, the client does not know it yet.
    Answer,
}

/// One request that reached the forwarder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arrival {
    /// Its 1-based index among the `/v2` requests that reached the
    /// forwarder, in arrival order.
    pub index: usize,
    /// `GET`, `HEAD`, `PUT`, …
    pub method: Method,
    /// The path with its query.
    pub path: String,
}

impl fmt::Display for Arrival {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {} {}", self.index, self.method, self.path)
    }
}

/// What becomes of a held request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// It goes on as if never held.
    Release,
    /// Answered `502` by the proxy (held on arrival: never forwarded).
    Refuse,
}

pub(super) type Matcher = Box<dyn Fn(&Arrival) -> bool + Send>;

pub(super) struct Armed {
    matches: Matcher,
    pub(super) at: HoldAt,
    reached: oneshot::Sender<Arrival>,
    verdict: oneshot::Receiver<Verdict>,
}

/// The arrival log, the armed holds and the requests in flight, shared by
/// the proxy's handle and its forwarder.
#[derive(Default)]
pub(super) struct Holds {
    inner: Mutex<HoldsInner>,
    /// Requests under `/v2` that arrived and are not finished.
    in_flight: Arc<AtomicUsize>,
    /// Whether a forwarded request is finished even when its client left.
    pub(super) detached: AtomicBool,
}

/// One request in flight; finished when dropped (answered, or abandoned by
/// the server because its client went away).
pub(super) struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Default)]
pub(super) struct HoldsInner {
    pub(super) arrivals: Vec<Arrival>,
    armed: Vec<Armed>,
}

impl Holds {
    pub(super) fn lock(&self) -> MutexGuard<'_, HoldsInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Logs a request under `/v2` and takes the first hold it matches.
    pub(super) fn arrive(&self, method: &Method, path: &str) -> (Arrival, Option<Armed>, InFlight) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(Arc::clone(&self.in_flight));
        let mut inner = self.lock();
        let arrival = Arrival {
            index: inner.arrivals.len() + 1,
            method: method.clone(),
            path: path.to_string(),
        };
        inner.arrivals.push(arrival.clone());
        let hold = inner
            .armed
            .iter()
            .position(|h| (h.matches)(&arrival))
            .map(|i| inner.armed.remove(i));
        (arrival, hold, guard)
    }

    /// Requests under `/v2` in flight now.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Waits until no request is in flight; false after `timeout`.
    pub(super) async fn settled(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.in_flight() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        true
    }

    /// Arms a hold; the returned [`Held`] is the test's side of it.
    pub(super) fn arm(&self, at: HoldAt, matches: Matcher) -> Held {
        let (reached_tx, reached_rx) = oneshot::channel();
        let (verdict_tx, verdict_rx) = oneshot::channel();
        self.lock().armed.push(Armed {
            matches,
            at,
            reached: reached_tx,
            verdict: verdict_rx,
        });
        Held {
            reached: Some(reached_rx),
            arrival: None,
            verdict: Some(verdict_tx),
        }
    }
}

/// A hold armed with [`FaultProxy::hold_nth`] or [`FaultProxy::hold_when`].
///
/// Dropping it without a decision releases the request (a test that fails
/// never leaves a request hanging in the proxy).
#[derive(Debug)]
pub struct Held {
    reached: Option<oneshot::Receiver<Arrival>>,
    arrival: Option<Arrival>,
    verdict: Option<oneshot::Sender<Verdict>>,
}

impl Held {
    /// Waits until the request is held; `None` when the proxy stopped
    /// before any request matched. Cancel-safe (use it in `select!`), and
    /// answers at once once it has answered.
    pub async fn reached(&mut self) -> Option<Arrival> {
        if self.arrival.is_none() {
            let rx = self.reached.as_mut()?;
            let got = rx.await.ok();
            self.reached = None;
            self.arrival = got;
        }
        self.arrival.clone()
    }

    /// The held request, if it got there (without waiting).
    pub fn arrival(&mut self) -> Option<Arrival> {
        if self.arrival.is_none() {
            if let Some(rx) = self.reached.as_mut() {
                if let Ok(a) = rx.try_recv() {
                    self.arrival = Some(a);
                    self.reached = None;
                }
            }
        }
        self.arrival.clone()
    }

    /// Lets the request go on: forwarded (held on arrival) or answered
    /// (held after the answer).
    pub fn release(mut self) {
        self.decide(Verdict::Release);
    }

    /// Answers the request with a `502` from the proxy. Held on arrival, it
    /// never reaches the registry; held after the answer, it took effect
    /// and the client is told it failed.
    pub fn refuse(mut self) {
        self.decide(Verdict::Refuse);
    }

    fn decide(&mut self, verdict: Verdict) {
        if let Some(tx) = self.verdict.take() {
            let _ = tx.send(verdict);
        }
    }
}

/// Holds, the arrival log and the requests in flight.
impl FaultProxy {
    /// Every request under `/v2` that reached the forwarder so far, in
    /// arrival order (faults answered in place are not among them).
    pub fn arrivals(&self) -> Vec<Arrival> {
        self.holds.lock().arrivals.clone()
    }

    /// Holds the `n`th (1-based) request under `/v2` that reaches the
    /// forwarder, at `at`, until the returned [`Held`] lets it go (see the
    /// module's decisions).
    pub fn hold_nth(&self, n: usize, at: HoldAt) -> Held {
        self.hold_when(at, move |a| a.index == n)
    }

    /// Holds the first request under `/v2` for which `matches` is true
    /// (e.g. the first `PUT` of a manifest by tag), at `at`. Holds strike
    /// once; the first armed hold that matches a request takes it.
    pub fn hold_when(
        &self,
        at: HoldAt,
        matches: impl Fn(&Arrival) -> bool + Send + 'static,
    ) -> Held {
        self.holds.arm(at, Box::new(matches))
    }

    /// From now on, a request the proxy forwards is finished even when its
    /// client goes away meanwhile (e.g. is killed): the registry never sees
    /// a client vanish in the middle of a request, so what a killed client
    /// did is exactly the requests it got to the proxy (a request held on
    /// arrival whose client went away is never forwarded). By default the
    /// proxy gives up on a request whose client went away, as the server
    /// drops its handler.
    pub fn forward_detached(&self) {
        self.holds.detached.store(true, Ordering::SeqCst);
    }

    /// Requests under `/v2` that arrived and are not finished yet (a held
    /// request among them).
    pub fn in_flight(&self) -> usize {
        self.holds.in_flight()
    }

    /// Waits until no request under `/v2` is in flight (e.g. after its
    /// client was killed, so that what the registry holds is final); false
    /// when some still are after `timeout`.
    pub async fn settled(&self, timeout: Duration) -> bool {
        self.holds.settled(timeout).await
    }
}

/// Tells the test the request is held, and waits for its decision; a
/// dropped [`Held`] releases it.
pub(super) async fn wait_for_verdict(hold: Armed, arrival: Arrival) -> Verdict {
    let _ = hold.reached.send(arrival);
    hold.verdict.await.unwrap_or(Verdict::Release)
}

pub(super) fn refused(arrival: &Arrival) -> Response<Body> {
    text(
        StatusCode::BAD_GATEWAY,
        format!("fault proxy: held request {arrival} refused"),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::{header, Method};

    use super::{FaultProxy, HoldAt};
    use crate::oci::{self, Fixture};
    use crate::real_registry::RealRegistry;

    const REPO: &str = "acme/held";
    const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json";

    fn manifest_puts(registry: &RealRegistry) -> usize {
        registry
            .access_log()
            .iter()
            .filter(|e| e.method == "PUT" && e.path.ends_with("/manifests/latest"))
            .count()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn holds_on_arrival_or_after_the_answer_and_releases_or_refuses() {
        let registry = RealRegistry::open();
        Fixture::single("held").build().push(&registry, REPO, "v1");
        let raw = oci::inspect_raw(&registry, REPO, "v1");
        let proxy = FaultProxy::in_front_of(&registry).await;
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let url = format!("{}/v2/{REPO}/manifests/latest", proxy.base_url());
        let put = || {
            let (client, url, raw) = (client.clone(), url.clone(), raw.clone());
            tokio::spawn(async move {
                client
                    .put(url)
                    .header(header::CONTENT_TYPE, ACCEPT)
                    .body(raw)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        };

        // 1: held on arrival, then refused: the registry never sees it.
        let mut held = proxy.hold_nth(1, HoldAt::Arrival);
        let first = put();
        let arrival = held.reached().await.expect("the request arrives");
        assert_eq!((arrival.index, arrival.method.clone()), (1, Method::PUT));
        assert!(arrival.path.ends_with("/manifests/latest"), "{arrival}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!first.is_finished(), "a held request is not answered");
        held.refuse();
        assert_eq!(first.await.unwrap(), 502);
        assert_eq!(manifest_puts(&registry), 0);

        // 2: held after the answer: it took effect before it is released.
        let mut held = proxy.hold_when(HoldAt::Answer, |a| a.method == Method::PUT);
        let second = put();
        assert_eq!(held.reached().await.map(|a| a.index), Some(2));
        assert_eq!(oci::digest_of(&registry, REPO, "latest"), oci::sha256(&raw));
        assert!(!second.is_finished());
        held.release();
        assert_eq!(second.await.unwrap(), 201);

        // A dropped hold lets its request go on; the arrival log is in order.
        let held = proxy.hold_nth(3, HoldAt::Arrival);
        drop(held);
        assert_eq!(put().await.unwrap(), 201);
        let log: Vec<usize> = proxy.arrivals().iter().map(|a| a.index).collect();
        assert_eq!(log, [1, 2, 3]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn detached_forwarding_finishes_a_request_whose_client_left() {
        let registry = RealRegistry::open();
        Fixture::single("detached")
            .build()
            .push(&registry, REPO, "v1");
        let raw = oci::inspect_raw(&registry, REPO, "v1");
        // A slow upstream: a second proxy that delays every PUT.
        let slow = FaultProxy::in_front_of(&registry).await;
        slow.fail_from_method(
            &Method::PUT,
            1,
            &crate::faults::FaultKind::Slow(Duration::from_millis(400)),
        );
        let proxy = FaultProxy::start(&slow.base_url()).await;
        proxy.forward_detached();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let put = client
            .put(format!("{}/v2/{REPO}/manifests/latest", proxy.base_url()))
            .header(header::CONTENT_TYPE, ACCEPT)
            .body(raw.clone())
            .send();
        // The client gives up (goes away) while the PUT is on its way.
        assert!(tokio::time::timeout(Duration::from_millis(100), put)
            .await
            .is_err());
        assert_eq!(proxy.in_flight(), 1);
        assert!(proxy.settled(Duration::from_secs(10)).await);
        assert_eq!(proxy.in_flight(), 0);
        assert_eq!(oci::digest_of(&registry, REPO, "latest"), oci::sha256(&raw));
    }
}
