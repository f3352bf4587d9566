//! Docker config `credHelpers` and `credsStore`, with a real helper program
//! on `PATH`. One test in its own binary: it changes `PATH` for the process.

use std::os::unix::fs::PermissionsExt as _;

use base64::Engine as _;
use canary_core::{ErrorKind, ImageRef, Reference, Registry, Tag};
use canary_registry::{Credentials, OciRegistry, RegistryOptions, RetryPolicy};
use wiremock::matchers::{any, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const HELPER_SECRET: &str = "helper-pw-3c2b1a";

fn write_helper(dir: &std::path::Path, name: &str, known: &str) {
    let script = format!(
        "#!/bin/sh\nread -r server\nif [ \"$server\" = \"{known}\" ]; then\n  \
         printf '{{\"ServerURL\":\"%s\",\"Username\":\"helper-user\",\"Secret\":\"{HELPER_SECRET}\"}}' \"$server\"\n\
         else\n  echo 'credentials not found in native keychain'\n  exit 1\nfi\n"
    );
    let path = dir.join(format!("docker-credential-{name}"));
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn write_failing_helper(dir: &std::path::Path, name: &str) {
    let path = dir.join(format!("docker-credential-{name}"));
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nread -r server\necho 'keychain locked, secret {HELPER_SECRET}'\nexit 1\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn cred_helpers_and_creds_store_are_used_and_failures_do_not_leak() {
    let server = MockServer::start().await;
    let host = server.address().to_string();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("helper-user:{HELPER_SECRET}"))
    );
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(
            ResponseTemplate::new(401).insert_header("WWW-Authenticate", r#"Basic realm="wm""#),
        )
        .mount(&server)
        .await;
    Mock::given(method("HEAD"))
        .and(header("Authorization", basic.as_str()))
        .respond_with(ResponseTemplate::new(404))
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(599))
        .with_priority(u8::MAX)
        .expect(0)
        .mount(&server)
        .await;

    let bin = tempfile::tempdir().unwrap();
    write_helper(bin.path(), "canaryhelper", &host);
    write_helper(bin.path(), "canarystore", &host);
    write_failing_helper(bin.path(), "canarybroken");
    let old_path = std::env::var("PATH").unwrap_or_default();
    std::env::set_var("PATH", format!("{}:{old_path}", bin.path().display()));

    let image = ImageRef::parse(&format!("{host}/acme/app")).unwrap();
    let reference = Reference::Tag(Tag::parse("latest").unwrap());
    let configs = [
        serde_json::json!({"credHelpers": {host.clone(): "canaryhelper"}}),
        serde_json::json!({"credsStore": "canarystore"}),
    ];
    for config in configs {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        let dir_str = dir.path().to_str().unwrap().to_string();
        let credentials =
            Credentials::from_env(|name| (name == "DOCKER_CONFIG").then(|| dir_str.clone()))
                .unwrap();
        let client = OciRegistry::new(RegistryOptions {
            credentials,
            retry: RetryPolicy::none(),
            ..RegistryOptions::default()
        })
        .unwrap();
        assert_eq!(
            client.head_manifest(&image, &reference).await.unwrap(),
            None,
            "{config}"
        );
    }

    // A helper that fails: an error that names the helper, not its output.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::json!({"credHelpers": {host.clone(): "canarybroken"}}).to_string(),
    )
    .unwrap();
    let client = OciRegistry::new(RegistryOptions {
        credentials: Credentials::docker_config(dir.path().join("config.json")),
        retry: RetryPolicy::none(),
        ..RegistryOptions::default()
    })
    .unwrap();
    let err = client.head_manifest(&image, &reference).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized);
    assert!(
        err.message().contains("docker-credential-canarybroken"),
        "{}",
        err.chain()
    );
    assert!(!format!("{}{err:?}", err.chain()).contains(HELPER_SECRET));

    // Issue 14, finding 7: a credsStore whose helper is not installed, and
    // a config that is not JSON, surfaced as "requires credentials … none
    // were found". Each is named.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::json!({"credsStore": "canarymissing"}).to_string(),
    )
    .unwrap();
    let client = OciRegistry::new(RegistryOptions {
        credentials: Credentials::docker_config(dir.path().join("config.json")),
        retry: RetryPolicy::none(),
        ..RegistryOptions::default()
    })
    .unwrap();
    let err = client.head_manifest(&image, &reference).await.unwrap_err();
    assert!(
        err.message().contains("docker-credential-canarymissing")
            && err.message().contains("could not be run"),
        "{}",
        err.chain()
    );
    std::fs::write(
        dir.path().join("config.json"),
        "{\n  \"auths\": {\n    \"x\": {\"auth\": \"abc\"},\n  }\n}\n",
    )
    .unwrap();
    let client = OciRegistry::new(RegistryOptions {
        credentials: Credentials::docker_config(dir.path().join("config.json")),
        retry: RetryPolicy::none(),
        ..RegistryOptions::default()
    })
    .unwrap();
    let err = client.head_manifest(&image, &reference).await.unwrap_err();
    assert!(
        err.message().contains("config.json") && err.message().contains("is not valid JSON"),
        "{}",
        err.chain()
    );
    assert!(err.message().contains("line 4"), "{}", err.chain());
    std::env::set_var("PATH", old_path);
}
