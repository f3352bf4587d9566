//! `canary fleet enroll SLUG`: make an org a canary org on the control
//! plane, and say what is left to do. The request is the HTTP adapter's;
//! the slug's rules, the results, their exit codes and the next steps are
//! decided here.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::UsageError;

/// The version of the enrolment report's JSON shape.
pub const ENROLL_SCHEMA: u32 = 1;

/// An org's slug, as the control plane names it: 1 to 63 lowercase ASCII
/// letters, digits and hyphens, starting and ending with a letter or a
/// digit (a DNS label: the slug names the tenant's host too).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrgSlug(String);

impl OrgSlug {
    /// Checks a slug; the error names it and says what a slug looks like.
    pub fn parse(text: &str) -> Result<Self, UsageError> {
        let bad = |problem: &str| {
            UsageError::new(
                format!("org slug `{text}`"),
                problem,
                "give the org's slug as the control plane names it: lowercase letters, digits and hyphens, e.g. `acme-canary`",
            )
        };
        if text.is_empty() {
            return Err(bad("is empty"));
        }
        if text.len() > 63 {
            return Err(bad(&format!("has {} characters (at most 63)", text.len())));
        }
        if let Some(c) = text
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
        {
            return Err(bad(&format!("contains `{}`", c.escape_default())));
        }
        if text.starts_with('-') || text.ends_with('-') {
            return Err(bad("starts or ends with a hyphen"));
        }
        Ok(Self(text.to_string()))
    }

    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrgSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for OrgSlug {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for OrgSlug {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What the control plane said to the enrolment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollResult {
    /// The org is a canary org now.
    Enrolled,
    /// The org already was one; nothing changed.
    AlreadyCanary,
    /// Refused: the org is already provisioned, its instance outside the
    /// canary account.
    AlreadyProvisioned,
    /// The control plane has no such org.
    NotFound,
    /// The control plane refused the admin token.
    Unauthorized,
    /// No answer, or one that says none of the above.
    Failed,
}

impl EnrollResult {
    /// The one spelling, the same as in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enrolled => "enrolled",
            Self::AlreadyCanary => "already_canary",
            Self::AlreadyProvisioned => "already_provisioned",
            Self::NotFound => "not_found",
            Self::Unauthorized => "unauthorized",
            Self::Failed => "failed",
        }
    }

    /// The exit code: 0 when the org is a canary org (enrolled, or already
    /// one), 1 when the control plane refused and nothing changed, 3 when
    /// it did not answer as expected (a transport failure).
    pub fn exit_code(self) -> i32 {
        match self {
            Self::Enrolled | Self::AlreadyCanary => 0,
            Self::AlreadyProvisioned | Self::NotFound | Self::Unauthorized => 1,
            Self::Failed => 3,
        }
    }
}

/// Where the fleet's two lists live, so the next steps name them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetLists {
    /// Where the tenant URLs live (a variable, a file).
    pub urls: String,
    /// Where the admin tokens live.
    pub tokens: String,
    /// How many tenants the lists hold now, when they could be read.
    pub tenants: Option<usize>,
}

/// `canary fleet enroll`'s report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollReport {
    /// [`ENROLL_SCHEMA`].
    pub schema: u32,
    /// The org.
    pub slug: OrgSlug,
    /// The control plane's base URL.
    pub control_plane: String,
    /// What the control plane said.
    pub result: EnrollResult,
    /// Its exit code.
    pub exit_code: i32,
    /// What happened, in a sentence.
    pub message: String,
    /// What is left to do, in order.
    pub next_steps: Vec<String>,
}

impl EnrollReport {
    /// The report of `result`; `detail` is what the control plane said
    /// (for a failure, why), `token_env` the variable holding the admin
    /// token, `lists` where the fleet lives.
    pub fn new(
        slug: OrgSlug,
        control_plane: &str,
        result: EnrollResult,
        detail: &str,
        token_env: &str,
        lists: &FleetLists,
    ) -> Self {
        let position = lists
            .tenants
            .map(|n| format!(" (entry {} of each)", n + 1))
            .unwrap_or_default();
        let secrets = format!(
            "append the tenant's URL to {} and its admin token to {}, in the same position{position}",
            lists.urls, lists.tokens
        );
        let confirm = "run `canary fleet check` to confirm the tenant answers and takes its token"
            .to_string();
        let again = format!("run `canary fleet enroll {slug}` again before provisioning it");
        let said = if detail.is_empty() {
            String::new()
        } else {
            format!(" ({detail})")
        };
        let (message, next_steps) = match result {
            EnrollResult::Enrolled => (
                format!("org {slug} is a canary org now"),
                vec![
                    "provision the org (or re-provision it), so its instance lands in the canary account".to_string(),
                    secrets,
                    confirm,
                ],
            ),
            EnrollResult::AlreadyCanary => (
                format!("org {slug} is already a canary org; nothing changed"),
                vec![format!("if its tenant is not in the fleet yet: {secrets}"), confirm],
            ),
            EnrollResult::AlreadyProvisioned => (
                format!(
                    "the control plane refused: org {slug} is already provisioned, its instance outside the canary account; nothing changed{said}"
                ),
                vec![
                    format!("re-provision the org, or delete and recreate it, so the new instance lands in the canary account: {again}"),
                    secrets,
                    confirm,
                ],
            ),
            EnrollResult::NotFound => (
                format!("the control plane has no org {slug}; nothing changed{said}"),
                vec![
                    format!("check the slug, or create the org first (`POST /cp/orgs`); then {again}"),
                ],
            ),
            EnrollResult::Unauthorized => (
                format!(
                    "the control plane refused the admin token in {token_env}; nothing changed{said}"
                ),
                vec![format!(
                    "put the control plane's admin secret in {token_env} (or name another variable with control_plane.token_env)"
                )],
            ),
            EnrollResult::Failed => (
                format!("enrolling org {slug} failed: {detail}"),
                vec![format!(
                    "run `canary fleet enroll {slug}` again once the control plane answers (enrolling twice is safe)"
                )],
            ),
        };
        Self {
            schema: ENROLL_SCHEMA,
            slug,
            control_plane: control_plane.to_string(),
            result,
            exit_code: result.exit_code(),
            message,
            next_steps,
        }
    }
}

/// How to stand a canary fleet up, for a run that found none: enrol each
/// canary org, then list its tenant in the two lists.
pub fn stand_up_hint(lists: &FleetLists) -> String {
    format!(
        "to stand the canary fleet up: `canary fleet enroll SLUG` for each canary org, then append its tenant's URL to {} and its admin token to {}, in the same position",
        lists.urls, lists.tokens
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["acme", "acme-canary-2", "a", &"a".repeat(63)] {
            assert_eq!(OrgSlug::parse(ok).unwrap().as_str(), ok);
        }
        for (bad, why) in [
            ("", "is empty"),
            ("Acme", "contains `A`"),
            ("acme/../x", "contains `/`"),
            ("-acme", "hyphen"),
            ("acme-", "hyphen"),
            ("acme canary", "contains ` `"),
            (&"a".repeat(64), "64 characters"),
        ] {
            let e = OrgSlug::parse(bad).unwrap_err();
            assert!(e.to_string().contains(why), "{bad}: {e}");
            assert!(e.fix().contains("lowercase"), "{bad}");
        }
    }

    #[test]
    fn every_result_has_one_spelling_and_its_exit_code() {
        for (r, code) in [
            (EnrollResult::Enrolled, 0),
            (EnrollResult::AlreadyCanary, 0),
            (EnrollResult::AlreadyProvisioned, 1),
            (EnrollResult::NotFound, 1),
            (EnrollResult::Unauthorized, 1),
            (EnrollResult::Failed, 3),
        ] {
            assert_eq!(
                serde_json::to_value(r).unwrap(),
                serde_json::Value::String(r.as_str().into())
            );
            assert_eq!(r.exit_code(), code, "{r:?}");
        }
    }

    #[test]
    fn next_steps_name_the_lists_and_the_position() {
        let lists = FleetLists {
            urls: "MOLECULE_STAGING_TENANT_URLS".into(),
            tokens: "MOLECULE_STAGING_ADMIN_TOKENS".into(),
            tenants: Some(2),
        };
        let slug = OrgSlug::parse("acme").unwrap();
        let r = EnrollReport::new(
            slug.clone(),
            "https://cp.example",
            EnrollResult::Enrolled,
            "",
            "CP_SECRET",
            &lists,
        );
        assert_eq!(r.exit_code, 0);
        assert!(r.next_steps[1].contains(
            "URL to MOLECULE_STAGING_TENANT_URLS and its admin token to MOLECULE_STAGING_ADMIN_TOKENS, in the same position (entry 3 of each)"
        ), "{:?}", r.next_steps);
        let r = EnrollReport::new(
            slug.clone(),
            "https://cp.example",
            EnrollResult::AlreadyProvisioned,
            "",
            "CP_SECRET",
            &lists,
        );
        assert!(
            r.next_steps[0].starts_with(
                "re-provision the org, or delete and recreate it, so the new instance lands in the canary account"
            ),
            "{:?}",
            r.next_steps
        );
        assert!(r.next_steps[1].contains("MOLECULE_STAGING_ADMIN_TOKENS"));
        let r = EnrollReport::new(
            slug,
            "https://cp.example",
            EnrollResult::Unauthorized,
            "status 401",
            "CP_SECRET",
            &lists,
        );
        assert_eq!(r.exit_code, 1);
        assert!(r.message.contains("CP_SECRET"), "{}", r.message);
        assert!(stand_up_hint(&lists).contains("`canary fleet enroll SLUG`"));
    }
}
