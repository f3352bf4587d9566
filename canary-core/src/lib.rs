#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod analysis;
pub mod clock;
pub mod compensation;
pub mod conformance;
pub mod error;
pub mod fleet;
pub mod interrupt;
pub mod ledger;
pub mod machine;
pub mod promoter;
pub mod registry;
pub mod report;
pub mod shard;
pub mod status;
pub mod suite;
pub mod types;

pub use clock::{Clock, ManualClock};
pub use error::{BoxError, Error, ErrorKind, UsageError};
pub use fleet::check::{FleetCheckReport, TenantProbe};
pub use fleet::enroll::{EnrollReport, EnrollResult, OrgSlug};
pub use fleet::{StaticFleet, TenantFleet};
pub use interrupt::Interrupt;
pub use machine::{Outcome, State};
pub use promoter::{EmptyFleet, GuardOptions, Observer, Policy, Promoter, Rollout, VerifyOptions};
pub use registry::{MemoryRegistry, Registry};
pub use report::{Command, ImageReport, ImageStatus, LedgerReport, PromotionReport, TenantReport};
pub use shard::Shard;
pub use status::StatusReport;
pub use suite::{CheckResult, CheckStatus, RunContext, ScriptedSuite, SmokeSuite};
pub use types::{
    Digest, GitSha, ImageRef, Manifest, Reason, Reference, Release, Secret, Tag, TagTemplate,
    Tenant,
};

#[cfg(feature = "mock")]
pub use fleet::MockTenantFleet;
#[cfg(feature = "mock")]
pub use registry::MockRegistry;
#[cfg(feature = "mock")]
pub use suite::MockSmokeSuite;
