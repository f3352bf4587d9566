//! Helpers for the kill matrix: a `canary` process a test can signal or
//! kill at an exact point of its run, and whose stderr it can watch; and
//! [`Direct`], which stages releases in fresh repositories in a few
//! requests and reads what canary left in the registry without canary (the
//! `latest` digests, the ledger records attached to a digest).

use std::fmt::Write as _;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use canary_testkit::oci::Blob;
use canary_testkit::real_registry::RealRegistry;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::task::JoinHandle;

use crate::Run;

/// A running `canary`: its stderr is read as it comes (so a test can wait
/// for "SIGTERM received"), and it is killed when dropped, so a failing
/// test leaves no process behind.
pub struct Spawned {
    child: tokio::process::Child,
    pid: u32,
    stderr: Arc<Mutex<String>>,
    stdout_task: JoinHandle<String>,
    stderr_task: JoinHandle<()>,
}

impl Spawned {
    /// Starts `cmd` with stdout and stderr piped (stdin closed).
    ///
    /// # Panics
    ///
    /// When the program cannot be started.
    pub fn start(cmd: std::process::Command) -> Self {
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("start canary");
        let pid = child.id().expect("a running child has a pid");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let stdout_task = tokio::spawn(async move {
            let mut out = String::new();
            let _ = stdout.read_to_string(&mut out).await;
            out
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let sink = Arc::clone(&stderr);
        let stderr_task = tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut s = sink.lock().unwrap_or_else(PoisonError::into_inner);
                s.push_str(&line);
                s.push('\n');
            }
        });
        Self {
            child,
            pid,
            stderr,
            stdout_task,
            stderr_task,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `signal` (`TERM`, `INT`, …) with `kill(1)`, as a CI runner
    /// would.
    ///
    /// # Panics
    ///
    /// When `kill` cannot be run.
    pub fn signal(&self, signal: &str) {
        // A process that already exited is not an error here: the caller
        // judges how it ended.
        let _ = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid.to_string())
            .status()
            .expect("run kill(1)");
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until stderr contains `needle`; false after `timeout`, or when
    /// the process ended without writing it.
    pub async fn wait_for_stderr(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.stderr().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline || self.stderr_task.is_finished() {
                return self.stderr().contains(needle);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits for the process to end (cancel-safe, for `select!`).
    pub async fn exited(&mut self) -> std::process::ExitStatus {
        self.child.wait().await.expect("wait for canary")
    }

    /// SIGKILL, and waits for the process to be gone.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Waits for the end (SIGKILL after `timeout`) and collects the output.
    /// The exit code is `-1` when a signal ended the process, and the
    /// stderr then says which, and whether the timeout struck.
    pub async fn finish(mut self, timeout: Duration) -> Run {
        let waited = tokio::time::timeout(timeout, self.child.wait()).await;
        let status = if let Ok(status) = waited {
            status.expect("wait for canary")
        } else {
            let _ = self.child.kill().await;
            let _ = writeln!(
                self.stderr.lock().unwrap_or_else(PoisonError::into_inner),
                "[test: still running after {timeout:?}; killed]"
            );
            self.child.wait().await.expect("wait for canary")
        };
        let stdout = (&mut self.stdout_task).await.unwrap_or_default();
        let _ = (&mut self.stderr_task).await;
        let mut stderr = self.stderr();
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt as _;
            if let Some(signal) = status.signal() {
                let _ = writeln!(stderr, "[test: ended by signal {signal}]");
            }
        }
        Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr,
        }
    }
}

/// Every manifest media type the fixtures use, for `Accept`.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
                      application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json, \
                      application/vnd.docker.distribution.manifest.v2+json";
/// Reads and writes a registry directly over HTTP (never through a proxy
/// and never with canary's client): test setup, and an independent view of
/// what canary left behind. Digests are computed from the bytes served, not
/// taken from `Docker-Content-Digest`.
#[derive(Clone, Debug)]
pub struct Direct {
    base: String,
    http: reqwest::Client,
}

impl Direct {
    /// For `registry` (open mode).
    ///
    /// # Panics
    ///
    /// When no HTTP client can be built.
    pub fn new(registry: &RealRegistry) -> Self {
        Self {
            base: registry.base_url(),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
        }
    }

    /// The manifest `repo:reference` serves, or `None` when it does not
    /// exist; any other answer is an error that names it.
    pub async fn manifest(&self, repo: &str, reference: &str) -> Result<Option<Vec<u8>>, String> {
        let what = format!("GET {repo}:{reference}");
        let r = self
            .http
            .get(format!("{}/v2/{repo}/manifests/{reference}", self.base))
            .header("accept", ACCEPT)
            .send()
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        match r.status().as_u16() {
            200 => r
                .bytes()
                .await
                .map(|b| Some(b.to_vec()))
                .map_err(|e| format!("{what}: body: {e}")),
            404 => Ok(None),
            s => Err(format!(
                "{what}: status {s}: {}",
                r.text().await.unwrap_or_default().trim()
            )),
        }
    }

    /// The digest of what `repo:tag` serves (`None`: no such tag).
    pub async fn digest(&self, repo: &str, tag: &str) -> Result<Option<String>, String> {
        Ok(self.manifest(repo, tag).await?.map(|b| sha256(&b)))
    }

    /// The ledger records attached to `digest` in `repo`, as the referrers
    /// tag schema lists them (distribution has no referrers API), from each
    /// descriptor's annotations.
    pub async fn records(&self, repo: &str, digest: &str) -> Result<Vec<Listed>, String> {
        let tag = digest.replacen(':', "-", 1);
        let Some(bytes) = self.manifest(repo, &tag).await? else {
            return Ok(Vec::new());
        };
        let index: Value =
            serde_json::from_slice(&bytes).map_err(|e| format!("{repo}:{tag} is not JSON: {e}"))?;
        let list = index["manifests"]
            .as_array()
            .ok_or_else(|| format!("{repo}:{tag} is not an image index"))?;
        Ok(list
            .iter()
            .filter_map(|d| {
                let a = &d["annotations"];
                Some(Listed {
                    intent: a[KIND].as_str()? == "intent",
                    run_id: a[RUN_ID].as_str()?.to_string(),
                    time_ms: a[TIME_MS].as_str()?.parse().ok()?,
                })
            })
            .collect())
    }

    /// A run that announced a move and never recorded its end, judged from
    /// the registry alone: an intent record attached to the digest some
    /// image's `latest` holds now, with no outcome record of its run
    /// attached to any of those digests, and no newer outcome record (a
    /// later run's) attached to its own digest — a later run that recorded
    /// its end there found `latest` there after the intent, so nothing the
    /// intent announced is left to settle. Returns the run id.
    pub async fn pending<S: AsRef<str>>(
        &self,
        repos: &[S],
        latest: &[Option<String>],
    ) -> Result<Option<String>, String> {
        let mut per_digest = Vec::new();
        for (repo, digest) in repos.iter().zip(latest) {
            if let Some(d) = digest {
                per_digest.push(self.records(repo.as_ref(), d).await?);
            }
        }
        let ended = |run: &str| {
            per_digest
                .iter()
                .flatten()
                .any(|r| !r.intent && r.run_id == run)
        };
        Ok(per_digest
            .iter()
            .flat_map(|records| {
                let newest_outcome = records
                    .iter()
                    .filter(|r| !r.intent)
                    .map(|r| r.time_ms)
                    .max();
                records
                    .iter()
                    .filter(move |r| r.intent && newest_outcome.is_none_or(|t| r.time_ms > t))
            })
            .find(|r| !ended(&r.run_id))
            .map(|r| r.run_id.clone()))
    }

    /// Copies release manifests from `from` into a fresh repository `to`:
    /// every blob a manifest names is mounted from `from` (no upload), every
    /// image manifest of an index is put by digest, and `top` under `tag`.
    ///
    /// # Panics
    ///
    /// When the registry refuses a step.
    pub async fn stage(&self, from: &str, to: &str, top: &Blob, children: &[Blob], tag: &str) {
        for manifest in children.iter().chain(std::iter::once(top)) {
            let doc: Value = serde_json::from_slice(&manifest.bytes).expect("manifest JSON");
            let blobs = doc["config"]["digest"]
                .as_str()
                .into_iter()
                .chain(
                    doc["layers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|l| l["digest"].as_str()),
                )
                .map(str::to_string)
                .collect::<Vec<_>>();
            for blob in blobs {
                let r = self
                    .http
                    .post(format!(
                        "{}/v2/{to}/blobs/uploads/?mount={blob}&from={from}",
                        self.base
                    ))
                    .send()
                    .await
                    .expect("mount a blob");
                assert_eq!(
                    r.status().as_u16(),
                    201,
                    "mount {blob} from {from} into {to}"
                );
            }
            let reference = if std::ptr::eq(manifest, top) {
                tag.to_string()
            } else {
                manifest.digest.clone()
            };
            self.put(to, &reference, manifest).await;
        }
    }

    /// PUTs `manifest`'s exact bytes as `repo:reference`.
    ///
    /// # Panics
    ///
    /// When the registry does not answer 201 with the manifest's digest.
    pub async fn put(&self, repo: &str, reference: &str, manifest: &Blob) {
        let r = self
            .http
            .put(format!("{}/v2/{repo}/manifests/{reference}", self.base))
            .header("content-type", &manifest.media_type)
            .body(manifest.bytes.clone())
            .send()
            .await
            .expect("PUT a manifest");
        assert_eq!(r.status().as_u16(), 201, "PUT {repo}:{reference}");
        assert_eq!(
            r.headers()["docker-content-digest"],
            manifest.digest.as_str(),
            "PUT {repo}:{reference}"
        );
    }
}

/// The annotation naming a record's kind (`intent` or `outcome`).
pub const KIND: &str = "dev.canary.record.kind";
/// The annotation naming a record's run.
pub const RUN_ID: &str = "dev.canary.run-id";
/// The annotation holding a record's time, ms since the Unix epoch.
pub const TIME_MS: &str = "dev.canary.time-ms";

/// A ledger record as a referrers listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// An intent record (else an outcome record).
    pub intent: bool,
    /// The run that wrote it.
    pub run_id: String,
    /// When it was made.
    pub time_ms: u64,
}

/// `sha256:<hex>` of `bytes`.
fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
