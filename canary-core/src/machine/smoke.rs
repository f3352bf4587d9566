//! The `canary smoke` machine: the suite on every tenant of the fleet, no
//! registry, nothing moved. A pure function
//! `(state, event) → (state, actions)`, like the promotion machine.
//!
//! ```text
//! Planned ─Start▶ Planned [ReadFleet]
//!    ├ FleetFailed ▶ Failed          ├ FleetRefused ▶ Usage
//!    ├ FleetRead{0} ▶ Skipped
//!    └ FleetRead{n} ▶ Checking [RunChecks]
//!                        ├ ChecksPassed       ▶ Passed
//!                        ├ ChecksFailed       ▶ Rejected
//!                        └ ChecksInconclusive ▶ Inconclusive
//! ```
//!
//! Its states are not recorded in the report: a smoke report's `states`
//! stay those of a promotion that never started.

use std::fmt;

use super::Outcome;

/// The states of a smoke run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmokeState {
    /// Nothing read yet.
    Planned,
    /// Running the suite on the fleet.
    Checking,
    /// Terminal: every check passed on every tenant.
    Passed,
    /// Terminal: at least one check failed.
    Rejected,
    /// Terminal: no verdict.
    Inconclusive,
    /// Terminal: no canary tenant configured.
    Skipped,
    /// Terminal: the fleet could not be read.
    Failed,
    /// Terminal: the fleet is empty and the policy refuses that.
    Usage,
}

impl SmokeState {
    /// The outcome of a terminal state.
    pub fn outcome(self) -> Option<Outcome> {
        Some(match self {
            Self::Passed => Outcome::Passed,
            Self::Rejected => Outcome::Rejected,
            Self::Inconclusive => Outcome::Inconclusive,
            Self::Skipped => Outcome::Skipped,
            Self::Failed => Outcome::Failed,
            Self::Usage => Outcome::Usage,
            Self::Planned | Self::Checking => return None,
        })
    }

    /// Whether no event leaves this state.
    pub fn is_terminal(self) -> bool {
        self.outcome().is_some()
    }
}

/// Something that happened in a smoke run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmokeEvent {
    /// Begin.
    Start,
    /// The fleet was read: `tenants` canary tenants.
    FleetRead {
        /// The size of the canary fleet.
        tenants: usize,
    },
    /// Reading the fleet failed.
    FleetFailed,
    /// The fleet is empty and the policy says that is an error.
    FleetRefused,
    /// Every check passed on every tenant.
    ChecksPassed,
    /// At least one check failed on at least one tenant.
    ChecksFailed,
    /// No failure, but at least one check had no verdict.
    ChecksInconclusive,
}

/// What the promoter must do next in a smoke run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmokeAction {
    /// Read the canary fleet.
    ReadFleet,
    /// Run the suite on every tenant.
    RunChecks,
}

/// A transition the smoke machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub struct InvalidSmokeTransition {
    /// The state.
    pub state: SmokeState,
    /// The event.
    pub event: SmokeEvent,
}

impl fmt::Display for InvalidSmokeTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event {:?} is not allowed in smoke state {:?}",
            self.event, self.state
        )
    }
}

/// The transition function of a smoke run.
pub fn smoke_transition(
    state: SmokeState,
    event: SmokeEvent,
) -> Result<(SmokeState, Vec<SmokeAction>), InvalidSmokeTransition> {
    use SmokeAction as A;
    use SmokeEvent as E;
    use SmokeState as S;
    Ok(match (state, event) {
        (S::Planned, E::Start) => (S::Planned, vec![A::ReadFleet]),
        (S::Planned, E::FleetFailed) => (S::Failed, vec![]),
        (S::Planned, E::FleetRefused) => (S::Usage, vec![]),
        (S::Planned, E::FleetRead { tenants: 0 }) => (S::Skipped, vec![]),
        (S::Planned, E::FleetRead { .. }) => (S::Checking, vec![A::RunChecks]),
        (S::Checking, E::ChecksPassed) => (S::Passed, vec![]),
        (S::Checking, E::ChecksFailed) => (S::Rejected, vec![]),
        (S::Checking, E::ChecksInconclusive) => (S::Inconclusive, vec![]),
        (state, event) => return Err(InvalidSmokeTransition { state, event }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use SmokeEvent::*;

    const ALL_EVENTS: [SmokeEvent; 8] = [
        Start,
        FleetRead { tenants: 0 },
        FleetRead { tenants: 2 },
        FleetFailed,
        FleetRefused,
        ChecksPassed,
        ChecksFailed,
        ChecksInconclusive,
    ];

    const ALL_STATES: [SmokeState; 8] = [
        SmokeState::Planned,
        SmokeState::Checking,
        SmokeState::Passed,
        SmokeState::Rejected,
        SmokeState::Inconclusive,
        SmokeState::Skipped,
        SmokeState::Failed,
        SmokeState::Usage,
    ];

    fn run(events: &[SmokeEvent]) -> (SmokeState, Vec<SmokeAction>) {
        let mut state = SmokeState::Planned;
        let mut last = vec![];
        for e in events {
            let (s, a) = smoke_transition(state, *e).unwrap_or_else(|e| panic!("{e}"));
            state = s;
            last = a;
        }
        (state, last)
    }

    #[test]
    fn start_reads_the_fleet_then_checks() {
        assert_eq!(
            run(&[Start]),
            (SmokeState::Planned, vec![SmokeAction::ReadFleet])
        );
        assert_eq!(
            run(&[Start, FleetRead { tenants: 3 }]),
            (SmokeState::Checking, vec![SmokeAction::RunChecks])
        );
    }

    #[test]
    fn every_terminal_outcome() {
        let two = FleetRead { tenants: 2 };
        let cases = [
            (vec![Start, FleetFailed], Outcome::Failed),
            (vec![Start, FleetRefused], Outcome::Usage),
            (vec![Start, FleetRead { tenants: 0 }], Outcome::Skipped),
            (vec![Start, two, ChecksPassed], Outcome::Passed),
            (vec![Start, two, ChecksFailed], Outcome::Rejected),
            (vec![Start, two, ChecksInconclusive], Outcome::Inconclusive),
        ];
        for (events, want) in cases {
            let (state, actions) = run(&events);
            assert_eq!(state.outcome(), Some(want), "{events:?}");
            assert!(actions.is_empty());
        }
    }

    #[test]
    fn terminal_states_accept_nothing() {
        for s in ALL_STATES.into_iter().filter(|s| s.is_terminal()) {
            for e in ALL_EVENTS {
                assert!(smoke_transition(s, e).is_err(), "{s:?} {e:?}");
            }
        }
    }

    #[test]
    fn checks_run_only_on_a_non_empty_fleet() {
        // Exhaustive: the only way to RunChecks is a fleet with tenants.
        for s in ALL_STATES {
            for e in ALL_EVENTS {
                if let Ok((_, actions)) = smoke_transition(s, e) {
                    if actions.contains(&SmokeAction::RunChecks) {
                        assert_eq!((s, e), (SmokeState::Planned, FleetRead { tenants: 2 }));
                    }
                }
            }
        }
    }

    #[test]
    fn a_smoke_run_never_passes_without_checks() {
        for s in ALL_STATES {
            for e in ALL_EVENTS {
                if let Ok((next, _)) = smoke_transition(s, e) {
                    if next == SmokeState::Passed {
                        assert_eq!((s, e), (SmokeState::Checking, ChecksPassed));
                    }
                }
            }
        }
    }
}
