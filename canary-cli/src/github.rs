//! GitHub Actions mode: masks first (through `canary-gha`), then the
//! per-tenant groups, annotations, outputs and step summary that
//! `canary-report` renders.

use std::io::Write;
use std::sync::Mutex;

use canary_core::{PromotionReport, Secret};
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
    commands: Mutex<Commands<Box<dyn Write + Send>>>,
}

impl Github {
    /// Detects Actions mode and masks every secret the environment holds
    /// (each token of a token list separately) before anything else is
    /// printed. Workflow commands go to stdout, or to stderr when stdout
    /// carries `--json` (the runner reads commands from both).
    pub(crate) fn detect(
        forced: bool,
        to_stderr: bool,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Option<Self> {
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
        let out: Box<dyn Write + Send> = if to_stderr {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        };
        let commands = Commands::new(out, secrets.iter()).ok()?;
        Some(Self {
            env: gh,
            commands: Mutex::new(commands),
        })
    }

    fn commands(&self) -> std::sync::MutexGuard<'_, Commands<Box<dyn Write + Send>>> {
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

    /// Masks one secret the library read (the gate's secret sink).
    pub(crate) fn mask(&self, secret: &Secret) {
        let mut c = self.commands();
        let _ = c.add_mask(secret);
        let _ = c.flush();
    }

    /// Prints text that quotes tenants and registries (the human summary)
    /// between `::stop-commands::` markers, so nothing in it can act as a
    /// workflow command.
    pub(crate) fn untrusted(&self, text: &str) {
        let mut c = self.commands();
        let _ = c.untrusted(text.trim_end());
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
        if let Err(e) = canary_report::github::write_tenant_groups(&mut c, report) {
            eprintln!("warning: could not write the per-tenant log groups: {e}");
        }
        if let Err(e) =
            canary_report::github::publish(&mut c, &self.env, report, report_path, markdown)
        {
            eprintln!("warning: could not publish GitHub outputs or the step summary: {e}");
        }
        let _ = c.flush();
    }

    /// Annotations, outputs and step summary a command rendered
    /// (`canary fleet …`).
    pub(crate) fn publish(
        &self,
        annotations: &[canary_gha::Annotation],
        outputs: &[(String, String)],
        markdown: &str,
    ) {
        let mut c = self.commands();
        if let Err(e) = canary_gha::publish(&mut c, &self.env, annotations, outputs, markdown) {
            eprintln!("warning: could not publish GitHub outputs or the step summary: {e}");
        }
        let _ = c.flush();
    }

    /// `canary analyze`: an annotation per failed metric, outputs
    /// (`outcome` pass / fail / inconclusive, `exit-code`) and the summary.
    pub(crate) fn finish_analysis(&self, report: &canary_core::analysis::AnalysisReport) {
        let annotations: Vec<canary_gha::Annotation> = report
            .failed()
            .map(|v| {
                canary_gha::Annotation::error(v.detail.clone())
                    .with_title(format!("metric {}", v.name))
            })
            .collect();
        let outputs = vec![
            ("outcome".to_string(), report.status().as_str().to_string()),
            (
                "exit-code".to_string(),
                crate::app::analyze_exit_code(report).to_string(),
            ),
        ];
        let markdown = format!(
            "## canary analyze: {}\n{}",
            report.status().as_str().to_uppercase(),
            canary_report::analysis::markdown(report)
        );
        let mut c = self.commands();
        if let Err(e) = canary_gha::publish(&mut c, &self.env, &annotations, &outputs, &markdown) {
            eprintln!("warning: could not publish GitHub outputs or the step summary: {e}");
        }
        let _ = c.flush();
    }

    /// `canary status`: annotations, outputs and step summary.
    pub(crate) fn finish_status(&self, status: &canary_core::status::StatusReport) {
        let mut c = self.commands();
        if let Err(e) = canary_gha::publish(
            &mut c,
            &self.env,
            &canary_report::status::annotations(status),
            &canary_report::status::outputs(status),
            &canary_report::status::markdown(status),
        ) {
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
