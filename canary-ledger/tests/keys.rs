//! Keys made by `openssl` at test time: loading, key ids, sign and verify,
//! and every reason a record is invalid.

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use canary_core::ledger::RecordKind;
use canary_core::Digest;
use canary_ledger::{
    open, seal, statement, verify, Envelope, Invalid, KeyAlgorithm, SigningKey, Statement,
    VerifyingKey,
};
use common::{generate, image, openssl, record, ED25519, P256};

fn statement_json() -> Vec<u8> {
    let r = record(
        RecordKind::Outcome,
        &[
            (image("ghcr.io", "acme/platform"), Digest::sha256_of(b"p")),
            (image("ghcr.io", "acme/tenant"), Digest::sha256_of(b"t")),
        ],
    );
    Statement::new(&r, &statement::verifier_id("0.1.0")).to_json()
}

fn keys(
    genpkey: &[&str],
) -> (
    tempfile::TempDir,
    common::OpensslKey,
    SigningKey,
    VerifyingKey,
) {
    let dir = tempfile::tempdir().unwrap();
    let k = generate(dir.path(), "k", genpkey);
    let signing = SigningKey::from_pkcs8_pem(&k.private_pem, "`CANARY_SIGNING_KEY`").unwrap();
    let verifying = VerifyingKey::from_public_key_pem(&k.public_pem, "file `k.pub`").unwrap();
    (dir, k, signing, verifying)
}

fn round_trip(genpkey: &[&str], algorithm: KeyAlgorithm) {
    let (_dir, k, signing, verifying) = keys(genpkey);
    assert_eq!(signing.algorithm(), algorithm);
    assert_eq!(verifying.algorithm(), algorithm);
    // The key id is what openssl's DER hashes to, from either half.
    assert_eq!(signing.key_id(), k.spki_sha256);
    assert_eq!(verifying.key_id(), k.spki_sha256);
    assert_eq!(signing.verifying_key(), verifying);

    let json = statement_json();
    let env = seal(&json, Some(&signing));
    assert_eq!(env.signatures.len(), 1);
    assert_eq!(env.signatures[0].keyid, k.spki_sha256);
    let back = Envelope::from_json(&env.to_json()).unwrap();
    let v = verify(&back, &verifying).expect("a sealed envelope verifies");
    assert_eq!(v.key_id, k.spki_sha256);
    assert_eq!(v.statement, open(&env).unwrap());
    assert_eq!(v.statement.to_json(), json);
}

#[test]
fn ed25519_signs_and_verifies() {
    round_trip(ED25519, KeyAlgorithm::Ed25519);
}

#[test]
fn p256_signs_and_verifies() {
    round_trip(P256, KeyAlgorithm::EcdsaP256);
}

#[test]
fn p256_signatures_are_der() {
    let (_dir, _k, signing, _) = keys(P256);
    let env = seal(&statement_json(), Some(&signing));
    let sig = STANDARD.decode(&env.signatures[0].sig).unwrap();
    // SEQUENCE { INTEGER r, INTEGER s }: 0x30, then the length of the rest.
    assert_eq!(sig[0], 0x30);
    assert_eq!(usize::from(sig[1]), sig.len() - 2);
}

fn tampered(env: &Envelope) -> Envelope {
    let mut payload = STANDARD.decode(&env.payload).unwrap();
    let text = String::from_utf8(payload.clone()).unwrap();
    // A plausible forgery: the statement still parses, only a word differs.
    let forged = text.replacen("octocat", "mallory", 1);
    assert_ne!(forged, text);
    payload = forged.into_bytes();
    Envelope {
        payload: STANDARD.encode(payload),
        ..env.clone()
    }
}

#[test]
fn a_tampered_payload_is_a_bad_signature() {
    for kind in [ED25519, P256] {
        let (_dir, k, signing, verifying) = keys(kind);
        let env = tampered(&seal(&statement_json(), Some(&signing)));
        assert!(open(&env).is_ok(), "the forgery still reads as a statement");
        let err = verify(&env, &verifying).unwrap_err();
        assert_eq!(
            err,
            Invalid::BadSignature {
                key_id: k.spki_sha256.clone()
            }
        );
        assert_eq!(err.name(), "bad_signature");
        // A tampered payload type is caught too: it is part of the PAE.
        let mut env = seal(&statement_json(), Some(&signing));
        env.payload_type = "application/vnd.in-toto+json; x=1".into();
        assert_eq!(
            verify(&env, &verifying).unwrap_err().name(),
            "bad_signature"
        );
    }
}

#[test]
fn another_key_is_a_wrong_key_and_without_keyid_a_bad_signature() {
    let (_d1, k1, signing, _) = keys(ED25519);
    let (_d2, k2, _, other) = keys(P256);
    let env = seal(&statement_json(), Some(&signing));
    let err = verify(&env, &other).unwrap_err();
    assert_eq!(
        err,
        Invalid::WrongKey {
            expected: k2.spki_sha256.clone(),
            found: vec![k1.spki_sha256.clone()],
        }
    );
    assert!(err.to_string().contains(&k1.spki_sha256), "{err}");
    // A signature naming no key is tried with the given one, and fails.
    let mut anonymous = env.clone();
    anonymous.signatures[0].keyid.clear();
    assert_eq!(
        verify(&anonymous, &other).unwrap_err().name(),
        "bad_signature"
    );
    // Same algorithm, another key: wrong key too.
    let (_d3, _, _, same_kind) = keys(ED25519);
    assert_eq!(verify(&env, &same_kind).unwrap_err().name(), "wrong_key");
}

#[test]
fn unsigned_and_malformed_envelopes_are_invalid_with_the_reason() {
    let (_dir, _k, signing, verifying) = keys(ED25519);
    let unsigned = seal(&statement_json(), None);
    assert_eq!(
        unsigned
            .to_json()
            .windows(15)
            .filter(|w| w == b"\"signatures\":[]")
            .count(),
        1
    );
    assert_eq!(
        verify(&unsigned, &verifying).unwrap_err(),
        Invalid::Unsigned
    );
    assert!(open(&unsigned).is_ok());

    let mut bad_b64 = seal(&statement_json(), Some(&signing));
    bad_b64.payload = "***".into();
    assert_eq!(
        verify(&bad_b64, &verifying).unwrap_err().name(),
        "malformed"
    );
    let mut bad_sig = seal(&statement_json(), Some(&signing));
    bad_sig.signatures[0].sig = "***".into();
    assert_eq!(
        verify(&bad_sig, &verifying).unwrap_err().name(),
        "malformed"
    );
    // Validly signed, but not a statement.
    let not_statement = seal(b"{}", Some(&signing));
    assert_eq!(
        verify(&not_statement, &verifying).unwrap_err().name(),
        "malformed"
    );
    assert!(Envelope::from_json(b"[1,2]").is_err());
}

/// The base64 body lines of a PEM: what must never appear in an error or
/// a `Debug`.
fn body_chunks(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| {
            l.as_bytes()
                .chunks(12)
                .filter(|c| c.len() == 12)
                .map(|c| String::from_utf8(c.to_vec()).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn assert_no_key(text: &str, pem: &str) {
    for chunk in body_chunks(pem) {
        assert!(!text.contains(&chunk), "key material `{chunk}` in: {text}");
    }
}

#[test]
fn debug_never_shows_key_material() {
    for kind in [ED25519, P256] {
        let (_dir, k, signing, _) = keys(kind);
        let debug = format!("{signing:?} {signing:#?}");
        assert!(debug.contains(&k.spki_sha256), "{debug}");
        assert_no_key(&debug, &k.private_pem);
    }
}

fn load_error(pem: &str) -> canary_core::UsageError {
    SigningKey::from_pkcs8_pem(pem, "`CANARY_SIGNING_KEY`").unwrap_err()
}

#[test]
fn key_errors_name_the_source_and_the_fix_and_never_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let sec1 = String::from_utf8(openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
    ]))
    .unwrap();
    let rsa = String::from_utf8(openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:1024",
    ]))
    .unwrap();
    let p384 = String::from_utf8(openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-384",
    ]))
    .unwrap();
    let ed = generate(dir.path(), "ed", ED25519);
    openssl(&[
        "pkey",
        "-in",
        &d("ed.key"),
        "-out",
        &d("ed.enc"),
        "-aes256",
        "-passout",
        "pass:pw",
    ]);
    let encrypted = std::fs::read_to_string(d("ed.enc")).unwrap();
    // Cut short: the DER inside ends before its declared length.
    let lines: Vec<&str> = ed.private_pem.lines().collect();
    let body = lines[1];
    let garbled = format!("{}\n{}\n{}\n", lines[0], &body[..body.len() - 8], lines[2]);

    let cases: Vec<(&str, String, &str)> = vec![
        ("empty", String::new(), "is empty"),
        ("not pem", "hello".into(), "is not PEM"),
        ("sec1", sec1.clone(), "SEC1"),
        ("rsa", rsa.clone(), "Ed25519 or ECDSA P-256"),
        ("p384", p384.clone(), "P-256 (prime256v1) only"),
        ("encrypted", encrypted.clone(), "encrypted"),
        ("public", ed.public_pem.clone(), "is a public key"),
        ("garbled", garbled.clone(), "not a readable PKCS#8"),
    ];
    for (name, pem, problem) in cases {
        let e = load_error(&pem);
        let all = format!("{e} {} {} {e:?}", e.fix(), e.input());
        assert_eq!(e.input(), "signing key from `CANARY_SIGNING_KEY`", "{name}");
        assert!(e.problem().contains(problem), "{name}: {all}");
        assert!(!e.fix().is_empty(), "{name}");
        assert_no_key(&all, &pem);
    }
    assert!(load_error(&sec1).fix().contains("openssl pkcs8 -topk8"));

    // A public key loader given a private key says so, without echoing it.
    let e = VerifyingKey::from_public_key_pem(&ed.private_pem, "file `canary.pub`").unwrap_err();
    assert_eq!(e.input(), "public key from file `canary.pub`");
    assert!(e.problem().contains("private key"));
    assert!(e.fix().contains("openssl pkey"));
    assert_no_key(&format!("{e} {e:?}"), &ed.private_pem);
}

#[test]
fn keys_load_with_surrounding_whitespace_and_crlf() {
    let dir = tempfile::tempdir().unwrap();
    let k = generate(dir.path(), "k", P256);
    let crlf = format!("\n  {}\n", k.private_pem.replace('\n', "\r\n"));
    let key = SigningKey::from_pkcs8_pem(&crlf, "x").unwrap();
    assert_eq!(key.key_id(), k.spki_sha256);
    let public = key.verifying_key().to_public_key_pem();
    assert_eq!(public, k.public_pem);
}
