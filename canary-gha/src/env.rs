//! [`GithubEnv`]: what the runner tells a step through its environment.

use std::fmt;
use std::path::PathBuf;

use canary_core::Secret;

/// The parts of the GitHub Actions environment canary uses.
///
/// Read it with [`GithubEnv::from_env`], passing the lookup function, so
/// tests build it from a map instead of the process environment. Empty
/// variables count as unset.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct GithubEnv {
    /// `GITHUB_ACTIONS=true`.
    pub actions: bool,
    /// `GITHUB_OUTPUT`: the step's output file.
    pub output: Option<PathBuf>,
    /// `GITHUB_STEP_SUMMARY`: the step's summary file.
    pub step_summary: Option<PathBuf>,
    /// `GITHUB_SHA`: the commit the workflow runs on.
    pub sha: Option<String>,
    /// `GITHUB_ACTOR`: the user that triggered the run (the ghcr.io user name).
    pub actor: Option<String>,
    /// `GITHUB_TOKEN`, when the workflow passes it in (`env: GITHUB_TOKEN:
    /// ${{ github.token }}`); the ghcr.io password.
    pub token: Option<Secret>,
    /// `GITHUB_SERVER_URL` (`https://github.com`).
    pub server_url: Option<String>,
    /// `GITHUB_REPOSITORY` (`acme/platform`).
    pub repository: Option<String>,
    /// `GITHUB_RUN_ID`.
    pub run_id: Option<String>,
    /// `GITHUB_RUN_ATTEMPT`.
    pub run_attempt: Option<String>,
}

impl fmt::Debug for GithubEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubEnv")
            .field("actions", &self.actions)
            .field("output", &self.output)
            .field("step_summary", &self.step_summary)
            .field("sha", &self.sha)
            .field("actor", &self.actor)
            .field("token", &self.token)
            .field("server_url", &self.server_url)
            .field("repository", &self.repository)
            .field("run_id", &self.run_id)
            .field("run_attempt", &self.run_attempt)
            .finish()
    }
}

impl GithubEnv {
    /// Reads the environment through `get`, e.g.
    /// `GithubEnv::from_env(|k| std::env::var(k).ok())`.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| get(name).filter(|v| !v.is_empty());
        Self {
            actions: var("GITHUB_ACTIONS").as_deref() == Some("true"),
            output: var("GITHUB_OUTPUT").map(PathBuf::from),
            step_summary: var("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            sha: var("GITHUB_SHA"),
            actor: var("GITHUB_ACTOR"),
            token: var("GITHUB_TOKEN").map(Secret::new),
            server_url: var("GITHUB_SERVER_URL"),
            repository: var("GITHUB_REPOSITORY"),
            run_id: var("GITHUB_RUN_ID"),
            run_attempt: var("GITHUB_RUN_ATTEMPT"),
        }
    }

    /// Whether this process runs inside GitHub Actions (`GITHUB_ACTIONS=true`).
    pub fn is_actions(&self) -> bool {
        self.actions
    }

    /// The URL of this workflow run:
    /// `$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID`
    /// (plus `/attempts/N` after a re-run).
    pub fn run_url(&self) -> Option<String> {
        let server = self.server_url.as_deref()?.trim_end_matches('/');
        let repository = self.repository.as_deref()?;
        let run_id = self.run_id.as_deref()?;
        let mut url = format!("{server}/{repository}/actions/runs/{run_id}");
        if let Some(attempt) = self.run_attempt.as_deref().filter(|a| *a != "1") {
            url.push_str("/attempts/");
            url.push_str(attempt);
        }
        Some(url)
    }

    /// `(GITHUB_ACTOR, GITHUB_TOKEN)`, the credentials GitHub gives a
    /// workflow for ghcr.io, when both are set.
    pub fn ghcr_credentials(&self) -> Option<(&str, &Secret)> {
        Some((self.actor.as_deref()?, self.token.as_ref()?))
    }

    /// The secrets this environment holds (the `GITHUB_TOKEN`), to mask.
    pub fn secrets(&self) -> Vec<&Secret> {
        self.token.iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> GithubEnv {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        GithubEnv::from_env(|k| map.get(k).cloned())
    }

    #[test]
    fn reads_the_runner_environment() {
        let e = env(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_OUTPUT", "/tmp/out"),
            ("GITHUB_STEP_SUMMARY", "/tmp/summary"),
            ("GITHUB_SHA", "4c1d56e"),
            ("GITHUB_ACTOR", "octocat"),
            ("GITHUB_TOKEN", "ghs_secret"),
            ("GITHUB_SERVER_URL", "https://github.com/"),
            ("GITHUB_REPOSITORY", "acme/platform"),
            ("GITHUB_RUN_ID", "42"),
            ("GITHUB_RUN_ATTEMPT", "1"),
        ]);
        assert!(e.is_actions());
        assert_eq!(e.output, Some(PathBuf::from("/tmp/out")));
        assert_eq!(e.step_summary, Some(PathBuf::from("/tmp/summary")));
        assert_eq!(
            e.run_url().as_deref(),
            Some("https://github.com/acme/platform/actions/runs/42")
        );
        let (actor, token) = e.ghcr_credentials().unwrap();
        assert_eq!((actor, token.expose()), ("octocat", "ghs_secret"));
        assert!(!format!("{e:?}").contains("ghs_secret"));
        assert_eq!(e.secrets().len(), 1);
    }

    #[test]
    fn outside_actions() {
        let e = env(&[("GITHUB_ACTIONS", "false"), ("GITHUB_OUTPUT", "")]);
        assert!(!e.is_actions());
        assert_eq!(e.output, None);
        assert_eq!(e.run_url(), None);
        assert!(e.ghcr_credentials().is_none());
        let e = env(&[
            ("GITHUB_SERVER_URL", "https://ghe.example"),
            ("GITHUB_REPOSITORY", "a/b"),
            ("GITHUB_RUN_ID", "7"),
            ("GITHUB_RUN_ATTEMPT", "3"),
        ]);
        assert_eq!(
            e.run_url().as_deref(),
            Some("https://ghe.example/a/b/actions/runs/7/attempts/3")
        );
    }
}
