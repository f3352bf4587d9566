//! Each command: turn the flags into a library call, make it, print. The
//! wiring and every validation live in the `canary` facade (see
//! ARCHITECTURE.md); what is left here is the command line's own business:
//! secrets on argv, output files, and printing.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use canary::{Env, Gate, SmokeTarget};
use canary_core::{Command, PromotionReport, UsageError};
use clap::ArgMatches;

use crate::cli::{Cli, Cmd, FleetCmd, OutputArgs};
use crate::github::Github;
use crate::output::{self, Progress};

/// Runs the parsed command line; returns the exit code.
pub(crate) async fn run(cli: Cli, matches: &ArgMatches) -> i32 {
    // The innermost subcommand's (`fleet enroll`'s): global arguments
    // propagate there.
    let mut sub = matches;
    while let Some((_, m)) = sub.subcommand() {
        sub = m;
    }
    let env = Env::process();
    // In Actions mode, masks every secret in the environment before anything
    // is printed.
    let json = matches!(&cli.command, Cmd::Verify { output, .. } | Cmd::Decide { output, .. } | Cmd::Guard { output, .. } | Cmd::Promote { output, .. } | Cmd::Rollback { output, .. } | Cmd::Smoke { output, .. } | Cmd::Repair { output, .. } if output.json)
        || matches!(
            &cli.command,
            Cmd::Status { json: true, .. }
                | Cmd::Analyze { json: true }
                | Cmd::History { json: true, .. }
                | Cmd::VerifyRecord { json: true, .. }
                | Cmd::Fleet {
                    command: FleetCmd::Check { json: true, .. }
                        | FleetCmd::Enroll { json: true, .. }
                }
        );
    let github = Github::detect(cli.settings.github, json, &env.as_fn()).map(Arc::new);
    let command = command_of(&cli.command);
    // Boxed: every command's future lives in this one.
    match Box::pin(execute(cli, sub, env, github.as_ref())).await {
        Ok(code) => code,
        Err(e) => {
            output::usage_error(&e);
            let report = PromotionReport::usage(command, &e);
            if let Some(gh) = &github {
                gh.finish(&report, None, &canary_report::markdown(&report));
            }
            report.exit_code
        }
    }
}

fn command_of(cmd: &Cmd) -> Command {
    match cmd {
        Cmd::Promote { .. } => Command::Promote,
        Cmd::Rollback { .. } => Command::Rollback,
        Cmd::Smoke { .. } => Command::Smoke,
        Cmd::Repair { .. } => Command::Repair,
        Cmd::Guard { .. } => Command::Guard,
        Cmd::Fleet { .. } => Command::Fleet,
        _ => Command::Verify,
    }
}

/// How the CLI spells the library's inputs: as its flags.
fn flag(name: &str) -> String {
    format!("--{}", name.replace('_', "-"))
}

fn refuse_secrets_on_argv(cli: &Cli) -> Result<(), UsageError> {
    let s = &cli.settings;
    for (flag, given) in [
        ("--token", s.token.is_some()),
        ("--password", s.password.is_some()),
        ("--registry-password", s.registry_password.is_some()),
        ("--admin-token", s.admin_token.is_some()),
    ] {
        if given {
            return Err(UsageError::new(
                flag,
                "would put a secret on the command line, where shell history, process lists and CI logs keep it",
                "put tenant tokens in the variable named by fleet.tokens_env (or --token-env VAR / --token-file FILE for `canary smoke`), and registry credentials in CANARY_REGISTRY_USERNAME / CANARY_REGISTRY_PASSWORD",
            ));
        }
    }
    Ok(())
}

async fn execute(
    cli: Cli,
    sub: &ArgMatches,
    env: Env,
    github: Option<&Arc<Github>>,
) -> Result<i32, UsageError> {
    let signals = crate::signals::Signals::install();
    refuse_secrets_on_argv(&cli)?;
    #[cfg(feature = "demo")]
    if let Cmd::Demo = cli.command {
        return Ok(Box::pin(crate::demo::run(cli.settings.quiet)).await);
    }
    // Generated from the command line's own definition: never out of date.
    if let Cmd::Completions { shell } = &cli.command {
        let mut command = <Cli as clap::CommandFactory>::command();
        let mut script = Vec::new();
        clap_complete::generate(*shell, &mut command, "canary", &mut script);
        write_stdout(&script);
        return Ok(0);
    }
    if let Cmd::Man = &cli.command {
        let man = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command());
        let mut page = Vec::new();
        man.render(&mut page).map_err(|e| {
            UsageError::new(
                "canary man",
                format!("cannot be rendered: {e}"),
                "report this as a bug in canary",
            )
        })?;
        for sub in <Cli as clap::CommandFactory>::command().get_subcommands() {
            if sub.is_hide_set() {
                continue;
            }
            page.extend_from_slice(format!(".SH \"canary {}\"\n", sub.get_name()).as_bytes());
            clap_mangen::Man::new(sub.clone())
                .render_description_section(&mut page)
                .and_then(|()| clap_mangen::Man::new(sub.clone()).render_options_section(&mut page))
                .map_err(|e| {
                    UsageError::new(
                        "canary man",
                        format!("cannot be rendered: {e}"),
                        "report this as a bug in canary",
                    )
                })?;
        }
        write_stdout(&page);
        return Ok(0);
    }
    if let Cmd::Postmortem { report } = &cli.command {
        let report = canary::read_report(report).map_err(|e| respell_report(&e))?;
        print!("{}", canary_report::postmortem(&report));
        return Ok(0);
    }
    let mut overrides = cli.settings.overrides(sub);
    // `verify-record --image IMG[@DIGEST]` names the record's image, which
    // may carry a digest: it is this command's input, not the release's.
    let mut record_image = String::new();
    if let Cmd::VerifyRecord { public_key, .. } = &cli.command {
        record_image = match overrides.images.as_slice() {
            [_] => std::mem::take(&mut overrides.images).remove(0),
            _ => {
                return Err(UsageError::new(
                    "canary verify-record",
                    "needs exactly one --image",
                    "name the image whose record to check: --image IMG or --image IMG@sha256:…",
                ))
            }
        };
        if let Some(path) = public_key {
            overrides.public_key = Some(path.clone());
            if sub.value_source("public_key") == Some(clap::parser::ValueSource::EnvVariable) {
                overrides.from_env.push(canary::setting::PUBLIC_KEY.id);
            }
        }
    }
    if let Cmd::Guard {
        bake,
        interval,
        failures_to_revert,
        sample,
        ..
    } = &cli.command
    {
        use canary::setting;
        use clap::parser::ValueSource;
        let given = [
            (&mut overrides.guard_bake, bake, setting::GUARD_BAKE, "bake"),
            (
                &mut overrides.guard_interval,
                interval,
                setting::GUARD_INTERVAL,
                "interval",
            ),
            (
                &mut overrides.failures_to_revert,
                failures_to_revert,
                setting::FAILURES_TO_REVERT,
                "failures_to_revert",
            ),
            (
                &mut overrides.guard_sample,
                sample,
                setting::GUARD_SAMPLE,
                "sample",
            ),
        ];
        let mut from_env = Vec::new();
        for (field, value, s, arg) in given {
            field.clone_from(value);
            if value.is_some() && sub.value_source(arg) == Some(ValueSource::EnvVariable) {
                from_env.push(s.id);
            }
        }
        overrides.from_env.extend(from_env);
    }
    if let Cmd::Fleet {
        command:
            FleetCmd::Enroll {
                control_plane_url,
                control_plane_token_env,
                ..
            },
    } = &cli.command
    {
        use canary::setting;
        use clap::parser::ValueSource;
        overrides.control_plane_url.clone_from(control_plane_url);
        overrides
            .control_plane_token_env
            .clone_from(control_plane_token_env);
        for (s, arg) in [
            (setting::CONTROL_PLANE_URL, "control_plane_url"),
            (setting::CONTROL_PLANE_TOKEN_ENV, "control_plane_token_env"),
        ] {
            if sub.value_source(arg) == Some(ValueSource::EnvVariable) {
                overrides.from_env.push(s.id);
            }
        }
    }
    let mut gate = Gate::load(&overrides, cli.settings.config.as_deref(), env.clone())?
        .with_spelling(flag)
        // An Actions log keeps every line, so no live line there even when
        // the runner gives the step a terminal (act does): its redraws
        // would be noise.
        .with_observer(Arc::new(Progress::with_live(
            cli.settings.quiet,
            std::io::stderr().is_terminal() && github.is_none(),
        )))
        .with_interrupt(signals.interrupt())
        .with_clock(signals.clock());
    if let Some(gh) = github {
        gh.mask_var(&env.as_fn(), &gate.settings().tokens_env.value);
        let sink = Arc::clone(gh);
        gate = gate.with_secret_sink(Arc::new(move |s| sink.mask(s)));
    }
    if matches!(
        cli.command,
        Cmd::Verify { .. }
            | Cmd::Smoke { .. }
            | Cmd::Status { .. }
            | Cmd::Guard { .. }
            | Cmd::Fleet {
                command: FleetCmd::Check { .. }
            }
    ) {
        let wanted = gate.settings().concurrency.value;
        if let Some(allowed) = tenants_at_once(wanted)? {
            eprintln!(
                "canary: the open-files limit allows {allowed} tenants at once; checking {allowed} instead of {wanted} (raise it with `ulimit -n {}` for more)",
                (2 * wanted as u64 + OTHER_FILES).next_power_of_two()
            );
            gate = gate.cap_concurrency(allowed);
        }
    }
    match cli.command {
        Cmd::Config => {
            print!("{}", gate.settings().describe());
            Ok(0)
        }
        Cmd::Verify {
            sha,
            guard: true,
            revert_to,
            output,
            ..
        } => {
            check_output_paths(&output)?;
            let (promotion, guard) = gate.verify_guarded(&sha, revert_to.as_deref()).await?;
            match guard {
                // The promotion's summary first; the report file and the
                // exit code are the guard's, the run's last word.
                Some(guard) => {
                    print_summary(&promotion, &output, github);
                    Ok(emit(&guard, &output, github))
                }
                None => Ok(emit(&promotion, &output, github)),
            }
        }
        Cmd::Guard {
            sha,
            revert_to,
            output,
            ..
        } => {
            check_output_paths(&output)?;
            let report = gate.guard(&sha, revert_to.as_deref()).await?;
            Ok(emit(&report, &output, github))
        }
        Cmd::Verify {
            sha,
            dry_run,
            shard,
            output,
            ..
        } => {
            check_output_paths(&output)?;
            let report = match shard {
                Some(shard) => {
                    if output.report.is_none() {
                        return Err(UsageError::new(
                            "--shard",
                            "writes a partial report, and no --report FILE is given",
                            "add --report FILE (upload it for the `canary decide` job)",
                        ));
                    }
                    gate.verify_shard(&sha, &shard).await?
                }
                None => gate.verify(&sha, dry_run).await?,
            };
            Ok(emit(&report, &output, github))
        }
        Cmd::Decide {
            reports,
            sha,
            dry_run,
            output,
        } => {
            check_output_paths(&output)?;
            let report = gate.decide(sha.as_deref(), &reports, dry_run).await?;
            Ok(emit(&report, &output, github))
        }
        Cmd::Promote {
            sha,
            no_verify,
            reason,
            output,
        } => {
            check_output_paths(&output)?;
            if !no_verify {
                return Err(UsageError::new(
                    "canary promote",
                    "moves the promoted tag without running the smoke suite",
                    "confirm with --no-verify --reason \"why\", or run `canary verify --sha SHA` to promote through the gate",
                ));
            }
            let report = gate
                .promote(&sha, reason.as_deref().unwrap_or_default())
                .await?;
            Ok(emit(&report, &output, github))
        }
        Cmd::Rollback {
            sha,
            previous,
            output,
        } => {
            check_output_paths(&output)?;
            let report = match sha {
                Some(sha) if !previous => gate.rollback(&sha).await?,
                _ => gate.rollback_previous().await?,
            };
            Ok(emit(&report, &output, github))
        }
        Cmd::Repair { forward, output } => {
            check_output_paths(&output)?;
            let report = gate.repair(forward).await?;
            Ok(emit(&report, &output, github))
        }
        Cmd::History { limit, json } => {
            let history = gate.history(None, limit).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&history).unwrap_or_default()
                );
            } else {
                print!("{}", canary_report::ledger::history(&history));
            }
            Ok(history.exit_code())
        }
        Cmd::VerifyRecord { json, .. } => {
            let check = gate.verify_record(&record_image).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&check).unwrap_or_default()
                );
            } else {
                print!("{}", canary_report::ledger::record_check(&check));
            }
            Ok(check.exit_code())
        }
        Cmd::Smoke {
            tenant,
            token_env,
            token_file,
            sha,
            output,
        } => {
            check_output_paths(&output)?;
            let target = match tenant {
                Some(url) => SmokeTarget::Tenant {
                    url,
                    token_env,
                    token_file,
                },
                None => SmokeTarget::Fleet,
            };
            let report = gate.smoke(&target, sha.as_deref()).await?;
            Ok(emit(&report, &output, github))
        }
        Cmd::Status { max_scan, json } => {
            let status = gate.status(max_scan).await?;
            if json {
                print!("{}", canary_report::status::json(&status));
            } else {
                print!("{}", canary_report::status::text(&status));
            }
            if let Some(gh) = github {
                gh.finish_status(&status);
            }
            Ok(status.exit_code())
        }
        Cmd::Analyze { json } => {
            let report = gate.analyze().await?;
            if json {
                print!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                print!("{}", canary_report::analysis::text(&report));
            }
            if let Some(gh) = github {
                gh.finish_analysis(&report);
            }
            Ok(analyze_exit_code(&report))
        }
        Cmd::Fleet {
            command: FleetCmd::Check { sha, json },
        } => {
            let report = gate.fleet_check(sha.as_deref()).await?;
            output::fleet_check(&report, json, github);
            Ok(report.exit_code)
        }
        Cmd::Fleet {
            command: FleetCmd::Enroll { slug, json, .. },
        } => {
            let report = gate.fleet_enroll(&slug).await?;
            output::fleet_enroll(&report, json, github);
            Ok(report.exit_code)
        }
        Cmd::Postmortem { .. } | Cmd::Completions { .. } | Cmd::Man => {
            unreachable!("handled above")
        }
        #[cfg(feature = "demo")]
        Cmd::Demo => unreachable!("handled above"),
    }
}

/// Descriptors besides the tenants' sockets: stdio, the registry's
/// connections, report files, the runtime's own.
const OTHER_FILES: u64 = 64;

/// The fewest tenants at once worth running a fleet with.
const MIN_TENANTS_AT_ONCE: u64 = 16;

/// Each tenant in flight holds a socket or two (its connections close when
/// its suite ends). When the open-files limit, even after raising the soft
/// limit to the hard one (`main`), cannot hold `concurrency` tenants at
/// once, the run checks as many as it can hold (`Some(n)`), rather than
/// fail tenants with "Too many open files" far from the cause. Below
/// [`MIN_TENANTS_AT_ONCE`] it refuses, naming the limit and the fix.
fn tenants_at_once(concurrency: usize) -> Result<Option<usize>, UsageError> {
    let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) else {
        return Ok(None);
    };
    let needed = 2 * concurrency as u64 + OTHER_FILES;
    if soft >= needed {
        return Ok(None);
    }
    let allowed = soft.saturating_sub(OTHER_FILES) / 2;
    if allowed < MIN_TENANTS_AT_ONCE {
        return Err(UsageError::new(
            "the open-files limit",
            format!(
                "is {soft}: too low to check even {MIN_TENANTS_AT_ONCE} tenants at once (that needs about {})",
                2 * MIN_TENANTS_AT_ONCE + OTHER_FILES
            ),
            format!("raise it (`ulimit -n {}`)", needed.next_power_of_two()),
        ));
    }
    Ok(Some(usize::try_from(allowed).unwrap_or(usize::MAX)))
}

/// Writes generated text to stdout; a reader that stops early (`| head`)
/// is not an error.
fn write_stdout(bytes: &[u8]) {
    use std::io::Write as _;
    let _ = std::io::stdout().lock().write_all(bytes);
}

/// The report file of `canary postmortem` is its `--report` flag.
fn respell_report(e: &UsageError) -> UsageError {
    let input = e
        .input()
        .strip_prefix("report")
        .map_or_else(|| e.input().to_string(), |rest| format!("--report{rest}"));
    UsageError::new(input, e.problem(), e.fix())
}

fn check_output_paths(output: &OutputArgs) -> Result<(), UsageError> {
    for (flag, path) in [("--report", &output.report), ("--junit", &output.junit)] {
        let Some(path) = path else { continue };
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            return Err(UsageError::new(
                format!("{flag} `{}`", path.display()),
                "is in a directory that does not exist",
                "create the directory first, or write the file somewhere else",
            ));
        }
    }
    Ok(())
}

/// Prints the human summary of a report that is not the run's last (the
/// promotion before a guard).
fn print_summary(report: &PromotionReport, output: &OutputArgs, github: Option<&Arc<Github>>) {
    if output.json {
        return;
    }
    if let Some(gh) = github {
        gh.untrusted(&canary_report::terminal::summary(report, false));
    } else {
        print!(
            "{}",
            canary_report::terminal::summary(report, output::color_enabled())
        );
    }
}

/// Prints and writes every rendering of a report; returns its exit code.
fn emit(report: &PromotionReport, output: &OutputArgs, github: Option<&Arc<Github>>) -> i32 {
    let json = canary_report::json(report);
    if let Some(path) = &output.report {
        if let Err(e) = std::fs::write(path, &json) {
            eprintln!(
                "warning: could not write the report to {}: {e}",
                path.display()
            );
        }
    }
    if let Some(path) = &output.junit {
        if let Err(e) = std::fs::write(path, canary_report::junit(report)) {
            eprintln!("warning: could not write JUnit to {}: {e}", path.display());
        }
    }
    if output.json {
        println!("{json}");
    } else if let Some(gh) = github {
        gh.untrusted(&canary_report::terminal::summary(report, false));
    } else {
        print!(
            "{}",
            canary_report::terminal::summary(report, output::color_enabled())
        );
    }
    if let Some(gh) = github {
        let path = output.report.as_ref().map(|p| p.display().to_string());
        gh.finish(report, path.as_deref(), &canary_report::markdown(report));
    }
    report.exit_code
}

/// `canary analyze`: 0 when every metric passed, 1 when one failed or had
/// no verdict, 3 when every metric's queries failed (Prometheus itself is
/// the problem, not the release).
pub(crate) fn analyze_exit_code(report: &canary_core::analysis::AnalysisReport) -> i32 {
    use canary_core::analysis::VerdictStatus;
    if !report.verdicts.is_empty() && report.query_errors() == report.verdicts.len() {
        return 3;
    }
    match report.status() {
        VerdictStatus::Pass => 0,
        VerdictStatus::Fail | VerdictStatus::Inconclusive => 1,
    }
}
