//! Summaries over independent replications: the mean and a 95 % Student-t confidence
//! interval (replications are independent and their means roughly normal, so the t-interval
//! is the standard choice; it widens honestly when there are few runs).

/// Two-sided 95 % Student-t quantiles for 1..=30 degrees of freedom.
const T_975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The 0.975 quantile of Student's t with `df` degrees of freedom (normal beyond 120).
pub fn t_quantile(df: usize) -> f64 {
    match df {
        0 => f64::NAN,
        1..=30 => T_975[df - 1],
        31..=40 => 2.021,
        41..=60 => 2.000,
        61..=120 => 1.980,
        _ => 1.960,
    }
}

/// Mean of the replications and the half-width of its 95 % confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Mean over the runs that had a value.
    pub mean: f64,
    /// Half-width of the 95 % interval (`None` with fewer than two values).
    pub half_width: Option<f64>,
    /// Runs that had a value (a rate is undefined in a run without calls).
    pub runs: usize,
}

impl Estimate {
    /// Summarises per-run values; `None` when no run had one.
    pub fn of(values: &[f64]) -> Option<Estimate> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let half_width = (n >= 2).then(|| {
            let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            t_quantile(n - 1) * (variance / n as f64).sqrt()
        });
        Some(Estimate {
            mean,
            half_width,
            runs: n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values 1..=5: mean 3, sample sd √2.5, t(4) = 2.776, half-width 2.776·√(2.5/5) = 1.963.
    #[test]
    fn t_interval_matches_a_hand_computation() {
        let e = Estimate::of(&[1.0, 2.0, 3.0, 4.0, 5.0]).expect("values");
        assert_eq!(e.mean, 3.0);
        assert_eq!(e.runs, 5);
        let hw = e.half_width.expect("n >= 2");
        assert!((hw - 2.776 * 0.5f64.sqrt()).abs() < 1e-9, "{hw}");
    }

    #[test]
    fn one_run_has_no_interval_and_none_has_no_estimate() {
        assert_eq!(Estimate::of(&[4.0]).and_then(|e| e.half_width), None);
        assert_eq!(Estimate::of(&[]), None);
        assert!(t_quantile(0).is_nan());
        assert_eq!(t_quantile(1000), 1.96);
    }
}
