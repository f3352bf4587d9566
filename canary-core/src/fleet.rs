//! The [`TenantFleet`] trait and the fixed [`StaticFleet`]; keeping the
//! fleet: [`check`] (is every tenant reachable and does it take its token)
//! and [`enroll`] (make an org a canary org).

pub mod check;
pub mod enroll;

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Error;
use crate::types::Tenant;

/// The canary tenants a release is verified against.
///
/// # Contract
///
/// - `tenants` returns every canary tenant, in a stable order (reports list
///   tenants in this order); an empty list means "no canary fleet
///   configured", which the promoter handles by policy (`on_empty_fleet`).
/// - It makes no request to a tenant; validation of URLs and tokens happens
///   when the fleet is built, so bad input is reported before any request.
/// - A tenant's token is a [`crate::Secret`] and never appears in an error.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait TenantFleet: Send + Sync {
    /// The canary tenants.
    async fn tenants(&self) -> Result<Vec<Tenant>, Error>;
}

#[async_trait]
impl<T: TenantFleet + ?Sized> TenantFleet for Arc<T> {
    async fn tenants(&self) -> Result<Vec<Tenant>, Error> {
        (**self).tenants().await
    }
}

#[async_trait]
impl<T: TenantFleet + ?Sized> TenantFleet for Box<T> {
    async fn tenants(&self) -> Result<Vec<Tenant>, Error> {
        (**self).tenants().await
    }
}

/// A fixed list of tenants.
#[derive(Debug, Clone, Default)]
pub struct StaticFleet(Vec<Tenant>);

impl StaticFleet {
    /// A fleet of these tenants.
    pub fn new(tenants: Vec<Tenant>) -> Self {
        Self(tenants)
    }
}

#[async_trait]
impl TenantFleet for StaticFleet {
    async fn tenants(&self) -> Result<Vec<Tenant>, Error> {
        Ok(self.0.clone())
    }
}
