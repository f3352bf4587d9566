//! What the integration tests share: keys made by `openssl` at test time,
//! and records.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use sha2::Digest as _;

use canary_core::ledger::{Before, CheckSummary, Record, RecordImage, RecordKind, RECORD_SCHEMA};
use canary_core::{Command, Digest, GitSha, ImageRef, Outcome};

/// The two key kinds, as `openssl genpkey` arguments.
pub const ED25519: &[&str] = &["-algorithm", "ed25519"];
pub const P256: &[&str] = &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];

/// A key pair written by `openssl`: the private key PEM, the public key
/// PEM, and the SHA-256 hex of the public key's DER as openssl writes it.
pub struct OpensslKey {
    pub private_pem: String,
    pub public_pem: String,
    pub public_path: PathBuf,
    pub spki_sha256: String,
}

pub fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Process::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs (it is installed on every machine of the project)");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

pub fn generate(dir: &Path, name: &str, genpkey_args: &[&str]) -> OpensslKey {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let p = private.to_str().unwrap();
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
        public.to_str().unwrap(),
    ]);
    let der = openssl(&["pkey", "-in", p, "-pubout", "-outform", "DER"]);
    OpensslKey {
        private_pem: std::fs::read_to_string(&private).unwrap(),
        public_pem: std::fs::read_to_string(&public).unwrap(),
        public_path: public,
        spki_sha256: hex::encode(sha2::Sha256::digest(&der)),
    }
}

pub fn image(registry: &str, path: &str) -> ImageRef {
    ImageRef::parse(&format!("{registry}/{path}")).unwrap()
}

/// A verified promotion of `images` (image, target digest) as `kind`.
pub fn record(kind: RecordKind, images: &[(ImageRef, Digest)]) -> Record {
    Record {
        schema: RECORD_SCHEMA,
        kind,
        run_id: "run-42".into(),
        command: Command::Verify,
        sha: GitSha::parse("4c1d56e").unwrap(),
        promoted_tag: "latest".into(),
        time_ms: 1_714_564_800_000,
        images: images
            .iter()
            .map(|(image, target)| RecordImage {
                image: image.clone(),
                before: Before::Absent,
                target: target.clone(),
                after: (kind == RecordKind::Outcome).then(|| target.clone()),
                overwritten: None,
            })
            .collect(),
        outcome: (kind == RecordKind::Outcome).then_some(Outcome::Promoted),
        reason: String::new(),
        manual_reason: None,
        verified: true,
        checks: Some(CheckSummary {
            suite: "default".into(),
            suite_digest: Some(Digest::sha256_of(b"suite")),
            tenants: 2,
            passed: 8,
            failed: 0,
        }),
        actor: Some("octocat".into()),
        run_url: None,
        previous: None,
        analysis: None,
    }
}
