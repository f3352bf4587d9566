//! JUnit XML, for CI systems that show test results.

use std::time::Duration;

use canary_core::{CheckResult, CheckStatus, PromotionReport, TenantReport};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::words;

/// JUnit XML: one `<testsuite>` per tenant (named by its URL) and one
/// `<testcase>` per tenant × check, `classname` = the tenant URL. Failed
/// checks are `<failure>`, checks without a verdict `<error>`, checks not
/// run `<skipped>`. Each suite carries the run's sha, outcome and reason as
/// properties; a report without tenants gets one empty suite that carries
/// them.
pub fn junit(report: &PromotionReport) -> String {
    let mut junit = Report::new(format!("canary {}", report.command.as_str()));
    let properties = |suite: &mut TestSuite| {
        if let Some(sha) = &report.sha {
            suite.add_property(Property::new("sha", sha.to_string()));
        }
        suite.add_property(Property::new("outcome", report.outcome.as_str()));
        suite.add_property(Property::new("reason", report.reason.clone()));
    };
    if report.tenants.is_empty() {
        let mut suite = TestSuite::new("canary");
        properties(&mut suite);
        junit.add_test_suite(suite);
    }
    for tenant in &report.tenants {
        let mut suite = TestSuite::new(tenant.url.clone());
        properties(&mut suite);
        if let Some(v) = &tenant.version {
            suite.add_property(Property::new("version", v.clone()));
        }
        let mut total = 0;
        for check in &tenant.checks {
            total += check.duration_ms;
            suite.add_test_case(test_case(tenant, check));
        }
        suite.set_time(Duration::from_millis(total));
        junit.add_test_suite(suite);
    }
    junit.to_string().expect("a JUnit report serializes to XML")
}

fn test_case(tenant: &TenantReport, check: &CheckResult) -> TestCase {
    let status = match check.status {
        CheckStatus::Passed => TestCaseStatus::success(),
        CheckStatus::Failed | CheckStatus::Error => {
            let kind = if check.status == CheckStatus::Failed {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            };
            let mut s = TestCaseStatus::non_success(kind);
            s.set_message(format!("expected {}, got {}", check.expected, check.actual));
            s.set_type(words::check(check.status));
            s.set_description(format!(
                "tenant: {}\ncheck: {}\nexpected: {}\nactual: {}\nattempts: {}",
                tenant.url, check.name, check.expected, check.actual, check.attempts
            ));
            s
        }
        CheckStatus::NotRun => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(check.actual.clone());
            s
        }
    };
    let mut case = TestCase::new(check.name.clone(), status);
    case.set_classname(tenant.url.clone());
    case.set_time(Duration::from_millis(check.duration_ms));
    case.add_property(Property::new("attempts", check.attempts.to_string()));
    case
}
