//! The real CNCF distribution registry on a free loopback port, in a
//! temporary directory, for integration tests: 2.8 (Debian
//! `docker-registry`, the default) or 3.x (the upstream `registry` binary,
//! which `../shared/tools/install.sh` unpacks; `scripts/test.sh` puts it on
//! `PATH`), chosen with [`Distribution`]. Both take the same configuration
//! file and have no referrers API.
//!
//! Three configurations ([`Mode`]): open, htpasswd Basic auth, and TLS with a
//! CA generated for the run. [`RealRegistry::start`] waits until `/v2/`
//! answers; dropping the value stops the registry, also when the test
//! panics, and a watchdog stops it too if the test process is killed (the
//! registry's parent shell reads the test's end of a pipe and kills the
//! registry at end-of-file).
//!
//! The registry writes its access log (Apache combined format) to a file;
//! [`RealRegistry::access_log`] parses it so a test can count requests by
//! method and path. A missing binary is a setup failure: the harness panics
//! and says to run `scripts/test.sh`, it never skips.

use std::fmt;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rand::Rng as _;

use crate::child::{exits_after_stdin_closes, start_on_free_port, ChildServer};

/// How the registry is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plain HTTP, no authentication.
    Open,
    /// Plain HTTP, htpasswd (bcrypt) Basic authentication.
    Basic,
    /// HTTPS with a certificate signed by a CA generated for this registry
    /// (no authentication).
    Tls,
}

/// Which CNCF distribution registry runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Distribution {
    /// 2.8, Debian's `docker-registry`.
    #[default]
    V2,
    /// 3.x, the upstream `registry` binary (`registry serve CONFIG`).
    V3,
}

impl Distribution {
    /// The binary looked up on `PATH`.
    pub fn binary(self) -> &'static str {
        match self {
            Self::V2 => "docker-registry",
            Self::V3 => "registry",
        }
    }

    fn install_hint(self) -> &'static str {
        match self {
            Self::V2 => "run scripts/test.sh, which installs it (Debian `docker-registry`)",
            Self::V3 => {
                "run scripts/test.sh, which puts `../shared/tools/install.sh`'s folder on \
                 PATH (or do so yourself: export PATH=\"$(../shared/tools/install.sh):$PATH\")"
            }
        }
    }
}

/// One line of the registry's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    /// `GET`, `HEAD`, `PUT`, …
    pub method: String,
    /// The request target, path and query (`/v2/acme/app/manifests/latest`).
    pub path: String,
    /// The response status.
    pub status: u16,
}

impl AccessEntry {
    /// Whether this is a manifest request (`/v2/<name>/manifests/<ref>`).
    pub fn is_manifest(&self) -> bool {
        self.path.starts_with("/v2/") && self.path.contains("/manifests/")
    }

    /// Whether this is the `/v2/` ping (the start of every auth flow).
    pub fn is_ping(&self) -> bool {
        self.path == "/v2/" || self.path == "/v2"
    }
}

/// A running registry. Stopped on drop.
pub struct RealRegistry {
    mode: Mode,
    distribution: Distribution,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    child: Option<Child>,
    username: String,
    password: String,
}

impl fmt::Debug for RealRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RealRegistry")
            .field("mode", &self.mode)
            .field("distribution", &self.distribution)
            .field("addr", &self.addr)
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

fn setup_panic(what: &str) -> ! {
    panic!(
        "{what}. The integration tests need the real tools (docker-registry, skopeo, \
         htpasswd, openssl): run scripts/test.sh, which installs them"
    )
}

/// Runs a setup command, panicking with its stderr when it fails.
pub(crate) fn run(cmd: &mut Command) -> Vec<u8> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            setup_panic(&format!("`{program}` is not installed"))
        }
        Err(e) => panic!("cannot run `{program}`: {e}"),
    };
    assert!(
        out.status.success(),
        "`{program}` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill(&mut buf[..]);
    hex::encode(buf)
}

impl RealRegistry {
    /// An open registry (plain HTTP, no auth).
    pub fn open() -> Self {
        Self::start(Mode::Open)
    }

    /// A registry with htpasswd Basic auth (plain HTTP).
    pub fn basic() -> Self {
        Self::start(Mode::Basic)
    }

    /// A registry serving HTTPS with a CA generated for it.
    pub fn tls() -> Self {
        Self::start(Mode::Tls)
    }

    /// Starts a 2.8 registry (Debian `docker-registry`) in `mode` and waits
    /// until `/v2/` answers.
    ///
    /// # Panics
    ///
    /// When `docker-registry` (or `htpasswd`, `openssl`) is missing, or the
    /// registry does not come up within 20 seconds.
    pub fn start(mode: Mode) -> Self {
        Self::start_with(mode, Distribution::V2)
    }

    /// An open registry of `distribution`.
    pub fn open_with(distribution: Distribution) -> Self {
        Self::start_with(Mode::Open, distribution)
    }

    /// Starts a registry of `distribution` in `mode` and waits until `/v2/`
    /// answers.
    ///
    /// # Panics
    ///
    /// When its binary (or `htpasswd`, `openssl`) is missing, or the
    /// registry does not come up within 20 seconds.
    pub fn start_with(mode: Mode, distribution: Distribution) -> Self {
        let binary = distribution.binary();
        assert!(
            which(binary).is_some(),
            "`{binary}` (CNCF distribution {distribution:?}) is not on PATH: {}",
            distribution.install_hint()
        );
        let dir = tempfile::Builder::new()
            .prefix("canary-registry-")
            .tempdir()
            .expect("temp dir");
        let username = "canary".to_string();
        let password = format!("pw-{}", random_hex(12));
        let mut auth = String::new();
        let mut tls = String::new();
        match mode {
            Mode::Open => {}
            Mode::Basic => {
                let line = run(Command::new("htpasswd").args(["-Bbn", &username, &password]));
                fs::write(dir.path().join("htpasswd"), line).expect("write htpasswd");
                auth = format!(
                    "auth:\n  htpasswd:\n    realm: canary-test\n    path: {}\n",
                    dir.path().join("htpasswd").display()
                );
            }
            Mode::Tls => {
                generate_certs(dir.path());
                tls = format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    dir.path().join("server.pem").display(),
                    dir.path().join("server.key").display()
                );
            }
        }

        let mut registry = Self {
            mode,
            distribution,
            addr: ([127, 0, 0, 1], 0).into(),
            dir,
            child: None,
            username,
            password,
        };
        let started = start_on_free_port(&mut registry, |registry, addr| {
            registry.addr = addr;
            let root = registry.dir.path().to_path_buf();
            let config = format!(
                "version: 0.1\n\
                 log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n\
                 storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {addr}\n  secret: {secret}\n{tls}\
                 {auth}",
                data = root.join("data").display(),
                secret = random_hex(16),
            );
            let config_path = root.join("config.yml");
            fs::write(&config_path, config).expect("write registry config");
            let _ = fs::remove_file(root.join("access.log"));
            let _ = fs::remove_file(root.join("registry.log"));
            registry.child = Some(spawn_watched(
                binary,
                &config_path,
                &root.join("access.log"),
                &root.join("registry.log"),
            ));
        });
        match started {
            Ok(()) => registry,
            Err(why) => panic!("{binary} did not start: {why}"),
        }
    }

    /// A TCP connect, and for plain HTTP an actual `GET /v2/` (the TLS
    /// registry logs "listening on" only once its socket is bound).
    fn answers_v2(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500))
        else {
            return false;
        };
        if self.mode == Mode::Tls {
            return true;
        }
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!(
            "GET /v2/ HTTP/1.0\r\nHost: {}\r\nUser-Agent: canary-testkit-ready\r\n\r\n",
            self.addr
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut buf = [0u8; 12];
        stream.read_exact(&mut buf).is_ok()
            && (buf.starts_with(b"HTTP/1.0 200") || buf.starts_with(b"HTTP/1.0 401"))
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Closing the pipe makes the watchdog kill the registry.
        if !exits_after_stdin_closes(&mut child, Duration::from_secs(5)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The configuration.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Which registry runs.
    pub fn distribution(&self) -> Distribution {
        self.distribution
    }

    /// `127.0.0.1:<port>`, the registry part of an image name.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` or `https://…` for TLS.
    pub fn base_url(&self) -> String {
        let scheme = if self.mode == Mode::Tls {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The generated CA certificate (PEM), for TLS mode.
    pub fn ca_path(&self) -> Option<PathBuf> {
        (self.mode == Mode::Tls).then(|| self.dir.path().join("ca.pem"))
    }

    /// A directory holding the CA as `ca.crt`, as skopeo's `--*-cert-dir`
    /// expects, for TLS mode.
    pub fn cert_dir(&self) -> Option<PathBuf> {
        (self.mode == Mode::Tls).then(|| self.dir.path().join("certs"))
    }

    /// Username and password, for Basic mode.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        (self.mode == Mode::Basic).then_some((self.username.as_str(), self.password.as_str()))
    }

    /// The temporary directory the registry lives in (data, logs, certs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The registry's own log (stderr), for failure messages.
    pub fn server_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Every request in the access log so far, oldest first. The readiness
    /// probe's `GET /v2/` is in it; use [`RealRegistry::access_mark`] and
    /// [`RealRegistry::access_since`] to count the requests of one step.
    pub fn access_log(&self) -> Vec<AccessEntry> {
        // The log is written per request after the response; give a request
        // that just completed a moment to land.
        std::thread::sleep(Duration::from_millis(30));
        let text = fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        text.lines().filter_map(parse_access_line).collect()
    }

    /// The number of access-log entries so far.
    pub fn access_mark(&self) -> usize {
        self.access_log().len()
    }

    /// The access-log entries after `mark` (from [`RealRegistry::access_mark`]).
    pub fn access_since(&self, mark: usize) -> Vec<AccessEntry> {
        self.access_log().into_iter().skip(mark).collect()
    }

    /// skopeo arguments to reach this registry as a destination
    /// (`--dest-tls-verify`, `--dest-cert-dir`, `--dest-authfile`).
    pub fn skopeo_dest_args(&self) -> Vec<String> {
        self.skopeo_args("dest")
    }

    /// skopeo arguments to reach this registry as a source.
    pub fn skopeo_src_args(&self) -> Vec<String> {
        self.skopeo_args("src")
    }

    /// skopeo arguments for commands with one image (`inspect`).
    pub fn skopeo_args(&self, side: &str) -> Vec<String> {
        let prefix = if side.is_empty() {
            "--".to_string()
        } else {
            format!("--{side}-")
        };
        let mut args = Vec::new();
        match self.mode {
            Mode::Tls => {
                args.push(format!("{prefix}tls-verify=true"));
                args.push(format!(
                    "{prefix}cert-dir={}",
                    self.cert_dir().expect("tls").display()
                ));
            }
            Mode::Open | Mode::Basic => args.push(format!("{prefix}tls-verify=false")),
        }
        args.push(format!("{prefix}authfile={}", self.authfile().display()));
        args
    }

    /// A containers-auth.json file with this registry's credentials (empty
    /// for open and TLS modes), so skopeo never reads the user's own.
    pub fn authfile(&self) -> PathBuf {
        let path = self.dir.path().join("auth.json");
        if !path.exists() {
            let auths = match self.credentials() {
                Some((u, p)) => {
                    let token = base64_encode(format!("{u}:{p}").as_bytes());
                    serde_json::json!({ "auths": { self.host(): { "auth": token } } })
                }
                None => serde_json::json!({ "auths": {} }),
            };
            fs::write(&path, auths.to_string()).expect("write auth.json");
        }
        path
    }
}

/// Third-party OCI clients run against a [`RealRegistry`], to check
/// canary's work with tools nobody here wrote: `oras` and `regctl` (from
/// `../shared/tools/install.sh`, put on `PATH` by `scripts/test.sh`). Each
/// runs with `HOME` and `DOCKER_CONFIG` in the registry's directory, so no
/// user configuration is read or written. A missing tool panics with how
/// to install it, never skips.
impl RealRegistry {
    /// Runs `program args…` with a private home; returns stdout.
    ///
    /// # Panics
    ///
    /// When the program is not on `PATH` or fails.
    pub fn tool(&self, program: &str, args: &[String]) -> String {
        assert!(
            which(program).is_some(),
            "`{program}` is not on PATH. The interop tests need oras and regctl: run \
             scripts/test.sh, which puts ../shared/tools/install.sh's folder on PATH \
             (or: export PATH=\"$(../shared/tools/install.sh):$PATH\")"
        );
        let home = self.dir.path().join("tool-home");
        fs::create_dir_all(&home).expect("tool home");
        let out = run(Command::new(program)
            .args(args)
            .env("HOME", &home)
            .env("DOCKER_CONFIG", &home)
            .env("XDG_CONFIG_HOME", &home)
            .env_remove("REGCTL_CONFIG"));
        String::from_utf8(out).unwrap_or_else(|e| panic!("`{program}` printed non-UTF-8: {e}"))
    }

    /// `oras discover` of `<host>/<repo>@<digest>` with the flags this
    /// registry needs (`--plain-http`, credentials, the CA) and `extra`
    /// (`--format json`, `--artifact-type …`).
    pub fn oras_discover(&self, repo: &str, digest: &str, extra: &[&str]) -> String {
        let mut args = vec!["discover".to_string()];
        match self.mode {
            Mode::Open => args.push("--plain-http".into()),
            Mode::Basic => {
                args.push("--plain-http".into());
                args.extend(["-u".into(), self.username.clone()]);
                args.extend(["-p".into(), self.password.clone()]);
            }
            Mode::Tls => {
                let ca = self.ca_path().expect("tls");
                args.extend(["--ca-file".into(), ca.display().to_string()]);
            }
        }
        args.extend(extra.iter().map(ToString::to_string));
        args.push(format!("{}/{repo}@{digest}", self.host()));
        self.tool("oras", &args)
    }

    /// `regctl artifact list` of `<host>/<repo>@<digest>` with this
    /// registry as a `--host` (`tls=disabled`, credentials) and `extra`
    /// (`--format …`, `--filter-artifact-type …`).
    ///
    /// # Panics
    ///
    /// In TLS mode, which is not wired for regctl.
    pub fn regctl_artifact_list(&self, repo: &str, digest: &str, extra: &[&str]) -> String {
        let mut host = format!("reg={}", self.host());
        match self.mode {
            Mode::Open => host.push_str(",tls=disabled"),
            Mode::Basic => {
                host = format!(
                    "{host},tls=disabled,user={},pass={}",
                    self.username, self.password
                );
            }
            Mode::Tls => panic!("regctl_artifact_list: TLS mode is not wired"),
        }
        let mut args = vec![
            "artifact".to_string(),
            "list".to_string(),
            "--host".to_string(),
            host,
        ];
        args.extend(extra.iter().map(ToString::to_string));
        args.push(format!("{}/{repo}@{digest}", self.host()));
        self.tool("regctl", &args)
    }
}

impl ChildServer for RealRegistry {
    fn child(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }

    fn log(&self) -> String {
        self.server_log()
    }

    fn stop(&mut self) {
        RealRegistry::stop(self);
    }

    /// It logged "listening on" and answers.
    fn ready(&self) -> bool {
        self.server_log().contains("listening on") && self.answers_v2()
    }
}

impl Drop for RealRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `<binary> serve CONFIG` under a shell watchdog: the shell keeps
/// our pipe on fd 3 and kills the registry when the pipe reaches
/// end-of-file, i.e. when we drop stdin or our process dies.
fn spawn_watched(binary: &str, config: &Path, access_log: &Path, server_log: &Path) -> Child {
    let script = r#"exec 3<&0
"$3" serve "$0" >"$1" 2>"$2" </dev/null &
p=$!
( read -r _ <&3; kill "$p" 2>/dev/null ) </dev/null &
w=$!
wait "$p"
s=$?
kill "$w" 2>/dev/null
exit "$s""#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(config)
        .arg(access_log)
        .arg(server_log)
        .arg(binary)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start sh for {binary}: {e}"))
}

fn which(binary: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(binary))
            .find(|p| p.is_file())
    })
}

/// Parses `127.0.0.1 - - [date] "GET /v2/ HTTP/1.1" 200 2 "" "ua"`.
fn parse_access_line(line: &str) -> Option<AccessEntry> {
    let start = line.find("] \"")? + 3;
    let rest = &line[start..];
    let end = rest.find('"')?;
    let mut request = rest[..end].split(' ');
    let method = request.next()?.to_string();
    let path = request.next()?.to_string();
    let status = rest[end + 1..].split_whitespace().next()?.parse().ok()?;
    Some(AccessEntry {
        method,
        path,
        status,
    })
}

/// A CA and a server certificate for 127.0.0.1 and localhost, with the
/// `openssl` CLI (EC P-256 keys: fast to generate).
fn generate_certs(dir: &Path) {
    let p = |name: &str| dir.join(name).to_string_lossy().into_owned();
    run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.pem"),
        "-days",
        "2",
        "-subj",
        "/CN=canary test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]));
    run(Command::new("openssl").args([
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &p("server.key"),
        "-out",
        &p("server.csr"),
        "-subj",
        "/CN=127.0.0.1",
    ]));
    fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    run(Command::new("openssl").args([
        "x509",
        "-req",
        "-in",
        &p("server.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-out",
        &p("server.pem"),
        "-days",
        "2",
        "-extfile",
        &p("server.ext"),
    ]));
    let certs = dir.join("certs");
    fs::create_dir_all(&certs).expect("certs dir");
    fs::copy(dir.join("ca.pem"), certs.join("ca.crt")).expect("copy ca.crt");
}

pub(crate) fn base64_encode(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_access_lines() {
        let e = parse_access_line(
            r#"127.0.0.1 - - [30/Nov/2026:09:57:58 +0000] "HEAD /v2/x/y/manifests/latest HTTP/1.1" 404 96 "" "curl/7.88.1""#,
        )
        .unwrap();
        assert_eq!(e.method, "HEAD");
        assert_eq!(e.path, "/v2/x/y/manifests/latest");
        assert_eq!(e.status, 404);
        assert!(e.is_manifest());
        assert!(parse_access_line("garbage").is_none());
    }

    #[test]
    fn base64() {
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64_encode(b"a"), "YQ==");
        assert_eq!(base64_encode(b"ab"), "YWI=");
    }
}
