//! Fixture images for integration tests: OCI image layouts built on disk and
//! pushed to a [`RealRegistry`] with `skopeo`, and `skopeo inspect --raw` to
//! read them back as an independent client.
//!
//! A fixture is a single-arch image or a two-arch index (`linux/amd64`,
//! `linux/arm64/v8`), with OCI or Docker media types ([`Flavor`]). With
//! [`Fixture::odd_formatting`] every JSON document is written with unusual
//! whitespace and key order, so any client that re-serialises a manifest
//! changes its digest and gets caught. Layers are real tar+gzip blobs (a
//! hand-written ustar archive in a gzip stream of stored deflate blocks), so
//! skopeo and the registry accept them; every fixture carries a salt so two
//! fixtures never share a digest.
//!
//! OCI fixtures are OCI image layouts (`oci:` transport). skopeo's `oci:`
//! transport only accepts OCI media types in `index.json`, so Docker
//! fixtures are written in skopeo's `dir:` layout instead (exact manifest
//! bytes too). [`Layout::push_converted_v2s2`] is the other road to Docker
//! media types: skopeo converts an OCI layout on the way in.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest as _, Sha256};

use crate::real_registry::{run, RealRegistry};

/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list media type.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest (schema 2) media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The reference name of the image inside the layout.
pub const LAYOUT_REF: &str = "fixture";

/// Which media types a fixture uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// OCI image manifest / OCI image index.
    Oci,
    /// Docker schema 2 manifest / Docker manifest list.
    Docker,
}

/// What to build.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// Media types.
    pub flavor: Flavor,
    /// Two platforms under an index (or manifest list) instead of one image.
    pub multi_arch: bool,
    /// Unusual whitespace and key order in every JSON document.
    pub odd_formatting: bool,
    /// Makes the content (and so every digest) unique.
    pub salt: String,
}

impl Fixture {
    /// A single-arch OCI image.
    pub fn single(salt: &str) -> Self {
        Self {
            flavor: Flavor::Oci,
            multi_arch: false,
            odd_formatting: false,
            salt: salt.to_string(),
        }
    }

    /// A two-arch OCI index.
    pub fn index(salt: &str) -> Self {
        Self {
            multi_arch: true,
            ..Self::single(salt)
        }
    }

    /// The same with Docker media types.
    #[must_use]
    pub fn docker(mut self) -> Self {
        self.flavor = Flavor::Docker;
        self
    }

    /// The same with unusual whitespace and key order.
    #[must_use]
    pub fn odd_formatting(mut self) -> Self {
        self.odd_formatting = true;
        self
    }

    /// Writes the OCI layout to a new temporary directory.
    pub fn build(&self) -> Layout {
        let dir = tempfile::Builder::new()
            .prefix("canary-oci-")
            .tempdir()
            .expect("temp dir");
        let blobs = dir.path().join("blobs").join("sha256");
        fs::create_dir_all(&blobs).expect("blobs dir");
        let (config_type, layer_type, manifest_type, index_type) = match self.flavor {
            Flavor::Oci => (OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, OCI_INDEX),
            Flavor::Docker => (DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST, DOCKER_LIST),
        };
        let platforms: &[(&str, Option<&str>)] = if self.multi_arch {
            &[("amd64", None), ("arm64", Some("v8"))]
        } else {
            &[("amd64", None)]
        };
        let mut children = Vec::new();
        for (arch, variant) in platforms {
            let tar = tar_file(
                "canary.txt",
                format!("canary fixture {} {arch}\n", self.salt).as_bytes(),
            );
            let diff_id = sha256(&tar);
            let layer = gzip_stored(&tar);
            let layer_blob = write_blob(&blobs, &layer);

            let mut config_fields = vec![("architecture", J::s(arch)), ("os", J::s("linux"))];
            if let Some(v) = variant {
                config_fields.push(("variant", J::s(v)));
            }
            config_fields.extend([
                (
                    "config",
                    J::obj(vec![(
                        "Labels",
                        J::obj(vec![("canary.salt", J::s(&self.salt))]),
                    )]),
                ),
                (
                    "rootfs",
                    J::obj(vec![
                        ("type", J::s("layers")),
                        ("diff_ids", J::Arr(vec![J::s(&diff_id)])),
                    ]),
                ),
            ]);
            let config = J::obj(config_fields).render(self.odd_formatting);
            let config_blob = write_blob(&blobs, config.as_bytes());

            let manifest = J::obj(vec![
                ("schemaVersion", J::Num(2)),
                ("mediaType", J::s(manifest_type)),
                ("config", descriptor(config_type, &config_blob, None)),
                (
                    "layers",
                    J::Arr(vec![descriptor(layer_type, &layer_blob, None)]),
                ),
            ])
            .render(self.odd_formatting);
            let manifest_blob = write_blob(&blobs, manifest.as_bytes());
            children.push(Blob {
                media_type: manifest_type.to_string(),
                bytes: manifest.into_bytes(),
                digest: manifest_blob.0,
                platform: Some(match variant {
                    Some(v) => format!("linux/{arch}/{v}"),
                    None => format!("linux/{arch}"),
                }),
            });
        }

        let top = if self.multi_arch {
            let entries = children
                .iter()
                .zip(platforms)
                .map(|(child, (arch, variant))| {
                    let mut platform = vec![("architecture", J::s(arch)), ("os", J::s("linux"))];
                    if let Some(v) = variant {
                        platform.push(("variant", J::s(v)));
                    }
                    descriptor(
                        &child.media_type,
                        &(child.digest.clone(), child.bytes.len()),
                        Some(J::obj(platform)),
                    )
                })
                .collect();
            let index = J::obj(vec![
                ("schemaVersion", J::Num(2)),
                ("mediaType", J::s(index_type)),
                ("manifests", J::Arr(entries)),
            ])
            .render(self.odd_formatting);
            let (digest, _) = write_blob(&blobs, index.as_bytes());
            Blob {
                media_type: index_type.to_string(),
                bytes: index.into_bytes(),
                digest,
                platform: None,
            }
        } else {
            children[0].clone()
        };

        match self.flavor {
            Flavor::Oci => {
                let layout_index = serde_json::json!({
                    "schemaVersion": 2,
                    "manifests": [{
                        "mediaType": top.media_type,
                        "digest": top.digest,
                        "size": top.bytes.len(),
                        "annotations": { "org.opencontainers.image.ref.name": LAYOUT_REF },
                    }],
                });
                fs::write(dir.path().join("index.json"), layout_index.to_string())
                    .expect("index.json");
                fs::write(
                    dir.path().join("oci-layout"),
                    r#"{"imageLayoutVersion":"1.0.0"}"#,
                )
                .expect("oci-layout");
            }
            Flavor::Docker => {
                // skopeo's `oci:` transport only lists OCI media types in
                // index.json; Docker manifests travel through its `dir:`
                // transport, which keeps the exact bytes as well.
                for entry in fs::read_dir(&blobs).expect("read blobs") {
                    let entry = entry.expect("blob entry");
                    fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy blob");
                }
                fs::write(dir.path().join("manifest.json"), &top.bytes).expect("manifest.json");
                if self.multi_arch {
                    for child in &children {
                        let hex = child.digest.trim_start_matches("sha256:");
                        fs::write(
                            dir.path().join(format!("{hex}.manifest.json")),
                            &child.bytes,
                        )
                        .expect("instance manifest");
                    }
                }
                fs::write(
                    dir.path().join("version"),
                    "Directory Transport Version: 1.1\n",
                )
                .expect("version");
            }
        }
        let children = if self.multi_arch { children } else { vec![] };
        Layout {
            dir,
            flavor: self.flavor,
            top,
            children,
        }
    }
}

/// A manifest (or index) of a fixture: its exact bytes and digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Media type.
    pub media_type: String,
    /// The exact bytes.
    pub bytes: Vec<u8>,
    /// `sha256:<hex>`.
    pub digest: String,
    /// `linux/amd64` for the children of an index.
    pub platform: Option<String>,
}

/// An OCI image layout on disk (deleted on drop).
#[derive(Debug)]
pub struct Layout {
    dir: tempfile::TempDir,
    flavor: Flavor,
    top: Blob,
    children: Vec<Blob>,
}

impl Layout {
    /// The layout directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The skopeo source name: `oci:<dir>:fixture` for OCI fixtures,
    /// `dir:<dir>` for Docker ones.
    pub fn skopeo_ref(&self) -> String {
        match self.flavor {
            Flavor::Oci => format!("oci:{}:{LAYOUT_REF}", self.dir.path().display()),
            Flavor::Docker => format!("dir:{}", self.dir.path().display()),
        }
    }

    /// The top-level manifest or index.
    pub fn top(&self) -> &Blob {
        &self.top
    }

    /// The image manifests of an index (empty for a single-arch image).
    pub fn children(&self) -> &[Blob] {
        &self.children
    }

    /// Pushes the layout to `registry` as `repo:tag` with
    /// `skopeo copy --all --preserve-digests`: the registry then holds
    /// exactly [`Layout::top`]'s bytes under `tag`.
    pub fn push(&self, registry: &RealRegistry, repo: &str, tag: &str) {
        let mut args = vec![
            "copy".to_string(),
            "--quiet".to_string(),
            "--all".to_string(),
            "--preserve-digests".to_string(),
        ];
        args.extend(registry.skopeo_dest_args());
        args.push(self.skopeo_ref());
        args.push(format!("docker://{}/{repo}:{tag}", registry.host()));
        skopeo(registry, &args);
    }

    /// Pushes with `skopeo copy --all --format v2s2`: skopeo converts OCI
    /// media types to Docker ones on the way in (an index becomes a Docker
    /// manifest list), so the registry's bytes differ from the layout's.
    /// Returns the digest of what the registry stores.
    pub fn push_converted_v2s2(&self, registry: &RealRegistry, repo: &str, tag: &str) -> String {
        let mut args = vec![
            "copy".to_string(),
            "--quiet".to_string(),
            "--all".to_string(),
            "--format".to_string(),
            "v2s2".to_string(),
        ];
        args.extend(registry.skopeo_dest_args());
        args.push(self.skopeo_ref());
        args.push(format!("docker://{}/{repo}:{tag}", registry.host()));
        skopeo(registry, &args);
        digest_of(registry, repo, tag)
    }
}

/// `skopeo inspect --raw docker://<registry>/<repo>:<tag>`: the exact bytes
/// the registry serves.
pub fn inspect_raw(registry: &RealRegistry, repo: &str, tag: &str) -> Vec<u8> {
    let mut args = vec!["inspect".to_string(), "--raw".to_string()];
    args.extend(registry.skopeo_args(""));
    args.push(format!("docker://{}/{repo}:{tag}", registry.host()));
    skopeo(registry, &args)
}

/// The sha256 digest of [`inspect_raw`]'s bytes, `sha256:<hex>`.
pub fn digest_of(registry: &RealRegistry, repo: &str, tag: &str) -> String {
    sha256(&inspect_raw(registry, repo, tag))
}

/// `skopeo copy --all docker://…/repo:from docker://…/repo:to` inside one
/// registry: the baseline the retag benchmark compares against.
pub fn skopeo_copy_tag(registry: &RealRegistry, repo: &str, from: &str, to: &str) {
    let mut args = vec![
        "copy".to_string(),
        "--quiet".to_string(),
        "--all".to_string(),
        "--preserve-digests".to_string(),
    ];
    args.extend(registry.skopeo_src_args());
    args.extend(registry.skopeo_dest_args());
    args.push(format!("docker://{}/{repo}:{from}", registry.host()));
    args.push(format!("docker://{}/{repo}:{to}", registry.host()));
    skopeo(registry, &args);
}

/// Runs skopeo with a permissive signature policy of our own (so the host's
/// `/etc/containers/policy.json` does not matter) and returns its stdout.
fn skopeo(registry: &RealRegistry, args: &[String]) -> Vec<u8> {
    let policy = policy_file(registry.dir());
    let mut cmd = Command::new("skopeo");
    cmd.arg("--policy").arg(&policy).args(args);
    run(&mut cmd)
}

fn policy_file(dir: &Path) -> PathBuf {
    let path = dir.join("policy.json");
    if !path.exists() {
        fs::write(&path, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#)
            .expect("write policy.json");
    }
    path
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn write_blob(blobs: &Path, bytes: &[u8]) -> (String, usize) {
    let digest = sha256(bytes);
    let hex = digest.trim_start_matches("sha256:");
    fs::write(blobs.join(hex), bytes).expect("write blob");
    (digest, bytes.len())
}

fn descriptor(media_type: &str, blob: &(String, usize), platform: Option<J>) -> J {
    let mut fields = vec![
        ("mediaType", J::s(media_type)),
        ("digest", J::s(&blob.0)),
        ("size", J::Num(u64::try_from(blob.1).expect("size"))),
    ];
    if let Some(p) = platform {
        fields.push(("platform", p));
    }
    J::obj(fields)
}

/// A JSON value with ordered keys, rendered either compactly or oddly.
enum J {
    Str(String),
    Num(u64),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn s(v: &str) -> Self {
        Self::Str(v.to_string())
    }

    fn obj(fields: Vec<(&str, J)>) -> Self {
        Self::Obj(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }

    fn render(&self, odd: bool) -> String {
        let mut out = String::new();
        self.write(&mut out, odd, 0);
        if odd {
            out.push_str("\n\n");
        }
        out
    }

    /// Odd: keys in reverse order, tab-and-space indentation, ` :  `
    /// separators, a trailing blank line. Valid JSON, never canonical.
    fn write(&self, out: &mut String, odd: bool, depth: usize) {
        let pad = |out: &mut String, depth: usize| {
            if odd {
                out.push('\n');
                for _ in 0..depth {
                    out.push_str("\t  ");
                }
            }
        };
        match self {
            Self::Str(s) => out.push_str(&serde_json::Value::String(s.clone()).to_string()),
            Self::Num(n) => {
                let _ = write!(out, "{n}");
            }
            Self::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    pad(out, depth + 1);
                    item.write(out, odd, depth + 1);
                }
                if !items.is_empty() {
                    pad(out, depth);
                }
                out.push(']');
            }
            Self::Obj(fields) => {
                out.push('{');
                let ordered: Vec<&(String, J)> = if odd {
                    fields.iter().rev().collect()
                } else {
                    fields.iter().collect()
                };
                for (i, (k, v)) in ordered.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    pad(out, depth + 1);
                    out.push_str(&serde_json::Value::String(k.clone()).to_string());
                    out.push_str(if odd { " :  " } else { ":" });
                    v.write(out, odd, depth + 1);
                }
                if !fields.is_empty() {
                    pad(out, depth);
                }
                out.push('}');
            }
        }
    }
}

/// A ustar archive holding one regular file.
fn tar_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let put = |header: &mut [u8; 512], at: usize, value: &[u8]| {
        header[at..at + value.len()].copy_from_slice(value);
    };
    put(&mut header, 0, name.as_bytes());
    put(&mut header, 100, b"0000644\0");
    put(&mut header, 108, b"0000000\0");
    put(&mut header, 116, b"0000000\0");
    put(
        &mut header,
        124,
        format!("{:011o}\0", content.len()).as_bytes(),
    );
    put(&mut header, 136, b"00000000000\0");
    put(&mut header, 148, b"        ");
    header[156] = b'0';
    put(&mut header, 257, b"ustar\0");
    put(&mut header, 263, b"00");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    put(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());

    let mut out = header.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// A gzip stream of stored (uncompressed) deflate blocks: valid gzip that
/// every tool reads, without a compression library.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(65_535).collect()
    };
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        out.push(u8::from(i == last));
        let len = u16::try_from(chunk.len()).expect("chunk fits u16");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(
        &u32::try_from(data.len())
            .expect("fixture layers are small")
            .to_le_bytes(),
    );
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn gzip_and_tar_are_read_by_the_real_tools() {
        let dir = tempfile::tempdir().unwrap();
        let gz = gzip_stored(&tar_file("hello.txt", b"hello canary\n"));
        let path = dir.path().join("layer.tar.gz");
        fs::write(&path, gz).unwrap();
        let listing = run(Command::new("tar").arg("-tzvf").arg(&path));
        let listing = String::from_utf8(listing).unwrap();
        assert!(listing.contains("hello.txt"), "{listing}");
        let content = run(Command::new("tar").arg("-xzOf").arg(&path));
        assert_eq!(content, b"hello canary\n");
    }

    #[test]
    fn odd_formatting_is_valid_json_with_another_digest() {
        let plain = Fixture::index("x").build();
        let odd = Fixture::index("x").odd_formatting().build();
        let a: serde_json::Value = serde_json::from_slice(&plain.top().bytes).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&odd.top().bytes).unwrap();
        assert_eq!(a["manifests"].as_array().unwrap().len(), 2);
        assert_eq!(b["manifests"].as_array().unwrap().len(), 2);
        assert_ne!(plain.top().digest, odd.top().digest);
        assert_eq!(sha256(&odd.top().bytes), odd.top().digest);
        let reserialised = serde_json::to_vec(&b).unwrap();
        assert_ne!(sha256(&reserialised), odd.top().digest);
    }
}
