//! GitHub Actions mode, through `canary-gha`: masks first, then per-tenant
//! groups, annotations, outputs and the step summary.

use std::io::Stdout;
use std::sync::Mutex;

use canary_core::{PromotionReport, Secret, Tenant};
use canary_gha::{Commands, GithubEnv};

/// Environment variables that hold secrets canary may read, masked before
/// anything is printed.
const SECRET_VARS: [&str; 4] = [
    "GITHUB_TOKEN",
    "CANARY_REGISTRY_PASSWORD",
    "CANARY_REGISTRY_TOKEN",
    "CANARY_TENANT_TOKENS",
];

/// GitHub Actions mode: on with `--github` or `GITHUB_ACTIONS=true`.
pub(crate) struct Github {
    env: GithubEnv,
    commands: Mutex<Commands<Stdout>>,
}

impl Github {
    /// Detects Actions mode and masks every secret the environment holds
    /// (each token of a token list separately) before anything else is
    /// printed.
    pub(crate) fn detect(forced: bool, env: &dyn Fn(&str) -> Option<String>) -> Option<Self> {
        let gh = GithubEnv::from_env(env);
        if !(forced || gh.is_actions()) {
            return None;
        }
        let mut secrets: Vec<Secret> = Vec::new();
        for var in SECRET_VARS {
            if let Some(value) = env(var) {
                secrets.extend(split_secrets(&value));
            }
        }
        let commands = Commands::new(std::io::stdout(), secrets.iter()).ok()?;
        Some(Self {
            env: gh,
            commands: Mutex::new(commands),
        })
    }

    fn commands(&self) -> std::sync::MutexGuard<'_, Commands<Stdout>> {
        self.commands
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Masks the secrets held in a variable named by the configuration
    /// (e.g. `MOLECULE_STAGING_ADMIN_TOKENS`).
    pub(crate) fn mask_var(&self, env: &dyn Fn(&str) -> Option<String>, var: &str) {
        if let Some(value) = env(var) {
            let mut c = self.commands();
            for s in split_secrets(&value) {
                let _ = c.add_mask(&s);
            }
        }
    }

    /// Masks every tenant's token.
    pub(crate) fn mask_tenants(&self, tenants: &[Tenant]) {
        let mut c = self.commands();
        for t in tenants {
            let _ = c.add_mask(t.token());
        }
        let _ = c.flush();
    }

    /// Groups per tenant, annotations, outputs, step summary.
    pub(crate) fn finish(
        &self,
        report: &PromotionReport,
        report_path: Option<&str>,
        markdown: &str,
    ) {
        let mut c = self.commands();
        if let Err(e) = canary_gha::write_tenant_groups(&mut c, report) {
            eprintln!("warning: could not write the per-tenant log groups: {e}");
        }
        if let Err(e) = canary_gha::publish(&mut c, &self.env, report, report_path, markdown) {
            eprintln!("warning: could not publish GitHub outputs or the step summary: {e}");
        }
        let _ = c.flush();
    }
}

/// The secrets in a variable's value: the whole value, and each item of a
/// comma/space/newline separated list.
fn split_secrets(value: &str) -> Vec<Secret> {
    let mut out = Vec::new();
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return out;
    }
    out.push(Secret::new(trimmed));
    for part in trimmed.split(|c: char| c == ',' || c.is_whitespace()) {
        if !part.is_empty() && part != trimmed {
            out.push(Secret::new(part));
        }
    }
    out
}
