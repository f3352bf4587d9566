//! The command line, as clap sees it.

use std::path::PathBuf;

use canary::{setting, Overrides, Setting};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Parser, Subcommand};

/// canary: a release gate for container images.
///
/// A build is pushed as `:staging-<sha>` only. A small canary fleet of
/// tenants picks it up; canary waits until every canary tenant runs the sha,
/// runs a smoke suite against each, and only if all of it is green moves
/// `:latest` to the exact same manifest, for every image of the release,
/// and verifies the digests. When it is red, `:latest` stays put and the
/// report says why.
///
/// Exit codes: 0 promoted/rolled back/passed/skipped/repaired, 1 rejected
/// or inconclusive, 2 bad input or config (nothing was sent), 3 registry or
/// transport failure (`latest` unchanged or restored), 4 inconsistent (images
/// on different releases; the report lists every image's digest), 5
/// interrupted by a signal (what moved was put back, or verified).
///
/// Every move is recorded in the registry itself (the release ledger):
/// `canary status` says why `latest` is `latest`, `canary history` lists the
/// records, `canary repair` settles a run that was killed mid-move.
///
/// Settings come from flags, then environment variables, then `canary.toml`
/// (in the working directory, or --config), then defaults; `canary config`
/// shows the result. Secrets are read from environment variables or files
/// only, never from the command line.
#[derive(Debug, Parser)]
#[command(
    name = "canary",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) settings: SettingsArgs,

    #[command(subcommand)]
    pub(crate) command: Cmd,
}

/// Settings shared by every command (see `canary config`).
#[derive(Debug, Args)]
#[command(next_help_heading = "Settings")]
pub(crate) struct SettingsArgs {
    /// Config file [default: ./canary.toml when present]
    #[arg(long, global = true, env = setting::CONFIG.env, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// An image of the release, e.g. ghcr.io/acme/platform; repeat or
    /// comma-separate for several (moved together) [file: release.images]
    #[arg(
        long = "image",
        global = true,
        env = setting::IMAGES.env,
        value_delimiter = ',',
        value_name = "REPO"
    )]
    pub(crate) images: Vec<String>,

    /// Staging tag template [file: release.staging_tag] [default: staging-{sha}]
    #[arg(
        long,
        global = true,
        env = setting::STAGING_TAG.env,
        value_name = "TEMPLATE"
    )]
    pub(crate) staging_tag: Option<String>,

    /// Promoted tag template [file: release.promoted_tag] [default: latest]
    #[arg(
        long,
        global = true,
        env = setting::PROMOTED_TAG.env,
        value_name = "TEMPLATE"
    )]
    pub(crate) promoted_tag: Option<String>,

    /// Variable holding the canary tenant URLs [file: fleet.urls_env]
    /// [default: CANARY_TENANT_URLS]
    #[arg(long, global = true, env = setting::URLS_ENV.env, value_name = "VAR")]
    pub(crate) urls_env: Option<String>,

    /// Variable holding the tenant admin tokens, same order as the URLs
    /// [file: fleet.tokens_env] [default: CANARY_TENANT_TOKENS]
    #[arg(long, global = true, env = setting::TOKENS_ENV.env, value_name = "VAR")]
    pub(crate) tokens_env: Option<String>,

    /// File with the tenant URLs, one per line (instead of the variable; a
    /// fleet too large for one environment string) [file: fleet.urls_file]
    #[arg(long, global = true, env = setting::URLS_FILE.env, value_name = "FILE")]
    pub(crate) urls_file: Option<PathBuf>,

    /// File with the tenant admin tokens, same order as the URLs [file:
    /// fleet.tokens_file]
    #[arg(long, global = true, env = setting::TOKENS_FILE.env, value_name = "FILE")]
    pub(crate) tokens_file: Option<PathBuf>,

    /// What an empty canary fleet means [file: fleet.on_empty] [default: skip]
    #[arg(
        long,
        global = true,
        env = setting::ON_EMPTY_FLEET.env,
        value_name = "skip|fail"
    )]
    pub(crate) on_empty_fleet: Option<String>,

    /// Built-in smoke suite, or a suite file (a path ending in .toml)
    /// [file: suite.builtin] [default: workspace-server]
    #[arg(
        long,
        global = true,
        env = setting::SUITE.env,
        value_name = "NAME",
        conflicts_with = "suite_file"
    )]
    pub(crate) suite: Option<String>,

    /// Smoke suite file (TOML) [file: suite.file]
    #[arg(long, global = true, env = setting::SUITE_FILE.env, value_name = "FILE")]
    pub(crate) suite_file: Option<PathBuf>,

    /// Tenants checked at once (lowered to what the open-files limit holds)
    /// [file: suite.concurrency] [default: 1024]
    #[arg(long, global = true, env = setting::CONCURRENCY.env, value_name = "N")]
    pub(crate) concurrency: Option<String>,

    /// The most one tenant's whole suite may take; checks not started by
    /// then are not run [file: suite.tenant_deadline] [default: 5m]
    #[arg(long, global = true, env = setting::TENANT_DEADLINE.env, value_name = "DURATION")]
    pub(crate) tenant_deadline: Option<String>,

    /// Poll every tenant until it runs the sha before verifying
    /// [file: rollout.probe] [default: on]
    #[arg(long, global = true, env = setting::WAIT_FOR_ROLLOUT.env, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) wait_for_rollout: Option<String>,

    /// Give up waiting for rollout after this long [file: rollout.deadline] [default: 15m]
    #[arg(
        long,
        global = true,
        env = setting::ROLLOUT_DEADLINE.env,
        value_name = "DURATION"
    )]
    pub(crate) rollout_deadline: Option<String>,

    /// Time between rollout probes [file: rollout.interval] [default: 10s]
    #[arg(
        long,
        global = true,
        env = setting::ROLLOUT_INTERVAL.env,
        value_name = "DURATION"
    )]
    pub(crate) rollout_interval: Option<String>,

    /// Wait a fixed time instead of probing, e.g. 6m [file: rollout.wait]
    #[arg(long, global = true, env = setting::WAIT.env, value_name = "DURATION")]
    pub(crate) wait: Option<String>,

    /// Registry host allowed over plain HTTP (loopback always is); repeatable
    /// [file: registry.insecure]
    #[arg(
        long = "insecure-registry",
        global = true,
        env = setting::INSECURE.env,
        value_delimiter = ',',
        value_name = "HOST"
    )]
    pub(crate) insecure: Vec<String>,

    /// Extra CA bundle (PEM) for registries and tenants [file: registry.ca_file]
    #[arg(long, global = true, env = setting::CA_FILE.env, value_name = "FILE")]
    pub(crate) ca_file: Option<PathBuf>,

    /// Timeout of one registry request [file: registry.timeout] [default: 30s]
    #[arg(long, global = true, env = setting::REGISTRY_TIMEOUT.env, value_name = "DURATION")]
    pub(crate) registry_timeout: Option<String>,

    /// Attempts per registry request, the first included (1: no retries)
    /// [file: registry.attempts] [default: 4]
    #[arg(long, global = true, env = setting::REGISTRY_ATTEMPTS.env, value_name = "N")]
    pub(crate) registry_attempts: Option<String>,

    /// Keep the release ledger in the registry: an intent record before
    /// every move, an outcome record after [file: ledger.enabled] [default: true]
    #[arg(long, global = true, env = setting::LEDGER.env, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) ledger: Option<String>,

    /// File holding the key that signs ledger records (PKCS#8 PEM, Ed25519 or
    /// ECDSA P-256); or the PEM in CANARY_SIGNING_KEY [file: ledger.signing_key_file]
    #[arg(long, global = true, env = setting::SIGNING_KEY_FILE.env, value_name = "FILE")]
    pub(crate) signing_key_file: Option<PathBuf>,

    /// Force GitHub Actions mode (masks, annotations, outputs, step summary);
    /// on by default when GITHUB_ACTIONS=true
    #[arg(long, global = true)]
    pub(crate) github: bool,

    /// No progress lines on stderr
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,

    // Traps: secrets on the command line end up in shell history and process
    // lists. These exist only to refuse them with a useful message.
    #[arg(long, global = true, hide = true, value_name = "SECRET")]
    pub(crate) token: Option<String>,
    #[arg(long, global = true, hide = true, value_name = "SECRET")]
    pub(crate) password: Option<String>,
    #[arg(long, global = true, hide = true, value_name = "SECRET")]
    pub(crate) registry_password: Option<String>,
    #[arg(long, global = true, hide = true, value_name = "SECRET")]
    pub(crate) admin_token: Option<String>,
}

impl SettingsArgs {
    /// The settings given on the command line (or, through clap's `env`,
    /// in their variables), for the library to layer over the file.
    /// `matches` are the subcommand's (global arguments propagate there).
    pub(crate) fn overrides(&self, matches: &ArgMatches) -> Overrides {
        let from_env = [
            setting::IMAGES,
            setting::STAGING_TAG,
            setting::PROMOTED_TAG,
            setting::URLS_ENV,
            setting::TOKENS_ENV,
            setting::ON_EMPTY_FLEET,
            setting::SUITE,
            setting::SUITE_FILE,
            setting::CONCURRENCY,
            setting::WAIT_FOR_ROLLOUT,
            setting::ROLLOUT_DEADLINE,
            setting::ROLLOUT_INTERVAL,
            setting::WAIT,
            setting::INSECURE,
            setting::CA_FILE,
            setting::URLS_FILE,
            setting::TOKENS_FILE,
            setting::LEDGER,
            setting::SIGNING_KEY_FILE,
        ]
        .into_iter()
        .filter(|s: &Setting| matches.value_source(s.id) == Some(ValueSource::EnvVariable))
        .map(|s| s.id)
        .collect();
        Overrides {
            images: self.images.clone(),
            staging_tag: self.staging_tag.clone(),
            promoted_tag: self.promoted_tag.clone(),
            urls_env: self.urls_env.clone(),
            tokens_env: self.tokens_env.clone(),
            on_empty_fleet: self.on_empty_fleet.clone(),
            suite: self.suite.clone(),
            suite_file: self.suite_file.clone(),
            concurrency: self.concurrency.clone(),
            tenant_deadline: self.tenant_deadline.clone(),
            wait_for_rollout: self.wait_for_rollout.clone(),
            rollout_deadline: self.rollout_deadline.clone(),
            rollout_interval: self.rollout_interval.clone(),
            wait: self.wait.clone(),
            insecure: self.insecure.clone(),
            ca_file: self.ca_file.clone(),
            registry_timeout: self.registry_timeout.clone(),
            registry_attempts: self.registry_attempts.clone(),
            urls_file: self.urls_file.clone(),
            tokens_file: self.tokens_file.clone(),
            ledger: self.ledger.clone(),
            signing_key_file: self.signing_key_file.clone(),
            public_key: None,
            guard_bake: None,
            guard_interval: None,
            failures_to_revert: None,
            guard_sample: None,
            control_plane_url: None,
            control_plane_token_env: None,
            from_env,
        }
    }
}

/// Where a run's report goes.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Output")]
pub(crate) struct OutputArgs {
    /// Print the JSON report on stdout instead of the human summary
    #[arg(long)]
    pub(crate) json: bool,

    /// Also write the JSON report to FILE
    #[arg(long, value_name = "FILE")]
    pub(crate) report: Option<PathBuf>,

    /// Also write JUnit XML (one test case per tenant × check) to FILE
    #[arg(long, value_name = "FILE")]
    pub(crate) junit: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Cmd {
    /// Verify a release on the canary fleet and promote it when every check
    /// passes
    Verify {
        /// The release's commit sha (7–40 hex; a short sha is resolved
        /// through the staging tags)
        #[arg(long, env = "CANARY_SHA")]
        sha: String,
        /// Do everything but the move, and say what would move
        #[arg(long)]
        dry_run: bool,
        /// Check only shard K of N (round-robin over the fleet), move
        /// nothing, and write a partial report for `canary decide` (needs
        /// --report)
        #[arg(long, value_name = "K/N", conflicts_with = "dry_run")]
        shard: Option<String>,
        /// Once promoted, guard the release in production (settings: the guard section) and
        /// move latest back by itself if production turns red
        #[arg(long, conflicts_with_all = ["dry_run", "shard"])]
        guard: bool,
        /// With --guard: the release to revert to (default: the previous
        /// release, from the ledger)
        #[arg(long, value_name = "SHA", requires = "guard")]
        revert_to: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Watch production run a promoted release and move latest back by
    /// itself when it turns red
    Guard {
        /// The release to guard (it must be latest)
        #[arg(long, env = "CANARY_SHA")]
        sha: String,
        /// How long production is watched once it runs the release
        /// [file: guard.bake] [default: 10m]
        #[arg(long, env = setting::GUARD_BAKE.env, value_name = "DURATION")]
        bake: Option<String>,
        /// Time between rounds [file: guard.interval] [default: 1m]
        #[arg(long, env = setting::GUARD_INTERVAL.env, value_name = "DURATION")]
        interval: Option<String>,
        /// Red rounds in a row that move latest back
        /// [file: guard.failures_to_revert] [default: 2]
        #[arg(long, env = setting::FAILURES_TO_REVERT.env, value_name = "N")]
        failures_to_revert: Option<String>,
        /// Watch only N production tenants, spread over the list
        /// [file: guard.sample] [default: all]
        #[arg(long, env = setting::GUARD_SAMPLE.env, value_name = "N")]
        sample: Option<String>,
        /// The release to revert to (default: the previous release, from
        /// the ledger)
        #[arg(long, value_name = "SHA")]
        revert_to: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Merge the partial reports of `verify --shard` jobs and promote when
    /// every shard is green, as one unsharded verify would
    Decide {
        /// The directory holding every shard's --report file (searched
        /// recursively for *.json)
        #[arg(long, value_name = "DIR")]
        reports: PathBuf,
        /// The release's sha; the reports must all be for it (default: the
        /// reports' sha)
        #[arg(long)]
        sha: Option<String>,
        /// Do everything but the move, and say what would move
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Move the promoted tag without verification; needs --no-verify and a
    /// --reason
    Promote {
        /// The release's commit sha
        #[arg(long, env = "CANARY_SHA")]
        sha: String,
        /// Confirm that no smoke suite runs
        #[arg(long)]
        no_verify: bool,
        /// Why the gate is bypassed; recorded in the report
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Move the promoted tag back to an earlier release's staging image,
    /// after checking it exists for every image
    Rollback {
        /// The sha to go back to (short or full)
        #[arg(required_unless_present = "previous", conflicts_with = "previous")]
        sha: Option<String>,
        /// Go back to the last release the ledger says was verified and
        /// promoted before the current one
        #[arg(long)]
        previous: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Settle a promotion a killed run left unfinished (read from the
    /// ledger): put every image back where it was, or finish the move
    Repair {
        /// Finish the move instead (only a verified or manual promotion)
        #[arg(long)]
        forward: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// List the ledger records of an image (the first --image of the
    /// release), newest first
    History {
        /// At most this many records
        #[arg(long, default_value_t = 20, value_name = "N")]
        limit: usize,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Check the signature of the ledger record behind an image's digest
    /// with a public key: --image IMG or IMG@sha256:… (the promoted tag's digest
    /// when none is given)
    VerifyRecord {
        /// The public key (PEM) [file: ledger.public_key_file]
        #[arg(long, env = setting::PUBLIC_KEY.env, value_name = "FILE")]
        public_key: Option<PathBuf>,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Run the smoke suite only (no registry): the configured fleet, or one
    /// tenant
    Smoke {
        /// One tenant's base URL instead of the fleet
        #[arg(long, value_name = "URL")]
        tenant: Option<String>,
        /// Variable holding that tenant's admin token
        #[arg(
            long,
            value_name = "VAR",
            requires = "tenant",
            conflicts_with = "token_file"
        )]
        token_env: Option<String>,
        /// File holding that tenant's admin token
        #[arg(long, value_name = "FILE", requires = "tenant")]
        token_file: Option<PathBuf>,
        /// The sha for `{{sha}}` in the suite
        #[arg(long)]
        sha: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show where the promoted tag points for every image, which staging tag
    /// that is, and what every canary tenant runs
    Status {
        /// Read at most this many staging tags per image
        #[arg(long, default_value_t = 200, value_name = "N")]
        max_scan: usize,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Read and judge every metric of the analysis section once, canary cohort against
    /// baseline, and change nothing: for tuning queries and bounds
    Analyze {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Write a Markdown post-mortem skeleton from a JSON report
    Postmortem {
        /// A report written by --report or --json
        #[arg(long, value_name = "FILE")]
        report: PathBuf,
    },
    /// Keep the canary fleet: check every tenant, or make an org a canary
    /// org on the control plane
    Fleet {
        #[command(subcommand)]
        command: FleetCmd,
    },
    /// Show the effective settings and where each comes from
    Config,
    /// Print a shell completion script (e.g. `canary completions bash >
    /// /etc/bash_completion.d/canary`)
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `canary man > canary.1`
    Man,
    /// Run a green promotion, a red one and a rollback against an
    /// in-process registry and tenant fleet; needs nothing installed
    #[cfg(feature = "demo")]
    Demo,
}

/// `canary fleet …`.
#[derive(Debug, Subcommand)]
pub(crate) enum FleetCmd {
    /// Check every canary tenant: reachable, takes the token in its position
    /// of the token list and refuses a request without one (the rollout
    /// probe's request), what it runs, how fast it answers. A token refused
    /// by its tenant but taken by another is named as misaligned.
    ///
    /// Exit codes: 0 every tenant healthy, 1 at least one is not, 2 bad input
    /// (the lists do not parse or align, or are empty), 3 no tenant answered.
    Check {
        /// The release every tenant should run (7–40 hex); a tenant on
        /// another version is unhealthy. Without it, versions are shown,
        /// not judged
        #[arg(long, env = "CANARY_SHA")]
        sha: Option<String>,
        /// Print the JSON report instead of the table
        #[arg(long)]
        json: bool,
    },
    /// Make an org a canary org on the control plane (`POST
    /// /cp/admin/orgs/SLUG/canary`), then print what is left: provisioning,
    /// and the two secrets to append its URL and admin token to, in the
    /// same position.
    ///
    /// Exit codes: 0 enrolled or already canary, 1 refused (already
    /// provisioned, not found, unauthorized; nothing changed), 2 bad input,
    /// 3 no answer from the control plane.
    Enroll {
        /// The org's slug, as the control plane names it
        slug: String,
        /// The control plane's base URL [file: control_plane.url]
        #[arg(long, env = setting::CONTROL_PLANE_URL.env, value_name = "URL")]
        control_plane_url: Option<String>,
        /// Variable holding the control plane's admin token [file:
        /// control_plane.token_env] [default: MOLECULE_STAGING_CP_SHARED_SECRET]
        #[arg(long, env = setting::CONTROL_PLANE_TOKEN_ENV.env, value_name = "VAR")]
        control_plane_token_env: Option<String>,
        /// Print the JSON report instead of text
        #[arg(long)]
        json: bool,
    },
}
