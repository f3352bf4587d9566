//! `load_ca_bundle`: one rule for every adapter — an unreadable, empty,
//! non-PEM or damaged bundle is a usage error naming the file.

use std::path::Path;

use canary_http::load_ca_bundle;

/// A self-signed P-256 CA (`openssl req -x509 -newkey ec …`), valid until
/// 2125.
const CA: &str = include_str!("fixtures/ca.pem");

fn write(dir: &Path, name: &str, contents: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn a_valid_bundle_loads_every_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let one = write(dir.path(), "one.pem", CA);
    assert_eq!(load_ca_bundle("ca_file", &one).unwrap().len(), 1);
    // Text around the blocks (as `openssl x509 -text` leaves) is fine.
    let two = write(
        dir.path(),
        "two.pem",
        &format!("# our CAs\n{CA}\nsubject=CN = again\n{CA}"),
    );
    let certs = load_ca_bundle("ca_file", &two).unwrap();
    assert_eq!(certs.len(), 2);
    // And the certificates are usable by a client.
    let mut builder = reqwest::Client::builder();
    for c in certs {
        builder = builder.add_root_certificate(c);
    }
    builder.build().unwrap();
}

#[test]
fn an_empty_bundle_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for (name, contents) in [("empty.pem", ""), ("blank.pem", " \n\n")] {
        let path = write(dir.path(), name, contents);
        let e = load_ca_bundle("registry.ca_file", &path).unwrap_err();
        assert!(e.input().contains("registry.ca_file"), "{e}");
        assert!(e.input().contains(name), "{e}");
        assert!(e.problem().contains("no PEM certificate"), "{e}");
        assert!(e.problem().contains("empty"), "{e}");
        assert!(e.fix().contains("BEGIN CERTIFICATE"), "{e}");
    }
}

#[test]
fn a_garbage_bundle_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    // Not PEM at all: a config file, a private key.
    for (name, contents) in [
        ("garbage.pem", "not a certificate"),
        (
            "key.pem",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ),
    ] {
        let path = write(dir.path(), name, contents);
        let e = load_ca_bundle("ca_file", &path).unwrap_err();
        assert!(e.input().contains(name), "{e}");
        assert!(e.problem().contains("no PEM certificate"), "{e}");
        assert!(e.fix().contains("ca_file"), "{e}");
    }
    // A certificate block whose base64 is broken.
    let broken = write(
        dir.path(),
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n",
    );
    let e = load_ca_bundle("ca_file", &broken).unwrap_err();
    assert!(e.input().contains("broken.pem"), "{e}");
    assert!(e.problem().contains("no PEM certificate"), "{e}");
    // Valid base64, but not a certificate.
    let damaged = write(
        dir.path(),
        "damaged.pem",
        "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n",
    );
    let e = load_ca_bundle("ca_file", &damaged).unwrap_err();
    assert!(e.input().contains("damaged.pem"), "{e}");
    assert!(e.problem().contains("cannot be parsed"), "{e}");
}

#[test]
fn a_missing_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_ca_bundle("ca_file", &dir.path().join("nope.pem")).unwrap_err();
    assert!(e.input().contains("nope.pem"), "{e}");
    assert!(e.problem().contains("cannot be read"), "{e}");
}
