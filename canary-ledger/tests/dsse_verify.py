#!/usr/bin/env python3
"""An independent DSSE verifier for canary's records.

Written against the DSSE and in-toto specifications with PyPI's
`cryptography`, sharing no code with canary: it computes the PAE itself,
checks the signature with the public key, then checks that the payload is
an in-toto Statement v1 with a SLSA VSA predicate.

Usage: dsse_verify.py ENVELOPE.json PUBLIC_KEY.pem
Exit 0 when a signature by the key verifies, 1 otherwise (reason on stderr).
"""

import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519


def pae(payload_type: bytes, payload: bytes) -> bytes:
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type, len(payload), payload)


def b64(text: str) -> bytes:
    # DSSE allows either alphabet, padded or not.
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def fail(reason: str) -> None:
    print(f"invalid: {reason}", file=sys.stderr)
    sys.exit(1)


def main() -> None:
    envelope_path, key_path = sys.argv[1], sys.argv[2]
    with open(envelope_path, "rb") as f:
        envelope = json.load(f)
    with open(key_path, "rb") as f:
        key = serialization.load_pem_public_key(f.read())
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    keyid = hashlib.sha256(spki).hexdigest()

    payload_type = envelope["payloadType"]
    payload = b64(envelope["payload"])
    message = pae(payload_type.encode(), payload)
    signatures = envelope.get("signatures") or []
    if not signatures:
        fail("unsigned")

    verified = False
    for s in signatures:
        if s.get("keyid") and s["keyid"] != keyid:
            continue
        sig = b64(s["sig"])
        try:
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(sig, message)
            elif isinstance(key, ec.EllipticCurvePublicKey):
                if key.curve.name != "secp256r1":
                    fail(f"unexpected curve {key.curve.name}")
                key.verify(sig, message, ec.ECDSA(hashes.SHA256()))
            else:
                fail(f"unsupported key type {type(key).__name__}")
            verified = True
            break
        except InvalidSignature:
            continue
    if not verified:
        fail("no signature by this key verifies")

    if payload_type != "application/vnd.in-toto+json":
        fail(f"payloadType {payload_type}")
    statement = json.loads(payload)
    if statement.get("_type") != "https://in-toto.io/Statement/v1":
        fail("not an in-toto Statement v1")
    if statement.get("predicateType") != "https://slsa.dev/verification_summary/v1":
        fail("not a SLSA VSA v1")
    for subject in statement["subject"]:
        if not subject["name"] or not subject["digest"].get("sha256"):
            fail(f"subject without a name or sha256: {subject}")
    print(json.dumps({"keyid": keyid, "subjects": statement["subject"]}))


if __name__ == "__main__":
    main()
