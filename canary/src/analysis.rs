//! `[analysis]` wired to Prometheus: the analysis a verify and a guard run,
//! and `canary analyze`, which reads the metrics once on their own.

use std::sync::Arc;

use canary_core::analysis::{Analysis, AnalysisReport};
use canary_core::{Secret, UsageError};
use canary_metrics::{PrometheusAuth, PrometheusOptions, PrometheusSource};

use crate::gate::Gate;

impl Gate {
    /// The configured analysis, its Prometheus client built and its
    /// credentials read (and handed to the secret sink); `None` without
    /// `[analysis]`. Every check runs before any request.
    pub fn analysis(&self) -> Result<Option<Analysis>, UsageError> {
        let Some(a) = &self.settings().analysis else {
            return Ok(None);
        };
        let var = |name: &str| -> Result<Secret, UsageError> {
            match self.env().get(name).filter(|v| !v.is_empty()) {
                Some(v) => Ok(Secret::new(v)),
                None => Err(UsageError::new(
                    format!("variable {name} (analysis credentials)"),
                    "is not set",
                    format!("export {name} with the Prometheus credential, or remove it from [analysis]"),
                )),
            }
        };
        let auth = match (&a.token_env, &a.basic_env) {
            (Some(t), _) => PrometheusAuth::Bearer(var(t)?),
            (None, Some((u, p))) => PrometheusAuth::Basic {
                username: var(u)?.expose().to_string(),
                password: var(p)?,
            },
            (None, None) => PrometheusAuth::None,
        };
        match &auth {
            PrometheusAuth::Bearer(s) | PrometheusAuth::Basic { password: s, .. } => {
                self.hand_to_sink(s);
            }
            PrometheusAuth::None => {}
        }
        let source = PrometheusSource::new(PrometheusOptions {
            auth,
            ca_file: a.ca_file.clone(),
            ..PrometheusOptions::new(a.prometheus.clone())
        })?;
        Ok(Some(Analysis {
            source: Arc::new(source),
            metrics: a.metrics.clone(),
            window: a.window,
            interval: a.interval,
        }))
    }

    /// `canary analyze`: reads and judges every metric once, as a verify
    /// would at the end of its window, and changes nothing.
    pub async fn analyze(&self) -> Result<AnalysisReport, UsageError> {
        let Some(analysis) = self.analysis()? else {
            return Err(UsageError::new(
                "[analysis]",
                "is not configured",
                "add [analysis] with prometheus = \"http://prometheus:9090\" and at least one [[analysis.metric]] to canary.toml",
            ));
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Ok(canary_core::analysis::analyze(
            analysis.source.as_ref(),
            &analysis.metrics,
            Some(now_ms),
        )
        .await)
    }
}
