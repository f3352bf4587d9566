//! The release ledger read by clients canary did not write: the real
//! `canary` binary promotes on CNCF distribution 2.8 and 3.1 (no referrers
//! API: the tag-schema fallback), then `oras discover` and `regctl artifact
//! list` must list its records, `oras` fetches their DSSE envelopes, skopeo
//! and crane say what the subjects' digests are, and a Python verifier on
//! PyPI's `cryptography` checks the signatures. Another writer (`crane`)
//! moving `latest` during a rollout wait must be what the report calls
//! `before`, and a failed run must leave that writer's digest in place.

use std::process::Command;
use std::time::{Duration, Instant};

use canary_e2e::interop::{
    crane_copy, crane_digests, crane_tags, image_ref, independent_verify, openssl_key, oras_record,
    oras_referrers, records, regctl_referrers, world_on, OrasRecord, Referrer, ED25519,
    EMPTY_DIGEST, IN_TOTO_PAYLOAD, P256, RECORD_TYPE, SLSA_VSA, STATEMENT_V1,
};
use canary_e2e::{run, Run, World, NEW, OLD, REPOS};
use canary_testkit::real_registry::Distribution;
use serde_json::Value;

/// A third release, pushed by a test when it needs one.
const R3: &str = "3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c";

fn report(world: &World, name: &str) -> Value {
    let text = std::fs::read_to_string(world.dir.path().join(name))
        .unwrap_or_else(|e| panic!("report {name} not written: {e}"));
    serde_json::from_str(&text).expect("report is JSON")
}

fn json(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {r:?}"))
}

async fn canary(world: &World, args: &[&str]) -> Run {
    let mut cmd = world.canary();
    cmd.args(args);
    run(cmd).await
}

/// `(image, digest)` of every image of the release, as the statement's
/// subjects must list them.
fn release(world: &World, digests: &[String]) -> Vec<(String, String)> {
    REPOS
        .iter()
        .zip(digests)
        .map(|(r, d)| (image_ref(world, r), d.clone()))
        .collect()
}

fn digests(list: &[Referrer]) -> Vec<String> {
    let mut d: Vec<String> = list.iter().map(|r| r.digest.clone()).collect();
    d.sort();
    d
}

/// What one run left on every image's `latest` digest, read with oras and
/// regctl only; checks each record's manifest, envelope and statement, and
/// returns the outcome record of every image (same order as [`REPOS`]).
fn check_run_records(
    world: &World,
    latest: &[String],
    sha: &str,
    command: &str,
    verified: bool,
) -> Vec<OrasRecord> {
    let registry = &world.registry;
    let subjects = release(world, latest);
    let mut run_ids = Vec::new();
    let mut outcomes = Vec::new();
    for (repo, digest) in REPOS.iter().zip(latest) {
        let oras = records(&oras_referrers(registry, repo, digest));
        let regctl = records(&regctl_referrers(registry, repo, digest));
        assert!(
            !oras.is_empty(),
            "`oras discover {repo}@{digest}` lists no `{RECORD_TYPE}` artifact after `canary {command}`"
        );
        assert_eq!(
            digests(&oras),
            digests(&regctl),
            "oras and regctl list different records on {repo}@{digest}"
        );
        // Neither 2.8 nor 3.1 has the referrers API: the records are
        // listed through the referrers tag schema.
        let fallback = format!("sha256-{}", digest.trim_start_matches("sha256:"));
        assert!(
            crane_tags(registry, repo).contains(&fallback),
            "no referrers tag {fallback} in {repo}"
        );
        let of_run = |kind: &str| {
            oras.iter()
                .find(|r| {
                    r.annotation("dev.canary.record.kind") == kind
                        && r.annotation("dev.canary.command") == command
                        && r.annotation("dev.canary.sha") == sha
                })
                .unwrap_or_else(|| {
                    panic!("no {kind} record of `canary {command}` {sha} on {repo}@{digest}: {oras:#?}")
                })
                .clone()
        };
        let outcome = of_run("outcome");
        let intent = of_run("intent");
        assert_eq!(outcome.annotation("dev.canary.outcome"), "promoted");
        assert_eq!(
            outcome.annotation("dev.canary.run-id"),
            intent.annotation("dev.canary.run-id"),
            "the intent and the outcome of one run share its id"
        );
        assert!(
            outcome
                .annotation("dev.canary.time-ms")
                .parse::<u64>()
                .is_ok_and(|t| t > 0),
            "{outcome:?}"
        );
        assert!(
            outcome
                .annotation("org.opencontainers.image.created")
                .ends_with('Z'),
            "{outcome:?}"
        );
        run_ids.push(outcome.annotation("dev.canary.run-id").to_string());

        for (kind, listed) in [("intent", &intent), ("outcome", &outcome)] {
            let rec = oras_record(registry, repo, &listed.digest);
            let m = &rec.manifest;
            assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
            assert_eq!(m["subject"]["digest"], digest.as_str(), "{kind}: {m:#}");
            assert_eq!(m["config"]["digest"], EMPTY_DIGEST, "{kind}: {m:#}");
            assert_eq!(
                m["config"]["mediaType"],
                "application/vnd.oci.empty.v1+json"
            );
            assert_eq!(
                m["annotations"]["dev.canary.record.kind"], kind,
                "the listing's annotations are the manifest's: {m:#}"
            );
            assert_eq!(rec.envelope["payloadType"], IN_TOTO_PAYLOAD);
            let statement = rec.statement();
            assert_eq!(statement["_type"], STATEMENT_V1, "{statement:#}");
            assert_eq!(statement["predicateType"], SLSA_VSA, "{statement:#}");
            assert_eq!(
                rec.subjects(),
                subjects,
                "{kind} record on {repo}: the subjects must be every image of the release with \
                 the digest skopeo and crane read"
            );
            let vsa = &statement["predicate"];
            assert_eq!(
                vsa["verificationResult"],
                if verified { "PASSED" } else { "FAILED" },
                "{kind}: {vsa:#}"
            );
            let levels: Vec<&str> = vsa["verifiedLevels"]
                .as_array()
                .expect("verifiedLevels")
                .iter()
                .filter_map(Value::as_str)
                .collect();
            if verified {
                assert_eq!(levels, ["CANARY_SMOKE_PASSED"], "{vsa:#}");
            } else {
                assert!(levels.is_empty(), "{vsa:#}");
            }
            assert_eq!(
                vsa["resourceUri"],
                format!("{}:latest", image_ref(world, REPOS[0])),
                "{vsa:#}"
            );
            assert!(
                vsa["verifier"]["id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("https://canary.dev/canary@")),
                "{vsa:#}"
            );
            assert!(vsa["timeVerified"].as_str().is_some(), "{vsa:#}");
            assert_eq!(vsa["canary"]["kind"], kind, "{vsa:#}");
            assert_eq!(vsa["canary"]["sha"], sha, "{vsa:#}");
            assert_eq!(vsa["canary"]["verified"], verified, "{vsa:#}");
            if kind == "outcome" {
                outcomes.push(rec);
            }
        }
    }
    assert!(
        run_ids.windows(2).all(|w| w[0] == w[1]),
        "every image's record names the same run: {run_ids:?}"
    );
    outcomes
}

/// A verified promotion, then a manual one: after each, every image's
/// `latest` digest carries the run's intent and outcome records, as oras and
/// regctl list them and oras fetches them.
async fn records_are_readable_by_oras_and_regctl(distribution: Distribution) {
    let world = world_on(distribution, 2).await;
    let r = canary(&world, &["verify", "--sha", NEW, "--report", "verify.json"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let latest = world.latest();
    assert_eq!(latest, world.staging(NEW), "skopeo");
    assert_eq!(crane_digests(&world, "latest"), latest, "crane");
    let rep = report(&world, "verify.json");
    let ids = |rep: &Value, kind: &str| -> Vec<String> {
        rep["ledger"][kind]
            .as_array()
            .unwrap_or_else(|| panic!("report.ledger.{kind}: {rep:#}"))
            .iter()
            .map(|d| d.as_str().unwrap().to_string())
            .collect()
    };
    let outcomes = check_run_records(&world, &latest, NEW, "verify", true);
    for rec in &outcomes {
        assert_eq!(
            rec.statement()["predicate"]["canary"]["outcome"],
            "promoted"
        );
    }
    // The records the report names are the ones oras lists.
    let listed: Vec<String> = REPOS
        .iter()
        .zip(&latest)
        .flat_map(|(repo, digest)| {
            digests(&records(&oras_referrers(&world.registry, repo, digest)))
        })
        .collect();
    let named: Vec<String> = ids(&rep, "intent")
        .into_iter()
        .chain(ids(&rep, "outcome"))
        .collect();
    assert_eq!(
        named.len(),
        4,
        "an intent and an outcome per image: {rep:#}"
    );
    for id in &named {
        assert!(
            listed.contains(id),
            "the report names record {id}, which oras does not list: {listed:?}"
        );
    }

    world.push_release(R3);
    let r = canary(
        &world,
        &[
            "promote",
            "--sha",
            R3,
            "--no-verify",
            "--reason",
            "hotfix by hand",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    let latest = world.latest();
    assert_eq!(latest, world.staging(R3), "skopeo");
    assert_eq!(crane_digests(&world, "latest"), latest, "crane");
    let outcomes = check_run_records(&world, &latest, R3, "promote", false);
    for rec in &outcomes {
        let canary = &rec.statement()["predicate"]["canary"];
        assert_eq!(canary["manual_reason"], "hotfix by hand", "{canary:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_2_8_records_are_listed_by_oras_and_regctl() {
    records_are_readable_by_oras_and_regctl(Distribution::V2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_3_1_records_are_listed_by_oras_and_regctl() {
    records_are_readable_by_oras_and_regctl(Distribution::V3).await;
}

/// `canary verify-record --image IMAGE --public-key KEY [--json]`.
async fn verify_record(world: &World, image: &str, key: &std::path::Path) -> (Run, Value) {
    let mut cmd = world.canary();
    cmd.args(["verify-record", "--image", image, "--public-key"])
        .arg(key)
        .arg("--json");
    let json_run = run(cmd).await;
    let value = json(&json_run);
    let mut cmd = world.canary();
    cmd.args(["verify-record", "--image", image, "--public-key"])
        .arg(key);
    let text_run = run(cmd).await;
    assert_eq!(
        text_run.code, json_run.code,
        "text and JSON agree: {text_run:?} {json_run:?}"
    );
    (text_run, value)
}

fn said(r: &Run) -> String {
    format!("{}{}", r.stdout, r.stderr)
}

/// The outcome record on `repo`'s `latest`, fetched by oras.
fn outcome_on_latest(world: &World, repo: &str, sha: &str) -> OrasRecord {
    let digest = world.digest(repo, "latest");
    let listed = records(&oras_referrers(&world.registry, repo, &digest));
    let outcome = listed
        .iter()
        .filter(|r| {
            r.annotation("dev.canary.record.kind") == "outcome"
                && r.annotation("dev.canary.sha") == sha
        })
        .max_by_key(|r| {
            r.annotation("dev.canary.time-ms")
                .parse::<u64>()
                .unwrap_or(0)
        })
        .unwrap_or_else(|| panic!("no outcome record of {sha} on {repo}@{digest}: {listed:#?}"));
    oras_record(&world.registry, repo, &outcome.digest)
}

/// Records signed with an Ed25519 key (from `CANARY_SIGNING_KEY`) and a P-256
/// key (from `--signing-key-file`), both made by `openssl genpkey`: each
/// verifies with its own public key only, by `canary verify-record` and by
/// the independent Python verifier on the envelope oras fetched; a record
/// made without a key is refused as unsigned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_records_verify_with_their_key_only() {
    let world = World::start(1).await;
    let dir = world.dir.path();
    let ed = openssl_key(dir, "ed", ED25519);
    let ec = openssl_key(dir, "ec", P256);
    let platform = image_ref(&world, REPOS[0]);
    let tenant = image_ref(&world, REPOS[1]);

    // Ed25519, the PEM in the environment.
    let mut cmd = world.canary();
    cmd.env("CANARY_SIGNING_KEY", &ed.private_pem).args([
        "promote",
        "--sha",
        NEW,
        "--no-verify",
        "--reason",
        "signed ed25519",
    ]);
    let r = run(cmd).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!said(&r).contains("PRIVATE KEY"), "the key leaked: {r:?}");

    let (r, v) = verify_record(&world, &platform, &ed.public).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(v["valid"], true, "{v:#}");
    assert!(v["reason"].as_str().unwrap().contains(&ed.key_id), "{v:#}");
    let tenant_latest = world.digest(REPOS[1], "latest");
    let (r, _) = verify_record(&world, &format!("{tenant}@{tenant_latest}"), &ed.public).await;
    assert_eq!(r.code, 0, "{r:?}");
    let (r, v) = verify_record(&world, &platform, &ec.public).await;
    assert_eq!(r.code, 1, "another key's public key must not verify: {r:?}");
    assert_eq!(v["valid"], false, "{v:#}");
    assert!(
        said(&r).contains("wrong key") && said(&r).contains(&ed.key_id),
        "says why (signed by another key, naming it): {r:?}"
    );

    // The independent verifier, on the envelope as oras fetched it.
    let rec = outcome_on_latest(&world, REPOS[1], NEW);
    let out = independent_verify(dir, &rec.envelope_text, &ed.public);
    assert!(
        out.status.success(),
        "dsse_verify.py refused canary's Ed25519 envelope: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("verifier JSON");
    assert_eq!(verdict["keyid"], ed.key_id.as_str());
    let subjects: Vec<(String, String)> = verdict["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                format!("sha256:{}", s["digest"]["sha256"].as_str().unwrap()),
            )
        })
        .collect();
    assert_eq!(subjects, release(&world, &world.staging(NEW)));
    let out = independent_verify(dir, &rec.envelope_text, &ec.public);
    assert!(!out.status.success(), "verified with the wrong key");

    // P-256, from a key file.
    world.push_release(R3);
    let mut cmd = world.canary();
    cmd.arg("--signing-key-file").arg(&ec.private).args([
        "promote",
        "--sha",
        R3,
        "--no-verify",
        "--reason",
        "signed p-256",
    ]);
    let r = run(cmd).await;
    assert_eq!(r.code, 0, "{r:?}");
    let (r, v) = verify_record(&world, &tenant, &ec.public).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(v["reason"].as_str().unwrap().contains(&ec.key_id), "{v:#}");
    let (r, _) = verify_record(&world, &tenant, &ed.public).await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(said(&r).contains("wrong key"), "{r:?}");
    let rec = outcome_on_latest(&world, REPOS[0], R3);
    let out = independent_verify(dir, &rec.envelope_text, &ec.public);
    assert!(
        out.status.success(),
        "dsse_verify.py refused canary's P-256 envelope: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdict: Value = serde_json::from_slice(&out.stdout).expect("verifier JSON");
    assert_eq!(verdict["keyid"], ec.key_id.as_str());

    // No key: the record is still written, unsigned, and refused as such.
    let r = canary(&world, &["rollback", OLD]).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(world.latest(), world.staging(OLD));
    let (r, v) = verify_record(&world, &platform, &ed.public).await;
    assert_eq!(r.code, 1, "an unsigned record must not verify: {r:?}");
    assert_eq!(v["valid"], false, "{v:#}");
    assert!(said(&r).contains("unsigned"), "says why: {r:?}");
    let rec = outcome_on_latest(&world, REPOS[0], OLD);
    assert_eq!(rec.envelope["signatures"], serde_json::json!([]));
    let out = independent_verify(dir, &rec.envelope_text, &ed.public);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsigned"));
}

/// Waits until every tenant has been asked something: the run is past its
/// precheck (which read `latest`) and in the rollout wait.
async fn wait_for_rollout_probe(world: &World) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while world.tenants.iter().any(|t| t.requests() == 0) {
        assert!(Instant::now() < deadline, "canary never probed the tenants");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts `canary verify --sha NEW` with the tenants still on the old
/// release, so it waits for the rollout; returns once it is waiting.
async fn verify_in_rollout_wait(world: &World) -> tokio::task::JoinHandle<Run> {
    for t in &world.tenants {
        t.set_version(OLD);
    }
    let mut cmd: Command = world.canary();
    cmd.env("CANARY_ROLLOUT_DEADLINE", "90s").args([
        "verify",
        "--sha",
        NEW,
        "--report",
        "report.json",
    ]);
    let child = tokio::spawn(run(cmd));
    wait_for_rollout_probe(world).await;
    child
}

/// Finding 2: another writer (crane) moves `latest` of both images while
/// canary waits for the rollout. The report's `before` is what crane wrote
/// (read again right before the move), and so is the record's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_is_what_another_writer_put_on_latest_during_the_wait() {
    let world = World::start(2).await;
    world.push_release(R3);
    let stale = world.latest();
    let child = verify_in_rollout_wait(&world).await;
    for repo in REPOS {
        crane_copy(&world.registry, repo, &format!("staging-{R3}"), "latest");
    }
    let crane_wrote = crane_digests(&world, "latest");
    assert_eq!(crane_wrote, world.staging(R3));
    assert_ne!(crane_wrote, stale);
    for t in &world.tenants {
        t.set_version(NEW);
    }
    let r = child.await.expect("join");
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(world.latest(), world.staging(NEW));

    let rep = report(&world, "report.json");
    assert_eq!(rep["outcome"], "promoted", "{rep:#}");
    for (i, image) in rep["images"].as_array().unwrap().iter().enumerate() {
        assert_eq!(
            image["before"], crane_wrote[i],
            "`before` must be what crane wrote, not the stale {}: {image:#}",
            stale[i]
        );
        assert_eq!(image["before_read"], true, "{image:#}");
        assert_eq!(image["after"], world.staging(NEW)[i]);
    }
    for (i, repo) in REPOS.iter().enumerate() {
        let rec = outcome_on_latest(&world, repo, NEW);
        let images = &rec.statement()["predicate"]["canary"]["images"];
        assert_eq!(
            images[i]["before"],
            serde_json::json!({ "state": "at", "digest": crane_wrote[i] }),
            "the record's `before` on {repo}: {images:#}"
        );
    }
}

/// Finding 2, red: crane moves `latest` during the wait, then the move
/// fails (the second image's staging tag no longer holds the checked build,
/// so canary refuses to write it after the first image moved). The first
/// image is put back to crane's digest, never to the stale one: when the
/// run is over, `latest` is what crane wrote, on both images.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_move_leaves_the_other_writers_digest_on_latest() {
    let world = World::start(2).await;
    world.push_release(R3);
    let stale = world.latest();
    let checked = world.staging(NEW);
    let child = verify_in_rollout_wait(&world).await;
    for repo in REPOS {
        crane_copy(&world.registry, repo, &format!("staging-{R3}"), "latest");
    }
    let crane_wrote = crane_digests(&world, "latest");
    assert_ne!(crane_wrote, stale);
    // The second image's staging tag now names another build.
    crane_copy(
        &world.registry,
        REPOS[1],
        &format!("staging-{R3}"),
        &format!("staging-{NEW}"),
    );
    assert_ne!(
        world.digest(REPOS[1], &format!("staging-{NEW}")),
        checked[1]
    );
    for t in &world.tenants {
        t.set_version(NEW);
    }
    let r = child.await.expect("join");
    assert_eq!(r.code, 3, "the move fails, nothing mixed: {r:?}");

    assert_eq!(
        world.latest(),
        crane_wrote,
        "a failed run changed `latest` (skopeo): {r:?}"
    );
    assert_eq!(crane_digests(&world, "latest"), crane_wrote, "crane");
    let rep = report(&world, "report.json");
    assert_eq!(rep["outcome"], "failed", "{rep:#}");
    let images = rep["images"].as_array().unwrap();
    // Every staging manifest is fetched (and checked against what was
    // verified) before the first write, so the moved staging tag stops the
    // run with nothing written. (Image after image, the first image used
    // to move and be put back.)
    assert_eq!(images[0]["status"], "unchanged", "{rep:#}");
    assert_eq!(images[1]["status"], "unchanged", "{rep:#}");
    for (i, image) in images.iter().enumerate() {
        assert_eq!(image["before"], crane_wrote[i], "{image:#}");
        assert_eq!(image["after"], crane_wrote[i], "{image:#}");
    }
}

/// `canary history --json` lists the records newest first, and `canary
/// rollback --previous` goes back past a manual promotion to the last
/// verified release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_newest_first_and_rollback_previous_skips_a_manual_promotion() {
    let world = World::start(2).await;
    let r = canary(&world, &["verify", "--sha", NEW]).await;
    assert_eq!(r.code, 0, "{r:?}");
    world.push_release(R3);
    let r = canary(
        &world,
        &["promote", "--sha", R3, "--no-verify", "--reason", "hotfix"],
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(world.latest(), world.staging(R3));

    let newest_first = |records: &[Value]| {
        let times: Vec<u64> = records
            .iter()
            .map(|r| r["time_ms"].as_u64().expect("time_ms"))
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] >= w[1]),
            "history is not newest first: {times:?}"
        );
    };
    let r = canary(&world, &["history", "--json"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let h = json(&r);
    let list = h["records"].as_array().expect("records").clone();
    newest_first(&list);
    assert_eq!(list[0]["command"], "promote", "{h:#}");
    assert_eq!(list[0]["sha"], R3);
    assert_eq!(list[0]["kind"], "outcome");
    assert_eq!(list[0]["verified"], false);
    assert!(
        list.iter()
            .any(|r| r["command"] == "verify" && r["sha"] == NEW && r["verified"] == true),
        "the verified promotion is in the history: {h:#}"
    );
    let r = canary(&world, &["history", "--json", "--limit", "1"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(json(&r)["records"].as_array().unwrap().len(), 1);
    let r = canary(&world, &["history"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("promote") && r.stdout.contains("verify"),
        "{r:?}"
    );

    let r = canary(
        &world,
        &["rollback", "--previous", "--report", "rollback.json"],
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        world.latest(),
        world.staging(NEW),
        "rollback --previous must go to the last verified release"
    );
    assert_eq!(report(&world, "rollback.json")["sha"], NEW);

    let r = canary(&world, &["history", "--json"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let h = json(&r);
    let list = h["records"].as_array().expect("records").clone();
    newest_first(&list);
    assert_eq!(list[0]["command"], "rollback", "{h:#}");
    assert_eq!(list[0]["sha"], NEW);
    assert_eq!(list[0]["outcome"], "rolled_back");
    let pos = |command: &str| {
        list.iter()
            .position(|r| r["command"] == command && r["kind"] == "outcome")
            .unwrap_or_else(|| panic!("no {command} outcome in {h:#}"))
    };
    assert!(
        pos("rollback") < pos("promote") && pos("promote") < pos("verify"),
        "{h:#}"
    );
}
