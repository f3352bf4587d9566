//! Helpers for the workspace-level end-to-end tests: the real `canary`
//! binary, a real distribution registry holding skopeo-pushed releases, and
//! reference tenants on loopback.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

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

/// The `canary` binary: `$CANARY_BIN`, or `target/<profile>/canary` when it
/// is newer than every source file of the workspace (a workspace test run
/// has just built it), else built now with `cargo build`.
pub fn canary_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("CANARY_BIN") {
            return PathBuf::from(p);
        }
        // target/<profile>/deps/<test> → target/<profile>/canary
        let exe = std::env::current_exe().expect("current exe");
        let profile_dir = exe
            .parent()
            .and_then(|d| d.parent())
            .expect("target dir")
            .to_path_buf();
        let bin = profile_dir.join("canary");
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        let fresh = std::fs::metadata(&bin)
            .and_then(|m| m.modified())
            .is_ok_and(|built| newest_source(workspace).is_none_or(|src| src <= built));
        if !fresh {
            let status = Command::new(env!("CARGO"))
                .args(["build", "-q", "-p", "canary-cli", "--bin", "canary"])
                .current_dir(workspace)
                .status()
                .expect("run cargo build");
            assert!(status.success(), "cargo build -p canary-cli failed");
        }
        assert!(bin.exists(), "{} missing", bin.display());
        bin
    })
    .clone()
}

/// The modification time of the newest `.rs` or `Cargo.toml` of the
/// workspace's crates.
fn newest_source(workspace: &Path) -> Option<SystemTime> {
    fn walk(dir: &Path, newest: &mut Option<SystemTime>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() {
                if name != "target" && !name.to_string_lossy().starts_with('.') {
                    walk(&path, newest);
                }
            } else if path.extension().is_some_and(|e| e == "rs") || name == "Cargo.toml" {
                if let Ok(t) = entry.metadata().and_then(|m| m.modified()) {
                    *newest = Some(newest.map_or(t, |n| n.max(t)));
                }
            }
        }
    }
    let mut newest = None;
    for krate in [
        "canary-core",
        "canary-registry",
        "canary-smoke",
        "canary-gha",
        "canary-cli",
        "canary-testkit",
    ] {
        walk(&workspace.join(krate), &mut newest);
    }
    newest
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
