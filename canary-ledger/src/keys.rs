//! Signing and verifying keys: Ed25519 and ECDSA P-256, read from the PEM
//! files `openssl` writes.
//!
//! - A private key is PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as
//!   `openssl genpkey -algorithm ed25519` or `openssl genpkey -algorithm EC
//!   -pkeyopt ec_paramgen_curve:P-256` write it.
//! - A public key is SPKI PEM (`-----BEGIN PUBLIC KEY-----`), as `openssl
//!   pkey -pubout` writes it.
//! - A key's id is the SHA-256 (lowercase hex) of its public key's SPKI
//!   DER: `openssl pkey -pubout -outform DER | sha256sum` gives the same.
//!
//! ECDSA signatures are over SHA-256 and DER-encoded, as OpenSSL, Python's
//! `cryptography` and other DSSE tools write them.
//!
//! Loading errors are [`UsageError`]s that name where the key came from
//! (a label the caller gives: an environment variable, a file) and how to
//! fix it. Neither they nor `Debug` ever show key material.

use std::fmt;

use canary_core::UsageError;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use pkcs8::der::Decode as _;
use pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePublicKey as _, ObjectIdentifier};
use sha2::{Digest as _, Sha256};

const ED25519_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const EC_PUBLIC_KEY_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

const GENERATE: &str = "make one with `openssl genpkey -algorithm ed25519 -out canary.key` (or \
                        `-algorithm EC -pkeyopt ec_paramgen_curve:P-256`)";

/// The signature algorithms canary signs and verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// Ed25519 (RFC 8032).
    Ed25519,
    /// ECDSA over NIST P-256 with SHA-256, DER signatures.
    EcdsaP256,
}

impl KeyAlgorithm {
    /// The algorithm's one spelling (`ed25519`, `ecdsa-p256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256 => "ecdsa-p256",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A private key records are signed with.
pub struct SigningKey {
    inner: SigningInner,
    key_id: String,
}

enum SigningInner {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
}

// Hand-written so that no formatting of a key, however nested, prints its
// secret: only what the public key already tells.
impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm())
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a PKCS#8 PEM private key, Ed25519 or ECDSA P-256. `source`
    /// names where it came from, for the error (`` `CANARY_SIGNING_KEY` ``,
    /// `` file `canary.key` ``).
    pub fn from_pkcs8_pem(pem: &str, source: &str) -> Result<Self, UsageError> {
        let input = format!("signing key from {source}");
        let bad = |problem: &str, fix: &str| UsageError::new(&input, problem, fix);
        let pem = pem.trim();
        if pem.is_empty() {
            return Err(bad("is empty", GENERATE));
        }
        match pem_label(pem) {
            Some("PRIVATE KEY") => {}
            Some("ENCRYPTED PRIVATE KEY") => {
                return Err(bad(
                    "is encrypted with a passphrase",
                    "keep the key in a secret store instead, unencrypted: \
                     `openssl pkey -in canary.key -out canary-plain.key`",
                ))
            }
            Some("EC PRIVATE KEY") => {
                return Err(bad(
                    "is a SEC1 EC key, not PKCS#8",
                    "convert it: `openssl pkcs8 -topk8 -nocrypt -in canary.key -out canary.p8.key`",
                ))
            }
            Some("PUBLIC KEY") => {
                return Err(bad(
                    "is a public key",
                    "give the private key here; the public key is for verify-record",
                ))
            }
            Some(other) => {
                return Err(bad(
                    &format!("is a PEM `{other}`, not a PKCS#8 private key"),
                    GENERATE,
                ))
            }
            None => {
                return Err(bad(
                    "is not PEM (no `-----BEGIN PRIVATE KEY-----` line)",
                    GENERATE,
                ))
            }
        }
        let malformed = || bad("is not a readable PKCS#8 private key", GENERATE);
        let (_, doc) = pkcs8::SecretDocument::from_pem(pem).map_err(|_| malformed())?;
        let info = pkcs8::PrivateKeyInfo::from_der(doc.as_bytes()).map_err(|_| malformed())?;
        let inner = match algorithm_of(&info.algorithm).map_err(|p| bad(&p, GENERATE))? {
            KeyAlgorithm::Ed25519 => SigningInner::Ed25519(
                ed25519_dalek::SigningKey::from_pkcs8_der(doc.as_bytes())
                    .map_err(|_| malformed())?,
            ),
            KeyAlgorithm::EcdsaP256 => SigningInner::P256(
                p256::ecdsa::SigningKey::from_pkcs8_der(doc.as_bytes()).map_err(|_| malformed())?,
            ),
        };
        let key_id = match &inner {
            SigningInner::Ed25519(k) => spki_key_id(&k.verifying_key()),
            SigningInner::P256(k) => spki_key_id(k.verifying_key()),
        };
        Ok(Self { inner, key_id })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self.inner {
            SigningInner::Ed25519(_) => KeyAlgorithm::Ed25519,
            SigningInner::P256(_) => KeyAlgorithm::EcdsaP256,
        }
    }

    /// The key id: SHA-256 hex of the public key's SPKI DER.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        let inner = match &self.inner {
            SigningInner::Ed25519(k) => VerifyingInner::Ed25519(k.verifying_key()),
            SigningInner::P256(k) => VerifyingInner::P256(*k.verifying_key()),
        };
        VerifyingKey {
            inner,
            key_id: self.key_id.clone(),
        }
    }

    /// Signs `message` (Ed25519: the 64-byte signature; P-256: SHA-256
    /// then ECDSA, DER-encoded).
    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        match &self.inner {
            SigningInner::Ed25519(k) => {
                let sig: ed25519_dalek::Signature = k.sign(message);
                sig.to_bytes().to_vec()
            }
            SigningInner::P256(k) => {
                let sig: p256::ecdsa::Signature = k.sign(message);
                sig.to_der().as_bytes().to_vec()
            }
        }
    }
}

/// A public key records are verified with.
#[derive(Clone)]
pub struct VerifyingKey {
    inner: VerifyingInner,
    key_id: String,
}

#[derive(Clone)]
enum VerifyingInner {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The id and algorithm say which key; the point itself adds noise.
        f.debug_struct("VerifyingKey")
            .field("algorithm", &self.algorithm())
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.key_id == other.key_id
    }
}

impl Eq for VerifyingKey {}

impl VerifyingKey {
    /// Reads an SPKI PEM public key (`openssl pkey -pubout`), Ed25519 or
    /// ECDSA P-256. `source` names where it came from, for the error.
    pub fn from_public_key_pem(pem: &str, source: &str) -> Result<Self, UsageError> {
        let input = format!("public key from {source}");
        let fix = "write it with `openssl pkey -in canary.key -pubout -out canary.pub`";
        let bad = |problem: &str| UsageError::new(&input, problem, fix);
        let pem = pem.trim();
        match pem_label(pem) {
            Some("PUBLIC KEY") => {}
            Some(label) if label.contains("PRIVATE KEY") => {
                // Said without echoing anything of it: the message may end
                // up in a CI log.
                return Err(bad(
                    "is a private key; never hand a private key to a verifier",
                ));
            }
            Some(other) => return Err(bad(&format!("is a PEM `{other}`, not a public key"))),
            None => return Err(bad("is not PEM (no `-----BEGIN PUBLIC KEY-----` line)")),
        }
        let malformed = || bad("is not a readable SPKI public key");
        let (_, doc) = pkcs8::Document::from_pem(pem).map_err(|_| malformed())?;
        let info =
            pkcs8::SubjectPublicKeyInfoRef::from_der(doc.as_bytes()).map_err(|_| malformed())?;
        let inner = match algorithm_of(&info.algorithm).map_err(|p| bad(&p))? {
            KeyAlgorithm::Ed25519 => VerifyingInner::Ed25519(
                ed25519_dalek::VerifyingKey::from_public_key_der(doc.as_bytes())
                    .map_err(|_| malformed())?,
            ),
            KeyAlgorithm::EcdsaP256 => VerifyingInner::P256(
                p256::ecdsa::VerifyingKey::from_public_key_der(doc.as_bytes())
                    .map_err(|_| malformed())?,
            ),
        };
        let key_id = match &inner {
            VerifyingInner::Ed25519(k) => spki_key_id(k),
            VerifyingInner::P256(k) => spki_key_id(k),
        };
        Ok(Self { inner, key_id })
    }

    /// The algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self.inner {
            VerifyingInner::Ed25519(_) => KeyAlgorithm::Ed25519,
            VerifyingInner::P256(_) => KeyAlgorithm::EcdsaP256,
        }
    }

    /// The key id: SHA-256 hex of the SPKI DER.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key as SPKI PEM.
    pub fn to_public_key_pem(&self) -> String {
        let pem = match &self.inner {
            VerifyingInner::Ed25519(k) => k.to_public_key_pem(pkcs8::LineEnding::LF),
            VerifyingInner::P256(k) => k.to_public_key_pem(pkcs8::LineEnding::LF),
        };
        pem.expect("a valid public key always encodes")
    }

    /// Whether `signature` is this key's over `message`.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.inner {
            VerifyingInner::Ed25519(k) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|s| k.verify_strict(message, &s).is_ok()),
            VerifyingInner::P256(k) => {
                // DER as canary and OpenSSL write it; the fixed 64-byte
                // r‖s form some tools write is taken too.
                let sig = p256::ecdsa::Signature::from_der(signature)
                    .or_else(|_| p256::ecdsa::Signature::from_slice(signature));
                sig.is_ok_and(|s| k.verify(message, &s).is_ok())
            }
        }
    }
}

/// The label of the first PEM block (`PRIVATE KEY`), if `pem` starts with one.
fn pem_label(pem: &str) -> Option<&str> {
    let rest = pem.strip_prefix("-----BEGIN ")?;
    let end = rest.find("-----")?;
    Some(&rest[..end])
}

fn algorithm_of(alg: &pkcs8::AlgorithmIdentifierRef<'_>) -> Result<KeyAlgorithm, String> {
    if alg.oid == ED25519_OID {
        return Ok(KeyAlgorithm::Ed25519);
    }
    if alg.oid == EC_PUBLIC_KEY_OID {
        return match alg.parameters_oid() {
            Ok(curve) if curve == P256_OID => Ok(KeyAlgorithm::EcdsaP256),
            Ok(curve) => Err(format!(
                "is an EC key on curve {curve}; canary signs with P-256 (prime256v1) only"
            )),
            Err(_) => Err("is an EC key without a named curve".to_string()),
        };
    }
    Err(format!(
        "is a key of algorithm {}; canary takes Ed25519 or ECDSA P-256",
        alg.oid
    ))
}

fn spki_key_id(key: &impl pkcs8::EncodePublicKey) -> String {
    let der = key
        .to_public_key_der()
        .expect("a valid public key always encodes");
    hex::encode(Sha256::digest(der.as_bytes()))
}
