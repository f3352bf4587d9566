//! `canary demo`: the whole gate on an embedded default, with nothing
//! installed. An in-process OCI registry and three reference tenants on
//! loopback; a green verify-and-promote, a red one, and a rollback, through
//! the same library calls and output as the real commands.

use std::sync::Arc;
use std::time::Duration;

use canary::settings::{NotifyFormat, NotifyTarget};
use canary::{Env, Gate, Overrides, Settings};
use canary_core::{ImageRef, Outcome, PromotionReport, Tag};
use canary_sandbox::registry::RegistryOptions;
use canary_sandbox::tenant::{TenantFault, TenantOptions, TenantServer};
use canary_sandbox::webhook::WebhookReceiver;
use canary_sandbox::Registry as SandboxRegistry;

use crate::output::{self, Progress};

const RELEASE_A: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
const RELEASE_B: &str = "b7e4c1d56e0a1b2c3d4e5f60718293a4b5c6d7e8";
const RELEASE_C: &str = "c0ffee1234567890abcdef1234567890abcdef12";
const REPOS: [&str; 2] = ["acme/platform", "acme/tenant"];
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn manifest(repo: &str, sha: &str) -> Vec<u8> {
    // A manifest as a build would push it; the fake registry stores bytes
    // and does not resolve blobs.
    let fake = |seed: &str| {
        use std::fmt::Write as _;
        let mut hex = String::new();
        for b in seed.bytes().cycle().take(32) {
            let _ = write!(hex, "{b:02x}");
        }
        format!("sha256:{hex}")
    };
    format!(
        "{{\n  \"schemaVersion\": 2,\n  \"mediaType\": \"{OCI_MANIFEST}\",\n  \"config\": {{\"mediaType\": \"application/vnd.oci.image.config.v1+json\", \"digest\": \"{}\", \"size\": 1024}},\n  \"layers\": [{{\"mediaType\": \"application/vnd.oci.image.layer.v1.tar+gzip\", \"digest\": \"{}\", \"size\": 4096}}],\n  \"annotations\": {{\"org.opencontainers.image.revision\": \"{sha}\"}}\n}}\n",
        fake(&format!("config-{repo}-{sha}")),
        fake(&format!("layer-{repo}-{sha}")),
    )
    .into_bytes()
}

fn heading(text: &str) {
    println!("\n== {text}");
}

/// Runs the demo; 0 when every scenario ended as designed.
pub(crate) async fn run(quiet: bool) -> i32 {
    match Box::pin(scenarios(quiet)).await {
        Ok(()) => {
            println!(
                "\ndemo: all seven scenarios ended as designed (promoted, rejected, rolled_back, explained by the ledger, reverted by the guard, a killed run repaired, rejected by a metric)."
            );
            0
        }
        Err(e) => {
            eprintln!("demo: {e}");
            1
        }
    }
}

async fn scenarios(quiet: bool) -> Result<(), String> {
    let registry = SandboxRegistry::start().await;
    let host = registry.host();
    let images: Vec<ImageRef> = REPOS
        .iter()
        .map(|r| ImageRef::parse(&format!("{host}/{r}")).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    for repo in REPOS {
        for sha in [RELEASE_A, RELEASE_B, RELEASE_C] {
            registry.push_manifest(
                repo,
                &format!("staging-{sha}"),
                OCI_MANIFEST,
                manifest(repo, sha),
            );
        }
        registry.push_manifest(repo, "latest", OCI_MANIFEST, manifest(repo, RELEASE_A));
    }

    let token = format!("demo-admin-{}", canary::run_id());
    let mut tenants = Vec::new();
    for _ in 0..3 {
        tenants.push(
            TenantServer::start(TenantOptions {
                token: token.clone(),
                version: RELEASE_A.to_string(),
                fault: TenantFault::None,
            })
            .await,
        );
    }
    // The demo's settings, through the same facade as every command: the
    // release's images, a quick rollout probe, and the fleet in an
    // environment of its own (no ./canary.toml, no process variables).
    let overrides = Overrides {
        images: images.iter().map(ToString::to_string).collect(),
        rollout_interval: Some("200ms".into()),
        rollout_deadline: Some("30s".into()),
        ..Overrides::default()
    };
    let urls: Vec<String> = tenants.iter().map(TenantServer::url).collect();
    let env = Env::from_pairs([
        ("CANARY_TENANT_URLS", urls.join(",")),
        (
            "CANARY_TENANT_TOKENS",
            vec![token.as_str(); urls.len()].join(","),
        ),
    ]);
    let settings = Settings::resolve(&overrides, &env, None).map_err(|e| e.to_string())?;
    let gate =
        Gate::new(settings.clone(), env.clone()).with_observer(Arc::new(Progress::new(quiet)));
    let color = output::color_enabled();
    println!(
        "canary demo: registry {host} (in-process), {} canary tenants on loopback, images {}",
        tenants.len(),
        REPOS.join(" + ")
    );
    println!("latest is release {} on both images.", &RELEASE_A[..7]);

    heading(&format!(
        "1/7 green: release {} rolls out to the canary fleet, every check passes, latest moves",
        &RELEASE_B[..7]
    ));
    let (report, ()) = tokio::join!(gate.verify(RELEASE_B, false), roll_out(&tenants, RELEASE_B));
    let report = report.map_err(|e| e.to_string())?;
    print!("{}", output::summary(&report, color));
    expect(&report, Outcome::Promoted)?;
    expect_latest(&registry, RELEASE_B)?;

    heading(&format!(
        "2/7 red: release {} breaks the memory round trip on one tenant, latest stays on {}",
        &RELEASE_C[..7],
        &RELEASE_B[..7]
    ));
    tenants[1].set_fault(TenantFault::BrokenRoundTrip);
    let (report, ()) = tokio::join!(gate.verify(RELEASE_C, false), roll_out(&tenants, RELEASE_C));
    let report = report.map_err(|e| e.to_string())?;
    print!("{}", output::summary(&report, color));
    expect(&report, Outcome::Rejected)?;
    expect_latest(&registry, RELEASE_B)?;

    heading(&format!(
        "3/7 rollback: `canary rollback {}` moves latest back to release {}",
        &RELEASE_A[..7],
        &RELEASE_A[..7]
    ));
    let report = gate
        .rollback(&RELEASE_A[..7])
        .await
        .map_err(|e| e.to_string())?;
    print!("{}", output::summary(&report, color));
    expect(&report, Outcome::RolledBack)?;
    expect_latest(&registry, RELEASE_A)?;

    heading("4/7 memory: the registry itself says why latest is latest (`canary history`, `canary status`)");
    let history = gate.history(None, 10).await.map_err(|e| e.to_string())?;
    print!("{}", canary_report::ledger::history(&history));
    let status = gate.status(50).await.map_err(|e| e.to_string())?;
    print!("{}", canary_report::status::text(&status));
    let explained = status.images.iter().all(|i| {
        i.record
            .as_ref()
            .is_some_and(|r| r.sha.as_str() == RELEASE_A)
    });
    if !explained || history.records.len() < 3 {
        return Err("the ledger does not explain latest".to_string());
    }

    guarded(&registry, &settings, &env, &tenants, quiet, color).await?;
    killed_run_repaired(&settings, &env, color).await?;
    rejected_by_a_metric(&registry, &settings, &env, &tenants, quiet, color).await
}

/// 7/7: every smoke check passes, but under traffic the canary cohort
/// answers 3% errors where the baseline answers 0.1%: the error-rate
/// metric rejects the release, and the table says why. Prometheus is a
/// stand-in answering the demo's two queries from the fleet's own request
/// counters (the demo installs nothing).
async fn rejected_by_a_metric(
    registry: &SandboxRegistry,
    settings: &Settings,
    env: &Env,
    tenants: &[TenantServer],
    quiet: bool,
    color: bool,
) -> Result<(), String> {
    use canary::settings::AnalysisSettings;
    use canary_core::analysis::{Cohorts, Metric, Rule};
    use canary_sandbox::metrics_api::MetricsApi;
    use canary_sandbox::tenant::Counters;

    heading(&format!(
        "7/7 metrics: release {} passes every smoke check, but under traffic its canary tenants answer 3% errors where production answers 0.1%; the error-rate metric rejects it",
        &RELEASE_C[..7]
    ));
    let baseline = TenantServer::start(TenantOptions {
        token: format!("demo-prod-{}", canary::run_id()),
        version: RELEASE_A.to_string(),
        fault: TenantFault::error_rate(0.001),
    })
    .await;
    // The traffic both cohorts served since the last deploy.
    for t in tenants {
        t.set_fault(TenantFault::error_rate(0.03));
    }
    let served = drive_demo_traffic(tenants, &baseline).await;
    for t in tenants {
        t.set_fault(TenantFault::None);
    }
    println!(
        "traffic: the canary tenants answered {} requests, {} with a 5xx; production {}, {} with a 5xx",
        served.0, served.1, served.2, served.3
    );
    let api = MetricsApi::start().await;
    let errors = Cohorts {
        canary: r#"sum(canary_tenant_requests_total{code=~"5..", release="canary"})"#.to_string(),
        baseline: r#"sum(canary_tenant_requests_total{code=~"5..", release="baseline"})"#
            .to_string(),
    };
    let total = Cohorts {
        canary: r#"sum(canary_tenant_requests_total{release="canary"})"#.to_string(),
        baseline: r#"sum(canary_tenant_requests_total{release="baseline"})"#.to_string(),
    };
    let cohort = |servers: Vec<Counters>, pick: fn((u64, u64)) -> u64| {
        move || {
            #[allow(clippy::cast_precision_loss)]
            let n = servers.iter().map(|t| pick(t.served())).sum::<u64>() as f64;
            n
        }
    };
    let canary: Vec<Counters> = tenants.iter().map(TenantServer::counters).collect();
    let production = vec![baseline.counters()];
    api.answer(&errors.canary, cohort(canary.clone(), |(_, e)| e));
    api.answer(&total.canary, cohort(canary, |(n, _)| n));
    api.answer(&errors.baseline, cohort(production.clone(), |(_, e)| e));
    api.answer(&total.baseline, cohort(production, |(n, _)| n));
    let mut settings = settings.clone();
    settings.analysis = Some(AnalysisSettings {
        prometheus: api.url(),
        window: Duration::ZERO,
        interval: Duration::ZERO,
        token_env: None,
        basic_env: None,
        ca_file: None,
        metrics: vec![Metric {
            name: "http-errors".to_string(),
            rule: Rule::ErrorRate {
                errors,
                total,
                max_increase: 0.01,
                max_rate: None,
            },
            min_requests: 200.0,
            confidence: 0.95,
        }],
    });
    let gate = Gate::new(settings, env.clone()).with_observer(Arc::new(Progress::new(quiet)));
    let (report, ()) = tokio::join!(gate.verify(RELEASE_C, false), roll_out(tenants, RELEASE_C));
    let report = report.map_err(|e| e.to_string())?;
    print!("{}", output::summary(&report, color));
    if let Some(a) = &report.analysis {
        print!("{}", canary_report::analysis::markdown(a));
    }
    expect(&report, Outcome::Rejected)?;
    if !report
        .tenants
        .iter()
        .all(canary_core::report::TenantReport::passed)
    {
        return Err("a smoke check failed: the metric was meant to decide".to_string());
    }
    expect_latest(registry, RELEASE_A)
}

/// Drives the demo's traffic: 400 requests to each canary tenant, 1,200 to
/// the production one. Returns (canary requests, canary errors, production
/// requests, production errors).
async fn drive_demo_traffic(
    tenants: &[TenantServer],
    baseline: &TenantServer,
) -> (u64, u64, u64, u64) {
    use canary_sandbox::metrics_api::drive_traffic;
    let mut canary = (0, 0);
    for t in tenants {
        let errors = drive_traffic(t, 400).await as u64;
        canary = (canary.0 + 400, canary.1 + errors);
    }
    let errors = drive_traffic(baseline, 1200).await as u64;
    (canary.0, canary.1, 1200, errors)
}

/// 5/7: green on the canary fleet, red in production after the move: the
/// guard moves latest back by itself, and the webhook hears both.
async fn guarded(
    registry: &SandboxRegistry,
    settings: &Settings,
    env: &Env,
    tenants: &[TenantServer],
    quiet: bool,
    color: bool,
) -> Result<(), String> {
    heading(&format!(
        "5/7 guard: release {} passes on the canary fleet and moves latest, then breaks a production tenant; `canary verify --guard` moves latest back to {} by itself",
        &RELEASE_B[..7],
        &RELEASE_A[..7]
    ));
    tenants[1].set_fault(TenantFault::None);
    let prod_token = format!("demo-prod-{}", canary::run_id());
    let mut prod = Vec::new();
    for _ in 0..2 {
        prod.push(
            TenantServer::start(TenantOptions {
                token: prod_token.clone(),
                version: RELEASE_A.to_string(),
                fault: TenantFault::None,
            })
            .await,
        );
    }
    let hook_secret = format!("demo-hook-{}", canary::run_id());
    let hook = WebhookReceiver::start(&hook_secret).await;
    let urls: Vec<String> = prod.iter().map(TenantServer::url).collect();
    let env = env.with([
        ("CANARY_PROD_URLS", urls.join(",")),
        (
            "CANARY_PROD_TOKENS",
            vec![prod_token.as_str(); prod.len()].join(","),
        ),
        ("DEMO_HOOK_URL", hook.url()),
        ("DEMO_HOOK_SECRET", hook_secret.clone()),
    ]);
    let mut settings = settings.clone();
    settings.guard.bake.value = Duration::from_secs(20);
    settings.guard.interval.value = Duration::from_millis(500);
    settings.notify = vec![NotifyTarget {
        url_env: "DEMO_HOOK_URL".into(),
        secret_env: Some("DEMO_HOOK_SECRET".into()),
        format: NotifyFormat::Json,
        on: canary::settings::default_on(),
    }];
    let gate = Gate::new(settings, env).with_observer(Arc::new(Progress::new(quiet)));
    let production = async {
        roll_out(tenants, RELEASE_B).await;
        while !hook
            .received()
            .iter()
            .any(|r| r.event() == Some("promoted"))
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Production's updaters pick the release up; a round later one
        // tenant starts answering 500.
        roll_out(&prod, RELEASE_B).await;
        tokio::time::sleep(Duration::from_millis(900)).await;
        prod[1].set_fault(TenantFault::ServerError);
    };
    let (reports, ()) = tokio::join!(gate.verify_guarded(RELEASE_B, None), production);
    let (promotion, guard) = reports.map_err(|e| e.to_string())?;
    print!("{}", output::summary(&promotion, color));
    expect(&promotion, Outcome::Promoted)?;
    let guard = guard.ok_or("the guard did not run")?;
    print!("{}", output::summary(&guard, color));
    expect(&guard, Outcome::Reverted)?;
    expect_latest(registry, RELEASE_A)?;
    let events = hook.received();
    for e in &events {
        println!(
            "webhook received `{}` (signature {})",
            e.event().unwrap_or("?"),
            if e.signature_valid {
                "valid"
            } else {
                "INVALID"
            }
        );
    }
    let names: Vec<&str> = events.iter().filter_map(|e| e.event()).collect();
    if names != ["promoted", "reverted"] || !events.iter().all(|e| e.signature_valid) {
        return Err(format!("the webhook received {names:?}"));
    }
    Ok(())
}

/// 6/7: a runner lost between two moves (a cancelled job that was killed,
/// not signalled) leaves a mixed release; the ledger shows it and `canary
/// repair` settles it.
async fn killed_run_repaired(settings: &Settings, env: &Env, color: bool) -> Result<(), String> {
    heading(&format!(
        "6/7 a runner killed mid-move: `canary promote {}` dies after its first write; `canary status` sees it, `canary repair` undoes it",
        &RELEASE_B[..7]
    ));
    // The images move together; a registry slow to write the second
    // image's tag (30 s) lets the kill land between the two moves.
    let slow = SandboxRegistry::start_with(
        RegistryOptions::default().with_slow_repository(REPOS[1], Duration::from_secs(30)),
    )
    .await;
    for repo in REPOS {
        for sha in [RELEASE_A, RELEASE_B] {
            slow.push_manifest(
                repo,
                &format!("staging-{sha}"),
                OCI_MANIFEST,
                manifest(repo, sha),
            );
        }
        slow.push_manifest(repo, "latest", OCI_MANIFEST, manifest(repo, RELEASE_A));
    }
    let mut settings = settings.clone();
    settings.images.value = REPOS
        .iter()
        .map(|r| ImageRef::parse(&format!("{}/{r}", slow.host())).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let moved = slow.tag_digest(REPOS[0], &format!("staging-{RELEASE_B}"));
    let first_move = async {
        while slow.tag_digest(REPOS[0], "latest") != moved {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let doomed = Gate::new(settings.clone(), env.clone());
    // Like SIGKILL: once the first move landed, the run is dropped where it
    // is; nothing of it runs after that.
    tokio::select! {
        report = doomed.promote(RELEASE_B, "hotfix") => {
            return Err(format!("the run finished before it could be killed: {:?}", report.map(|r| r.outcome)));
        }
        () = first_move => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => {
            return Err("the first move never landed".to_string());
        }
    }
    println!(
        "(the run was killed after moving {}; {} was not moved)",
        REPOS[0], REPOS[1]
    );
    let gate = Gate::new(settings, env.clone());
    let status = gate.status(50).await.map_err(|e| e.to_string())?;
    print!("{}", canary_report::status::text(&status));
    if !(status.mixed && status.interrupted.is_some()) {
        return Err("status did not flag the killed run".to_string());
    }
    let report = gate.repair(false).await.map_err(|e| e.to_string())?;
    print!("{}", output::summary(&report, color));
    expect(&report, Outcome::Repaired)?;
    expect_latest(&slow, RELEASE_A)?;
    let status = gate.status(50).await.map_err(|e| e.to_string())?;
    if status.mixed || status.interrupted.is_some() {
        return Err("still mixed after repair".to_string());
    }
    println!(
        "status after repair: every image on {}, nothing pending",
        &RELEASE_A[..7]
    );
    Ok(())
}

/// Tenants pick the release up one after another, as auto-updaters would.
async fn roll_out(tenants: &[TenantServer], sha: &str) {
    for t in tenants {
        tokio::time::sleep(Duration::from_millis(150)).await;
        t.set_version(sha);
    }
}

fn expect(report: &PromotionReport, outcome: Outcome) -> Result<(), String> {
    if report.outcome == outcome {
        Ok(())
    } else {
        Err(format!(
            "expected {outcome}, got {}: {}",
            report.outcome, report.reason
        ))
    }
}

fn expect_latest(registry: &SandboxRegistry, sha: &str) -> Result<(), String> {
    for repo in REPOS {
        let want = registry.tag_digest(repo, &format!("staging-{sha}"));
        let got = registry.tag_digest(
            repo,
            Tag::parse("latest").map_err(|e| e.to_string())?.as_str(),
        );
        if want.is_none() || want != got {
            return Err(format!("{repo}:latest is {got:?}, expected {want:?}"));
        }
    }
    Ok(())
}
