//! The few statistics the judge needs, written out and tested against
//! published values: the standard normal CDF and its inverse, Wilson score
//! intervals for a proportion, and Newcombe's hybrid score interval for the
//! difference of two proportions.

/// The standard normal CDF Φ(x), from the complementary error function
/// (W. J. Cody's rational approximations as in Numerical Recipes' `erfcc`,
/// fractional error below 1.2e-7 everywhere).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// The inverse of the standard normal CDF, Φ⁻¹(p) for 0 < p < 1 (Peter
/// Acklam's rational approximation, relative error below 1.2e-9, refined by
/// one Halley step). `NaN` outside (0, 1).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const LOW: f64 = 0.024_25;
    if !(p > 0.0 && p < 1.0) {
        return f64::NAN;
    }
    let x = if p < LOW {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    // One Halley step against the CDF above.
    let e = normal_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// The Wilson score interval of `successes` in `n` at critical value `z`
/// (two-sided `z` for a two-sided interval; a one-sided bound uses its own
/// `z`). Well-behaved at 0 and at `n`, unlike the Wald interval: 0 errors
/// in 10,000 gives (0, 0.00027) at z = 1.645, not (0, 0).
pub fn wilson(successes: f64, n: f64, z: f64) -> (f64, f64) {
    if n <= 0.0 {
        return (0.0, 1.0);
    }
    let p = successes / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Newcombe's hybrid score interval (his method 10) for p₁ − p₂, built from
/// the two Wilson intervals at `z`: `(lower, upper)`.
pub fn newcombe(x1: f64, n1: f64, x2: f64, n2: f64, z: f64) -> (f64, f64) {
    let (p1, p2) = (x1 / n1, x2 / n2);
    let (l1, u1) = wilson(x1, n1, z);
    let (l2, u2) = wilson(x2, n2, z);
    let d = p1 - p2;
    let lower = d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt();
    let upper = d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt();
    (lower, upper)
}

/// The one-sided p-value of "p₁ − p₂ > margin" by the unpooled z test on
/// two proportions: 1 − Φ((p̂₁ − p̂₂ − margin) / SE). Continuity-free; shown
/// beside the Newcombe bound for readers used to p-values. `None` when the
/// standard error is 0 (both proportions 0 or 1).
pub fn z_test_p(x1: f64, n1: f64, x2: f64, n2: f64, margin: f64) -> Option<f64> {
    let (p1, p2) = (x1 / n1, x2 / n2);
    let se = (p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2).sqrt();
    if se.is_nan() || se <= 0.0 {
        return None;
    }
    Some(1.0 - normal_cdf((p1 - p2 - margin) / se))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn normal_cdf_matches_the_published_table() {
        // Abramowitz & Stegun, table 26.1.
        for (x, p) in [
            (0.0, 0.5),
            (1.0, 0.841_344_746),
            (1.644_853_627, 0.95),
            (1.959_963_985, 0.975),
            (2.326_347_874, 0.99),
            (-3.0, 0.001_349_898),
            (4.0, 0.999_968_329),
        ] {
            assert!(
                close(normal_cdf(x), p, 2e-7),
                "Φ({x}) = {} ≠ {p}",
                normal_cdf(x)
            );
        }
    }

    #[test]
    fn normal_quantile_matches_the_published_values() {
        for (p, x) in [
            (0.5, 0.0),
            (0.9, 1.281_551_566),
            (0.95, 1.644_853_627),
            (0.975, 1.959_963_985),
            (0.99, 2.326_347_874),
            (0.999, 3.090_232_306),
            (0.01, -2.326_347_874),
        ] {
            assert!(
                close(normal_quantile(p), x, 1e-6),
                "Φ⁻¹({p}) = {} ≠ {x}",
                normal_quantile(p)
            );
        }
        assert!(normal_quantile(0.0).is_nan());
        assert!(normal_quantile(1.0).is_nan());
    }

    #[test]
    fn wilson_matches_newcombes_worked_examples() {
        // Newcombe (1998), Statistics in Medicine 17:857, table I (95%,
        // z = 1.96): 81/263 → 0.2553–0.3662; 0/10 → 0–0.2775.
        let (l, u) = wilson(81.0, 263.0, 1.959_964);
        assert!(close(l, 0.2553, 1e-4) && close(u, 0.3662, 1e-4), "{l} {u}");
        let (l, u) = wilson(0.0, 10.0, 1.959_964);
        assert!(close(l, 0.0, 1e-9) && close(u, 0.2775, 1e-4), "{l} {u}");
    }

    #[test]
    fn newcombe_matches_his_worked_examples() {
        // Newcombe (1998), Statistics in Medicine 17:873, table II, method
        // 10 (95%): 56/70 − 48/80 → 0.0524 to 0.3339; 9/10 − 3/10 → 0.1705
        // to 0.8090.
        let (l, u) = newcombe(56.0, 70.0, 48.0, 80.0, 1.959_964);
        assert!(close(l, 0.0524, 1e-4) && close(u, 0.3339, 1e-4), "{l} {u}");
        let (l, u) = newcombe(9.0, 10.0, 3.0, 10.0, 1.959_964);
        assert!(close(l, 0.1705, 1e-4) && close(u, 0.8090, 1e-4), "{l} {u}");
    }

    #[test]
    fn z_test_p_value_is_one_sided() {
        // 2% of 5,000 vs 0.1% of 5,000, margin 1 point: z ≈ 4.43.
        let p = z_test_p(100.0, 5000.0, 5.0, 5000.0, 0.01).unwrap();
        assert!(p < 1e-4, "{p}");
        // Equal rates, no margin: z = 0, p = 0.5.
        let p = z_test_p(10.0, 1000.0, 10.0, 1000.0, 0.0).unwrap();
        assert!(close(p, 0.5, 1e-7), "{p}");
        assert_eq!(z_test_p(0.0, 10.0, 0.0, 10.0, 0.0), None);
    }
}
