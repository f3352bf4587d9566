//! Images canary did not make, promoted and rolled back by the real
//! `canary` binary on CNCF distribution 2.8 (Debian) and 3.1: an OCI index
//! and a Docker manifest list made by `crane`, an artifact with a `subject`
//! made by `oras attach` promoted as the release itself, an index carrying
//! an SBOM that oras attached, a manifest with odd whitespace put raw by
//! `regctl`, and a manifest of 4 MB (just under the 4 MiB every party —
//! distribution, regctl, canary — allows). After each move `latest` must
//! be byte for byte the staging manifest, read by `crane manifest` and
//! `regctl manifest get --format raw-body`, with the digest `crane digest`
//! reads and the media type the registry served for staging.
//!
//! Last, `crane tag` moves `latest` behind canary's back during a verify's
//! rollout wait: the report's and the record's `before` must be what crane
//! put there, and `latest` ends on the release.
//!
//! Every tool comes from `PATH` (`scripts/test.sh` puts them there); a
//! missing one fails the test with how to install it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use canary_e2e::interop::{
    crane, crane_digest, crane_manifest, crane_tag, oras_record, oras_referrers, records,
    reference, regctl_manifest, regctl_media_type, regctl_put_raw, regctl_referrers, Referrer,
};
use canary_e2e::{images_on, run, start_tenants, World, NEW, OLD};
use canary_testkit::oci;
use canary_testkit::real_registry::{Distribution, RealRegistry};
use serde_json::Value;

/// A third release, which `crane tag` puts on `latest` during a verify.
const R3: &str = "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c";

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The `artifactType` of the release notes oras pushes as a release.
const NOTES_TYPE: &str = "application/vnd.acme.release-notes.v1";
/// The `artifactType` of the SBOM oras attaches to a release.
const SBOM_TYPE: &str = "application/vnd.acme.sbom.v1+json";

/// The size of the big manifest: 4 MB, under distribution's (and regctl's,
/// and canary's) 4 MiB manifest limit of 4 194 304 bytes with room for
/// nothing else, so a client or registry that buffers manifests in a
/// smaller limit, or re-serialises them, shows here.
const BIG: usize = 4_000_000;
const MANIFEST_LIMIT: usize = 4 << 20;

/// The images under test, one repository each.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// An OCI image index of two platforms (`crane append`, `crane mutate
    /// --set-platform`, `crane index append`).
    OciIndex,
    /// A Docker manifest list of two schema 2 images (`crane append`
    /// without `--oci-empty-base`, `crane index append --docker-empty-base`).
    DockerList,
    /// An artifact manifest with a `subject`, made by `oras attach` onto a
    /// crane image and tagged as the release with `oras tag`.
    OrasArtifact,
    /// The OCI index of [`Kind::OciIndex`] with an SBOM `oras attach`ed to
    /// it, listed through the referrers tag schema (neither registry has
    /// the referrers API), the same tag canary's records go to.
    OrasReferrer,
    /// An OCI image manifest with CRLF, tabs, spaces around colons, keys
    /// out of order, `\u00e9` and `\/` escapes and trailing blank lines,
    /// put raw by `regctl manifest put`.
    OddWhitespace,
    /// An OCI image manifest padded with annotations to [`BIG`] bytes, put
    /// raw by `regctl manifest put`.
    Big,
}

impl Kind {
    fn repo(self) -> &'static str {
        match self {
            Self::OciIndex => "interop/oci-index",
            Self::DockerList => "interop/docker-list",
            Self::OrasArtifact => "interop/oras-artifact",
            Self::OrasReferrer => "interop/oras-referrer",
            Self::OddWhitespace => "interop/odd-whitespace",
            Self::Big => "interop/big",
        }
    }

    /// The media type the registry serves the release under.
    fn media_type(self) -> &'static str {
        match self {
            Self::OciIndex | Self::OrasReferrer => OCI_INDEX,
            Self::DockerList => DOCKER_LIST,
            Self::OrasArtifact | Self::OddWhitespace | Self::Big => OCI_MANIFEST,
        }
    }

    /// Pushes `staging-<sha>` of this kind with the third-party tools;
    /// returns the manifest's bytes as the tool wrote them.
    fn push(self, registry: &RealRegistry, work: &Path, sha: &str) -> String {
        let repo = self.repo();
        let staging = format!("staging-{sha}");
        match self {
            Self::OciIndex => crane_index(registry, work, repo, sha, true),
            Self::DockerList => crane_index(registry, work, repo, sha, false),
            Self::OrasArtifact => {
                let base = format!("base-{sha}");
                crane_image(
                    registry,
                    work,
                    repo,
                    &base,
                    &format!("{repo}-{sha}"),
                    None,
                    true,
                );
                let notes = work.join(format!("notes-{sha}.txt"));
                std::fs::write(&notes, format!("release {sha}\n")).expect("write notes");
                let digest = oras_attach(registry, repo, &base, NOTES_TYPE, &notes, sha);
                oras(
                    registry,
                    &["tag", &reference(registry, repo, &digest), &staging],
                );
                let bytes = crane_manifest(registry, repo, &staging);
                let m: Value = serde_json::from_str(&bytes).expect("artifact manifest is JSON");
                assert_eq!(m["artifactType"], NOTES_TYPE, "oras attach made: {m:#}");
                assert_eq!(
                    m["subject"]["digest"],
                    crane_digest(registry, repo, &base),
                    "oras attach made: {m:#}"
                );
                bytes
            }
            Self::OrasReferrer => {
                let bytes = crane_index(registry, work, repo, sha, true);
                let sbom = work.join(format!("sbom-{sha}.json"));
                std::fs::write(&sbom, format!(r#"{{"release":"{sha}"}}"#)).expect("write sbom");
                oras_attach(registry, repo, &staging, SBOM_TYPE, &sbom, sha);
                bytes
            }
            Self::OddWhitespace | Self::Big => {
                let base = format!("base-{sha}");
                crane_image(
                    registry,
                    work,
                    repo,
                    &base,
                    &format!("{repo}-{sha}"),
                    None,
                    true,
                );
                let manifest: Value = serde_json::from_str(&crane_manifest(registry, repo, &base))
                    .expect("crane's manifest is JSON");
                let body = if matches!(self, Self::Big) {
                    big_manifest(&manifest, sha)
                } else {
                    odd_manifest(&manifest, sha)
                };
                regctl_put_raw(registry, repo, &staging, OCI_MANIFEST, body.as_bytes());
                body
            }
        }
    }
}

/// Writes a tar archive of one regular file (ustar, mtime 0): the layer
/// `crane append` gzips and pushes.
fn tarball(path: &Path, name: &str, content: &[u8]) {
    fn octal(field: &mut [u8], value: u64) {
        let text = format!("{value:0width$o}\0", width = field.len() - 1);
        field.copy_from_slice(text.as_bytes());
    }
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut header[100..108], 0o644);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], content.len() as u64);
    octal(&mut header[136..148], 0);
    header[148..156].fill(b' ');
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    std::fs::write(path, out).expect("write the layer tarball");
}

/// `crane append` of a one-file layer salted with `salt` onto the empty
/// base (OCI or Docker media types), tagged `tag`; with `platform`, `crane
/// mutate --set-platform` then retags the result. Returns its digest.
fn crane_image(
    registry: &RealRegistry,
    work: &Path,
    repo: &str,
    tag: &str,
    salt: &str,
    platform: Option<&str>,
    oci_types: bool,
) -> String {
    let layer: PathBuf = work.join(format!("{}.tar", salt.replace('/', "_")));
    tarball(&layer, "release.txt", salt.as_bytes());
    let target = reference(registry, repo, tag);
    let layer = layer.display().to_string();
    let mut args = vec!["append", "-f", &layer, "-t", &target];
    if oci_types {
        args.push("--oci-empty-base");
    }
    crane(registry, &args);
    if let Some(platform) = platform {
        crane(
            registry,
            &["mutate", "--set-platform", platform, &target, "-t", &target],
        );
    }
    crane_digest(registry, repo, tag)
}

/// A two-platform index (`linux/amd64`, `linux/arm64/v8`) of crane images
/// as `staging-<sha>`: OCI types, or a Docker manifest list of schema 2
/// images. Returns the index's bytes.
fn crane_index(
    registry: &RealRegistry,
    work: &Path,
    repo: &str,
    sha: &str,
    oci_types: bool,
) -> String {
    let mut children = Vec::new();
    for (arch, platform) in [("amd64", "linux/amd64"), ("arm64", "linux/arm64/v8")] {
        let digest = crane_image(
            registry,
            work,
            repo,
            &format!("{arch}-{sha}"),
            &format!("{repo}-{arch}-{sha}"),
            Some(platform),
            oci_types,
        );
        children.push(reference(registry, repo, &digest));
    }
    let staging = format!("staging-{sha}");
    let target = reference(registry, repo, &staging);
    let mut args = vec!["index", "append", "-t", &target];
    for child in &children {
        args.extend(["-m", child]);
    }
    if !oci_types {
        args.push("--docker-empty-base");
    }
    crane(registry, &args);
    crane_manifest(registry, repo, &staging)
}

/// `oras args… --plain-http`; returns stdout.
fn oras(registry: &RealRegistry, args: &[&str]) -> String {
    let mut all: Vec<String> = args.iter().map(ToString::to_string).collect();
    all.push("--plain-http".to_string());
    registry.tool("oras", &all)
}

/// `oras attach` of `file` as an `artifact_type` artifact (annotated with
/// the release's sha) to `<repo>:<tag>`; returns the artifact's digest.
fn oras_attach(
    registry: &RealRegistry,
    repo: &str,
    tag: &str,
    artifact_type: &str,
    file: &Path,
    sha: &str,
) -> String {
    let annotation = format!("dev.example.sha={sha}");
    let file = format!("{}:application/octet-stream", file.display());
    oras(
        registry,
        &[
            "attach",
            "--artifact-type",
            artifact_type,
            "--annotation",
            &annotation,
            // The file is named by an absolute path (the tool's working
            // directory is not the test's).
            "--disable-path-validation",
            "--format",
            "go-template",
            "--template",
            "{{.digest}}",
            &reference(registry, repo, tag),
            &file,
        ],
    )
    .trim()
    .to_string()
}

/// A descriptor written with its keys in reverse order and spaces where
/// serialisers put none.
fn odd_descriptor(d: &Value) -> String {
    format!(
        "{{ \"size\" :{},\r\n\t\"digest\": \"{}\" ,\"mediaType\"  :\"{}\"}}",
        d["size"],
        d["digest"].as_str().expect("digest"),
        d["mediaType"].as_str().expect("mediaType")
    )
}

/// `base` (crane's manifest) rewritten with odd whitespace: CRLF and tabs,
/// `layers` before `schemaVersion`, an annotation with `\u00e9` and `\/`
/// escapes a re-serialiser would turn into `é` and `/`, and trailing blank
/// lines.
fn odd_manifest(base: &Value, sha: &str) -> String {
    let layers: Vec<String> = base["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(odd_descriptor)
        .collect();
    format!(
        "{{\r\n\t\"layers\" : [ {} ] ,\n\n   \"schemaVersion\" :  2 ,  \"mediaType\":\"{OCI_MANIFEST}\",\r\n\"config\":{} ,\n  \"annotations\" : {{ \"dev.example.note\" : \"caf\\u00e9 \\/ {sha}\" }}\n\t}}\r\n\n  ",
        layers.join(" ,\n"),
        odd_descriptor(&base["config"]),
    )
}

/// `base` with annotations padding it to exactly [`BIG`] bytes.
fn big_manifest(base: &Value, sha: &str) -> String {
    let mut body = serde_json::to_string(base).expect("serialise");
    // Open `annotations` as the manifest's last member, add padding
    // entries, then close it and the manifest.
    assert!(base.get("annotations").is_none(), "crane's base has none");
    body.pop();
    body.push_str(r#","annotations":{"dev.example.release":""#);
    body.push_str(sha);
    body.push('"');
    let mut i = 0;
    loop {
        let key = format!(",\"dev.example.pad.{i:05}\":\"\"");
        let room = BIG - body.len() - 2;
        assert!(key.len() <= room, "padding overshot: {room} bytes left");
        // A full entry, unless what would be left could not hold another
        // key: then this entry takes the rest.
        let value = if room >= 2 * key.len() + 1000 {
            1000
        } else {
            room - key.len()
        };
        body.push_str(&key[..key.len() - 1]);
        body.push_str(&"x".repeat(value));
        body.push('"');
        i += 1;
        if BIG - body.len() == 2 {
            break;
        }
    }
    body.push_str("}}");
    assert_eq!(body.len(), BIG);
    assert!(body.len() < MANIFEST_LIMIT);
    body
}

/// `want` and `got` are the same bytes; on failure says where they part
/// instead of printing 4 MB.
fn same_bytes(what: &str, got: &str, want: &str) {
    if got.as_bytes() == want.as_bytes() {
        return;
    }
    let at = got
        .bytes()
        .zip(want.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    let around = |s: &str| {
        let b = s.as_bytes();
        String::from_utf8_lossy(&b[at.saturating_sub(40)..(at + 40).min(b.len())]).into_owned()
    };
    panic!(
        "{what}: {} bytes ({}) where {} bytes ({}) were expected; first difference at byte \
         {at}: {:?} vs {:?}",
        got.len(),
        oci::sha256(got.as_bytes()),
        want.len(),
        oci::sha256(want.as_bytes()),
        around(got),
        around(want),
    );
}

/// What a tool pushed as `staging-<sha>` is what it was meant to push:
/// `want`, served as `media_type` (read by crane and regctl).
fn assert_staging_is(registry: &RealRegistry, kind: Kind, sha: &str, want: &str) {
    let (repo, tag) = (kind.repo(), format!("staging-{sha}"));
    same_bytes(
        &format!("`crane manifest {repo}:{tag}`"),
        &crane_manifest(registry, repo, &tag),
        want,
    );
    assert_eq!(
        regctl_media_type(registry, repo, &tag),
        kind.media_type(),
        "the tool made another kind of manifest than {kind:?}"
    );
}

/// `repo`'s `tag` is `want` byte for byte, by `crane manifest` and by
/// `regctl manifest get --format raw-body`, with the digest `crane digest`
/// reads and served as `media_type`. Returns crane's digest.
fn assert_tag_is(
    registry: &RealRegistry,
    repo: &str,
    tag: &str,
    want: &str,
    media_type: &str,
) -> String {
    let digest = oci::sha256(want.as_bytes());
    let by_crane = crane_manifest(registry, repo, tag);
    same_bytes(&format!("`crane manifest {repo}:{tag}`"), &by_crane, want);
    let by_regctl = regctl_manifest(registry, repo, tag);
    same_bytes(
        &format!("`regctl manifest get --format raw-body {repo}:{tag}`"),
        &by_regctl,
        want,
    );
    assert_eq!(
        oci::sha256(by_crane.as_bytes()),
        digest,
        "crane, {repo}:{tag}"
    );
    assert_eq!(
        oci::sha256(by_regctl.as_bytes()),
        digest,
        "regctl, {repo}:{tag}"
    );
    let by_crane_digest = crane_digest(registry, repo, tag);
    assert_eq!(by_crane_digest, digest, "`crane digest {repo}:{tag}`");
    assert_eq!(
        regctl_media_type(registry, repo, tag),
        media_type,
        "the media type {repo}:{tag} is served under"
    );
    by_crane_digest
}

/// `latest` of `repo` is the staging manifest of `sha` (`want`), byte for
/// byte, and both tags have one digest.
fn assert_latest_is(registry: &RealRegistry, kind: Kind, sha: &str, want: &str) {
    let repo = kind.repo();
    assert_eq!(
        assert_tag_is(registry, repo, "latest", want, kind.media_type()),
        crane_digest(registry, repo, &format!("staging-{sha}")),
        "`latest` and `staging-{sha}` of {repo} by crane digest"
    );
}

fn digests(list: &[Referrer]) -> Vec<String> {
    let mut d: Vec<String> = list.iter().map(|r| r.digest.clone()).collect();
    d.sort();
    d
}

/// The referrers of `repo`'s `latest` (release `sha`, bytes `latest`), as
/// oras and regctl list them: canary's outcome record of `command` is
/// there, and for [`Kind::OrasReferrer`] the SBOM oras attached too —
/// canary added its records to the referrers tag without dropping it.
fn assert_referrers(registry: &RealRegistry, kind: Kind, latest: &str, sha: &str, command: &str) {
    let repo = kind.repo();
    let digest = oci::sha256(latest.as_bytes());
    let listed = oras_referrers(registry, repo, &digest);
    assert_eq!(
        digests(&listed),
        digests(&regctl_referrers(registry, repo, &digest)),
        "oras and regctl list different referrers of {repo}@{digest}"
    );
    assert!(
        records(&listed).iter().any(|r| {
            r.annotation("dev.canary.record.kind") == "outcome"
                && r.annotation("dev.canary.command") == command
                && r.annotation("dev.canary.sha") == sha
        }),
        "no outcome record of `canary {command}` {sha} on {repo}@{digest}: {listed:#?}"
    );
    if matches!(kind, Kind::OrasReferrer) {
        assert!(
            listed
                .iter()
                .any(|r| r.artifact_type == SBOM_TYPE && r.annotation("dev.example.sha") == sha),
            "the SBOM oras attached to {repo}@{digest} is no longer listed after `canary \
             {command}`: {listed:#?}"
        );
    }
}

/// `canary` on `world`, naming `repos` of its registry as the release's
/// images.
fn canary_on(world: &World, repos: &[&str]) -> std::process::Command {
    let mut cmd = world.canary();
    cmd.env("CANARY_IMAGES", images_on(&world.registry.host(), repos));
    cmd
}

/// Two releases of `kind` made by the tools, `latest` on the old one (by
/// `crane tag`); `canary promote` moves it to the new one and `canary
/// rollback` back, each leaving `latest` byte-identical to staging.
async fn promote_and_roll_back(distribution: Distribution, kind: Kind) {
    let registry = RealRegistry::open_with(distribution);
    let work = tempfile::tempdir().expect("temp dir");
    let repo = kind.repo();
    let old = kind.push(&registry, work.path(), OLD);
    let new = kind.push(&registry, work.path(), NEW);
    assert_ne!(old, new, "the two releases differ");
    assert_staging_is(&registry, kind, OLD, &old);
    assert_staging_is(&registry, kind, NEW, &new);
    crane_tag(&registry, repo, &format!("staging-{OLD}"), "latest");
    assert_latest_is(&registry, kind, OLD, &old);

    let world = World {
        registry,
        tenants: Vec::new(),
        dir: tempfile::tempdir().expect("temp dir"),
    };
    let mut cmd = canary_on(&world, &[repo]);
    cmd.args([
        "promote",
        "--sha",
        NEW,
        "--no-verify",
        "--reason",
        &format!("interop {kind:?}"),
    ]);
    let r = run(cmd).await;
    assert_eq!(
        r.code, 0,
        "canary promote of a {kind:?} on {distribution:?}: {r:?}"
    );
    assert_latest_is(&world.registry, kind, NEW, &new);
    assert_referrers(&world.registry, kind, &new, NEW, "promote");

    let mut cmd = canary_on(&world, &[repo]);
    cmd.args(["rollback", OLD]);
    let r = run(cmd).await;
    assert_eq!(
        r.code, 0,
        "canary rollback of a {kind:?} on {distribution:?}: {r:?}"
    );
    assert_latest_is(&world.registry, kind, OLD, &old);
    assert_referrers(&world.registry, kind, &old, OLD, "rollback");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_2_8_crane_oci_index() {
    promote_and_roll_back(Distribution::V2, Kind::OciIndex).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_3_1_crane_oci_index() {
    promote_and_roll_back(Distribution::V3, Kind::OciIndex).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_2_8_crane_docker_manifest_list() {
    promote_and_roll_back(Distribution::V2, Kind::DockerList).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_3_1_crane_docker_manifest_list() {
    promote_and_roll_back(Distribution::V3, Kind::DockerList).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_2_8_oras_artifact_with_subject_as_the_release() {
    promote_and_roll_back(Distribution::V2, Kind::OrasArtifact).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_3_1_oras_artifact_with_subject_as_the_release() {
    promote_and_roll_back(Distribution::V3, Kind::OrasArtifact).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_2_8_index_with_an_oras_attached_sbom() {
    promote_and_roll_back(Distribution::V2, Kind::OrasReferrer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_3_1_index_with_an_oras_attached_sbom() {
    promote_and_roll_back(Distribution::V3, Kind::OrasReferrer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_2_8_odd_whitespace_put_raw_by_regctl() {
    promote_and_roll_back(Distribution::V2, Kind::OddWhitespace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_3_1_odd_whitespace_put_raw_by_regctl() {
    promote_and_roll_back(Distribution::V3, Kind::OddWhitespace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_2_8_four_megabyte_manifest() {
    promote_and_roll_back(Distribution::V2, Kind::Big).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_3_1_four_megabyte_manifest() {
    promote_and_roll_back(Distribution::V3, Kind::Big).await;
}

/// Waits until every tenant has been asked something: the run is past its
/// precheck (which read `latest`) and in the rollout wait.
async fn wait_for_rollout_probe(world: &World) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while world.tenants.iter().any(|t| t.requests() == 0) {
        assert!(Instant::now() < deadline, "canary never probed the tenants");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A crane OCI index and a crane Docker list, three releases each, `latest`
/// on the old one; `canary verify` of the new one waits for the rollout,
/// and meanwhile `crane tag` points both `latest` tags at the third
/// release. The report's `before` and the outcome record's are what crane
/// put there (read right before the move), and `latest` ends on the
/// release, byte for byte.
async fn crane_tag_moves_latest_during_a_verify(distribution: Distribution) {
    let registry = RealRegistry::open_with(distribution);
    let work = tempfile::tempdir().expect("temp dir");
    let kinds = [Kind::OciIndex, Kind::DockerList];
    let repos = kinds.map(Kind::repo);
    let mut releases = Vec::new();
    for kind in kinds {
        let pushed: Vec<String> = [OLD, NEW, R3]
            .iter()
            .map(|sha| kind.push(&registry, work.path(), sha))
            .collect();
        crane_tag(&registry, kind.repo(), &format!("staging-{OLD}"), "latest");
        releases.push(pushed);
    }
    let world = World {
        registry,
        tenants: start_tenants(2, OLD).await,
        dir: tempfile::tempdir().expect("temp dir"),
    };
    let stale: Vec<String> = repos
        .iter()
        .map(|r| crane_digest(&world.registry, r, "latest"))
        .collect();

    let mut cmd = canary_on(&world, &repos);
    cmd.env("CANARY_ROLLOUT_DEADLINE", "90s").args([
        "verify",
        "--sha",
        NEW,
        "--report",
        "report.json",
    ]);
    let child = tokio::spawn(run(cmd));
    wait_for_rollout_probe(&world).await;
    for repo in repos {
        crane_tag(&world.registry, repo, &format!("staging-{R3}"), "latest");
    }
    let crane_put: Vec<String> = repos
        .iter()
        .map(|r| crane_digest(&world.registry, r, "latest"))
        .collect();
    for (i, repo) in repos.iter().enumerate() {
        assert_eq!(
            crane_put[i],
            crane_digest(&world.registry, repo, &format!("staging-{R3}"))
        );
        assert_ne!(crane_put[i], stale[i]);
    }
    for t in &world.tenants {
        t.set_version(NEW);
    }
    let r = child.await.expect("join");
    assert_eq!(r.code, 0, "{r:?}");

    let text = std::fs::read_to_string(world.dir.path().join("report.json"))
        .unwrap_or_else(|e| panic!("report not written ({e}): {r:?}"));
    let rep: Value = serde_json::from_str(&text).expect("report is JSON");
    assert_eq!(rep["outcome"], "promoted", "{rep:#}");
    let images = rep["images"].as_array().expect("report images");
    assert_eq!(images.len(), 2, "{rep:#}");
    for (i, kind) in kinds.iter().enumerate() {
        let repo = kind.repo();
        let release = &releases[i][1];
        assert_latest_is(&world.registry, *kind, NEW, release);
        let image = &images[i];
        assert_eq!(
            image["before"], crane_put[i],
            "`before` must be what crane tag put on {repo}, not the stale {}: {image:#}",
            stale[i]
        );
        assert_eq!(image["before_read"], true, "{image:#}");
        assert_eq!(image["after"], oci::sha256(release.as_bytes()), "{image:#}");

        let digest = oci::sha256(release.as_bytes());
        let listed = records(&oras_referrers(&world.registry, repo, &digest));
        let outcome = listed
            .iter()
            .find(|r| {
                r.annotation("dev.canary.record.kind") == "outcome"
                    && r.annotation("dev.canary.command") == "verify"
                    && r.annotation("dev.canary.sha") == NEW
            })
            .unwrap_or_else(|| panic!("no outcome record on {repo}@{digest}: {listed:#?}"));
        let rec = oras_record(&world.registry, repo, &outcome.digest);
        let recorded = &rec.statement()["predicate"]["canary"]["images"];
        assert_eq!(
            recorded[i]["before"],
            serde_json::json!({ "state": "at", "digest": crane_put[i] }),
            "the record's `before` on {repo}: {recorded:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_2_8_crane_tag_moves_latest_during_a_verify() {
    crane_tag_moves_latest_during_a_verify(Distribution::V2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_3_1_crane_tag_moves_latest_during_a_verify() {
    crane_tag_moves_latest_during_a_verify(Distribution::V3).await;
}
