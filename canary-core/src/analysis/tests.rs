use super::*;

fn error_rate(max_increase: f64, min_requests: f64) -> Metric {
    Metric {
        name: "http-errors".into(),
        rule: Rule::ErrorRate {
            errors: Cohorts {
                canary: "ce".into(),
                baseline: "be".into(),
            },
            total: Cohorts {
                canary: "cn".into(),
                baseline: "bn".into(),
            },
            max_increase,
            max_rate: None,
        },
        min_requests,
        confidence: 0.95,
    }
}

fn counts(ce: f64, cn: f64, be: f64, bn: f64) -> Sample {
    Sample {
        values: vec![
            ("canary_errors", Some(ce)),
            ("baseline_errors", Some(be)),
            ("canary_total", Some(cn)),
            ("baseline_total", Some(bn)),
        ],
        error: None,
    }
}

#[test]
fn two_percent_against_a_tenth_of_a_percent_fails() {
    let v = judge(
        &error_rate(0.01, 200.0),
        &counts(100.0, 5000.0, 5.0, 5000.0),
    );
    assert_eq!(v.status, VerdictStatus::Fail, "{}", v.detail);
    assert_eq!(v.canary, Some(0.02));
    assert_eq!(v.baseline, Some(0.001));
    assert!(v.interval.unwrap().0 > 0.01, "{:?}", v.interval);
    assert!(v.p_value.unwrap() < 0.001, "{:?}", v.p_value);
    assert!(v.detail.contains("2.00% (100 of 5000)"), "{}", v.detail);
    assert!(
        v.detail.contains("worse by more than 1.00 pt"),
        "{}",
        v.detail
    );
}

#[test]
fn a_small_difference_within_the_margin_passes() {
    let v = judge(&error_rate(0.01, 200.0), &counts(6.0, 5000.0, 5.0, 5000.0));
    assert_eq!(v.status, VerdictStatus::Pass, "{}", v.detail);
    assert!(v.interval.unwrap().1 <= 0.01);
}

#[test]
fn three_errors_in_forty_requests_never_pass() {
    // Below min_requests: no verdict.
    let v = judge(&error_rate(0.01, 200.0), &counts(3.0, 40.0, 5.0, 5000.0));
    assert_eq!(v.status, VerdictStatus::Inconclusive, "{}", v.detail);
    assert!(
        v.detail
            .contains("too few requests (canary 40 < min_requests 200)"),
        "{}",
        v.detail
    );
    // Without a minimum the interval decides: 7.5% of 40 is worse than
    // 0.1% by more than a point even at its lower end.
    let v = judge(&error_rate(0.01, 0.0), &counts(3.0, 40.0, 5.0, 5000.0));
    assert_eq!(v.status, VerdictStatus::Fail, "{}", v.detail);
    // One error in 40: the data cannot tell.
    let v = judge(&error_rate(0.01, 0.0), &counts(1.0, 40.0, 5.0, 5000.0));
    assert_eq!(v.status, VerdictStatus::Inconclusive, "{}", v.detail);
}

#[test]
fn a_zero_baseline_is_bounded_not_free() {
    // 0 errors in 10,000 against 5 in 10,000: with a one-point margin the
    // canary is proven not worse by more than a point (pass)...
    let v = judge(
        &error_rate(0.01, 200.0),
        &counts(5.0, 10_000.0, 0.0, 10_000.0),
    );
    assert_eq!(v.status, VerdictStatus::Pass, "{}", v.detail);
    assert_eq!(v.baseline, Some(0.0));
    // ...with no margin at all it is proven worse (fail): the baseline's
    // upper bound (0.03%) is below the canary's lower bound.
    let v = judge(
        &error_rate(0.0, 200.0),
        &counts(5.0, 10_000.0, 0.0, 10_000.0),
    );
    assert_eq!(v.status, VerdictStatus::Fail, "{}", v.detail);
    // ...and a single canary error against a zero baseline cannot be told
    // apart from none.
    let v = judge(
        &error_rate(0.0, 200.0),
        &counts(1.0, 10_000.0, 0.0, 10_000.0),
    );
    assert_eq!(v.status, VerdictStatus::Inconclusive, "{}", v.detail);
}

#[test]
fn missing_nan_and_failed_queries_are_inconclusive() {
    let mut s = counts(1.0, 5000.0, 1.0, 5000.0);
    s.values[2].1 = None;
    let v = judge(&error_rate(0.01, 200.0), &s);
    assert_eq!(v.status, VerdictStatus::Inconclusive);
    assert!(
        v.detail.contains("no data for canary_total"),
        "{}",
        v.detail
    );
    assert!(!v.query_error);

    let v = judge(
        &error_rate(0.01, 200.0),
        &counts(f64::NAN, 5000.0, 1.0, 5000.0),
    );
    assert_eq!(v.status, VerdictStatus::Inconclusive, "{}", v.detail);

    let s = Sample {
        values: vec![],
        error: Some("query `canary_errors` failed: 503".into()),
    };
    let v = judge(&error_rate(0.01, 200.0), &s);
    assert_eq!(v.status, VerdictStatus::Inconclusive);
    assert!(v.query_error);

    let report = AnalysisReport {
        verdicts: vec![v],
        samples: 1,
    };
    assert_eq!(report.status(), VerdictStatus::Inconclusive);
    assert_eq!(report.query_errors(), 1);
}

#[test]
fn max_rate_caps_the_canary_alone() {
    let mut m = error_rate(0.5, 200.0);
    if let Rule::ErrorRate { max_rate, .. } = &mut m.rule {
        *max_rate = Some(0.01);
    }
    // 3% of 5,000 against 3% of 5,000: no increase, but above the 1% cap.
    let v = judge(&m, &counts(150.0, 5000.0, 150.0, 5000.0));
    assert_eq!(v.status, VerdictStatus::Fail, "{}", v.detail);
    assert!(v.detail.contains("above the cap 1.00%"), "{}", v.detail);
}

fn latency(max_ratio: f64) -> Metric {
    Metric {
        name: "p95".into(),
        rule: Rule::Latency {
            quantile: Cohorts {
                canary: "c".into(),
                baseline: "b".into(),
            },
            total: Some(Cohorts {
                canary: "cn".into(),
                baseline: "bn".into(),
            }),
            max_ratio,
        },
        min_requests: 100.0,
        confidence: 0.95,
    }
}

fn quantiles(c: f64, b: f64, cn: f64, bn: f64) -> Sample {
    Sample {
        values: vec![
            ("canary", Some(c)),
            ("baseline", Some(b)),
            ("canary_total", Some(cn)),
            ("baseline_total", Some(bn)),
        ],
        error: None,
    }
}

#[test]
fn latency_is_a_ratio_of_quantiles() {
    let v = judge(&latency(1.5), &quantiles(0.4, 0.2, 1000.0, 1000.0));
    assert_eq!(v.status, VerdictStatus::Fail, "{}", v.detail);
    assert!(v.detail.contains("ratio 2.00 > 1.50"), "{}", v.detail);
    let v = judge(&latency(1.5), &quantiles(0.25, 0.2, 1000.0, 1000.0));
    assert_eq!(v.status, VerdictStatus::Pass, "{}", v.detail);
    let v = judge(&latency(1.5), &quantiles(0.25, 0.2, 10.0, 1000.0));
    assert_eq!(v.status, VerdictStatus::Inconclusive, "{}", v.detail);
    let v = judge(&latency(1.5), &quantiles(0.25, 0.0, 1000.0, 1000.0));
    assert_eq!(v.status, VerdictStatus::Inconclusive, "{}", v.detail);
}

#[test]
fn threshold_bounds_the_canary() {
    let m = Metric {
        name: "saturation".into(),
        rule: Rule::Threshold {
            query: "q".into(),
            total: None,
            max: Some(0.8),
            min: None,
        },
        min_requests: 0.0,
        confidence: 0.95,
    };
    let s = |x: f64| Sample {
        values: vec![("canary", Some(x))],
        error: None,
    };
    assert_eq!(judge(&m, &s(0.9)).status, VerdictStatus::Fail);
    assert_eq!(judge(&m, &s(0.5)).status, VerdictStatus::Pass);
    let empty = Sample {
        values: vec![("canary", None)],
        error: None,
    };
    assert_eq!(judge(&m, &empty).status, VerdictStatus::Inconclusive);
}

#[test]
fn a_report_fails_on_any_failure_before_any_inconclusive() {
    let fail = judge(
        &error_rate(0.01, 200.0),
        &counts(100.0, 5000.0, 5.0, 5000.0),
    );
    let none = judge(&error_rate(0.01, 200.0), &counts(3.0, 40.0, 5.0, 5000.0));
    let report = AnalysisReport {
        verdicts: vec![none, fail],
        samples: 1,
    };
    assert_eq!(report.status(), VerdictStatus::Fail);
    assert!(
        report.summary().starts_with("metric `http-errors` fail"),
        "{}",
        report.summary()
    );
    assert_eq!(AnalysisReport::default().status(), VerdictStatus::Pass);
}
