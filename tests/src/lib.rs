//! Helpers for the workspace-level end-to-end tests: the real `canary`
//! binary, a real distribution registry holding skopeo-pushed releases, and
//! reference tenants on loopback.

pub mod interop;
pub mod kill;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use canary_testkit::oci::{self, Fixture};
use canary_testkit::real_registry::{Mode, RealRegistry};
use canary_testkit::tenant::{TenantFault, TenantOptions, TenantServer};

/// The previous release (on `latest` at the start).
pub const OLD: &str = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
/// The release under test.
pub const NEW: &str = "4c1d56e0a1b2c3d4e5f60718293a4b5c6d7e8f90";
/// The repositories of the release: a single-arch image and a two-arch index.
pub const REPOS: [&str; 2] = ["acme/platform", "acme/tenant"];
/// The tenants' admin token; tests search every output for it.
pub const TENANT_TOKEN: &str = "tenant-admin-TOKEN-7d1e0c";

/// The `canary` binary under test: `$CANARY_BIN` when set (a binary built
/// elsewhere, e.g. a release build), else the one `cargo build -p
/// canary-cli --bin canary` produces, built once per test process.
///
/// Why cargo and not a freshness check of our own: cargo's fingerprints see
/// every input of the binary — sources, manifests, features, and files
/// pulled in with `include_str!` such as the embedded suites — so the binary
/// under test cannot be stale; comparing modification times of `.rs` and
/// `Cargo.toml` files could not (an edited suite TOML went unseen). When
/// nothing changed the build is a no-op of well under a second. It uses the
/// profile this test was built with and cargo's own choice of target
/// directory (`CARGO_TARGET_DIR` and `.cargo/config` are inherited), and
/// the path is the one cargo reports, not a guess. `CARGO_BIN_EXE_canary`
/// is not an option: cargo sets it only for tests of the package that owns
/// the binary.
///
/// It builds into its own target directory (`<target>/e2e`): a workspace
/// test build unifies features differently (dev-dependencies turn on more
/// of hyper), so sharing `target/debug/canary` would rebuild it back and
/// forth and could replace it while `canary-cli`'s own tests run it.
pub fn canary_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("CANARY_BIN") {
            return PathBuf::from(p);
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        let out = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "canary-cli", "--bin", "canary"])
            .args(["--profile", &test_profile()])
            .arg("--message-format=json-render-diagnostics")
            .current_dir(workspace)
            .env("CARGO_TARGET_DIR", target_dir().join("e2e"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo build");
        assert!(out.status.success(), "cargo build -p canary-cli failed");
        let bin = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "canary")
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no executable for the canary binary");
        assert!(bin.exists(), "{} missing", bin.display());
        bin
    })
    .clone()
}

/// The target directory this test binary was built in:
/// `<target>/[<triple>/]<profile dir>/deps/<test>`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .expect("the test binary lives in <target>/<profile>/deps")
        .to_path_buf()
}

/// The cargo profile this test binary was built with, read from its path:
/// `<target>/[<triple>/]<profile dir>/deps/<test>`, where the `dev` profile's
/// directory is `debug` and every other profile's is its name.
fn test_profile() -> String {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(|d| d.to_str())
        .expect("the test binary lives in <target>/<profile>/deps");
    match dir {
        "debug" => "dev".to_string(),
        profile => profile.to_string(),
    }
}

/// A registry with two releases of two images pushed by skopeo, `latest` on
/// the old one, and a fleet of reference tenants running the new one.
pub struct World {
    /// The real registry.
    pub registry: RealRegistry,
    /// The canary tenants.
    pub tenants: Vec<TenantServer>,
    /// A scratch directory (working directory of the binary).
    pub dir: tempfile::TempDir,
}

impl World {
    /// Starts everything. Call from a multi-thread Tokio runtime: tenants
    /// serve on it while the binary runs.
    pub async fn start(tenants: usize) -> Self {
        Self::start_with(Mode::Open, tenants).await
    }

    /// Starts everything, with the registry in `mode` (Basic: htpasswd
    /// credentials, passed to canary as `CANARY_REGISTRY_USERNAME` /
    /// `CANARY_REGISTRY_PASSWORD`).
    pub async fn start_with(mode: Mode, tenants: usize) -> Self {
        let registry = RealRegistry::start(mode);
        for (i, repo) in REPOS.iter().enumerate() {
            for sha in [OLD, NEW] {
                let salt = format!("{repo}-{sha}");
                let fixture = if i == 0 {
                    Fixture::single(&salt)
                } else {
                    Fixture::index(&salt)
                };
                fixture
                    .build()
                    .push(&registry, repo, &format!("staging-{sha}"));
            }
            oci::skopeo_copy_tag(&registry, repo, &format!("staging-{OLD}"), "latest");
        }
        let mut servers = Vec::new();
        for _ in 0..tenants {
            servers.push(
                TenantServer::start(TenantOptions {
                    token: TENANT_TOKEN.to_string(),
                    version: NEW.to_string(),
                    fault: TenantFault::None,
                })
                .await,
            );
        }
        Self {
            registry,
            tenants: servers,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// `canary` with a clean environment pointing at this world.
    pub fn canary(&self) -> Command {
        let mut cmd = Command::new(canary_bin());
        let urls: Vec<String> = self.tenants.iter().map(TenantServer::url).collect();
        let tokens = vec![TENANT_TOKEN; self.tenants.len()].join(",");
        cmd.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("NO_COLOR", "1")
            .env(
                "CANARY_IMAGES",
                REPOS
                    .iter()
                    .map(|r| format!("{}/{r}", self.registry.host()))
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .env("CANARY_TENANT_URLS", urls.join(" "))
            .env("CANARY_TENANT_TOKENS", tokens)
            .env("CANARY_ROLLOUT_INTERVAL", "100ms")
            .env("CANARY_ROLLOUT_DEADLINE", "10s");
        if let Some((user, password)) = self.registry.credentials() {
            cmd.env("CANARY_REGISTRY_USERNAME", user)
                .env("CANARY_REGISTRY_PASSWORD", password);
        }
        cmd
    }

    /// The digest `repo:tag` has, read by skopeo (an independent client).
    pub fn digest(&self, repo: &str, tag: &str) -> String {
        oci::digest_of(&self.registry, repo, tag)
    }

    /// Every image's `latest` digest, by skopeo.
    pub fn latest(&self) -> Vec<String> {
        REPOS.iter().map(|r| self.digest(r, "latest")).collect()
    }

    /// Every image's staging digest for `sha`, by skopeo.
    pub fn staging(&self, sha: &str) -> Vec<String> {
        REPOS
            .iter()
            .map(|r| self.digest(r, &format!("staging-{sha}")))
            .collect()
    }
}

/// Output of one run of the binary.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Stdout.
    pub stdout: String,
    /// Stderr.
    pub stderr: String,
}

/// Runs a command to completion off the async runtime's worker.
pub async fn run(mut cmd: Command) -> Run {
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run canary"))
        .await
        .expect("join");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Starts `n` healthy reference tenants that report `version` (a fleet of
/// its own, e.g. one per release when two runs race).
pub async fn start_tenants(n: usize, version: &str) -> Vec<TenantServer> {
    let mut servers = Vec::with_capacity(n);
    for _ in 0..n {
        servers.push(
            TenantServer::start(TenantOptions {
                token: TENANT_TOKEN.to_string(),
                version: version.to_string(),
                fault: TenantFault::None,
            })
            .await,
        );
    }
    servers
}

/// Points `cmd` at `tenants` (`CANARY_TENANT_URLS` and `CANARY_TENANT_TOKENS`).
pub fn use_fleet(cmd: &mut Command, tenants: &[TenantServer]) {
    let urls: Vec<String> = tenants.iter().map(TenantServer::url).collect();
    cmd.env("CANARY_TENANT_URLS", urls.join(" ")).env(
        "CANARY_TENANT_TOKENS",
        vec![TENANT_TOKEN; tenants.len()].join(","),
    );
}

/// A `CANARY_IMAGES` value naming `repos` on `host` (a registry, or a fault
/// proxy in front of one).
pub fn images_on<S: AsRef<str>>(host: &str, repos: &[S]) -> String {
    repos
        .iter()
        .map(|r| format!("{host}/{}", r.as_ref()))
        .collect::<Vec<_>>()
        .join(",")
}

/// The OCI layouts of release `sha` for `repos`, built the way
/// [`World::start`] builds them: the first image single-arch, the others
/// two-arch indexes, salted with the repository and the sha.
pub fn release_layouts<S: AsRef<str>>(repos: &[S], sha: &str) -> Vec<oci::Layout> {
    repos
        .iter()
        .enumerate()
        .map(|(i, repo)| {
            let salt = format!("{}-{sha}", repo.as_ref());
            if i == 0 {
                Fixture::single(&salt).build()
            } else {
                Fixture::index(&salt).build()
            }
        })
        .collect()
}

impl World {
    /// Pushes `staging-<sha>` of every image of the release (a third
    /// release, say), built like the ones [`World::start`] pushes.
    pub fn push_release(&self, sha: &str) {
        for (layout, repo) in release_layouts(&REPOS, sha).iter().zip(REPOS) {
            layout.push(&self.registry, repo, &format!("staging-{sha}"));
        }
    }

    /// Moves every image's `latest` to `staging-<sha>` with skopeo (test
    /// setup, independent of canary).
    pub fn set_latest(&self, sha: &str) {
        for repo in REPOS {
            oci::skopeo_copy_tag(&self.registry, repo, &format!("staging-{sha}"), "latest");
        }
    }

    /// [`World::canary`] with the images named on `host` instead of the
    /// registry: a fault proxy in front of it.
    pub fn canary_via(&self, host: &str) -> Command {
        let mut cmd = self.canary();
        cmd.env("CANARY_IMAGES", images_on(host, &REPOS));
        cmd
    }
}
