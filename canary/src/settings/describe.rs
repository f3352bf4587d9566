//! `canary config`: every setting, its value and its source.

use canary_core::promoter::{EmptyFleet, Rollout};

use super::{Settings, Source, SuiteChoice};

impl Settings {
    /// `canary config`: every setting, its value and its source.
    pub fn describe(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let file = self.config_file.as_ref().map_or_else(
            || "(none: no ./canary.toml)".to_string(),
            |p| p.display().to_string(),
        );
        let _ = writeln!(out, "config file: {file}");
        let mut row = |key: &str, value: String, source: &Source| {
            let _ = writeln!(out, "{key:<22} {value:<44} ({source})");
        };
        let images = self
            .images
            .value
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        row(
            "release.images",
            if images.is_empty() {
                "(none)".into()
            } else {
                images
            },
            &self.images.source,
        );
        row(
            "release.staging_tag",
            self.staging.value.to_string(),
            &self.staging.source,
        );
        row(
            "release.promoted_tag",
            self.promoted.value.to_string(),
            &self.promoted.source,
        );
        row(
            "fleet.urls_env",
            self.urls_env.value.clone(),
            &self.urls_env.source,
        );
        row(
            "fleet.tokens_env",
            self.tokens_env.value.clone(),
            &self.tokens_env.source,
        );
        let path = |p: &Option<std::path::PathBuf>| {
            p.as_ref()
                .map_or_else(String::new, |p| p.display().to_string())
        };
        row(
            "fleet.urls_file",
            path(&self.urls_file.value),
            &self.urls_file.source,
        );
        row(
            "fleet.tokens_file",
            path(&self.tokens_file.value),
            &self.tokens_file.source,
        );
        let on_empty = match self.on_empty.value {
            EmptyFleet::Skip => "skip",
            EmptyFleet::Fail => "fail",
        };
        row(
            "fleet.on_empty",
            on_empty.to_string(),
            &self.on_empty.source,
        );
        let suite = match &self.suite.value {
            SuiteChoice::Builtin(n) => format!("builtin {n}"),
            SuiteChoice::File(p) => format!("file {}", p.display()),
        };
        row("suite", suite, &self.suite.source);
        row(
            "suite.concurrency",
            self.concurrency.value.to_string(),
            &self.concurrency.source,
        );
        row(
            "suite.tenant_deadline",
            humantime::format_duration(self.tenant_deadline.value).to_string(),
            &self.tenant_deadline.source,
        );
        let rollout = match self.rollout.value {
            Rollout::Immediate => "immediate (no wait)".to_string(),
            Rollout::Fixed(d) => format!("fixed wait {}", humantime::format_duration(d)),
            Rollout::Probe { interval, deadline } => format!(
                "probe every {} up to {}",
                humantime::format_duration(interval),
                humantime::format_duration(deadline)
            ),
        };
        row("rollout", rollout, &self.rollout.source);
        row(
            "rollout.path",
            self.probe_path.value.clone(),
            &self.probe_path.source,
        );
        row(
            "rollout.json_path",
            self.probe_json_path.value.clone(),
            &self.probe_json_path.source,
        );
        row(
            "registry.insecure",
            self.insecure.value.join(", "),
            &self.insecure.source,
        );
        row(
            "registry.ca_file",
            self.ca_file
                .value
                .as_ref()
                .map_or_else(String::new, |p| p.display().to_string()),
            &self.ca_file.source,
        );
        row(
            "registry.timeout",
            humantime::format_duration(self.registry_timeout.value).to_string(),
            &self.registry_timeout.source,
        );
        row(
            "registry.attempts",
            self.registry_attempts.value.to_string(),
            &self.registry_attempts.source,
        );
        let g = &self.guard;
        row(
            "guard.urls_env",
            g.urls_env.value.clone(),
            &g.urls_env.source,
        );
        row(
            "guard.tokens_env",
            g.tokens_env.value.clone(),
            &g.tokens_env.source,
        );
        row(
            "guard.sample",
            g.sample
                .value
                .map_or_else(|| "all".to_string(), |n| n.to_string()),
            &g.sample.source,
        );
        row(
            "guard.bake",
            humantime::format_duration(g.bake.value).to_string(),
            &g.bake.source,
        );
        row(
            "guard.interval",
            humantime::format_duration(g.interval.value).to_string(),
            &g.interval.source,
        );
        row(
            "guard.failures_to_revert",
            g.failures_to_revert.value.to_string(),
            &g.failures_to_revert.source,
        );
        let l = &self.ledger;
        row(
            "ledger.enabled",
            l.enabled.value.to_string(),
            &l.enabled.source,
        );
        row(
            "ledger.signing_key_env",
            l.signing_key_env.value.clone(),
            &l.signing_key_env.source,
        );
        row(
            "ledger.signing_key_file",
            path(&l.signing_key_file.value),
            &l.signing_key_file.source,
        );
        row(
            "ledger.public_key_file",
            path(&l.public_key_file.value),
            &l.public_key_file.source,
        );
        let cp = &self.control_plane;
        row(
            "control_plane.url",
            cp.url.value.clone().unwrap_or_default(),
            &cp.url.source,
        );
        row(
            "control_plane.token_env",
            cp.token_env.value.clone(),
            &cp.token_env.source,
        );
        out
    }
}
