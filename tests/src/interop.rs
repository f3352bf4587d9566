//! Helpers for the interop tests of the ledger: third-party clients (oras,
//! regctl, crane, skopeo) read what canary wrote, and a DSSE verifier canary
//! did not write checks its signatures.
//!
//! Every tool is looked up on `PATH` through [`RealRegistry::tool`], which
//! panics with how to install a missing one (`scripts/test.sh` puts
//! `../shared/tools/install.sh`'s folder on `PATH`); nothing here skips.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use canary_testkit::oci;
use canary_testkit::real_registry::{Distribution, Mode, RealRegistry};
use serde_json::Value;

use crate::{release_layouts, start_tenants, World, NEW, OLD, REPOS};

/// The `artifactType` of canary's ledger records.
pub const RECORD_TYPE: &str = "application/vnd.canary.record.v1+dsse";
/// The media type of the record's one layer.
pub const ENVELOPE_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The DSSE `payloadType` of an in-toto statement.
pub const IN_TOTO_PAYLOAD: &str = "application/vnd.in-toto+json";
/// `_type` of an in-toto Statement v1.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// `predicateType` of a SLSA Verification Summary v1.
pub const SLSA_VSA: &str = "https://slsa.dev/verification_summary/v1";
/// The OCI empty descriptor's digest (the blob `{}`).
pub const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// A world like [`World::start`]'s on a registry of `distribution` (open):
/// two releases of two images pushed by skopeo, `latest` on [`OLD`], and
/// `tenants` healthy tenants running [`NEW`].
pub async fn world_on(distribution: Distribution, tenants: usize) -> World {
    let registry = RealRegistry::start_with(Mode::Open, distribution);
    for sha in [OLD, NEW] {
        for (layout, repo) in release_layouts(&REPOS, sha).iter().zip(REPOS) {
            layout.push(&registry, repo, &format!("staging-{sha}"));
        }
    }
    for repo in REPOS {
        oci::skopeo_copy_tag(&registry, repo, &format!("staging-{OLD}"), "latest");
    }
    World {
        registry,
        tenants: start_tenants(tenants, NEW).await,
        dir: tempfile::tempdir().expect("temp dir"),
    }
}

/// `<registry host>/<repo>`: how canary names the image.
pub fn image_ref(world: &World, repo: &str) -> String {
    format!("{}/{repo}", world.registry.host())
}

/// Every image's `tag` digest as crane reads it (a second independent
/// client next to skopeo).
pub fn crane_digests(world: &World, tag: &str) -> Vec<String> {
    REPOS
        .iter()
        .map(|r| crane_digest(&world.registry, r, tag))
        .collect()
}

/// One referrer of a manifest, as a third-party client lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    /// The referrer's (artifact manifest's) digest.
    pub digest: String,
    /// Its `artifactType`.
    pub artifact_type: String,
    /// Its annotations, as the listing carries them.
    pub annotations: BTreeMap<String, String>,
}

impl Referrer {
    /// An annotation, or `""`.
    pub fn annotation(&self, key: &str) -> &str {
        self.annotations.get(key).map_or("", String::as_str)
    }
}

fn referrers_of(list: &Value, what: &str) -> Vec<Referrer> {
    list.as_array()
        .unwrap_or_else(|| panic!("{what}: no list of referrers"))
        .iter()
        .map(|d| Referrer {
            digest: d["digest"].as_str().expect("referrer digest").to_string(),
            artifact_type: d["artifactType"].as_str().unwrap_or_default().to_string(),
            annotations: d["annotations"]
                .as_object()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

/// `oras discover --format json <host>/<repo>@<digest>`: every referrer.
pub fn oras_referrers(registry: &RealRegistry, repo: &str, digest: &str) -> Vec<Referrer> {
    let out = registry.oras_discover(repo, digest, &["--format", "json"]);
    let v: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("oras discover printed no JSON ({e}): {out}"));
    // oras 1.2+ names the list `referrers` (1.1 named it `manifests`).
    let list = if v["referrers"].is_array() {
        &v["referrers"]
    } else {
        &v["manifests"]
    };
    referrers_of(list, &format!("oras discover: {out}"))
}

/// `regctl artifact list --format '{{json .}}' <host>/<repo>@<digest>`.
pub fn regctl_referrers(registry: &RealRegistry, repo: &str, digest: &str) -> Vec<Referrer> {
    let out = registry.regctl_artifact_list(repo, digest, &["--format", "{{json .}}"]);
    let v: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("regctl artifact list printed no JSON ({e}): {out}"));
    // An empty listing is `null`.
    if v["descriptors"].is_null() {
        return Vec::new();
    }
    referrers_of(&v["descriptors"], &format!("regctl artifact list: {out}"))
}

/// canary's records among `referrers`.
pub fn records(referrers: &[Referrer]) -> Vec<Referrer> {
    referrers
        .iter()
        .filter(|r| r.artifact_type == RECORD_TYPE)
        .cloned()
        .collect()
}

fn plain_http(registry: &RealRegistry) -> Vec<String> {
    assert_eq!(
        registry.mode(),
        Mode::Open,
        "the oras fetch helpers are wired for an open registry"
    );
    vec!["--plain-http".to_string()]
}

/// `oras manifest fetch <host>/<repo>@<digest>`: the manifest JSON.
pub fn oras_manifest(registry: &RealRegistry, repo: &str, digest: &str) -> Value {
    let mut args = vec!["manifest".to_string(), "fetch".to_string()];
    args.extend(plain_http(registry));
    args.push(format!("{}/{repo}@{digest}", registry.host()));
    let out = registry.tool("oras", &args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("oras manifest fetch: {e}: {out}"))
}

/// `oras blob fetch --output - <host>/<repo>@<digest>`: the blob's bytes.
pub fn oras_blob(registry: &RealRegistry, repo: &str, digest: &str) -> String {
    let mut args = vec!["blob".to_string(), "fetch".to_string()];
    args.extend(plain_http(registry));
    args.extend(["--output".to_string(), "-".to_string()]);
    args.push(format!("{}/{repo}@{digest}", registry.host()));
    registry.tool("oras", &args)
}

/// A record read with oras alone: its manifest, and the DSSE envelope its
/// layer holds (raw JSON text, as stored).
#[derive(Debug, Clone)]
pub struct OrasRecord {
    /// The artifact manifest.
    pub manifest: Value,
    /// The envelope, as stored.
    pub envelope_text: String,
    /// The envelope, parsed.
    pub envelope: Value,
}

impl OrasRecord {
    /// The statement in the envelope's payload (base64-decoded and parsed).
    pub fn statement(&self) -> Value {
        let payload = self.envelope["payload"]
            .as_str()
            .expect("the envelope has a payload");
        let bytes = base64_decode(payload).expect("the payload is base64");
        serde_json::from_slice(&bytes).expect("the payload is JSON")
    }

    /// The statement's subjects as `(name, sha256:<hex>)`, in order.
    pub fn subjects(&self) -> Vec<(String, String)> {
        self.statement()["subject"]
            .as_array()
            .expect("the statement has subjects")
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().expect("subject name").to_string(),
                    format!(
                        "sha256:{}",
                        s["digest"]["sha256"].as_str().expect("subject sha256")
                    ),
                )
            })
            .collect()
    }
}

/// Fetches record `digest` of `repo` with `oras manifest fetch` and `oras
/// blob fetch`, checking the manifest is shaped as a canary record.
pub fn oras_record(registry: &RealRegistry, repo: &str, digest: &str) -> OrasRecord {
    let manifest = oras_manifest(registry, repo, digest);
    assert_eq!(
        manifest["artifactType"], RECORD_TYPE,
        "record manifest: {manifest:#}"
    );
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "one layer, the envelope: {manifest:#}");
    assert_eq!(layers[0]["mediaType"], ENVELOPE_TYPE, "{manifest:#}");
    let layer = layers[0]["digest"].as_str().expect("layer digest");
    let envelope_text = oras_blob(registry, repo, layer);
    assert_eq!(
        oci::sha256(envelope_text.as_bytes()),
        layer,
        "the envelope's bytes match its descriptor"
    );
    let envelope = serde_json::from_str(&envelope_text)
        .unwrap_or_else(|e| panic!("the envelope is not JSON ({e}): {envelope_text}"));
    OrasRecord {
        manifest,
        envelope_text,
        envelope,
    }
}

/// `crane args…` with `--insecure` (the registries are plain HTTP on
/// loopback); returns stdout.
pub fn crane(registry: &RealRegistry, args: &[&str]) -> String {
    let mut all: Vec<String> = args.iter().map(ToString::to_string).collect();
    all.push("--insecure".to_string());
    registry.tool("crane", &all)
}

/// `crane digest <host>/<repo>:<tag>`.
pub fn crane_digest(registry: &RealRegistry, repo: &str, tag: &str) -> String {
    crane(
        registry,
        &["digest", &format!("{}/{repo}:{tag}", registry.host())],
    )
    .trim()
    .to_string()
}

/// `crane ls <host>/<repo>`: the repository's tags.
pub fn crane_tags(registry: &RealRegistry, repo: &str) -> Vec<String> {
    crane(registry, &["ls", &format!("{}/{repo}", registry.host())])
        .lines()
        .map(str::to_string)
        .collect()
}

/// `crane copy <host>/<repo>:<from> <host>/<repo>:<to>`: another writer
/// moving a tag.
pub fn crane_copy(registry: &RealRegistry, repo: &str, from: &str, to: &str) {
    let host = registry.host();
    crane(
        registry,
        &[
            "copy",
            &format!("{host}/{repo}:{from}"),
            &format!("{host}/{repo}:{to}"),
        ],
    );
}

/// A key pair written by `openssl`.
#[derive(Debug, Clone)]
pub struct KeyPair {
    /// The PKCS#8 PEM private key file.
    pub private: PathBuf,
    /// Its content.
    pub private_pem: String,
    /// The SPKI PEM public key file.
    pub public: PathBuf,
    /// SHA-256 hex of the public key's DER: the DSSE `keyid`.
    pub key_id: String,
}

/// `openssl genpkey -algorithm ed25519`.
pub const ED25519: &[&str] = &["-algorithm", "ed25519"];
/// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`.
pub const P256: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A key pair made with `openssl genpkey genpkey_args…` in `dir`.
pub fn openssl_key(dir: &Path, name: &str, genpkey_args: &[&str]) -> KeyPair {
    let private = dir.join(format!("{name}.key.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let p = private.to_str().expect("utf-8 path");
    let mut args = vec!["genpkey"];
    args.extend_from_slice(genpkey_args);
    args.extend_from_slice(&["-out", p]);
    openssl(&args);
    openssl(&[
        "pkey",
        "-in",
        p,
        "-pubout",
        "-out",
        public.to_str().expect("utf-8 path"),
    ]);
    let der = openssl(&["pkey", "-in", p, "-pubout", "-outform", "DER"]);
    KeyPair {
        private_pem: std::fs::read_to_string(&private).expect("read the private key"),
        private,
        public,
        key_id: oci::sha256(&der).trim_start_matches("sha256:").to_string(),
    }
}

fn python(args: &[&str]) -> Output {
    Command::new("python3")
        .args(args)
        .output()
        .expect("python3 runs (the independent DSSE verifier needs it)")
}

/// Runs the independent DSSE verifier (`canary-ledger/tests/dsse_verify.py`,
/// on PyPI's `cryptography`, computing the PAE itself) on `envelope` with
/// `public_key`. Installs `cryptography` when it is missing; a verifier
/// that cannot run is a failure, never a skip.
pub fn independent_verify(dir: &Path, envelope: &str, public_key: &Path) -> Output {
    if !python(&["-c", "import cryptography"]).status.success() {
        let install = python(&["-m", "pip", "install", "--quiet", "cryptography"]);
        assert!(
            install.status.success(),
            "the independent verifier needs PyPI's `cryptography`: {}",
            String::from_utf8_lossy(&install.stderr)
        );
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("canary-ledger/tests/dsse_verify.py");
    let path = dir.join("envelope-under-test.json");
    std::fs::write(&path, envelope).expect("write the envelope");
    python(&[
        script.to_str().expect("utf-8 path"),
        path.to_str().expect("utf-8 path"),
        public_key.to_str().expect("utf-8 path"),
    ])
}

/// Standard base64 (padded or not), the DSSE payload's alphabet; the
/// URL-safe one is accepted too, as DSSE allows either.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).expect("one byte"));
        }
    }
    Some(out)
}

/// `<host>/<repo>:<tag>`, or `<host>/<repo>@<digest>` when `reference` is
/// a digest.
pub fn reference(registry: &RealRegistry, repo: &str, tag_or_digest: &str) -> String {
    let sep = if tag_or_digest.starts_with("sha256:") {
        '@'
    } else {
        ':'
    };
    format!("{}/{repo}{sep}{tag_or_digest}", registry.host())
}

/// `crane manifest <ref>`: the manifest's bytes exactly as the registry
/// serves them.
pub fn crane_manifest(registry: &RealRegistry, repo: &str, tag_or_digest: &str) -> String {
    crane(
        registry,
        &["manifest", &reference(registry, repo, tag_or_digest)],
    )
}

/// `crane tag <ref> <tag>`: another writer pointing `tag` at what
/// `tag_or_digest` names, without canary knowing.
pub fn crane_tag(registry: &RealRegistry, repo: &str, tag_or_digest: &str, tag: &str) {
    crane(
        registry,
        &["tag", &reference(registry, repo, tag_or_digest), tag],
    );
}

/// `regctl args… <ref>` with this (open, plain-HTTP) registry as a
/// `--host`; returns stdout.
pub fn regctl(registry: &RealRegistry, args: &[&str], target: &str) -> String {
    assert_eq!(
        registry.mode(),
        Mode::Open,
        "the regctl helpers are wired for an open registry"
    );
    let mut all: Vec<String> = args.iter().map(ToString::to_string).collect();
    all.extend([
        "--host".to_string(),
        format!("reg={},tls=disabled", registry.host()),
        target.to_string(),
    ]);
    registry.tool("regctl", &all)
}

/// `regctl manifest get --format raw-body <ref>`: the manifest's bytes as
/// the registry serves them, read by a second client next to crane.
pub fn regctl_manifest(registry: &RealRegistry, repo: &str, tag_or_digest: &str) -> String {
    regctl(
        registry,
        &["manifest", "get", "--format", "raw-body"],
        &reference(registry, repo, tag_or_digest),
    )
}

/// The `Content-Type` the registry serves the manifest under, by `regctl
/// manifest head`.
pub fn regctl_media_type(registry: &RealRegistry, repo: &str, tag_or_digest: &str) -> String {
    regctl(
        registry,
        &[
            "manifest",
            "head",
            "--format",
            "{{.GetDescriptor.MediaType}}",
        ],
        &reference(registry, repo, tag_or_digest),
    )
    .trim()
    .to_string()
}

/// `regctl manifest put --content-type <media_type> <host>/<repo>:<tag>`
/// with `body` on stdin: a manifest pushed byte for byte as given (odd
/// whitespace, key order and escapes included), never re-serialised.
pub fn regctl_put_raw(
    registry: &RealRegistry,
    repo: &str,
    tag: &str,
    media_type: &str,
    body: &[u8],
) {
    // `regctl manifest put` reads the body from stdin only; a shell
    // redirects it from a file so the tool still runs through
    // `RealRegistry::tool` (private home, install hint when missing).
    registry.tool("regctl", &["version".to_string()]);
    let file = tempfile::NamedTempFile::new_in(registry.dir()).expect("temp manifest file");
    std::fs::write(file.path(), body).expect("write the manifest");
    let host = format!("reg={},tls=disabled", registry.host());
    registry.tool(
        "sh",
        &[
            "-c".to_string(),
            r#"exec regctl manifest put --host "$1" --content-type "$2" "$3" <"$0""#.to_string(),
            file.path().display().to_string(),
            host,
            media_type.to_string(),
            reference(registry, repo, tag),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn decodes_base64() {
        assert_eq!(base64_decode("dXNlcjpwYXNz").unwrap(), b"user:pass");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI").unwrap(), b"ab");
        assert!(base64_decode("a b").is_none());
    }
}
