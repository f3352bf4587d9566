//! An envelope canary sealed, checked by a verifier canary did not write:
//! `tests/dsse_verify.py`, on PyPI's `cryptography`, computing the PAE
//! itself.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use canary_core::ledger::RecordKind;
use canary_core::Digest;
use canary_ledger::{seal, statement, Envelope, SigningKey, Statement};
use common::{generate, image, record, ED25519, P256};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dsse_verify.py")
}

fn python(args: &[&str]) -> Output {
    Command::new("python3")
        .args(args)
        .output()
        .expect("python3 runs (the independent verifier needs it)")
}

/// `cryptography` is installed, or installed now; a missing verifier is a
/// failure, never a skip.
fn ensure_cryptography() {
    if python(&["-c", "import cryptography"]).status.success() {
        return;
    }
    let install = python(&["-m", "pip", "install", "--quiet", "cryptography"]);
    assert!(
        install.status.success(),
        "the independent verifier needs PyPI's `cryptography`, and \
         `python3 -m pip install --quiet cryptography` failed:\n{}",
        String::from_utf8_lossy(&install.stderr)
    );
    assert!(
        python(&["-c", "import cryptography"]).status.success(),
        "`cryptography` installed but does not import"
    );
}

fn run_verifier(dir: &Path, envelope: &Envelope, public_key: &Path) -> Output {
    let path = dir.join("envelope.json");
    std::fs::write(&path, envelope.to_json()).unwrap();
    python(&[
        script().to_str().unwrap(),
        path.to_str().unwrap(),
        public_key.to_str().unwrap(),
    ])
}

fn check(genpkey: &[&str]) {
    ensure_cryptography();
    let dir = tempfile::tempdir().unwrap();
    let k = generate(dir.path(), "k", genpkey);
    let key = SigningKey::from_pkcs8_pem(&k.private_pem, "test").unwrap();
    let images = [
        (image("ghcr.io", "acme/platform"), Digest::sha256_of(b"p")),
        (image("ghcr.io", "acme/tenant"), Digest::sha256_of(b"t")),
    ];
    let r = record(RecordKind::Outcome, &images);
    let env = seal(
        &Statement::new(&r, &statement::verifier_id("0.1.0")).to_json(),
        Some(&key),
    );

    let out = run_verifier(dir.path(), &env, &k.public_path);
    assert!(
        out.status.success(),
        "the independent verifier refused canary's envelope: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(said["keyid"], k.spki_sha256);
    let subjects: Vec<(String, String)> = said["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["digest"]["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = images
        .iter()
        .map(|(i, d)| (i.to_string(), d.hex().to_string()))
        .collect();
    assert_eq!(subjects, want);

    // Tampered: one word of the statement changed, signature kept.
    let text = String::from_utf8(STANDARD.decode(&env.payload).unwrap()).unwrap();
    let forged = Envelope {
        payload: STANDARD.encode(text.replacen("octocat", "mallory", 1)),
        ..env.clone()
    };
    assert_ne!(forged.payload, env.payload);
    let out = run_verifier(dir.path(), &forged, &k.public_path);
    assert!(!out.status.success(), "a tampered envelope verified");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no signature by this key verifies"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Unsigned: refused too.
    let out = run_verifier(dir.path(), &seal(text.as_bytes(), None), &k.public_path);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsigned"));
}

#[test]
fn python_cryptography_verifies_an_ed25519_envelope() {
    check(ED25519);
}

#[test]
fn python_cryptography_verifies_a_p256_envelope() {
    check(P256);
}
