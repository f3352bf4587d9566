//! DSSE envelopes: the statement's bytes, base64, and signatures over the
//! pre-authentication encoding (PAE) of type and bytes.
//!
//! A record is sealed whether or not a key is configured: without one the
//! envelope has `signatures: []` (a record is never skipped for lack of a
//! key). [`verify`] then says `unsigned`.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::keys::{SigningKey, VerifyingKey};
use crate::statement::Statement;

/// `payloadType` of an envelope carrying an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The media type of an envelope's JSON.
pub const ENVELOPE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// [`IN_TOTO_PAYLOAD_TYPE`] for canary's records.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The statement's bytes, base64 (standard alphabet, padded).
    pub payload: String,
    /// Empty when unsigned.
    #[serde(default)]
    pub signatures: Vec<Signature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The signing key's id (SHA-256 hex of its SPKI DER); empty if the
    /// signer gave none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keyid: String,
    /// The signature, base64.
    pub sig: String,
}

impl Envelope {
    /// Whether the envelope carries at least one signature.
    pub fn is_signed(&self) -> bool {
        !self.signatures.is_empty()
    }

    /// The envelope's JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serializes")
    }

    /// Parses an envelope's JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Invalid> {
        serde_json::from_slice(bytes)
            .map_err(|e| Invalid::Malformed(format!("not a DSSE envelope: {e}")))
    }

    /// The payload's bytes.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, Invalid> {
        decode_b64(&self.payload).ok_or_else(|| Invalid::Malformed("payload is not base64".into()))
    }
}

/// DSSE's pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII
/// decimal bytes. What is signed, never the JSON.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Wraps an in-toto statement's JSON in an envelope, signed with `key` if
/// given.
pub fn seal(statement_json: &[u8], key: Option<&SigningKey>) -> Envelope {
    let signatures = key
        .map(|k| Signature {
            keyid: k.key_id().to_string(),
            sig: STANDARD.encode(k.sign(&pae(IN_TOTO_PAYLOAD_TYPE, statement_json))),
        })
        .into_iter()
        .collect();
    Envelope {
        payload_type: IN_TOTO_PAYLOAD_TYPE.to_string(),
        payload: STANDARD.encode(statement_json),
        signatures,
    }
}

/// The statement an envelope carries, without checking any signature.
pub fn open(envelope: &Envelope) -> Result<Statement, Invalid> {
    if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(Invalid::Malformed(format!(
            "payloadType is `{}`, not `{IN_TOTO_PAYLOAD_TYPE}`",
            envelope.payload_type.escape_debug()
        )));
    }
    let bytes = envelope.payload_bytes()?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Invalid::Malformed(format!("payload is not canary's in-toto statement: {e}")))
}

/// A signature that checked out, and what it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The id of the key that signed.
    pub key_id: String,
    /// The signed statement.
    pub statement: Statement,
}

/// Why an envelope does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// No signature at all (no key was configured when it was written).
    #[error("unsigned: the record carries no signature")]
    Unsigned,
    /// Every signature names another key.
    #[error("wrong key: signed by key {}, not by the given key {expected}", found.join(", "))]
    WrongKey {
        /// The given key's id.
        expected: String,
        /// The key ids the signatures name.
        found: Vec<String>,
    },
    /// A signature for this key (or naming none) does not match the payload.
    #[error("bad signature: the signature does not match the record for key {key_id} (altered after signing, or another key)")]
    BadSignature {
        /// The given key's id.
        key_id: String,
    },
    /// Not a DSSE envelope of an in-toto statement canary can read.
    #[error("malformed: {0}")]
    Malformed(String),
}

impl Invalid {
    /// A one-word name of the reason (`unsigned`, `wrong_key`,
    /// `bad_signature`, `malformed`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Unsigned => "unsigned",
            Self::WrongKey { .. } => "wrong_key",
            Self::BadSignature { .. } => "bad_signature",
            Self::Malformed(_) => "malformed",
        }
    }
}

/// Checks that `key` signed `envelope`, and returns the statement.
///
/// A signature whose `keyid` names another key is not tried; one naming no
/// key is. Valid when any tried signature matches the PAE of the payload.
pub fn verify(envelope: &Envelope, key: &VerifyingKey) -> Result<Verified, Invalid> {
    let payload = envelope.payload_bytes()?;
    if envelope.signatures.is_empty() {
        return Err(Invalid::Unsigned);
    }
    let message = pae(&envelope.payload_type, &payload);
    let mut tried = false;
    for s in &envelope.signatures {
        if !s.keyid.is_empty() && s.keyid != key.key_id() {
            continue;
        }
        tried = true;
        let Some(sig) = decode_b64(&s.sig) else {
            return Err(Invalid::Malformed("a signature is not base64".into()));
        };
        if key.verifies(&message, &sig) {
            // Only a signed payload is worth parsing.
            return Ok(Verified {
                key_id: key.key_id().to_string(),
                statement: open(envelope)?,
            });
        }
    }
    if tried {
        Err(Invalid::BadSignature {
            key_id: key.key_id().to_string(),
        })
    } else {
        Err(Invalid::WrongKey {
            expected: key.key_id().to_string(),
            found: envelope
                .signatures
                .iter()
                .map(|s| s.keyid.clone())
                .collect(),
        })
    }
}

/// DSSE lets signers use either base64 alphabet, padded or not.
fn decode_b64(text: &str) -> Option<Vec<u8>> {
    [STANDARD, URL_SAFE, STANDARD_NO_PAD, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(text).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_the_spec_example() {
        // The example of the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
    }

    #[test]
    fn an_unsealed_envelope_has_no_signatures_and_opens_to_its_payload() {
        let env = seal(b"{\"a\":1}", None);
        let json: serde_json::Value = serde_json::from_slice(&env.to_json()).unwrap();
        assert_eq!(json["payloadType"], IN_TOTO_PAYLOAD_TYPE);
        assert_eq!(json["signatures"], serde_json::json!([]));
        assert_eq!(json["payload"], "eyJhIjoxfQ==");
        assert!(!env.is_signed());
        // Not a statement: malformed, and said so.
        assert!(matches!(open(&env), Err(Invalid::Malformed(_))));
    }

    #[test]
    fn either_base64_alphabet_is_read() {
        assert_eq!(decode_b64("-_8").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(decode_b64("+/8=").unwrap(), vec![0xfb, 0xff]);
        assert!(decode_b64("not base64!").is_none());
    }
}
