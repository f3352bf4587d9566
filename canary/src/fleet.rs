//! Keeping the canary fleet: `canary fleet check`, `canary fleet enroll`,
//! and what a run that finds no fleet says about standing one up.

use canary_core::fleet::check::{self, CheckOptions, FleetCheckReport};
use canary_core::fleet::enroll::{stand_up_hint, EnrollReport, FleetLists, OrgSlug};
use canary_core::{GitSha, Outcome, PromotionReport, Secret, TenantFleet, UsageError};
use canary_smoke::{ControlPlane, HttpSuite, Suite};

use crate::gate::Gate;
use crate::settings::Source;

impl Gate {
    /// `canary fleet check`: every canary tenant, in list order — is it
    /// reachable, does it take the token in its position and refuse a
    /// request without one (the rollout probe's request), what does it run
    /// and how fast does it answer. A token its own tenant refuses is tried
    /// on the other tenants, so a misaligned pair is named as such. With
    /// `expected` (a sha), a tenant on another version is unhealthy.
    ///
    /// Refused before any request: lists that do not parse or align (the
    /// fleet's rules, naming both lists), an empty fleet (the error says how
    /// to stand one up), a bad sha.
    pub async fn fleet_check(
        &self,
        expected: Option<&str>,
    ) -> Result<FleetCheckReport, UsageError> {
        let expected = expected
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(GitSha::parse)
            .transpose()
            .map_err(|e| self.respell("sha", &e))?;
        let tenants = self.fleet()?.tenants().await.unwrap_or_default();
        let lists = self.fleet_lists(Some(tenants.len()));
        if tenants.is_empty() {
            return Err(UsageError::new(
                format!("canary fleet ({} and {})", lists.urls, lists.tokens),
                "is empty: there is no tenant to check",
                stand_up_hint(&lists),
            ));
        }
        self.mask_tenants(&tenants);
        // The probe's request: the suite itself is not run.
        let probe = HttpSuite::new(Suite::builtin("workspace-server")?, self.http_options())?;
        let options = CheckOptions {
            expected,
            concurrency: self.settings().concurrency.value,
            urls_from: lists.urls,
            tokens_from: lists.tokens,
        };
        Ok(check::check(&probe, &tenants, &options, &*self.clock()).await)
    }

    /// `canary fleet enroll SLUG`: `POST {control_plane}/cp/admin/orgs/
    /// SLUG/canary` with `{"is_canary": true}` and the admin token from the
    /// variable `control_plane.token_env` names; the report says what the
    /// control plane said and what is left to do (provisioning, the two
    /// lists, in the same position).
    ///
    /// Refused before any request: a slug that is not one, no control
    /// plane URL, an unset token variable, a URL the admin token must not
    /// travel to (plain HTTP off loopback, credentials in it).
    pub async fn fleet_enroll(&self, slug: &str) -> Result<EnrollReport, UsageError> {
        let slug = OrgSlug::parse(slug.trim())?;
        let cp = &self.settings().control_plane;
        let Some(url) = cp.url.value.as_deref() else {
            return Err(UsageError::new(
                "control plane URL",
                "is not configured",
                "set `[control_plane] url` in canary.toml, or pass --control-plane-url URL (CANARY_CONTROL_PLANE_URL)",
            ));
        };
        let var = &cp.token_env.value;
        let token = self
            .env()
            .get(var)
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                UsageError::new(
                    format!("control plane token variable {var} ({})", cp.token_env.source),
                    "is unset or empty",
                    format!(
                        "export {var} with the control plane's admin token, or name another variable with control_plane.token_env"
                    ),
                )
            })?;
        let token = Secret::new(token);
        self.hand_to_sink(&token);
        let url_name = match &cp.url.source {
            Source::Default => "control plane URL".to_string(),
            source => format!("control plane URL ({source})"),
        };
        let client = ControlPlane::new(
            url,
            &url_name,
            token,
            self.settings().ca_file.value.as_deref(),
        )?;
        // The position the new tenant takes, when the lists can be read.
        let listed = match self.fleet() {
            Ok(fleet) => fleet.tenants().await.ok().map(|t| t.len()),
            Err(_) => None,
        };
        let (result, detail) = client.enroll(&slug).await;
        Ok(EnrollReport::new(
            slug,
            client.url(),
            result,
            &detail,
            var,
            &self.fleet_lists(listed),
        ))
    }

    /// Where the fleet's two lists live, named as the user gave them: a
    /// variable, a file, or `fleet.urls` in the config file.
    pub(crate) fn fleet_lists(&self, tenants: Option<usize>) -> FleetLists {
        let s = self.settings();
        let urls = match (&s.urls_file.value, &s.fleet_urls, &s.config_file) {
            (Some(path), _, _) => format!("the tenant URL file {}", path.display()),
            (None, Some(_), Some(config)) => format!("fleet.urls in {}", config.display()),
            _ => s.urls_env.value.clone(),
        };
        let tokens = match &s.tokens_file.value {
            Some(path) => format!("the tenant token file {}", path.display()),
            None => s.tokens_env.value.clone(),
        };
        FleetLists {
            urls,
            tokens,
            tenants,
        }
    }

    /// A run that found no canary tenant says, in its reason, how to stand
    /// the fleet up (once: the renderings show the reason once).
    pub(crate) fn explain_empty_fleet(&self, report: &mut PromotionReport) {
        if report.outcome == Outcome::Skipped && report.tenants.is_empty() && report.shard.is_none()
        {
            let hint = stand_up_hint(&self.fleet_lists(Some(0)));
            report.reason = format!("{}; {hint}", report.reason);
        }
    }

    /// The refusal of an empty fleet (`on_empty = "fail"`), its fix naming
    /// how to stand the fleet up.
    pub(crate) fn empty_fleet_refused(&self, e: &UsageError) -> UsageError {
        UsageError::new(
            e.input(),
            e.problem(),
            format!(
                "{}; or set on_empty = \"skip\"",
                stand_up_hint(&self.fleet_lists(Some(0)))
            ),
        )
    }
}
