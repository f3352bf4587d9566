//! `Digest::parse` accepts exactly `sha256:<64 lowercase hex>` and
//! `sha512:<128 lowercase hex>`; a parsed digest's hex length matches its
//! algorithm, it prints back as the input, and hashing with its algorithm
//! agrees with `matches`.
#![no_main]

use canary_core::types::Algorithm;
use canary_core::Digest;
use libfuzzer_sys::fuzz_target;

fn hex_len(algorithm: &str) -> Option<usize> {
    match algorithm {
        "sha256" => Some(64),
        "sha512" => Some(128),
        _ => None,
    }
}

fn reference(s: &str) -> bool {
    let Some(colon) = s.find(':') else {
        return false;
    };
    let (algorithm, hex) = (&s[..colon], &s[colon + 1..]);
    hex_len(algorithm) == Some(hex.len()) && hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let parsed = Digest::parse(&s);
    assert_eq!(parsed.is_ok(), reference(&s), "{s:?}: {parsed:?}");
    match parsed {
        Ok(d) => {
            let name = d.algorithm().name();
            assert_eq!(Some(d.hex().len()), hex_len(name), "{d:?}");
            assert_eq!(
                d.algorithm(),
                if name == "sha256" {
                    Algorithm::Sha256
                } else {
                    Algorithm::Sha512
                }
            );
            assert_eq!(d.to_string(), s);
            assert!(d.to_string().starts_with(&d.short()));
            assert_eq!(Digest::parse(&d.to_string()).unwrap(), d);
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
            // The bytes that hash to it are (almost surely) not the fuzz
            // input; what must hold is that its own computation agrees.
            let computed = d.compute_like(data);
            assert_eq!(computed.algorithm(), d.algorithm());
            assert!(computed.matches(data));
            assert_eq!(d.matches(data), computed == d);
        }
        Err(e) => {
            assert!(e.input().starts_with("digest `"), "{e:?}");
            assert!(!e.problem().is_empty() && !e.fix().is_empty(), "{e:?}");
        }
    }
    // Whatever the input, a digest computed over it is well formed.
    let own = Digest::sha256_of(data);
    assert_eq!(Digest::parse(&own.to_string()).unwrap(), own);
});
